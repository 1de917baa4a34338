#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: formatting, lints, unit tests and the integration
# tests that start the real binary. Installs whatever the tests need by itself.
set -euo pipefail
cd "$(dirname "$0")"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

echo "== fuzz test tools (tests/fuzz/install.sh)"
tests/fuzz/install.sh

echo "== cargo test"
# A few test threads keep the servers the integration tests start from starving each other on
# a 2-core machine.
cargo test --all-targets -- --test-threads "${VOUCHD_TEST_THREADS:-4}"

echo "== page tests (headless Chromium)"
# The back-room page end to end: the real binary, Debian's chromium driven by playwright-core.
# install.sh installs what is missing (apt, npm) and skips what is there.
ui-tests/install.sh
cargo build --quiet
node --test ui-tests/page.test.mjs

echo "== vendored tiny_http's own unit tests (the patched thread pool among them)"
CARGO_TARGET_DIR=target cargo test --quiet --manifest-path vendor/tiny_http/Cargo.toml --lib
rm -f vendor/tiny_http/Cargo.lock
