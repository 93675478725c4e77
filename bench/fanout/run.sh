#!/usr/bin/env bash
# Fan-out benchmark (issue 15): `echo hi` to HOSTS OpenSSH hosts on
# 127.10.x.y (ceil(HOSTS/16) sshd processes, one throwaway user), Remora cold
# and warm against parallel-ssh, ClusterShell and pdsh at the same fan-out,
# with sshd's own CPU time as the floor. Needs root (the user, apt).
# Usage: bench/fanout/run.sh [HOSTS] [FANOUT] [--only-remora]   (defaults 1000 256)
# Raw results: bench/fanout/results/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/../.."
HOSTS=${1:-1000}
FANOUT=${2:-256}
[[ $HOSTS =~ ^[0-9]+$ && $FANOUT =~ ^[0-9]+$ ]] || { echo "usage: $0 [HOSTS] [FANOUT]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root: the hosts get a throwaway user, peers come from apt" >&2; exit 1; }

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
command -v parallel-ssh >/dev/null || need+=(pssh)
command -v clush >/dev/null || need+=(clustershell)
command -v pdsh >/dev/null || need+=(pdsh)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} ..." >&2
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need[@]}" >/dev/null
fi
mkdir -p /run/sshd
# sshd processes + the peers' ssh processes + Remora's connections.
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge $((HOSTS * 2 + 1024)) ] || {
  echo "the open-file hard limit ($(ulimit -Hn)) is too low for $HOSTS hosts" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"

cargo build --release -p remora-cli --bins

WORK=$(mktemp -d /tmp/remora-fanout.XXXXXX)
chmod 755 "$WORK"
# If bench.py dies before its own cleanup: end every process it started (by
# PID, only if its command line still names this run's files or binary),
# then the throwaway user and its processes, then the work dir.
cleanup() {
  set +e
  if [ -f "$WORK/pids" ]; then
    while read -r pid; do
      [ -r "/proc/$pid/cmdline" ] || continue
      if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -e "$WORK" -e "target/release/remora"; then
        kill "$pid" 2>/dev/null
      fi
    done <"$WORK/pids"
  fi
  if [ -f "$WORK/user" ]; then
    u=$(cat "$WORK/user")
    if id "$u" >/dev/null 2>&1; then
      for _ in $(seq 1 50); do
        pids=$(pgrep -u "$u" || true)
        [ -z "$pids" ] && break
        kill -9 $pids 2>/dev/null
        sleep 0.1
      done
      userdel -r "$u" 2>/dev/null
    fi
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

python3 bench/fanout/bench.py --remora target/release/remora --work "$WORK" \
  --results bench/fanout/results --hosts "$HOSTS" --fanout "$FANOUT" "${@:3}"
