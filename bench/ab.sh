#!/usr/bin/env bash
# A/B of two ees-node binaries on this machine: for each of PAIRS rounds, runs
# a fresh 3-node cluster of binary A, then one of binary B (interleaved, so
# that the machine's drift hits both alike), fills FILL keys and measures
# `ees_loadgen --workload W` for each workload W and concurrency. Prints one
# line per run: label, workload, concurrency, ops/s, p50 and p99 (ms) and the
# servers' CPU (user + sys of the three processes) per acknowledged
# operation, in microseconds.
#
#   bench/ab.sh NODE_A NODE_B [PAIRS]      (default: 3 pairs)
#
# Environment: CS (concurrencies, default "1 64 256"), WS (workloads, default
# "put"; e.g. "put get lock"), DUR (seconds per run, default 4), FILL (keys,
# default 1000), LOADGEN (default build/bench/ees_loadgen; LOADGEN_A /
# LOADGEN_B per side, to compare two client builds), ARGS_A / ARGS_B
# (extra load generator arguments of side A / B, e.g. "--direct-links 0"),
# EXTRA (config lines added to every node's properties). Nodes are stopped by PID, also on
# failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/node-config.sh
. scripts/node-config.sh
A=${1:?usage: bench/ab.sh NODE_A NODE_B [PAIRS]}
B=${2:?usage: bench/ab.sh NODE_A NODE_B [PAIRS]}
PAIRS=${3:-3}
LOADGEN=${LOADGEN:-build/bench/ees_loadgen}
DIR=$(mktemp -d /tmp/ees-ab.XXXXXX)
PIDS=()
stop_nodes() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop_nodes; rm -rf "$DIR"' EXIT

cpu_ticks() { # user + sys clock ticks of the running nodes
  local sum=0 pid
  for pid in "${PIDS[@]}"; do
    sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$sum"
}

run_cluster() { # $1 label, $2 node binary, $3 extra load generator arguments,
  # $4 load generator binary
  local label=$1 node=$2 args=$3 loadgen=$4 i
  read -r P1 P2 P3 < <(free_ports)
  local ports=("$P1" "$P2" "$P3")
  for i in 1 2 3; do
    rm -rf "$DIR/d$i"
    {
      node_config "$i" "$DIR/d$i" "${ports[@]}"
      echo "ees.cluster.raft.groups[bench].peers=1,2,3"
      if [[ -n "${EXTRA:-}" ]]; then echo "$EXTRA"; fi
    } >"$DIR/n$i.properties"
    "$node" --config "$DIR/n$i.properties" >"$DIR/n$i.log" 2>&1 &
    PIDS+=($!)
  done
  local endpoints="127.0.0.1:$P1,127.0.0.1:$P2,127.0.0.1:$P3"
  # The fill waits for a leader (the load generator retries until one answers).
  "$loadgen" --endpoints "$endpoints" --workload fill --concurrency 256 \
    --keys "${FILL:-1000}" --duration-s 60 >/dev/null
  local w c out c0 c1
  for w in ${WS:-put}; do
    for c in ${CS:-1 64 256}; do
      c0=$(cpu_ticks)
      # shellcheck disable=SC2086
      out=$("$loadgen" --endpoints "$endpoints" --workload "$w" \
        --concurrency "$c" --duration-s "${DUR:-4}" $args)
      c1=$(cpu_ticks)
      python3 -c '
import json, os, sys
j = json.loads(sys.argv[1])
us = (int(sys.argv[3]) - int(sys.argv[2])) * 1e6 / os.sysconf("SC_CLK_TCK")
print("%s %s c=%d ops/s=%.0f p50=%.2fms p99=%.2fms cpu_us_per_op=%.0f" % (
    sys.argv[4], sys.argv[5], j["concurrency"], j["throughput"], j["p50_ms"],
    j["p99_ms"], us / max(j["ops"], 1)))' "$out" "$c0" "$c1" "$label" "$w"
    done
  done
  for pid in "${PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "a node of $label died; its logs:" >&2
      tail -n 5 "$DIR"/n?.log >&2
      exit 1
    fi
  done
  stop_nodes
}

for ((round = 1; round <= PAIRS; ++round)); do
  run_cluster A "$A" "${ARGS_A:-}" "${LOADGEN_A:-$LOADGEN}"
  run_cluster B "$B" "${ARGS_B:-}" "${LOADGEN_B:-$LOADGEN}"
done
