#!/usr/bin/env bash
# The vouchd benchmark: builds release, measures the in-process floor and the real server under
# load from a second process on 127.0.0.1, prints a table and rewrites bench/RESULTS.md.
#
#   bench/run.sh           full run (10 s per HTTP scenario)
#   bench/run.sh --quick   about a minute (3 s per scenario, fewer floor charges)
#
# Scenario "charges": 64 concurrent keep-alive clients charging 0.01 on random cards out of
# 1 000, against `vouchd serve --threads 64 --sync full` and `--sync normal` (one worker per
# client: a group commit can only hold as many charges as there are requests in flight). Floor: the same charge
# transaction in-process (bench/floor.rs), one COMMIT per charge and 100 per COMMIT.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=10
floor_charges=2000
tmp_results=$(mktemp)   # a --quick run does not overwrite the committed figures
concurrency=64
results=bench/RESULTS.md
case "${1:-}" in
    "") ;;
    --quick)
        seconds=3
        floor_charges=500
        results="$tmp_results" ;;
    *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac

cargo build --release --quiet --bin vouchd --example bench-floor --example bench-load
bin=target/release
tmp=$(mktemp -d)
server_pid=
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

field() { # field NAME JSON → the number after "NAME":
    grep -o "\"$1\":[0-9.]*" <<<"$2" | head -1 | cut -d: -f2
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo "floor: $floor_charges in-process charges per mode (sync full, then normal)" >&2
floor_full=$("$bin/examples/bench-floor" "$tmp" "$floor_charges" full)
floor_normal=$("$bin/examples/bench-floor" "$tmp" "$floor_charges" normal)
one_full=$(field per_sec "$(grep '"one"' <<<"$floor_full")")
grouped_full=$(field per_sec "$(grep '"grouped"' <<<"$floor_full")")
one_normal=$(field per_sec "$(grep '"one"' <<<"$floor_normal")")
grouped_normal=$(field per_sec "$(grep '"grouped"' <<<"$floor_normal")")

declare -A http rss
for sync in full normal; do
    log="$tmp/serve-$sync.log"
    "$bin/vouchd" serve --db "$tmp/$sync.db" --listen 127.0.0.1:0 --sync "$sync" --threads "$concurrency" --rate-limit 0 2>"$log" &
    server_pid=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$log" && break
        sleep 0.1
    done
    base=$(grep -o 'listening on http://[0-9.:]*' "$log" | cut -d' ' -f3 || true)
    if [[ -z "$base" ]]; then
        echo "vouchd serve did not start:" >&2
        cat "$log" >&2
        exit 1
    fi
    admin=$(grep 'created admin client' "$log")
    id=$(grep -o '"client_id":"[^"]*"' <<<"$admin" | cut -d'"' -f4)
    secret=$(grep -o '"client_secret":"[^"]*"' <<<"$admin" | cut -d'"' -f4)
    echo "charges over HTTP: --sync $sync, $concurrency clients, ${seconds}s" >&2
    http[$sync]=$("$bin/examples/bench-load" "$base" "$id" "$secret" "$concurrency" "$seconds")
    rss[$sync]=$(awk '/VmHWM/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null || echo 0)
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
done

row() { # row SYNC FLOOR_ONE FLOOR_GROUPED
    local j=${http[$1]}
    printf '| charges, %s clients, `--sync %s` | %s | %s | %s | %s | %s MiB | %s | %s× | %s× |\n' \
        "$concurrency" "$1" "$(field per_sec "$j")" "$(field p50_ms "$j")" "$(field p99_ms "$j")" \
        "$(field errors "$j")" "$(( ${rss[$1]} / 1024 ))" "$2" \
        "$(ratio "$(field per_sec "$j")" "$2")" "$(ratio "$(field per_sec "$j")" "$3")"
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
table=$(
    echo '| scenario | charges/s | p50 ms | p99 ms | errors | peak RSS | floor one-commit/s | ratio to one-commit | ratio to grouped |'
    echo '|---|---|---|---|---|---|---|---|---|'
    row full "$one_full" "$grouped_full"
    row normal "$one_normal" "$grouped_normal"
)
floors=$(
    echo '| floor (in-process, same transaction) | `--sync full` | `--sync normal` |'
    echo '|---|---|---|'
    echo "| one COMMIT per charge | $one_full/s | $one_normal/s |"
    echo "| 100 charges per COMMIT | $grouped_full/s | $grouped_normal/s |"
)
echo
echo "$table"
echo
echo "$floors"

full_ratio=$(ratio "$(field per_sec "${http[full]}")" "$one_full")
verdict=$(awk -v r="$full_ratio" 'BEGIN { print (r >= 2.5 ? "met" : "NOT met") }')
cat >"$results" <<MD
# Benchmark results

Command: \`bench/run.sh${1:+ $1}\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)).
Machine: $(nproc) cores ($cpu), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr).
Load: \`bench-load\` in a second process on 127.0.0.1, $concurrency closed-loop keep-alive connections (each waits for its answer), server \`--threads $concurrency\`, ${seconds} s per scenario, 0.01 charges on random cards out of 1 000.
Floor: \`bench-floor\`, the store's own charge transaction in-process on a fresh database, $floor_charges charges per mode.

$table

$floors

Target (issue 3): with \`--sync full\`, charges over HTTP at least 2.5× the one-commit-per-charge floor.
This run: ${full_ratio}× — target $verdict.

Reading the figures: "ratio to one-commit" is what grouping buys over committing each charge
alone; "ratio to grouped" is how much of the in-process grouped rate survives HTTP, auth, JSON
and the hand-offs between connection, worker and writer threads. Load and server share the
machine's cores, and figures on a shared VM move by ±20 % between runs.

What bounds the charge rate (profiled 2026-11-23 with \`perf record -g\` on the server and a
timing probe in the writer loop, 64 clients, \`--sync full\`, at commit 4980c32: before the
access log and the metrics, which now add a write to stderr and a short lock to every request):
- With 8 worker threads at most 8 charges are in flight, so groups average 4 and each COMMIT
  (≈ 0.7 ms, mostly the WAL fsync) carries only 4 charges: ~4 000/s. With \`--threads 64\`
  (one worker per client, as this script runs the server; the default stays 4 × cores as
  SPEC §1 fixes it) groups hold 25–28 and the rate is 5 000–6 500/s.
- The writer is then never idle (its queue is never empty) but is on a CPU only ~40 % of the
  time: per charge ~85 µs of running the operation (the voucher read, the conditional UPDATE,
  the ledger INSERT with its index, two SAVEPOINTs, rendering the reply) and ~80 µs of COMMIT
  (WAL page writes and fsync of ~2.4 pages per charge). In-process the same work costs ~50 µs;
  in the server the writer shares two cores with ~130 other threads (tiny_http's connection
  threads, the workers, the load), and \`--sync normal\` is no faster at 64 clients, so the
  fsync is no longer what limits it.
- Across the server: malloc/free ≈ 13 % of CPU (glibc arenas across many threads), futex
  wake-ups and context switches ≈ 12 % (each request crosses connection thread → worker →
  writer → worker → connection thread), readers re-reading pages after every commit empties
  their caches (pread copies, pcache truncation) a few %.
- What would move it: fewer thread hand-offs per request (an own accept loop that reads and
  answers on the worker), less work inside the writer's critical section (render replies on the
  worker), and a cheaper allocator path for SQLite's page cache.
MD
echo
echo "target (HTTP full ≥ 2.5× one-commit floor): ${full_ratio}× — $verdict" >&2
echo "wrote $results" >&2
