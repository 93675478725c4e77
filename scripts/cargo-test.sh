#!/usr/bin/env bash
# Runs the Rust test suites: cargo-nextest when installed (one process per
# test, so sshd/Postgres fixtures never share state), else cargo test.
set -euo pipefail
if cargo nextest --version >/dev/null 2>&1; then
    exec cargo nextest run --workspace --no-fail-fast --failure-output final "$@"
else
    exec cargo test --workspace --no-fail-fast "$@"
fi
