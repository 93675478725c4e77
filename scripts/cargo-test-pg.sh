#!/usr/bin/env bash
# Second pass of the API and CLI end-to-end suites with every stack on PostgreSQL
# (REMORA_TEST_DB=postgres; run through scripts/with-postgres.sh). The first pass
# (scripts/cargo-test.sh) runs them on SQLite.
set -euo pipefail
export REMORA_TEST_DB=postgres
if cargo nextest --version >/dev/null 2>&1; then
    exec cargo nextest run -p remora-cli --no-fail-fast --failure-output final \
        -E 'test(/^api::|^api_more::|^openapi::|^cli::|^cli_more::|^logs_secrets::/)'
else
    exec cargo test -p remora-cli --test it -- api:: api_more:: openapi:: cli:: cli_more:: logs_secrets::
fi
