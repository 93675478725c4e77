#!/usr/bin/env bash
# Property-based API test: schemathesis (PyPI) against /api/openapi.json of a
# real `remora up --demo` stack with a token. Fails on any 5xx, undocumented
# status code or content type, or a response that violates its schema.
# Bounded: --max-examples per operation and a wall-clock timeout.
#
# Usage: scripts/schemathesis.sh [MAX_EXAMPLES]     (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
MAX=${1:-30}
ST_VERSION=4.32.5

if ! command -v schemathesis >/dev/null 2>&1 || [[ $(schemathesis --version 2>/dev/null | awk '{print $NF}') != "$ST_VERSION" ]]; then
    echo "schemathesis: installing schemathesis==$ST_VERSION from PyPI" >&2
    python3 -m pip install -q --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

[[ -x target/debug/remora ]] || cargo build --bins

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
API_PORT=$(free_port)
QUEUE_PORT=$(free_port)
TOKEN="rmr_schemathesis_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
WORK=$(mktemp -d)
PID=
cleanup() {
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID"
        for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

REMORA_DATA_DIR="$WORK/data" REMORA_ADMIN_TOKEN="$TOKEN" REMORA_RATE_LIMIT=0 \
REMORA_API_ADDR="127.0.0.1:$API_PORT" REMORA_QUEUE_ADDR="127.0.0.1:$QUEUE_PORT" REMORA_WEB_DIR="$WORK/none" \
    target/debug/remora up --demo >"$WORK/up.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$API_PORT/health" >/dev/null && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/up.log" >&2; exit 1; }
    sleep 0.1
done

# The SSE routes stay open while a job runs; they have their own end-to-end tests.
timeout 600 schemathesis run "http://127.0.0.1:$API_PORT/api/openapi.json" \
    -H "Authorization: Bearer $TOKEN" \
    --max-examples "$MAX" --seed 1 \
    --exclude-path-regex 'stream|events' \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --no-color
if grep -q "panicked" "$WORK/up.log"; then
    echo "schemathesis: the server panicked:" >&2
    grep -A5 panicked "$WORK/up.log" >&2
    exit 1
fi
