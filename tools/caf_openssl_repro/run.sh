#!/usr/bin/env bash
# Runs the caf_openssl reproduction (docs/tls.md) on 127.0.0.1:
#   run.sh BUILD_DIR [SECONDS]
# Makes a CA and a node certificate with the openssl CLI in a temp dir, then
# runs three processes in a full mesh for each binary and mode and prints
# their summary lines. Processes are waited for by PID; the temp dir is
# removed at the end.
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR [SECONDS]}
secs=${2:-3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
q() { openssl "$@" >/dev/null 2>&1; }
q req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=repro-ca -keyout "$dir/ca.key" -out "$dir/ca.pem"
q req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj /CN=node -keyout "$dir/node.key" -out "$dir/node.csr"
q x509 -req -in "$dir/node.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
  -CAcreateserial -days 2 -out "$dir/node.pem"
ports=($(python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])'))
for bin in caf-openssl-repro caf-openssl-repro-fixed; do
  for mode in plain tls; do
    echo "== $bin $mode"
    pids=()
    for i in 0 1 2; do
      others=()
      for j in 0 1 2; do [ "$j" != "$i" ] && others+=("${ports[$j]}"); done
      CERTS=$dir "$build/tools/caf_openssl_repro/$bin" $((i + 1)) \
        "${ports[$i]}" "$secs" "$mode" "${others[@]}" \
        >"$dir/out.$i" 2>"$dir/err.$i" &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    cat "$dir"/out.*
  done
done
