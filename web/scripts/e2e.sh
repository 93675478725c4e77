#!/usr/bin/env bash
# End-to-end tests of the dashboard in Debian's Chromium (Playwright, no
# browser download) against a real stack: `remora up --demo` on free ports
# with a temp data dir, plus a real OpenSSH host from `remora-testkit sshd`.
# Screenshots of every page and the benchmark table go to the ignored
# web/e2e-artifacts/ (SCREENSHOT_DIR and REMORA_BENCH_OUT override that:
# `make screenshots` and `make web-benchmarks` point them at the tracked
# docs/screenshots/ and web/benchmarks.md). Stops everything it started, by PID.
set -euo pipefail

WEB="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$WEB/.." && pwd)"
export NEXT_TELEMETRY_DISABLED=1
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
log() { printf '[e2e] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- Chromium -------------------------------------------------------------
if [[ ! -x "$CHROMIUM" ]]; then
  if [[ "$(id -u)" == 0 ]]; then
    log "installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 install -y chromium >/dev/null 2>&1 \
      || { apt-get -o DPkg::Lock::Timeout=300 update >/dev/null && apt-get -o DPkg::Lock::Timeout=300 install -y chromium >/dev/null; } \
      || die "could not install chromium"
    CHROMIUM=/usr/bin/chromium
  else
    die "$CHROMIUM is missing and this is not root: apt-get install chromium"
  fi
fi
export CHROMIUM

# --- binaries and the static export ----------------------------------------
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
if [[ ! -x "$BIN/remora" || ! -x "$BIN/remora-testkit" ]]; then
  log "building remora and remora-testkit (cargo build --bins)"
  (cd "$ROOT" && cargo build --bins)
fi
if [[ ! -f "$WEB/out/index.html" ]]; then
  log "building the dashboard"
  (cd "$WEB" && npm run build)
fi
[[ -d "$WEB/node_modules/@playwright/test" ]] || die "node_modules missing: run npm install --no-audit --no-fund in web/"

# --- the stack ----------------------------------------------------------------
TMP="$(mktemp -d /tmp/remora-e2e.XXXXXX)"
REMORA_PID=""
SSHD_PID=""
cleanup() {
  local rc=$?
  set +e
  if [[ -n "$REMORA_PID" ]] && kill -0 "$REMORA_PID" 2>/dev/null; then
    kill -TERM "$REMORA_PID"
    for _ in $(seq 1 100); do kill -0 "$REMORA_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$REMORA_PID" 2>/dev/null
    wait "$REMORA_PID" 2>/dev/null
  fi
  if [[ -n "$SSHD_PID" ]]; then
    exec 9>&- 2>/dev/null # closing its stdin makes the testkit clean up and exit
    for _ in $(seq 1 100); do kill -0 "$SSHD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -TERM "$SSHD_PID" 2>/dev/null
    wait "$SSHD_PID" 2>/dev/null
  fi
  if [[ $rc -ne 0 ]]; then
    log "failed (exit $rc); last lines of the stack's log:"
    tail -n 40 "$TMP/remora.log" >&2 2>/dev/null
  fi
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
API_PORT="$(free_port)"
QUEUE_PORT="$(free_port)"
while [[ "$QUEUE_PORT" == "$API_PORT" ]]; do QUEUE_PORT="$(free_port)"; done
TOKEN="rmr_e2e_$(node -e 'console.log(require("crypto").randomBytes(16).toString("hex"))')"

log "starting a real sshd (remora-testkit)"
mkfifo "$TMP/sshd.in"
"$BIN/remora-testkit" sshd --pem-key <"$TMP/sshd.in" >"$TMP/sshd.json" 2>"$TMP/sshd.log" &
SSHD_PID=$!
exec 9>"$TMP/sshd.in"
for _ in $(seq 1 300); do
  [[ -s "$TMP/sshd.json" ]] && break
  kill -0 "$SSHD_PID" 2>/dev/null || { cat "$TMP/sshd.log" >&2; die "remora-testkit sshd exited"; }
  sleep 0.1
done
[[ -s "$TMP/sshd.json" ]] || die "remora-testkit sshd printed nothing within 30 s"

log "starting remora up --demo on 127.0.0.1:$API_PORT"
REMORA_DATA_DIR="$TMP/data" REMORA_API_ADDR="127.0.0.1:$API_PORT" REMORA_QUEUE_ADDR="127.0.0.1:$QUEUE_PORT" \
  REMORA_WEB_DIR="$WEB/out" REMORA_ADMIN_TOKEN="$TOKEN" \
  REMORA_LIST_COUNT_CAP=100000 REMORA_MAX_BATCH_HOSTS="${REMORA_MAX_BATCH_HOSTS:-5000}" \
  "$BIN/remora" up --demo >"$TMP/remora.log" 2>&1 &
REMORA_PID=$!
URL="http://127.0.0.1:$API_PORT"
for _ in $(seq 1 600); do
  curl -fsS "$URL/health" >/dev/null 2>&1 && break
  kill -0 "$REMORA_PID" 2>/dev/null || die "remora up exited"
  sleep 0.1
done
curl -fsS "$URL/health" >/dev/null || die "the API did not become healthy within 60 s"
# The demo host registers itself shortly after the API is up.
for _ in $(seq 1 300); do
  curl -fsS -H "Authorization: Bearer $TOKEN" "$URL/api/v1/servers/local-demo" >/dev/null 2>&1 && break
  sleep 0.1
done

# --- the tests --------------------------------------------------------------
ARTIFACTS="$WEB/e2e-artifacts"
SHOTS="${SCREENSHOT_DIR:-$ARTIFACTS/screenshots}"
BENCH_OUT="${REMORA_BENCH_OUT:-$ARTIFACTS/benchmarks.md}"
mkdir -p "$SHOTS" "$(dirname "$BENCH_OUT")"
log "running Playwright against $URL"
cd "$WEB"
REMORA_URL="$URL" REMORA_TOKEN="$TOKEN" SSHD_JSON="$TMP/sshd.json" SCREENSHOT_DIR="$SHOTS" \
  REMORA_BENCH_OUT="$BENCH_OUT" \
  timeout --signal=TERM --kill-after=10 2700 npx --no-install playwright test "$@"
log "screenshots in $SHOTS, benchmarks in $BENCH_OUT"
