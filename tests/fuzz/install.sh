#!/usr/bin/env bash
# Installs what the fuzz test and the client-generation test (tests/openapi.rs) run: a Python
# venv in target/fuzz/venv with schemathesis and openapi-python-client and their dependencies
# at the versions pinned in requirements.txt. Idempotent: a
# venv already holding exactly these pins is left alone. Fails loudly rather than letting the
# test skip itself.
set -euo pipefail
cd "$(dirname "$0")/../.."

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
