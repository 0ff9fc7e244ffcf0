// The APPLIER actor: one per group, feeds committed entries to the host's
// state machine (etcd's apply loop, braft's FSMCaller).
#pragma once

#include "actors/interfaces.hpp"
#include "ees/cluster/state_machine.hpp"

#include <vector>

namespace ees::actors {

/// The state of the APPLIER actor.
///
/// It outlives restarts of its replica: a restarted replica hands out
/// committed entries from its snapshot on again, and the applier skips those
/// it applied already, so the state machine sees each entry exactly once.
///
/// Snapshots (§7): the replica asks for `snapshot` once enough entries are
/// applied (the state machine captures its state at once and a writer
/// actor of its own serializes it, so applying goes on meanwhile), and sends
/// `restore` before any entry after a snapshot it restarts from or installs; a
/// snapshot not newer than `applied` is ignored, since the state covers it
/// already.
///
/// Normal entries carry the leader's clock (entry_stamp.hpp); an entry that
/// does not stops the applier (a corrupt log must not reach the state).
struct applier_state {
  static inline const char* name = "applier";

  /// Applies `entries` (ascending) that are newer than `applied`, then
  /// hands the state machine's notifications to `sink`.
  applied_batch apply(const std::vector<raft::log_entry>& entries);

  /// Fires the leadership callbacks of the state machine.
  void on_leadership(bool leading, term_t term);

  /// Replaces the state with a snapshot's (§7) unless it covers nothing
  /// new; returns `applied`.
  log_index restore(const raft::snapshot_meta& meta, const std::string& data);

  applier_actor::stateful_pointer<applier_state> self = nullptr;
  group_id group;
  node_id node;
  cluster::state_machine_ptr machine;
  notify_actor sink;
  /// Snapshot writers run detached (on threads of their own).
  bool detached = true;
  /// Every entry up to here reached the state machine.
  log_index applied;
  bool leading = false;
};

/// Spawns the applier of `group` on `node`, applying to `machine` and
/// delivering its notifications to `sink` (may be null: dropped).
/// `detached`: serialize snapshots on threads of their own.
applier_actor::behavior_type
applier(applier_actor::stateful_pointer<applier_state> self, group_id group,
        node_id node, cluster::state_machine_ptr machine, notify_actor sink,
        bool detached = true);

} // namespace ees::actors
