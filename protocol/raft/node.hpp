// THE Raft core: one replica of one group as a deterministic state machine.
#pragma once

#include "protocol/raft/config.hpp"
#include "protocol/raft/errors.hpp"
#include "protocol/raft/log.hpp"
#include "protocol/raft/progress.hpp"
#include "protocol/raft/ready.hpp"
#include "protocol/raft/types.hpp"
#include "protocol/splitmix.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ees::raft {

/// Result of `node::propose`.
struct propose_result {
  raft_errc error = raft_errc::ok;
  /// Where the proposal was appended (when `error == ok`). It is committed
  /// once an entry with this index *and* term is applied.
  log_index index;
  term_t term;
};

/// A single replica of one Raft group as a deterministic state machine, in
/// the style of etcd-io/raft's RawNode.
///
/// The node never blocks, never reads a clock and performs no I/O: time
/// advances only through `tick()`, randomness comes from `cfg.seed`, and all
/// effects are returned as a `ready` batch. Feeding two nodes the same
/// sequence of calls yields the same readies.
class node {
public:
  /// Creates a replica from its durable state. The embedding restores its
  /// state machine from `restored.snapshot`'s data; committed entries after
  /// the snapshot are handed out again through `ready::committed`.
  /// @pre `validate(cfg)` returned an empty string.
  node(const raft_config& cfg, persistent_state restored);

  // -- inputs ----------------------------------------------------------------

  /// Advances the logical clock by one tick: election timeout for followers
  /// and candidates (§5.2), heartbeats and check-quorum for the leader.
  void tick();

  /// Feeds a message from a peer. Stale terms are not errors: they are handled
  /// per §5.1 and reported as `stale_message`.
  raft_errc step(const message& m);

  /// Appends a command if this replica leads (§5.3).
  propose_result propose(std::string data);

  /// Proposes a one-server membership change (thesis §4.1). Refused while an
  /// earlier change is not yet committed, and before the leader committed an
  /// entry of its own term (the fix of thesis §4.1's single-server bug).
  /// Promotion waits until the learner holds every committed entry.
  propose_result propose_conf_change(const conf_change& cc);

  /// Requests a linearizable read (thesis §6.4, ReadIndex). When leadership is
  /// confirmed, a `read_state{index, context}` appears in a ready.
  raft_errc read_index(std::uint64_t context);

  /// Hands leadership to `target` (thesis §3.10): stops accepting proposals,
  /// brings the target up to date and sends it `timeout_now`. Aborted after
  /// one election timeout.
  raft_errc transfer_leadership(node_id target);

  /// Starts an election now (pre-vote first when enabled). Used by tests and
  /// by operators forcing a campaign.
  raft_errc campaign();

  /// Tells the core a snapshot of the state machine exists up to `index`
  /// (§7), so the log before it can be dropped. @pre index <= applied_index().
  raft_errc compact(log_index index);

  /// Reports the outcome of streaming a snapshot to `peer`. On failure the
  /// leader probes again. The embedding must report every install_snapshot
  /// it was asked to send, including those it dropped: until then the peer
  /// stays paused in the snapshot state.
  void report_snapshot(node_id peer, bool success);

  /// Reports that `peer` could not be reached (the embedding lost its
  /// connection to it). A leader falls back to probing `peer`. A follower of
  /// `peer` forgets its leader: the lease of thesis §4.2.3 (ignore vote
  /// requests while a leader is heard from) rests on the leader being alive,
  /// and without it a survivor that hears of the loss first could not get
  /// the other's pre-vote until an election timeout had passed.
  void report_unreachable(node_id peer);

  // -- outputs ---------------------------------------------------------------

  bool has_ready() const;

  /// Collects all pending work. See `ready` for the contract.
  ready take_ready();

  /// Acknowledges that the ready that produced `ack` is durable.
  void on_persisted(const persist_ack& ack);

  /// Reports that the state machine applied every entry up to `index`.
  void on_applied(log_index index);

  // -- observers --------------------------------------------------------------

  node_id id() const noexcept {
    return cfg_.id;
  }
  role current_role() const noexcept {
    return role_;
  }
  term_t current_term() const noexcept {
    return current_term_;
  }
  node_id voted_for() const noexcept {
    return voted_for_;
  }
  node_id leader() const noexcept {
    return leader_;
  }
  log_index commit_index() const noexcept {
    return commit_index_;
  }
  log_index applied_index() const noexcept {
    return applied_;
  }
  const raft_log& log() const noexcept {
    return log_;
  }
  /// The membership in force: the newest committed config entry (§6).
  const membership& config() const noexcept {
    return config_;
  }
  /// Leader only: replication state of `peer`, or nullptr.
  const progress* progress_of(node_id peer) const;
  /// The leader being transferred to, or `no_node`.
  node_id transfer_target() const noexcept {
    return transfer_target_;
  }

private:
  // -- role transitions (§5.2) ------------------------------------------------
  void become_follower(term_t term, node_id leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void reset(term_t term);
  void reset_randomized_timeout();

  // -- elections --------------------------------------------------------------
  void start_campaign(bool pre_vote, bool forced);
  void handle_vote_request(const message& m);
  void handle_vote_response(const message& m);
  bool promotable() const;
  bool in_lease() const;

  // -- replication ------------------------------------------------------------
  void handle_append(const message& m);
  void handle_heartbeat(const message& m);
  void handle_install_snapshot(const message& m);
  void handle_append_response(const message& m);
  void handle_heartbeat_response(const message& m);
  /// Sends the next append (or snapshot) to `to`; false when nothing was sent.
  bool send_append(node_id to, progress& pr, bool send_if_empty);
  void broadcast_append();
  void broadcast_heartbeat(std::uint64_t context);
  bool maybe_commit();
  void advance_follower_commit();
  void append_local(entry_type type, std::string data);

  // -- membership -------------------------------------------------------------
  void apply_committed_configs(log_index from, log_index to);
  void set_config(const membership& m);
  /// Leader: one progress per member (next = last + 1 for new ones), none for
  /// non-members.
  void track_members();
  void hand_off_leadership();

  // -- reads ------------------------------------------------------------------
  void release_reads(std::uint64_t round, node_id from);
  void start_pending_reads();

  /// Fills in the sender and, unless set, the current term.
  message stamped(message m) const;
  void send(message m);
  void send_after_persist(message m);
  /// The hard state to write with the next ready (see the commit rule in
  /// node.cpp).
  hard_state current_hard_state() const;
  std::uint64_t next_random();

  raft_config cfg_;
  splitmix64 rng_;

  // Persistent state on all servers (Figure 2).
  term_t current_term_;
  node_id voted_for_ = no_node;
  raft_log log_;

  // Volatile state on all servers (Figure 2).
  log_index commit_index_;
  /// Highest index handed out in `ready::committed`.
  log_index applying_;
  /// Highest index the state machine reported applied.
  log_index applied_;
  /// The highest index a leader of the current term told us is committed and
  /// matches our log; commit_index_ follows it as entries become durable.
  log_index commit_target_;

  role role_ = role::follower;
  node_id leader_ = no_node;
  membership config_;
  /// Config entries (index → membership after it) at or above the snapshot
  /// index; lets compaction record the membership in force at any index.
  std::map<log_index, membership> config_history_;

  std::uint32_t election_elapsed_ = 0;
  std::uint32_t heartbeat_elapsed_ = 0;
  std::uint32_t randomized_election_timeout_ = 0;

  /// Candidates: votes received this term (true = granted).
  std::map<node_id, bool> votes_;
  /// Candidate: its own vote is durable and may be counted.
  bool self_vote_durable_ = false;

  // Leader state (Figure 2), ordered by node id for deterministic sends.
  std::map<node_id, progress> progress_;
  /// Index of the newest config entry this leader appended.
  log_index pending_conf_index_;
  node_id transfer_target_ = no_node;
  std::uint32_t transfer_elapsed_ = 0;
  /// Proposals were appended since the last ready: broadcast them together.
  bool broadcast_pending_ = false;

  /// A ReadIndex request waiting for a quorum of heartbeat acks.
  struct pending_read {
    std::uint64_t round;
    read_state state;
    std::set<node_id> acks;
  };
  std::deque<pending_read> pending_reads_;
  /// Reads requested before this leader committed an entry of its term.
  std::vector<std::uint64_t> reads_before_commit_;
  std::uint64_t read_round_ = 0;

  // Output queues.
  std::vector<message> msgs_;
  std::vector<message> msgs_after_persist_;
  std::vector<read_state> read_states_;
  hard_state last_hard_state_;
  soft_state last_soft_state_;
  std::optional<snapshot_meta> pending_snapshot_;
};

} // namespace ees::raft
