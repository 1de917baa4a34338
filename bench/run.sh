#!/usr/bin/env bash
# The vouchd benchmark, one command. Builds release, installs what it needs (wrk from Debian's
# packages, the peer soul-cli from npm), seeds a database, measures the floors, the server and
# the peer in this one run with load from a second process (wrk) on 127.0.0.1, prints one table
# and rewrites bench/RESULTS.md. vouchd on PostgreSQL too (one instance, then two on the same
# database), on a throwaway cluster of its own (tests/pg/cluster.sh; PostgreSQL is installed
# from Debian's packages when missing), the seeded file copied in with `vouchd copy`.
#
#   bench/run.sh           full run: 1 000 000 vouchers, 10 s per scenario, medians of 3
#   bench/run.sh --quick   about a minute after the installs: 100 000 vouchers, 2 s per
#                          scenario, one run each; prints the table, leaves RESULTS.md alone
#   BENCH_PG_VOUCHERS=N    PostgreSQL on a database of its own of N vouchers instead of a copy
#                          of the run's
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
pg_dir=
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [[ -n $pg_dir ]]; then tests/pg/cluster.sh stop "$pg_dir" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # so that an interrupted run stops its servers and its cluster too

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
    out=$(counted env DATA="$tmp" "$@" wrk -t"$(( c < 2 ? 1 : 2 ))" -c"$c" -d"${seconds}s" --latency -s bench/wrk/vouchd.lua "$url")
    wrk_figures "$url ($*)" "$out"
}
# counted CMD...: runs CMD and adds its CPU seconds to $tmp/load-cpu (the PostgreSQL
# scenarios' CPU split counts the load generator's share with it).
counted() {
    python3 -c 'import resource, subprocess, sys
code = subprocess.run(sys.argv[2:]).returncode
use = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "a") as f:
    f.write(f"{use.ru_utime + use.ru_stime:.3f}\n")
sys.exit(code)' "$tmp/load-cpu" "$@"
}
# wrk_figures WHAT OUTPUT: wrk's output → "req/s p50_ms p99_ms errors".
wrk_figures() {
    if ! grep -q "Requests/sec" <<<"$2"; then
        say "wrk gave no figures for $1:"; echo "$2" >&2; exit 1
    fi
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx/ { err += $NF }
        /Socket errors/ { gsub(",", ""); err += $4 + $6 + $8 + $10 }
        END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, err }' <<<"$2"
}

# wrk_pair CONNS URL1 URL2 [ENV...]: the same load split over two servers, one wrk process of
# one thread and CONNS/2 connections on each, both at once → "req/s p50 p99 errors": the sum of
# req/s and errors, the higher of the two p50s and of the two p99s.
wrk_pair() {
    local c=$(( $1 / 2 )) a=$2 b=$3; shift 3
    counted env DATA="$tmp" "$@" wrk -t1 -c"$c" -d"${seconds}s" --latency -s bench/wrk/vouchd.lua "$a" >"$tmp/wrk-a.out" &
    local wa=$!
    counted env DATA="$tmp" "$@" wrk -t1 -c"$c" -d"${seconds}s" --latency -s bench/wrk/vouchd.lua "$b" >"$tmp/wrk-b.out" &
    local wb=$!
    wait "$wa" || { say "wrk on $a failed"; exit 1; }
    wait "$wb" || { say "wrk on $b failed"; exit 1; }
    { wrk_figures "$a ($*)" "$(cat "$tmp/wrk-a.out")"; wrk_figures "$b ($*)" "$(cat "$tmp/wrk-b.out")"; } | awk '
        { rps += $1; if ($2 > p50) p50 = $2; if ($3 > p99) p99 = $3; err += $4 }
        END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, err }'
}

# measure CONNS URL [ENV...]: wrk_once $repeats times, the run with the median req/s.
measure() {
    local runs=()
    for _ in $(seq "$repeats"); do runs+=("$(wrk_once "$@")"); done
    printf '%s\n' "${runs[@]}" | sort -n -k1 | sed -n "$(( (repeats + 1) / 2 ))p"
}
# median_run RUN...: of runs ("req/s p50 p99 errors"), the one with the median req/s.
median_run() { printf '%s\n' "$@" | sort -n -k1 | sed -n "$(( ($# + 1) / 2 ))p"; }
# measure_pair CONNS URL1 URL2 [ENV...]: wrk_pair $repeats times, the run with the median req/s.
measure_pair() {
    local runs=()
    for _ in $(seq "$repeats"); do runs+=("$(wrk_pair "$@")"); done
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
# PostgreSQL's copy is made from this file as seeded, before the SQLite scenarios change it.
# BENCH_PG_VOUCHERS=N seeds a database of its own, of N vouchers, for it instead.
pg_vouchers=${BENCH_PG_VOUCHERS:-$vouchers}
mkdir "$tmp/pg"
if [[ $pg_vouchers == "$vouchers" ]]; then
    for f in vouchd.db vouchd.db-wal codes.txt ids.txt cards.txt; do
        [[ -e $tmp/$f ]] && cp "$tmp/$f" "$tmp/pg/$f"
    done
    pg_seed=$seed
else
    say "seeding $pg_vouchers vouchers for PostgreSQL"
    pg_seed=$("$ex/bench-seed" "$tmp/pg" "$pg_vouchers")
fi

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
# The floor server stays up (idle) while vouchd starts: its runs and vouchd's look-ups take
# turns below, so a machine that slows down or speeds up during the run moves both alike.

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
floor_runs=(); lookup_runs=()
for _ in $(seq "$repeats"); do
    floor_runs+=("$(wrk_once "$conns" "$floor_base/" MODE=floor)")
    lookup_runs+=("$(wrk_once "$conns" "$base" MODE=lookup "${auth[@]}")")
done
row[http_floor]=$(median_run "${floor_runs[@]}")
row[lookup]=$(median_run "${lookup_runs[@]}")
stop "$floor_pid"
http_floor=${row[http_floor]%% *}
row[get]=$(measure "$conns" "$base" MODE=get "${auth[@]}")
# Charges, and the same charges with a webhook endpoint that accepts connections and never
# answers: every charge then writes its event in the outbox and a delivery thread sits in its
# 10 s timeout. The two take turns (the endpoint added before each hooked run and removed
# after it), so their ratio does not take in the machine's drift between them.
say "charges, and charges with a hanging webhook receiver"
python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1024)
print("port", s.getsockname()[1], flush=True)
held = []
while True: held.append(s.accept()[0])' >"$tmp/hang.log" &
hang_pid=$!; pids+=("$hang_pid")
hang_port=$(wait_for "$tmp/hang.log" "port" | cut -d' ' -f2)
charge_runs=(); hook_runs=()
for _ in $(seq "$repeats"); do
    charge_runs+=("$(wrk_once "$conns" "$base" MODE=charge "${auth[@]}")")
    hook=$("$bin/vouchd" webhook add "http://127.0.0.1:$hang_port/hook" --group bench \
        --events charge.created --db "$tmp/vouchd.db" | grep -o '"id":"[^"]*"' | cut -d'"' -f4)
    hook_runs+=("$(wrk_once "$conns" "$base" MODE=charge "${auth[@]}")")
    "$bin/vouchd" webhook remove "$hook" --db "$tmp/vouchd.db" 2>/dev/null
done
row[charge_full]=$(median_run "${charge_runs[@]}")
row[charge_hook]=$(median_run "${hook_runs[@]}")
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

# --- vouchd on PostgreSQL ----------------------------------------------------------------------
# A throwaway cluster of its own (tests/pg/cluster.sh: initdb in a temporary directory, as
# shipped but for listen_addresses, port and max_connections), the seeded file copied into it
# with `vouchd copy`, then look-ups and charges against one instance and against two instances
# on the same database, the load split over both (one wrk process each, half the connections).
say "PostgreSQL: a throwaway cluster"
pg_env=$(VOUCHD_TEST_PG_FSYNC=on tests/pg/cluster.sh start)
pg_dir=$(sed -n 's/^export VOUCHD_TEST_PG_DIR=//p' <<<"$pg_env")
pg_url=$(sed -n 's/^export VOUCHD_TEST_PG=//p' <<<"$pg_env")
[[ -n $pg_dir && -n $pg_url ]] || { say "no cluster: $pg_env"; exit 1; }
psql_bin=$(command -v psql || echo "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/psql")
pg_version=$("$psql_bin" "$pg_url" -Atc 'SHOW server_version')
psql_q() { "$psql_bin" "$pg_url" -Atqc "$1"; }
say "vouchd copy: $pg_vouchers vouchers into PostgreSQL $pg_version"
copy_t0=$(date +%s.%N)
"$bin/vouchd" copy "$tmp/pg/vouchd.db" "$pg_url" </dev/null >"$tmp/copy.log" 2>&1 \
    || { say "vouchd copy failed:"; tail -20 "$tmp/copy.log" >&2; exit 1; }
copy_s=$(awk -v a="$copy_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
# Planner statistics for the copied tables now rather than whenever autovacuum comes by.
psql_q 'VACUUM ANALYZE' >/dev/null
pg_mib=$(( $(psql_q 'SELECT pg_database_size(current_database())') / 1048576 ))
pg_client=$(grep -o '"client_id":"[^"]*"' <<<"$pg_seed" | cut -d'"' -f4)
pg_secret=$(grep -o '"secret":"[^"]*"' <<<"$pg_seed" | cut -d'"' -f4)
pg_basic=$(printf '%s:%s' "$pg_client" "$pg_secret" | base64 -w0)

# serve_pg NAME: starts vouchd on the PostgreSQL database; sets base and server_pid.
serve_pg() {
    local log=$tmp/serve-pg-$1.log
    "$bin/vouchd" serve --db "$pg_url" --listen 127.0.0.1:0 --threads "$threads" \
        --rate-limit 0 2>"$log" &
    server_pid=$!; pids+=("$server_pid")
    base=$(wait_for "$log" "listening on" | grep -o 'http://[0-9.:]*')
}
# Where the CPU goes during a PostgreSQL scenario: CPU time of the cluster's processes (the
# postmaster and its children, backends started meanwhile counted whole), of the vouchd
# instances, of wrk, and of the whole machine (the rest: whatever else runs), in cores over the
# scenario's wall time; and PostgreSQL's WAL syncs a second (pg_stat_wal).
pg_tree() { local pm; pm=$(head -1 "$pg_dir/data/postmaster.pid"); echo "$pm"; ps -o pid= --ppid "$pm"; }
ticks_of() { # ticks_of PID...: "PID utime+stime" for each still there
    local p
    for p in "$@"; do
        { sed 's/.*) //' "/proc/$p/stat" | awk -v p="$p" '{ print p, $12 + $13 }'; } 2>/dev/null || true
    done
}
machine_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }   # user nice system irq softirq
declare -A cpu   # scenario → "postgres vouchd wrk rest WAL-syncs/s" (cores, and a second)
cpu_begin() {
    cpu_t0=$(date +%s.%N); cpu_m0=$(machine_busy)
    # shellcheck disable=SC2046
    cpu_pg0=$(ticks_of $(pg_tree)); cpu_vd0=$(ticks_of "$@")
    cpu_sync0=$(psql_q 'SELECT wal_sync FROM pg_stat_wal')
    : >"$tmp/load-cpu"
}
cpu_end() { # cpu_end SCENARIO VOUCHD-PIDS...
    local name=$1; shift
    local wall sync1 pg vd m
    wall=$(awk -v a="$cpu_t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    sync1=$(psql_q 'SELECT wal_sync FROM pg_stat_wal')
    delta() { awk '$1 == "B" { b[$2] = $3; next } { s += $3 - (($2) in b ? b[$2] : 0) } END { print s + 0 }'; }
    # shellcheck disable=SC2046
    pg=$({ sed 's/^/B /' <<<"$cpu_pg0"; ticks_of $(pg_tree) | sed 's/^/A /'; } | delta)
    vd=$({ sed 's/^/B /' <<<"$cpu_vd0"; ticks_of "$@" | sed 's/^/A /'; } | delta)
    m=$(( $(machine_busy) - cpu_m0 ))
    cpu[$name]=$(awk -v pg="$pg" -v vd="$vd" -v m="$m" -v w="$wall" -v hz="$(getconf CLK_TCK)" \
        -v s="$(( sync1 - cpu_sync0 ))" -v load="$(awk '{ t += $1 } END { print t + 0 }' "$tmp/load-cpu")" \
        'BEGIN { printf "%.2f %.2f %.2f %.2f %.0f", pg / hz / w, vd / hz / w, load / w, (m - pg - vd) / hz / w - load / w, s / w }')
}

say "vouchd on PostgreSQL, one instance"
serve_pg one
pg_a=$base; pg_a_pid=$server_pid
pg_token=$(curl -sf -H "Authorization: Basic $pg_basic" -d grant_type=client_credentials "$pg_a/oauth/token" \
    | grep -o '"access_token":"[^"]*"' | cut -d'"' -f4) || { say "no token from $pg_a"; exit 1; }
cpu_begin "$pg_a_pid"
row[pg1_lookup]=$(measure "$conns" "$pg_a" MODE=lookup TOKEN="$pg_token" DATA="$tmp/pg")
cpu_end pg1_lookup "$pg_a_pid"
cpu_begin "$pg_a_pid"
row[pg1_charge]=$(measure "$conns" "$pg_a" MODE=charge TOKEN="$pg_token" DATA="$tmp/pg")
cpu_end pg1_charge "$pg_a_pid"

say "vouchd on PostgreSQL, two instances"
serve_pg two
pg_b=$base; pg_b_pid=$server_pid
cpu_begin "$pg_a_pid" "$pg_b_pid"
row[pg2_lookup]=$(measure_pair "$conns" "$pg_a" "$pg_b" MODE=lookup TOKEN="$pg_token" DATA="$tmp/pg")
cpu_end pg2_lookup "$pg_a_pid" "$pg_b_pid"
cpu_begin "$pg_a_pid" "$pg_b_pid"
row[pg2_charge]=$(measure_pair "$conns" "$pg_a" "$pg_b" MODE=charge TOKEN="$pg_token" DATA="$tmp/pg")
cpu_end pg2_charge "$pg_a_pid" "$pg_b_pid"
stop "$pg_b_pid"
stop "$pg_a_pid"
tests/pg/cluster.sh stop "$pg_dir" 2>/dev/null
pg_dir=

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
    pg_on=; [[ $pg_vouchers == "$vouchers" ]] || pg_on=" ($pg_vouchers vouchers of its own)"
    line pg1_lookup "PostgreSQL$pg_on, one instance: look-up by \`filter[code]\`, $conns conns" "SQLite look-up $(rps lookup)/s" "$(rps lookup)" "" ""
    line pg2_lookup "PostgreSQL$pg_on, two instances: look-up by \`filter[code]\`, $((conns / 2)) conns each" "one instance $(rps pg1_lookup)/s" "$(rps pg1_lookup)" "" ""
    line pg1_charge "PostgreSQL$pg_on, one instance: charge 0.01, $conns conns" "SQLite \`--sync full\` $(rps charge_full)/s" "$(rps charge_full)" "" ""
    line pg2_charge "PostgreSQL$pg_on, two instances: charge 0.01, $((conns / 2)) conns each" "one instance $(rps pg1_charge)/s" "$(rps pg1_charge)" "" ""
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
pg_cpu=$(
    echo '| PostgreSQL scenario: CPU in cores over its wall time | postgres | vouchd | wrk | the rest of the machine | WAL syncs/s |'
    echo '|---|---|---|---|---|---|'
    for name in pg1_lookup pg2_lookup pg1_charge pg2_charge; do
        read -r c_pg c_vd c_wrk c_rest c_sync <<<"${cpu[$name]}"
        echo "| $name | $c_pg | $c_vd | $c_wrk | $c_rest | $c_sync |"
    done
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
    echo "| \`vouchd copy\` of the $pg_vouchers-voucher file into PostgreSQL ($pg_mib MiB there) | $copy_s s | | |"
    echo "| seeding $vouchers vouchers + $(field entries "$seed") ledger entries (bench-seed) | $(field seconds "$seed") s | | |"
)
echo
echo "$table"
echo
echo "$others"
echo
echo "$pg_cpu"

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
    echo "Floors: \`bench-floor\` on the same database before the server starts, the median of $repeats runs ($floor_n charges per mode, $((floor_n * 10)) look-ups); \`bench-http-floor\` measured like the server's scenarios, its runs taking turns with vouchd's look-ups (as the charges with and without a hanging webhook endpoint take turns), so that the machine's drift moves both sides of a ratio alike."
    echo "PostgreSQL: $pg_version from Debian's packages, a throwaway cluster on this machine (\`tests/pg/cluster.sh\`: settings as shipped, \`synchronous_commit=on\`), $pg_vouchers vouchers copied in with \`vouchd copy\` from the seeded file, \`VACUUM ANALYZE\` after; \`vouchd serve --threads $threads --rate-limit 0\` (16 pooled connections an instance); two instances get one wrk process each (1 thread, half the connections), req/s summed, the higher p50/p99 shown."
    echo "Peer: $peer_pkg from npm (better-sqlite3 8.7.0, WAL with its build's default \`synchronous=NORMAL\`, open mode without auth), on a copy of the same vouchers table, bound to 127.0.0.1."
    echo
    echo "$table"
    echo
    echo "$others"
    echo
    echo "$pg_cpu"
    echo
    cat bench/ANALYSIS.md
} >"$results"
say "wrote $results"
