#!/usr/bin/env python3
"""Fan-out benchmark (issue 15): one command to many OpenSSH hosts on loopback.

HOSTS hosts on 127.10.x.y (one port for all), served by ceil(HOSTS/16) sshd
processes (sshd accepts at most 16 ListenAddress lines), one throwaway user
and key. In one run, against the same hosts:
  - Remora (`remora up`, fresh SQLite data dir, REMORA_RATE_LIMIT=0, worker
    concurrency FANOUT): every host registered with tag `fanout`, then
    `echo hi` by tag, cold (first connections) and warm (right after);
    wall time = the batch's last `finished_at` (API) minus the submit time;
  - parallel-ssh -p FANOUT, clush -f FANOUT, pdsh -R ssh -f FANOUT with the
    same ssh options and a prepared known_hosts.
For each run: sshd's own CPU time (the listeners' reaped children plus the
live session processes, from /proc) as the floor, the client's CPU, peak
RSS; and Remora's memory per open connection. Started by
bench/fanout/run.sh, which cleans up after it if it dies.
"""

import argparse
import datetime
import json
import math
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

PER_SSHD = 16  # sshd's MAX_LISTEN_SOCKS
TAG = "fanout"
POLL = 0.1  # seconds between API polls while a batch runs
RUN_DEADLINE = 900  # seconds any one run may take
PAGE = os.sysconf("SC_PAGE_SIZE")
CLK_TCK = int(subprocess.run(["getconf", "CLK_TCK"], capture_output=True, text=True, check=True).stdout)
NCPU = os.cpu_count() or 1
ACCT = None  # CpuAcct, set in main()


def into_group(name):
    """A preexec_fn that puts the child in cgroup `name` before it execs, so
    that everything it starts is counted there."""
    d = ACCT.group(name) if ACCT else None
    if not d:
        return None
    path = os.path.join(d, "cgroup.procs")

    def f():
        with open(path, "w") as fh:
            fh.write(str(os.getpid()))
    return f


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def rfc3339_ms(s):
    return datetime.datetime.fromisoformat(s).timestamp() * 1000


def host_ip(i):
    return f"127.10.{i // 250}.{i % 250 + 1}"


def free_port(ip="127.0.0.1"):
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


class Tracker:
    """Writes every PID this run starts to a file, so that run.sh's trap can
    end them (after checking their command line) if this process dies."""

    def __init__(self, work):
        self.path = os.path.join(work, "pids")

    def add(self, pid):
        with open(self.path, "a") as f:
            f.write(f"{pid}\n")


# ---------------------------------------------------------------- /proc


def read_stat(pid):
    """(ppid, utime+stime, cutime+cstime) in clock ticks, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); utime is field 14 -> rest[11]
    return int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14])


def tree_cpu_ticks(roots):
    """CPU of every process under `roots` (included), alive or reaped:
    utime+stime+cutime+cstime summed over the live processes of the tree.
    A process that ends moves its total into its parent's cutime+cstime
    when reaped, so the sum only grows; a delta is the tree's CPU."""
    stats = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = read_stat(int(d))
            if st:
                stats[int(d)] = st
    kids = {}
    for pid, (ppid, _, _) in stats.items():
        kids.setdefault(ppid, []).append(pid)
    total, seen, todo = 0, set(), [r for r in roots if r in stats]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        _, own, reaped = stats[p]
        total += own + reaped
        todo.extend(kids.get(p, ()))
    return total, len(seen)


def self_cpu_ticks(pid):
    st = read_stat(pid)
    return st[1] if st else 0


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def tree_rss_bytes(pid):
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


class RssSampler(threading.Thread):
    """Peak of the summed RSS of a process tree, sampled every 0.1 s."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.pid))
            self.stop.wait(0.1)


def machine_busy():
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


class CpuAcct:
    """Exact CPU time of process trees through cgroup v1 `cpuacct` (when the
    machine has it and we may write it): every process a member starts stays
    in the group, alive or reaped, and `cpuacct.usage` counts its time in ns
    from the scheduler, not sampled at clock ticks as /proc's fields are.
    Groups are made under /sys/fs/cgroup/cpuacct/remora-fanout-RAND and
    removed at the end (their processes ended first)."""

    ROOT = "/sys/fs/cgroup/cpuacct"

    def __init__(self):
        self.base = None
        try:
            base = os.path.join(self.ROOT, "remora-fanout-" + os.urandom(3).hex())
            os.mkdir(base)
            self.base = base
        except OSError as e:
            log(f"  (no cgroup cpuacct: {e}; CPU times come from /proc only)")

    def group(self, name):
        if not self.base:
            return None
        d = os.path.join(self.base, name)
        os.makedirs(d, exist_ok=True)
        return d

    def add(self, name, pid):
        d = self.group(name)
        if d:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def usage_s(self, name):
        if not self.base:
            return None
        try:
            with open(os.path.join(self.base, name, "cpuacct.usage")) as f:
                return int(f.read()) / 1e9
        except OSError:
            return None

    def close(self):
        if not self.base:
            return
        for d in sorted((os.path.join(self.base, n) for n in os.listdir(self.base)
                         if os.path.isdir(os.path.join(self.base, n))), reverse=True):
            try:
                os.rmdir(d)
            except OSError as e:
                log(f"  cgroup {d} not removed: {e}")
        try:
            os.rmdir(self.base)
        except OSError as e:
            log(f"  cgroup {self.base} not removed: {e}")


def established_to(pid, port):
    """TCP connections of `pid` to remote `port` that are ESTABLISHED."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                t = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if t.startswith("socket:["):
                inodes.add(t[8:-1])
    except OSError:
        return 0
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            c = line.split()
            if c[3] == "01" and int(c[2].split(":")[1], 16) == port and c[9] in inodes:
                n += 1
    return n


def listening(port):
    """Addresses listening on `port` (IPv4)."""
    out = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            c = line.split()
            addr, p = c[1].split(":")
            if c[3] == "0A" and int(p, 16) == port:
                out.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return out


# ---------------------------------------------------------------- hosts


class Hosts:
    def __init__(self, work, n, tracker):
        self.work, self.n, self.tracker = work, n, tracker
        self.user = "rfan" + os.urandom(3).hex()
        self.ips = [host_ip(i) for i in range(n)]
        self.port = free_port(self.ips[0])
        self.key = os.path.join(work, "id_ed25519")
        self.known = os.path.join(work, "known_hosts")
        self.hostfile = os.path.join(work, "hosts")
        self.procs = []
        self.user_made = False

    def start(self):
        w = self.work
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fanout", "-f", self.key], check=True)
        with open(os.path.join(w, "user"), "w") as f:
            f.write(self.user + "\n")
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", self.user], check=True)
        self.user_made = True
        subprocess.run(["usermod", "-p", "*", self.user], check=True)
        pw = pwd.getpwnam(self.user)
        sshdir = os.path.join(pw.pw_dir, ".ssh")
        os.makedirs(sshdir, mode=0o700, exist_ok=True)
        with open(self.key + ".pub") as src, open(os.path.join(sshdir, "authorized_keys"), "w") as dst:
            dst.write(src.read())
        for p in (sshdir, os.path.join(sshdir, "authorized_keys")):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        with open(self.hostfile, "w") as f:
            f.write("".join(ip + "\n" for ip in self.ips))
        known = []
        groups = math.ceil(self.n / PER_SSHD)
        for g in range(groups):
            ips = self.ips[g * PER_SSHD:(g + 1) * PER_SSHD]
            hk = os.path.join(w, f"hostkey{g}")
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hk], check=True)
            with open(hk + ".pub") as f:
                pub = " ".join(f.read().split()[:2])
            known += [f"[{ip}]:{self.port} {pub}\n" for ip in ips]
            cfg = os.path.join(w, f"sshd{g}.conf")
            with open(cfg, "w") as f:
                f.write(f"Port {self.port}\n" + "".join(f"ListenAddress {ip}\n" for ip in ips) + f"""HostKey {hk}
PidFile none
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
AuthorizedKeysFile .ssh/authorized_keys
MaxStartups 2000:30:4000
LogLevel ERROR
UseDNS no
PrintMotd no
AllowUsers {self.user}
""")
            logf = open(os.path.join(w, f"sshd{g}.log"), "w")
            p = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", cfg, "-E", logf.name], stdin=subprocess.DEVNULL,
                                 stdout=logf, stderr=subprocess.STDOUT, preexec_fn=into_group("sshd"))
            self.tracker.add(p.pid)
            self.procs.append(p)
        with open(self.known, "w") as f:
            f.write("".join(known))
        deadline = time.monotonic() + 60
        while len(listening(self.port) & set(self.ips)) < self.n:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise SystemExit(f"sshd did not listen on all {self.n} addresses; logs in {w}/sshd*.log")
            time.sleep(0.05)

    def listener_pids(self):
        return [p.pid for p in self.procs]

    def ssh_opts(self):
        return ["-F", "/dev/null", "-i", self.key, "-p", str(self.port), "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self.known}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=60", "-o", "ControlMaster=no",
                "-o", "ControlPath=none"]

    def log_lines(self):
        n = 0
        for g in range(len(self.procs)):
            try:
                with open(os.path.join(self.work, f"sshd{g}.log")) as f:
                    n += sum(1 for _ in f)
            except OSError:
                pass
        return n

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=20)
        if self.user_made:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                left = subprocess.run(["pgrep", "-u", self.user], capture_output=True, text=True).stdout.split()
                if not left:
                    break
                for pid in left:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.1)
            r = subprocess.run(["userdel", "-r", self.user], capture_output=True, text=True)
            if r.returncode not in (0, 12):  # 12: home dir could not be removed (already gone)
                log(f"userdel {self.user}: {r.stderr.strip()}")
            self.user_made = False


# ---------------------------------------------------------------- Remora


class Remora:
    def __init__(self, binary, fanout, work, tracker):
        self.dir = os.path.join(work, "remora-data")
        os.mkdir(self.dir)
        self.token = "rmr_fanout_" + os.urandom(8).hex()
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("REMORA_")}
        env.update(REMORA_API_ADDR=self.url[7:], REMORA_QUEUE_ADDR=f"127.0.0.1:{free_port()}",
                   REMORA_ADMIN_TOKEN=self.token, REMORA_RATE_LIMIT="0",
                   REMORA_WORKER_CONCURRENCY=str(fanout))
        self.log = open(os.path.join(work, "remora.log"), "w")
        self.proc = subprocess.Popen([binary, "up", "--data-dir", self.dir], env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=into_group("remora"))
        tracker.add(self.proc.pid)
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
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raise SystemExit(f"remora API {method} {path}: {e.code} {e.read()[:500]!r}")

    def register(self, hosts):
        with open(hosts.key) as f:
            key = f.read()
        for i, ip in enumerate(hosts.ips):
            self.call("POST", "/api/v1/servers", {"name": f"f{i}", "hostname": ip, "port": hosts.port,
                                                  "user": hosts.user, "private_key": key, "tags": [TAG]})

    def count(self, batch, status):
        return self.call("GET", f"/api/v1/jobs?batch_id={batch}&status={status}&limit=1")["pagination"]["total"]

    def batch(self, n, listeners, port):
        """`echo hi` to every host by tag; measures until every job is final."""
        pid = self.proc.pid
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM: the peak of this run alone
        rss_before = status_kib(pid, "VmRSS")
        conns_before = established_to(pid, port)
        sshd0, _ = tree_cpu_ticks(listeners)
        me0 = self_cpu_ticks(pid)
        acct0 = (ACCT.usage_s("sshd"), ACCT.usage_s("remora")) if ACCT else (None, None)
        busy0 = machine_busy()
        t0_ms = time.time() * 1000
        m0 = time.monotonic()
        created = self.call("POST", "/api/v1/jobs", {"tag": TAG, "command": "echo hi"})
        submit_s = time.monotonic() - m0
        batch = created["batch_id"]
        if len(created["jobs"]) != n:
            raise SystemExit(f"remora: the batch has {len(created['jobs'])} jobs, expected {n}")
        polls = 0
        while True:
            polls += 1
            if self.count(batch, "queued") == 0 and self.count(batch, "running") == 0:
                break
            if time.monotonic() - m0 > RUN_DEADLINE:
                raise SystemExit(f"remora: the batch did not finish within {RUN_DEADLINE} s")
            time.sleep(POLL)
        observed = time.monotonic() - m0
        sshd1, nproc = tree_cpu_ticks(listeners)
        me1 = self_cpu_ticks(pid)
        acct1 = (ACCT.usage_s("sshd"), ACCT.usage_s("remora")) if ACCT else (None, None)
        busy1 = machine_busy()
        last = self.call("GET", f"/api/v1/jobs?batch_id={batch}&sort_by=finished_at&sort_order=desc&limit=1")
        wall = (rfc3339_ms(last["jobs"][0]["finished_at"]) - t0_ms) / 1000
        done = self.count(batch, "completed")
        if done != n:
            bad = {s: self.count(batch, s) for s in ("failed", "canceled", "timed_out")}
            raise SystemExit(f"remora: {done}/{n} completed, {bad}; log in {self.log.name}")
        out = self.call("GET", f"/api/v1/jobs/{last['jobs'][0]['id']}/logs")
        if "hi" not in json.dumps(out):
            raise SystemExit(f"remora: the last job's output has no `hi`: {out!r:.300}")
        return {
            "wall_s": wall, "observed_s": observed, "submit_s": submit_s, "polls": polls,
            "sshd_cpu_s": (sshd1 - sshd0) / CLK_TCK, "sshd_processes_after": nproc,
            "client_cpu_s": (me1 - me0) / CLK_TCK,
            "sshd_cpu_exact_s": None if acct0[0] is None else acct1[0] - acct0[0],
            "client_cpu_exact_s": None if acct0[1] is None else acct1[1] - acct0[1],
            "peak_rss_kib": status_kib(pid, "VmHWM"), "rss_before_kib": rss_before,
            "rss_after_kib": status_kib(pid, "VmRSS"),
            "connections_before": conns_before, "connections_after": established_to(pid, port),
            "machine_busy_cpu_s": (busy1[0] - busy0[0]) / CLK_TCK,
        }

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.log.close()


# ---------------------------------------------------------------- peers


def run_peer(name, cmd, env, hosts, tracker, work):
    """One peer run; counts `hi` lines (one per host) as its success check."""
    listeners = hosts.listener_pids()
    sshd0, _ = tree_cpu_ticks(listeners)
    acct0 = ACCT.usage_s("sshd") if ACCT else None
    ru0 = os.times()
    busy0 = machine_busy()
    outp = os.path.join(work, f"{name}.out")
    with open(outp, "w") as out:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             preexec_fn=into_group("peer-" + name))
        tracker.add(p.pid)
        sampler = RssSampler(p.pid)
        sampler.start()
        try:
            rc = p.wait(timeout=RUN_DEADLINE)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise SystemExit(f"{name}: did not finish within {RUN_DEADLINE} s")
        wall = time.monotonic() - t0
        sampler.stop.set()
        sampler.join()
    ru1 = os.times()
    sshd1, _ = tree_cpu_ticks(listeners)
    acct1 = ACCT.usage_s("sshd") if ACCT else None
    peer_exact = ACCT.usage_s("peer-" + name) if ACCT else None
    busy1 = machine_busy()
    with open(outp) as f:
        text = f.read()
    hi = sum(1 for line in text.splitlines() if line == "hi" or line.endswith(": hi"))
    if hi != hosts.n:
        raise SystemExit(f"{name}: exit {rc}, {hi}/{hosts.n} hosts said hi; output in {outp}:\n{text[-1500:]}")
    return {
        "wall_s": wall, "exit": rc, "sshd_cpu_s": (sshd1 - sshd0) / CLK_TCK,
        "client_cpu_s": (ru1.children_user - ru0.children_user) + (ru1.children_system - ru0.children_system),
        "peak_rss_kib": sampler.peak // 1024, "machine_busy_cpu_s": (busy1[0] - busy0[0]) / CLK_TCK,
        "sshd_cpu_exact_s": None if acct0 is None else acct1 - acct0, "client_cpu_exact_s": peer_exact,
        "command": " ".join(cmd),
    }


def peers(hosts, fanout, tracker, work):
    opts = " ".join(hosts.ssh_opts())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDSH_", "REMORA_"))}
    res = {}
    res["parallel-ssh"] = run_peer("pssh", ["parallel-ssh", "-p", str(fanout), "-h", hosts.hostfile, "-l", hosts.user,
                                            "-t", "0", "-i", "-x", opts, "echo", "hi"], env, hosts, tracker, work)
    log(f"  parallel-ssh {res['parallel-ssh']['wall_s']:.2f} s")
    res["clush"] = run_peer("clush", ["clush", "-f", str(fanout), f"--hostfile={hosts.hostfile}", "-l", hosts.user,
                                      "-o", opts, "echo", "hi"], env, hosts, tracker, work)
    log(f"  clush {res['clush']['wall_s']:.2f} s")
    penv = dict(env, PDSH_SSH_ARGS_APPEND=opts)
    res["pdsh"] = run_peer("pdsh", ["pdsh", "-R", "ssh", "-f", str(fanout), "-w", "^" + hosts.hostfile, "-l", hosts.user,
                                    "echo", "hi"], penv, hosts, tracker, work)
    log(f"  pdsh {res['pdsh']['wall_s']:.2f} s")
    return res


# ---------------------------------------------------------------- report


def mib(kib):
    return f"{kib / 1024:.0f}"


def report(r):
    n, f = r["hosts"], r["fanout"]
    rows = [("Remora, cold (first connections)", r["remora_cold"]), ("Remora, warm (right after)", r["remora_warm"])]
    if r["peers"]:
        rows += [(f"parallel-ssh `-p {f}`", r["peers"]["parallel-ssh"]),
                 (f"ClusterShell `clush -f {f}`", r["peers"]["clush"]), (f"pdsh `-R ssh -f {f}`", r["peers"]["pdsh"])]
    exact = r["remora_cold"].get("sshd_cpu_exact_s") is not None
    src = ("from cgroup cpuacct (every process the listeners started, exact)" if exact else
           "from /proc (the listeners' tree, clock-tick sampled)")
    lines = [f"### `echo hi` to {n} OpenSSH hosts, fan-out {f} ({r['started']}, load average at start {r['loadavg']})", "",
             f"sshd floor = sshd's CPU during the run / {r['cpus']} cores; CPU {src}.", "",
             "| runner | wall s | sshd CPU s | sshd floor s | wall / floor | client CPU s | peak RSS MiB | machine CPU s (all processes) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, x in rows:
        if exact:
            x = dict(x, sshd_cpu_s=x["sshd_cpu_exact_s"], client_cpu_s=x["client_cpu_exact_s"])
        floor = x["sshd_cpu_s"] / r["cpus"]
        ratio = x["wall_s"] / floor if floor else float("nan")
        lines.append(f"| {name} | {x['wall_s']:.2f} | {x['sshd_cpu_s']:.2f} | {floor:.2f} | {ratio:.2f} | "
                     f"{x['client_cpu_s']:.2f} | {mib(x['peak_rss_kib'])} | {x['machine_busy_cpu_s']:.1f} |")
    lines.append("")
    cold, warm = r["remora_cold"]["wall_s"], r["remora_warm"]["wall_s"]
    for k, x in r["peers"].items():
        lines.append(f"- {k}: {x['wall_s'] / cold:.2f}x Remora cold, {x['wall_s'] / warm:.2f}x Remora warm")
    if r["peers"]:
        fastest = min(r["peers"], key=lambda k: r["peers"][k]["wall_s"])
        lines.append(f"- fastest peer: {fastest} ({r['peers'][fastest]['wall_s']:.2f} s)")
    c, w = r["remora_cold"], r["remora_warm"]
    lines.append(f"- Remora's batch POST took {c['submit_s']:.2f} s cold, {w['submit_s']:.2f} s warm; connections open "
                 f"to the hosts: {c['connections_before']} before the cold run, {c['connections_after']} after it, "
                 f"{w['connections_after']} after the warm run")
    m = r["memory"]
    if m["connections_open"]:
        lines.append(f"- memory per open connection: {m['per_connection_kib']:.0f} KiB "
                     f"(RSS {mib(m['rss_open_kib'])} MiB with {m['connections_open']} connections open after the warm "
                     f"run vs {mib(m['rss_idle_kib'])} MiB idle before the cold run)")
    else:
        lines.append("- memory per open connection: not measured (no connection open after the warm run)")
    if r["peers"]:
        lines.append(f"- Remora after the peers: {m['connections_after_peers']} connections open, RSS "
                     f"{mib(m['rss_after_peers_kib'])} MiB")
    lines.append(f"- sshd log lines (LogLevel ERROR) over the whole run: {r['sshd_log_lines']}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--remora", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--fanout", type=int, default=256)
    ap.add_argument("--only-remora", action="store_true", help="skip the peers (parallel-ssh, clush, pdsh)")
    a = ap.parse_args()
    if not 1 <= a.hosts <= 62500:
        raise SystemExit("HOSTS must be between 1 and 62500 (127.10.0.1-127.10.249.250)")
    if not 1 <= a.fanout <= 4096:
        raise SystemExit("FANOUT must be between 1 and 4096")
    # SIGTERM/SIGHUP end the run through the finally blocks below.
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda *_: sys.exit(1))
    tracker = Tracker(a.work)
    global ACCT
    ACCT = CpuAcct()
    r = {"hosts": a.hosts, "fanout": a.fanout, "cpus": NCPU, "clk_tck": CLK_TCK,
         "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
         "loadavg": open("/proc/loadavg").read().split()[0]}
    hosts = Hosts(a.work, a.hosts, tracker)
    remora = None
    try:
        log(f"starting {a.hosts} hosts on {host_ip(0)}-{host_ip(a.hosts - 1)} "
            f"({math.ceil(a.hosts / PER_SSHD)} sshd) ...")
        hosts.start()
        log(f"  up on port {hosts.port}; starting remora up (worker concurrency {a.fanout}) ...")
        remora = Remora(a.remora, a.fanout, a.work, tracker)
        t = time.monotonic()
        remora.register(hosts)
        r["register_s"] = time.monotonic() - t
        log(f"  registered {a.hosts} servers in {r['register_s']:.1f} s; cold run ...")
        lst = hosts.listener_pids()
        r["remora_cold"] = remora.batch(a.hosts, lst, hosts.port)
        log(f"  cold {r['remora_cold']['wall_s']:.2f} s; warm run ...")
        r["remora_warm"] = remora.batch(a.hosts, lst, hosts.port)
        log(f"  warm {r['remora_warm']['wall_s']:.2f} s; peers ...")
        w = r["remora_warm"]
        idle = r["remora_cold"]["rss_before_kib"]
        opened = w["connections_after"]
        r["memory"] = {"rss_idle_kib": idle, "rss_open_kib": w["rss_after_kib"], "connections_open": opened,
                       "per_connection_kib": (w["rss_after_kib"] - idle) / opened if opened else None}
        r["peers"] = {} if a.only_remora else peers(hosts, a.fanout, tracker, a.work)
        r["memory"]["connections_after_peers"] = established_to(remora.proc.pid, hosts.port)
        r["memory"]["rss_after_peers_kib"] = status_kib(remora.proc.pid, "VmRSS")
        r["sshd_log_lines"] = hosts.log_lines()
    finally:
        if remora:
            remora.close()
        hosts.close()
        ACCT.close()
    md = report(r)
    os.makedirs(a.results, exist_ok=True)
    stem = os.path.join(a.results, datetime.datetime.now().strftime(f"%Y%m%d-%H%M%S-{a.hosts}x{a.fanout}"))
    with open(stem + ".json", "w") as f:
        json.dump(r, f, indent=2)
    with open(stem + ".md", "w") as f:
        f.write(md)
    print("\n" + md)
    log(f"raw results: {stem}.json")


if __name__ == "__main__":
    main()
