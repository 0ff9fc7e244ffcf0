// The STORAGE actor: one per process, owns the RocksDB log store.
#pragma once

#include "actors/interfaces.hpp"
#include "storage/log_store.hpp"

#include <caf/typed_response_promise.hpp>

#include <memory>
#include <vector>

namespace ees::actors {

/// The state of the STORAGE actor.
///
/// Persist requests of many replicas are queued and written together: the
/// first queued request sends the actor a `flush`, which writes everything
/// queued by then as one synced batch (DESIGN.md §1) and only then replies.
/// A failed write is fail-stop: every waiting request gets the error and the
/// actor quits with it; nothing is retried.
struct storage_state {
  static inline const char* name = "storage";

  /// Writes the queued batch and answers every waiting request.
  /// @returns false when the write failed (the actor is quitting).
  bool flush();

  /// Replies to everyone waiting with `err` and quits (fail-stop).
  void fail(const storage::storage_error& err);

  /// Registers `group`, bootstraps it with `voters` when new and loads it.
  caf::result<raft::persistent_state> register_group(group_id group,
                                                     raft::membership voters);

  storage_actor::stateful_pointer<storage_state> self = nullptr;
  std::shared_ptr<storage::log_store> store;
  std::vector<storage::group_write> queued;
  std::vector<caf::typed_response_promise<atom::persisted>> waiting;
  bool flush_scheduled = false;
};

/// Spawns the storage of a process around an open `store`.
/// Spawn it detached in production: writes block on fsync.
storage_actor::behavior_type
storage(storage_actor::stateful_pointer<storage_state> self,
        std::shared_ptr<storage::log_store> store);

} // namespace ees::actors
