// CAF type IDs and atoms of the actor layer (CAF 0.17.6 type ID block).
//
// Register the block with `cfg.add_message_types<caf::id_block::ees>()` so
// that messages can cross process boundaries. Local-only types (state
// machines, storage batches, restored state) are whitelisted below instead:
// they never leave the process.
#pragma once

#include "actors/client_types.hpp"
#include "actors/envelope.hpp"
#include "actors/snapshot_types.hpp"
#include "ees/cluster/state_machine.hpp"
#include "protocol/ids.hpp"
#include "protocol/raft/types.hpp"
#include "storage/log_store.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

#include <vector>

CAF_BEGIN_TYPE_ID_BLOCK(ees, caf::first_custom_type_id)

CAF_ADD_TYPE_ID(ees, (ees::node_id))
CAF_ADD_TYPE_ID(ees, (ees::group_id))
CAF_ADD_TYPE_ID(ees, (ees::term_t))
CAF_ADD_TYPE_ID(ees, (ees::log_index))
CAF_ADD_TYPE_ID(ees, (ees::raft::log_entry))
CAF_ADD_TYPE_ID(ees, (std::vector<ees::raft::log_entry>))
CAF_ADD_TYPE_ID(ees, (ees::raft::membership))
CAF_ADD_TYPE_ID(ees, (ees::raft::snapshot_meta))
CAF_ADD_TYPE_ID(ees, (ees::raft::message))
CAF_ADD_TYPE_ID(ees, (ees::actors::envelope))
CAF_ADD_TYPE_ID(ees, (std::vector<ees::actors::envelope>))
CAF_ADD_TYPE_ID(ees, (ees::actors::apply_result))
CAF_ADD_TYPE_ID(ees, (ees::actors::applied_batch))
CAF_ADD_TYPE_ID(ees, (ees::actors::replica_status))
CAF_ADD_TYPE_ID(ees, (ees::actors::client_reply))
CAF_ADD_TYPE_ID(ees, (ees::actors::client_status))
CAF_ADD_TYPE_ID(ees, (ees::actors::client_event))
CAF_ADD_TYPE_ID(ees, (std::vector<ees::actors::client_event>))

// Atoms: at most 10 characters each.
CAF_ADD_ATOM(ees, ees::atom, tick, "tick")
CAF_ADD_ATOM(ees, ees::atom, persist, "persist")
CAF_ADD_ATOM(ees, ees::atom, persisted, "persisted")
CAF_ADD_ATOM(ees, ees::atom, flush, "flush")
CAF_ADD_ATOM(ees, ees::atom, load, "load")
CAF_ADD_ATOM(ees, ees::atom, propose, "propose")
CAF_ADD_ATOM(ees, ees::atom, read, "read")
CAF_ADD_ATOM(ees, ees::atom, apply, "apply")
CAF_ADD_ATOM(ees, ees::atom, leadership, "leadership")
CAF_ADD_ATOM(ees, ees::atom, status, "status")
CAF_ADD_ATOM(ees, ees::atom, register_, "register")
CAF_ADD_ATOM(ees, ees::atom, unregister, "unregister")
CAF_ADD_ATOM(ees, ees::atom, connect_peer, "conn_peer")
CAF_ADD_ATOM(ees, ees::atom, replica, "replica")
// Snapshots and log compaction.
CAF_ADD_ATOM(ees, ees::atom, snapshot, "snapshot")
CAF_ADD_ATOM(ees, ees::atom, restore, "restore")
CAF_ADD_ATOM(ees, ees::atom, snap_save, "snap_save")
CAF_ADD_ATOM(ees, ees::atom, snap_read, "snap_read")
CAF_ADD_ATOM(ees, ees::atom, compact, "compact")
CAF_ADD_ATOM(ees, ees::atom, threshold, "threshold")
CAF_ADD_ATOM(ees, ees::atom, client, "client")
CAF_ADD_ATOM(ees, ees::atom, configure, "configure")
CAF_ADD_ATOM(ees, ees::atom, retry, "retry")
// Client protocol: queries, pushed notifications, digests.
CAF_ADD_ATOM(ees, ees::atom, query, "query")
CAF_ADD_ATOM(ees, ees::atom, subscribe, "subscribe")
CAF_ADD_ATOM(ees, ees::atom, notify, "notify")
CAF_ADD_ATOM(ees, ees::atom, event, "event")
CAF_ADD_ATOM(ees, ees::atom, digest, "digest")
CAF_ADD_ATOM(ees, ees::atom, peer_down, "peer_down")
CAF_ADD_ATOM(ees, ees::atom, run, "run")
CAF_ADD_ATOM(ees, ees::atom, calls, "calls")
CAF_ADD_ATOM(ees, ees::atom, answers, "answers")

namespace ees::actors {

/// What a client registers to receive pushed notifications (lock grants,
/// lock loss) of the owners it subscribed as. Declared here, not in
/// interfaces.hpp, because its handle crosses process boundaries.
/// It also receives the answers to the calls the client batched.
using client_sink_actor
  = caf::typed_actor<caf::reacts_to<atom::event, client_event>,
                     caf::reacts_to<atom::answers, std::vector<client_answer>>>;

} // namespace ees::actors

CAF_ADD_TYPE_ID(ees, (ees::actors::client_sink_actor))
// Appended last: the ids above stay what older nodes expect.
CAF_ADD_ATOM(ees, ees::atom, hello, "hello")
CAF_ADD_TYPE_ID(ees, (ees::actors::client_call))
CAF_ADD_TYPE_ID(ees, (std::vector<ees::actors::client_call>))
CAF_ADD_TYPE_ID(ees, (ees::actors::client_answer))
CAF_ADD_TYPE_ID(ees, (std::vector<ees::actors::client_answer>))
CAF_ADD_ATOM(ees, ees::atom, router, "router")
CAF_ADD_ATOM(ees, ees::atom, direct_port, "dport")

CAF_END_TYPE_ID_BLOCK(ees)

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ees::cluster::state_machine_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ees::storage::group_write)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ees::raft::persistent_state)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ees::actors::snapshot_start)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ees::actors::server_extras)
