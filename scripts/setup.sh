#!/usr/bin/env bash
# Installs the Debian packages ees-cluster needs, when they are missing.
# Idempotent; safe to run on every build. Needs root (or sudo) to install.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libcaf-dev libssl-dev openssl
  librocksdb-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libsimdjson-dev
  doctest-dev
  libyaml-cpp-dev
  clang-format python3
  lld-16
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
