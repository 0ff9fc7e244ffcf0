// Creates, starts and stops a RaftServer inside a host's caf::actor_system.
#pragma once

#include "actors/interfaces.hpp"
#include "protocol/ids.hpp"

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include <rocksdb/rocksdb_namespace.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace ROCKSDB_NAMESPACE {
class Env;
} // namespace ROCKSDB_NAMESPACE

namespace ees::cluster {

/// What a RaftServer needs to start.
struct raft_server_settings {
  /// This node's id (> 0).
  node_id id;
  /// Data directory; the log lives in `<data_dir>/log`.
  std::string data_dir;
  /// Tick length (`ees.cluster.raft.heartbeat-ms`).
  std::uint32_t tick_ms = 100;
  /// Minimum election timeout in ticks.
  std::uint32_t election_ticks = 10;
  /// fsync every write; only throw-away tests may turn it off.
  bool sync = true;
  /// The fewest applied entries between snapshots of a group
  /// (`ees.cluster.raft.snapshot.threshold`); 0 never snapshots. A group
  /// also waits until the commands applied since its last snapshot add up to
  /// that snapshot's size, so snapshot cost stays proportional to the log
  /// written however large the state is. Snapshot files live in
  /// `<data_dir>/snapshots`.
  std::uint64_t snapshot_threshold = 10000;
  /// How long a proposal may wait for its entry to be applied before it is
  /// answered `timed_out` (its outcome unknown).
  std::uint32_t client_timeout_ms = 10000;
  /// Run the storage on its own thread (it blocks on fsync), and serialize
  /// snapshots on threads of their own. Tests on CAF's deterministic
  /// scheduler turn this off.
  bool detached_storage = true;
  /// The clock leaders stamp into entries (ms since the epoch); the system
  /// clock when empty. Tests inject a simulated one.
  std::function<std::int64_t()> wall_clock;
  /// The RocksDB environment the log store runs on; null for the default.
  /// Tests inject write and fsync failures through it
  /// (tests/support/faulty_env.hpp).
  std::shared_ptr<rocksdb::Env> storage_env;
};

/// A running RaftServer.
struct raft_server {
  actors::server_actor server;
  actors::storage_actor storage;
};

/// Opens the log store in `settings.data_dir` and spawns the storage and the
/// server actors. Groups are added with `atom::register_` requests to
/// `server`.
/// @returns the storage error when the log store cannot be opened.
caf::expected<raft_server> start_raft_server(caf::actor_system& sys,
                                             const raft_server_settings& cfg);

/// Stops the server, its replicas, appliers and storage.
void stop_raft_server(raft_server& srv);

} // namespace ees::cluster
