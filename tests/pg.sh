#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests: a temporary directory, a unix
# socket in it, no TCP port.
#   tests/pg.sh start DIR   initdb (if needed) and start; the socket is in DIR
#   tests/pg.sh stop DIR    stop it (immediate) and remove DIR
#   tests/pg.sh restart DIR
#   tests/pg.sh halt DIR    stop it (fast) but keep DIR, to start it again
# initdb refuses root, so as root the server runs as the system user s1test.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -n "$bindir" ] || { echo "pg.sh: no PostgreSQL server found; run tools/deps.sh" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u s1test -- "$@"
    else
        "$@"
    fi
}

cmd=${1:?usage: pg.sh start|stop|restart DIR}
dir=${2:?usage: pg.sh start|stop|restart DIR}

case "$cmd" in
start)
    if [ "$(id -u)" -eq 0 ] && ! id s1test >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin s1test
    fi
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown s1test "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$bindir/initdb" -D "$dir/data" -U s1 --auth=trust --no-sync \
            -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-k $dir -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
        start >/dev/null ||
        { cat "$dir/server.log" >&2; exit 1; }
    ;;
stop)
    [ -f "$dir/data/postmaster.pid" ] &&
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
halt)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
restart)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 \
        -o "-k $dir -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
        restart >/dev/null
    ;;
*)
    echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac
