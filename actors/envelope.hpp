// Wire types of the actor layer: Raft messages addressed to a group, and the
// small results replicas and appliers exchange.
#pragma once

#include "protocol/ids.hpp"
#include "protocol/raft/types.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace ees::actors {

/// A Raft message of one group, as routed between server actors.
struct envelope {
  group_id group;
  raft::message msg;
  /// For `install_snapshot` only: the state machine snapshot `msg.snapshot`
  /// describes, attached whole by the leader's replica (the core's messages
  /// carry only the meta). Empty for every other message.
  std::string snapshot_data{};

  friend bool operator==(const envelope& a, const envelope& b) {
    return a.group == b.group && a.msg == b.msg
           && a.snapshot_data == b.snapshot_data;
  }
};

template <class Inspector>
auto inspect(Inspector& f, envelope& x) {
  return f(x.group, x.msg, x.snapshot_data);
}

/// The state machine's answer to one committed normal entry.
struct apply_result {
  log_index index;
  term_t term;
  std::string value;
};

template <class Inspector>
auto inspect(Inspector& f, apply_result& x) {
  return f(x.index, x.term, x.value);
}

/// What the applier reports after applying one batch of committed entries.
struct applied_batch {
  /// Every entry up to here is applied.
  log_index last;
  /// One result per normal entry of the batch, ascending by index.
  std::vector<apply_result> results;
  /// The state machine's next deadline in replicated ms, -1 for none: once
  /// the leader's clock passes it, the leader proposes a clock advance.
  std::int64_t next_deadline = -1;
};

template <class Inspector>
auto inspect(Inspector& f, applied_batch& x) {
  return f(x.last, x.results, x.next_deadline);
}

/// A snapshot of one replica's volatile state, for operators and tests.
struct replica_status {
  group_id group;
  node_id node;
  raft::role current_role = raft::role::follower;
  term_t term;
  node_id leader;
  log_index commit;
  log_index applied;
  log_index last_index;
  /// The last index covered by the log's snapshot (the log holds the
  /// entries after it; §7).
  log_index snapshot_index;
  /// Snapshots this replica installed from a leader (InstallSnapshot, §7)
  /// since it started.
  std::uint64_t snapshots_installed = 0;
  /// Empty while the replica runs. Otherwise the replica stopped for good
  /// (fail-stop, e.g. a failed fsync) and this names the cause; the other
  /// fields are then unknown (zero).
  std::string failure{};

  friend bool operator==(const replica_status& a, const replica_status& b) {
    return a.group == b.group && a.node == b.node
           && a.current_role == b.current_role && a.term == b.term
           && a.leader == b.leader && a.commit == b.commit
           && a.applied == b.applied && a.last_index == b.last_index
           && a.snapshot_index == b.snapshot_index
           && a.snapshots_installed == b.snapshots_installed
           && a.failure == b.failure;
  }
};

template <class Inspector>
auto inspect(Inspector& f, replica_status& x) {
  return f(x.group, x.node, x.current_role, x.term, x.leader, x.commit,
           x.applied, x.last_index, x.snapshot_index, x.snapshots_installed,
           x.failure);
}

} // namespace ees::actors
