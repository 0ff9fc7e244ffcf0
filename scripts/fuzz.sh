#!/usr/bin/env bash
# Fuzzes the command decoder and the ClusterStateMachine (apply, query,
# snapshot/restore) with libFuzzer under ASan and UBSan, for a bounded time.
# Installs clang and its runtime when missing (like setup.sh), builds only
# the fuzz target in build-fuzz, starts from the seeds in tests/fuzz/corpus
# and ends with one line "fuzz: N executions, 0 crashes"; exits non-zero
# on a crash or a failed run (the reproducer lands in build-fuzz/artifacts).
# Environment: EES_FUZZ_SECONDS (default 60), JOBS (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${EES_FUZZ_SECONDS:-60}
jobs=${JOBS:-$(nproc)}
dir=build-fuzz

packages=(clang libclang-rt-14-dev cmake ninja-build nlohmann-json3-dev
  libsimdjson-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEES_FUZZ=ON -DEES_WERROR=ON >/dev/null
cmake --build "$dir" --target command_fuzz -j "$jobs"

# New inputs go to the working corpus; the checked-in seeds stay untouched.
mkdir -p "$dir/corpus"
rm -rf "$dir/artifacts"
mkdir -p "$dir/artifacts"
log=$dir/fuzz.log
echo "fuzz: running command_fuzz for ${seconds} s (log: $log)"
set +e
"$dir/tests/fuzz/command_fuzz" "$dir/corpus" tests/fuzz/corpus \
  -dict=tests/fuzz/command.dict -max_total_time="$seconds" -max_len=16384 \
  -timeout=10 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
  >"$log" 2>&1
rc=$?
set -e

# libFuzzer ends a clean run with "Done N runs in S second(s)"; the final
# stats give the count even when a crash cut the run short.
runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
[ -n "$runs" ] \
  || runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' \
    "$log" | tail -n 1)
crashes=$(find "$dir/artifacts" -type f | wc -l)
grep -E "^==[0-9]+==ERROR|violated|SUMMARY|^artifact_prefix|Test unit written" \
  "$log" || true
if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
  crashes=1
fi
echo "fuzz: ${runs:-0} executions, $crashes crashes"
[ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ] && [ -n "$runs" ]
