#!/usr/bin/env bash
# Runs a local 3-node ees-cluster on 127.0.0.1: builds ees-node and eesctl,
# writes one config per node into a temp dir, starts the three nodes, waits
# for a leader, runs `eesctl bench` (AssignKey commands), records a partition
# assignment (and shows a conflicting one rejected), takes a fenced lock,
# waits until the replicas agree, prints the status of every replica and
# stops the nodes by PID (also on failure or Ctrl-C).
#
#   scripts/cluster.sh [N [CONCURRENCY]]     (default: 10000 commands, 64)
#
# Environment: BUILD_DIR (default build), KEEP=1 keeps the temp dir (logs,
# data), JOBS (build parallelism).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
CONC=${2:-64}
./scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD_DIR" -j "${JOBS:-2}" --target ees-node eesctl
NODE=$BUILD_DIR/apps/ees-node
CTL=$BUILD_DIR/apps/eesctl

DIR=$(mktemp -d /tmp/ees-cluster.XXXXXX)
# shellcheck source=scripts/node-config.sh
. scripts/node-config.sh
read -r P1 P2 P3 < <(free_ports)
PORTS=("$P1" "$P2" "$P3")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ "${KEEP:-0}" == 1 ]]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

for i in 1 2 3; do
  mkdir -p "$DIR/node-$i"
  {
    node_config "$i" "$DIR/node-$i" "${PORTS[@]}"
    echo "ees.cluster.raft.groups[orders].peers=1,2,3"
    echo "ees.cluster.raft.groups[billing].peers=1,2,3"
    echo "ees.cluster.raft.heartbeat-ms=50"
    echo "ees.cluster.raft.election-ms=500"
  } >"$DIR/node-$i.properties"
  "$NODE" --config "$DIR/node-$i.properties" >"$DIR/node-$i.log" 2>&1 &
  PIDS+=($!)
  echo "node $i: pid ${PIDS[-1]}, 127.0.0.1:${PORTS[$((i - 1))]}, log $DIR/node-$i.log"
done

# Bounded wait for a leader of `orders` (poll every 100 ms, at most 20 s).
for _ in $(seq 200); do
  if "$CTL" --connect "127.0.0.1:$P1" --timeout-ms 1000 status orders 2>/dev/null \
      | grep -q 'leader=[1-9]'; then
    break
  fi
  sleep 0.1
done

ALL="127.0.0.1:${PORTS[0]},127.0.0.1:${PORTS[1]},127.0.0.1:${PORTS[2]}"
echo "== $N AssignKey commands, $CONC in flight"
"$CTL" --connect "$ALL" bench orders "$N" --concurrency "$CONC"
echo "== the routing table: equipment e1..e3 to orders/p1, a conflicting assign"
"$CTL" --connect "$ALL" submit orders \
  '{"v":1,"type":"AssignPartition","id":"demo-1","app":"eqs","group":"orders","partition":"p1","equipment_ids":["e1","e2","e3"]}'
"$CTL" --connect "$ALL" submit orders \
  '{"v":1,"type":"AssignPartition","id":"demo-2","app":"eqs","group":"orders","partition":"p2","equipment_ids":["e3","e4"]}'
"$CTL" --connect "$ALL" query orders \
  '{"v":1,"type":"GetEquipment","equipment_id":"e3"}' --consistency stale
echo "== a fenced lock: acquire, hold 200 ms, release"
"$CTL" --connect "$ALL" lock orders door-7 alice --ttl-ms 5000 --hold-ms 200
# Followers learn the last commit index from the leader's next heartbeat
# (raft_config::broadcast_commit is off): bounded wait (poll every 100 ms, at
# most 5 s) until the replicas of each group report one state hash.
hashes() {
  for p in "${PORTS[@]}"; do
    "$CTL" --connect "127.0.0.1:$p" --timeout-ms 1000 status "$1" 2>/dev/null \
      | grep -o 'hash=[0-9a-f]*' || echo "hash=none-$p"
  done | sort -u | wc -l
}
diverged=()
for g in orders billing; do
  converged=0
  for _ in $(seq 50); do
    if [[ $(hashes "$g") == 1 ]]; then
      converged=1
      break
    fi
    sleep 0.1
  done
  [[ $converged == 1 ]] || diverged+=("$g")
done
echo "== every replica (same hash = same state)"
for g in orders billing; do
  for p in "${PORTS[@]}"; do
    "$CTL" --connect "127.0.0.1:$p" --timeout-ms 2000 status "$g" || true
  done
done
if [[ ${#diverged[@]} -gt 0 ]]; then
  echo "replicas of ${diverged[*]} did not reach one state hash within 5 s" >&2
  exit 1
fi
