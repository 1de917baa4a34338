"""The vouchd walk-through with Python's http.client on one keep-alive connection: token,
create, a list answer over 100 KB, a charge, the CSV export stream. Prints a JSON summary.

Usage: python3 http_client.py HOST:PORT CLIENT_ID SECRET"""
import base64
import http.client
import json
import sys

host, client_id, secret = sys.argv[1:4]
conn = http.client.HTTPConnection(host, timeout=30)


def call(method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data


basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
status, _, data = call("POST", "/oauth/token", "grant_type=client_credentials",
                       {"Authorization": f"Basic {basic}",
                        "Content-Type": "application/x-www-form-urlencoded"})
assert status == 200, (status, data)
auth = {"Authorization": "Bearer " + json.loads(data)["access_token"]}
json_auth = dict(auth, **{"Content-Type": "application/json"})

status, _, data = call("POST", "/v1/vouchers", json.dumps({"amount": "50.00"}), json_auth)
assert status == 201, (status, data)
voucher = json.loads(data)["id"]

status, _, listed = call("GET", "/v1/vouchers?per_page=500", None, auth)
assert status == 200, status

status, _, data = call("POST", f"/v1/vouchers/{voucher}/charges",
                       json.dumps({"type": "charge", "amount": "10.00"}), json_auth)
assert status == 201, (status, data)
status, _, data = call("GET", f"/v1/vouchers/{voucher}", None, auth)
remaining = json.loads(data)["remaining_amount"]

status, headers, csv = call("GET", "/v1/vouchers/export.csv", None, auth)
assert status == 200, status
print(json.dumps({
    "list_bytes": len(listed),
    "list_items": len(json.loads(listed)["data"]),
    "remaining": remaining,
    "export_rows": csv.decode().count("\n") - 1,
    "export_chunked": headers.get("transfer-encoding") == "chunked",
}))
