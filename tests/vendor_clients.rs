//! Issue 17 acceptance 1: clients written from the vendors' published facts — requests built
//! the way the vendor's own client builds them, configured only with vouchd's base URL and a
//! token — run the vendors' main flows and read every member they expect with its documented
//! type. The clients know nothing of vouchd: the test sets up its vouchers through the native
//! API, then only the clients speak.

use crate::common::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::io::Read;

/// What the vendor's clients send with every request.
fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut req = agent.request(method, url);
    for (name, value) in headers {
        req = req.set(name, value);
    }
    let result = match body {
        Some(bytes) => req
            .set("Content-Type", "application/json")
            .send_bytes(bytes),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            (
                n.to_ascii_lowercase(),
                resp.header(&n).unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(16 << 20)
        .read_to_end(&mut bytes)
        .expect("body");
    (status, headers, bytes)
}

/// Parses `bytes` as `T`, failing with the body when a member is missing or of another type.
fn typed<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> T {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "{what}: {e} in {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(2000)])
        )
    })
}

/// PHP's `rawurlencode` (RFC 3986): everything but unreserved characters is escaped.
fn rawurlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---- CareCloud -------------------------------------------------------------------------------

/// The enterprise interface's vouchers operations, as the vendor's PHP client calls them.
struct CareCloud {
    host: String,
    token: String,
    agent: ureq::Agent,
}

/// `getSubCustomerVouchers`' optional arguments (the purchase operation takes the first four).
#[derive(Default)]
struct VoucherArgs<'a> {
    count: Option<u64>,
    offset: Option<u64>,
    sort_field: Option<&'a str>,
    sort_direction: Option<&'a str>,
    code: Option<&'a str>,
    store_id: Option<&'a str>,
    is_valid: Option<bool>,
    is_applied: Option<bool>,
    without_stores: Option<bool>,
    reward_id: Option<Vec<&'a str>>,
}

/// The vouchers, or the HTTP status and the vendor's error object.
type CareResult = Result<VouchersData, Box<(u16, CareError)>>;

#[derive(Debug, Deserialize)]
struct VouchersResponse {
    data: VouchersData,
}

#[derive(Debug, Deserialize)]
struct VouchersData {
    vouchers: Vec<CareVoucher>,
    total_items: i64,
}

#[derive(Debug, Deserialize)]
struct CareVoucher {
    voucher_id: Option<String>,
    customer_id: String,
    store_id: Option<String>,
    code: Option<String>,
    value: Option<f64>,
    applied_date: Option<String>,
    valid_from: Option<String>,
    valid_to: Option<String>,
    reward_group: Option<String>,
    note: Option<String>,
    reward: Option<Reward>,
    created_at: Option<String>,
    last_change: Option<String>,
    state: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Reward {
    reward_id: Option<String>,
    code: String,
    name: String,
    reward_group: i64,
    store_list: Vec<Store>,
}

#[derive(Debug, Deserialize)]
struct Store {
    store_id: String,
    store_code: String,
    name: String,
    partner_id: String,
    system_id: String,
}

#[derive(Debug, Deserialize)]
struct CareErrorResponse {
    error: CareError,
}

#[derive(Debug, Deserialize)]
struct CareError {
    #[serde(rename = "type")]
    kind: String,
    exception: String,
    title: String,
    detail: String,
    error_data: Option<CareErrorData>,
}

#[derive(Debug, Deserialize)]
struct CareErrorData {
    invalid_params: Option<Vec<InvalidParam>>,
}

#[derive(Debug, Deserialize)]
struct InvalidParam {
    name: String,
    reason: String,
    value: String,
    message: String,
}

impl CareCloud {
    fn new(host: String, token: String) -> CareCloud {
        CareCloud {
            host,
            token,
            agent: ureq::AgentBuilder::new().build(),
        }
    }

    /// The query as the PHP client builds it: `count` and `offset` always (100 and 0 unless
    /// given), booleans as `true`/`false`, an array comma-joined into one value, each value
    /// raw-url-encoded.
    fn query(args: &VoucherArgs) -> String {
        let mut pairs = vec![
            ("count", args.count.unwrap_or(100).to_string()),
            ("offset", args.offset.unwrap_or(0).to_string()),
        ];
        let mut text = |name, value: Option<&str>| {
            if let Some(v) = value {
                pairs.push((name, v.to_string()));
            }
        };
        text("sort_field", args.sort_field);
        text("sort_direction", args.sort_direction);
        text("code", args.code);
        text("store_id", args.store_id);
        for (name, flag) in [
            ("is_valid", args.is_valid),
            ("is_applied", args.is_applied),
            ("without_stores", args.without_stores),
        ] {
            if let Some(flag) = flag {
                pairs.push((name, if flag { "true" } else { "false" }.to_string()));
            }
        }
        if let Some(ids) = &args.reward_id {
            pairs.push(("reward_id", ids.join(",")));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", rawurlencode(k), rawurlencode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn get(&self, resource: &str, id: &str, args: &VoucherArgs) -> CareResult {
        let url = format!(
            "{}/{resource}/{}/vouchers?{}",
            self.host,
            rawurlencode(id),
            CareCloud::query(args)
        );
        let auth = format!("Bearer {}", self.token);
        let headers = [
            ("Authorization", auth.as_str()),
            ("Accept", "application/json"),
            ("Accept-Language", "cs, en-gb;q=0.8"),
        ];
        let (status, head, bytes) = call(&self.agent, "GET", &url, &headers, None);
        let media = head
            .iter()
            .find(|(n, _)| n == "content-type")
            .map_or("", |(_, v)| v.as_str());
        assert_eq!(media, "application/json", "{url}");
        if status == 200 {
            Ok(typed::<VouchersResponse>(&url, &bytes).data)
        } else {
            Err(Box::new((
                status,
                typed::<CareErrorResponse>(&url, &bytes).error,
            )))
        }
    }

    /// `getSubCustomerVouchers`.
    fn customer_vouchers(&self, customer_id: &str, args: &VoucherArgs) -> CareResult {
        self.get("customers", customer_id, args)
    }

    /// `getSubPurchaseVouchers`.
    fn purchase_vouchers(&self, purchase_id: &str, args: &VoucherArgs) -> CareResult {
        self.get("purchases", purchase_id, args)
    }
}

/// `YYYY-MM-DD HH:MM:SS`.
fn is_plain_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

fn codes(data: &VouchersData) -> Vec<String> {
    data.vouchers
        .iter()
        .map(|v| v.code.clone().unwrap_or_default())
        .collect()
}

#[test]
fn the_vendors_carecloud_client_lists_customer_and_purchase_vouchers_with_every_parameter() {
    let s = TestServer::start();
    let t = s.tenant(CASHIER);
    let customer = unique("cust");
    let purchase = unique("purch");
    let stem = code_stem();
    let make = |suffix: &str, extra: serde_json::Value| {
        let mut body = json!({"code": format!("{stem}{suffix}"), "customer_id": customer,
                              "purchase_id": purchase});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        s.create_voucher(&t.token, &body)
    };
    let a = make(
        "A",
        json!({"amount": "3.49", "store_id": "S1", "reward_id": "R1", "note": "alpha",
               "label": "Birthday", "valid_from": "2020-01-01", "valid_until": "2099-12-31"}),
    );
    make(
        "B",
        json!({"discount": {"type": "percentage", "value": "12.5"}, "reward_id": "R2",
               "valid_until": "2020-01-31"}),
    );
    make(
        "C",
        json!({"discount": {"type": "money", "value": "5.00"}, "store_id": "S2",
               "reward_id": "R3", "status": "inactive"}),
    );
    // A used up: all of its value charged.
    let r = s.post(
        &format!("/v1/vouchers/{}/charges", id_of(&a["id"])),
        &t.token,
        &json!({"type": "charge", "amount": "3.49"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);

    let client = CareCloud::new(
        format!("{}/carecloud/rest-api/enterprise-interface/v1.0", s.base),
        t.token.clone(),
    );
    let all = client
        .customer_vouchers(&customer, &VoucherArgs::default())
        .expect("the customer's vouchers");
    assert_eq!(all.total_items, 3);
    assert_eq!(all.vouchers.len(), 3);
    for v in &all.vouchers {
        assert_eq!(v.customer_id, customer);
        assert!(v.voucher_id.as_deref().is_some_and(|id| !id.is_empty()));
        assert!(v.value.is_some() && v.state.is_some() && v.reward_group.is_some());
        for time in [&v.created_at, &v.last_change] {
            assert!(time.as_deref().is_some_and(is_plain_time), "{v:?}");
        }
        for time in [&v.applied_date, &v.valid_from, &v.valid_to]
            .into_iter()
            .flatten()
        {
            assert!(is_plain_time(time), "{v:?}");
        }
        let reward = v.reward.as_ref().expect("every voucher here has a reward");
        assert_eq!(reward.reward_id.as_deref(), Some(reward.code.as_str()));
        assert!(!reward.name.is_empty());
        assert!(
            reward.store_list.is_empty(),
            "without_stores defaults to true"
        );
    }
    // Newest first: C, B, A.
    assert_eq!(
        codes(&all),
        [format!("{stem}C"), format!("{stem}B"), format!("{stem}A")]
    );
    let a_view = &all.vouchers[2];
    assert_eq!(a_view.value, Some(3.49));
    assert_eq!(a_view.store_id.as_deref(), Some("S1"));
    assert_eq!(a_view.note.as_deref(), Some("alpha"));
    assert_eq!(a_view.state, Some(1));
    assert_eq!(a_view.reward_group.as_deref(), Some("5"));
    assert_eq!(
        a_view.applied_date, None,
        "a gift card has no application date (a discount voucher's use has)"
    );
    assert_eq!(a_view.valid_from.as_deref(), Some("2020-01-01 00:00:00"));
    assert_eq!(a_view.valid_to.as_deref(), Some("2099-12-31 23:59:59"));
    let a_reward = a_view.reward.as_ref().unwrap();
    assert_eq!(
        (a_reward.code.as_str(), a_reward.name.as_str()),
        ("R1", "Birthday")
    );
    assert_eq!(a_reward.reward_group, 5);
    assert_eq!(all.vouchers[1].value, Some(12.5));
    assert_eq!(all.vouchers[1].reward_group.as_deref(), Some("4"));
    assert_eq!(all.vouchers[0].state, Some(2));

    // Every parameter of the customer operation.
    let page = |args: VoucherArgs| client.customer_vouchers(&customer, &args).expect("a page");
    let got = page(VoucherArgs {
        count: Some(2),
        offset: Some(1),
        sort_field: Some("code"),
        sort_direction: Some("DESC"),
        ..VoucherArgs::default()
    });
    assert_eq!(codes(&got), [format!("{stem}B"), format!("{stem}A")]);
    assert_eq!(got.total_items, 3);
    let got = page(VoucherArgs {
        sort_field: Some("value"),
        sort_direction: Some("ASC"),
        ..VoucherArgs::default()
    });
    assert_eq!(
        codes(&got),
        [format!("{stem}A"), format!("{stem}C"), format!("{stem}B")]
    );
    let typed_code = format!("{}-{}", &stem.to_lowercase(), "b");
    let got = page(VoucherArgs {
        code: Some(&typed_code),
        ..VoucherArgs::default()
    });
    assert_eq!(codes(&got), [format!("{stem}B")]);
    let got = page(VoucherArgs {
        store_id: Some("S2"),
        ..VoucherArgs::default()
    });
    assert_eq!(codes(&got), [format!("{stem}C")]);
    let got = page(VoucherArgs {
        is_valid: Some(false),
        ..VoucherArgs::default()
    });
    assert_eq!(codes(&got), [format!("{stem}B")]);
    let got = page(VoucherArgs {
        is_valid: Some(true),
        is_applied: Some(true),
        ..VoucherArgs::default()
    });
    assert_eq!(codes(&got), [format!("{stem}A")]);
    let got = page(VoucherArgs {
        is_applied: Some(false),
        reward_id: Some(vec!["R1", "R3"]),
        ..VoucherArgs::default()
    });
    assert_eq!(codes(&got), [format!("{stem}C")]);
    let got = page(VoucherArgs {
        without_stores: Some(false),
        reward_id: Some(vec!["R1"]),
        ..VoucherArgs::default()
    });
    let stores = &got.vouchers[0].reward.as_ref().unwrap().store_list;
    assert_eq!(stores.len(), 1);
    let store = &stores[0];
    assert_eq!(
        (
            store.store_id.as_str(),
            store.store_code.as_str(),
            store.name.as_str()
        ),
        ("S1", "S1", "S1")
    );
    assert_eq!(
        (store.partner_id.as_str(), store.system_id.as_str()),
        ("", "")
    );
    let got = page(VoucherArgs {
        count: Some(5000),
        ..VoucherArgs::default()
    });
    assert_eq!(got.vouchers.len(), 3, "count has no maximum");

    // The purchase operation: paging and sorting.
    let got = client
        .purchase_vouchers(
            &purchase,
            &VoucherArgs {
                count: Some(2),
                offset: Some(0),
                sort_field: Some("created_at"),
                sort_direction: Some("ASC"),
                ..VoucherArgs::default()
            },
        )
        .expect("the purchase's vouchers");
    assert_eq!(codes(&got), [format!("{stem}A"), format!("{stem}B")]);
    assert_eq!(got.total_items, 3);
    // … and nothing the vendor does not define for it.
    let (status, error) = *client
        .purchase_vouchers(
            &purchase,
            &VoucherArgs {
                is_valid: Some(true),
                ..VoucherArgs::default()
            },
        )
        .expect_err("is_valid is a customer parameter");
    assert_eq!(status, 400);
    assert_eq!(error.kind, "about:blank");
    assert!(!error.exception.is_empty() && !error.title.is_empty() && !error.detail.is_empty());
    let invalid = error
        .error_data
        .and_then(|d| d.invalid_params)
        .expect("invalid_params");
    assert_eq!(invalid.len(), 1);
    assert_eq!(
        (invalid[0].name.as_str(), invalid[0].value.as_str()),
        ("is_valid", "true")
    );
    assert_eq!(invalid[0].reason, "not_allowed_value");
    assert!(!invalid[0].message.is_empty());
    // A discount voucher used on a ticket has its application date.
    let once = unique("cust");
    let d = s.create_voucher(
        &t.token,
        &json!({"discount": {"type": "money", "value": "2.00"}, "customer_id": once}),
    );
    let r = s.post(
        &format!("/v1/vouchers/{}/charges", id_of(&d["id"])),
        &t.token,
        &json!({"type": "use", "ticket_total": "10.00"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let got = client
        .customer_vouchers(&once, &VoucherArgs::default())
        .expect("the voucher");
    let applied = got.vouchers[0]
        .applied_date
        .as_deref()
        .expect("applied_date");
    assert!(is_plain_time(applied), "{applied}");
    // A bad token: 401 in the same error shape.
    let stranger = CareCloud::new(client.host.clone(), "not-a-token".into());
    let (status, error) = *stranger
        .customer_vouchers(&customer, &VoucherArgs::default())
        .expect_err("a bad token");
    assert_eq!(status, 401);
    assert!(!error.detail.is_empty());
}

#[test]
fn the_carecloud_dialect_takes_booleans_as_one_and_zero_too() {
    // Guzzle's own query builder turns PHP booleans into 1/0; the vendor's serializer sends
    // true/false. Both must mean the same.
    let s = TestServer::start();
    let t = s.tenant(CASHIER);
    let customer = unique("cust");
    s.create_voucher(
        &t.token,
        &json!({"amount": "1.00", "customer_id": customer}),
    );
    s.create_voucher(
        &t.token,
        &json!({"amount": "1.00", "customer_id": customer, "valid_until": "2001-01-01"}),
    );
    let base =
        format!("/carecloud/rest-api/enterprise-interface/v1.0/customers/{customer}/vouchers");
    for (word, digit) in [("true", "1"), ("false", "0")] {
        let words = s.get(&format!("{base}?is_valid={word}"), &t.token);
        let digits = s.get(&format!("{base}?is_valid={digit}"), &t.token);
        assert_eq!(words.status, 200, "{}", words.body);
        assert_eq!(words.json, digits.json);
        assert_eq!(words.json["data"]["total_items"], json!(1));
    }
}

// ---- POS -------------------------------------------------------------------------------------

/// The partner API's ticket vouchers (v1), as a client written from its reference calls them.
struct Pos {
    base: String,
    token: String,
    agent: ureq::Agent,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Discount {
    #[serde(rename = "type")]
    kind: String,
    value: f64,
}

#[derive(Debug, Serialize)]
struct PosInput<'a> {
    customer_id: Option<&'a str>,
    discount: Discount,
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    label: &'a str,
    product_id: Option<&'a str>,
    valid_until: &'a str,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
struct PosVoucher {
    code: String,
    created_at: String,
    customer_id: Option<String>,
    discount: Discount,
    enabled: bool,
    label: String,
    product_id: Option<String>,
    updated_at: Option<String>,
    used_at: Option<String>,
    valid_until: String,
}

#[derive(Debug, Deserialize)]
struct PosWindow {
    limit: i64,
    offset: i64,
}

#[derive(Debug, Deserialize)]
struct PosList {
    query: PosWindow,
    result: Vec<PosVoucher>,
    total: i64,
}

#[derive(Debug, Deserialize)]
struct Problem {
    status: u16,
    #[serde(rename = "type")]
    kind: String,
    title: String,
    detail: String,
}

type PosResult<T> = Result<T, Problem>;

impl Pos {
    fn new(base: String, token: String) -> Pos {
        Pos {
            base,
            token,
            agent: ureq::AgentBuilder::new().build(),
        }
    }

    fn send<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&PosInput>,
        success: u16,
    ) -> PosResult<Option<T>> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
        let (status, _, reply) = call(
            &self.agent,
            method,
            &url,
            &[("Authorization", &auth), ("Accept", "application/json")],
            bytes.as_deref(),
        );
        if status == success {
            return Ok((status != 204).then(|| typed(&url, &reply)));
        }
        let problem: Problem = typed(&url, &reply);
        assert_eq!(problem.status, status, "{url}");
        Err(problem)
    }

    fn list(
        &self,
        customer_id: Option<&str>,
        used: Option<bool>,
        limit: u32,
        offset: u32,
    ) -> PosResult<PosList> {
        let mut query = format!("limit={limit}&offset={offset}");
        if let Some(c) = customer_id {
            query.push_str(&format!("&customer_id={}", rawurlencode(c)));
        }
        if let Some(u) = used {
            query.push_str(&format!("&used={u}"));
        }
        self.send("GET", &format!("/vouchers?{query}"), None, 200)
            .map(|v| v.expect("a list"))
    }

    fn create(&self, input: &PosInput) -> PosResult<PosVoucher> {
        self.send("POST", "/vouchers", Some(input), 201)
            .map(|v| v.expect("a voucher"))
    }

    fn get(&self, code: &str) -> PosResult<PosVoucher> {
        self.send("GET", &format!("/vouchers/{code}"), None, 200)
            .map(|v| v.expect("a voucher"))
    }

    fn update(&self, code: &str, input: &PosInput) -> PosResult<PosVoucher> {
        self.send("PUT", &format!("/vouchers/{code}"), Some(input), 200)
            .map(|v| v.expect("a voucher"))
    }

    fn remove(&self, code: &str) -> PosResult<()> {
        self.send::<serde_json::Value>("DELETE", &format!("/vouchers/{code}"), None, 204)
            .map(|_| ())
    }
}

fn is_date_time(s: &str) -> bool {
    s.len() >= 20 && s.as_bytes()[10] == b'T' && is_plain_time(&s[..19].replacen('T', " ", 1))
}

fn is_date(s: &str) -> bool {
    s.len() == 10 && is_plain_time(&format!("{s} 00:00:00"))
}

#[test]
fn the_pos_client_creates_gets_updates_lists_and_removes_vouchers() {
    let s = TestServer::start();
    let t = s.tenant(CASHIER);
    let pos = Pos::new(format!("{}/pos/v1", s.base), t.token.clone());
    let customer = "160c0c4b-9966-4dc1-a916-8407eb10d74e";
    let product = "0d012afa-f885-4e65-aeca-37e27701e2d1";
    let winter = PosInput {
        customer_id: Some(customer),
        discount: Discount {
            kind: "money".into(),
            value: 12.5,
        },
        enabled: Some(true),
        label: "Winter discount voucher",
        product_id: Some(product),
        valid_until: "2031-08-24",
    };
    let made = pos.create(&winter).expect("created");
    assert!((4..=8).contains(&made.code.len()));
    assert!(made
        .code
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    assert!(is_date_time(&made.created_at), "{made:?}");
    assert_eq!(made.customer_id.as_deref(), Some(customer));
    assert_eq!(made.product_id.as_deref(), Some(product));
    assert_eq!(made.discount, winter.discount);
    assert!(made.enabled);
    assert_eq!(made.label, "Winter discount voucher");
    assert!(made.updated_at.as_deref().is_some_and(is_date_time));
    assert_eq!(made.used_at, None);
    assert_eq!(made.valid_until, "2031-08-24");
    assert!(is_date(&made.valid_until));
    assert_eq!(pos.get(&made.code).expect("got"), made);

    // An open voucher: no customer, no product, nothing off yet.
    let open = pos
        .create(&PosInput {
            customer_id: None,
            discount: Discount {
                kind: "percentage".into(),
                value: 0.0,
            },
            enabled: None,
            label: "",
            product_id: None,
            valid_until: "2030-01-01",
        })
        .expect("created");
    assert_eq!(open.customer_id, None);
    assert_eq!(open.discount.value, 0.0);
    assert!(open.enabled, "enabled defaults to true");

    // Update replaces the whole voucher.
    let spring = PosInput {
        customer_id: Some(customer),
        discount: Discount {
            kind: "percentage".into(),
            value: 15.0,
        },
        enabled: Some(false),
        label: "Spring",
        product_id: None,
        valid_until: "2032-03-01",
    };
    let changed = pos.update(&made.code, &spring).expect("updated");
    assert_eq!(changed.code, made.code);
    assert_eq!(changed.created_at, made.created_at);
    assert_eq!(changed.discount, spring.discount);
    assert!(!changed.enabled);
    assert_eq!(
        (changed.label.as_str(), changed.product_id.as_deref()),
        ("Spring", None)
    );
    assert_eq!(changed.valid_until, "2032-03-01");

    // Lists with filters and windows.
    let mine = pos.list(Some(customer), None, 25, 0).expect("listed");
    assert_eq!((mine.query.limit, mine.query.offset), (25, 0));
    assert_eq!(mine.total, 1);
    assert_eq!(mine.result, vec![changed.clone()]);
    let all = pos.list(None, Some(false), 1, 1).expect("listed");
    assert_eq!(all.total, 2);
    assert_eq!(
        all.result,
        vec![changed.clone()],
        "newest first, second one"
    );
    let counted = pos.list(None, None, 0, 0).expect("listed");
    assert_eq!((counted.total, counted.result.len()), (2, 0));

    // The open voucher is used on a ticket (through vouchd's own API: the POS reference has no
    // such call): it lists as used and is no longer the POS client's to change or remove.
    let native = s.list(&t.token, &format!("filter[code]={}", open.code));
    let r = s.post(
        &format!(
            "/v1/vouchers/{}/charges",
            id_of(&native.json["data"][0]["id"])
        ),
        &t.token,
        &json!({"type": "use", "ticket_total": "10.00"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let used = pos.list(None, Some(true), 25, 0).expect("listed");
    assert_eq!(used.total, 1);
    assert_eq!(used.result[0].code, open.code);
    assert!(used.result[0].used_at.as_deref().is_some_and(is_date_time));
    let refused = pos.update(&open.code, &spring).expect_err("used");
    assert_eq!((refused.status, refused.title.as_str()), (403, "Forbidden"));
    assert_eq!(refused.kind, "about:blank");
    assert!(!refused.detail.is_empty());
    let refused = pos.remove(&open.code).expect_err("used");
    assert_eq!(refused.status, 403);

    // Remove, then it is gone.
    pos.remove(&made.code).expect("removed");
    let gone = pos.get(&made.code).expect_err("removed");
    assert_eq!(gone.status, 404);
    // Bad input names its field in the problem.
    let bad = pos
        .create(&PosInput {
            customer_id: Some("C-1"),
            ..winter
        })
        .expect_err("not a uuid");
    assert_eq!(bad.status, 422);
    assert!(bad.detail.contains("customer_id"), "{bad:?}");
}
