#!/usr/bin/env python3
"""Where a replicated write's time goes, from the stage stamps of the nodes.

Build the nodes with -DEES_STAGE_TRACE=ON (actors/stage_trace.hpp), run a
load at concurrency 1 against a 3-node cluster and pass this script the
nodes' stderr logs:

    python3 bench/stage_trace.py n1.log n2.log n3.log

For every traced log index (every 64th) the leader is the process that
stamped `propose`; the follower whose acknowledgement left first is the one
that made the entry commit ("follower"), the other one is "other". Prints
the p50/p90 of each step of that critical path and of the leader's own
write, in microseconds.
"""
import collections
import statistics
import sys

# The critical path of one write, in order: (role, stage).
PATH = [
    ("leader", "propose"),
    ("leader", "append_out"),
    ("follower", "append_in"),
    ("follower", "write_begin"),
    ("follower", "write_end"),
    ("follower", "ack_out"),
    ("leader", "ack_in"),
    ("leader", "commit"),
    ("leader", "answer"),
]
SIDE = [("leader", "write_begin"), ("leader", "write_end")]


def load(paths):
    """index -> {(pid, stage): ns}, the first stamp of each kind."""
    stamps = collections.defaultdict(dict)
    for path in paths:
        with open(path, errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) != 5 or parts[0] != "stage":
                    continue
                _, pid, stage, index, ns = parts
                stamps[int(index)].setdefault((int(pid), stage), int(ns))
    return stamps


def roles(d):
    """Maps role -> pid for one index, or None when the path is incomplete."""
    leaders = [pid for (pid, stage) in d if stage == "propose"]
    if len(leaders) != 1:
        return None
    leader = leaders[0]
    acks = sorted((t, pid) for (pid, stage), t in d.items()
                  if stage == "ack_out" and pid != leader)
    if not acks:
        return None
    out = {"leader": leader, "follower": acks[0][1]}
    if len(acks) > 1:
        out["other"] = acks[1][1]
    return out


def main(paths):
    stamps = load(paths)
    steps = collections.defaultdict(list)
    totals, side = [], collections.defaultdict(list)
    for index, d in sorted(stamps.items()):
        r = roles(d)
        if r is None:
            continue
        times = [d.get((r[role], stage)) for role, stage in PATH]
        if any(t is None for t in times):
            continue
        for (a, b, ta, tb) in zip(PATH, PATH[1:], times, times[1:]):
            steps[(a, b)].append((tb - ta) / 1000.0)
        totals.append((times[-1] - times[0]) / 1000.0)
        for role, stage in SIDE:
            t = d.get((r[role], stage))
            if t is not None:
                side[f"{role} {stage}"].append((t - times[0]) / 1000.0)
    if not totals:
        sys.exit("no complete write path in the logs (built with "
                 "-DEES_STAGE_TRACE=ON? at least 64 writes?)")

    def q(v, p):
        return sorted(v)[min(len(v) - 1, int(len(v) * p))]

    print(f"{len(totals)} traced writes; microseconds, p50 / p90")
    for (a, b), v in steps.items():
        name = f"{a[0]} {a[1]} -> {b[0]} {b[1]}"
        print(f"  {name:<44} {statistics.median(v):8.1f} {q(v, 0.9):8.1f}")
    print(f"  {'propose -> answer (sum of the path)':<44} "
          f"{statistics.median(totals):8.1f} {q(totals, 0.9):8.1f}")
    for name, v in side.items():
        print(f"  {name + ' (from propose)':<44} "
              f"{statistics.median(v):8.1f} {q(v, 0.9):8.1f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
