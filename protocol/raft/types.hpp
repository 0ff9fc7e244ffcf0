// The Raft vocabulary: log entries, durable state, membership and messages.
//
// Every type here is a plain value with an `inspect` overload listing all of
// its fields in declaration order, so the actor layer can put it on the wire
// or on disk with CAF's serializers without this header including CAF.
#pragma once

#include "protocol/ids.hpp"
#include "protocol/shared_bytes.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ees::raft {

/// What a log entry carries.
enum class entry_type : std::uint8_t {
  normal = 0, ///< An opaque command for the state machine.
  noop = 1, ///< Appended by every new leader (§5.4.2, thesis §6.4).
  config = 2, ///< A membership change; `data` holds an encoded conf_change.
};

/// One entry of the replicated log (§5.3).
struct log_entry {
  term_t term;
  log_index index;
  entry_type type = entry_type::normal;
  /// Opaque bytes; interpreted only by the state machine (or by the core for
  /// config entries). Shared by the entry's copies.
  shared_bytes data;

  friend bool operator==(const log_entry& a, const log_entry& b) {
    return a.term == b.term && a.index == b.index && a.type == b.type
           && a.data == b.data;
  }
};

template <class Inspector>
auto inspect(Inspector& f, log_entry& x) {
  return f(x.term, x.index, x.type, x.data);
}

/// The state every server must persist before answering RPCs (Figure 2),
/// plus the commit index so a restart need not rediscover it.
struct hard_state {
  term_t current_term;
  node_id voted_for = no_node;
  log_index commit_index;

  friend bool operator==(const hard_state& a, const hard_state& b) {
    return a.current_term == b.current_term && a.voted_for == b.voted_for
           && a.commit_index == b.commit_index;
  }
  friend bool operator!=(const hard_state& a, const hard_state& b) {
    return !(a == b);
  }
};

template <class Inspector>
auto inspect(Inspector& f, hard_state& x) {
  return f(x.current_term, x.voted_for, x.commit_index);
}

/// A group's configuration (§6): voters decide elections and commitment;
/// learners receive the log but neither vote nor count for a quorum.
/// Invariant: `voters` and `learners` are disjoint.
struct membership {
  std::set<node_id> voters;
  std::set<node_id> learners;

  bool contains(node_id id) const {
    return voters.count(id) > 0 || learners.count(id) > 0;
  }
  bool is_voter(node_id id) const {
    return voters.count(id) > 0;
  }

  friend bool operator==(const membership& a, const membership& b) {
    return a.voters == b.voters && a.learners == b.learners;
  }
  friend bool operator!=(const membership& a, const membership& b) {
    return !(a == b);
  }
};

template <class Inspector>
auto inspect(Inspector& f, membership& x) {
  return f(x.voters, x.learners);
}

/// Describes a snapshot: the state machine after applying every entry up to
/// `last_index` (§7), and the configuration in force at that index.
struct snapshot_meta {
  log_index last_index;
  term_t last_term;
  membership config;

  friend bool operator==(const snapshot_meta& a, const snapshot_meta& b) {
    return a.last_index == b.last_index && a.last_term == b.last_term
           && a.config == b.config;
  }
  friend bool operator!=(const snapshot_meta& a, const snapshot_meta& b) {
    return !(a == b);
  }
};

template <class Inspector>
auto inspect(Inspector& f, snapshot_meta& x) {
  return f(x.last_index, x.last_term, x.config);
}

/// The durable state a replica restarts from, as read back from storage.
struct persistent_state {
  hard_state state;
  /// The newest durable snapshot. A new group bootstraps with a snapshot at
  /// index 0 whose `config` holds the initial voters; a joining node starts
  /// with an empty one and learns its membership from the leader.
  snapshot_meta snapshot;
  /// Durable entries after the snapshot, contiguous.
  std::vector<log_entry> entries;

  friend bool operator==(const persistent_state& a, const persistent_state& b) {
    return a.state == b.state && a.snapshot == b.snapshot
           && a.entries == b.entries;
  }
};

/// Encodes a whole membership as the data of a config entry. Config entries
/// carry the complete new membership, not a delta, so any replica can rebuild
/// its configuration from the newest config entry or snapshot alone.
std::string encode_membership(const membership& m);
/// Decodes config entry data; nullopt when malformed.
std::optional<membership> decode_membership(std::string_view data);

/// One-server-at-a-time membership change (thesis §4.1, §4.2.1).
struct conf_change {
  enum class kind : std::uint8_t {
    add_learner = 0, ///< Adds a non-voting member that starts catching up.
    promote_learner = 1, ///< Turns a caught-up learner into a voter.
    remove_node = 2, ///< Removes a voter or learner.
  };
  kind op = kind::add_learner;
  node_id node;

  friend bool operator==(const conf_change& a, const conf_change& b) {
    return a.op == b.op && a.node == b.node;
  }
};

template <class Inspector>
auto inspect(Inspector& f, conf_change& x) {
  return f(x.op, x.node);
}

/// Applies `cc` to `m`; returns false (and leaves `m` unchanged) when the
/// change makes no sense for `m`, e.g. promoting a node that is not a learner.
bool apply_conf_change(membership& m, const conf_change& cc);

/// The kinds of Raft RPCs. Requests and responses are separate kinds; their
/// fields are interpreted per kind as documented on `message`.
enum class message_type : std::uint8_t {
  pre_vote_request = 0, ///< Thesis §9.6: would you vote for me in `term`?
  pre_vote_response = 1, ///< Answer; never changes the voter's state.
  vote_request = 2, ///< RequestVote (§5.2).
  vote_response = 3, ///< RequestVote reply; sent after the vote is durable.
  append_request = 4, ///< AppendEntries with entries (§5.3).
  append_response = 5, ///< AppendEntries reply; sent after entries are durable.
  heartbeat_request
  = 6, ///< Empty AppendEntries (§5.2), also carries ReadIndex context.
  heartbeat_response = 7, ///< Heartbeat reply.
  install_snapshot = 8, ///< InstallSnapshot metadata (§7); data flows outside.
  timeout_now = 9, ///< Leader transfer: campaign at once (thesis §3.10).
};

/// Returns the kind's name, e.g. "append_request".
const char* to_string(message_type t);

/// A Raft RPC between two replicas of one group.
///
/// Field use per kind:
/// - vote/pre-vote request: `index`/`log_term` = candidate's last log entry;
///   `context` = `forced_campaign` marks a leader transfer (thesis §3.10) that
///   voters must not refuse because they heard from a leader recently.
/// - vote/pre-vote response: `reject` = vote denied.
/// - append request: `index`/`log_term` = entry preceding `entries`;
///   `commit` = leader's commit index.
/// - append response: success → `index` = last index now matching the leader;
///   reject → `index` = rejected `index`, `reject_hint`/`log_term` = where the
///   follower suggests probing next.
/// - heartbeat: `commit` = min(leader commit, follower match); `context` =
///   ReadIndex round, echoed in the response.
/// - install_snapshot: `snapshot` (unused by every other kind, and left
///   empty there); the response is an append_response.
struct message {
  message_type type = message_type::append_request;
  node_id from;
  node_id to;
  term_t term;
  term_t log_term;
  log_index index;
  std::vector<log_entry> entries;
  log_index commit;
  bool reject = false;
  log_index reject_hint;
  std::uint64_t context = 0;
  snapshot_meta snapshot;

  friend bool operator==(const message& a, const message& b) {
    return a.type == b.type && a.from == b.from && a.to == b.to
           && a.term == b.term && a.log_term == b.log_term && a.index == b.index
           && a.entries == b.entries && a.commit == b.commit
           && a.reject == b.reject && a.reject_hint == b.reject_hint
           && a.context == b.context && a.snapshot == b.snapshot;
  }
};

template <class Inspector>
auto inspect(Inspector& f, message& x) {
  return f(x.type, x.from, x.to, x.term, x.log_term, x.index, x.entries,
           x.commit, x.reject, x.reject_hint, x.context, x.snapshot);
}

/// `message::context` of a vote request sent because of timeout_now.
inline constexpr std::uint64_t forced_campaign = 1;

/// A one-line, deterministic rendering of `m` for traces and golden files.
std::string describe(const message& m);

/// The role a replica currently plays (§5.1, thesis §9.6 for pre-candidate).
enum class role : std::uint8_t {
  follower = 0,
  pre_candidate = 1,
  candidate = 2,
  leader = 3,
};

const char* to_string(role r);

/// Volatile facts observers care about; reported in `ready` when they change.
struct soft_state {
  role current_role = role::follower;
  node_id leader = no_node;
  term_t term;

  friend bool operator==(const soft_state& a, const soft_state& b) {
    return a.current_role == b.current_role && a.leader == b.leader
           && a.term == b.term;
  }
  friend bool operator!=(const soft_state& a, const soft_state& b) {
    return !(a == b);
  }
};

/// A confirmed linearizable read (thesis §6.4): once the state machine has
/// applied `index`, the read with `context` may be served.
struct read_state {
  log_index index;
  std::uint64_t context = 0;

  friend bool operator==(const read_state& a, const read_state& b) {
    return a.index == b.index && a.context == b.context;
  }
};

} // namespace ees::raft
