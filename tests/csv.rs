//! CSV out and in (the routes `GET /v1/vouchers/export.csv` and `POST /v1/vouchers/import`,
//! and the CLI's `vouchd export` / `vouchd import`): round trips into a fresh server, filters and
//! tenancy, and files refused whole with a report naming row and field.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// The columns an export carries over to an import unchanged.
const CARRIED: &[&str] = &[
    "id",
    "code",
    "sku",
    "batch",
    "label",
    "note",
    "amount",
    "remaining_amount",
    "currency",
    "discount_type",
    "discount_value",
    "max_uses",
    "uses",
    "used_at",
    "valid_from",
    "valid_until",
    "validity_value",
    "validity_interval",
    "status",
    "type",
    "taxable",
    "tax_rate",
    "order_number",
    "customer_id",
    "product_id",
    "store_id",
    "purchase_id",
    "reward_id",
    "data",
    "created_at",
];

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(TestServer::start)
}

type Row = BTreeMap<String, String>;

/// Parses a CSV text into its header and rows (column → cell).
fn parse(text: &str) -> (Vec<String>, Vec<Row>) {
    let mut reader = ::csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            let record = r.unwrap_or_else(|e| panic!("a CSV row: {e}\n{text}"));
            header
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_string))
                .collect()
        })
        .collect();
    (header, rows)
}

/// `GET /v1/vouchers/export.csv?query`, asserting 200 and the CSV content type.
fn export(s: &TestServer, token: &str, query: &str) -> String {
    let r = s.get(&format!("/v1/vouchers/export.csv?{query}"), token);
    assert_eq!(r.status, 200, "export?{query}: {}", r.body);
    assert_eq!(r.content_type(), "text/csv; charset=utf-8");
    r.body
}

fn export_rows(s: &TestServer, token: &str, query: &str) -> Vec<Row> {
    parse(&export(s, token, query)).1
}

fn import(s: &TestServer, token: &str, csv: &str) -> Resp {
    s.send(
        "POST",
        "/v1/vouchers/import",
        &[("Authorization", &format!("Bearer {token}"))],
        Some(("text/csv", csv.as_bytes())),
    )
}

/// Asserts 422 with an error naming `field` on data row `row`.
fn assert_row_error(r: &Resp, row: u64, field: &str) {
    assert_invalid_field(r, field);
    let errors = r.json["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .any(|e| e["row"] == json!(row) && e["field"] == json!(field)),
        "errors should name row {row}, field {field}: {}",
        r.body
    );
}

fn total(s: &TestServer, token: &str, query: &str) -> u64 {
    let r = s.list(token, query);
    assert_eq!(r.status, 200, "list?{query}: {}", r.body);
    r.json["meta"]["total"].as_u64().expect("meta.total")
}

/// Vouchers of every kind the export must carry: a charged gift card with awkward text, a
/// discount voucher used once with a validity pair, a spent one, a JPY amount, a print voucher
/// with tax and restrictions. Returns their ids.
fn seed(s: &TestServer, token: &str, batch: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut create = |body: Value| {
        let mut body = body;
        body["batch"] = json!(batch);
        ids.push(id_of(&s.create_voucher(token, &body)["id"]));
        ids.last().cloned().unwrap_or_default()
    };
    let gift = create(json!({
        "amount": "25.00",
        "label": "Gift, \"big\"\nsecond line",
        "note": "ümlaut; semi",
        "data": {"foo": "bar, \"baz\""},
    }));
    let charged = s.post(
        &format!("/v1/vouchers/{gift}/charges"),
        token,
        &json!({"type": "charge", "amount": "7.50", "order_number": "O-1"}),
    );
    assert_eq!(charged.status, 201, "charge: {}", charged.body);
    let used = create(json!({
        "discount": {"type": "percentage", "value": "12.5"},
        "max_uses": 2,
        "validity_value": 3,
        "validity_interval": "months",
        "code": code_stem(),
    }));
    let spent = create(
        json!({"discount": {"type": "money", "value": "5.00"}, "valid_until": "2031-07-21"}),
    );
    for id in [&used, &spent] {
        let r = s.post(
            &format!("/v1/vouchers/{id}/charges"),
            token,
            &json!({"type": "use", "order_number": "O-2", "ticket_total": "40.00"}),
        );
        assert_eq!(r.status, 201, "use: {}", r.body);
    }
    create(json!({"amount": "1500", "currency": "JPY", "status": "inactive"}));
    create(json!({
        "amount": "10.00",
        "type": "print",
        "taxable": true,
        "tax_rate": "19",
        "sku": "SKU-1",
        "order_number": "Order 66",
        "customer_id": "cu-1",
        "product_id": "pr-1",
        "store_id": "st-1",
        "purchase_id": "pu-1",
        "reward_id": "re-1",
        "valid_from": "2024-01-01T00:00:00+00:00",
    }));
    ids
}

#[test]
fn export_then_import_into_a_fresh_server_reproduces_ids_codes_amounts_and_balances() {
    let source = TestServer::start();
    let admin = source.admin_token();
    let batch = unique("round-trip");
    let ids = seed(&source, &admin, &batch);
    let text = export(&source, &admin, &format!("filter[batch]={}", enc(&batch)));
    let (header, before) = parse(&text);
    assert_eq!(
        header.len(),
        35,
        "every voucher field, the group and the PIN hash: {header:?}"
    );
    assert_eq!(
        before.iter().map(|r| r["id"].clone()).collect::<Vec<_>>(),
        ids,
        "one row per voucher, in creation order"
    );

    let fresh = TestServer::start();
    let token = fresh.admin_token();
    let r = import(&fresh, &token, &text);
    assert_eq!(r.status, 201, "import: {}", r.body);
    assert_eq!(r.json["imported"], json!(ids.len()));
    let made: Vec<String> = r.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| id_of(&d["id"]))
        .collect();
    assert_eq!(made, ids);

    let after = export_rows(&fresh, &token, "");
    assert_eq!(after.len(), before.len());
    for (a, b) in before.iter().zip(&after) {
        for column in CARRIED {
            assert_eq!(a[*column], b[*column], "{column} of {}", a["id"]);
        }
        assert_eq!(
            b["client_id"], fresh.admin_id,
            "owned by the importing client"
        );
    }
    let gift = fresh.get(&format!("/v1/vouchers/{}", ids[0]), &token).json;
    assert_eq!(gift["remaining_amount"], json!("17.50"));
    assert_eq!(gift["label"], json!("Gift, \"big\"\nsecond line"));
    assert_eq!(gift["deletable"], json!(false));
    // The balance is real: the opening charge keeps the ledger whole, and only 17.50 is left.
    let ledger = fresh.get(&format!("/v1/vouchers/{}/charges", ids[0]), &token);
    assert_eq!(ledger.json["meta"]["total"], json!(1), "{}", ledger.body);
    assert_eq!(ledger.json["data"][0]["amount"], json!("7.50"));
    assert_eq!(ledger.json["data"][0]["order_number"], json!("import"));
    let charge = |amount: &str| {
        fresh.post(
            &format!("/v1/vouchers/{}/charges", ids[0]),
            &token,
            &json!({"type": "charge", "amount": amount, "order_number": "after"}),
        )
    };
    assert_problem(&charge("17.51"), 409, "insufficient_funds");
    assert_eq!(charge("17.50").status, 201);
    // The spent discount voucher stays spent; the one used once has one use left.
    let used = fresh.get(&format!("/v1/vouchers/{}", ids[1]), &token).json;
    assert_eq!((&used["uses"], &used["max_uses"]), (&json!(1), &json!(2)));
    let spent = fresh.get(&format!("/v1/vouchers/{}", ids[2]), &token).json;
    assert!(spent["used_at"].is_string(), "spent: {spent}");
    let reuse = fresh.post(
        &format!("/v1/vouchers/{}/charges", ids[2]),
        &token,
        &json!({"type": "use", "order_number": "again", "ticket_total": "40.00"}),
    );
    assert_problem(&reuse, 409, "voucher_used");
}

#[test]
fn export_honours_filters_and_tenancy() {
    let s = server();
    let a = s.tenant(RW);
    let b = s.tenant(RW);
    let batch = unique("filtered");
    let mine: Vec<String> = ["1.00", "2.00", "3.00"]
        .iter()
        .map(|amount| {
            id_of(&s.create_voucher(&a.token, &json!({"amount": amount, "batch": batch}))["id"])
        })
        .collect();
    let inactive =
        id_of(&s.create_voucher(&a.token, &json!({"amount": "4.00", "status": "inactive"}))["id"]);
    let theirs =
        id_of(&s.create_voucher(&b.token, &json!({"amount": "5.00", "batch": batch}))["id"]);

    let ids = |rows: Vec<Row>| -> BTreeSet<String> {
        rows.into_iter().map(|r| r["id"].clone()).collect()
    };
    let all_a = ids(export_rows(s, &a.token, ""));
    let expected: BTreeSet<String> = mine.iter().cloned().chain([inactive.clone()]).collect();
    assert_eq!(
        all_a, expected,
        "a group's client sees only its group's vouchers"
    );
    let batch_a = ids(export_rows(
        s,
        &a.token,
        &format!("filter[batch]={}", enc(&batch)),
    ));
    assert_eq!(batch_a, mine.iter().cloned().collect());
    let q = "filter%5Bstatus%5D=inactive";
    assert_eq!(ids(export_rows(s, &a.token, q)), set(&[&inactive]));
    let q = "filter[amount]=2.00&filter[status][]=active";
    assert_eq!(ids(export_rows(s, &a.token, q)), set(&[&mine[1]]));
    let by_admin = ids(export_rows(
        s,
        &s.admin_token(),
        &format!("filter[batch]={}", enc(&batch)),
    ));
    assert!(by_admin.contains(&theirs) && mine.iter().all(|id| by_admin.contains(id)));
    assert_eq!(
        ids(export_rows(s, &b.token, &format!("filter[id]={}", mine[0]))),
        BTreeSet::new(),
        "another group's voucher is absent, even by id"
    );
    let empty = export(s, &b.token, "filter[batch]=nothing-here");
    assert_eq!(
        parse(&empty).0.len(),
        35,
        "an empty result still has its header"
    );
    assert!(parse(&empty).1.is_empty());

    let get = |query: &str| s.get(&format!("/v1/vouchers/export.csv?{query}"), &a.token);
    assert_invalid_param(&get("filter[bogus]=1"), "filter[bogus]");
    assert_invalid_param(
        &get("filter[created_from]=yesterday"),
        "filter[created_from]",
    );
    assert_invalid_param(&get("page=2"), "page");
    assert_invalid_param(&get("per_page=10"), "per_page");
    assert_invalid_param(&get("sort=-amount"), "sort");
    assert_invalid_param(&get("bogus=1"), "bogus");
}

#[test]
fn export_is_streamed_chunked_across_pages_in_creation_order() {
    let s = server();
    let t = s.tenant(RW);
    let r = s.post(
        "/v1/vouchers/batch",
        &t.token,
        &json!({"count": 2500, "amount": "1.00"}),
    );
    assert_eq!(r.status, 201, "batch: {}", r.body);
    let made: Vec<String> = r.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| id_of(&d["id"]))
        .collect();
    let resp = s.get("/v1/vouchers/export.csv", &t.token);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    assert_eq!(resp.header("content-length"), None);
    let rows = parse(&resp.body).1;
    let ids: Vec<String> = rows.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(
        ids, made,
        "every voucher once, in creation order, across pages of 1000"
    );

    // HTTP/1.0 has no chunked coding: the same rows, the reply ending at the close.
    let old = s.raw(&format!(
        "GET /v1/vouchers/export.csv HTTP/1.0\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        s.host(),
        t.token
    ));
    assert_eq!(old.status, 200, "{}", old.body);
    assert_eq!(old.header("transfer-encoding"), None);
    assert_eq!(old.header("connection"), Some("close"));
    let ids: Vec<String> = parse(&old.body).1.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, made, "the HTTP/1.0 export holds the same rows");
}

#[test]
fn a_bad_row_refuses_the_whole_file_naming_row_and_field() {
    let s = server();
    let t = s.tenant(RW);
    let batch = unique("bad-rows");
    let text = format!(
        "code,amount,batch,discount_type,discount_value\n\
         {c}A,10.00,{batch},,\n\
         {c}B,5.50,{batch},,\n\
         {c}C,ten,{batch},,\n\
         {c}D,,{batch},percentage,101\n\
         {c}E,1.999,{batch},,\n",
        c = code_stem()
    );
    let r = import(s, &t.token, &text);
    assert_row_error(&r, 3, "amount");
    assert_row_error(&r, 4, "discount_value");
    assert_row_error(&r, 5, "amount");
    assert_eq!(
        r.json["errors"].as_array().map(Vec::len),
        Some(3),
        "{}",
        r.body
    );
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap_or("")
            .contains("row 3: amount"),
        "{}",
        r.body
    );
    assert_eq!(
        total(s, &t.token, &format!("filter[batch]={}", enc(&batch))),
        0
    );
}

#[test]
fn duplicate_codes_in_the_file_or_the_database_are_row_errors() {
    let s = server();
    let t = s.tenant(RW);
    let other = s.tenant(RW);
    // Codes are unique per group: only the group's own are taken (issue 19, item 2).
    let taken = format!("{}T", code_stem());
    s.create_voucher(&t.token, &json!({"amount": "1.00", "code": taken}));
    let batch = unique("dupes");
    let twice = format!("{}W", code_stem());
    let text = format!(
        "code,amount,batch\n{twice},1,{batch}\n{},2,{batch}\n{taken},3,{batch}\n",
        twice.to_lowercase()
    );
    let r = import(s, &t.token, &text);
    assert_row_error(&r, 2, "code");
    assert_row_error(&r, 3, "code");
    assert_eq!(
        r.json["errors"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.body
    );
    assert_eq!(
        total(s, &t.token, &format!("filter[batch]={}", enc(&batch))),
        0
    );
    assert_eq!(total(s, &t.token, &format!("filter[code]={twice}")), 0);

    // An id already in the database (another group's) is taken too.
    let id = id_of(&s.create_voucher(&other.token, &json!({"amount": "1.00"}))["id"]);
    let r = import(s, &t.token, &format!("id,amount,batch\n{id},1,{batch}\n"));
    assert_row_error(&r, 1, "id");
    let r = import(
        s,
        &t.token,
        &format!("id,amount,batch\nnot-an-id,1,{batch}\n"),
    );
    assert_row_error(&r, 1, "id");
    assert_eq!(
        total(s, &t.token, &format!("filter[batch]={}", enc(&batch))),
        0
    );
}

#[test]
fn unknown_column_empty_body_wrong_type_and_broken_rows_are_refused_whole() {
    let s = server();
    let t = s.tenant(RW);
    let batch = unique("refused");
    let r = import(
        s,
        &t.token,
        &format!("amount,colour,batch\n1,red,{batch}\n"),
    );
    assert_invalid_field(&r, "colour");
    let r = import(s, &t.token, &format!("amount,batch,amount\n1,{batch},2\n"));
    assert_invalid_field(&r, "amount");
    assert_problem(&import(s, &t.token, ""), 400, "malformed_request");
    assert_problem(&import(s, &t.token, " \r\n"), 400, "malformed_request");
    let broken = import(s, &t.token, &format!("amount,batch\n1,{batch}\n2\n"));
    let body = assert_problem(&broken, 400, "malformed_request");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("Row 2"),
        "{}",
        broken.body
    );
    let json_body = s.post("/v1/vouchers/import", &t.token, &json!({"amount": "1"}));
    assert_problem(&json_body, 415, "unsupported_media_type");
    assert_eq!(
        total(s, &t.token, &format!("filter[batch]={}", enc(&batch))),
        0
    );
}

#[test]
fn imports_belong_to_the_importing_client_and_need_the_write_scope() {
    let s = server();
    let t = s.tenant(RW);
    let outsider = s.tenant(RW);
    let batch = unique("owner");
    // A header-only file (an empty export) imports nothing and is fine.
    let empty = import(s, &t.token, "id,code,amount\n");
    assert_eq!(empty.status, 201, "{}", empty.body);
    assert_eq!(empty.json, json!({"imported": 0, "data": []}));
    let text = format!(
        "client_id,amount,batch,updated_at,deletable\n{},9.00,{batch},2020-01-01T00:00:00+00:00,true\n",
        outsider.client_id
    );
    let r = import(s, &t.token, &text);
    assert_eq!(r.status, 201, "{}", r.body);
    let id = id_of(&r.json["data"][0]["id"]);
    let v = s.get(&format!("/v1/vouchers/{id}"), &t.token);
    assert_eq!(
        v.json["client_id"],
        json!(t.client_id),
        "client_id column ignored"
    );
    assert_problem(
        &s.get(&format!("/v1/vouchers/{id}"), &outsider.token),
        404,
        "not_found",
    );

    let reader = s.tenant(&[READ]);
    assert_problem(
        &import(s, &reader.token, "amount\n1\n"),
        403,
        "insufficient_scope",
    );
    let writer = s.tenant(&[WRITE]);
    let r = s.get("/v1/vouchers/export.csv", &writer.token);
    assert_problem(&r, 403, "insufficient_scope");
    let anonymous = s.send("GET", "/v1/vouchers/export.csv", &[], None);
    assert_eq!(anonymous.status, 401);
}

#[test]
fn an_import_with_an_idempotency_key_runs_once() {
    let s = server();
    let t = s.tenant(RW);
    let batch = unique("idem");
    let text = format!("amount,batch\n1.00,{batch}\n2.00,{batch}\n");
    let auth = format!("Bearer {}", t.token);
    let send = || {
        s.send(
            "POST",
            "/v1/vouchers/import",
            &[("Authorization", &auth), ("Idempotency-Key", "import-1")],
            Some(("text/csv", text.as_bytes())),
        )
    };
    let first = send();
    assert_eq!(first.status, 201, "{}", first.body);
    let again = send();
    assert_eq!(again.status, 201);
    assert_eq!(again.json, first.json);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        total(s, &t.token, &format!("filter[batch]={}", enc(&batch))),
        2
    );
}

#[test]
fn cli_export_and_import_round_trip_and_refuse_a_bad_file_whole() {
    let source = TestServer::start();
    let admin = source.admin_token();
    let batch = unique("cli");
    let ids = seed(&source, &admin, &batch);
    let dir = TempDir::new();
    let file = dir.path().join("out.csv");
    let file_arg = file.to_str().expect("UTF-8 path");
    let filter = format!("filter[batch]={batch}");
    let out = source.cli(&["export", &filter, "--out", file_arg]);
    assert!(
        out.status.success(),
        "export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("the export file");
    assert_eq!(
        text,
        export(&source, &admin, &format!("filter[batch]={}", enc(&batch)))
    );
    let to_stdout = source.cli(&["export", &filter]);
    assert_eq!(String::from_utf8_lossy(&to_stdout.stdout), text);

    let fresh = TestServer::start();
    let out = fresh.cli(&["import", file_arg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "import: {stderr}");
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(printed, json!({"imported": ids.len()}));
    let token = fresh.admin_token();
    let after = export_rows(&fresh, &token, "");
    let before = parse(&text).1;
    assert_eq!(after.len(), before.len());
    for (a, b) in before.iter().zip(&after) {
        for column in CARRIED {
            assert_eq!(a[*column], b[*column], "{column} of {}", a["id"]);
        }
        assert_eq!(
            b["client_id"], fresh.admin_id,
            "the oldest admin client owns them"
        );
    }

    let bad = dir.path().join("bad.csv");
    let bad_batch = unique("cli-bad");
    std::fs::write(
        &bad,
        format!("amount,batch\n1.00,{bad_batch}\n-2,{bad_batch}\n3.00,{bad_batch}\n"),
    )
    .expect("write bad.csv");
    let out = fresh.cli(&["import", bad.to_str().expect("UTF-8 path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad file fails: {stderr}");
    assert!(stderr.contains("row 2: amount"), "{stderr}");
    assert_eq!(
        total(
            &fresh,
            &token,
            &format!("filter[batch]={}", enc(&bad_batch))
        ),
        0
    );
    let again = fresh.cli(&["import", file_arg]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(
        stderr.contains("row 1: code"),
        "codes are taken now: {stderr}"
    );
}

#[test]
fn cells_that_start_like_formulas_are_escaped_as_text_and_import_back_exactly() {
    let source = TestServer::start();
    let admin = source.admin_token();
    let fields = json!({
        "amount": "5.00",
        "label": "=HYPERLINK(\"http://evil.example\",\"Click\")",
        "note": "@SUM(1+1)*cmd|' /C calc'!A0",
        "sku": "+49 30 1234",
        "order_number": "-2+3",
        "customer_id": "\tTAB",
        "store_id": "\rCR",
        "product_id": "'s-Hertogenbosch",
        "reward_id": "a=b, no escape",
    });
    let id = id_of(&source.create_voucher(&admin, &fields)["id"]);
    let text = export(&source, &admin, &format!("filter[id]={id}"));
    let (_, rows) = parse(&text);
    let row = &rows[0];
    for column in [
        "label",
        "note",
        "sku",
        "order_number",
        "customer_id",
        "store_id",
        "product_id",
    ] {
        let want = format!("'{}", fields[column].as_str().expect("text"));
        assert_eq!(row[column], want, "{column} is written as text");
    }
    assert_eq!(row["reward_id"], "a=b, no escape");

    let fresh = TestServer::start();
    let token = fresh.admin_token();
    let r = import(&fresh, &token, &text);
    assert_eq!(r.status, 201, "import: {}", r.body);
    let back = fresh.get(&format!("/v1/vouchers/{id}"), &token);
    assert_eq!(back.status, 200, "{}", back.body);
    for (column, value) in fields.as_object().expect("fields") {
        if column != "amount" {
            assert_eq!(&back.json[column], value, "{column} came back as it was");
        }
    }
}

#[test]
fn an_admins_export_names_each_rows_group_and_a_group_filter_keeps_one() {
    let s = server();
    let a = s.tenant(RW);
    let b = s.tenant(RW);
    let batch = unique("groups");
    let in_a = id_of(&s.create_voucher(&a.token, &json!({"amount": "1.00", "batch": batch}))["id"]);
    let in_b = id_of(&s.create_voucher(&b.token, &json!({"amount": "2.00", "batch": batch}))["id"]);
    let admin = s.admin_token();
    let rows = export_rows(s, &admin, &format!("filter[batch]={}", enc(&batch)));
    let groups: BTreeMap<String, String> = rows
        .iter()
        .map(|r| (r["id"].clone(), r["group_id"].clone()))
        .collect();
    assert_eq!(
        groups,
        BTreeMap::from([
            (in_a.clone(), a.group_id.clone()),
            (in_b, b.group_id.clone())
        ])
    );
    let only_a = export_rows(
        s,
        &admin,
        &format!(
            "filter[batch]={}&filter[client.client_group_id]={}",
            enc(&batch),
            a.group_id
        ),
    );
    let ids: Vec<&str> = only_a.iter().map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, [in_a.as_str()]);
    let own = export_rows(s, &a.token, &format!("filter[batch]={}", enc(&batch)));
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["group_id"], a.group_id);
}
