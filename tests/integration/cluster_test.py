#!/usr/bin/env python3
"""Integration tests: three real ees-node processes on 127.0.0.1.

Scenario `main` (the default):
(a) commits 10,000 commands to one group (plus 1,000 to a second group) with
    `eesctl bench` and checks that every replica has the same state hash;
(b) kill -9 of the leader: a new leader is elected, writes continue, the
    killed node restarts and catches up (prints the failover time);
(c) kill -9 of all three nodes, restart: no acknowledged write is lost;
(d) SIGSTOP of a leader (a hung node): a new leader takes over, the node
    catches up after SIGCONT;
and finally stops every node with SIGTERM and expects exit code 0.

Scenario `tls`: the cluster over mutual TLS (caf_openssl, certificates made
with the openssl CLI): commits and a kill -9/restart over TLS, and a node
(and a client) whose certificate and CA are not the cluster's cannot join
until it is given the right ones (docs/tls.md).

Scenario `snapshot`: a follower that was down (kill -9) while the leader
snapshotted and compacted its log past the follower's last index catches up
by InstallSnapshot, not by log replay (its status counts installed
snapshots and its log starts after the leader's snapshot), and ends with
the same state digest as the others (prints the catch-up time).

Every wait is a bounded poll on a condition. Every process started is
stopped by PID at the end, also on failure. Python 3 standard library only.

In the sanitizer build a node's SIGTERM exit may carry a LeakSanitizer
report of blocks CAF 0.17.6 allocated itself; `caf_only_leaks` accepts only
that, and `--self-test-leak-filter` checks it on sample reports.

usage: cluster_test.py --node PATH/ees-node --ctl PATH/eesctl
                       [--scenario main|snapshot|tls] [--keep]
       cluster_test.py --self-test-leak-filter
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

GROUPS = ["orders", "billing"]
POLL = 0.05  # Poll interval inside bounded waits (seconds).


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_ports(n):
    """Ports that were free at bind time (all bound at once, so distinct)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


LEAK_BLOCK = re.compile(
    r"^(Direct|Indirect) leak of (\d+) byte\(s\) in \d+ object\(s\) "
    r"allocated from:\n((?:[ \t]+#\d+ .*\n?)+)", re.M)
ALLOCATORS = re.compile(r" in (operator new|malloc|calloc|realloc|"
                        r"aligned_alloc|posix_memalign)\b")
# The standard library's allocation plumbing, inlined into whichever binary
# instantiated the container: the caller below it is the allocating code.
STD_PLUMBING = re.compile(r" in (std::__new_allocator<|std::allocator_traits<"
                          r"|std::_Vector_base<|(void )?std::vector<"
                          r"|__gnu_cxx::__normal_iterator<.*std::vector<)")
# CAF's frames: its shared libraries, or templates from its headers (CAF's
# serializers are header templates, instantiated in our binary).
CAF_FRAME = re.compile(r"/libcaf_\w+\.so[.\d]*\+0x|/usr/include/caf/")
# A standard container of CAF's own type (std::vector<caf::behavior>).
CAF_CONTAINER = re.compile(r" in (void )?std::\w+<caf::")


def caf_only_leaks(text):
    """`text` is what a node printed after its shutdown began. Returns a
    summary if it is a complete shutdown ("stopped") followed by a
    LeakSanitizer report, no other sanitizer error, and every leaked block's
    allocating frame (the first below operator new/malloc and the standard
    library's allocation plumbing) lies in a libcaf_*.so or a CAF header
    template; otherwise None.

    Why: CAF 0.17.6 can leave its own BASP state (the broker, the temporary
    actor it spawns per new node to ask for the node's spawn server, their
    mailbox elements) in a reference cycle when a peer connection comes and
    goes just before shutdown (CI stop 9, integration_snapshot). A module
    suppression in tests/lsan.supp would also hide our own objects, because
    any frame of a stack matches it and most of ours are called from CAF;
    this check keys on the allocating frame, so a block our code allocated
    still fails the test."""
    if not re.search(r"\] stopped\n", text):
        return None
    if "ERROR: LeakSanitizer: detected memory leaks" not in text:
        return None
    if re.search(r"ERROR: AddressSanitizer|runtime error:", text):
        return None
    blocks = LEAK_BLOCK.findall(text)
    if not blocks:
        return None
    total = 0
    for _, size, frames in blocks:
        frames = [f for f in frames.splitlines() if f.strip()]
        first = next((f for f in frames if not ALLOCATORS.search(f)
                      and not STD_PLUMBING.search(f)), "")
        if first:
            if not CAF_FRAME.search(first):
                return None
        elif not any(CAF_CONTAINER.search(f) for f in frames):
            # A stack cut short inside the plumbing (the fast unwinder
            # stops at a libcaf frame without frame pointers): only a
            # container of CAF's own type names CAF as its owner.
            return None
        total += int(size)
    return f"{len(blocks)} blocks, {total} bytes"


class Cluster:
    def __init__(self, node_bin, ctl_bin, root, snapshot_threshold=None):
        self.node_bin = node_bin
        self.ctl_bin = ctl_bin
        self.root = root
        self.ports = dict(zip([1, 2, 3], free_ports(3)))
        self.procs = {}
        self.logs = {}
        # Extra config lines per node (TLS keys) and the TLS arguments of
        # eesctl (empty: plain TCP).
        self.extra = {}
        self.ctl_tls = []
        self.snapshot_threshold = snapshot_threshold
        for i in self.ports:
            self.write_config(i)

    def write_config(self, i, extra=None):
        """(Re)writes node i's config; `extra` lines are kept for later
        rewrites."""
        if extra is not None:
            self.extra[i] = list(extra)
        data = os.path.join(self.root, f"node-{i}")
        os.makedirs(data, exist_ok=True)
        lines = [
            f"ees.cluster.node-id={i}",
            f"ees.cluster.listen=127.0.0.1:{self.ports[i]}",
        ]
        for k, (j, p) in enumerate(sorted(self.ports.items())):
            lines.append(f"ees.cluster.peers[{k}]={j}@127.0.0.1:{p}")
        lines.append(f"ees.cluster.raft.data-dir={data}")
        for g in GROUPS:
            lines.append(f"ees.cluster.raft.groups[{g}].peers=1,2,3")
        lines += [
            "ees.cluster.raft.heartbeat-ms=50",
            "ees.cluster.raft.election-ms=500",
            "ees.cluster.raft.rpc-timeout-ms=1000",
            # Snapshots and log compaction happen during the test.
            "ees.cluster.raft.snapshot.threshold=" + str(
                self.snapshot_threshold or os.environ.get(
                    "EES_IT_SNAPSHOT_THRESHOLD", "2000")),
        ]
        lines += self.extra.get(i, [])
        with open(self.config(i), "w") as f:
            f.write("\n".join(lines) + "\n")

    def config(self, i):
        return os.path.join(self.root, f"node-{i}.properties")

    def addr(self, i):
        return f"127.0.0.1:{self.ports[i]}"

    def start(self, i):
        assert i not in self.procs, f"node {i} already running"
        logf = open(os.path.join(self.root, f"node-{i}.log"), "a")
        self.logs[i] = logf
        self.procs[i] = subprocess.Popen(
            [self.node_bin, "--config", self.config(i)],
            stdout=logf, stderr=subprocess.STDOUT)
        log(f"started node {i} pid={self.procs[i].pid} on {self.addr(i)}")

    def kill9(self, i):
        p = self.procs.pop(i)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        log(f"kill -9 node {i} pid={p.pid}")

    def stop(self, i, timeout=15):
        """SIGTERM by PID; returns the exit code (SIGKILL after timeout)."""
        p = self.procs.pop(i)
        os.kill(p.pid, signal.SIGTERM)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
            return None

    def stop_clean(self, i):
        """Stops node i by SIGTERM and asserts a clean exit: code 0, or, in
        the sanitizer build, a LeakSanitizer report whose every leaked block
        was allocated inside CAF itself (see `caf_only_leaks`)."""
        code = self.stop(i)
        if code == 0:
            return
        tail = self.log_text(i).rsplit("stopping", 1)[-1]
        accepted = caf_only_leaks(tail)
        assert accepted, f"node {i} exited with {code} on SIGTERM"
        log(f"node {i}: its exit code {code} comes from a LeakSanitizer "
            f"report of CAF-internal blocks only ({accepted}); accepted")

    def stop_all(self):
        for i in list(self.procs):
            p = self.procs.pop(i)
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for f in self.logs.values():
            f.close()

    def finish(self, ok, keep):
        """Stops every node by PID; on failure prints the tail of each node's
        log and keeps the temp dir, on success removes it unless `keep`."""
        self.stop_all()
        if not ok:
            for i in [1, 2, 3]:
                path = os.path.join(self.root, f"node-{i}.log")
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        tail = f.readlines()[-25:]
                    print(f"---- node {i} log (tail) ----\n" + "".join(tail))
            print(f"logs kept in {self.root}")
        elif not keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def check_alive(self):
        for i, p in self.procs.items():
            if p.poll() is not None:
                raise AssertionError(f"node {i} exited with {p.returncode}")

    def ctl(self, i, *args, timeout=60, tls=None):
        """Runs eesctl against node i (over TLS with `tls` arguments, by
        default the cluster's); returns (exit code, stdout)."""
        cmd = [self.ctl_bin, "--connect", self.addr(i)]
        cmd += self.ctl_tls if tls is None else tls
        cmd += [str(a) for a in args]
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, ""
        return r.returncode, r.stdout

    def status(self, i, group, tls=None):
        rc, out = self.ctl(i, "--timeout-ms", 1000, "status", group, timeout=10,
                           tls=tls)
        if rc != 0 or not out.strip():
            return None
        return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)

    def wait_until(self, condition, deadline_s, what):
        """The one bounded wait of this driver: evaluates `condition` every
        POLL seconds until it returns something truthy (returned) or
        `deadline_s` passes (AssertionError naming `what`). Between polls it
        waits for a node to exit (check_alive then fails at once on a crash),
        at most POLL seconds."""
        deadline = time.monotonic() + deadline_s
        while True:
            self.check_alive()
            result = condition()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what()} within {deadline_s}s")
            self.await_exit(POLL)

    def await_exit(self, timeout_s):
        """Waits until the first running node exits, at most `timeout_s`."""
        for p in self.procs.values():
            try:
                p.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
            return

    def wait_leader(self, group, nodes, deadline_s, min_term=0):
        """Waits until a node of `nodes` leads `group` in a term > min_term."""
        def leader():
            for i in nodes:
                st = self.status(i, group)
                if st and st["role"] == "leader" and int(st["term"]) > min_term:
                    return i, int(st["term"])
            return None
        return self.wait_until(
            leader, deadline_s, lambda: f"no leader of {group} among {nodes}")

    def wait_converged(self, group, nodes, min_count, deadline_s):
        """Waits until every node of `nodes` has the same state hash and a
        count >= min_count; returns (count, hash)."""
        last = []

        def converged():
            sts = [self.status(i, group) for i in nodes]
            last[:] = sts
            if not all(sts):
                return None
            hashes = {s["hash"] for s in sts}
            counts = {int(s["keys"]) for s in sts}
            if len(hashes) == 1 and len(counts) == 1 \
                    and min(counts) >= min_count:
                return counts.pop(), hashes.pop()
            return None
        return self.wait_until(
            converged, deadline_s,
            lambda: f"{group} did not converge to >= {min_count} on {nodes}: "
                    f"{last}")

    def log_text(self, i):
        self.logs[i].flush()
        with open(os.path.join(self.root, f"node-{i}.log"),
                  errors="replace") as f:
            return f.read()

    def bench(self, i, group, n, concurrency, prefix):
        rc, out = self.ctl(i, "--timeout-ms", 5000, "bench", group, n,
                           "--concurrency", concurrency, "--prefix", prefix,
                           timeout=240)
        line = out.strip().splitlines()[-1] if out.strip() else ""
        res = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        log(f"bench {group} via node {i}: {line or '(no output)'}")
        return rc, res


def scenario_main(cluster):
    """(a)-(d) of the module docstring."""
    acked = {g: 0 for g in GROUPS}
    for i in cluster.ports:
        cluster.start(i)
    nodes = [1, 2, 3]
    for g in GROUPS:
        leader, term = cluster.wait_leader(g, nodes, 30)
        log(f"{g}: leader node {leader} term {term}")
    # Each node re-executed itself (same PID) with glibc's larger per-thread
    # malloc cache (apps/node_common.hpp, tune_malloc).
    for i, p in cluster.procs.items():
        with open(f"/proc/{p.pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
        want = b"GLIBC_TUNABLES=glibc.malloc.tcache_count=1024"
        assert want in env, (i, [e for e in env if e.startswith(b"GLIBC")])
    # Raft batches run over direct links to both peers (not BASP), so the
    # scenarios below exercise them under kill -9 and SIGSTOP.
    for i in nodes:
        cluster.wait_until(
            lambda i=i: all(f"direct link to peer {j} at" in
                            cluster.log_text(i) for j in nodes if j != i),
            10, lambda i=i: f"node {i}'s direct links to both peers")

    # (a) 10,000 commands, equal state hashes.
    rc, res = cluster.bench(1, "orders", 10000, 64, "a")
    assert rc == 0 and int(res["acked"]) == 10000, res
    acked["orders"] += int(res["acked"])
    rc, res2 = cluster.bench(2, "billing", 1000, 16, "a")
    assert rc == 0 and int(res2["acked"]) == 1000, res2
    acked["billing"] += int(res2["acked"])
    for g in GROUPS:
        count, h = cluster.wait_converged(g, nodes, acked[g], 60)
        assert count == acked[g], (g, count, acked[g])
        log(f"(a) {g}: all replicas keys={count} hash={h}")
    log(f"(a) RESULT 10000 commands in {res['seconds']} s = "
        f"{res['throughput']}/s, p50 {res['p50_ms']} ms, "
        f"p99 {res['p99_ms']} ms")

    # (b) kill -9 the leader of orders.
    old_leader, old_term = cluster.wait_leader("orders", nodes, 30)
    survivors = [i for i in nodes if i != old_leader]
    t0 = time.monotonic()
    cluster.kill9(old_leader)
    new_leader, new_term = cluster.wait_leader("orders", survivors, 30,
                                               min_term=old_term)
    t_elected = time.monotonic() - t0
    # Writes continue: the first acknowledged write after the kill.
    attempt = {}

    def write_acked():
        attempt["rc"], attempt["out"] = cluster.ctl(
            survivors[0], "--timeout-ms", 2000, "submit", "orders",
            '{"v":1,"type":"AssignKey","id":"b-first","key":"b-first",'
            '"owner":"it"}', timeout=10)
        return attempt["rc"] == 0
    cluster.wait_until(write_acked, 30,
                       lambda: f"no write after kill: {attempt['out']}")
    acked["orders"] += 1
    t_write = time.monotonic() - t0
    log(f"(b) RESULT failover: new leader node {new_leader} "
        f"(term {new_term}) seen after {t_elected*1000:.0f} ms, first "
        f"write acknowledged after {t_write*1000:.0f} ms")
    rc, res = cluster.bench(survivors[0], "orders", 2000, 32, "b")
    assert rc == 0 and int(res["acked"]) == 2000, res
    acked["orders"] += int(res["acked"])
    t1 = time.monotonic()
    cluster.start(old_leader)
    count, h = cluster.wait_converged("orders", nodes, acked["orders"], 60)
    log(f"(b) RESULT restarted node {old_leader} caught up "
        f"(keys={count} hash={h}) in {(time.monotonic()-t1)*1000:.0f} ms")
    cluster.wait_converged("billing", nodes, acked["billing"], 60)

    # (c) kill -9 all three, restart: nothing acknowledged is lost.
    rc, res = cluster.bench(1, "orders", 1000, 32, "c")
    acked["orders"] += int(res.get("acked", 0))
    for i in nodes:
        cluster.kill9(i)
    t2 = time.monotonic()
    for i in nodes:
        cluster.start(i)
    for g in GROUPS:
        count, h = cluster.wait_converged(g, nodes, acked[g], 60)
        assert count >= acked[g], (g, count, acked[g])
        log(f"(c) {g}: keys={count} >= acknowledged {acked[g]}, "
            f"hash={h} on all replicas")
    t_conv = time.monotonic() - t2
    leader, _ = cluster.wait_leader("orders", nodes, 30)
    rc, res = cluster.bench(leader, "orders", 500, 16, "c2")
    assert rc == 0, res
    acked["orders"] += int(res["acked"])
    log(f"(c) RESULT full restart: replicas replayed and converged after "
        f"{t_conv*1000:.0f} ms; leader and 500 new writes after "
        f"{(time.monotonic()-t2)*1000:.0f} ms")

    # (d) a hung leader (SIGSTOP): the others elect a new leader and
    # continue; after SIGCONT the node reconnects and catches up.
    leader, term = cluster.wait_leader("billing", nodes, 30)
    others = [i for i in nodes if i != leader]
    pid = cluster.procs[leader].pid
    os.kill(pid, signal.SIGSTOP)
    t3 = time.monotonic()
    try:
        new_leader, _ = cluster.wait_leader("billing", others, 30,
                                            min_term=term)
        log(f"(d) RESULT SIGSTOP of node {leader}: new leader node "
            f"{new_leader} after {(time.monotonic()-t3)*1000:.0f} ms")
        rc, res = cluster.bench(new_leader, "billing", 500, 16, "d")
        assert rc == 0 and int(res["acked"]) == 500, res
        acked["billing"] += 500
    finally:
        os.kill(pid, signal.SIGCONT)
    t4 = time.monotonic()
    count, h = cluster.wait_converged("billing", nodes, acked["billing"],
                                      60)
    log(f"(d) RESULT node {leader} resumed and caught up (keys={count} "
        f"hash={h}) in {(time.monotonic()-t4)*1000:.0f} ms")

    # Clean shutdown: SIGTERM by PID, exit code 0.
    for i in nodes:
        cluster.stop_clean(i)
    log("SIGTERM: all nodes exited with 0")


def scenario_snapshot(cluster):
    """A follower that missed compacted entries catches up by
    InstallSnapshot."""
    group = "orders"
    nodes = [1, 2, 3]
    for i in nodes:
        cluster.start(i)
    leader, term = cluster.wait_leader(group, nodes, 30)
    log(f"{group}: leader node {leader} term {term}")
    acked = 0
    rc, res = cluster.bench(leader, group, 200, 16, "s1")
    assert rc == 0 and int(res["acked"]) == 200, res
    acked += 200
    cluster.wait_converged(group, nodes, acked, 60)
    follower = next(i for i in nodes if i != leader)
    before = cluster.status(follower, group)
    assert before, "no status of the follower"
    follower_last = int(before["last"])
    cluster.kill9(follower)
    # Enough commands that the leader snapshots (threshold 100) and drops
    # its log well past what the follower has.
    survivors = [i for i in nodes if i != follower]
    rc, res = cluster.bench(leader, group, 1000, 32, "s2")
    assert rc == 0 and int(res["acked"]) == 1000, res
    acked += 1000
    cluster.wait_converged(group, survivors, acked, 60)

    def compacted_past():
        st = cluster.status(leader, group)
        return st if st and int(st["snapshot"]) > follower_last else None
    lst = cluster.wait_until(
        compacted_past, 30,
        lambda: f"leader never compacted past index {follower_last}")
    log(f"(snapshot) follower node {follower} down at last index "
        f"{follower_last}; leader node {leader} compacted its log through "
        f"{lst['snapshot']} (last {lst['last']})")
    t0 = time.monotonic()
    cluster.start(follower)
    count, digest = cluster.wait_converged(group, nodes, acked, 60)
    t_caught_up = time.monotonic() - t0
    after = cluster.status(follower, group)
    assert after, "no status of the restarted follower"
    # By InstallSnapshot: it installed one, and its log starts after a
    # snapshot beyond anything it had (a replay would leave its own log,
    # starting at or before index follower_last + 1, and no install).
    assert int(after["installed"]) >= 1, after
    assert int(after["snapshot"]) > follower_last, (after, follower_last)
    assert "installed snapshot at" in cluster.log_text(follower), \
        "the follower's log has no 'installed snapshot at' line"
    sent = [i for i in survivors
            if re.search(rf"sending snapshot at \d+ \(\d+ bytes\) to "
                         rf"{follower}\b", cluster.log_text(i))]
    assert sent, "no leader logged sending a snapshot"
    log(f"(snapshot) RESULT follower node {follower} caught up by "
        f"InstallSnapshot (installed={after['installed']}, its log starts "
        f"after index {after['snapshot']}, keys={count} hash={digest} on "
        f"all replicas) {t_caught_up*1000:.0f} ms after its restart")
    # Replication continues normally after the install.
    rc, res = cluster.bench(leader, group, 100, 8, "s3")
    assert rc == 0 and int(res["acked"]) == 100, res
    acked += 100
    cluster.wait_converged(group, nodes, acked, 60)
    for i in nodes:
        cluster.stop_clean(i)


def make_certs(root):
    """A CA, certificates for nodes 1-3 and for eesctl signed by it, and a
    rogue CA with a certificate of its own, made with the openssl CLI (EC
    P-256). Returns {name: (cert, key)} plus "ca" and "rogue-ca" paths."""
    d = os.path.join(root, "tls")
    os.makedirs(d, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    out = {}
    for ca in ["ca", "rogue-ca"]:
        run("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", f"/CN=ees-test-{ca}", "-keyout", f"{d}/{ca}.key",
            "-out", f"{d}/{ca}.pem")
        out[ca] = f"{d}/{ca}.pem"
    for name, ca in [("node1", "ca"), ("node2", "ca"), ("node3", "ca"),
                     ("client", "ca"), ("rogue", "rogue-ca")]:
        run("req", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
            f"/CN={name}", "-keyout", f"{d}/{name}.key",
            "-out", f"{d}/{name}.csr")
        run("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/{ca}.pem",
            "-CAkey", f"{d}/{ca}.key", "-CAcreateserial", "-days", "2",
            "-out", f"{d}/{name}.pem")
        out[name] = (f"{d}/{name}.pem", f"{d}/{name}.key")
    return out


def scenario_tls(cluster):
    """The 3-node cluster over mutual TLS (caf_openssl): commits, a kill -9
    and restart, and a node whose certificate and CA are not the cluster's
    cannot join (nor can such a client) until it gets the right ones."""
    certs = make_certs(cluster.root)

    def node_keys(cert, key, ca):
        return [f"ees.cluster.tls.certificate={cert}",
                f"ees.cluster.tls.private-key={key}",
                f"ees.cluster.tls.ca-file={ca}"]

    def ctl_args(cert, key, ca):
        return ["--tls-cert", cert, "--tls-key", key, "--tls-ca", ca]

    good = {i: node_keys(*certs[f"node{i}"], certs["ca"]) for i in [1, 2, 3]}
    rogue_keys = node_keys(*certs["rogue"], certs["rogue-ca"])
    cluster.ctl_tls = ctl_args(*certs["client"], certs["ca"])
    rogue_ctl = ctl_args(*certs["rogue"], certs["rogue-ca"])
    group = "orders"
    for i in [1, 2]:
        cluster.write_config(i, good[i])
    # Node 3 has a certificate of another CA and trusts only that CA.
    cluster.write_config(3, rogue_keys)
    for i in [1, 2, 3]:
        cluster.start(i)
    leader, term = cluster.wait_leader(group, [1, 2], 30)
    log(f"(tls) {group}: leader node {leader} term {term} among nodes 1, 2")
    acked = 0
    rc, res = cluster.bench(leader, group, 1000, 32, "t1")
    assert rc == 0 and int(res["acked"]) == 1000, res
    acked += 1000
    cluster.wait_converged(group, [1, 2], acked, 60)
    log(f"(tls) RESULT 1000 commands over TLS: {res['throughput']}/s, "
        f"p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms")
    # Negative: the rogue node never joined. It runs (its own client sees
    # it) but knows no leader and applied nothing.
    st3 = cluster.status(3, group, tls=rogue_ctl)
    assert st3, "the rogue node 3 does not answer its own client"
    assert st3["leader"] == "0" and int(st3["keys"]) == 0, st3
    for i in [1, 2]:
        assert "connected to peer 3" not in cluster.log_text(i), \
            f"node {i} connected to the rogue node 3"
    assert "connected to peer" not in cluster.log_text(3), \
        "the rogue node 3 connected to a peer"
    # Direct links are plaintext: never with TLS.
    for i in [1, 2, 3]:
        assert "direct link" not in cluster.log_text(i), \
            f"node {i} opened a direct link under TLS"
    assert re.search(r"connect to peer [12] at \S+ failed",
                     cluster.log_text(3)), "node 3 logged no refused connect"
    # Nor does a client without the right certificate, or without TLS, get
    # an answer from a cluster node.
    assert cluster.status(leader, group, tls=rogue_ctl) is None, \
        "a client with a rogue certificate got a status"
    assert cluster.status(leader, group, tls=[]) is None, \
        "a plain TCP client got a status from a TLS node"
    log("(tls) RESULT node 3 with a certificate of another CA did not join "
        "(leader=0 keys=0 on it; no connection either way); rogue and plain "
        "clients refused")
    # With the right certificate and CA it joins and catches up.
    cluster.stop_clean(3)
    cluster.write_config(3, good[3])
    t0 = time.monotonic()
    cluster.start(3)
    count, digest = cluster.wait_converged(group, [1, 2, 3], acked, 60)
    log(f"(tls) RESULT node 3 with the cluster's CA joined and caught up "
        f"(keys={count} hash={digest}) in "
        f"{(time.monotonic() - t0) * 1000:.0f} ms")
    # A peer dying mid-connection (an unclean TLS end on the survivors'
    # side) leaves the other connections working.
    leader, term = cluster.wait_leader(group, [1, 2, 3], 30)
    victim = next(i for i in [1, 2, 3] if i != leader)
    cluster.kill9(victim)
    rc, res = cluster.bench(leader, group, 500, 16, "t2")
    assert rc == 0 and int(res["acked"]) == 500, res
    acked += 500
    cluster.start(victim)
    count, digest = cluster.wait_converged(group, [1, 2, 3], acked, 60)
    log(f"(tls) RESULT kill -9 of node {victim}: writes continued, it "
        f"restarted and caught up (keys={count} hash={digest})")
    for i in [1, 2, 3]:
        cluster.stop_clean(i)


def self_test_leak_filter():
    """`caf_only_leaks` accepts a report of CAF-allocated blocks (the shape
    of CI stop 9) and rejects one with a block our code allocated, one with
    an AddressSanitizer error, and one without a completed shutdown."""
    new = ("    #0 0x7f49 in operator new(unsigned long) "
           "../../../../src/libsanitizer/asan/asan_new_delete.cpp:95\n")
    caf = (new + "    #1 0x7f49 in caf::make_node_id(unsigned int) "
           "(/lib/x86_64-linux-gnu/libcaf_core.so.0.17.6+0x1a381d)\n"
           "    #2 0x61600000098f  (<unknown module>)\n")
    ours = (new + "    #1 0x55d1 in ees::actors::server_state::adopt_sender"
            "() /work/main/actors/server.cpp:211\n"
            "    #2 0x7f49 in caf::detail::behavior_impl::invoke() "
            "(/lib/x86_64-linux-gnu/libcaf_core.so.0.17.6+0x153b67)\n")
    # A vector grown by CAF's header-only serializer (stop 16's report).
    vec = (new + "    #1 0x55ab in std::__new_allocator<char>::allocate("
           "unsigned long, void const*) /usr/include/c++/12/bits/"
           "new_allocator.h:137\n"
           "    #2 0x55ab in std::_Vector_base<char, std::allocator<char> >::"
           "_M_allocate(unsigned long) /usr/include/c++/12/bits/"
           "stl_vector.h:378\n")
    caf_vec = (vec + "    #3 0x55ab in caf::serializer_impl<std::vector<char> "
               ">::apply_raw(unsigned long, void*) /usr/include/caf/"
               "serializer_impl.hpp:120\n")
    ours_vec = (vec + "    #3 0x55ab in ees::actors::direct::encode_frame() "
                "/work/main/actors/direct_link.cpp:210\n")
    # Stacks LeakSanitizer cut after the container's growth (a 2026-11-27
    # integration_tls report): CAF's behavior stack, and a vector of ours.
    cut_caf = (new + "    #1 0x7f2a in std::vector<caf::behavior, std::"
               "allocator<caf::behavior> >::_M_realloc_insert<caf::behavior "
               "const&>(__gnu_cxx::__normal_iterator<caf::behavior*, std::"
               "vector<caf::behavior, std::allocator<caf::behavior> > >, "
               "caf::behavior const&)\n")
    cut_ours = (new + "    #1 0x7f2a in std::vector<char, std::allocator<"
                "char> >::_M_realloc_insert<char const&>(__gnu_cxx::"
                "__normal_iterator<char*, std::vector<char, std::allocator<"
                "char> > >, char const&)\n")
    head = ("2026-11-26 18:18:39.454 info [ees-node n=2] stopped\n\n"
            "=================================================================\n"
            "==20252==ERROR: LeakSanitizer: detected memory leaks\n\n")

    def block(kind, frames):
        return (f"{kind} leak of 40 byte(s) in 1 object(s) allocated from:\n"
                + frames + "\n")
    tail = "SUMMARY: AddressSanitizer: 80 byte(s) leaked in 2 allocation(s).\n"
    cases = [
        ("CAF-only", head + block("Indirect", caf) + block("Direct", caf)
         + tail, True),
        ("one block of ours", head + block("Indirect", caf)
         + block("Indirect", ours) + tail, False),
        ("a vector CAF's serializer grew", head + block("Direct", caf)
         + block("Indirect", caf_vec) + tail, True),
        ("a vector our code grew", head + block("Direct", caf)
         + block("Indirect", ours_vec) + tail, False),
        ("a cut stack in CAF's behavior vector", head + block("Direct", caf)
         + block("Indirect", cut_caf) + tail, True),
        ("a cut stack in a vector of chars", head + block("Direct", caf)
         + block("Indirect", cut_ours) + tail, False),
        ("an ASan error", head.replace("LeakSanitizer: detected memory "
                                       "leaks", "AddressSanitizer: "
                                       "heap-use-after-free")
         + "==1==ERROR: LeakSanitizer: detected memory leaks\n"
         + block("Indirect", caf) + tail, False),
        ("no clean shutdown", head.replace("] stopped", "] running")
         + block("Indirect", caf) + tail, False),
        ("no leak report", "x] stopped\n", False),
    ]
    for name, text, want in cases:
        got = caf_only_leaks(text) is not None
        assert got == want, f"leak filter, {name}: got {got}, want {want}"
        log(f"leak filter, {name}: {'accepted' if got else 'rejected'}")
    log("PASS")
    return 0


SCENARIOS = {
    "main": (scenario_main, None),
    "snapshot": (scenario_snapshot, 100),
    "tls": (scenario_tls, None),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--self-test-leak-filter", action="store_true",
                    help="check caf_only_leaks on sample reports and exit")
    ap.add_argument("--node")
    ap.add_argument("--ctl")
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="main")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir (logs, data) after success")
    args = ap.parse_args()
    if args.self_test_leak_filter:
        return self_test_leak_filter()
    if not args.node or not args.ctl:
        ap.error("--node and --ctl are required")
    run, threshold = SCENARIOS[args.scenario]
    root = tempfile.mkdtemp(prefix=f"ees-it-{args.scenario}-")
    log(f"scenario {args.scenario}, temp dir {root}")
    cluster = Cluster(args.node, args.ctl, root,
                      snapshot_threshold=threshold)
    ok = False
    try:
        run(cluster)
        ok = True
    finally:
        cluster.finish(ok, args.keep)
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
