// The batch of work the core hands to its environment.
#pragma once

#include "protocol/raft/types.hpp"

#include <optional>
#include <vector>

namespace ees::raft {

/// What `on_persisted` needs to know about a ready once it is durable.
struct persist_ack {
  /// Last entry of the ready's `entries` (zero when it had none).
  log_index last_index;
  term_t last_term;
  /// The hard state the ready asked to persist, if any.
  std::optional<hard_state> state;
  /// The snapshot the ready asked to install, if any.
  std::optional<log_index> snapshot_index;
};

/// Work for the environment, produced by `node::take_ready`.
///
/// Contract, in this order (Raft thesis §3.8, etcd's "asynchronous storage
/// writes"):
/// 1. persist `snapshot` (and restore the state machine from it), `state` and
///    `entries` atomically; `entries` replace any stored suffix that starts at
///    `entries.front().index`;
/// 2. only once that is durable send `messages_after_persist` (votes and
///    append acknowledgements promise durable state) and call
///    `node::on_persisted(ack)`, in either order: nothing the core does
///    depends on what was sent, so the thread that made the write durable
///    may send them at once (the runtime's storage actor does, like
///    etcd-io/raft's asynchronous storage writes);
///    A ready with `sync == false` changes only the commit index, which is
///    volatile state (Figure 2; etcd's MustSync): it may be written without
///    fsync, later (with the next write) or not at all, and on_persisted
///    called at once. A lost
///    commit index is relearned from the leader; it can only be lower than
///    the truth, never higher.
/// 3. `messages` may be sent at once, before persisting;
/// 4. apply `committed` in index order (they are durable already) and report
///    progress with `node::on_applied`;
/// 5. serve each `read_states` entry once the state machine applied its index.
/// Readies must be persisted in the order they were taken, and a ready's
/// `messages_after_persist` wait for every earlier ready to be durable even
/// when the ready itself has nothing to write (an acknowledgement may vouch
/// for entries an earlier ready wrote).
struct ready {
  std::optional<soft_state> soft;
  std::optional<hard_state> state;
  std::optional<snapshot_meta> snapshot;
  std::vector<log_entry> entries;
  std::vector<message> messages;
  std::vector<message> messages_after_persist;
  std::vector<log_entry> committed;
  std::vector<read_state> read_states;
  persist_ack ack;
  /// The write must be durable before `on_persisted` (see 1.): entries, a
  /// snapshot, or a new term or vote.
  bool sync = false;

  /// True when the environment must write something before acknowledging.
  bool must_persist() const {
    return state || snapshot || !entries.empty();
  }
};

} // namespace ees::raft
