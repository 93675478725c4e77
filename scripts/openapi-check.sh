#!/usr/bin/env bash
# The published OpenAPI document is valid and usable: validated with the
# standard validator (openapi-spec-validator, PyPI) and turned into a client
# (openapi-typescript from web/node_modules; it rejects duplicate operation
# ids). Run by `make test-openapi` (part of `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."
OSV_VERSION=0.9.0
python3 -c 'import openapi_spec_validator' 2>/dev/null || {
    echo "openapi-check: installing openapi-spec-validator==$OSV_VERSION from PyPI" >&2
    python3 -m pip install -q --disable-pip-version-check "openapi-spec-validator==$OSV_VERSION"
}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cargo run --quiet -p remora-api --example openapi >"$WORK/openapi.json"
python3 -m openapi_spec_validator "$WORK/openapi.json"
python3 - "$WORK/openapi.json" <<'PY'
import json, sys, collections
doc = json.load(open(sys.argv[1]))
ids = collections.Counter(op.get("operationId") for item in doc["paths"].values() for op in item.values() if isinstance(op, dict))
dup = {k: n for k, n in ids.items() if k is None or n > 1}
if dup:
    sys.exit(f"openapi-check: missing or duplicate operationIds: {dup}")
print(f"openapi-check: {sum(ids.values())} operations, unique operationIds")
PY
if [[ -x web/node_modules/.bin/openapi-typescript ]]; then
    (cd web && npx --no-install openapi-typescript "$WORK/openapi.json" --output "$WORK/client.ts" >/dev/null)
    grep -q 'operations' "$WORK/client.ts"
    echo "openapi-check: openapi-typescript generated a client ($(wc -l <"$WORK/client.ts") lines)"
else
    echo "openapi-check: web/node_modules missing (npm install in web/): client not generated" >&2
    exit 1
fi
