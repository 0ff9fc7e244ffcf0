// The STORAGE actor: one per process, owns the RocksDB log store.
#pragma once

#include "actors/flush_trigger.hpp"
#include "actors/interfaces.hpp"
#include "storage/log_store.hpp"
#include "storage/snapshot_file.hpp"

#include <caf/typed_response_promise.hpp>

#include <map>
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
///
/// The messages that wait for a write leave from here once it is durable,
/// each batch straight to the link of its node (a copy of the server's
/// table), sent as the server; a message for a node without a link goes to
/// the server, which routes or drops it as it routes its own.
struct storage_state {
  static inline const char* name = "storage";

  /// Writes the queued batch and answers every waiting request.
  /// @returns false when the write failed (the actor is quitting).
  bool flush();

  /// Sends the messages of a durable batch, one batch per node.
  void send_outbound(std::vector<envelope> msgs);

  /// Replies to everyone waiting with `err` and quits (fail-stop).
  void fail(const storage::storage_error& err);

  /// Registers `group`, bootstraps it with `voters` when new and loads it.
  caf::result<raft::persistent_state> register_group(group_id group,
                                                     raft::membership voters);

  /// The newest snapshot of `group` a replica restarting from a log with
  /// snapshot `meta` and durable commit index `commit` can restore from.
  caf::result<snapshot_start> find_snapshot(group_id group,
                                            const raft::snapshot_meta& meta,
                                            log_index commit);

  /// Reads the snapshot file of `group` with exactly `meta`.
  caf::result<std::string> read_snapshot(group_id group,
                                         const raft::snapshot_meta& meta);

  snapshot_storage_actor::stateful_pointer<storage_state> self = nullptr;
  std::shared_ptr<storage::log_store> store;
  snapshot_settings snapshot_cfg;
  /// Null when snapshots are off (no data directory given).
  std::unique_ptr<storage::snapshot_files> snapshots;
  /// Saves the snapshot files; spawned at the first save, stopped with
  /// this actor.
  snapshot_writer_actor writer;
  std::vector<storage::group_write> queued;
  /// The messages that wait for the writes in `queued`.
  std::vector<envelope> outbound;
  /// Null until the server introduces itself.
  peer_actor router;
  std::map<node_id, peer_actor> links;
  std::vector<caf::typed_response_promise<atom::persisted>> waiting;
  flush_trigger flush_pending;
};

/// Spawns the storage of a process around an open `store`, without snapshot
/// files: replicas never snapshot and cannot install snapshots.
/// Spawn it detached in production: writes block on fsync.
snapshot_storage_actor::behavior_type
storage(snapshot_storage_actor::stateful_pointer<storage_state> self,
        std::shared_ptr<storage::log_store> store);

/// Spawns the storage of a process around an open `store` that also owns
/// the snapshot files under `settings.dir` (saving one blocks on fsync too).
snapshot_storage_actor::behavior_type
snapshot_storage(snapshot_storage_actor::stateful_pointer<storage_state> self,
                 std::shared_ptr<storage::log_store> store,
                 snapshot_settings settings);

} // namespace ees::actors
