#!/usr/bin/env bash
# The vouchd benchmark, one command. Builds release, installs what it needs (wrk from Debian's
# packages, the peer soul-cli from npm), seeds a database, measures the floors, the server and
# the peer in this one run with load from a second process (wrk) on 127.0.0.1, prints one table
# and rewrites bench/RESULTS.md.
#
#   bench/run.sh           full run: 1 000 000 vouchers, 10 s per scenario, medians of 3
#   bench/run.sh --quick   about a minute after the installs: 100 000 vouchers, 2 s per
#                          scenario, one run each; prints the table, leaves RESULTS.md alone
set -euo pipefail
shopt -s inherit_errexit   # a failing command inside $(...) stops the run too
cd "$(dirname "$0")/.."
root=$(pwd)

vouchers=1000000
seconds=10
repeats=3
floor_n=3000
results=bench/RESULTS.md
mode=full
case "${1:-}" in
    "") ;;
    --quick) vouchers=100000; seconds=2; repeats=1; floor_n=500; results=; mode=quick ;;
    *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac
threads=64      # server workers, and the HTTP floor's: one per connection of the 64-client loads
conns=64
say() { echo "bench: $*" >&2; }

# --- what the run needs -----------------------------------------------------------------------
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }
for tool in cargo curl node npm python3 base64; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is needed and not installed" >&2; exit 1; }
done
if ! command -v wrk >/dev/null; then
    say "installing wrk"
    as_root apt-get update -qq && as_root apt-get install -y -qq wrk >/dev/null
fi
peer_dir=$root/target/bench-peer
peer_pkg=soul-cli@0.8.2
if [[ ! -f $peer_dir/ready-$peer_pkg ]]; then
    say "installing the peer, $peer_pkg from npm (once; a few minutes: its native modules build)"
    mkdir -p "$peer_dir"
    if ! (cd "$peer_dir" && npm install --no-audit --no-fund --ignore-scripts "$peer_pkg" \
        && npm rebuild better-sqlite3 bcrypt) >"$peer_dir/install.log" 2>&1; then
        say "installing the peer failed:"; tail -20 "$peer_dir/install.log" >&2; exit 1
    fi
    touch "$peer_dir/ready-$peer_pkg"
fi
say "building release"
cargo build --release --quiet --bin vouchd --example bench-seed --example bench-floor \
    --example bench-http-floor --example bench-startup
bin=target/release
ex=$bin/examples

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- helpers ------------------------------------------------------------------------------------
field() { grep -o "\"$1\":[0-9.]*" <<<"$2" | head -1 | cut -d: -f2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
rss_kib() { awk "/$2/ { print \$2 }" "/proc/$1/status" 2>/dev/null || echo 0; }

# wait_for LOG PATTERN: the line of LOG matching PATTERN once it is there (10 s at most).
wait_for() {
    for _ in $(seq 200); do
        if grep -q "$2" "$1" 2>/dev/null; then grep -m1 "$2" "$1"; return; fi
        sleep 0.05
    done
    say "gave up waiting for '$2' in $1:"; cat "$1" >&2; exit 1
}

# wrk_once CONNS URL [ENV...] → "req/s p50_ms p99_ms errors" (errors: non-2xx answers and
# socket errors; wrk runs with 2 threads, or 1 for one connection, in its own process).
wrk_once() {
    local c=$1 url=$2; shift 2
    local out
    out=$(env "$@" DATA="$tmp" wrk -t"$(( c < 2 ? 1 : 2 ))" -c"$c" -d"${seconds}s" --latency -s bench/wrk/vouchd.lua "$url")
    if ! grep -q "Requests/sec" <<<"$out"; then
        say "wrk gave no figures for $url ($*):"; echo "$out" >&2; exit 1
    fi
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx/ { err += $NF }
        /Socket errors/ { gsub(",", ""); err += $4 + $6 + $8 + $10 }
        END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, err }' <<<"$out"
}

# measure CONNS URL [ENV...]: wrk_once $repeats times, the run with the median req/s.
measure() {
    local runs=()
    for _ in $(seq "$repeats"); do runs+=("$(wrk_once "$@")"); done
    printf '%s\n' "${runs[@]}" | sort -n -k1 | sed -n "$(( (repeats + 1) / 2 ))p"
}

# serve SYNC: starts vouchd on the seeded database; sets base and server_pid.
serve() {
    local log=$tmp/serve-$1.log
    "$bin/vouchd" serve --db "$tmp/vouchd.db" --listen 127.0.0.1:0 --sync "$1" \
        --threads "$threads" --rate-limit 0 2>"$log" &
    server_pid=$!; pids+=("$server_pid")
    base=$(wait_for "$log" "listening on" | grep -o 'http://[0-9.:]*')
}
stop() { # stop PID: ends it and forgets it, so the exit trap cannot hit a reused pid
    kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true
    local kept=() p
    for p in "${pids[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
    pids=("${kept[@]}")
}

declare -A row   # scenario → "req/s p50 p99 errors"
declare -A note  # scenario → what it is measured against

# --- data ---------------------------------------------------------------------------------------
say "seeding $vouchers vouchers and a ledger history"
seed=$("$ex/bench-seed" "$tmp" "$vouchers")
client_id=$(grep -o '"client_id":"[^"]*"' <<<"$seed" | cut -d'"' -f4)
secret=$(grep -o '"secret":"[^"]*"' <<<"$seed" | cut -d'"' -f4)
say "seeded in $(field seconds "$seed") s ($(field entries "$seed") ledger entries)"
db_mib=$(( $(stat -c %s "$tmp/vouchd.db") / 1048576 ))

# --- floors -------------------------------------------------------------------------------------
say "store floors"
median() { sort -n | sed -n "$(( (repeats + 1) / 2 ))p"; }
lookup_floor=$(for _ in $(seq "$repeats"); do
    field per_sec "$("$ex/bench-floor" lookup "$tmp/vouchd.db" "$client_id" "$tmp/codes.txt" $((floor_n * 10)))"
done | median)
declare -A one grouped
for sync in full normal; do
    runs=$(for _ in $(seq "$repeats"); do
        "$ex/bench-floor" charges "$tmp/vouchd.db" "$client_id" "$tmp/cards.txt" "$floor_n" "$sync"
    done)
    one[$sync]=$(grep '"one"' <<<"$runs" | while read -r l; do field per_sec "$l"; done | median)
    grouped[$sync]=$(grep '"grouped"' <<<"$runs" | while read -r l; do field per_sec "$l"; done | median)
done

say "HTTP floor: bare tiny_http, $threads threads"
"$ex/bench-http-floor" "$threads" >"$tmp/floor.log" &
floor_pid=$!; pids+=("$floor_pid")
floor_base=$(wait_for "$tmp/floor.log" "listening on" | grep -o 'http://[0-9.:]*')
row[http_floor]=$(measure "$conns" "$floor_base/" MODE=floor)
stop "$floor_pid"
http_floor=${row[http_floor]%% *}

# --- vouchd, --sync full ------------------------------------------------------------------------
say "vouchd, --sync full"
serve full
sleep 1
idle_rss=$(rss_kib "$server_pid" VmRSS)
basic=$(printf '%s:%s' "$client_id" "$secret" | base64 -w0)
get_token() {
    curl -sf -H "Authorization: Basic $basic" -d grant_type=client_credentials "$base/oauth/token" \
        | grep -o '"access_token":"[^"]*"' | cut -d'"' -f4 \
        || { say "no token from $base"; exit 1; }
}
token=$(get_token)
auth=(TOKEN="$token")
code_at() { sed -n "${1}p" "$tmp/codes.txt"; }
id_at() { sed -n "${1}p" "$tmp/ids.txt"; }
mid=$((vouchers / 2 + 7))

row[healthz]=$(measure "$conns" "$base/healthz" MODE=fixed)
row[lookup]=$(measure "$conns" "$base" MODE=lookup "${auth[@]}")
row[get]=$(measure "$conns" "$base" MODE=get "${auth[@]}")
row[charge_full]=$(measure "$conns" "$base" MODE=charge "${auth[@]}")
# The same charges with a webhook endpoint that accepts connections and never answers: every
# charge now writes its event in the outbox and a delivery thread sits in its 10 s timeout.
say "charges with a hanging webhook receiver"
python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1024)
print("port", s.getsockname()[1], flush=True)
held = []
while True: held.append(s.accept()[0])' >"$tmp/hang.log" &
hang_pid=$!; pids+=("$hang_pid")
hang_port=$(wait_for "$tmp/hang.log" "port" | cut -d' ' -f2)
hook=$("$bin/vouchd" webhook add "http://127.0.0.1:$hang_port/hook" --group bench \
    --events charge.created --db "$tmp/vouchd.db" | grep -o '"id":"[^"]*"' | cut -d'"' -f4)
row[charge_hook]=$(measure "$conns" "$base" MODE=charge "${auth[@]}")
"$bin/vouchd" webhook remove "$hook" --db "$tmp/vouchd.db" 2>/dev/null
stop "$hang_pid"
row[mix]=$(measure "$conns" "$base" MODE=mix "${auth[@]}")
# List pages: one connection, so p50 is the page's own time, not a queue's.
declare -A lists=(
    [list_code]="/v1/vouchers?filter%5Bcode%5D=$(code_at $mid)"
    [list_id]="/v1/vouchers?filter%5Bid%5D=$(id_at $mid)"
    [list_batch]="/v1/vouchers?filter%5Bbatch%5D=B$(printf %05d $((vouchers / 2000)))&page=40&per_page=25"
    [list_customer]="/v1/customers/C$(printf %06d $((mid / 20)))/vouchers"
    [list_purchase]="/v1/purchases/P$(printf %07d $((mid / 2)))/vouchers"
    [list_all]="/v1/vouchers"
    [list_active]="/v1/vouchers?filter%5Bstatus%5D=active"
    [list_deep]="/v1/vouchers?filter%5Bstatus%5D=active&sort=created_at&page=2000&per_page=50"
    [list_broad_sorted]="/v1/vouchers?filter%5Bstatus%5D=active&filter%5Bremaining_amount%5D=true&sort=-valid_until&per_page=20"
)
for name in "${!lists[@]}"; do
    row[$name]=$(measure 1 "$base${lists[$name]}" MODE=fixed "${auth[@]}")
done
say "batch of 100 000"
batch_s=()
batch_runs=$(( repeats > 1 ? 5 : 1 ))
for _ in $(seq "$batch_runs"); do
    batch_s+=("$(curl -sf -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d '{"count":100000,"amount":"10.00"}' "$base/v1/vouchers/batch" \
        || { say "the batch request failed"; exit 1; })")
done
batch_median=$(printf '%s\n' "${batch_s[@]}" | sort -n | sed -n "$(( (batch_runs + 1) / 2 ))p")
load_rss=$(rss_kib "$server_pid" VmHWM)
# Last: each token request runs argon2id (19 MiB of working memory, two at a time).
row[token]=$(measure 4 "$base" MODE=token BASIC="$basic")
token_rss=$(rss_kib "$server_pid" VmHWM)
stop "$server_pid"

say "vouchd, --sync normal"
serve normal
token=$(get_token)
row[charge_normal]=$(measure "$conns" "$base" MODE=charge TOKEN="$token")
stop "$server_pid"

startup_vouchers=$((vouchers + batch_runs * 100000))   # the batches are in the file by now
startup_mib=$(( ($(stat -c %s "$tmp/vouchd.db") + $(stat -c %s "$tmp/vouchd.db-wal" 2>/dev/null || echo 0)) / 1048576 ))
say "start-up on the $startup_vouchers-voucher file"
startup=$("$ex/bench-startup" "$bin/vouchd" "$tmp/vouchd.db" 5)
binary_mib=$(awk -v b="$(stat -c %s "$bin/vouchd")" 'BEGIN { printf "%.1f", b / 1048576 }')

# --- the peer -----------------------------------------------------------------------------------
say "peer: $peer_pkg"
peer_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$peer_dir" && exec node -r "$root/bench/peer/loopback.js" node_modules/soul-cli/src/server.js \
    -d "$tmp/peer.db" -p "$peer_port" >"$tmp/peer.log" 2>&1) &
peer_pid=$!; pids+=("$peer_pid")
wait_for "$tmp/peer.log" "Soul is running" >/dev/null
peer_base=http://127.0.0.1:$peer_port
peer_group=$(curl -sf "$peer_base/api/tables/vouchers/rows?_limit=1" | grep -o '"group_id":"[^"]*"' | cut -d'"' -f4)
row[peer_lookup]=$(measure "$conns" "$peer_base" MODE=peer_lookup)
row[peer_create]=$(measure "$conns" "$peer_base" MODE=peer_create PEER_CLIENT="$client_id" PEER_GROUP="$peer_group")
stop "$peer_pid"

# --- the table ----------------------------------------------------------------------------------
rps() { echo "${row[$1]%% *}"; }
col() { awk -v n="$2" '{ print $n }' <<<"${row[$1]}"; }
check() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { ok = (op == ">=" ? a >= b : a < b); print (ok ? "met" : "**missed**") }'; }
line() { # line SCENARIO LABEL FLOOR_LABEL FLOOR TARGET_TEXT VERDICT
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "$(rps "$1")" "$(col "$1" 2)" \
        "$(col "$1" 3)" "$(col "$1" 4)" "$3" "${4:+$(ratio "$(rps "$1")" "$4")×}" "$5" "$6"
}
lookup_target=$(awk -v f="$http_floor" 'BEGIN { printf "%.0f", f * 0.75 }')
table=$(
    echo '| scenario | req/s | p50 ms | p99 ms | errors | against | ratio | target | verdict |'
    echo '|---|---|---|---|---|---|---|---|---|'
    line http_floor "HTTP floor: bare tiny_http, $threads threads, fixed JSON, $conns conns" "—" "" "" ""
    line healthz "vouchd's own server: bare \`/healthz\`, $conns conns" "HTTP floor" "$http_floor" "" ""
    line lookup "look-up by \`filter[code]\`, $conns conns" "HTTP floor $http_floor/s" "$http_floor" \
        "≥ 0.75× and p99 < 5 ms" "$(check "$(ratio "$(rps lookup)" "$http_floor")" ">=" 0.75), p99 $(check "$(col lookup 3)" "<" 5)"
    line lookup "" "peer look-up $(rps peer_lookup)/s" "$(rps peer_lookup)" "≥ 10×" \
        "$(check "$(ratio "$(rps lookup)" "$(rps peer_lookup)")" ">=" 10)"
    line get "get by id, $conns conns" "HTTP floor" "$http_floor" "" ""
    line charge_full "charge 0.01, \`--sync full\`, $conns conns" "one-commit floor ${one[full]}/s" "${one[full]}" \
        "≥ 2.5×, p99 < 50 ms" "$(check "$(ratio "$(rps charge_full)" "${one[full]}")" ">=" 2.5), p99 $(check "$(col charge_full 3)" "<" 50)"
    line charge_full "" "grouped floor ${grouped[full]}/s" "${grouped[full]}" "≥ 0.75×" \
        "$(check "$(ratio "$(rps charge_full)" "${grouped[full]}")" ">=" 0.75)"
    line charge_full "" "peer create $(rps peer_create)/s" "$(rps peer_create)" "≥ 2×" \
        "$(check "$(ratio "$(rps charge_full)" "$(rps peer_create)")" ">=" 2)"
    line charge_hook "charge 0.01, \`--sync full\`, a hanging webhook endpoint, $conns conns" "no endpoint $(rps charge_full)/s" "$(rps charge_full)" \
        "≥ 0.9×" "$(check "$(ratio "$(rps charge_hook)" "$(rps charge_full)")" ">=" 0.9)"
    line charge_normal "charge 0.01, \`--sync normal\`, $conns conns" "one-commit floor ${one[normal]}/s" "${one[normal]}" "" ""
    line charge_normal "" "grouped floor ${grouped[normal]}/s" "${grouped[normal]}" "" ""
    line mix "POS mix 80 % look-up / 15 % charge / 5 % list, $conns conns" "HTTP floor" "$http_floor" "" ""
    line list_code "list \`filter[code]\`, 1 conn" "" "" "p50 < 5 ms" "$(check "$(col list_code 2)" "<" 5)"
    line list_id "list \`filter[id]\`, 1 conn" "" "" "p50 < 5 ms" "$(check "$(col list_id 2)" "<" 5)"
    line list_batch "list \`filter[batch]\` (1 000), page 40 of 25, 1 conn" "" "" "p50 < 5 ms" "$(check "$(col list_batch 2)" "<" 5)"
    line list_customer "a customer's vouchers, 1 conn" "" "" "p50 < 5 ms" "$(check "$(col list_customer 2)" "<" 5)"
    line list_purchase "a purchase's (order's) vouchers, 1 conn" "" "" "p50 < 5 ms" "$(check "$(col list_purchase 2)" "<" 5)"
    line list_all "list, no filter, with total, 1 conn" "" "" "p50 < 30 ms" "$(check "$(col list_all 2)" "<" 30)"
    line list_active "list \`filter[status]=active\`, with total, 1 conn" "" "" "p50 < 30 ms" "$(check "$(col list_active 2)" "<" 30)"
    line list_deep "active, \`sort=created_at\`, page 2 000 of 50, with total, 1 conn" "" "" "p50 < 30 ms" "$(check "$(col list_deep 2)" "<" 30)"
    line list_broad_sorted "active with credit, \`sort=-valid_until\`, with total, 1 conn" "" "" "" ""
    line token "token requests (argon2 per request), 4 conns" "" "" "" ""
    line peer_lookup "peer: look-up by code ($peer_pkg), $conns conns" "" "" "" ""
    line peer_create "peer: create a voucher row ($peer_pkg), $conns conns" "" "" "" ""
)
startup_ms=$(field median_ms "$startup")
others=$(
    echo '| figure | value | target | verdict |'
    echo '|---|---|---|---|'
    echo "| batch create of 100 000 (median of $batch_runs: ${batch_s[*]} s) | ${batch_median} s | < 2 s | $(check "$batch_median" "<" 2) |"
    echo "| start-up to first answer on $startup_vouchers vouchers ($startup_mib MiB; runs $(grep -o '\[.*\]' <<<"$startup") ms) | $startup_ms ms | < 100 ms | $(check "$startup_ms" "<" 100) |"
    echo "| idle RSS after start-up | $((idle_rss / 1024)) MiB | < 20 MB | $(check "$idle_rss" "<" 19531) |"
    echo "| peak RSS under load (look-ups, charges, mix, lists, batches; \`--sync full\`) | $((load_rss / 1024)) MiB | < 100 MB | $(check "$load_rss" "<" 97656) |"
    echo "| peak RSS after the token requests too (argon2id: 19 MiB each, two at a time) | $((token_rss / 1024)) MiB | | |"
    echo "| binary size (release) | $binary_mib MiB | | |"
    echo "| store floor: look-up by code, in-process, one connection | $lookup_floor/s | | |"
    echo "| store floor: charge, one COMMIT each, full / normal | ${one[full]}/s / ${one[normal]}/s | | |"
    echo "| store floor: charge, 100 per COMMIT, full / normal | ${grouped[full]}/s / ${grouped[normal]}/s | | |"
    echo "| seeding $vouchers vouchers + $(field entries "$seed") ledger entries (bench-seed) | $(field seconds "$seed") s | | |"
)
echo
echo "$table"
echo
echo "$others"

[[ -z $results ]] && exit 0
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
# Asked before the results file is rewritten (the rewrite itself is a change).
dirty=$(git diff --quiet -- . ":(exclude)$results" 2>/dev/null || echo ', with uncommitted changes')
{
    echo "# Benchmark results"
    echo
    echo "Command: \`bench/run.sh\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty)."
    echo "Machine: $(nproc) cores ($cpu), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)."
    echo "Load: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2) in its own process on 127.0.0.1, 2 threads, keep-alive, ${seconds} s per scenario, the median of $repeats runs (by req/s)."
    echo "Server: \`vouchd serve --threads $threads --rate-limit 0\` on a $vouchers-voucher database ($db_mib MiB) built by \`bench-seed\`."
    echo "Floors: \`bench-floor\` on the same database before the server starts, the median of $repeats runs ($floor_n charges per mode, $((floor_n * 10)) look-ups); \`bench-http-floor\` measured like the server's scenarios."
    echo "Peer: $peer_pkg from npm (better-sqlite3 8.7.0, WAL with its build's default \`synchronous=NORMAL\`, open mode without auth), on a copy of the same vouchers table, bound to 127.0.0.1."
    echo
    echo "$table"
    echo
    echo "$others"
    echo
    cat bench/ANALYSIS.md
} >"$results"
say "wrote $results"
