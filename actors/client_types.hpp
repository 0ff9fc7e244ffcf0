// Wire types of the client path: what a server answers to requests from
// other CAF nodes (eesctl, tests), and the node-level extras a host hands to
// its server.
#pragma once

#include "protocol/ids.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ees::actors {

/// The answer to a client proposal.
struct client_reply {
  /// True when the command was committed and applied; `value` holds the
  /// state machine's answer.
  bool ok = false;
  std::string value;
  /// The error when `ok` is false, e.g. "not_leader".
  std::string error;
  /// The leader this server knows of (0 when unknown): a hint for retries.
  node_id leader;
  /// `host:port` of `leader` when this server knows it.
  std::string leader_address;
  /// Queries: the applied index the answer reflects.
  log_index applied;

  friend bool operator==(const client_reply& a, const client_reply& b) {
    return a.ok == b.ok && a.value == b.value && a.error == b.error
           && a.leader == b.leader && a.leader_address == b.leader_address
           && a.applied == b.applied;
  }
};

template <class Inspector>
auto inspect(Inspector& f, client_reply& x) {
  return f(x.ok, x.value, x.error, x.leader, x.leader_address, x.applied);
}

/// One call of the batch a client sends a server in one message
/// (atom::client, atom::calls): a proposal, or a query at `level`.
struct client_call {
  /// The client's number for this attempt, echoed in the answer.
  std::uint64_t id = 0;
  group_id group;
  bool is_query = false;
  /// Queries: the read_consistency, as its number.
  std::uint8_t level = 0;
  /// The command or the query.
  std::string payload;

  friend bool operator==(const client_call& a, const client_call& b) {
    return a.id == b.id && a.group == b.group && a.is_query == b.is_query
           && a.level == b.level && a.payload == b.payload;
  }
};

template <class Inspector>
auto inspect(Inspector& f, client_call& x) {
  return f(x.id, x.group, x.is_query, x.level, x.payload);
}

/// The answer to the client_call `id`; a server sends the answers it has
/// to one client as one message (atom::answers) per turn.
struct client_answer {
  std::uint64_t id = 0;
  client_reply reply;

  friend bool operator==(const client_answer& a, const client_answer& b) {
    return a.id == b.id && a.reply == b.reply;
  }
};

template <class Inspector>
auto inspect(Inspector& f, client_answer& x) {
  return f(x.id, x.reply);
}

/// How fresh the state a query reads must be (DESIGN.md §4).
enum class read_consistency : std::uint8_t {
  /// ReadIndex on the leader (thesis §6.4): reflects every write
  /// acknowledged before the query was sent.
  linearizable = 0,
  /// The leader's applied state without a quorum check: may miss writes of
  /// a newer leader during a partition.
  leader = 1,
  /// Any replica's applied state; the answer carries its applied index.
  stale = 2,
};

/// A notification pushed to a client subscribed as `owner` of `group`.
struct client_event {
  group_id group;
  std::string owner;
  std::string payload;

  friend bool operator==(const client_event& a, const client_event& b) {
    return a.group == b.group && a.owner == b.owner && a.payload == b.payload;
  }
};

template <class Inspector>
auto inspect(Inspector& f, client_event& x) {
  return f(x.group, x.owner, x.payload);
}

/// The status of one replica as seen by a client.
struct client_status {
  group_id group;
  node_id node;
  /// raft::role as its number (0 follower, 1 pre-candidate, 2 candidate,
  /// 3 leader).
  std::uint8_t role = 0;
  term_t term;
  node_id leader;
  std::string leader_address;
  log_index commit;
  log_index applied;
  log_index last_index;
  /// replica_status::snapshot_index and ::snapshots_installed.
  log_index snapshot_index;
  std::uint64_t snapshots_installed = 0;
  /// The state machine's digest (empty when the host registered none).
  std::string state;
  /// Empty while the replica runs; else why it stopped for good
  /// (replica_status::failure).
  std::string failure;

  friend bool operator==(const client_status& a, const client_status& b) {
    return a.group == b.group && a.node == b.node && a.role == b.role
           && a.term == b.term && a.leader == b.leader
           && a.leader_address == b.leader_address && a.commit == b.commit
           && a.applied == b.applied && a.last_index == b.last_index
           && a.snapshot_index == b.snapshot_index
           && a.snapshots_installed == b.snapshots_installed
           && a.state == b.state && a.failure == b.failure;
  }
};

template <class Inspector>
auto inspect(Inspector& f, client_status& x) {
  return f(x.group, x.node, x.role, x.term, x.leader, x.leader_address,
           x.commit, x.applied, x.last_index, x.snapshot_index,
           x.snapshots_installed, x.state, x.failure);
}

/// Node-level settings a host hands to its server after start (local only).
struct server_extras {
  /// `host:port` of every node, for leader hints.
  std::map<node_id, std::string> addresses;
  /// The port of this node's direct-link listener (actors/direct_link.hpp),
  /// told to peers that ask; 0 for none.
  std::uint16_t direct_port = 0;
};

} // namespace ees::actors
