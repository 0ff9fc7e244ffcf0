// Outcomes the core reports to its caller (error tier 3 of the style rules:
// operational results, never exceptions). Protocol rejections between peers
// are data inside messages, not these codes.
#pragma once

#include <cstdint>

namespace ees::raft {

enum class raft_errc : std::uint8_t {
  ok = 0,
  not_leader, ///< Only the leader accepts proposals and reads.
  proposal_dropped, ///< Leader is transferring leadership; retry later.
  conf_change_pending, ///< An earlier membership change is not applied yet.
  invalid_conf_change, ///< The change does not fit the current membership.
  learner_not_caught_up, ///< Promotion refused until the learner has the log.
  unknown_peer, ///< Message from or to a node outside the group.
  stale_message, ///< Message from an older term; ignored (§5.1).
  compacted, ///< Requested index is below the snapshot.
  unavailable, ///< Requested index is beyond the log.
  invalid_argument, ///< Caller broke a documented precondition.
};

/// Returns the code's name, e.g. "not_leader".
const char* to_string(raft_errc e);

} // namespace ees::raft
