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
  storage_failure, ///< A durable write failed; the server stops (fail-stop).
  invalid_command, ///< Empty, oversize, or not a stamped entry payload.
};

/// Returns the code's name, e.g. "unknown_group".
const char* to_string(cluster_errc x);

/// Error category "cluster".
caf::error make_error(cluster_errc x);

/// A client-facing name of any error of the runtime: the code's name for
/// the categories above ("not_leader", "unknown_group", ...), CAF's
/// rendering otherwise (e.g. "request_timeout").
std::string error_name(const caf::error& err);

} // namespace ees::actors

namespace ees::raft {

/// Error category "raft".
caf::error make_error(raft_errc x);

} // namespace ees::raft

namespace ees::storage {

/// Error category "storage"; the context holds the message.
caf::error make_error(const storage_error& x);

} // namespace ees::storage
