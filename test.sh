#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: formatting, lints, unit tests and the integration
# tests that start the real binary. Installs whatever the tests need by itself.
#
# Every stage runs even when one before it failed, so one failure hides nothing; a summary at
# the end names the stages that failed, and the exit status is non-zero if any did.
set -uo pipefail
cd "$(dirname "$0")"

failed=()
passed=()

# stage NAME COMMAND...: runs one stage and notes how it ended.
stage() {
  local name=$1
  shift
  echo "== $name"
  if "$@"; then
    passed+=("$name")
  else
    echo "== $name: FAILED (exit $?)"
    failed+=("$name")
  fi
}

stage "cargo fmt --check" cargo fmt --all -- --check

stage "cargo clippy" cargo clippy --all-targets --quiet -- -D warnings

stage "fuzz test tools (tests/fuzz/install.sh)" tests/fuzz/install.sh

stage "client generators (tests/clients/install.sh)" tests/clients/install.sh

# A throwaway PostgreSQL cluster of the suite's own (initdb in a temporary directory, as an
# unprivileged user, on a free 127.0.0.1 port; PostgreSQL installed from Debian's packages when
# missing): no service of the machine is used or changed. Stopped and removed on exit, failed
# stages or not. Its admin URL is VOUCHD_TEST_PG for both runs below: the SQLite run has the
# PostgreSQL-only tests (tests/postgres.rs), which fail, never skip, without it.
pg_dir=
start_pg() {
  local out
  out=$(tests/pg/cluster.sh start) || return 1
  eval "$out"
  pg_dir=$VOUCHD_TEST_PG_DIR
}
stop_pg() {
  if [ -n "$pg_dir" ]; then
    tests/pg/cluster.sh stop "$pg_dir"
    pg_dir=
  fi
}
trap stop_pg EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
stage "PostgreSQL test cluster (tests/pg/cluster.sh)" start_pg

# A few test threads keep the servers the integration tests start from starving each other on
# a 2-core machine.
stage "cargo test" cargo test --all-targets -- --test-threads "${VOUCHD_TEST_THREADS:-4}"

# The integration suite again with every server on PostgreSQL: each test's server gets a fresh
# database on the cluster (tests/common/db.rs). The unit tests and the PostgreSQL-only tests
# ran above.
stage "integration tests on PostgreSQL" env VOUCHD_TEST_ENGINE=postgres \
  cargo test --test integration -- --skip postgres:: --test-threads "${VOUCHD_TEST_THREADS:-4}"

# The back-room page end to end: the real binary, Debian's chromium driven by playwright-core.
# install.sh installs what is missing (apt, npm) and skips what is there.
page_tests() {
  ui-tests/install.sh && cargo build --quiet && node --test ui-tests/page.test.mjs
}
stage "page tests (headless Chromium)" page_tests

echo
echo "== summary of the stages (${#failed[@]} of $(( ${#passed[@]} + ${#failed[@]} )) failed)"
for name in "${passed[@]}"; do echo "   ok      $name"; done
for name in "${failed[@]+"${failed[@]}"}"; do echo "   FAILED  $name"; done
[ ${#failed[@]} -eq 0 ]
