#!/usr/bin/env bash
# Installs what the back-room page's end-to-end tests need, skipping whatever is already there:
# Debian's chromium package (with a font, so screenshots show text), Node.js and npm if absent,
# and playwright-core from npm into ui-tests/node_modules at the version package-lock.json pins.
# Safe to run again and again; test.sh runs it before the page tests.
set -euo pipefail
cd "$(dirname "$0")"

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "ui-tests/install.sh: root is needed to run: $*" >&2
        exit 1
    fi
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/lib/chromium/chromium ]; then
    missing+=(chromium)
fi
installed fonts-dejavu-core || missing+=(fonts-dejavu-core)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "ui-tests/install.sh: installing ${missing[*]} (apt)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

want=$(node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "try { require('./node_modules/playwright-core/package.json').version } catch { '' }")
if [ "$want" != "$have" ]; then
    echo "ui-tests/install.sh: installing playwright-core $want (npm)"
    npm ci --no-audit --no-fund --loglevel=error
fi
