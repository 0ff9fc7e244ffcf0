// The SERVER actor: the RaftServer of one process (DESIGN.md §3).
#pragma once

#include "actors/flush_trigger.hpp"
#include "actors/interfaces.hpp"
#include "protocol/raft/config.hpp"

#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ees::actors {

/// How a server runs its replicas.
struct server_config {
  node_id id;
  /// Length of one Raft tick (the heartbeat interval).
  std::chrono::milliseconds tick_interval{100};
  /// Minimum election timeout in ticks (raft_config::election_ticks).
  std::uint32_t election_ticks = 10;
  /// How long a proposal waits for its result before it is answered
  /// `timed_out` (the replica counts it in ticks), and the bound of the
  /// status and digest requests of the client path. The hot requests
  /// (propose, read, query) carry no CAF timeout: each would wake CAF's
  /// clock thread twice (set and cancel), about 1.7 wake-ups per commit on
  /// a leader.
  std::chrono::milliseconds client_timeout{10000};
  /// The clock leaders stamp into entries (ms since the epoch); the system
  /// clock when empty. Tests inject a simulated one.
  std::function<std::int64_t()> wall_clock;
  /// Serialize snapshots on threads of their own (tests on CAF's
  /// deterministic scheduler turn this off).
  bool detached_snapshots = true;
};

/// One registered group on this server.
struct hosted_group {
  /// Null while the replica is being restarted from disk, and after it
  /// failed.
  replica_actor replica;
  applier_actor applier;
  cluster::state_machine_ptr machine;
  /// Set once the group failed here (fail-stop): its replica and applier
  /// are stopped for good, nothing is retried, and every request for the
  /// group is answered with `cluster_errc::group_failed` naming this cause.
  caf::error failure;
};

/// The state of the SERVER actor.
///
/// Owns the group registry, routes envelopes between local replicas and peer
/// servers, fans one tick timer out to all replicas, and supervises.
///
/// Batching (DESIGN.md §3): envelopes for a peer node are queued in
/// `outbox` and leave as one CAF message (`std::vector<envelope>`) per
/// node and turn. A turn ends (a) when every replica has answered the tick
/// of the current round, so the heartbeats of all groups led here travel to
/// each node as one message per tick, or (b) outside tick rounds, at the
/// `flush` the server sends itself on queueing the first envelope, i.e.
/// after every message already in its mailbox. Also: a
/// crashed replica is restarted from its durable state, but a replica that
/// stopped on a storage error, and every replica once the storage itself
/// stopped, fail for good (fail-stop, DESIGN.md §3): the server stays up
/// and reports those groups failed in `status`, answers their proposals
/// and reads with `group_failed`, and sends nothing for them any more.
struct server_state {
  static inline const char* name = "server";

  void route(envelope& env);
  /// Queues `env` for its node; schedules a flush unless a tick round is
  /// open.
  void enqueue(envelope&& env);
  /// Sends every non-empty batch of the outbox to its peer.
  void flush_outbox();
  /// A replica answered the tick of `round`.
  void tick_done(std::uint64_t round);
  void on_tick(std::uint64_t generation);
  caf::result<caf::ok_atom> register_group(group_id group,
                                           raft::membership voters,
                                           cluster::state_machine_ptr machine);
  caf::result<caf::ok_atom> unregister_group(group_id group);
  /// Spawns the replica of `group` from `restored`.
  void start_replica(group_id group, raft::persistent_state restored);
  void on_down(const caf::down_msg& msg);
  /// Marks `group` failed with `reason`: stops its replica (which answers
  /// its waiting proposals and reads with the reason) and its applier.
  void fail_group(group_id group, hosted_group& hosted,
                  const caf::error& reason);
  /// The status of a failed group (replica_status::failure set).
  replica_status failed_status(group_id group,
                               const hosted_group& hosted) const;
  /// Stops every child (replicas, appliers, storage).
  void stop_all(const caf::error& reason);
  raft::raft_config raft_config_for(group_id group) const;
  /// The replica of `group`, or an error.
  caf::expected<replica_actor> find(group_id group) const;
  /// What the client path calls with the reply to one call.
  using reply_fn = std::function<void(client_reply)>;
  /// Client path: proposes `command`; followers answer with a leader hint.
  void client_propose(group_id group, std::string command, reply_fn done);
  /// Client path: the replica's status plus the state machine digest.
  caf::result<client_status> client_state(group_id group);
  /// Client path: a query at `level` (read_consistency).
  void client_query(group_id group, std::uint8_t level, std::string request,
                    reply_fn done);
  /// Client path: runs a client's batch of calls; their answers go to
  /// `sink` in batches (answer_outbox).
  void client_calls(std::vector<client_call>& calls, client_sink_actor sink);
  /// Sends every client its queued answers.
  void flush_answers();
  /// Schedules the `flush` that ends this turn, unless one is pending.
  void schedule_flush();
  /// Client path: registers `sink` for the notifications of `owner`.
  caf::result<caf::ok_atom> subscribe(group_id group, std::string owner,
                                      client_sink_actor sink);
  /// Pushes notifications of local appliers to their subscribers.
  void notify(std::vector<client_event>& events);
  /// Calls `done` with a not_leader reply carrying the leader hint of
  /// `replica`.
  void reply_not_leader(reply_fn done, replica_actor replica);
  /// `host:port` of `id`, or empty.
  std::string address_of(node_id id) const;
  /// Node `from` said hello or sent a batch: if no link to it is wired yet
  /// (the transport is still backing off after the node's restart), send
  /// through the connection the peer opened (BASP links are two-way), so a
  /// restarted peer is reached at once, not one backoff later.
  void adopt_sender(node_id from);
  /// Wires (or, for a null handle, drops) the link to `id`, here and in the
  /// storage's copy of the table.
  void set_link(node_id id, peer_actor link);
  /// The link to `id` is gone: drop its queue and tell the replicas
  /// (followers of `id` campaign early).
  void peer_lost(node_id id);

  server_actor::stateful_pointer<server_state> self = nullptr;
  server_config cfg;
  storage_actor storage;
  std::map<group_id, hosted_group> groups;
  std::set<group_id> registering;
  std::map<node_id, peer_actor> peers;
  /// Envelopes waiting for the end of the turn, per peer node.
  std::map<node_id, std::vector<envelope>> outbox;
  /// Answers to batched client calls, per client, until the next flush.
  std::map<caf::actor_addr,
           std::pair<client_sink_actor, std::vector<client_answer>>>
    answer_outbox;
  flush_trigger flush_pending;
  /// The current tick round and how many replicas have yet to answer it.
  std::uint64_t tick_round = 0;
  std::size_t ticks_pending = 0;
  std::uint64_t tick_generation = 0;
  server_extras extras;
  /// Client sinks by (group, owner), in subscription order.
  std::map<std::pair<group_id, std::string>, std::vector<client_sink_actor>>
    subscriptions;
  /// Set once the storage stopped: every group failed, no group can be
  /// registered any more.
  caf::error storage_failure;
};

/// Spawns the server of node `cfg.id` using `storage` (which it stops on
/// exit, and whose failure stops the server).
server_actor::behavior_type
server(server_actor::stateful_pointer<server_state> self, server_config cfg,
       storage_actor storage);

} // namespace ees::actors
