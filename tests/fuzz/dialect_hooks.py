"""Schemathesis hooks for the vendor dialects' fuzz test (tests/dialect_fuzz.rs runs it).

- `dialect_errors`: a check that every error has the dialect's own shape, for documented and
  undocumented answers alike (405s included): CareCloud's `{"error": {type, exception, title,
  detail}}` as application/json, the POS system's problem+json whose `status` is the HTTP status.
  `VOUCHD_FUZZ_DIALECT` says which.
- Path ids and codes are swapped, part of the time, for those the test seeded, so the routes
  reach real vouchers instead of empty lists and 404s only. The choice hangs on a CRC of the
  drawn value, never on Python's salted hash, so a seed replays a run.
"""

import json
import os
import zlib

import schemathesis

DIALECT = os.environ.get("VOUCHD_FUZZ_DIALECT", "")


def _seeded(name):
    return [v for v in os.environ.get(name, "").split(",") if v]


# Path parameter name -> the seeded values drawn ones are swapped for.
SEEDS = {
    "code": _seeded("VOUCHD_FUZZ_POS_CODES"),
    "customer_id": _seeded("VOUCHD_FUZZ_CUSTOMERS"),
    "purchase_id": _seeded("VOUCHD_FUZZ_PURCHASES"),
}


def _pick(value, choices):
    """A seeded value for two draws out of three, chosen by the drawn value itself."""
    if not choices or not isinstance(value, str):
        return value
    crc = zlib.crc32(repr(value).encode("utf-8", "surrogatepass"))
    if crc % 3 == 0:
        return value
    return choices[crc % len(choices)]


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    for name, choices in SEEDS.items():
        if path_parameters and name in path_parameters:
            path_parameters[name] = _pick(path_parameters[name], choices)
    return path_parameters


def _media(response):
    media = response.headers.get("content-type", [""])
    return (media[0] if isinstance(media, list) else media).split(";")[0].strip().lower()


@schemathesis.check
def dialect_errors(ctx, response, case):
    """Every error in the dialect's own error shape."""
    status = response.status_code
    if status < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{status} error body is not JSON: {response.content[:200]!r}")
    media = _media(response)
    if DIALECT == "carecloud":
        if media != "application/json":
            raise AssertionError(f"{status} error is {media!r}, not application/json")
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            raise AssertionError(f"error body without an `error` object: {body!r}")
        for member in ("type", "exception", "title", "detail"):
            if not isinstance(error.get(member), str):
                raise AssertionError(f"error without a string `{member}`: {body!r}")
        if status == 400 and not error.get("error_data", {}).get("invalid_params"):
            raise AssertionError(f"400 without invalid_params: {body!r}")
        return None
    if media != "application/problem+json":
        raise AssertionError(f"{status} error is {media!r}, not application/problem+json")
    if not isinstance(body, dict):
        raise AssertionError(f"problem body is not an object: {body!r}")
    for member in ("type", "title", "detail"):
        if not isinstance(body.get(member), str):
            raise AssertionError(f"problem without a string `{member}`: {body!r}")
    if body.get("status") != status:
        raise AssertionError(f"problem `status` {body.get('status')!r} differs from HTTP {status}")
    return None
