// Configuration of one replica's Raft core.
#pragma once

#include "protocol/ids.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace ees::raft {

/// Tunables of the core. Time is counted in ticks; the embedding decides how
/// long a tick is (e.g. `heartbeat-ms`).
struct raft_config {
  /// This replica's node. Must not be `no_node`.
  node_id id;
  /// Minimum election timeout in ticks; the actual timeout of each term is
  /// drawn from [election_ticks, 2 * election_ticks) (§5.2).
  std::uint32_t election_ticks = 10;
  /// Ticks between leader heartbeats; must be < election_ticks.
  std::uint32_t heartbeat_ticks = 1;
  /// Seed of the election-jitter generator. Same seed, same decisions.
  std::uint64_t seed = 0;
  /// Append requests in flight per follower in the replicate state.
  std::size_t max_inflight = 256;
  /// Upper bound on entries batched into one append request.
  std::size_t max_entries_per_append = 1024;
  /// Upper bound on payload bytes in one append request (at least one entry is
  /// always sent).
  std::size_t max_bytes_per_append = 1 << 20;
  /// Thesis §9.6: ask for votes without bumping the term first.
  bool pre_vote = true;
  /// Thesis §6.2: a leader that has not heard from a majority within an
  /// election timeout steps down; followers that heard from a leader within
  /// the minimum election timeout ignore vote requests (§4.2.3).
  bool check_quorum = true;
  /// When a leader's commit index advances, tell every follower at once with
  /// an append that may carry no entries (etcd raft's behaviour). Off, the
  /// new commit index rides on the next append that carries entries, or on
  /// the next heartbeat (at most `heartbeat_ticks` later). Raft needs the
  /// followers' commit index only for their own applying (§5.3: "the leader
  /// keeps track of the highest index it knows to be committed, and it
  /// includes that index in future AppendEntries RPCs"); the leader answers
  /// clients from its own apply either way. Off saves, per commit and
  /// follower, one request, one response and one commit-index write when no
  /// entry follows soon. A committed membership change is always told at
  /// once.
  bool broadcast_commit = true;
};

/// Checks `cfg`. Returns an empty string when valid, otherwise a message that
/// names the offending field.
std::string validate(const raft_config& cfg);

} // namespace ees::raft
