#!/usr/bin/env bash
# Builds and runs every test of ees-cluster; the one test command of the README
# (and of CI). Stages:
#   1. release build (-Wall -Wextra -Werror) and ctest: unit, scenario, dst,
#      actors, integration; the core benchmark and the comparative harness
#      (ees, etcd, Ratis) in their smoke modes;
#   2. the same under AddressSanitizer + UBSan (fewer simulation seeds);
#   3. mutants: deliberately broken cores the simulation must catch;
#   4. libFuzzer on the ClusterStateMachine's command decoder (scripts/fuzz.sh);
#   5. formatting (.clang-format) and the purity of protocol/.
# Ends with one line "test: N passed, N failed"; exits non-zero on failure.
# Environment: JOBS (default: nproc), EES_DST_SEEDS (default 20000),
# EES_FUZZ_SECONDS (default 45), EES_SKIP_ASAN=1 / EES_SKIP_MUTANTS=1 to
# shorten a local run.
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=${JOBS:-$(nproc)}
seeds=${EES_DST_SEEDS:-20000}
mutant_seeds=${EES_MUTANT_SEEDS:-20000}
passed=0
failed=0
failures=()

stage() { # stage NAME COMMAND...
  local name=$1
  shift
  echo
  echo "=== $name"
  local start=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "=== $name: ok ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "=== $name: FAILED ($((SECONDS - start)) s)"
  fi
}

build() { # build DIR CMAKE-ARGS...
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DEES_WERROR=ON "$@" >/dev/null \
    && cmake --build "$dir" -j "$jobs"
}

# A mutant passes this check when a test tier catches it: the simulation
# finds a violation, or the unit or scenario tests fail. The log says which.
mutant() { # mutant NAME
  local dir=build-mutant-$1 caught=()
  cmake -S . -B "$dir" -G Ninja -DEES_MUTANT="$1" -DEES_BUILD_BENCH=OFF \
    >/dev/null 2>&1 \
    && cmake --build "$dir" -j "$jobs" --target dst unit_tests scenario_test \
      >/dev/null || return 1
  if "$dir/tests/dst/dst" --seeds "$mutant_seeds" --expect-violation \
    | grep "^dst:"; then
    caught+=(dst)
  fi
  "$dir/tests/unit_tests" >/dev/null 2>&1 || caught+=(unit)
  "$dir/tests/scenario/scenario_test" tests/scenario/testdata >/dev/null 2>&1 \
    || caught+=(scenario)
  echo "caught by: ${caught[*]:-nothing}"
  [ ${#caught[@]} -gt 0 ]
}

# An actor-layer mutant is caught when the actor tests fail.
actor_mutant() { # actor_mutant NAME
  local dir=build-mutant-$1
  cmake -S . -B "$dir" -G Ninja -DEES_MUTANT="$1" -DEES_BUILD_BENCH=OFF \
    >/dev/null 2>&1 \
    && cmake --build "$dir" -j "$jobs" --target actor_tests >/dev/null \
    || return 1
  if "$dir/tests/actors/actor_tests" >/dev/null 2>&1; then
    echo "caught by: nothing"
    return 1
  fi
  echo "caught by: actors"
}

purity() {
  # protocol/ and placement/ stay pure: no CAF, RocksDB, spdlog, threads,
  # clocks, files or global randomness (DESIGN.md §2).
  local hits
  hits=$(grep -rnE '#include *[<"](caf/|rocksdb/|spdlog/|thread>|mutex>|fstream>|filesystem>|chrono>|random>)|steady_clock|system_clock|random_device|sleep_for' \
    protocol placement || true)
  [ -z "$hits" ] || { echo "impure:"; echo "$hits"; return 1; }
  echo "protocol/ and placement/ are pure"
}

formatting() {
  local files
  files=$(git ls-files '*.cpp' '*.hpp')
  [ -n "$files" ] || return 0
  # shellcheck disable=SC2086
  clang-format --dry-run --Werror $files
}

stage "setup" ./scripts/setup.sh
stage "build" build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEES_DST_SEEDS="$seeds"
stage "ctest" ctest --test-dir build --output-on-failure -j "$jobs"
grep -h "^dst:\|^scenario:" build/Testing/Temporary/LastTest.log 2>/dev/null || true
stage "bench smoke" ./build/bench/core_bench --smoke
# The comparative harness (ees, etcd, Ratis) in its seconds-per-run mode:
# proves the harness and the three load generators work, measures nothing.
stage "bench harness smoke" sh -c "bench/setup.sh && python3 bench/harness.py \
  --smoke --out build/bench-smoke"
if [ "${EES_SKIP_ASAN:-0}" != 1 ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  stage "build asan+ubsan" build build-asan -DCMAKE_BUILD_TYPE=Debug \
    -DEES_SANITIZE=ON -DEES_BUILD_BENCH=OFF -DEES_DST_SEEDS=1000
  stage "ctest asan+ubsan" ctest --test-dir build-asan --output-on-failure -j "$jobs"
  grep -h "^dst:" build-asan/Testing/Temporary/LastTest.log 2>/dev/null || true
fi
if [ "${EES_SKIP_MUTANTS:-0}" != 1 ]; then
  for m in old_term_commit vote_before_persist stale_log_vote undurable_leader \
    lazy_commit unsynced_vote; do
    stage "mutant $m is caught" mutant "$m"
  done
  for m in send_before_sync direct_calls_wait calls_overtake_subscribe \
    no_keepalive no_drain retry_caf_calls no_redial_backoff \
    accept_gives_up; do
    stage "mutant $m is caught" actor_mutant "$m"
  done
fi
# libFuzzer on the command decoder and the ClusterStateMachine (ASan+UBSan).
stage "fuzz" env EES_FUZZ_SECONDS="${EES_FUZZ_SECONDS:-45}" ./scripts/fuzz.sh
stage "purity" purity
stage "format" formatting

echo
for f in "${failures[@]}"; do echo "failed stage: $f"; done
echo "test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
