"""Schemathesis hooks for the JTL dialect's fuzz test (tests/jtl.rs runs it).

- `jtl_error_body`: every error is JTL's body, `{status, code, message}` (plus `errors` of
  `{code, property, rule, message}`), whose `status` is the HTTP status.
- Path ids, codes and charge ids are swapped, two draws out of three, for those the test seeded,
  so reservations, charges, refunds and recharges reach real vouchers instead of 404 only. The
  choice hangs on a CRC of the drawn value, so a seed replays a run.
"""

import json
import os
import zlib

import schemathesis


def _seeded(name):
    return [v for v in os.environ.get(name, "").split(",") if v]


VOUCHER_IDS = _seeded("VOUCHD_JTL_VOUCHER_IDS")
CODES = _seeded("VOUCHD_JTL_CODES")
RESERVATIONS = _seeded("VOUCHD_JTL_RESERVATIONS")
# `VOUCHER_ID:CHARGE_ID` pairs.
CHARGES = [tuple(pair.split(":", 1)) for pair in _seeded("VOUCHD_JTL_CHARGES")]
# `CODE:PIN` of the seeded printed vouchers.
PINS = dict(pair.split(":", 1) for pair in _seeded("VOUCHD_JTL_PINS"))


def _crc(value):
    return zlib.crc32(repr(value).encode("utf-8", "surrogatepass"))


def _pick(value, choices):
    if not choices or not isinstance(value, str):
        return value
    crc = _crc(value)
    if crc % 3 == 0:
        return value
    return choices[crc % len(choices)]


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if not path_parameters:
        return path_parameters
    path = ctx.operation.path
    if path == "/vouchers/{id}/charges/{charge_id}" and CHARGES:
        crc = _crc((path_parameters.get("id"), path_parameters.get("charge_id")))
        if crc % 3 != 0:
            path_parameters["id"], path_parameters["charge_id"] = CHARGES[crc % len(CHARGES)]
        return path_parameters
    if path.startswith("/vouchers/{id}"):
        path_parameters["id"] = _pick(path_parameters.get("id"), VOUCHER_IDS)
    elif path == "/reservations/{id}/charge":
        path_parameters["id"] = _pick(path_parameters.get("id"), RESERVATIONS)
    elif path == "/charges/{id}/refund":
        path_parameters["id"] = _pick(path_parameters.get("id"), [c for _, c in CHARGES])
    return path_parameters


@schemathesis.hook
def before_call(ctx, case, kwargs):
    path = case.operation.path
    body = case.body
    if not isinstance(body, dict):
        return
    if path in ("/reservations", "/vouchers/recharge"):
        if isinstance(body.get("code"), str):
            body["code"] = _pick(body["code"], CODES)
        if isinstance(body.get("id"), str):
            body["id"] = _pick(body["id"], VOUCHER_IDS)
        code = body.get("code")
        if isinstance(body.get("pin"), str) and isinstance(code, str) and code in PINS:
            body["pin"] = PINS[code]
    # A valid but unknown currency becomes the seeds' own two draws out of three, so money
    # operations get past it; an invalid one stays invalid.
    currency = body.get("currency")
    if path in ("/reservations", "/vouchers/recharge", "/charges/{id}/refund") and isinstance(currency, str):
        if len(currency) == 3 and currency.isascii() and currency.isalpha():
            body["currency"] = _pick(currency, ["EUR", "EUR"])


@schemathesis.check
def jtl_error_body(ctx, response, case):
    """Every error is JTL's error body whose `status` is the HTTP status."""
    status = response.status_code
    if status < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{status} error body is not JSON: {response.content[:200]!r}")
    if not isinstance(body, dict):
        raise AssertionError(f"error body is not an object: {body!r}")
    if body.get("status") != status:
        raise AssertionError(f"error `status` {body.get('status')!r} differs from HTTP {status}")
    for member in ("code", "message"):
        if not isinstance(body.get(member), str):
            raise AssertionError(f"error without a string `{member}`: {body!r}")
    for error in body.get("errors", []):
        if not isinstance(error, dict) or not all(
            isinstance(error.get(k), str) for k in ("code", "property", "rule", "message")
        ):
            raise AssertionError(f"an entry of `errors` is not {{code, property, rule, message}}: {body!r}")
    return None
