#!/usr/bin/env python3
"""Regenerates apps/ees-node.order, the link order of ees-node's hot code.

Why: an idle node's resident memory is mostly code pages (bench W6), and the
kernel maps 64 KiB of the executable around every page a process first
touches. Spread over 6.5 MiB of text, the 1.8 MiB of functions a node runs
(start-up, elections, writes, reads, locks) leave most of the text resident.
Linked first and together (lld's --symbol-ordering-file, see
apps/CMakeLists.txt) they leave far less: bench/README.md, "Code layout".

How: starts a 3-node cluster of BUILD/apps/ees-node on 127.0.0.1, each node
under valgrind's callgrind (slow, so with long election timeouts), drives it
with BUILD/bench/ees_loadgen (leader election, a fill, puts, reads, locks),
stops the nodes with SIGTERM (callgrind writes its profile on exit) and
writes every function of the executable that ran, hottest first (by
instructions, summed over the nodes), one mangled name per line. Functions
that did not run keep the linker's order after them.

    scripts/order-file.py [BUILD]        (default: build; needs valgrind)

A stale order file costs memory, never correctness: names it lists that the
binary lacks are ignored, new functions land in the cold part.
"""
import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
NODE = os.path.join(BUILD, "apps", "ees-node")
LOADGEN = os.path.join(BUILD, "bench", "ees_loadgen")
OUT = os.path.join(ROOT, "apps", "ees-node.order")


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def node_config(i, data, ports):
    lines = [f"ees.cluster.node-id={i}", f"ees.cluster.listen=127.0.0.1:{ports[i - 1]}"]
    lines += [f"ees.cluster.peers[{j}]={j + 1}@127.0.0.1:{p}" for j, p in enumerate(ports)]
    lines += [f"ees.cluster.raft.data-dir={data}",
              "ees.cluster.raft.groups[bench].peers=1,2,3",
              # Valgrind runs a node about 50 times slower: keep elections rare.
              "ees.cluster.raft.heartbeat-ms=200",
              "ees.cluster.raft.election-ms=4000"]
    return "\n".join(lines) + "\n"


def self_costs(profile, exe):
    """Instructions per function of `exe` in one callgrind profile."""
    names, objs = {}, {}
    cost = collections.Counter()
    ob = fn = None

    def resolve(table, s):
        m = re.match(r"\((\d+)\)(?: (.*))?", s)
        if not m:
            return s
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1))

    in_call = False
    with open(profile, errors="replace") as f:
        for line in f:
            if line.startswith("ob="):
                ob = resolve(objs, line[3:].strip())
            elif line.startswith("fn="):
                fn = resolve(names, line[3:].strip())
            elif line.startswith("cob="):
                resolve(objs, line[4:].strip())
            elif line.startswith("cfn="):
                resolve(names, line[4:].strip())
            elif line.startswith("calls="):
                in_call = True  # the next cost line is the call's inclusive cost
            elif line[:1].isdigit() or line[:1] in "+-*":
                if in_call:
                    in_call = False
                elif ob == exe and fn:
                    parts = line.split()
                    cost[fn] += int(parts[1]) if len(parts) > 1 else 1
    return cost


def main():
    for tool, path in (("valgrind", shutil.which("valgrind")), ("ees-node", NODE),
                       ("ees_loadgen", LOADGEN)):
        if not path or not os.path.exists(path):
            sys.exit(f"order-file: {tool} not found (build {BUILD} first; apt-get install valgrind)")
    work = tempfile.mkdtemp(prefix="ees-order.")
    ports = free_ports(3)
    env = dict(os.environ)
    # ees-node re-executes itself to set this tunable (apps/node_common.hpp);
    # set it here so that valgrind profiles the node, not the exec.
    env["GLIBC_TUNABLES"] = "glibc.malloc.tcache_count=1024"
    procs = []
    try:
        for i in (1, 2, 3):
            conf = os.path.join(work, f"n{i}.properties")
            with open(conf, "w") as f:
                f.write(node_config(i, os.path.join(work, f"d{i}"), ports))
            log = open(os.path.join(work, f"n{i}.log"), "w")
            procs.append(subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--demangle=no",
                 f"--callgrind-out-file={work}/cg.{i}", NODE, "--config", conf],
                stdout=log, stderr=subprocess.STDOUT, env=env))
        endpoints = ",".join(f"127.0.0.1:{p}" for p in ports)
        steps = [("leader", 1, 120, []), ("fill", 16, 120, ["--keys", "1000"]),
                 ("put", 1, 5, []), ("put", 16, 5, []), ("get", 4, 5, []),
                 ("lock", 1, 5, []), ("lock", 2, 5, [])]
        for workload, conc, secs, extra in steps:
            print(f"order-file: {workload} at concurrency {conc}", flush=True)
            subprocess.run([LOADGEN, "--endpoints", endpoints, "--workload", workload,
                            "--concurrency", str(conc), "--duration-s", str(secs)] + extra,
                           stdout=subprocess.DEVNULL, check=True, timeout=secs + 120)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 120
        for p in procs:
            try:
                p.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    total = collections.Counter()
    for i in (1, 2, 3):
        total.update(self_costs(os.path.join(work, f"cg.{i}"), NODE))
    defined = set(subprocess.run(["nm", "--defined-only", "--format=just-symbols", NODE],
                                 capture_output=True, text=True, check=True).stdout.split())
    hot = [fn for fn, _ in sorted(total.items(), key=lambda kv: (-kv[1], kv[0])) if fn in defined]
    with open(OUT, "w") as f:
        f.write("\n".join(hot) + "\n")
    print(f"order-file: {len(hot)} functions ran; wrote {OUT}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
