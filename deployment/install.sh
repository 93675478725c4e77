#!/usr/bin/env bash
# Installs (or upgrades) Remora from an unpacked release tarball.
#
# Usage: sudo ./install.sh [--root DIR] [--no-systemd]
#   --root DIR     install under DIR instead of / (staging, tests); implies --no-systemd and
#                  skips creating the system user
#   --no-systemd   do not run systemctl daemon-reload
#
# Puts the binaries in /usr/local/bin, the dashboard in /usr/local/share/remora/web, the unit
# files in /etc/systemd/system, and creates /etc/remora/remora.env (mode 0640, group remora) with
# fresh secrets when it does not exist yet; an existing remora.env is never touched, so an upgrade
# keeps its settings. Starts nothing: see README.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=
systemd=1
while (($#)); do
    case $1 in
        --root) root=${2:?--root needs a directory}; systemd=; shift 2 ;;
        --no-systemd) systemd=; shift ;;
        -h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [[ -z $root && $(id -u) -ne 0 ]]; then
    echo "install.sh: run as root (or use --root DIR to stage elsewhere)" >&2
    exit 1
fi
root=${root%/}

for b in remora remora-api remora-worker remora-netqueue; do
    [[ -x $here/bin/$b ]] || { echo "install.sh: $here/bin/$b missing: run me from an unpacked release" >&2; exit 1; }
done

if [[ -z $root ]] && ! getent passwd remora >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/remora --no-create-home --shell /usr/sbin/nologin remora
    echo "created system user remora"
fi

install -d "$root/usr/local/bin" "$root/usr/local/share/remora" "$root/etc/systemd/system" "$root/etc/remora"
# Replace binaries by rename, so a running process keeps its old inode and the upgrade is atomic.
for b in remora remora-api remora-worker remora-netqueue; do
    install -m 0755 "$here/bin/$b" "$root/usr/local/bin/.$b.new"
    mv -f "$root/usr/local/bin/.$b.new" "$root/usr/local/bin/$b"
done
if [[ -d $here/web ]]; then
    rm -rf "$root/usr/local/share/remora/web.new"
    cp -a "$here/web" "$root/usr/local/share/remora/web.new"
    rm -rf "$root/usr/local/share/remora/web.old"
    [[ -d $root/usr/local/share/remora/web ]] && mv "$root/usr/local/share/remora/web" "$root/usr/local/share/remora/web.old"
    mv "$root/usr/local/share/remora/web.new" "$root/usr/local/share/remora/web"
    rm -rf "$root/usr/local/share/remora/web.old"
else
    echo "note: this release has no dashboard (web/): the API serves only /api and /health"
fi
install -m 0644 "$here/README.md" "$here/remora.env.template" "$root/usr/local/share/remora/"
[[ -f $here/VERSION ]] && install -m 0644 "$here/VERSION" "$root/usr/local/share/remora/"
for u in "$here"/systemd/*.service; do
    install -m 0644 "$u" "$root/etc/systemd/system/"
done

env_file=$root/etc/remora/remora.env
if [[ ! -e $env_file ]]; then
    hex() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
    umask 027
    {
        echo "# Written by install.sh on $(date -u +%FT%TZ). Every setting: $root/usr/local/share/remora/remora.env.template"
        echo "# Copy this file unchanged to every Remora host (API, queue and workers share the secrets)."
        echo "REMORA_DATA_DIR=/var/lib/remora"
        echo "REMORA_LOG_FORMAT=json"
        echo "# postgres://remora:PASSWORD@DBHOST:5432/remora for more than one host; empty = SQLite in the data dir."
        echo "#REMORA_DATABASE_URL=postgres://remora:PASSWORD@127.0.0.1:5432/remora"
        echo "# The queue server's address: it listens there, API and workers connect there."
        echo "REMORA_QUEUE_ADDR=127.0.0.1:9000"
        echo "REMORA_QUEUE_TOKEN=$(hex)"
        echo "REMORA_MASTER_KEY=$(hex)"
        echo "REMORA_ADMIN_TOKEN=$(hex)"
        echo "REMORA_API_ADDR=127.0.0.1:8080"
    } >"$env_file"
    [[ -z $root ]] && chgrp remora "$env_file"
    chmod 0640 "$env_file"
    echo "wrote $env_file (new secrets; the admin token is REMORA_ADMIN_TOKEN in it)"
else
    echo "kept $env_file"
fi

if [[ -n $systemd ]] && [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload
fi
echo "installed remora $(cat "$here/VERSION" 2>/dev/null || echo '') into ${root:-/}"
