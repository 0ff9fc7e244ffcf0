#!/usr/bin/env bash
# Builds ees-cluster and shows its main job working: a 3-node Raft group elects
# a leader, commits commands, survives the loss of its leader and converges.
# (Today this runs the pure core on the in-memory cluster; the ees-node daemon
# arrives with the node runtime.)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "${JOBS:-$(nproc)}" --target raft_demo core_bench
./build/apps/raft_demo
echo
./build/bench/core_bench
