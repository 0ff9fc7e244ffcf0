// Shared by ees-node, eesctl and ees_loadgen: how application names map to
// group ids, CAF's scheduler settings, glibc's malloc cache, and latency
// percentiles.
#pragma once

#include "protocol/ids.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/timespan.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace ees::apps {

/// 64-bit FNV-1a.
inline std::uint64_t fnv1a(std::string_view data,
                           std::uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

/// The group id of application `app`: the low 48 bits of FNV-1a-64 of the
/// name (never 0). Stable across nodes, restarts and config reorderings; a
/// name of at most 18 digits is taken as the group id itself.
inline group_id group_for_app(std::string_view app) {
  if (!app.empty() && app.size() <= 18
      && app.find_first_not_of("0123456789") == std::string_view::npos)
    return group_id{std::stoull(std::string{app})};
  auto v = fnv1a(app) & 0xFFFFFFFFFFFFull;
  return group_id{v == 0 ? 1 : v};
}

/// CAF's scheduler for ees processes: `threads` workers (0: half the cores,
/// at least two) that go to sleep as soon as they find no work. CAF's
/// defaults (at least 4 workers, each polling about 600 times before it
/// sleeps) cost a node 1.4 cores at 900 commits/s on a 2-core machine, and
/// the polling threads delay the ones with work: measured with three nodes
/// and the load generator on 2 cores, workers that sleep at once cut the
/// commit latency at concurrency 1 from 1.0 to 0.8-0.9 ms and raised
/// throughput at concurrency 256 by about 15% (bench/results). One worker
/// was faster still (0.90 against 0.95 ms), but then a long call of one
/// group's state machine (capturing a snapshot of a million keys) holds up
/// the heartbeats of every group on the node, which cost leader changes.
inline void configure_scheduler(caf::actor_system_config& cfg,
                                std::size_t threads) {
  if (threads == 0)
    threads = std::max(2u, std::thread::hardware_concurrency() / 2);
  cfg.set("scheduler.max-threads", threads);
  cfg.set("work-stealing.aggressive-poll-attempts", std::size_t{1});
  cfg.set("work-stealing.moderate-poll-attempts", std::size_t{1});
  cfg.set("work-stealing.moderate-sleep-duration", caf::timespan{0});
}

/// The glibc tunable ees-node starts with (see `tune_malloc`).
inline constexpr const char* malloc_tunable = "glibc.malloc.tcache_count";
inline constexpr const char* malloc_tunable_value = "1024";

/// Runs the process again with glibc's per-thread malloc cache raised from 7
/// to 1024 free chunks per size class, unless GLIBC_TUNABLES sets that
/// tunable already (the operator's choice, or this re-exec's). Call first in
/// main, before any thread starts; returns only when no re-exec happened.
///
/// Why: with glibc's 7-entry caches, its bins cost a quarter of a loaded
/// leader's CPU (_int_malloc, unlink_chunk, malloc_consolidate; perf at
/// concurrency 256): a batch allocates and frees hundreds of small objects
/// of one size at a time, and messages are freed on other threads than
/// the ones that allocated them. Measured with
/// bench/ab.sh (8 pairs): puts at concurrency 256 median +10%, at 64 +8%
/// (ranges -3 to +33%), servers' CPU per put up to -26%; idle RSS unchanged
/// (16.4 MiB per node), RSS after 5 s at concurrency 256 within 3%
/// (bench/README.md, "malloc").
/// Only tunables read by the dynamic loader at start set it: mallopt cannot.
inline void tune_malloc(char** argv) {
  const char* current = std::getenv("GLIBC_TUNABLES");
  if (current != nullptr && std::strstr(current, malloc_tunable) != nullptr)
    return;
  std::string value = current != nullptr && *current != '\0'
                        ? std::string{current} + ":"
                        : std::string{};
  value += std::string{malloc_tunable} + "=" + malloc_tunable_value;
  if (::setenv("GLIBC_TUNABLES", value.c_str(), 1) != 0)
    return;
  ::execv("/proc/self/exe", argv);
  // Not re-executed (no /proc?): run with glibc's defaults.
}

/// The p-quantile (0..1) of `v` by nearest rank below; 0 when empty.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k),
                   v.end());
  return v[k];
}

} // namespace ees::apps
