#!/usr/bin/env bash
# Installs what the fuzz test (tests/openapi.rs) and the real-client tests (tests/http_clients.rs)
# run: a Python venv in target/fuzz/venv with schemathesis and requests at the versions pinned
# in requirements.txt, and wrk from Debian. Idempotent: what is there is left alone. Fails
# loudly rather than letting a test skip itself.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v wrk >/dev/null; then
    echo "== installing wrk"
    sudo=$( [ "$(id -u)" -eq 0 ] || echo sudo )
    $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi

venv=target/fuzz/venv
requirements=tests/fuzz/requirements.txt
stamp=$venv/installed-requirements.txt

if [ -x "$venv/bin/schemathesis" ] && cmp -s "$requirements" "$stamp"; then
    exit 0
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "tests/fuzz/install.sh: the fuzz test needs Python >= 3.11 with venv ($python)" >&2
    exit 1
fi

echo "== installing schemathesis into $venv"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --requirement "$requirements"
"$venv/bin/schemathesis" --version
cp "$requirements" "$stamp"
