#!/usr/bin/env bash
# Retention benchmark: a purge of JOBS finished jobs with output (default 1,000,000) by the
# maintenance task while single-job submissions (POST /api/v1/jobs against the in-process API on
# the same SQLite database) run beside it. Reports submit p50/p99 with and without the purge, the
# purge's duration, the database file's size before/after/after VACUUM, and the zstd ratio of the
# store's packing on generated apt/systemd/nginx-like log lines. Results: docs/benchmarks.md.
# Usage: bench/retention/run.sh [JOBS] [BASELINE_SUBMITS]      (defaults 1000000 1000)
# Not part of `make test`; `make bench-retention` runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_INCREMENTAL=0
cargo build ${REMORA_BENCH_PROFILE:+--profile "$REMORA_BENCH_PROFILE"} -p remora-cli --example retention_bench
dir=debug
[[ "${REMORA_BENCH_PROFILE:-}" == release ]] && dir=release
exec "target/$dir/examples/retention_bench" "${1:-1000000}" "${2:-1000}"
