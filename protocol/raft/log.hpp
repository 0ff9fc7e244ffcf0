// The replica's in-memory view of its log: a snapshot point plus the entries
// after it.
#pragma once

#include "protocol/raft/types.hpp"

#include <deque>
#include <optional>
#include <vector>

namespace ees::raft {

/// The log as the core sees it (§5.3). Entries before `snapshot_index()` are
/// compacted (§7). The log tracks which suffix has not yet been handed out for
/// persistence and which prefix is known durable.
///
/// Invariants: entries are contiguous from `snapshot_index() + 1`; terms never
/// decrease along the log; `durable_index() <= last_index()` and
/// `unstable_from() <= last_index() + 1`.
class raft_log {
public:
  raft_log() = default;

  /// Rebuilds the log from durable state: everything given is durable.
  raft_log(const snapshot_meta& snap, std::vector<log_entry> entries);

  log_index snapshot_index() const noexcept {
    return snapshot_.last_index;
  }
  term_t snapshot_term() const noexcept {
    return snapshot_.last_term;
  }
  const snapshot_meta& snapshot() const noexcept {
    return snapshot_;
  }
  log_index first_index() const noexcept {
    return snapshot_.last_index + 1;
  }
  log_index last_index() const noexcept {
    return snapshot_.last_index + entries_.size();
  }
  term_t last_term() const noexcept {
    return term(last_index()).value_or(term_t{});
  }

  /// Term of the entry at `i`; nullopt when `i` is compacted (below the
  /// snapshot index) or beyond the last index.
  std::optional<term_t> term(log_index i) const noexcept;

  /// True if the entry at `i` exists with term `t` (§5.3 consistency check).
  bool match_term(log_index i, term_t t) const noexcept {
    auto x = term(i);
    return x && *x == t;
  }

  /// §5.4.1: is a log ending at (`index`, `t`) at least as up to date as ours?
  bool is_up_to_date(log_index index, term_t t) const noexcept {
    return t > last_term() || (t == last_term() && index >= last_index());
  }

  /// The entry at `i`. @pre first_index() <= i <= last_index().
  const log_entry& at(log_index i) const;

  /// Entries in [lo, hi], capped at `max_count` entries and `max_bytes`
  /// payload bytes (at least one entry when lo <= hi).
  std::vector<log_entry> slice(log_index lo, log_index hi,
                               std::size_t max_count = SIZE_MAX,
                               std::size_t max_bytes = SIZE_MAX) const;

  /// Appends `e` at last_index() + 1. @pre e.index == last_index() + 1 and
  /// e.term >= last_term().
  void append(log_entry e);

  /// Appends `entries` (contiguous), first removing the conflicting suffix
  /// (§5.3: "if an existing entry conflicts with a new one, delete it and all
  /// that follow"). Entries already present with equal terms are skipped.
  /// Returns the index of the first entry that was written, or nullopt when
  /// nothing changed. @pre entries.front().index <= last_index() + 1.
  std::optional<log_index> append_or_replace(const std::vector<log_entry>& es);

  /// The largest index <= `i` whose term is <= `t`; used for fast log
  /// back-tracking on a rejected append (etcd's findConflictByTerm).
  log_index find_conflict_by_term(log_index i, term_t t) const noexcept;

  /// Drops entries up to `meta.last_index`, which must be in the log.
  void compact(const snapshot_meta& meta);

  /// Replaces the whole log by a snapshot received from the leader (§7).
  void restore(const snapshot_meta& meta);

  /// First index not yet handed out for persistence.
  log_index unstable_from() const noexcept {
    return unstable_from_;
  }
  /// Hands out the entries not yet given to storage and marks them in flight.
  std::vector<log_entry> take_unstable();

  /// Last index of the durable prefix the core can rely on.
  log_index durable_index() const noexcept {
    return durable_index_;
  }
  /// Storage reports durable the entries up to (`i`, `t`) of a write handed
  /// out by `take_unstable` (usually its last entry); storage completes
  /// writes in the order they were taken.
  /// Entries count as durable only up to where no later write in flight
  /// rewrites them: an entry replaced and then rewritten with the same
  /// (index, term) must not be trusted on the first write's ack (ABA).
  void stable_to(log_index i, term_t t) noexcept;
  /// Storage reports a snapshot at `i` durable (the current one or an older
  /// one it replaced).
  void snapshot_stable(log_index i) noexcept;

private:
  /// A batch handed out by take_unstable and not yet acknowledged.
  struct write {
    log_index first;
    log_index last;
    term_t last_term;
  };

  snapshot_meta snapshot_;
  std::deque<write> writes_; // oldest first
  std::vector<log_entry> entries_;
  log_index unstable_from_{1};
  log_index durable_index_;
};

} // namespace ees::raft
