#!/usr/bin/env bash
# Installs and builds what bench/harness.py needs; idempotent (re-running
# installs nothing that is there and rebuilds only what changed).
#   Debian packages: etcd-server, etcd-client, fio, python3-matplotlib,
#                    openjdk-17-jdk-headless and maven (if java/mvn are missing)
#   bench/peers/etcd/target/etcd-loadgen   (Go >= 1.24; modules from the Go proxy)
#   bench/peers/ratis/target/ratis-bench.jar (Maven; Ratis from Maven Central)
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in etcd-server etcd-client fio python3-matplotlib; do
  have_pkg "$p" || pkgs+=("$p")
done
command -v java >/dev/null || pkgs+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || pkgs+=(maven)
if ((${#pkgs[@]})); then
  echo "setup: apt-get install ${pkgs[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null
fi

# Go load generator for etcd (go build is incremental).
GO=$(command -v go || echo /usr/local/go/bin/go)
if [[ ! -x "$GO" ]]; then
  echo "setup: Go >= 1.24 not found (PATH or /usr/local/go/bin)" >&2
  exit 1
fi
(cd bench/peers/etcd && "$GO" build -o target/etcd-loadgen .)
echo "setup: bench/peers/etcd/target/etcd-loadgen"

# Ratis server + load generator jar; rebuilt only if a source is newer.
jar=bench/peers/ratis/target/ratis-bench.jar
if [[ ! -f $jar ]] || [[ -n $(find bench/peers/ratis/pom.xml bench/peers/ratis/src -newer "$jar" -type f) ]]; then
  (cd bench/peers/ratis && mvn -q -B package)
fi
echo "setup: $jar"
