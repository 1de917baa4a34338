//! The back-room page's server side (issue 7): `GET /` and its assets with a same-origin
//! Content-Security-Policy, the print sheet's barcode and QR SVGs, and the list of a voucher's
//! live holds the page needs to release one. The page itself is driven in Chromium by
//! `ui-tests/page.test.mjs`.

use crate::common::*;
use serde_json::json;
use std::sync::OnceLock;

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(TestServer::start)
}

#[test]
fn the_page_is_served_at_root_with_a_same_origin_content_security_policy() {
    let s = server();
    let r = s.send("GET", "/", &[], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type(), "text/html; charset=utf-8");
    assert!(r
        .body
        .contains("<script type=\"module\" src=\"/ui/app.js\"></script>"));
    let csp = r.header("content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' blob:",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe") && !csp.contains("http"), "{csp}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    // No credentials are needed to load the page; it asks for them itself.
    assert!(r.header("www-authenticate").is_none());
}

#[test]
fn every_asset_is_served_with_its_type_and_unknown_ones_are_404_problems() {
    let s = server();
    for (path, kind) in [
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/api.js", "text/javascript; charset=utf-8"),
        ("/ui/dom.js", "text/javascript; charset=utf-8"),
        ("/ui/voucher.js", "text/javascript; charset=utf-8"),
        ("/ui/issue.js", "text/javascript; charset=utf-8"),
        ("/ui/sheet.js", "text/javascript; charset=utf-8"),
        ("/ui/dashboard.js", "text/javascript; charset=utf-8"),
        ("/ui/webhooks.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let r = s.send("GET", path, &[], None);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.content_type(), kind, "{path}");
        assert!(!r.body.is_empty(), "{path}");
        assert!(r.header("content-security-policy").is_some(), "{path}");
    }
    assert_problem(&s.send("GET", "/ui/nope.js", &[], None), 404, "not_found");
    assert_problem(
        &s.send("GET", "/ui/../Cargo.toml", &[], None),
        404,
        "not_found",
    );
    let r = s.send("POST", "/", &[], Some(("text/plain", b"x")));
    assert_problem(&r, 405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
}

/// The width and height of an SVG's `viewBox="0 0 W H"`.
fn view_box(svg: &str) -> (u32, u32) {
    let rest = svg.split("viewBox=\"0 0 ").nth(1).expect("a viewBox");
    let mut parts = rest.split(['"', ' ']);
    let w = parts.next().and_then(|w| w.parse().ok()).expect("width");
    let h = parts.next().and_then(|h| h.parse().ok()).expect("height");
    (w, h)
}

#[test]
fn barcode_and_qr_svgs_of_a_voucher_follow_its_scope_and_tenancy() {
    let s = server();
    let a = s.tenant(RW);
    let b = s.tenant(RW);
    let stem = code_stem();
    let code = format!("{stem}AB");
    let v = s.create_voucher(&a.token, &json!({"amount": "10", "code": code}));
    let id = id_of(&v["id"]);
    let bar = s.get(&format!("/v1/vouchers/{id}/barcode.svg"), &a.token);
    assert_eq!(bar.status, 200, "{}", bar.body);
    assert_eq!(bar.content_type(), "image/svg+xml");
    assert!(bar.body.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    // Quiet zone, start, eight characters, check symbol, stop, quiet zone; 40 modules tall.
    assert_eq!(view_box(&bar.body), (10 + 11 + 8 * 11 + 11 + 13 + 10, 40));
    assert!(!bar.body.contains("<script"));
    let qr = s.get(&format!("/v1/vouchers/{id}/qr.svg"), &a.token);
    assert_eq!(qr.status, 200, "{}", qr.body);
    assert_eq!(qr.content_type(), "image/svg+xml");
    assert_eq!(
        view_box(&qr.body),
        (29, 29),
        "version 1 with its quiet zone"
    );
    assert!(qr
        .header("content-security-policy")
        .is_some_and(|c| c.starts_with("default-src 'none'")));
    // Another group's voucher does not exist for it; the symbols need a token with
    // vouchers:read.
    for name in ["barcode.svg", "qr.svg"] {
        let path = format!("/v1/vouchers/{id}/{name}");
        assert_problem(&s.get(&path, &b.token), 404, "not_found");
        assert_problem(&s.send("GET", &path, &[], None), 401, "unauthorized");
        let writer = s.tenant(&[WRITE]);
        assert_problem(&s.get(&path, &writer.token), 403, "insufficient_scope");
        assert_problem(
            &s.get(&format!("/v1/vouchers/NOSUCHVOUCHER000/{name}"), &a.token),
            404,
            "not_found",
        );
    }
    // The admin sees every group's.
    let r = s.get(&format!("/v1/vouchers/{id}/qr.svg"), &s.admin_token());
    assert_eq!(r.status, 200);
}

#[test]
fn reservations_list_shows_live_holds_newest_first_in_pages() {
    let s = server();
    let t = s.tenant(CASHIER);
    let other = s.tenant(CASHIER);
    let v = s.create_voucher(&t.token, &json!({"amount": "50.00"}));
    let id = id_of(&v["id"]);
    let path = format!("/v1/vouchers/{id}/reservations");
    let mut holds = Vec::new();
    for (amount, order) in [("1.00", "A"), ("2.00", "B"), ("3.00", "C")] {
        let r = s.post(
            &path,
            &t.token,
            &json!({"amount": amount, "order_number": order}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        holds.push(id_of(&r.json["id"]));
    }
    let r = s.delete(&format!("{path}/{}", holds[1]), &t.token);
    assert_eq!(r.status, 204, "{}", r.body);

    let r = s.get(&path, &t.token);
    assert_eq!(r.status, 200, "{}", r.body);
    let data = r.json["data"].as_array().expect("data");
    let listed: Vec<(String, &str, &str)> = data
        .iter()
        .map(|h| {
            (
                id_of(&h["id"]),
                h["amount"].as_str().unwrap_or(""),
                h["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (holds[2].clone(), "3.00", "held"),
            (holds[0].clone(), "1.00", "held")
        ]
    );
    assert_eq!(data[0]["order_number"], json!("C"));
    assert_eq!(data[0]["voucher_id"], json!(id));
    parse_ts(data[0]["expires_at"].as_str().expect("expires_at"));
    assert_eq!(r.json["meta"]["total"], json!(2));
    assert_eq!(
        cents(&s.get(&format!("/v1/vouchers/{id}"), &t.token).json["held_amount"]),
        400
    );

    let page2 = s.get(&format!("{path}?per_page=1&page=2"), &t.token);
    assert_eq!(page2.status, 200);
    assert_eq!(page2.json["data"][0]["id"], json!(holds[0]));
    assert_eq!(page2.json["meta"]["last_page"], json!(2));

    assert_invalid_param(
        &s.get(&format!("{path}?filter%5Bamount%5D=1"), &t.token),
        "filter[amount]",
    );
    assert_invalid_param(&s.get(&format!("{path}?per_page=0"), &t.token), "per_page");
    assert_problem(&s.get(&path, &other.token), 404, "not_found");
    let reader = s.tenant(&[READ]);
    assert_problem(&s.get(&path, &reader.token), 403, "insufficient_scope");
}
