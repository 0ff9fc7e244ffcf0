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
  caf::reacts_to<envelope>>;

/// The STORAGE actor interface: the durable state of all groups of a process.
using storage_actor = caf::typed_actor<
  // Records that this process hosts the group, bootstraps it with the initial
  // membership when it has no durable state yet, and returns that state.
  caf::replies_to<atom::register_, group_id,
                  raft::membership>::with<raft::persistent_state>,
  // Returns the durable state a replica of the group restarts from.
  caf::replies_to<atom::load, group_id>::with<raft::persistent_state>,
  // Queues one ready's write; replies once a synced batch holding it is
  // durable, or with the error that stopped the storage (fail-stop).
  caf::replies_to<atom::persist, storage::group_write>::with<atom::persisted>,
  // Writes every queued persist as one batch (sent to itself).
  caf::reacts_to<atom::flush>,
  // Deletes every durable record of the group.
  caf::replies_to<atom::unregister, group_id>::with<caf::ok_atom>>;

/// The APPLIER actor interface: one group's state machine on this node.
using applier_actor = caf::typed_actor<
  // Applies committed entries in index order (skipping those applied
  // already) and returns the state machine's answers.
  caf::replies_to<atom::apply,
                  std::vector<raft::log_entry>>::with<applied_batch>,
  // Reports that the local replica became leader of `term` (true) or
  // stopped leading (false).
  caf::reacts_to<atom::leadership, bool, term_t>>;

/// The REPLICA actor interface: one local member of one Raft group.
using replica_actor = caf::typed_actor<
  // Advances the replica's logical clock by one tick.
  caf::reacts_to<atom::tick>,
  // Delivers a Raft message from a peer replica of the same group.
  caf::reacts_to<envelope>,
  // Proposes a command; replies with the state machine's answer once it is
  // applied, or with an error (not_leader, proposal_dropped).
  caf::replies_to<atom::propose, std::string>::with<std::string>,
  // Linearizable read (ReadIndex, thesis §6.4): replies with the read index
  // once the local state machine applied it.
  caf::replies_to<atom::read>::with<log_index>,
  // Returns the replica's role, term, leader and indexes.
  caf::replies_to<atom::status>::with<replica_status>>;

/// The SERVER actor interface: the RaftServer of one process.
using server_actor = peer_actor::extend<
  // Fans one tick out to every replica; stale generations are ignored.
  caf::reacts_to<atom::tick, std::uint64_t>,
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
  caf::replies_to<atom::replica, group_id>::with<replica_actor>>;

} // namespace ees::actors
