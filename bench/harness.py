#!/usr/bin/env python3
"""Benchmark harness: ees-cluster vs etcd vs Apache Ratis (issue 5).

    python3 bench/harness.py [--quick|--smoke|--full] [--systems ees,etcd,ratis] [--out DIR]

For each system in turn: start a 3-member cluster of separate processes on
127.0.0.1 (own temp dir, durable writes), wait for a leader (bounded poll),
run W1..W6 through the system's load generator (the common CLI contract of
bench/README.md), sample the servers' CPU (/proc/PID/stat) and RSS
(/proc/PID/status), and stop every process it started by PID (also on errors,
Ctrl-C and SIGTERM). The machine's fsync rate is measured with fio first.
Writes results.md, results.json and results.png to --out.

Modes: --full (default, <= 20 min for three systems), --quick (<= 3 min),
--smoke (seconds per system; checks that the harness works, used by CI; the
numbers mean nothing).

A system whose binaries are missing is reported as "not available"; build
them with bench/setup.sh. Adding a system = one Cluster subclass (see
EesCluster) + an entry in SYSTEMS.
"""

import argparse
import gzip
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Per-mode parameters; every system runs with the same ones. dur_s/warmup_s:
# measured window and unrecorded lead-in of each W1-W4 run; the failover
# probe runs probe_s after its first acknowledged write and the leader is
# killed kill_after_s after that write. W6 writes fill_keys keys but stops
# issuing writes after fill_limit_s (the keys actually written are reported).
PROFILES = {
    "smoke": dict(
        warmup_s=0.0, cluster_warmup_s=0.0, dur_s=1.0,
        w1_conc=[4], w2_conc=[4], w4_clients=[2],
        probe_s=5.0, kill_after_s=1.0, failover_trials=1,
        saturated_s=1.0, fill_keys=500, fill_limit_s=10, fio_s=1, settle_s=0.5),
    "quick": dict(
        warmup_s=0.5, cluster_warmup_s=2.0, dur_s=1.5,
        w1_conc=[1, 16, 64, 256], w2_conc=[1, 64], w4_clients=[2, 16],
        probe_s=4.0, kill_after_s=1.0, failover_trials=2,
        saturated_s=5.0, fill_keys=10000, fill_limit_s=5, fio_s=1, settle_s=0.5),
    "full": dict(
        warmup_s=2.0, cluster_warmup_s=5.0, dur_s=10.0,
        w1_conc=[1, 16, 64, 256], w2_conc=[1, 64], w4_clients=[2, 16],
        probe_s=6.0, kill_after_s=2.0, failover_trials=10,
        saturated_s=60.0, fill_keys=100000, fill_limit_s=120, fio_s=5, settle_s=2.0),
}
VALUE_SIZE = 256
KEYS = 1000              # key space of W1 puts and W2 reads
FILL_CONCURRENCY = 256   # W6 fill
PROBE_OP_TIMEOUT_MS = 200  # W5: a write waits at most this long, then is retried
PROBE_GAP_MS = 20        # W5: gaps between acks shorter than this are not reported
LEADER_WAIT_S = 30       # bounded wait for a leader / for all members up
CATCH_UP_WAIT_S = 120    # ... for all members up after a saturated run (a
                         # follower that fell behind replays what it missed)
STOP_GRACE_S = 5         # SIGTERM, then SIGKILL after this


class HarnessError(Exception):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_ports(n):
    """n TCP ports on 127.0.0.1 that were free a moment ago."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------- processes

class Procs:
    """Every process the harness started, by PID, so all can be stopped."""

    def __init__(self):
        self.live = {}  # pid -> Popen

    def start(self, cmd, log_path, stdout=None):
        """Starts cmd in its own session; stderr (and stdout unless given) to log_path."""
        with open(log_path, "ab") as f:
            p = subprocess.Popen(cmd, stdout=stdout or f, stderr=f,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        self.live[p.pid] = p
        return p

    def kill9(self, pid):
        p = self.live.pop(pid, None)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if p is not None:
            p.wait(timeout=10)

    def stop(self, pid):
        """SIGTERM, wait up to STOP_GRACE_S, then SIGKILL."""
        p = self.live.pop(pid, None)
        if p is None:
            return
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
            except ProcessLookupError:
                pass

    def stop_all(self):
        for pid in list(self.live):
            self.stop(pid)


PROCS = Procs()


def proc_cpu_s(pid):
    """(user, sys) CPU seconds of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def proc_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Sampler(threading.Thread):
    """Samples the servers' CPU every `period` s: [(t, {pid: (user, sys)})]."""

    def __init__(self, pids_fn, period=0.2):
        super().__init__(daemon=True)
        self.pids_fn, self.period = pids_fn, period
        self.samples = []
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            t = time.time()
            snap = {}
            for pid in self.pids_fn():
                c = proc_cpu_s(pid)
                if c is not None:
                    snap[pid] = c
            self.samples.append((t, snap))
            self.stop_ev.wait(self.period)

    def wait_past(self, t, limit_s=2.0):
        """Waits (bounded) until there is a sample taken at or after t."""
        deadline = time.time() + limit_s
        while time.time() < deadline and not (self.samples and self.samples[-1][0] >= t):
            time.sleep(self.period / 4)

    def cpu_between(self, t0, t1):
        """Servers' summed (user, sys) CPU seconds between the last sample at
        or before t0 and the first at or after t1. A member that (re)started in
        between counts from zero; one that died in between is left out."""
        before = [s for s in self.samples if s[0] <= t0] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= t1] or self.samples[-1:]
        if not before or not after:
            return 0.0, 0.0
        a, b = before[-1][1], after[0][1]
        u = s = 0.0
        for pid, (bu, bs) in b.items():
            au, as_ = a.get(pid, (0.0, 0.0))
            u, s = u + bu - au, s + bs - as_
        return u, s


# ---------------------------------------------------------------- clusters

class Member:
    def __init__(self, idx, endpoint, data_dir):
        self.idx, self.endpoint, self.data_dir = idx, endpoint, data_dir
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None


class Cluster:
    """A 3-member cluster of one system plus its load generator.

    Subclasses set `name`, implement `missing()` (why the system cannot run,
    or None), `prepare(workdir)` (ports, configs; fills self.members) and
    `member_cmd(m)`, and set `loadgen` (argv prefix of the contract CLI)."""

    name = "?"
    loadgen = []
    start_timeout_s = LEADER_WAIT_S

    def __init__(self):
        self.members = []
        self.workdir = None

    def missing(self):
        return None

    def prepare(self, workdir):
        raise NotImplementedError

    def member_cmd(self, m):
        raise NotImplementedError

    @property
    def endpoints(self):
        return ",".join(m.endpoint for m in self.members)

    def make_members(self, workdir, dir_prefix, n=3, extra_ports=0):
        """n members on fresh 127.0.0.1 ports, data dirs workdir/<prefix><i>;
        returns extra_ports more free ports (distinct from the members')."""
        ports = free_ports(n + extra_ports)
        self.members = [Member(i + 1, f"127.0.0.1:{ports[i]}",
                               os.path.join(workdir, f"{dir_prefix}{i + 1}")) for i in range(n)]
        return ports[n:]

    def pids(self):
        return [m.pid for m in self.members if m.proc and m.proc.poll() is None]

    def start(self):
        self.workdir = tempfile.mkdtemp(prefix=f"bench-{self.name}-")
        self.prepare(self.workdir)
        for m in self.members:
            self.start_member(m)
        log(f"{self.name}: members {[(m.endpoint, m.pid) for m in self.members]} in {self.workdir}")

    def start_member(self, m):
        os.makedirs(m.data_dir, exist_ok=True)
        m.proc = PROCS.start(self.member_cmd(m), os.path.join(self.workdir, f"member-{m.idx}.log"))

    def stop(self, logs_to=None):
        """Stops every member by PID; copies the members' logs (gzip) to
        `logs_to` (a leader change or a failure can be read afterwards) and
        removes the temp dir unless BENCH_KEEP=1."""
        for m in self.members:
            if m.proc:
                PROCS.stop(m.proc.pid)
        if self.workdir and logs_to:
            os.makedirs(logs_to, exist_ok=True)
            for m in self.members:
                src = os.path.join(self.workdir, f"member-{m.idx}.log")
                if os.path.exists(src):
                    with open(src, "rb") as f, \
                            gzip.open(os.path.join(logs_to, f"member-{m.idx}.log.gz"), "wb") as g:
                        shutil.copyfileobj(f, g)
        if self.workdir and os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)

    def member_by_endpoint(self, ep):
        for m in self.members:
            if m.endpoint == ep:
                return m
        return None

    def wait_ready(self, want_up=3, timeout_s=None):
        """Bounded poll (`timeout_s`, default start_timeout_s) until a leader
        is known and `want_up` members answer."""
        timeout_s = timeout_s or self.start_timeout_s
        deadline = time.time() + timeout_s
        last = None
        while time.time() < deadline:
            for m in self.members:
                if m.proc and m.proc.poll() is not None:
                    raise HarnessError(f"{self.name}: member {m.idx} exited with {m.proc.returncode}")
            try:
                last = run_loadgen(self, "leader", timeout_s=15)
                if last.get("leader") and last.get("up", want_up) >= want_up:
                    return last
            except HarnessError as e:
                last = {"error": str(e)}
            time.sleep(0.3)
        raise HarnessError(f"{self.name}: no leader with {want_up} members up within "
                           f"{timeout_s}s (last: {last})")


class EtcdCluster(Cluster):
    """Debian etcd-server, default settings (fsync on), 3 members."""

    name = "etcd"
    loadgen = [os.path.join(BENCH, "peers/etcd/target/etcd-loadgen")]

    def missing(self):
        if not shutil.which("etcd"):
            return "etcd not installed (apt-get install etcd-server; bench/setup.sh)"
        if not os.access(self.loadgen[0], os.X_OK):
            return f"{self.loadgen[0]} not built (bench/setup.sh)"
        return None

    def prepare(self, workdir):
        peer_ports = self.make_members(workdir, "m", extra_ports=3)
        self.peer_urls = [f"http://127.0.0.1:{p}" for p in peer_ports]
        self.initial_cluster = ",".join(f"m{i + 1}={u}" for i, u in enumerate(self.peer_urls))

    def member_cmd(self, m):
        client = f"http://{m.endpoint}"
        peer = self.peer_urls[m.idx - 1]
        return ["etcd", "--name", f"m{m.idx}", "--data-dir", m.data_dir,
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", self.initial_cluster,
                "--initial-cluster-token", "bench", "--initial-cluster-state", "new"]


class RatisCluster(Cluster):
    """Apache Ratis 3.2.0 (gRPC, segmented durable log), bench/peers/ratis."""

    name = "ratis"
    jar = os.path.join(BENCH, "peers/ratis/target/ratis-bench.jar")
    # Client JVM: C1 only and serial GC, so the load generator's JIT does not
    # eat the 2 cores the servers need (servers run with JVM defaults).
    loadgen = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", jar, "loadgen"]

    def missing(self):
        if not shutil.which("java"):
            return "java not installed"
        if not os.path.exists(self.jar):
            return f"{self.jar} not built (bench/setup.sh)"
        return None

    def prepare(self, workdir):
        self.make_members(workdir, "n")
        # Servers run from a private copy: a JVM loads classes lazily from its
        # jar, so a rebuild during the run would break running members.
        self.server_jar = os.path.join(workdir, "ratis-bench.jar")
        shutil.copyfile(self.jar, self.server_jar)

    def member_cmd(self, m):
        return ["java", "-jar", self.server_jar, "server", "--id", str(m.idx),
                "--peers", self.endpoints, "--data-dir", m.data_dir]


class EesCluster(Cluster):
    """ees-cluster: build/apps/ees-node processes (one Raft group "bench",
    node defaults otherwise; RocksDB writes are synced) driven by
    build/bench/ees_loadgen, which implements the same contract."""

    name = "ees"
    build = os.environ.get("BUILD_DIR", os.path.join(ROOT, "build"))
    node = os.path.join(build, "apps/ees-node")
    loadgen = [os.path.join(build, "bench/ees_loadgen")]

    def missing(self):
        for b in (self.loadgen[0], self.node):
            if not os.access(b, os.X_OK):
                return f"{b} not built"
        return None

    def prepare(self, workdir):
        self.make_members(workdir, "node-")
        for m in self.members:
            lines = [f"ees.cluster.node-id={m.idx}", f"ees.cluster.listen={m.endpoint}"]
            lines += [f"ees.cluster.peers[{o.idx - 1}]={o.idx}@{o.endpoint}" for o in self.members]
            lines += [f"ees.cluster.raft.data-dir={m.data_dir}",
                      "ees.cluster.raft.groups[bench].peers=1,2,3"]
            with open(os.path.join(workdir, f"node-{m.idx}.properties"), "w") as f:
                f.write("\n".join(lines) + "\n")

    def member_cmd(self, m):
        return [self.node, "--config", os.path.join(self.workdir, f"node-{m.idx}.properties")]


SYSTEMS = {"ees": EesCluster, "etcd": EtcdCluster, "ratis": RatisCluster}


# ---------------------------------------------------------------- load generator

def run_loadgen(cluster, workload, timeout_s=None, stderr_path=None, **opts):
    """Runs one load-generator invocation; returns its JSON line (a dict)
    plus `_wall` (t0, t1) and `_rusage_s` (whole process CPU from wait4).
    stderr goes to stderr_path, default <workdir>/loadgen.log."""
    args = list(cluster.loadgen) + ["--endpoints", cluster.endpoints, "--workload", workload,
                                    "--value-size", str(VALUE_SIZE)]
    for k, v in opts.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    if timeout_s is None:
        timeout_s = float(opts.get("duration_s", 0)) + float(opts.get("warmup_s", 0)) + 90
    logdir = cluster.workdir or tempfile.gettempdir()
    out_path = os.path.join(logdir, f"loadgen-{workload}-{threading.get_ident()}.out")
    err_path = stderr_path or os.path.join(logdir, "loadgen.log")
    t0 = time.time()
    with open(out_path, "wb") as out:
        p = PROCS.start(args, err_path, stdout=out)
    deadline = t0 + timeout_s
    status = ru = None
    while time.time() < deadline:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.02)
    else:
        PROCS.kill9(p.pid)
        raise HarnessError(f"{cluster.name} loadgen {workload} timed out after {timeout_s:.0f}s")
    p.returncode = os.waitstatus_to_exitcode(status)
    PROCS.live.pop(p.pid, None)
    t1 = time.time()
    with open(out_path) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip().startswith("{")]
    if p.returncode != 0 or not lines:
        raise HarnessError(f"{cluster.name} loadgen {workload} exited {p.returncode}; see {err_path}")
    res = json.loads(lines[-1])
    res["_wall"] = (t0, t1)
    res["_rusage_s"] = ru.ru_utime + ru.ru_stime
    return res


# ---------------------------------------------------------------- workloads

class Runner:
    """Runs W1..W6 against one started cluster; results go to self.runs."""

    def __init__(self, cluster, prof):
        self.c, self.p = cluster, prof
        self.runs = []
        # What run_all found besides the runs (RSS, failover trials), kept
        # as it goes: a system that fails part-way still reports it.
        self.extra = {}
        self.sampler = Sampler(cluster.pids)

    def measured(self, label, workload, **opts):
        res = run_loadgen(self.c, workload, **opts)
        t0, t1 = res.pop("_wall")
        # Server CPU over the measured window (t_start/t_end when the loadgen
        # reports them, else the whole invocation).
        w0, w1 = res.get("t_start", t0), res.get("t_end", t1)
        dur = max(w1 - w0, 1e-9)
        self.sampler.wait_past(w1)
        su, ss = self.sampler.cpu_between(w0, w1)
        res.update(label=label, server_cpu_user_s=round(su, 3), server_cpu_sys_s=round(ss, 3),
                   server_cores=round((su + ss) / dur, 3),
                   loadgen_cores=round((res.get("cpu_user_s", 0) + res.get("cpu_sys_s", 0))
                                       / max(res.get("duration_s", dur), 1e-9), 3),
                   loadgen_process_cpu_s=round(res.pop("_rusage_s"), 3))
        self.runs.append(res)
        log(f"{self.c.name} {label}: {res.get('throughput', 0):.0f}/s p50={res.get('p50_ms')}ms "
            f"p99={res.get('p99_ms')}ms err={res.get('errors')} lg={res['loadgen_cores']} "
            f"srv={res['server_cores']} cores")
        return res

    def rss(self):
        return [round((proc_rss_kib(m.pid) or 0) / 1024, 1) for m in self.c.members]

    def run_all(self):
        p, c = self.p, self.c
        summary = self.extra  # Filled as it goes (see __init__).
        self.sampler.start()
        try:
            c.wait_ready()
            time.sleep(p["settle_s"])
            # W6 first, on the fresh cluster: idle RSS, then after filling keys.
            summary["rss_idle_mib"] = self.rss()
            fill = self.measured("W6 fill", "fill", concurrency=FILL_CONCURRENCY,
                                 keys=p["fill_keys"], duration_s=p["fill_limit_s"])
            time.sleep(p["settle_s"])
            summary["rss_filled_mib"] = self.rss()
            summary["fill_keys"] = fill["ops"]
            summary["fill_target_keys"] = p["fill_keys"]
            summary["fill_errors"] = fill["errors"]
            if p["cluster_warmup_s"] > 0:  # JIT / caches; not recorded
                run_loadgen(c, "put", concurrency=16, duration_s=p["cluster_warmup_s"], keys=KEYS)
            common = dict(duration_s=p["dur_s"], warmup_s=p["warmup_s"], keys=KEYS)
            for n in p["w1_conc"]:
                self.measured(f"W1 put c={n}", "put", concurrency=n, **common)
            for n in p["w2_conc"]:
                self.measured(f"W2 get c={n}", "get", concurrency=n, **common)
            self.measured("W3 lock c=1", "lock", concurrency=1, **common)
            for n in p["w4_clients"]:
                self.measured(f"W4 contended n={n}", "contended", concurrency=n, clients=n, **common)
            self.failover()
        finally:
            self.sampler.stop_ev.set()
        return summary

    def failover(self):
        """W5: leader changes in a saturated run without faults, then kill -9
        of the leader under a concurrency-1 write probe, restart, repeat.
        Results go to self.extra as they come."""
        p, c, out = self.p, self.c, self.extra
        before = c.wait_ready()
        self.measured("W5 saturated", "put", concurrency=256, duration_s=p["saturated_s"],
                      warmup_s=0, keys=KEYS)
        # The term needs a leader only; a follower may still be catching up.
        after = c.wait_ready(want_up=2)
        out.update({"saturated_s": p["saturated_s"],
                    "leader_changes": int(after["term"]) - int(before["term"]),
                    "leader_before": before["leader"], "leader_after": after["leader"]})
        c.wait_ready(timeout_s=CATCH_UP_WAIT_S)
        trials = out["failover_trials"] = []
        for i in range(p["failover_trials"]):
            st = c.wait_ready()
            victim = c.member_by_endpoint(st["leader"])
            if victim is None:
                raise HarnessError(f"{c.name}: leader {st['leader']} is not a member endpoint")
            holder = {}
            err_path = os.path.join(c.workdir, f"probe-{i + 1}.err")
            th = threading.Thread(target=lambda: holder.update(res=self._probe(err_path)), daemon=True)
            th.start()
            # Kill kill_after_s after the probe's first acknowledged write.
            deadline = time.time() + 40
            while not probe_acked(err_path):
                if time.time() > deadline or not th.is_alive():
                    th.join(60)
                    raise HarnessError(f"{c.name}: failover probe got no first ack")
                time.sleep(0.02)
            time.sleep(p["kill_after_s"])
            kill_ts = time.time()
            PROCS.kill9(victim.pid)
            th.join(p["probe_s"] + 60)
            res = holder.get("res")
            if res is None:
                raise HarnessError(f"{c.name}: failover probe failed")
            ms = failover_ms(res, kill_ts)
            trials.append({"trial": i + 1, "killed": victim.endpoint, "failover_ms": ms,
                           "kill_ts": kill_ts, "probe_errors": res["errors"],
                           "probe_ops": res["ops"], "first_ack": res.get("first_ack"),
                           "last_ack": res.get("last_ack"), "gaps": res.get("gaps", [])[:20]})
            log(f"{c.name} W5 trial {i + 1}: killed leader {victim.endpoint}; "
                f"next ack after {ms} ms")
            if i + 1 < p["failover_trials"]:
                c.start_member(victim)  # same data dir and port; the next trial waits for it

    def _probe(self, err_path):
        try:
            return run_loadgen(self.c, "failover-probe", stderr_path=err_path, concurrency=1,
                               duration_s=self.p["probe_s"], keys=KEYS,
                               op_timeout_ms=PROBE_OP_TIMEOUT_MS, gap_ms=PROBE_GAP_MS)
        except HarnessError as e:
            log(str(e))
            return None


def probe_acked(err_path):
    """True once the failover probe has printed its first-ack line."""
    try:
        with open(err_path, errors="replace") as f:
            return any(line.strip() == "first-ack" for line in f)
    except OSError:
        return False


def failover_ms(probe, kill_ts):
    """Time from the kill to the first acknowledged write after the outage it
    caused: the end of the first ack gap (>= PROBE_GAP_MS) that ends after
    kill_ts and starts at most 0.5 s after it (a write already committed when
    the leader died may still be acknowledged just after the kill). Returns
    PROBE_GAP_MS (an upper bound) if there is no such gap, None if the probe
    had no ack before the kill or none after it."""
    first, last = probe.get("first_ack"), probe.get("last_ack")
    if first is None or first > kill_ts or last < kill_ts:
        return None
    for a, b in sorted(probe.get("gaps", [])):
        if b > kill_ts and a <= kill_ts + 0.5:
            return round((b - kill_ts) * 1000, 1)
    return float(PROBE_GAP_MS)


# ---------------------------------------------------------------- fio

def run_fio(seconds, directory):
    if not shutil.which("fio"):
        return {"error": "fio not installed"}
    out = {}
    for mode in ("fsync", "fdatasync"):
        d = tempfile.mkdtemp(prefix="bench-fio-", dir=directory)
        try:
            r = subprocess.run(
                ["fio", "--name=sync", f"--directory={d}", "--rw=write", "--bs=4k", "--size=64m",
                 f"--{mode}=1", "--ioengine=sync", "--time_based", f"--runtime={seconds}",
                 "--output-format=json"], capture_output=True, text=True, timeout=seconds + 120)
            job = json.loads(r.stdout)["jobs"][0]
            sync = job.get("sync", {}).get("lat_ns", {})
            out[mode] = {"iops": round(job["write"]["iops"], 1),
                         "sync_lat_mean_ms": round(sync.get("mean", 0) / 1e6, 3)}
        except (subprocess.SubprocessError, ValueError, KeyError, IndexError) as e:
            out[mode] = {"error": str(e)}
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return out


# ---------------------------------------------------------------- report

def summarize(runs, extra):
    """Flat metric -> value map of one system (the table rows)."""
    by = {r["label"]: r for r in runs}
    m = {}
    for label, r in by.items():
        if not r.get("ops"):  # no successful op in the window: no latencies
            r = dict(r, **{k: None for k in ("p50_ms", "p99_ms", "p999_ms")})
        if label.startswith("W1") or label.startswith("W2"):
            m[f"{label} ops/s"] = r["throughput"]
            for q in ("p50", "p99", "p999"):
                m[f"{label} {q} ms"] = r[f"{q}_ms"]
        elif label.startswith("W3"):
            m[f"{label} ops/s"] = r["throughput"]
            m[f"{label} p50 ms"] = r["p50_ms"]
            m[f"{label} p99 ms"] = r["p99_ms"]
        elif label.startswith("W4"):
            m[f"{label} handoffs/s"] = r["throughput"]
            m[f"{label} wait p50 ms"] = r["p50_ms"]
            m[f"{label} wait p99 ms"] = r["p99_ms"]
    fo = [t["failover_ms"] for t in extra.get("failover_trials", []) if t["failover_ms"] is not None]
    if fo:
        m["W5 failover median ms"] = round(statistics.median(fo), 1)
        m["W5 failover max ms"] = max(fo)
    m["W5 failover trials (recovered/total)"] = \
        f"{len(fo)}/{len(extra.get('failover_trials', []))}"
    if "leader_changes" in extra:
        m[f"W5 leader changes, {extra['saturated_s']:.0f}s saturated"] = extra["leader_changes"]
    if "rss_idle_mib" in extra:
        m["W6 RSS idle MiB (max node)"] = max(extra["rss_idle_mib"])
        m["W6 keys written (256 B values)"] = extra["fill_keys"]
        m["W6 RSS after the keys MiB (max node)"] = max(extra["rss_filled_mib"])
    w1 = [r for r in runs if r["label"].startswith("W1")]
    if w1:
        m["W1 loadgen cores (max)"] = max(r["loadgen_cores"] for r in w1)
        m["W1 servers cores (max)"] = max(r["server_cores"] for r in w1)
    return m


LOWER_IS_BETTER = ("ms", "MiB", "cores", "leader changes")
NO_DIRECTION = ("keys written", "trials (recovered")


def fmt(v):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
    return str(v)


def write_markdown(path, results):
    systems = [s for s in results["systems"]]
    # Systems with figures: those that ran through, and those that failed
    # part-way (what they measured until then).
    ok = [s for s in systems if "summary" in results["systems"][s]]
    ref = "etcd" if "etcd" in ok else None
    others = [s for s in ok if s != ref] if ref else []
    lines = [f"# Benchmark results ({results['mode']})", ""]
    meta = results["meta"]
    lines.append(f"{meta['date']} · {meta['host']} · {meta['cpus']} cores · kernel {meta['kernel']} · "
                 f"harness wall time {results['elapsed_s']:.0f} s · load average (1 min) "
                 f"{meta['loadavg_start'][0]:.1f} at start, {meta['loadavg_end'][0]:.1f} at end "
                 f"(other work on the machine skews the numbers)")
    fio = results.get("fio", {})
    if "fsync" in fio and "iops" in fio["fsync"]:
        lines.append("")
        lines.append(f"Physical bound (fio, 4 KiB sequential writes on the data-dir file system): "
                     f"**{fio['fsync']['iops']:,.0f} fsync/s** "
                     f"({fio['fsync']['sync_lat_mean_ms']} ms each); "
                     f"fdatasync: {fio.get('fdatasync', {}).get('iops', '?')}/s.")
    lines.append("")
    for s in systems:
        st = results["systems"][s]
        if st["status"] != "ok":
            partial = " (its column holds what it measured before)" if s in ok else ""
            lines.append(f"- {s}: **{st['status']}**{partial} — {st.get('reason', '')}")
    lines.append("")
    if ok:
        keys = []
        for s in ok:
            for k in results["systems"][s]["summary"]:
                if k not in keys:
                    keys.append(k)
        header = ["metric"] + ok + [f"{o}/{ref}" for o in others] + ["better"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for k in keys:
            vals = [results["systems"][s]["summary"].get(k, "") for s in ok]
            row = [k] + [fmt(v) for v in vals]
            for o in others:
                a = results["systems"][o]["summary"].get(k)
                b = results["systems"][ref]["summary"].get(k)
                row.append(f"{a / b:.2f}x" if isinstance(a, (int, float)) and isinstance(b, (int, float))
                           and b else "")
            row.append("" if any(t in k for t in NO_DIRECTION)
                       else "lower" if any(t in k for t in LOWER_IS_BETTER) else "higher")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        lines.append("Load generator CPU share (measured window; cores = CPU seconds / wall "
                     "seconds; the machine has " f"{meta['cpus']} cores):")
        lines.append("")
        lines.append("| system | run | ops/s | loadgen cores | servers cores | loadgen share |")
        lines.append("|---|---|---|---|---|---|")
        for s in ok:
            for r in results["systems"][s]["runs"]:
                tot = r["loadgen_cores"] + r["server_cores"]
                share = f"{100 * r['loadgen_cores'] / tot:.0f}%" if tot else ""
                lines.append(f"| {s} | {r['label']} | {fmt(r['throughput'])} | {r['loadgen_cores']:.2f} | "
                             f"{r['server_cores']:.2f} | {share} |")
    lines.append("")
    lines.append("Latencies are per operation at the client. W3 = acquire + release, one client; "
                 "W4 = acquire wait with N clients on one lock (hold 0 ms); W5 = kill -9 of the "
                 "leader under a concurrency-1 write probe, time to the next acknowledged write "
                 f"(writes retried after {PROBE_OP_TIMEOUT_MS} ms). Ratios are system/etcd.")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def have_matplotlib(python):
    return subprocess.run([python, "-c", "import matplotlib"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def plotting_python():
    """An interpreter that has matplotlib: this one, else Debian's
    /usr/bin/python3 (after installing python3-matplotlib if missing), else None."""
    candidates = [sys.executable] + (["/usr/bin/python3"] if os.path.exists("/usr/bin/python3") else [])
    for py in candidates:
        if have_matplotlib(py):
            return py
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing python3-matplotlib (apt)")
        subprocess.run(["apt-get", "install", "-y", "-q", "python3-matplotlib"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), timeout=900)
        for py in candidates:
            if have_matplotlib(py):
                return py
    return None


def plot_file(json_path, png_path):
    """Writes the PNG from results.json, in whichever interpreter has matplotlib."""
    py = plotting_python()
    if py is None:
        log("matplotlib not available: no PNG")
        return False
    if py != sys.executable:
        return subprocess.run([py, os.path.abspath(__file__), "--plot-from", json_path,
                               "--out", os.path.dirname(png_path)]).returncode == 0
    with open(json_path) as f:
        write_plot(png_path, json.load(f))
    return True


def write_plot(path, results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [s for s, v in results["systems"].items() if "summary" in v]
    fig, ax = plt.subplots(2, 3, figsize=(16, 9))
    fig.suptitle(f"ees-cluster benchmark ({results['mode']}): 3 members on 127.0.0.1, fsync on")

    def runs(s, prefix):
        return [r for r in results["systems"][s]["runs"] if r["label"].startswith(prefix)]

    for k, s in enumerate(ok):
        # One colour per system in every panel (the bar charts' order).
        color = f"C{k}"
        w1 = [r for r in runs(s, "W1") if r["ops"] > 0]
        xs = [r["concurrency"] for r in w1]
        ax[0][0].plot(xs, [r["throughput"] for r in w1], marker="o", color=color, label=s)
        ax[0][1].plot(xs, [r["p50_ms"] for r in w1], marker="o", color=color, label=f"{s} p50")
        ax[0][1].plot(xs, [r["p99_ms"] for r in w1], marker="x", linestyle="--", color=color,
                      label=f"{s} p99")
    for a, t, yl in ((ax[0][0], "W1 writes: throughput", "ops/s"),
                     (ax[0][1], "W1 writes: latency", "ms")):
        a.set_title(t)
        a.set_xscale("log", base=2)
        a.set_xlabel("concurrency")
        a.set_ylabel(yl)
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    ax[0][1].set_yscale("log")

    def bars(a, title, ylabel, labels_vals):
        # labels_vals: {system: [(label, value)]}
        cats = []
        for s in ok:
            for lbl, _ in labels_vals.get(s, []):
                if lbl not in cats:
                    cats.append(lbl)
        width = 0.8 / max(len(ok), 1)
        for i, s in enumerate(ok):
            d = dict(labels_vals.get(s, []))
            a.bar([j + i * width for j in range(len(cats))], [d.get(c, 0) or 0 for c in cats],
                  width, label=s)
        a.set_xticks([j + width * (len(ok) - 1) / 2 for j in range(len(cats))])
        a.set_xticklabels(cats, fontsize=8, rotation=20, ha="right")
        a.set_title(title)
        a.set_ylabel(ylabel)
        a.legend(fontsize=8)
        a.grid(axis="y", alpha=0.3)

    bars(ax[0][2], "W2 linearizable reads", "ops/s",
         {s: [(r["label"][3:], r["throughput"]) for r in runs(s, "W2")] for s in ok})
    bars(ax[1][0], "W3 lock / W4 contended: latency", "ms",
         {s: [(f"{r['label'][:2]} {r['label'].split()[-1]} {q}", r[f"{q}_ms"])
              for r in runs(s, "W3") + runs(s, "W4") for q in ("p50", "p99")] for s in ok})
    bars(ax[1][1], "W4 contended lock: handoffs", "handoffs/s",
         {s: [(r["label"].split()[-1], r["throughput"]) for r in runs(s, "W4")] for s in ok})
    fo = {}
    for s in ok:
        sm = results["systems"][s]["summary"]
        fo[s] = [("failover median", sm.get("W5 failover median ms")),
                 ("failover max", sm.get("W5 failover max ms"))]
    bars(ax[1][2], "W5 failover: kill -9 leader → next ack", "ms", fo)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", dest="mode", const="quick")
    mode.add_argument("--smoke", action="store_const", dest="mode", const="smoke")
    mode.add_argument("--full", action="store_const", dest="mode", const="full")
    ap.add_argument("--systems", default="ees,etcd,ratis")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-results"))
    ap.add_argument("--plot-from", help=argparse.SUPPRESS)  # results.json -> results.png only
    args = ap.parse_args()
    if args.plot_from:
        with open(args.plot_from) as f:
            write_plot(os.path.join(args.out, "results.png"), json.load(f))
        return 0
    args.mode = args.mode or "full"
    prof = PROFILES[args.mode]
    os.makedirs(args.out, exist_ok=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)

    t_start = time.time()
    results = {"mode": args.mode, "profile": prof,
               "meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "host": platform.node(),
                        "cpus": os.cpu_count(), "kernel": platform.release(),
                        "value_size": VALUE_SIZE, "keys": KEYS,
                        "loadavg_start": os.getloadavg()},
               "systems": {}}
    failed = False
    try:
        log(f"mode {args.mode}: fio {prof['fio_s']}s (fsync and fdatasync)")
        results["fio"] = run_fio(prof["fio_s"], tempfile.gettempdir())
        log(f"fio: {results['fio']}")
        for name in [s.strip() for s in args.systems.split(",") if s.strip()]:
            if name not in SYSTEMS:
                raise SystemExit(f"unknown system {name}; known: {', '.join(SYSTEMS)}")
            cl = SYSTEMS[name]()
            why = cl.missing()
            if why:
                log(f"{name}: not available ({why})")
                results["systems"][name] = {"status": "not available", "reason": why}
                continue
            t0 = time.time()
            runner = Runner(cl, prof)
            try:
                cl.start()
                extra = runner.run_all()
                results["systems"][name] = {"status": "ok", "runs": runner.runs, "extra": extra,
                                            "summary": summarize(runner.runs, extra)}
            except HarnessError as e:
                failed = True
                log(f"{name}: FAILED: {e}")
                # What it measured before it failed is reported as well.
                results["systems"][name] = {"status": "failed", "reason": str(e), "runs": runner.runs,
                                            "extra": runner.extra,
                                            "summary": summarize(runner.runs, runner.extra)}
            finally:
                cl.stop(logs_to=os.path.join(args.out, "logs", name))
                st = results["systems"].setdefault(
                    name, {"status": "interrupted", "reason": "stopped by a signal", "runs": runner.runs})
                st["elapsed_s"] = round(time.time() - t0, 1)
                log(f"{name}: done in {time.time() - t0:.0f}s")
    except KeyboardInterrupt as e:
        failed = True
        log(f"interrupted ({e}); stopping everything")
        results["interrupted"] = True
    finally:
        PROCS.stop_all()
    results["elapsed_s"] = round(time.time() - t_start, 1)
    results["meta"]["loadavg_end"] = os.getloadavg()
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_markdown(os.path.join(args.out, "results.md"), results)
    png = any("summary" in v for v in results["systems"].values()) and \
        plot_file(os.path.join(args.out, "results.json"), os.path.join(args.out, "results.png"))
    log(f"wrote {args.out}/results.md, results.json" + (", results.png" if png else "")
        + f" in {results['elapsed_s']:.0f}s")
    print(open(os.path.join(args.out, "results.md")).read())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
