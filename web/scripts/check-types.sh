#!/usr/bin/env bash
# Fails when lib/api-types.gen.ts differs from what the API's current OpenAPI
# document generates (run by test.sh, so by `make test-web` and CI). Fix:
# web/scripts/gen-types.sh, then commit the file.
set -euo pipefail
WEB="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$WEB/scripts/gen-types.sh"
if ! git -C "$WEB" diff --exit-code -- lib/api-types.gen.ts; then
  echo "[web] ERROR: lib/api-types.gen.ts is out of date with the API's OpenAPI document: run web/scripts/gen-types.sh and commit it" >&2
  exit 1
fi
if git -C "$WEB" ls-files --error-unmatch lib/api-types.gen.ts >/dev/null 2>&1; then :; else
  echo "[web] ERROR: lib/api-types.gen.ts is not committed" >&2
  exit 1
fi
echo "[web] generated API types match the OpenAPI document"
