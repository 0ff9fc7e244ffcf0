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

Scenario `snapshot`: a follower that was down (kill -9) while the leader
snapshotted and compacted its log past the follower's last index catches up
by InstallSnapshot, not by log replay (its status counts installed
snapshots and its log starts after the leader's snapshot), and ends with
the same state digest as the others (prints the catch-up time).

Every wait is a bounded poll on a condition. Every process started is
stopped by PID at the end, also on failure. Python 3 standard library only.

usage: cluster_test.py --node PATH/ees-node --ctl PATH/eesctl
                       [--scenario main|snapshot] [--keep]
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


class Cluster:
    def __init__(self, node_bin, ctl_bin, root, snapshot_threshold=None):
        self.node_bin = node_bin
        self.ctl_bin = ctl_bin
        self.root = root
        self.ports = dict(zip([1, 2, 3], free_ports(3)))
        self.procs = {}
        self.logs = {}
        for i in self.ports:
            data = os.path.join(root, f"node-{i}")
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
                    snapshot_threshold or os.environ.get(
                        "EES_IT_SNAPSHOT_THRESHOLD", "2000")),
            ]
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

    def check_alive(self):
        for i, p in self.procs.items():
            if p.poll() is not None:
                raise AssertionError(f"node {i} exited with {p.returncode}")

    def ctl(self, i, *args, timeout=60):
        cmd = [self.ctl_bin, "--connect", self.addr(i)]
        cmd += [str(a) for a in args]
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, ""
        return r.returncode, r.stdout

    def status(self, i, group):
        rc, out = self.ctl(i, "--timeout-ms", 1000, "status", group, timeout=10)
        if rc != 0 or not out.strip():
            return None
        return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)

    def wait_until(self, condition, deadline_s, what):
        """The one bounded wait of this driver: evaluates `condition` every
        POLL seconds until it returns something truthy (returned) or
        `deadline_s` passes (AssertionError naming `what`). Node crashes
        fail it at once."""
        deadline = time.monotonic() + deadline_s
        while True:
            self.check_alive()
            result = condition()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what()} within {deadline_s}s")
            time.sleep(POLL)  # poll interval, not synchronization

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
        log(f"(a) {g}: all replicas count={count} hash={h}")
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
        f"(count={count} hash={h}) in {(time.monotonic()-t1)*1000:.0f} ms")
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
        log(f"(c) {g}: count={count} >= acknowledged {acked[g]}, "
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
    log(f"(d) RESULT node {leader} resumed and caught up (count={count} "
        f"hash={h}) in {(time.monotonic()-t4)*1000:.0f} ms")

    # Clean shutdown: SIGTERM by PID, exit code 0.
    for i in nodes:
        code = cluster.stop(i)
        assert code == 0, f"node {i} exited with {code} on SIGTERM"
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
        f"after index {after['snapshot']}, count={count} hash={digest} on "
        f"all replicas) {t_caught_up*1000:.0f} ms after its restart")
    # Replication continues normally after the install.
    rc, res = cluster.bench(leader, group, 100, 8, "s3")
    assert rc == 0 and int(res["acked"]) == 100, res
    acked += 100
    cluster.wait_converged(group, nodes, acked, 60)
    for i in nodes:
        code = cluster.stop(i)
        assert code == 0, f"node {i} exited with {code} on SIGTERM"


SCENARIOS = {
    "main": (scenario_main, None),
    "snapshot": (scenario_snapshot, 100),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--node", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="main")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir (logs, data) after success")
    args = ap.parse_args()
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
        cluster.stop_all()
        if not ok:
            for i in [1, 2, 3]:
                path = os.path.join(root, f"node-{i}.log")
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        tail = f.readlines()[-25:]
                    print(f"---- node {i} log (tail) ----\n" + "".join(tail))
            print(f"logs kept in {root}")
        elif not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
