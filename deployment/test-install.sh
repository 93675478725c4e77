#!/usr/bin/env bash
# Follows deployment/README.md's "Release tarball", "One machine" and "Upgrades" steps on this
# machine without touching it: inside a private mount namespace, /usr/local, /etc/remora,
# /etc/systemd/system and /var/lib/remora are empty temp dirs. There is no systemd here, so a small
# `systemctl` stand-in runs each unit the way systemd would (EnvironmentFile=, Environment=, User=,
# StateDirectory=, UMask=, ExecStart=; not the sandboxing). Then registers a real OpenSSH host
# (remora-testkit) with the installed CLI and runs a job, upgrades, and checks the job is still there.
#
# Usage (root): deployment/test-install.sh dist/remora-VERSION-linux-x86_64.tar.gz
# Creates the system user `remora` as install.sh does, and deletes it at the end if it created it.
set -euo pipefail

if [[ ${1:-} != --inside ]]; then
    tarball=$(realpath "${1:?usage: deployment/test-install.sh TARBALL}")
    [[ $(id -u) -eq 0 ]] || { echo "test-install: run as root" >&2; exit 1; }
    had_user=$(getent passwd remora >/dev/null && echo 1 || true)
    made_dirs=()
    for d in /etc/remora /var/lib/remora; do
        [[ -e $d ]] || { mkdir -p "$d"; made_dirs+=("$d"); }
    done
    set +e
    unshare --mount --propagation private "$0" --inside "$tarball" "$(realpath "$(dirname "$0")/..")"
    rc=$?
    set -e
    for d in "${made_dirs[@]}"; do rmdir "$d" 2>/dev/null || true; done
    if [[ -z $had_user ]] && getent passwd remora >/dev/null; then userdel remora 2>/dev/null || true; fi
    echo "test-install: exit $rc"
    exit "$rc"
fi

tarball=$2
repo=$3
T=$(mktemp -d "${TMPDIR:-/tmp}/remora-install.XXXXXX")
for d in usr-local etc-remora etc-systemd var-lib-remora home; do mkdir -p "$T/$d"; done
mount --bind "$T/usr-local" /usr/local
mount --bind "$T/etc-remora" /etc/remora
mount --bind "$T/etc-systemd" /etc/systemd/system
mount --bind "$T/var-lib-remora" /var/lib/remora
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

declare -A UNIT_PID=()
sudo() { "$@"; }
systemctl() { # the subset the README uses
    local cmd=$1
    shift
    [[ $cmd == enable && ${1:-} == --now ]] && { cmd=start; shift; }
    case $cmd in
        daemon-reload) return 0 ;;
        start) for u in "$@"; do unit_start "$u"; done ;;
        stop) for u in "$@"; do unit_stop "$u"; done ;;
        restart) for u in "$@"; do unit_stop "$u"; unit_start "$u"; done ;;
        *) echo "systemctl stand-in: $cmd unsupported" >&2; return 1 ;;
    esac
}
unit_start() {
    local u=${1%.service} f line key val user= exec= umask_=0022
    f=/etc/systemd/system/$u.service
    # systemd: EnvironmentFile= settings override Environment= ones, whatever their order.
    local -a envs=() fenvs=()
    while IFS= read -r line; do
        [[ $line == *=* && $line != \#* ]] || continue
        key=${line%%=*} val=${line#*=}
        case $key in
            User) user=$val ;;
            UMask) umask_=$val ;;
            ExecStart) exec=$val ;;
            Environment) envs+=("$val") ;;
            EnvironmentFile)
                local opt= p=$val
                [[ $p == -* ]] && { opt=1; p=${p#-}; }
                if [[ -f $p ]]; then
                    while IFS= read -r l; do [[ $l == *=* && $l != \#* ]] && fenvs+=("$l"); done <"$p"
                elif [[ -z $opt ]]; then echo "$u: $p missing" >&2; return 1; fi ;;
            StateDirectory)
                for s in $val; do install -d -o "$user" -g "$user" -m 0700 "/var/lib/$s"; done ;;
        esac
    done <"$f"
    (cd / && umask "$umask_" && exec runuser -u "$user" -- env -i PATH=/usr/bin:/bin "${envs[@]}" "${fenvs[@]}" $exec) \
        >>"$T/$u.log" 2>&1 &
    UNIT_PID[$u]=$!
    echo "  [systemctl] started $u (pid $!)"
}
unit_stop() {
    local u=${1%.service} p
    p=${UNIT_PID[$u]:-}
    [[ -n $p ]] || return 0
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 400); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    wait "$p" 2>/dev/null || true
    unset "UNIT_PID[$u]"
    echo "  [systemctl] stopped $u"
}
host_pid=
cleanup() {
    set +e
    for u in remora-worker remora-api remora-netqueue; do unit_stop "$u" >/dev/null; done
    [[ -n $host_pid ]] && { exec 7>&-; wait "$host_pid"; }
    umount /var/lib/remora /etc/systemd/system /etc/remora /usr/local
    rm -rf "$T"
}
trap cleanup EXIT
wait_health() {
    for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:8080/health 2>/dev/null && { echo; return 0; }; sleep 0.2; done
    echo "API not healthy; log:" >&2; tail -n 20 "$T/remora-api.log" >&2; return 1
}
step() { printf '\n== %s\n' "$*"; }

cd "$T/home"
cp "$tarball" "$tarball.sha256" .
name=$(basename "$tarball" .tar.gz)

step "Release tarball: verify, unpack, install"
sha256sum -c "$name.tar.gz.sha256"
tar xzf "$name.tar.gz"
sudo "$name/install.sh"
ls -l /etc/remora/remora.env /usr/local/bin/remora*
stat -c '%a %U:%G %n' /etc/remora/remora.env
systemd-analyze verify /etc/systemd/system/remora-*.service

step "One machine: start, health, admin token"
sudo systemctl enable --now remora-netqueue remora-api remora-worker
wait_health
ADMIN=$(sudo grep ADMIN_TOKEN /etc/remora/remora.env | cut -d= -f2)
stat -c '%a %U %n' /var/lib/remora /var/lib/remora/queue /var/lib/remora/remora.db

step "A job through the installed CLI on a real OpenSSH host"
exec 7> >(exec "$repo/target/debug/remora-testkit" sshd --ip 127.0.0.1 >"$T/host.json" 2>"$T/host.log")
host_pid=$!
for _ in $(seq 1 100); do grep -q port "$T/host.json" 2>/dev/null && break; sleep 0.1; done
export REMORA_API_URL=http://127.0.0.1:8080 REMORA_TOKEN=$ADMIN
jq -r .password "$T/host.json" | remora servers add web1 --host "$(jq -r .host "$T/host.json")" \
    --port "$(jq -r .port "$T/host.json")" --user "$(jq -r .user "$T/host.json")" --password-stdin
remora submit --server web1 --follow -- echo hello from an installed remora
JOB=$(remora --output json jobs list | jq -r '(.jobs // .items // .)[0].id')
remora jobs get "$JOB" | head -n 5
[[ -d /usr/local/share/remora/web ]] && curl -fsS -o /dev/null -w 'dashboard / -> HTTP %{http_code}\n' http://127.0.0.1:8080/

step "Upgrade (same tarball re-installed: the procedure, not a version change)"
tar xzf "$name.tar.gz"
sudo "$name/install.sh"
sudo systemctl daemon-reload
sudo systemctl restart remora-netqueue
sudo systemctl restart remora-api
sudo systemctl restart remora-worker
remora --version; wait_health
remora jobs get "$JOB" | grep -i status
remora submit --server web1 --follow -- echo still works after the upgrade
step "README steps passed"
