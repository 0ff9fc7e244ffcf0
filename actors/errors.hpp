// Operational failures of the actor layer as `caf::error` (error tier 3 of
// the style rules): Raft outcomes, storage failures and runtime errors.
#pragma once

#include "protocol/raft/errors.hpp"
#include "storage/error.hpp"

#include <caf/atom.hpp>
#include <caf/error.hpp>

#include <cstdint>
#include <string>

namespace ees::actors {

/// Failures of the runtime around the Raft core.
enum class cluster_errc : std::uint8_t {
  ok = 0,
  unknown_group, ///< No replica of that group runs on this server.
  already_registered, ///< The group is registered (or registering) already.
  replica_restarting, ///< The replica crashed and is being restarted.
  proposal_dropped, ///< The proposal's entry was overwritten by a new leader.
  storage_failure, ///< A durable write failed (fail-stop).
  invalid_command, ///< Empty, oversize, or not a stamped entry payload.
  /// The group's replica on this server stopped for good (fail-stop after a
  /// storage failure); the context names the cause. Restarting the process
  /// recovers the group from what is durable.
  group_failed,
  /// The proposal was not answered within the server's client timeout
  /// (the replica counts it in ticks): its outcome is unknown, it may still
  /// commit. Clients retry with the same request id.
  timed_out,
};

/// Returns the code's name, e.g. "unknown_group".
const char* to_string(cluster_errc x);

/// Error category "cluster".
caf::error make_error(cluster_errc x);

/// A client-facing name of any error of the runtime: the bare code name for
/// the categories cluster, raft and storage ("not_leader", "unknown_group",
/// "io_error", ...), CAF's rendering otherwise. Clients decide on retries
/// by it.
std::string error_name(const caf::error& err);
/// Error category "cluster" with a message as context.
caf::error make_error(cluster_errc x, std::string context);

/// A one-line text for operators and logs, e.g.
/// "storage:io_error: sync wal: IO error: injected sync failure"; other
/// categories fall back to caf::to_string.
std::string describe(const caf::error& err);

/// True for errors that mean the durable state cannot be written or read
/// (category "storage", or cluster_errc::storage_failure): fail-stop, a
/// restart from the same storage would not help.
bool is_storage_failure(const caf::error& err);

} // namespace ees::actors

namespace ees::raft {

/// Error category "raft".
caf::error make_error(raft_errc x);

} // namespace ees::raft

namespace ees::storage {

/// Error category "storage"; the context holds the message.
caf::error make_error(const storage_error& x);

} // namespace ees::storage
