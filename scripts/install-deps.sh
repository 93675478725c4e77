#!/usr/bin/env bash
# Installs the system packages Remora's tests need (idempotent).
#
# Usage: scripts/install-deps.sh [EXTRA_PACKAGE...]     e.g. scripts/install-deps.sh chromium
#
# As root: installs whatever is missing (apt-get update only then) and creates /run/sshd.
# Not root: lists what is missing and exits 1 (exits 0 when nothing is).
set -euo pipefail

# psql comes with postgresql (postgresql-client-NN); the postgresql-client metapackage is not needed.
# dropbear-bin, the login shells, busybox-static, iproute2 and sudo are for the testkit's fixtures
# (crates/testkit: Dropbear server, users with each login shell, BusyBox-only chroot host, sudo rules,
# network namespaces). busybox-static, not busybox: the two conflict, and the static binary
# serves both the `busybox sh` login shell and the chroot (it needs no libraries there).
packages=(openssh-server openssh-client postgresql procps passwd curl
    dropbear-bin fish tcsh zsh ksh busybox-static iproute2 sudo "$@")

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

if [[ $(id -u) -ne 0 ]]; then
    if ((${#missing[@]})); then
        echo "missing packages: ${missing[*]}" >&2
        echo "install them as root: scripts/install-deps.sh $* (or apt-get install ${missing[*]})" >&2
        exit 1
    fi
    exit 0
fi

if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Package scripts would start sshd on :22 and a PostgreSQL cluster on :5432 through
    # invoke-rc.d; tests start their own, so forbid service starts while we install.
    created_policy=
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get -o DPkg::Lock::Timeout=300 update -q
    apt-get -o DPkg::Lock::Timeout=300 install -y -q "${missing[@]}"
    if [[ -n $created_policy ]]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
fi

# sshd's privilege separation directory; normally created by the init system, absent here.
mkdir -p /run/sshd
chmod 0755 /run/sshd

# The SMTP server the notification tests start (crates/notify/tests): aiosmtpd from PyPI.
AIOSMTPD_VERSION=1.4.6
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing: python3 -m pip install aiosmtpd==$AIOSMTPD_VERSION" >&2
        exit 1
    fi
    echo "installing aiosmtpd==$AIOSMTPD_VERSION from PyPI" >&2
    python3 -m pip install -q --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
fi
