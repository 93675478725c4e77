#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL cluster.
#
# Usage: scripts/with-postgres.sh CMD [ARG...]
#   e.g. scripts/with-postgres.sh cargo nextest run --workspace
#
# initdb's a cluster in a temp dir, starts it on a free 127.0.0.1 port (fsync off, trust auth),
# exports REMORA_TEST_PG_URL=postgres://postgres@127.0.0.1:PORT/postgres, runs CMD, then stops
# the cluster and deletes the dir whatever happened. Exits with CMD's status.
set -euo pipefail

if (($# == 0)); then
    sed -n '2,9s/^# \{0,1\}//p' "$0" >&2
    exit 2
fi

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z $pgbin || ! -x $pgbin/initdb ]]; then
    echo "with-postgres: no PostgreSQL server under /usr/lib/postgresql (run scripts/install-deps.sh as root)" >&2
    exit 1
fi
if ! command -v psql >/dev/null; then
    echo "with-postgres: psql not found (run scripts/install-deps.sh as root)" >&2
    exit 1
fi

# initdb refuses to run as root: run the server as postgres then, and let it own the dir.
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
    as_pg=(runuser -u postgres --)
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/remora-pg.XXXXXX")
started=
cleanup() {
    if [[ -n $started ]]; then
        "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap runs (bash skips it on a fatal signal).
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$dir"
fi
chmod 0700 "$dir"

"${as_pg[@]}" "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }

# A port is free when nothing answers on it; a lost race (someone binds it before postgres
# does) makes pg_ctl fail, and we try another.
for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 30000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        continue
    fi
    if "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -t 60 start \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        >/dev/null 2>&1; then
        started=1
        break
    fi
    # pg_ctl -w may give up while the postmaster still runs: stop it before the next try.
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
done
if [[ -z $started ]]; then
    echo "with-postgres: could not start PostgreSQL; log:" >&2
    cat "$dir/pg.log" >&2 || true
    exit 1
fi

export REMORA_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
echo "with-postgres: $REMORA_TEST_PG_URL ($pgbin)" >&2

set +e
"$@"
status=$?
set -e
exit "$status"
