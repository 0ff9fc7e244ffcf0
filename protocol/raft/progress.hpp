// The leader's view of one follower (etcd's tracker.Progress).
#pragma once

#include "protocol/ids.hpp"

#include <cstddef>
#include <deque>

namespace ees::raft {

/// How the leader currently replicates to a follower.
enum class progress_state : std::uint8_t {
  /// The leader does not know where the follower's log matches; it sends one
  /// append at a time and waits for the answer.
  probe = 0,
  /// The follower is known to match up to `match`; appends are pipelined up to
  /// the in-flight window.
  replicate = 1,
  /// The follower needs a snapshot; nothing is sent until it is installed.
  snapshot = 2,
};

const char* to_string(progress_state s);

/// Leader-side replication state of one peer (Figure 2: nextIndex, matchIndex).
/// Invariant: match < next.
struct progress {
  log_index match;
  log_index next{1};
  progress_state state = progress_state::probe;
  /// Probe state: an append was sent and its answer is outstanding.
  bool probe_sent = false;
  /// Snapshot state: index of the snapshot being installed.
  log_index pending_snapshot;
  /// Replicate state: last index of each append in flight, oldest first.
  std::deque<log_index> inflight;
  /// Heard from the peer since the last check-quorum round.
  bool recent_active = false;
  bool is_learner = false;

  /// Whether the leader may send another append now.
  bool is_paused(std::size_t max_inflight) const noexcept;
  void become_probe() noexcept;
  void become_replicate() noexcept;
  void become_snapshot(log_index snapshot_index) noexcept;
  /// Records that an append ending at `last` was sent.
  void sent_entries(log_index last) noexcept;
  /// Success: the follower matches up to `i`. Returns false when stale.
  bool maybe_update(log_index i) noexcept;
  /// Rejection of the append at `rejected`, probing at `hint` + 1 next.
  /// Returns false when the rejection is stale.
  bool maybe_decrease_to(log_index rejected, log_index hint) noexcept;
};

} // namespace ees::raft
