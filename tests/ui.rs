//! The back-room page's server side (issue 7). The list of a voucher's live holds, which the
//! page needs to release one.

use crate::common::*;
use serde_json::json;
use std::sync::OnceLock;

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(TestServer::start)
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
