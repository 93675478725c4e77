#!/usr/bin/env bash
# Builds the dashboard (web/out) when it is missing or older than its sources.
# Needs Node.js and npm; without them it says so and the API runs without the
# dashboard (`make up` goes on).
set -euo pipefail
cd "$(dirname "$0")/../web"
export NEXT_TELEMETRY_DISABLED=1
if ! command -v npm >/dev/null 2>&1; then
    echo "build-web: npm not found; install Node.js 20+ for the dashboard (the API works without it)" >&2
    exit 0
fi
newest_src=$({ find app components lib public package.json package-lock.json next.config.* -type f -printf '%T@\n' 2>/dev/null || true; } | sort -n | tail -1)
built=$(stat -c %Y out/index.html 2>/dev/null || echo 0)
if [[ -f out/index.html && ${newest_src%.*} -le $built ]]; then
    exit 0
fi
stamp=node_modules/.remora-lock.sha
want="$(sha256sum package-lock.json package.json | sha256sum | cut -d' ' -f1)"
if [[ ! -d node_modules || ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
    npm install --no-audit --no-fund
    echo "$want" >"$stamp"
fi
npm run build
