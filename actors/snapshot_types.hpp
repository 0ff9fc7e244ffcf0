// Process-local types of snapshotting and log compaction (§7).
#pragma once

#include "protocol/raft/types.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace ees::actors {

/// Where and how often the replicas of one process take snapshots.
struct snapshot_settings {
  /// The data directory; snapshot files live in `<dir>/snapshots/`
  /// (storage/snapshot_file.hpp). Empty: snapshots are off.
  std::string dir;
  /// Applied entries after the newest snapshot that trigger the next one
  /// (`ees.cluster.raft.snapshot.threshold`); 0: never snapshot.
  std::uint64_t threshold = 10000;
  /// Snapshot files kept per group. More than two, because a follower saves
  /// a received snapshot before its core decides to install it.
  std::size_t keep = 3;
  /// Write snapshot files on threads of their own, so that log writes do not
  /// wait behind them (production); tests on CAF's deterministic scheduler
  /// keep them on the scheduler.
  bool detached_saves = false;
};

/// What a starting replica learns from the storage: the process's snapshot
/// threshold and the snapshot to restore its state machine from.
struct snapshot_start {
  /// The storage keeps snapshot files: replicas may snapshot and install.
  bool enabled = false;
  /// 0: never take snapshots.
  std::uint64_t threshold = 0;
  /// A snapshot was found; `meta` and `data` are set.
  bool found = false;
  raft::snapshot_meta meta;
  std::string data;
};

} // namespace ees::actors
