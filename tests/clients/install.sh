#!/usr/bin/env bash
# Installs what the client-generation test (tests/openapi.rs) runs on the Node side:
# openapi-typescript and the TypeScript compiler from npm into tests/clients/node_modules, at
# the versions package-lock.json pins (Node.js and npm from Debian's packages if absent). The
# Python generator, openapi-python-client, comes with tests/fuzz/install.sh. Skips whatever is
# already there; test.sh runs it before the tests.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        echo "tests/clients/install.sh: Node.js and npm are needed (apt-get install nodejs npm)" >&2
        exit 1
    fi
    echo "tests/clients/install.sh: installing nodejs and npm (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

pinned() {
    node -p "require('./package-lock.json').packages['node_modules/$1'].version"
}
present() {
    node -p "try { require('./node_modules/$1/package.json').version } catch { '' }"
}
for package in openapi-typescript typescript; do
    if [ "$(pinned "$package")" != "$(present "$package")" ]; then
        echo "tests/clients/install.sh: installing openapi-typescript $(pinned openapi-typescript) and typescript $(pinned typescript) (npm)"
        npm ci --no-audit --no-fund --loglevel=error
        break
    fi
done
