# Sourced by scripts/cluster.sh and bench/ab.sh: a local 3-node cluster on
# 127.0.0.1.

# Prints three TCP ports of 127.0.0.1 that were free a moment ago.
free_ports() {
  python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])'
}

# Prints the properties of node ID (1-3) of a cluster on PORT1-PORT3 with its
# data in DATA_DIR; callers append their groups and settings.
#   node_config ID DATA_DIR PORT1 PORT2 PORT3
node_config() {
  local id=$1 data=$2 j
  local ports=("$3" "$4" "$5")
  echo "ees.cluster.node-id=$id"
  echo "ees.cluster.listen=127.0.0.1:${ports[id - 1]}"
  for j in 1 2 3; do
    echo "ees.cluster.peers[$((j - 1))]=$j@127.0.0.1:${ports[j - 1]}"
  done
  echo "ees.cluster.raft.data-dir=$data"
}
