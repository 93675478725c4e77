#!/usr/bin/env bash
# API benchmark: GET /api/v1/jobs?limit=50 (with and without filters) over 1M jobs on SQLite and
# PostgreSQL, and SSE line latency through the whole stack. Results: docs/benchmarks.md.
# Usage: bench/api/run.sh [JOBS] [REQUESTS]      (defaults 1000000 300)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p remora-cli --example api_bench
scripts/with-postgres.sh bash -c 'REMORA_BENCH_PG_URL=$REMORA_TEST_PG_URL target/release/examples/api_bench "$@"' _ "${1:-1000000}" "${2:-300}"
