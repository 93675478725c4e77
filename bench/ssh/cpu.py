#!/usr/bin/env python3
"""Remora's own CPU per job (issue 15), next to the rest of the machine's.

`remora up` with 10 `remora-testkit sshd` hosts as in bench.py (same classes), two warm-up rounds
of batch submissions, then `--rounds` rounds of 300 `echo hi` jobs either as single keep-alive
POSTs (`singles`) or as 30 batch submissions (`batches`). For each round: wall time, Remora's
CPU (its process's utime + stime, every thread), the whole machine's CPU (/proc/stat), this
client's, and the rest (sshd, the login shells, the kernel), plus POST latency for singles.

    python3 bench/ssh/cpu.py --remora target/release/remora --testkit target/release/remora-testkit singles
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / HZ


def machine_cpu():
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    return (sum(v[:8]) - v[3] - v[4]) / HZ


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--remora", required=True)
    ap.add_argument("--testkit", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("form", choices=["singles", "batches"])
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="remora-bench-cpu-")
    hosts = bench.Hosts(a.testkit, 10)
    r = bench.Remora(a.remora, 16, work)
    try:
        ids = r.add_hosts(hosts.hosts)
        done = 0
        for _ in range(2):
            done += 300
            r.run_batches(ids, 30, done)
        print("| round | wall s | Remora CPU s (ms/job) | machine CPU s | client s | rest s | POST p50 / p90 / p99 ms |")
        print("|---|---|---|---|---|---|---|")
        for rnd in range(max(1, min(a.rounds, 10))):
            c0, m0, me0 = proc_cpu(r.proc.pid), machine_cpu(), time.process_time()
            done += 300
            lat = ""
            if a.form == "singles":
                took, ls = r.run_singles(ids, 300, done, keepalive=True)
                ls.sort()
                lat = f"{ls[150]:.2f} / {ls[270]:.2f} / {ls[297]:.2f}"
            else:
                took = r.run_batches(ids, 30, done)
            c, m, me = proc_cpu(r.proc.pid) - c0, machine_cpu() - m0, time.process_time() - me0
            print(f"| {rnd + 1} | {took:.2f} | {c:.2f} ({c / 0.3:.2f}) | {m:.2f} | {me:.2f} | {m - c - me:.2f} | {lat} |")
    finally:
        r.close()
        hosts.close()


if __name__ == "__main__":
    main()
