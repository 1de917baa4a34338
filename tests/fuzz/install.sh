#!/usr/bin/env bash
# Installs what the fuzz tests (tests/openapi.rs and the dialects'), the client-generation test
# and the real-client tests (tests/http_clients.rs) run: a Python venv in target/fuzz/venv with
# schemathesis, openapi-python-client and requests at the versions pinned in requirements.txt,
# and wrk from Debian. Idempotent: what is there is left alone. Fails loudly rather than letting
# a test skip itself.
set -euo pipefail
cd "$(dirname "$0")/../.."

# wrk for the real-client tests, curl for those and the README's shell blocks.
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    sudo=$( [ "$(id -u)" -eq 0 ] || echo sudo )
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv=target/fuzz/venv
requirements=tests/fuzz/requirements.txt
stamp=$venv/installed-requirements.txt

if [ -x "$venv/bin/schemathesis" ] && [ -x "$venv/bin/openapi-python-client" ] &&
    cmp -s "$requirements" "$stamp"; then
    exit 0
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "tests/fuzz/install.sh: the fuzz test needs Python >= 3.11 with venv ($python)" >&2
    exit 1
fi

echo "== installing schemathesis and openapi-python-client into $venv"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --requirement "$requirements"
"$venv/bin/schemathesis" --version
"$venv/bin/openapi-python-client" --version
cp "$requirements" "$stamp"
