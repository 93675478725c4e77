#!/usr/bin/env bash
# NetQueue vs beanstalkd benchmark (issue 8). Needs beanstalkd (Debian package `beanstalkd`).
# Usage: bench/netqueue/run.sh [--messages N] [--size BYTES]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/nq}"
command -v beanstalkd >/dev/null || { echo "install beanstalkd first (apt-get install beanstalkd)" >&2; exit 1; }
cargo build --release -p remora-netqueue --bin remora-netqueue --example netqueue_bench
exec "$CARGO_TARGET_DIR/release/examples/netqueue_bench" --netqueue-bin "$CARGO_TARGET_DIR/release/remora-netqueue" \
  --beanstalkd "$(command -v beanstalkd)" "$@"
