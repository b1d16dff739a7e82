#!/bin/sh
# pg_server.sh - a PostgreSQL server of a test's own, on a unix socket in DIR.
#
#   pg_server.sh start DIR [OWNER]
#                              initdb DIR/data (trust, user fota, UTF8, locale C) and start it:
#                              socket DIR/.s.PGSQL.5432, no TCP, fsync off; log DIR/server.log.
#                              With OWNER (a pid), a watchdog stops the server and removes DIR
#                              once that process has ended without doing so itself: a test that
#                              crashes or is killed (a ctest timeout) leaves no server behind
#   pg_server.sh standby SRC DIR [OWNER]
#                              a streaming standby of the server in SRC: pg_basebackup -R of
#                              it into DIR/data, started as above (hot standby, read-only)
#   pg_server.sh promote DIR   pg_ctl promote: the standby in DIR becomes a primary
#   pg_server.sh restart DIR   stop (fast) and start again with the same settings
#   pg_server.sh crash DIR     stop it at once (immediate: no checkpoint, clients cut off),
#                              as a machine that is lost would
#   pg_server.sh stop DIR      stop it (fast, then immediate); a DIR without a server is no error
#
# Clients connect with "host=DIR user=fota dbname=postgres". The only place that knows initdb
# and pg_ctl (tests/integration/pg_util.py and the C tests call this). As root (CI, a fresh
# Debian root) the server runs as nobody, because initdb and postgres refuse root: DIR is
# chowned to nobody, and / is held traversable while the server lives (root_mode.py).
set -eu

usage() {
  echo "usage: pg_server.sh start DIR [OWNER] | standby SRC DIR [OWNER] | promote DIR |" \
       "restart DIR | crash DIR | stop DIR" >&2
  exit 2
}
src=
if [ "${1:-}" = standby ]; then
  [ $# -eq 3 ] || [ $# -eq 4 ] || usage
  src=$2
  set -- standby "$3" ${4:+"$4"}
  case "$src" in /*) ;; *) echo "pg_server.sh: SRC must be an absolute path" >&2; exit 2 ;; esac
fi
[ $# -eq 2 ] || { [ $# -eq 3 ] && { [ "$1" = start ] || [ "$1" = standby ]; }; } || usage
cmd=$1 dir=$2 owner=${3:-}
case "$dir" in /*) ;; *) echo "pg_server.sh: DIR must be an absolute path" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
root_mode=$here/../integration/root_mode.py

# The server's binaries: pg_config's, else the newest /usr/lib/postgresql/N/bin, else PATH.
bindir() {
  for d in "$(pg_config --bindir 2>/dev/null || true)" \
           $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
      echo "$d"; return 0
    fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return 0
  fi
  echo "pg_server.sh: no PostgreSQL server binaries (initdb, pg_ctl): run scripts/deps.sh" >&2
  return 1
}

if [ "$(id -u)" -eq 0 ]; then
  as_server() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
else
  as_server() { "$@"; }
fi
hold_root() { [ "$(id -u)" -ne 0 ] || python3 "$root_mode" "$1" "pg:$dir"; }

bin=$(bindir)
cd /   # the server user may not reach the caller's directory
export LC_ALL=C

# Starts the cluster in DIR/data (made by initdb or pg_basebackup), and its watchdog.
launch() {
  if ! as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -s \
       -o "-k '$dir' -c listen_addresses='' -c fsync=off -c max_connections=200" start; then
    tail -n 30 "$dir/server.log" >&2 || true
    as_server "$bin/pg_ctl" -D "$dir/data" -m immediate -w -s stop >/dev/null 2>&1 || true
    hold_root release
    exit 1
  fi
  if [ -n "$owner" ]; then
    # In a session of its own (a ctest timeout kills the test's process group), with no
    # descriptor of the caller's (ctest waits for its pipes to close). It ends once DIR is
    # gone (stopped and removed by its owner) or, after stopping the server, with OWNER.
    # shellcheck disable=SC2016  # the script's own positional parameters
    setsid sh -c 'while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done
                  if [ -f "$2/data/postmaster.pid" ]; then "$3" stop "$2"; rm -rf "$2"; fi' \
      watchdog "$owner" "$dir" "$here/pg_server.sh" </dev/null >/dev/null 2>&1 &
  fi
}

case "$cmd" in
start)
  mkdir -p "$dir"
  hold_root acquire
  [ "$(id -u)" -ne 0 ] || chown -R nobody:nogroup "$dir"
  if ! as_server "$bin/initdb" -D "$dir/data" -A trust -U fota -E UTF8 --locale=C --no-sync \
       >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    hold_root release
    exit 1
  fi
  launch
  ;;
standby)
  mkdir -p "$dir"
  hold_root acquire
  [ "$(id -u)" -ne 0 ] || chown -R nobody:nogroup "$dir"
  # -R writes primary_conninfo (the socket in SRC) and standby.signal; -X stream copies the
  # WAL written meanwhile; the default settings (wal_level replica, 10 WAL senders) allow it.
  if ! as_server "$bin/pg_basebackup" -D "$dir/data" -R -X stream -c fast -h "$src" -U fota \
       >"$dir/basebackup.log" 2>&1; then
    cat "$dir/basebackup.log" >&2
    hold_root release
    exit 1
  fi
  launch
  ;;
promote)
  if ! as_server "$bin/pg_ctl" -D "$dir/data" -w -t 60 -s promote; then
    tail -n 30 "$dir/server.log" >&2 || true
    exit 1
  fi
  ;;
crash)
  as_server "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 -s stop
  ;;
restart)
  if ! as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 -s restart; then
    tail -n 30 "$dir/server.log" >&2 || true
    exit 1
  fi
  ;;
stop)
  rc=0
  if [ -f "$dir/data/postmaster.pid" ]; then
    if ! as_server "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 -s stop; then
      as_server "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 -s stop || rc=1
    fi
  fi
  hold_root release
  exit $rc
  ;;
*) usage ;;
esac
