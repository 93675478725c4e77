#!/usr/bin/env bash
# Smoke test of the README's first steps: the dashboard builds (scripts/build-web.sh), `remora up
# --demo` starts on a fresh data dir, /health answers, the dashboard is served, and a job on
# `local-demo` run with `remora submit --follow` prints its output and exits with its code.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-web.sh
[[ -f web/out/index.html ]] || { echo "smoke-up: the dashboard was not built" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
API_PORT=$(free_port); QUEUE_PORT=$(free_port)
WORK=$(mktemp -d); PID=
cleanup() {
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill -INT "$PID"
        for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
(cd "$WORK" && REMORA_API_ADDR="127.0.0.1:$API_PORT" REMORA_QUEUE_ADDR="127.0.0.1:$QUEUE_PORT" REMORA_WEB_DIR="$OLDPWD/web/out" \
    exec "$OLDPWD/target/debug/remora" up --demo >"$WORK/up.log" 2>&1) &
PID=$!
for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$API_PORT/health" >/dev/null && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/up.log" >&2; exit 1; }
    sleep 0.1
done
grep -q "Admin token:" "$WORK/up.log" || { echo "smoke-up: no admin token line" >&2; cat "$WORK/up.log" >&2; exit 1; }
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$API_PORT/") == 200 ]] || { echo "smoke-up: dashboard not served" >&2; exit 1; }
export REMORA_API_URL="http://127.0.0.1:$API_PORT" REMORA_TOKEN="$(cat "$WORK/data/admin.token")"
set +e
out=$(target/debug/remora submit --server local-demo --follow -- sh -c 'echo out; echo err >&2; exit 3' 2>"$WORK/err")
code=$?
set -e
[[ $out == out && $(cat "$WORK/err") == err && $code == 3 ]] || { echo "smoke-up: got stdout '$out', stderr '$(cat "$WORK/err")', exit $code" >&2; exit 1; }
echo "smoke-up: ok (remora up --demo, /health, dashboard, a job on local-demo)"
