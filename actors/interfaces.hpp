// Every typed actor interface of the runtime (DESIGN.md §3, style Rule 2).
#pragma once

#include "actors/envelope.hpp"
#include "actors/type_ids.hpp"

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ees::actors {

/// The PEER actor interface: what a server offers to other servers.
using peer_actor = caf::typed_actor<
  // Delivers a Raft message; routed to the replica of `env.group` when
  // `env.msg.to` is this node, otherwise forwarded to that node.
  caf::reacts_to<envelope>,
  // Delivers a batch: the Raft messages of many groups that one server
  // produced for this node in one turn, routed one by one as above.
  caf::reacts_to<std::vector<envelope>>,
  // Node `id` connected to this one (its first message on a new link): a
  // server with no link to `id` of its own yet (its transport still backing
  // off after `id` went down) sends to `id` through this connection.
  caf::reacts_to<atom::hello, node_id>>;

/// Where an applier delivers the notifications of its state machine (the
/// local server, which pushes them to subscribed clients).
using notify_actor
  = caf::typed_actor<caf::reacts_to<atom::notify, std::vector<client_event>>>;

/// The STORAGE actor interface: the durable state of all groups of a process.
using storage_actor = caf::typed_actor<
  // Records that this process hosts the group, bootstraps it with the initial
  // membership when it has no durable state yet, and returns that state.
  caf::replies_to<atom::register_, group_id,
                  raft::membership>::with<raft::persistent_state>,
  // Returns the durable state a replica of the group restarts from.
  caf::replies_to<atom::load, group_id>::with<raft::persistent_state>,
  // Queues one ready's write and the messages of that ready that may leave
  // only once it is durable (votes and append acknowledgements, style Rule
  // 7). Once a synced batch holding the write is durable, the storage sends
  // those messages itself, as the router (below): no turn of the replica
  // lies between the fsync and the send, as in etcd-io/raft's asynchronous
  // storage writes. Then it replies; on a failed write it replies with the
  // error that stopped it (fail-stop) and sends nothing.
  caf::replies_to<atom::persist, storage::group_write,
                  std::vector<envelope>>::with<atom::persisted>,
  // The local server: the storage sends as it (the peer answers the server,
  // which adopts the sender of what it receives) and hands it the messages
  // for a node it has no link to.
  caf::reacts_to<atom::router, peer_actor>,
  // The server's link to node `id` changed (a null handle: lost).
  caf::reacts_to<atom::connect_peer, node_id, peer_actor>,
  // Writes every queued persist as one batch (sent to itself).
  caf::reacts_to<atom::flush>,
  // Deletes every durable record of the group.
  caf::replies_to<atom::unregister, group_id>::with<caf::ok_atom>>;

/// The STORAGE actor with snapshot files (§7). The storage actor implements
/// it; replicas reach it by `caf::actor_cast` of their `storage_actor`
/// handle (so storages that only implement `storage_actor`, like test stubs,
/// keep working: the requests fail and the replica runs without snapshots).
using snapshot_storage_actor = storage_actor::extend<
  // Returns the snapshot threshold of the process and the newest snapshot
  // file of the group a replica restarting from a log whose snapshot is
  // `meta` and whose durable commit index is `commit` can restore from (one
  // with meta.last_index <= index <= max(meta.last_index, commit)).
  // Errors when `meta.last_index > 0` and no such file exists.
  caf::replies_to<atom::restore, group_id, raft::snapshot_meta,
                  log_index>::with<snapshot_start>,
  // Durably saves a snapshot file of the group (atomic write, fsync, rename).
  caf::replies_to<atom::snap_save, group_id, raft::snapshot_meta,
                  std::string>::with<caf::ok_atom>,
  // Returns the data of the group's snapshot file with exactly `meta`.
  caf::replies_to<atom::snap_read, group_id,
                  raft::snapshot_meta>::with<std::string>,
  // Log compaction: records `meta` as the group's snapshot in the log store
  // and drops the entries it covers. @pre its snapshot file is saved.
  caf::replies_to<atom::compact, group_id,
                  raft::snapshot_meta>::with<caf::ok_atom>>;

/// The snapshot file writer of a storage actor: writes one file at a time
/// (a save prunes older files and leftover temporaries, so saves must not
/// overlap), on a thread of its own so that log writes never wait for a
/// snapshot file and its fsync.
using snapshot_writer_actor = caf::typed_actor<
  caf::replies_to<atom::snap_save, group_id, raft::snapshot_meta,
                  std::string>::with<caf::ok_atom>>;

/// The APPLIER actor interface: one group's state machine on this node.
using applier_actor = caf::typed_actor<
  // Applies committed entries in index order (skipping those applied
  // already) and returns the state machine's answers.
  caf::replies_to<atom::apply,
                  std::vector<raft::log_entry>>::with<applied_batch>,
  // Reports that the local replica became leader of `term` (true) or
  // stopped leading (false).
  caf::reacts_to<atom::leadership, bool, term_t>,
  // Takes a snapshot of the state machine: returns the index of the last
  // applied entry it covers and the state bytes.
  caf::replies_to<atom::snapshot>::with<log_index, std::string>,
  // Replaces the state machine's state with a snapshot's data, unless the
  // applier applied the snapshot's last index already; returns the applied
  // index.
  caf::replies_to<atom::restore, raft::snapshot_meta,
                  std::string>::with<log_index>,
  // Answers a read-only request from the applied state; returns the applied
  // index it reflects and the answer.
  caf::replies_to<atom::query, std::string>::with<log_index, std::string>,
  // Returns the applied index and the state machine's digest.
  caf::replies_to<atom::digest>::with<log_index, std::string>>;

/// The REPLICA actor interface: one local member of one Raft group.
using replica_actor = caf::typed_actor<
  // Advances the replica's logical clock by one tick; replies once the
  // messages of that tick are sent to the router (so the server knows when
  // it has the heartbeats of every group of this tick).
  caf::replies_to<atom::tick>::with<caf::ok_atom>,
  // Delivers a Raft message from a peer replica of the same group.
  caf::reacts_to<envelope>,
  // Proposes a command; replies with the state machine's answer once it is
  // applied, or with an error (not_leader, proposal_dropped, and
  // invalid_command for an empty one). The leader stamps its clock into
  // the entry (entry_stamp.hpp).
  caf::replies_to<atom::propose, std::string>::with<std::string>,
  // Linearizable read (ReadIndex, thesis §6.4): replies with the read index
  // once the local state machine applied it.
  caf::replies_to<atom::read>::with<log_index>,
  // Returns the replica's role, term, leader and indexes.
  caf::replies_to<atom::status>::with<replica_status>,
  // Overrides the snapshot threshold of this group (0: never snapshot).
  caf::reacts_to<atom::threshold, std::uint64_t>,
  // Sent to itself: flushes the proposals of one batch together.
  caf::reacts_to<atom::flush>,
  // The connection to node `id` was lost: a follower of `id` campaigns at
  // once instead of waiting out its election timeout.
  caf::reacts_to<atom::peer_down, node_id>>;

/// The SERVER actor interface: the RaftServer of one process.
using server_actor = peer_actor::extend<
  // Pushes the notifications of a local applier to subscribed clients.
  caf::reacts_to<atom::notify, std::vector<client_event>>,
  // Fans one tick out to every replica; stale generations are ignored.
  caf::reacts_to<atom::tick, std::uint64_t>,
  // Sends every peer node its batch of queued envelopes (sent to itself).
  caf::reacts_to<atom::flush>,
  // Sets the server actor through which node `id` is reached.
  caf::reacts_to<atom::connect_peer, node_id, peer_actor>,
  // Starts a replica of the group with `voters` as initial membership (when
  // new) or from disk (when known), applying to the given state machine.
  caf::replies_to<atom::register_, group_id, raft::membership,
                  cluster::state_machine_ptr>::with<caf::ok_atom>,
  // Stops the group's replica and applier and deletes its durable state.
  caf::replies_to<atom::unregister, group_id>::with<caf::ok_atom>,
  // Proposes a command to the local replica of the group.
  caf::replies_to<atom::propose, group_id, std::string>::with<std::string>,
  // Linearizable read through the local replica of the group.
  caf::replies_to<atom::read, group_id>::with<log_index>,
  // Returns the status of the local replica of the group.
  caf::replies_to<atom::status, group_id>::with<replica_status>,
  // Returns the handle of the local replica of the group (supervision tests).
  caf::replies_to<atom::replica, group_id>::with<replica_actor>,
  // Client path (other CAF nodes): proposes a command to the local replica;
  // a follower answers with ok = false and a leader hint.
  caf::replies_to<atom::client, atom::propose, group_id,
                  std::string>::with<client_reply>,
  // Client path: proposals and queries batched by a client; the answers go
  // to the sink as std::vector<client_answer>, those ready in one turn of
  // this server in one message.
  caf::reacts_to<atom::client, atom::calls, std::vector<client_call>,
                 client_sink_actor>,
  // Client path: the local replica's status plus the state machine digest.
  caf::replies_to<atom::client, atom::status, group_id>::with<client_status>,
  // Client path: a read-only query at a read_consistency (as its number);
  // a follower asked for a linearizable or leader read answers with
  // ok = false and a leader hint.
  caf::replies_to<atom::client, atom::query, group_id, std::uint8_t,
                  std::string>::with<client_reply>,
  // Client path: pushes the group's notifications for `owner` to the sink
  // until the sink terminates.
  caf::replies_to<atom::client, atom::subscribe, group_id, std::string,
                  client_sink_actor>::with<caf::ok_atom>,
  // Sets the node-level extras (addresses for hints, state digests).
  caf::reacts_to<atom::configure, server_extras>,
  // The port of this node's direct-link listener, 0 for none (a peer's
  // transport asks before it dials; actors/direct_link.hpp).
  caf::replies_to<atom::direct_port>::with<std::uint16_t>>;

} // namespace ees::actors
