#!/usr/bin/env bash
# Times the inventory import of generated 1,000-host files (ssh_config with a bastion and
# ProxyJump, Ansible INI with groups and children, Ansible YAML): the first import and the
# unchanged re-import, on SQLite and on a throwaway PostgreSQL cluster.
#
# Usage: bench/import/run.sh [HOSTS]   (default 1000)
# Builds in the dev profile like the tests (add --release to the cargo line for release numbers).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000}
export CARGO_INCREMENTAL=0
cargo build -q -p remora-api --example import_bench
bin=target/debug/examples/import_bench
"$bin" "$n"
scripts/with-postgres.sh bash -c "REMORA_BENCH_PG_URL=\$REMORA_TEST_PG_URL '$bin' '$n'"
