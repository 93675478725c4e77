#!/usr/bin/env python3
"""SSH execution benchmark (issue 3): Remora end to end against OpenSSH.

1. `--jobs` x `echo hi` spread over `--hosts` real sshd hosts on 127.0.1.x:
   - OpenSSH: `xargs -P <parallel> ssh` (a new connection per command),
   - OpenSSH ControlMaster multiplexing, `xargs -P <parallel>`, cold (masters
     opened inside the timing) and warm (masters already up),
   - Remora: `remora up` (API + queue + worker, SQLite), worker concurrency
     <parallel>; timed from the first API submit until every job is final.
2. Fan-out of one command to `--fanout` hosts: Remora (one batch submit,
   worker concurrency = fanout) against `xargs -P <fanout> ssh`.

Every measurement runs `--rounds` times in the same run; Remora's first
round is cold (TCP + SSH handshake + first-use host-key pinning), later
rounds reuse its connection pool. Started by bench/ssh/run.sh; needs root
(the sshd hosts get throwaway users) and python3 only.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SSH_OPTS = [
    "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
    "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hosts:
    """`remora-testkit sshd` processes, one per 127.0.1.x address."""

    def __init__(self, testkit, n):
        self.procs, self.hosts = [], []
        for i in range(n):
            p = subprocess.Popen([testkit, "sshd", "--ip", f"127.0.1.{i + 1}"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            self.procs.append(p)
        for p in self.procs:
            line = p.stdout.readline()
            if not line:
                raise SystemExit("remora-testkit sshd failed to start a host")
            h = json.loads(line)
            h["dir"] = os.path.dirname(h["private_key_path"])
            with open(os.path.join(h["dir"], "hostkey_ed25519.pub")) as f:
                h["host_key"] = " ".join(f.read().split()[:2])
            self.hosts.append(h)

    def close(self):
        for p in self.procs:
            try:
                p.stdin.close()
            except OSError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def known_hosts(path, hosts):
    with open(path, "w") as f:
        for h in hosts:
            f.write(f"[{h['host']}]:{h['port']} {h['host_key']}\n")


def run_xargs(hosts, jobs, parallel, known, extra=()):
    """`jobs` x `ssh host echo hi` round-robin over `hosts`, `xargs -P parallel`."""
    lines = "".join(
        f"{h['private_key_path']} {h['port']} {h['user']} {h['host']}\n" for h in (hosts[j % len(hosts)] for j in range(jobs)))
    opts = " ".join(SSH_OPTS + ["-o", f"UserKnownHostsFile={known}"] + list(extra))
    cmd = ["xargs", "-P", str(parallel), "-n", "4", "sh", "-c", f'exec ssh {opts} -i "$0" -p "$1" "$2@$3" echo hi']
    t0 = time.monotonic()
    out = subprocess.run(cmd, input=lines, capture_output=True, text=True)
    took = time.monotonic() - t0
    got = out.stdout.count("hi\n")
    if out.returncode != 0 or got != jobs:
        raise SystemExit(f"xargs ssh: exit {out.returncode}, {got}/{jobs} outputs: {out.stderr[-2000:]}")
    return took


def close_masters(hosts, known, cm_path):
    for h in hosts:
        subprocess.run(["ssh", "-o", f"ControlPath={cm_path}", "-o", f"UserKnownHostsFile={known}", "-O", "exit",
                        "-p", str(h["port"]), f"{h['user']}@{h['host']}"], capture_output=True)


class Remora:
    """`remora up` on a fresh data dir, with its API client."""

    def __init__(self, remora, concurrency, workdir):
        self.dir = tempfile.mkdtemp(prefix="remora-bench-", dir=workdir)
        self.token = "rmr_bench_" + os.urandom(8).hex()
        self.url = f"http://127.0.0.1:{free_port()}"
        env = dict(os.environ, REMORA_DATA_DIR=self.dir, REMORA_API_ADDR=self.url[7:],
                   REMORA_QUEUE_ADDR=f"127.0.0.1:{free_port()}", REMORA_ADMIN_TOKEN=self.token,
                   REMORA_RATE_LIMIT="0", REMORA_WORKER_CONCURRENCY=str(concurrency))
        self.log = open(os.path.join(self.dir, "remora.log"), "w")
        self.proc = subprocess.Popen([remora, "up"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"remora up did not become healthy; log in {self.log.name}")
            time.sleep(0.05)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def add_hosts(self, hosts):
        ids = []
        for i, h in enumerate(hosts):
            with open(h["private_key_path"]) as f:
                key = f.read()
            s = self.call("POST", "/api/v1/servers", {"name": f"h{i}", "hostname": h["host"], "port": h["port"],
                                                       "user": h["user"], "private_key": key, "max_concurrency": 100})
            ids.append(s["id"])
        return ids

    def count(self, status):
        return self.call("GET", f"/api/v1/jobs?status={status}&limit=1")["pagination"]["total"]

    def run_batches(self, server_ids, per_server, expect_done):
        """Submit `per_server` batches of `echo hi` to `server_ids`; wait until
        `expect_done` jobs are final in total. Returns seconds from the first submit."""
        t0 = time.monotonic()
        for _ in range(per_server):
            self.call("POST", "/api/v1/jobs", {"server_ids": server_ids, "command": "echo hi"})
        deadline = t0 + 600
        while True:
            if self.count("queued") == 0 and self.count("running") == 0:
                done = self.count("completed")
                if done >= expect_done:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("remora: jobs did not finish within 600 s")
            time.sleep(0.02)
        took = time.monotonic() - t0
        failed = self.count("failed")
        if failed:
            raise SystemExit(f"remora: {failed} jobs failed; see {self.log.name}")
        return took

    def run_singles(self, server_ids, jobs, expect_done, keepalive=False):
        """Submit `jobs` single-server jobs (`server_id`, round-robin) from one client, one
        POST after the other, then wait until `expect_done` jobs are final. Returns (seconds
        from the first POST, per-POST latencies in ms). `keepalive`: the POSTs share one HTTP
        connection (as requests.Session or the CLI's client do) instead of urllib's new
        connection per request."""
        conn = http.client.HTTPConnection(self.url[7:], timeout=30) if keepalive else None
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        t0 = time.monotonic()
        lat = []
        for i in range(jobs):
            p0 = time.monotonic()
            body = {"server_id": server_ids[i % len(server_ids)], "command": "echo hi"}
            if conn:
                conn.request("POST", "/api/v1/jobs", body=json.dumps(body), headers=headers)
                r = conn.getresponse()
                r.read()
                if r.status != 201:
                    raise SystemExit(f"remora: POST /api/v1/jobs answered {r.status}")
            else:
                self.call("POST", "/api/v1/jobs", body)
            lat.append((time.monotonic() - p0) * 1000)
        if conn:
            conn.close()
        deadline = t0 + 600
        while True:
            if self.count("queued") == 0 and self.count("running") == 0:
                if self.count("completed") >= expect_done:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("remora: jobs did not finish within 600 s")
            time.sleep(0.02)
        took = time.monotonic() - t0
        failed = self.count("failed")
        if failed:
            raise SystemExit(f"remora: {failed} jobs failed; see {self.log.name}")
        return took, lat

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def fmt(xs):
    return ", ".join(f"{x:.2f}" for x in xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--remora", required=True)
    ap.add_argument("--testkit", required=True)
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--fanout", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-fanout", action="store_true", help="skip the fan-out part")
    ap.add_argument("--only-remora", action="store_true",
                    help="skip the OpenSSH runners (to compare two Remora builds quickly)")
    a = ap.parse_args()
    if a.jobs % a.hosts:
        raise SystemExit("--jobs must be a multiple of --hosts")
    a.rounds = max(1, min(a.rounds, 10))

    work = tempfile.mkdtemp(prefix="remora-bench-ssh-")
    nhosts = a.hosts if a.no_fanout else max(a.hosts, a.fanout)
    print(f"starting {nhosts} sshd hosts on 127.0.1.1-{nhosts} ...", file=sys.stderr)
    hosts = Hosts(a.testkit, nhosts)
    known = os.path.join(work, "known_hosts")
    known_hosts(known, hosts.hosts)
    res = {}
    remora = None
    try:
        part = hosts.hosts[: a.hosts]
        res["xargs"] = [] if a.only_remora else [
            run_xargs(part, a.jobs, a.parallel, known) for _ in range(a.rounds)]
        cm_cold, cm_warm = [], []
        for r in range(0 if a.only_remora else a.rounds):
            cm = os.path.join(work, f"cm{r}")
            os.mkdir(cm)
            extra = ["-o", "ControlMaster=auto", "-o", f"ControlPath={cm}/%C", "-o", "ControlPersist=120"]
            cm_cold.append(run_xargs(part, a.jobs, a.parallel, known, extra))
            cm_warm.append(run_xargs(part, a.jobs, a.parallel, known, extra))
            close_masters(part, known, f"{cm}/%C")
        res["cm_cold"], res["cm_warm"] = cm_cold, cm_warm

        remora = Remora(a.remora, a.parallel, work)
        ids = remora.add_hosts(part)
        res["remora"] = [remora.run_batches(ids, a.jobs // a.hosts, a.jobs * (r + 1)) for r in range(a.rounds)]
        # Single-submission form on the same (now warm) stack: one POST per job.
        singles, lat, ka, ka_lat = [], [], [], []
        done = a.jobs * a.rounds
        for r in range(a.rounds):
            # Alternating: the urllib client, then the keep-alive one, each round.
            done += a.jobs
            took, l = remora.run_singles(ids, a.jobs, done)
            singles.append(took)
            lat.extend(l)
            done += a.jobs
            took, l = remora.run_singles(ids, a.jobs, done, keepalive=True)
            ka.append(took)
            ka_lat.extend(l)
        res["singles"], res["singles_lat"] = singles, lat
        res["singles_ka"], res["singles_ka_lat"] = ka, ka_lat
        remora.close()
        remora = None
        res["fan_ssh"] = res["fan_remora"] = None
        if not a.no_fanout:
            fan = hosts.hosts[: a.fanout]
            res["fan_ssh"] = [run_xargs(fan, a.fanout, a.fanout, known) for _ in range(a.rounds)]
            remora = Remora(a.remora, a.fanout, work)
            ids = remora.add_hosts(fan)
            res["fan_remora"] = [remora.run_batches(ids, 1, a.fanout * (r + 1)) for r in range(a.rounds)]
            remora.close()
            remora = None
    finally:
        if remora:
            remora.close()
        hosts.close()
        shutil.rmtree(work, ignore_errors=True)

    n = a.jobs
    rows = [
        ("OpenSSH `xargs -P %d ssh`" % a.parallel, res["xargs"]),
        ("OpenSSH ControlMaster, `-P %d`, cold" % a.parallel, res["cm_cold"]),
        ("OpenSSH ControlMaster, `-P %d`, warm" % a.parallel, res["cm_warm"]),
        ("Remora, concurrency %d (round 1 cold, then pooled)" % a.parallel, res["remora"]),
        ("Remora, %d single `POST /api/v1/jobs` from one client (pooled)" % n, res["singles"]),
        ("Remora, the same from a keep-alive client" , res["singles_ka"]),
    ]
    print(f"\n### {n} x `echo hi` over {a.hosts} hosts ({a.rounds} rounds)\n")
    print("| runner | seconds per round | median s | jobs/s (median) |")
    print("|---|---|---|---|")
    for name, xs in rows:
        if not xs:
            continue
        m = statistics.median(xs)
        print(f"| {name} | {fmt(xs)} | {m:.2f} | {n / m:.0f} |")
    rm = statistics.median(res["remora"])
    lat = sorted(res["singles_lat"])
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    kl = sorted(res["singles_ka_lat"])
    pk = lambda q: kl[min(len(kl) - 1, int(q * len(kl)))]
    sm = statistics.median(res["singles"])
    km = statistics.median(res["singles_ka"])
    if a.only_remora:
        print(f"\nSingle submissions: POST latency p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms "
              f"({len(lat)} POSTs, jobs running meanwhile); {n / sm:.0f} jobs/s end to end")
        print(f"Keep-alive client: POST latency p50 {pk(0.5):.1f} ms, p99 {pk(0.99):.1f} ms; "
              f"{n / km:.0f} jobs/s end to end")
        return
    print(f"\nRemora vs xargs ssh: {statistics.median(res['xargs']) / rm:.2f}x; "
          f"vs ControlMaster cold: {statistics.median(res['cm_cold']) / rm:.2f}x; "
          f"vs ControlMaster warm: {statistics.median(res['cm_warm']) / rm:.2f}x "
          f"(Remora cold round alone: {statistics.median(res['xargs']) / res['remora'][0]:.2f}x / "
          f"{statistics.median(res['cm_cold']) / res['remora'][0]:.2f}x)")
    print(f"\nSingle submissions: POST latency p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms "
          f"({len(lat)} POSTs, jobs running meanwhile); {n / sm:.0f} jobs/s end to end = "
          f"{statistics.median(res['cm_warm']) / sm:.2f}x warm ControlMaster")
    print(f"Keep-alive client: POST latency p50 {pk(0.5):.1f} ms, p99 {pk(0.99):.1f} ms "
          f"({len(kl)} POSTs); {n / km:.0f} jobs/s end to end = "
          f"{statistics.median(res['cm_warm']) / km:.2f}x warm ControlMaster")
    if res["fan_ssh"] is None:
        return
    print(f"\n### fan-out of one command to {a.fanout} hosts ({a.rounds} rounds)\n")
    print("| runner | seconds per round | median s |")
    print("|---|---|---|")
    for name, xs in [("OpenSSH `xargs -P %d ssh`" % a.fanout, res["fan_ssh"]),
                     ("Remora batch, concurrency %d (round 1 cold)" % a.fanout, res["fan_remora"])]:
        print(f"| {name} | {fmt(xs)} | {statistics.median(xs):.2f} |")


if __name__ == "__main__":
    main()
