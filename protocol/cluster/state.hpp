// The ClusterStateMachine (DESIGN.md §4): locks with fencing tokens and
// leases in replicated time, the equipment routing table, key assignments
// and exactly-once retries, as a pure deterministic function of the log.
//
// Determinism: apply() never reads a clock. Time is the leader's stamp on
// each entry, folded into a replicated clock that never goes back; every
// container that reaches an answer, a notification, the snapshot or the
// digest is ordered. Two replicas that apply the same entries hold the same
// state, byte for byte (§5.3 State Machine Safety makes them the same
// entries).
#pragma once

#include "protocol/cluster/answer_index.hpp"
#include "protocol/cluster/command.hpp"
#include "protocol/cluster/cow_map.hpp"
#include "protocol/cluster/shared_fifo.hpp"
#include "protocol/ids.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ees::cluster_sm {

/// A message the runtime pushes to the client that registered as `owner`.
struct notification {
  std::string owner;
  /// JSON object text, e.g. {"event":"granted","lock":..,"token":..,
  /// "expires_ms":..}, {"event":"lost",..,"reason":"expired"} or
  /// {"event":"wait_expired",..}.
  std::string payload;

  friend bool operator==(const notification& a, const notification& b) {
    return a.owner == b.owner && a.payload == b.payload;
  }
};

/// The default capacity of the exactly-once table.
inline constexpr std::size_t default_dedup_capacity = 10'000;

/// A lease on a lock: the holder's grant, or a waiter's place in the queue.
struct lease {
  std::string owner;
  /// The fencing token: the index of the entry that granted the lock, so it
  /// strictly increases per lock. 0 for a waiter.
  std::uint64_t token = 0;
  /// The time to live the owner asked for; a renewal restarts it.
  std::int64_t ttl_ms = 0;
  /// Replicated time at which the lease ends: expired once now >= expires_ms.
  std::int64_t expires_ms = 0;
};

/// One held lock and its FIFO queue.
/// Invariant: `waiters` holds distinct owners, none of them the holder's.
/// A lock nobody holds has no entry: its first waiter is granted at once.
struct lock_entry {
  lease holder;
  std::vector<lease> waiters;
};

/// Names one partition of an application's group: the unit the routing
/// table maps equipment ids to.
struct partition_ref {
  std::string app;
  std::string group;
  std::string partition;

  friend bool operator<(const partition_ref& a, const partition_ref& b) {
    return std::tie(a.app, a.group, a.partition)
           < std::tie(b.app, b.group, b.partition);
  }
  friend bool operator==(const partition_ref& a, const partition_ref& b) {
    return std::tie(a.app, a.group, a.partition)
           == std::tie(b.app, b.group, b.partition);
  }
};

/// Spreads partitions over the shards of a cow_map.
struct partition_ref_hash {
  std::size_t operator()(const partition_ref& p) const {
    std::hash<std::string> h;
    return h(p.app) ^ (h(p.group) * 31) ^ (h(p.partition) * 961);
  }
};

namespace detail {

/// Everything replicated. snapshot() writes these fields but the derived
/// `equipment`, which restore() rebuilds (as it rebuilds the
/// deadline_index, kept beside this struct so that a snapshot's copy of the
/// state does not copy it).
struct replicated {
  /// The large maps are cow_maps: a snapshot's copy of the state shares
  /// them (cow_map.hpp).
  cow_map<std::string, lock_entry> locks;
  /// Invariant: no partition is empty; every id is in exactly one partition.
  cow_map<partition_ref, std::set<std::string>, partition_ref_hash> partitions;
  /// The routing table: the inverse of `partitions`, derived from it.
  cow_map<std::string, partition_ref> equipment;
  /// Key -> owner.
  cow_map<std::string, std::string> keys;
  /// The exactly-once table: the request id and answer of the last
  /// `dedup_capacity` successful commands, oldest first (the order evicts
  /// and is what the snapshot writes). Found by id through
  /// cluster_state's answer index, which a snapshot's copy does not need.
  shared_fifo<std::shared_ptr<const answer_record>> answers;
  /// The replicated clock: the maximum entry stamp applied so far.
  std::int64_t now_ms = 0;
  /// The term of the last applied entry; a higher one is a new leader.
  term_t last_term;
  log_index applied_index;
};

/// Derived from `replicated::locks` and never serialized: every lock under
/// the earliest end of its leases (holder and waiters). Every entry ends the
/// leases that ended and the runtime asks for the next deadline after every
/// batch; with the index both cost O(log locks) instead of a scan of every
/// lock (with 20,000 locks held, a 3-node group committed 107-173 puts/s at
/// concurrency 1 with the scan and 1,040-1,133 with the index;
/// bench/README.md, "Held locks").
/// Invariant: exactly {(earliest_end(e), name) : (name, e) in locks}.
using deadline_index = std::set<std::pair<std::int64_t, std::string>>;

} // namespace detail

/// The replicated state of one group. A plain value: copying it copies the
/// state (handy for comparing a replica with a twin), in O(number of
/// shards) for the large maps, which are copy-on-write (cow_map.hpp), and
/// in O(blocks) for the remembered answers (shared_fifo.hpp); the answer
/// index is copied whole.
class cluster_state {
public:
  /// @param dedup_capacity How many request ids the exactly-once table
  ///        remembers; the oldest (by apply order) is forgotten first.
  ///        Every replica of a group must use the same capacity.
  explicit cluster_state(std::size_t dedup_capacity = default_dedup_capacity);

  /// Applies one committed entry. `time_ms` is the leader's wall-clock stamp
  /// (ms since epoch) on the entry; the replicated clock is now =
  /// max(previous now, time_ms) so it never goes back.
  ///
  /// Before the command, for every entry:
  /// 1. the clock advances;
  /// 2. if `term` is greater than the last applied term (a new leader, §5.2),
  ///    every holder's and waiter's lease is extended to at least now + its
  ///    ttl, as etcd's lessor does on promotion: during the election nobody
  ///    could renew, so the gap must not expire anyone;
  /// 3. expired leases are processed: an expired holder loses the lock
  ///    ("lost"), expired waiters are dropped ("wait_expired") and are never
  ///    granted, and the first live waiter of a freed lock is granted with
  ///    the fencing token `index` ("granted").
  ///
  /// An EMPTY command is a pure clock advance (the runtime proposes one when
  /// next_deadline() passed): it returns "". Otherwise the answer for the
  /// proposing client: {"ok":true,"index":n,...} or
  /// {"ok":false,"error":{"code":"...","message":"..."}}. A rejected command
  /// changes nothing beyond steps 1-3 and is not remembered for retries (a
  /// retry is evaluated afresh, which is safe since the first try had no
  /// effect). A successful one is remembered under its request id: applying
  /// the same id again returns the first answer verbatim and changes
  /// nothing. Never throws.
  /// @pre `index > applied_index()`; otherwise nothing at all changes and
  ///      the answer is an `out_of_order` error (a runtime bug).
  std::string apply(log_index index, term_t term, std::int64_t time_ms,
                    std::string_view command);

  /// Notifications produced by the applies since the last call, in order
  /// (grants pushed to waiters, lock loss on expiry, waiter expiry).
  std::vector<notification> take_notifications();

  /// Earliest replicated time at which a lease (holder or queued waiter)
  /// expires; nullopt when none.
  std::optional<std::int64_t> next_deadline() const;

  /// Answers a read-only query {"v":1,"type":...}; an optional "id" is
  /// accepted and ignored. Every answer carries "applied_index", the state it
  /// was answered at (a stale read names its staleness). Never throws.
  /// - GetLock{lock}: "holder" (owner, token, ttl_ms, expires_ms; null when
  ///   the lock is free) and "waiters" in grant order.
  /// - GetEquipment{equipment_id}: its app, group and partition, or
  ///   not_found.
  /// - GetPartition{app,group,partition}: its "equipment_ids", sorted, or
  ///   not_found.
  /// - ListAssignments{after?,limit? (1..1000, default 100)}: the routing
  ///   table sorted by equipment id, from the first id after `after`;
  ///   "next" is the cursor for the following page, null on the last.
  /// - GetKey{key}: its owner, or not_found.
  /// - Status{}: counts, now_ms, last_term, next_deadline_ms and digest.
  /// Bad queries get the typed errors of bad commands.
  std::string query(std::string_view request) const;

  /// The whole state as versioned JSON; canonical: the same state gives the
  /// same bytes. Pending notifications are not state and are not included.
  std::string snapshot() const;

  /// Returns a task that returns what snapshot() returns now, to run on
  /// another thread while this state goes on. Capturing shares the
  /// copy-on-write maps and the blocks of remembered answers (shared_fifo)
  /// and copies neither the deadline index nor the answer index: with
  /// 20,000 locks and 10,000 remembered ids, 0.06-0.09 ms against 0.57-2.2
  /// ms for a copy of the whole state (measured when the ids' order was
  /// still copied).
  std::function<std::string()> snapshot_task() const;

  /// Replaces the whole state from snapshot() output (pending notifications
  /// are outputs, not state, and stay). Returns "" on success; otherwise a
  /// message "<code>: <why>" and the state is unchanged. A snapshot with more
  /// request ids than this instance's capacity keeps the newest ones.
  std::string restore(std::string_view data);

  /// FNV-1a-64 of snapshot() as 16 hex digits, for comparing replicas.
  /// Costs a serialization of the whole state.
  std::string digest() const;

  /// How many of each thing the state holds; cheap (no serialization).
  struct sizes {
    std::size_t locks = 0;
    std::size_t waiters = 0;
    std::size_t partitions = 0;
    std::size_t equipment = 0;
    std::size_t keys = 0;
    std::size_t remembered_requests = 0;
  };
  sizes count() const;

  log_index applied_index() const {
    return data_.applied_index;
  }

  std::int64_t now_ms() const {
    return data_.now_ms;
  }

private:
  detail::replicated data_;
  detail::deadline_index deadlines_;
  /// Invariant: exactly {(r.id, r) : r in data_.answers}.
  detail::answer_index answer_index_;
  std::size_t dedup_capacity_;
  std::vector<notification> notifications_;
};

} // namespace ees::cluster_sm
