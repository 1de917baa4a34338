"""The vouchd walk-through with `requests` (a pooled Session): token, create, a list answer
over 100 KB, a charge, the CSV export read as a stream. Prints a JSON summary.

Usage: python3 requests_client.py BASE_URL CLIENT_ID SECRET"""
import json
import sys

import requests

base, client_id, secret = sys.argv[1:4]
s = requests.Session()
r = s.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"},
           auth=(client_id, secret), timeout=30)
r.raise_for_status()
s.headers["Authorization"] = "Bearer " + r.json()["access_token"]

r = s.post(f"{base}/v1/vouchers", json={"amount": "50.00"}, timeout=30)
assert r.status_code == 201, r.text
voucher = r.json()["id"]
listed = s.get(f"{base}/v1/vouchers", params={"per_page": 500}, timeout=30)
assert listed.status_code == 200
r = s.post(f"{base}/v1/vouchers/{voucher}/charges",
           json={"type": "charge", "amount": "10.00"}, timeout=30)
assert r.status_code == 201, r.text
remaining = s.get(f"{base}/v1/vouchers/{voucher}", timeout=30).json()["remaining_amount"]
rows = 0
with s.get(f"{base}/v1/vouchers/export.csv", stream=True, timeout=30) as export:
    assert export.status_code == 200
    chunked = export.headers.get("Transfer-Encoding") == "chunked"
    # iter_lines yields an empty line when a chunk ends between CR and LF: count rows only.
    for line in export.iter_lines():
        if line:
            rows += 1
print(json.dumps({
    "list_bytes": len(listed.content),
    "list_items": len(listed.json()["data"]),
    "remaining": remaining,
    "export_rows": rows - 1,
    "export_chunked": chunked,
}))
