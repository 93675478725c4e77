#!/usr/bin/env bash
# Builds the release tarball dist/remora-<version>-linux-x86_64.tar.gz:
#   bin/{remora,remora-api,remora-worker,remora-netqueue}  release binaries (glibc, x86_64)
#   web/                                                   the built dashboard (web/out), if built
#   systemd/*.service, remora.env.template, install.sh, README.md (deployment/README.md), VERSION
#
# Usage: scripts/dist.sh        (DIST_DIR=dist, CARGO=cargo; WEB_BUILD=1 runs `npm run build` in web/ first)
# The dashboard is included when web/out/index.html exists; otherwise the tarball says so in
# NO-DASHBOARD.txt and the API serves only /api and /health.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
CARGO=${CARGO:-cargo}
DIST_DIR=${DIST_DIR:-$root/dist}

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
[[ -n $version ]] || { echo "dist: no version in [workspace.package] of Cargo.toml" >&2; exit 1; }
arch=$(uname -m)
name=remora-$version-linux-$arch

if [[ ${WEB_BUILD:-} == 1 ]]; then
    (cd web && NEXT_TELEMETRY_DISABLED=1 npm install --no-audit --no-fund && NEXT_TELEMETRY_DISABLED=1 npm run build)
fi

"$CARGO" build --release --locked -p remora-cli -p remora-api -p remora-worker -p remora-netqueue --bins
target=$("$CARGO" metadata --format-version 1 --no-deps | jq -r .target_directory 2>/dev/null || echo "$root/target")

stage=$(mktemp -d "${TMPDIR:-/tmp}/remora-dist.XXXXXX")
trap 'rm -rf "$stage"' EXIT
out=$stage/$name
mkdir -p "$out/bin" "$out/systemd"
for b in remora remora-api remora-worker remora-netqueue; do
    install -m 0755 "$target/release/$b" "$out/bin/$b"
done
strip "$out"/bin/* 2>/dev/null || true
if [[ -f web/out/index.html ]]; then
    cp -a web/out "$out/web"
    web_note="dashboard: web/out"
else
    echo "This release was built without the dashboard (web/out did not exist): the API serves only /api and /health. Build it with WEB_BUILD=1 scripts/dist.sh." >"$out/NO-DASHBOARD.txt"
    web_note="dashboard: NOT included (web/out missing; WEB_BUILD=1 builds it)"
fi
install -m 0644 deployment/systemd/*.service "$out/systemd/"
install -m 0644 deployment/.env.template "$out/remora.env.template"
install -m 0644 deployment/README.md "$out/README.md"
install -m 0755 deployment/install.sh "$out/install.sh"
echo "$version" >"$out/VERSION"

mkdir -p "$DIST_DIR"
tarball=$DIST_DIR/$name.tar.gz
# Reproducible-ish: fixed owner and sorted names.
tar -C "$stage" --owner=0 --group=0 --numeric-owner --sort=name -czf "$tarball.tmp" "$name"
mv -f "$tarball.tmp" "$tarball"
(cd "$DIST_DIR" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "dist: $tarball ($(du -h "$tarball" | cut -f1); $web_note)"
