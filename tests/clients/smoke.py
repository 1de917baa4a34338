"""Uses the client that openapi-python-client generated from the served /openapi.json against
the running server (tests/openapi.rs runs it with the package on PYTHONPATH): every module
imports, and a few calls send the generated models and parse the answers into them.

Environment: VOUCHD_URL (the server's base URL) and VOUCHD_TOKEN (a bearer token with every
scope).
"""

import importlib
import io
import os
import pkgutil

import vouchd_client
from vouchd_client import AuthenticatedClient
from vouchd_client.api.csv import import_vouchers
from vouchd_client.api.stats import stats
from vouchd_client.api.vouchers import create_voucher, get_voucher, voucher_barcode
from vouchd_client.models import ImportResult, Problem, Stats, Voucher, VoucherCreate
from vouchd_client.types import File

for module in pkgutil.walk_packages(vouchd_client.__path__, "vouchd_client."):
    importlib.import_module(module.name)

client = AuthenticatedClient(base_url=os.environ["VOUCHD_URL"], token=os.environ["VOUCHD_TOKEN"])

made = create_voucher.sync(client=client, body=VoucherCreate(amount="12.50", label="from python"))
assert isinstance(made, Voucher), made
assert (made.amount, made.remaining_amount, made.label) == ("12.50", "12.50", "from python"), made

again = get_voucher.sync(made.id, client=client)
assert isinstance(again, Voucher) and again.code == made.code, again

missing = get_voucher.sync("NOPE0000NOPE0000", client=client)
assert isinstance(missing, Problem), missing
assert (missing.status, missing.code) == (404, "not_found"), missing

refused = create_voucher.sync(client=client, body=VoucherCreate(amount="-1"))
assert isinstance(refused, Problem) and refused.status == 422, refused
assert refused.errors and refused.errors[0].field == "amount", refused

svg = voucher_barcode.sync(made.id, client=client)
assert isinstance(svg, str) and svg.lstrip().startswith("<"), svg

csv = b"amount,label\r\n3.00,imported by python\r\n"
imported = import_vouchers.sync(client=client, body=File(payload=io.BytesIO(csv), mime_type="text/csv"))
assert isinstance(imported, ImportResult) and imported.imported == 1, imported

figures = stats.sync(client=client)
assert isinstance(figures, Stats), figures
assert any(item.currency == "EUR" for item in figures.liability), figures

print("the generated Python client works")
