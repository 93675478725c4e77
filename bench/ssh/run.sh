#!/usr/bin/env bash
# SSH execution benchmark (issue 3): Remora end to end vs `xargs -P ssh` and
# OpenSSH ControlMaster, plus a fan-out to many hosts, all in one run against
# real sshd processes on 127.0.1.x (throwaway users; needs root + openssh).
# Usage: bench/ssh/run.sh [--jobs 300] [--hosts 10] [--parallel 16] [--fanout 50] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "run as root: the sshd hosts get throwaway users" >&2; exit 1; }
command -v /usr/sbin/sshd >/dev/null && command -v ssh >/dev/null || { echo "install openssh-server and openssh-client" >&2; exit 1; }
mkdir -p /run/sshd
cargo build --release -p remora-cli -p remora-testkit --bins
exec python3 bench/ssh/bench.py --remora target/release/remora --testkit target/release/remora-testkit "$@"
