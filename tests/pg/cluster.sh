#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the integration tests, nothing of the machine's own.
#
#   tests/pg/cluster.sh start      installs PostgreSQL from Debian's packages when no initdb is
#                                  found, runs initdb in a fresh temporary directory as an
#                                  unprivileged user, starts postgres on a free 127.0.0.1 port
#                                  with its socket in that directory, and prints two lines for
#                                  `eval`:
#                                    export VOUCHD_TEST_PG=postgres://vouchd:PASSWORD@127.0.0.1:PORT/postgres
#                                    export VOUCHD_TEST_PG_DIR=/tmp/vouchd-pg.XXXXXX
#   tests/pg/cluster.sh stop DIR   stops that cluster and removes DIR.
#
# No service of the machine is used or changed: the cluster is a directory of its own, on a
# port of its own, stopped and deleted by `stop`. Installing the packages creates no cluster of
# the machine's either (createcluster.conf says so before the install when postgresql-common is
# not there yet). Everything but the two export lines goes to stderr.
#
# The cluster runs with fsync=off: the tests kill vouchd, never PostgreSQL or the machine, so
# flushing to disk changes nothing they can see (a commit is still a commit to every other
# connection; synchronous_commit stays on), and the suite runs a quarter faster without it.
#
# Settings: VOUCHD_TEST_PG_MAX_CONNECTIONS (default 1000: every test server keeps a pool, and
# servers kept for a whole test binary are many); VOUCHD_TEST_PG_FSYNC (default off; the bench
# sets on, so its commits are durable as shipped).
set -euo pipefail

# The unprivileged user the cluster runs as when this script runs as root (initdb refuses root).
PG_USER=vouchd-pgtest

say() { echo "cluster.sh: $*" >&2; }

# The directory holding initdb, pg_ctl and postgres: PATH first, then Debian's versioned
# directories (/usr/lib/postgresql/<ver>/bin, the newest version).
find_bindir() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
    echo "$dir"
    return 0
  fi
  return 1
}

install_postgresql() {
  say "no initdb found: installing PostgreSQL from Debian's packages"
  if [ "$(id -u)" -ne 0 ]; then
    say "installing needs root; install the package 'postgresql' and run again"
    exit 1
  fi
  # Without this the package's post-install would create (and start) a cluster of the machine.
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y -o Dpkg::Options::=--force-confold postgresql >&2
}

# Runs a command as the cluster's user (the caller itself when not root).
as_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

# True when something on this machine accepts connections on 127.0.0.1:$1.
port_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  local bindir
  if ! bindir=$(find_bindir); then
    install_postgresql
    bindir=$(find_bindir) || {
      say "PostgreSQL was installed but no initdb is to be found"
      exit 1
    }
  fi
  if [ "$(id -u)" -eq 0 ] && ! id "$PG_USER" >/dev/null 2>&1; then
    say "creating the unprivileged user $PG_USER"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$PG_USER"
  fi

  local dir password
  dir=$(mktemp -d "${TMPDIR:-/tmp}/vouchd-pg.XXXXXX")
  chmod 700 "$dir"
  [ "$(id -u)" -eq 0 ] && chown "$PG_USER:" "$dir"
  password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  # The password file is the user's own and is read once by initdb.
  as_user sh -c 'umask 077; printf "%s\n" "$1" >"$2"' sh "$password" "$dir/pwfile"
  if ! as_user "$bindir/initdb" -D "$dir/data" -U vouchd --pwfile="$dir/pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1; then
    # Older PostgreSQL or a libc without C.UTF-8: the plain C locale does as well for tests.
    rm -rf "$dir/data"
    as_user "$bindir/initdb" -D "$dir/data" -U vouchd --pwfile="$dir/pwfile" \
      --auth=scram-sha-256 --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      rm -rf "$dir"
      say "initdb failed"
      exit 1
    }
  fi
  rm -f "$dir/pwfile"

  local max_connections=${VOUCHD_TEST_PG_MAX_CONNECTIONS:-1000}
  local fsync=${VOUCHD_TEST_PG_FSYNC:-off}
  case $fsync in on | off) ;; *) echo "cluster.sh: VOUCHD_TEST_PG_FSYNC is on or off, not $fsync" >&2; return 1 ;; esac
  local attempt port started=
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    port_taken "$port" && continue
    if as_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=$max_connections -c fsync=$fsync" \
      start >&2; then
      started=yes
      break
    fi
    say "postgres did not start on port $port (attempt $attempt); the log:"
    tail -n 5 "$dir/postgres.log" >&2 || true
  done
  if [ -z "$started" ]; then
    rm -rf "$dir"
    say "could not start postgres"
    exit 1
  fi
  say "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port in $dir"
  echo "export VOUCHD_TEST_PG=postgres://vouchd:$password@127.0.0.1:$port/postgres"
  echo "export VOUCHD_TEST_PG_DIR=$dir"
}

stop() {
  local dir=${1:-}
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    say "stop: no cluster directory given or $dir does not exist"
    exit 1
  fi
  case "$(basename "$dir")" in
  vouchd-pg.*) ;;
  *)
    say "stop: $dir is not a directory this script made"
    exit 1
    ;;
  esac
  local bindir
  bindir=$(find_bindir) || {
    say "no pg_ctl found"
    exit 1
  }
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_user "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >&2 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
*)
  echo "usage: $0 start | stop DIR" >&2
  exit 2
  ;;
esac
