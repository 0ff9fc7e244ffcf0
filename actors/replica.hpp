// The REPLICA actor: one local member of one Raft group around raft::node.
#pragma once

#include "actors/flush_trigger.hpp"
#include "actors/interfaces.hpp"
#include "protocol/raft/node.hpp"

#include <caf/typed_response_promise.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace ees::actors {

/// A proposal waiting for its entry to be applied.
struct pending_proposal {
  /// The term the entry was appended in; an applied entry of another term at
  /// the same index means the proposal was overwritten (§5.3).
  term_t term;
  caf::typed_response_promise<std::string> promise;
  /// The tick (replica_state::ticks) at which it is answered `timed_out`.
  std::uint64_t due = 0;
};

/// The state of the REPLICA actor.
///
/// Leader, candidate and follower are roles of `core`, never actors. Every
/// handler calls one core method and then `flush()`, which carries out the
/// ready contract (protocol/raft/ready.hpp) with at most one persist in
/// flight: a new ready is taken only after the previous one is durable, so
/// readies are persisted in order and `messages_after_persist` never leave
/// before everything they vouch for is durable (style Rule 7): they go to
/// the storage with the write, which sends them once it is synced. Proposals
/// flush through a `flush` sent to itself, behind the rest of their batch.
///
/// Snapshots (§7), with the storage as `snapshot_storage_actor`:
/// - start: before the first ready, the newest usable snapshot file is
///   loaded and the applier restores from it, so committed entries handed
///   out again only replay the tail;
/// - compaction: once `applied - snapshot index >= threshold`, the applier
///   takes a snapshot, the storage saves its file (durable), then the core
///   and finally the log store drop the prefix;
/// - InstallSnapshot: the leader attaches the data of the snapshot file
///   matching the message's meta to its envelope (`snapshot_data`, whole,
///   no chunking) and reports the outcome with `report_snapshot`; the
///   follower saves the data as its snapshot file before stepping the
///   message, persists the ready's snapshot meta and then has the applier
///   restore from the data.
struct replica_state {
  static inline const char* name = "replica";

  /// Drains the core's readies into the router, storage and applier.
  void flush();

  /// Fail-stop (style Rule 5): answers every waiting proposal and read with
  /// `reason` and quits with it. Nothing is retried; the server decides
  /// what happens to the group (a storage failure marks it failed).
  void stop(caf::error reason);

  /// How much of `amount` (a threshold in entries or bytes) the next
  /// snapshot waits for beyond it (`staggered`).
  std::uint64_t stagger(std::uint64_t amount) const;

  /// A ready that needs no synced write of its own (nothing to write, or a
  /// commit index alone) is as durable as it must be once every earlier one
  /// is: reports it to the core and sends its `after_persist` messages.
  void on_persisted(const raft::persist_ack& ack,
                    std::vector<raft::message>& after_persist);

  /// The applier applied a batch: resolve proposals and reads.
  void on_applied(applied_batch& batch);

  /// Answers `timed_out` to the proposals whose due tick came.
  void expire_proposals();

  /// Proposes `command` stamped with the leader's clock.
  caf::result<std::string> propose(const std::string& command);

  /// The connection to `id` was lost. A follower of `id` campaigns without
  /// waiting out its election timeout (§5.2 needs *some* timeout; an early
  /// one is safe, and pre-vote with the voters' leader lease keeps it from
  /// disrupting a leader that is alive for the others, thesis §9.6).
  void on_peer_down(node_id id);

  /// Steps a message that waited for local work (a received snapshot's
  /// file) and so may be older than a peer_down of its sender: then the
  /// lease it renews is ended again.
  void step_late(const raft::message& m);

  /// Runs the early campaign `on_peer_down` scheduled, when it is due.
  void maybe_campaign_early();

  /// Leader: proposes an empty command (a clock advance) once the wall
  /// clock passed the state machine's next deadline, so leases expire in
  /// replicated time even when no client writes.
  void maybe_advance_clock();
  caf::result<log_index> read();
  replica_status status() const;

  void send(raft::message m);

  /// Leader: sends an install_snapshot with its data (see above).
  void send_snapshot(raft::message m);

  /// Follower: saves the snapshot of an install_snapshot, then steps it.
  void receive_snapshot(envelope& env);

  /// Steps `m` into the core and flushes.
  void step(const raft::message& m);

  /// Takes a snapshot when enough entries were applied since the last one.
  void maybe_snapshot();

  /// The meta of a snapshot covering the log up to `index`, if the log still
  /// knows that entry.
  std::optional<raft::snapshot_meta> meta_at(log_index index) const;

  /// Restores the applier from the restart snapshot, then starts flushing.
  void start(const raft::persistent_state& restored);

  /// The ready installing `meta` is durable: restore the state machine.
  void on_installed(const raft::snapshot_meta& meta);
  void on_soft_state(const raft::soft_state& soft);
  void release_reads();
  /// Writes `deferred_state` (unsynced) if there is one.
  void write_deferred_state();

  replica_actor::stateful_pointer<replica_state> self = nullptr;
  group_id group;
  std::optional<raft::node> core;
  peer_actor router;
  storage_actor storage;
  applier_actor applier;
  bool persisting = false;
  /// Flushes the proposals of one batch together.
  flush_trigger flush_pending;
  /// The newest hard state whose only change was the commit index, not yet
  /// written: it rides on the next synced write, or `write_deferred_state`
  /// (each tick) writes it alone. Losing it in a crash is harmless: the
  /// commit index is volatile (Figure 2) and relearned from the leader.
  std::optional<raft::hard_state> deferred_state;
  bool leading = false;
  log_index applied;
  std::map<log_index, pending_proposal> proposals;
  /// Ticks since start, and how many a proposal may wait for its result.
  /// A proposal can wait for ever otherwise: after its leader stepped down,
  /// its index is decided only when a later leader's log reaches it. Reads
  /// need no bound: the leader confirms them within a heartbeat round, or
  /// fails them when it steps down (check-quorum, §6.2).
  std::uint64_t ticks = 0;
  std::uint64_t answer_ticks = 0;
  std::uint64_t next_read = 0;
  /// Reads waiting for the leader to confirm its leadership, by context.
  std::map<std::uint64_t, caf::typed_response_promise<log_index>> reads;
  /// Confirmed reads waiting for the state machine, by read index.
  std::multimap<log_index, caf::typed_response_promise<log_index>> ready_reads;
  /// The storage as snapshot store (same actor as `storage`).
  snapshot_storage_actor snapshots;
  /// Until the restart snapshot is restored, readies stay in the core.
  bool starting = true;
  /// Applied entries after the newest snapshot that trigger the next one;
  /// 0 means never. Set by the storage at start unless overridden.
  std::uint64_t threshold = 0;
  /// Command bytes committed since the last snapshot was taken, and the
  /// size of that snapshot. A snapshot is taken only once the log it
  /// replaces is at least as large as the last one (LogCabin's
  /// snapshotRatio, here 1): the cost of snapshots then stays proportional
  /// to the log written, however large the state grows.
  std::uint64_t log_bytes = 0;
  std::uint64_t snapshot_bytes = 0;
  /// The first snapshot since start was taken. Until then the voter of
  /// rank r (by id, of n) waits r/n of a threshold (entries and bytes)
  /// more: the voters of a group apply the same log, and unstaggered they
  /// serialize and write their snapshots at the same moment, each taking
  /// a core of a small machine for a few hundred ms (bench/README.md,
  /// "Snapshots and tail latency"). Later snapshots keep the phase.
  bool staggered = false;
  bool threshold_overridden = false;
  /// The storage keeps snapshot files (else no snapshots, no installs).
  bool snapshots_enabled = false;
  /// A snapshot is being taken, saved or compacted.
  bool snapshotting = false;
  /// Snapshots installed from leaders since this replica started.
  std::uint64_t snapshots_installed = 0;
  /// Follower: snapshots received from leaders and saved, by last index,
  /// waiting for the ready that installs them.
  std::map<log_index, std::pair<raft::snapshot_meta, std::string>> received;
  /// The wall clock stamped into proposals (ms since the epoch).
  std::function<std::int64_t()> wall_clock;
  /// The state machine's next deadline (replicated ms), -1 for none.
  std::int64_t deadline = -1;
  /// The index of the clock advance in flight (0: none).
  log_index advancing;
  /// An early campaign after losing the connection to `lost_leader`: due in
  /// this many ticks, -1 for none; repeated every `campaign_period` ticks
  /// (the number of survivors) while nobody leads, `campaigns_left` times.
  int campaign_in = -1;
  /// Nodes whose link the server reported lost, until a message of theirs
  /// is routed again.
  std::set<node_id> lost_peers;
  int campaign_period = 1;
  int campaigns_left = 0;
  node_id lost_leader;
  /// Early campaigns after one loss, at most; then the election timeout
  /// alone decides (§5.2).
  static constexpr int max_early_campaigns = 5;
};

/// The largest command a client may propose (bytes).
inline constexpr std::size_t max_command_size = 1 << 20;

/// Spawns the replica of `group` described by `cfg`, restarting from
/// `restored`. Outgoing messages go to `router` (the local server);
/// proposals are stamped with `wall_clock` and answered `timed_out` after
/// `answer_ticks` ticks without a result.
replica_actor::behavior_type
replica(replica_actor::stateful_pointer<replica_state> self, group_id group,
        raft::raft_config cfg, raft::persistent_state restored,
        peer_actor router, storage_actor storage, applier_actor applier,
        std::function<std::int64_t()> wall_clock, std::uint64_t answer_ticks);

} // namespace ees::actors
