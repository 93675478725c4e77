#!/usr/bin/env bash
# Static checks of deployment/: every REMORA_* variable the product reads (tests and the testkit
# excluded) is in .env.template, the
# scripts parse, the systemd units verify (when systemd-analyze exists), and the compose file
# validates (when docker compose or docker-compose exists). Fast; no build, no network.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0

missing=$(comm -23 \
    <(grep -rhoE 'env = "REMORA_[A-Z_]+"|var(_os)?\("REMORA_[A-Z_]+"' crates --include=*.rs --exclude-dir=tests --exclude-dir=testkit | grep -oE 'REMORA_[A-Z_]+' | sort -u) \
    <(grep -oE '^#?REMORA_[A-Z_]+=' deployment/.env.template | tr -d '#=' | sort -u))
if [[ -n $missing ]]; then
    echo "deployment/.env.template lacks: $(echo $missing)" >&2
    fail=1
fi
for f in deployment/install.sh deployment/test-install.sh scripts/dist.sh scripts/chaos.sh; do
    bash -n "$f" || fail=1
done
if command -v systemd-analyze >/dev/null; then
    # Only the missing /usr/local/bin executables may be reported on a build machine.
    out=$(for u in deployment/systemd/*.service; do systemd-analyze verify "$u" 2>&1; done | grep -v 'is not executable' || true)
    [[ -z $out ]] || { echo "$out" >&2; fail=1; }
fi
# An empty POSTGRES_PASSWORD must stop compose, never fall back to a default password.
if grep -qE 'POSTGRES_PASSWORD:-' deployment/docker-compose.yml \
    || [[ $(grep -c 'POSTGRES_PASSWORD:?' deployment/docker-compose.yml) -lt 2 ]]; then
    echo "deployment/docker-compose.yml must require POSTGRES_PASSWORD (\${POSTGRES_PASSWORD:?...}), not default it" >&2
    fail=1
fi
if docker compose version >/dev/null 2>&1; then
    POSTGRES_PASSWORD=check docker compose -f deployment/docker-compose.yml config -q || fail=1
    if POSTGRES_PASSWORD= docker compose -f deployment/docker-compose.yml config -q 2>/dev/null; then
        echo "docker compose accepted an empty POSTGRES_PASSWORD" >&2; fail=1
    fi
elif command -v docker-compose >/dev/null; then
    POSTGRES_PASSWORD=check docker-compose -f deployment/docker-compose.yml config -q || fail=1
else
    echo "deployment/check.sh: no docker compose here; compose file not validated" >&2
fi
((fail == 0)) && echo "deployment: checks passed"
exit "$fail"
