#!/usr/bin/env bash
# The dashboard's whole check, for `make test` and CI: install (when needed),
# generated API types against the OpenAPI document (scripts/check-types.sh),
# static export, component tests (Vitest), end-to-end tests in Chromium
# against a real stack (scripts/e2e.sh). Writes no tracked file: test
# artefacts go to the ignored e2e-artifacts/. Fails loudly; under CI=true a missing
# Chromium is installed (as root) or the run fails, never skipped.
set -euo pipefail
WEB="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$WEB"
export NEXT_TELEMETRY_DISABLED=1

# Reinstall when node_modules is missing or older than the lock file.
# (`npm ci` fails here: see ../shared TESTBED notes.)
stamp=node_modules/.remora-lock.sha
want="$(sha256sum package-lock.json package.json | sha256sum | cut -d' ' -f1)"
if [[ ! -d node_modules || ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  echo "[web] npm install"
  npm install --no-audit --no-fund
  echo "$want" >"$stamp"
fi

echo "[web] generated API types"
bash scripts/check-types.sh

echo "[web] build (static export to web/out)"
npm run build
[[ -f out/index.html ]] || { echo "[web] ERROR: the build wrote no out/index.html" >&2; exit 1; }

echo "[web] component tests"
npm test

echo "[web] end-to-end tests"
npm run e2e
