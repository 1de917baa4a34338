"""Schemathesis hooks for vouchd's fuzz test (tests/openapi.rs runs it).

- `problem_details`: a check that every error is RFC 9457 problem+json whose `status` equals the
  HTTP status (the token endpoint's RFC 6749 errors excepted), for documented and undocumented
  answers alike (405s included).
- Path ids and codes are swapped, part of the time, for those of vouchers the test seeded, so
  charges, reservations and the POS routes reach real vouchers instead of 404 only. The choice
  hangs on a CRC of the drawn value, never on Python's salted hash, so a seed replays a run.
- An `Idempotency-Key` is made unique to its request (a CRC of method, path and body is
  appended), so the few keys Hypothesis likes to draw ("0", "00") replay only identical
  requests instead of turning every later case into a 422 `idempotency_key_reused`. A key's
  length stays valid or invalid as drawn.
- The POS routes and `/v1/validate` run with a tenant's token (a client of a group of its own)
  instead of the admin's, so tenancy is exercised and their code look-ups count toward a
  guessing throttle of their own.
- The run's own clients (admin, tenant) are never revoked: schemathesis picks client ids out of
  `GET /v1/clients` and would end its own tokens; a seeded spare client is revoked instead.
- Batch counts are capped so a run does not spend its time writing 100 000 vouchers at once;
  the cap keeps a valid count valid and an invalid one invalid.
"""

import json
import os
import zlib

import schemathesis

BATCH_CAP = 20


def _seeded(name):
    return [v for v in os.environ.get(name, "").split(",") if v]


VOUCHER_IDS = _seeded("VOUCHD_FUZZ_VOUCHER_IDS")
CODES = _seeded("VOUCHD_FUZZ_CODES")
POS_CODES = _seeded("VOUCHD_FUZZ_POS_CODES")


ADMIN_TOKEN = os.environ.get("VOUCHD_FUZZ_TOKEN", "")
TENANT_TOKEN = os.environ.get("VOUCHD_FUZZ_TENANT_TOKEN", "")
# `VOUCHER_ID:RESERVATION_ID` pairs.
HOLDS = [tuple(pair.split(":", 1)) for pair in _seeded("VOUCHD_FUZZ_HOLDS")]
TENANT_PATHS = ("/pos/v1/", "/v1/validate")
PROTECTED_CLIENTS = set(_seeded("VOUCHD_FUZZ_PROTECTED_CLIENTS"))
SPARE_CLIENTS = _seeded("VOUCHD_FUZZ_SPARE_CLIENTS")


def _crc(value):
    return zlib.crc32(repr(value).encode("utf-8", "surrogatepass"))


def _pick(value, choices):
    """A seeded value for two draws out of three, chosen by the drawn value itself."""
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
    if "rid" in path_parameters and HOLDS:
        crc = _crc((path_parameters.get("id"), path_parameters["rid"]))
        if crc % 3 != 0:
            path_parameters["id"], path_parameters["rid"] = HOLDS[crc % len(HOLDS)]
        return path_parameters
    if path.startswith("/v1/vouchers/{id}") and "id" in path_parameters:
        path_parameters["id"] = _pick(path_parameters["id"], VOUCHER_IDS)
    if path == "/pos/v1/vouchers/{code}" and "code" in path_parameters:
        path_parameters["code"] = _pick(path_parameters["code"], POS_CODES)
    return path_parameters


@schemathesis.hook
def before_call(ctx, case, kwargs):
    path = case.operation.path
    # Here rather than in map_path_parameters: ids picked out of earlier responses are filled in
    # after the map hooks run.
    params = case.path_parameters
    if path == "/v1/clients/{id}" and params and params.get("id") in PROTECTED_CLIENTS:
        params["id"] = SPARE_CLIENTS[_crc(params["id"]) % len(SPARE_CLIENTS)]
    if path == "/v1/vouchers/batch" and isinstance(case.body, dict):
        count = case.body.get("count")
        if isinstance(count, int) and not isinstance(count, bool) and BATCH_CAP < count <= 100_000:
            case.body["count"] = BATCH_CAP
    if path == "/v1/validate" and isinstance(case.body, dict) and "code" in case.body:
        case.body["code"] = _pick(case.body["code"], CODES)
    headers = case.headers if case.headers is not None else {}
    for name in list(headers):
        value = headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and 1 <= len(value) <= 255:
            stamp = _crc((case.method, case.formatted_path, case.body))
            headers[name] = f"{value[:246]}-{stamp:08x}"
        if (
            name.lower() == "authorization"
            and path.startswith(TENANT_PATHS)
            and TENANT_TOKEN
            and value == f"Bearer {ADMIN_TOKEN}"
        ):
            headers[name] = f"Bearer {TENANT_TOKEN}"


@schemathesis.check
def problem_details(ctx, response, case):
    """Every error is problem+json whose `status` is the HTTP status."""
    status = response.status_code
    if status < 400:
        return None
    media = response.headers.get("content-type", [""])
    media = (media[0] if isinstance(media, list) else media).split(";")[0].strip().lower()
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{status} error body is not JSON: {response.content[:200]!r}")
    if case.operation.path == "/oauth/token" and media == "application/json":
        if not isinstance(body, dict) or not isinstance(body.get("error"), str):
            raise AssertionError(f"token endpoint error without an RFC 6749 `error`: {body!r}")
        return None
    if media != "application/problem+json":
        raise AssertionError(f"{status} error is {media!r}, not application/problem+json")
    if not isinstance(body, dict):
        raise AssertionError(f"problem body is not an object: {body!r}")
    for member in ("type", "title", "detail", "code"):
        if not isinstance(body.get(member), str):
            raise AssertionError(f"problem without a string `{member}`: {body!r}")
    if body.get("status") != status:
        raise AssertionError(f"problem `status` {body.get('status')!r} differs from HTTP {status}")
    return None
