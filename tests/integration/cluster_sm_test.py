#!/usr/bin/env python3
"""Integration test of the ClusterStateMachine on three real ees-node
processes on 127.0.0.1 (issue 4):

(e) two clients (`eesctl contend`) contend for one lock while the leader is
    killed with kill -9: fencing tokens strictly increase, and no two grants
    overlap in the log (each grant's [token, release index] interval ends
    before the next grant's token);
(f) partition assignments, a rejected conflicting assignment and rejected
    bad input; then kill -9 of all three nodes and restart: the routing table
    is the same on every node, at every consistency level.

Every wait is a bounded poll on a condition; every process started is
stopped by PID. Python 3 standard library only.

usage: cluster_sm_test.py --node PATH/ees-node --ctl PATH/eesctl [--keep]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from cluster_test import Cluster, log

LOCK_GROUP = "orders"


def parse_value(out):
    """The JSON answer of an `eesctl submit|query` line, or None."""
    for line in out.splitlines():
        if line.startswith("ok=1") and " value=" in line:
            return json.loads(line.split(" value=", 1)[1])
    return None


class SmCluster(Cluster):
    def endpoints(self):
        return ",".join(self.addr(i) for i in sorted(self.ports))

    def call(self, verb, group, payload, *extra, node=None):
        """Submits or queries through every endpoint (or one node)."""
        target = self.addr(node) if node else self.endpoints()
        cmd = [self.ctl_bin, "--connect", target, "--timeout-ms", "5000",
               verb, group, json.dumps(payload)] + [str(e) for e in extra]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        value = parse_value(r.stdout)
        assert value is not None, f"{verb} {payload}: {r.stdout} {r.stderr}"
        return value


def grant_lines(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("grant "):
                kv = dict(t.split("=", 1) for t in line.split()[1:] if "=" in t)
                out.append(kv)
    return out


def check_grants(grants):
    """Tokens strictly increase per owner and are distinct overall; sorted by
    token, a released grant's release index is <= the next grant's token
    (the release entry is where the next waiter is granted)."""
    by_owner = {}
    for g in grants:
        by_owner.setdefault(g["owner"], []).append(int(g["token"]))
    for owner, tokens in by_owner.items():
        assert all(a < b for a, b in zip(tokens, tokens[1:])), \
            f"tokens of {owner} not strictly increasing: {tokens}"
    tokens = [int(g["token"]) for g in grants]
    assert len(set(tokens)) == len(tokens), "a fencing token was granted twice"
    ordered = sorted(grants, key=lambda g: int(g["token"]))
    overlaps = 0
    for a, b in zip(ordered, ordered[1:]):
        if a["released"] == "1":
            if int(a["release_index"]) > int(b["token"]):
                overlaps += 1
                log(f"overlap: {a} and {b}")
    assert overlaps == 0, f"{overlaps} overlapping grants"
    return by_owner


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--node", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="ees-sm-it-")
    log(f"temp dir {root}")
    cluster = SmCluster(args.node, args.ctl, root)
    contenders = []
    ok = False
    try:
        nodes = [1, 2, 3]
        for i in nodes:
            cluster.start(i)
        leader, term = cluster.wait_leader(LOCK_GROUP, nodes, 30)

        # (e) Two clients contend for lock L; the leader dies meanwhile.
        for owner in ("alice", "bob"):
            path = os.path.join(root, f"contend-{owner}.out")
            f = open(path, "w")
            p = subprocess.Popen(
                [args.ctl, "--connect", cluster.endpoints(), "--timeout-ms",
                 "8000", "contend", LOCK_GROUP, "L", owner, "--duration-ms",
                 "9000", "--ttl-ms", "3000", "--wait-ms", "5000"],
                stdout=f, stderr=subprocess.STDOUT)
            contenders.append((owner, p, path, f))
            log(f"contender {owner} pid={p.pid}")

        def grants_of_all(n):
            counts = [len(grant_lines(c[2])) for c in contenders]
            return counts if min(counts) >= n else None
        before = cluster.wait_until(lambda: grants_of_all(3), 30,
                                    lambda: "contenders got no grants")
        cluster.kill9(leader)
        survivors = [i for i in nodes if i != leader]
        new_leader, new_term = cluster.wait_leader(LOCK_GROUP, survivors, 30,
                                                   min_term=term)
        log(f"(e) leader node {leader} (term {term}) killed with grants "
            f"{before}; new leader node {new_leader} (term {new_term})")
        assert new_term > term
        # Handoffs go on under the new leader.
        cluster.wait_until(
            lambda: grants_of_all(max(before) + 3), 30,
            lambda: "no grants after the failover")
        cluster.start(leader)
        for owner, p, path, f in contenders:
            deadline = time.monotonic() + 60
            while p.poll() is None and time.monotonic() < deadline:
                cluster.wait_until(lambda: p.poll() is not None, 60,
                                   lambda: f"contender {owner} still running")
            f.close()
            assert p.returncode == 0, f"contender {owner} exit {p.returncode}"
        contenders = []
        grants = grant_lines(os.path.join(root, "contend-alice.out")) \
            + grant_lines(os.path.join(root, "contend-bob.out"))
        by_owner = check_grants(grants)
        stale = sum(1 for g in grants if g["released"] != "1")
        log(f"(e) RESULT {len(grants)} grants "
            f"({', '.join(f'{o}: {len(t)}' for o, t in by_owner.items())}), "
            f"tokens strictly increasing, no overlap; {stale} grants lost to "
            f"lease expiry")

        # (e2) A lease nobody renews expires in replicated time (the leader
        # proposes a clock advance) and the loss is pushed to the holder.
        r = subprocess.run(
            [args.ctl, "--connect", cluster.endpoints(), "--timeout-ms",
             "5000", "lock", LOCK_GROUP, "L2", "carol", "--ttl-ms", "300",
             "--hold-ms", "2000"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=60)
        lines = r.stdout.splitlines()
        granted = [ln for ln in lines if ln.startswith("ok=1 token=")]
        lost = [ln for ln in lines if ln.startswith("lost token=")]
        assert granted and lost, r.stdout
        assert granted[0].split()[1] == lost[0].split()[1], r.stdout
        assert "released=0" in r.stdout, r.stdout  # the token went stale
        holder = cluster.call("query", LOCK_GROUP,
                              {"v": 1, "type": "GetLock", "lock": "L2"})
        assert holder["ok"] and holder["holder"] is None, holder
        log(f"(e2) RESULT a 300 ms lease held 2 s without renewal expired; "
            f"the holder was told ({lost[0]}) and its release was refused")

        # (f) Assignments, a conflict, bad input.
        def assign(pid, ids, rid):
            return cluster.call("submit", LOCK_GROUP, {
                "v": 1, "type": "AssignPartition", "id": rid, "app": "eqs",
                "group": "orders", "partition": pid, "equipment_ids": ids})
        a1 = assign("p1", [f"e{i}" for i in range(100)], "f-1")
        a2 = assign("p2", [f"e{i}" for i in range(100, 200)], "f-2")
        assert a1["ok"] and a2["ok"], (a1, a2)
        conflict = assign("p3", ["e300", "e50"], "f-3")
        assert not conflict["ok"], conflict
        assert conflict["error"]["code"] == "conflict", conflict
        assert "e50" in conflict["error"]["message"], conflict
        for bad, code in [("{not json", "malformed_json"),
                          ({"v": 2, "type": "AssignKey", "id": "x"},
                           "unsupported_version"),
                          ({"v": 1, "type": "Frobnicate", "id": "x"},
                           "unknown_type")]:
            target = cluster.addr(new_leader)
            cmd = [args.ctl, "--connect", target, "--timeout-ms", "5000",
                   "submit", LOCK_GROUP,
                   bad if isinstance(bad, str) else json.dumps(bad)]
            r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True,
                               timeout=30)
            ans = parse_value(r.stdout)
            assert ans and not ans["ok"] and ans["error"]["code"] == code, \
                (bad, r.stdout)
        missing = cluster.call("query", LOCK_GROUP,
                               {"v": 1, "type": "GetEquipment",
                                "equipment_id": "e300"})
        assert not missing["ok"], missing  # the conflict changed nothing

        def table(node=None, level="linearizable"):
            ans = cluster.call("query", LOCK_GROUP,
                               {"v": 1, "type": "ListAssignments",
                                "limit": 1000},
                               "--consistency", level, node=node)
            assert ans["ok"], ans
            return json.dumps(ans["assignments"], sort_keys=True)
        before_restart = table()
        assert len(json.loads(before_restart)) == 200, before_restart
        for i in list(cluster.procs):
            cluster.kill9(i)
        for i in nodes:
            cluster.start(i)
        cluster.wait_leader(LOCK_GROUP, nodes, 30)
        assert table() == before_restart, "routing table changed by restart"
        # Every node answers the same from its own state once caught up.
        for i in nodes:
            cluster.wait_until(
                lambda: table(node=i, level="stale") == before_restart, 30,
                lambda: f"node {i} has a different routing table")
        e150 = cluster.call("query", LOCK_GROUP,
                            {"v": 1, "type": "GetEquipment",
                             "equipment_id": "e150"})
        assert e150["ok"] and e150["partition"] == "p2", e150
        log("(f) RESULT 200 equipment ids in 2 partitions survived kill -9 "
            "of all nodes; identical on every node; conflict and bad input "
            "rejected without effect")
        ok = True
    finally:
        for owner, p, path, f in contenders:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            f.close()
        cluster.finish(ok, args.keep)
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
