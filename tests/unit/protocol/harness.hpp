// Helpers for the unit tests of the pure Raft core: literals for the strong
// id types, message builders, a storage stand-in that "persists" a ready
// instantly, and a tiny in-memory group with hand-controlled delivery.
//
// Everything here is deterministic: no clocks, no sleeps, no threads. Loops
// are bounded and fail the running test when the bound is hit.
#pragma once

#include "protocol/raft/node.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

// Printers so that doctest shows values instead of "{?}" on failures.
namespace ees {
template <class Tag>
std::ostream& operator<<(std::ostream& os, strong_int<Tag> x) {
  return os << x.value;
}
} // namespace ees

namespace ees::raft {
inline std::ostream& operator<<(std::ostream& os, role r) {
  return os << to_string(r);
}
inline std::ostream& operator<<(std::ostream& os, raft_errc e) {
  return os << to_string(e);
}
inline std::ostream& operator<<(std::ostream& os, message_type t) {
  return os << to_string(t);
}
inline std::ostream& operator<<(std::ostream& os, progress_state s) {
  return os << to_string(s);
}
} // namespace ees::raft

namespace ees::raft::test {

// -- literals and small builders ----------------------------------------------

constexpr node_id operator""_n(unsigned long long v) {
  return node_id{v};
}
constexpr term_t operator""_t(unsigned long long v) {
  return term_t{v};
}
constexpr log_index operator""_i(unsigned long long v) {
  return log_index{v};
}

inline std::set<node_id> ids(std::initializer_list<std::uint64_t> xs) {
  std::set<node_id> out;
  for (auto x : xs)
    out.insert(node_id{x});
  return out;
}

inline membership members(std::initializer_list<std::uint64_t> voters,
                          std::initializer_list<std::uint64_t> learners = {}) {
  return membership{ids(voters), ids(learners)};
}

inline log_entry entry(std::uint64_t index, std::uint64_t term,
                       std::string data = {},
                       entry_type type = entry_type::normal) {
  return log_entry{term_t{term}, log_index{index}, type, std::move(data)};
}

/// Entries 1..n with the given terms, e.g. `entries_with_terms({1, 1, 2})`.
inline std::vector<log_entry>
entries_with_terms(std::initializer_list<std::uint64_t> terms) {
  std::vector<log_entry> out;
  std::uint64_t i = 0;
  for (auto t : terms) {
    ++i;
    out.push_back(entry(i, t, "e" + std::to_string(i)));
  }
  return out;
}

/// Config of node `id` with small, fast timers. The seed depends on the id so
/// that replicas of one group draw different election timeouts.
inline raft_config config_of(std::uint64_t id, std::uint64_t seed_base = 0) {
  raft_config cfg;
  cfg.id = node_id{id};
  cfg.election_ticks = 10;
  cfg.heartbeat_ticks = 1;
  cfg.seed = seed_base * 1000 + id;
  return cfg;
}

/// The durable state of a fresh member of a new group (snapshot 0 carries the
/// initial configuration).
inline persistent_state bootstrap(const membership& m) {
  return persistent_state{
    hard_state{}, snapshot_meta{log_index{0}, term_t{0}, m}, {}};
}

/// Durable state of a replica that already has a log.
inline persistent_state restored(hard_state hs, std::vector<log_entry> es,
                                 const membership& m = members({1, 2, 3})) {
  return persistent_state{hs, snapshot_meta{log_index{0}, term_t{0}, m},
                          std::move(es)};
}

// -- messages -----------------------------------------------------------------

inline message make_msg(message_type type, std::uint64_t from, std::uint64_t to,
                        std::uint64_t term) {
  message m;
  m.type = type;
  m.from = node_id{from};
  m.to = node_id{to};
  m.term = term_t{term};
  return m;
}

inline message vote_request(std::uint64_t from, std::uint64_t to,
                            std::uint64_t term, std::uint64_t last_index,
                            std::uint64_t last_term, bool pre = false) {
  auto m = make_msg(pre ? message_type::pre_vote_request
                        : message_type::vote_request,
                    from, to, term);
  m.index = log_index{last_index};
  m.log_term = term_t{last_term};
  return m;
}

inline message vote_response(std::uint64_t from, std::uint64_t to,
                             std::uint64_t term, bool granted,
                             bool pre = false) {
  auto m = make_msg(pre ? message_type::pre_vote_response
                        : message_type::vote_response,
                    from, to, term);
  m.reject = !granted;
  return m;
}

inline message append_request(std::uint64_t from, std::uint64_t to,
                              std::uint64_t term, std::uint64_t prev_index,
                              std::uint64_t prev_term,
                              std::vector<log_entry> es, std::uint64_t commit) {
  auto m = make_msg(message_type::append_request, from, to, term);
  m.index = log_index{prev_index};
  m.log_term = term_t{prev_term};
  m.entries = std::move(es);
  m.commit = log_index{commit};
  return m;
}

inline message append_ack(std::uint64_t from, std::uint64_t to,
                          std::uint64_t term, std::uint64_t index) {
  auto m = make_msg(message_type::append_response, from, to, term);
  m.index = log_index{index};
  return m;
}

inline message heartbeat(std::uint64_t from, std::uint64_t to,
                         std::uint64_t term, std::uint64_t commit,
                         std::uint64_t context = 0) {
  auto m = make_msg(message_type::heartbeat_request, from, to, term);
  m.commit = log_index{commit};
  m.context = context;
  return m;
}

inline message install_snapshot(std::uint64_t from, std::uint64_t to,
                                std::uint64_t term, snapshot_meta meta) {
  auto m = make_msg(message_type::install_snapshot, from, to, term);
  m.snapshot = std::move(meta);
  return m;
}

/// Every message of a ready, in sending order.
inline std::vector<message> all_messages(const ready& rd) {
  auto out = rd.messages;
  out.insert(out.end(), rd.messages_after_persist.begin(),
             rd.messages_after_persist.end());
  return out;
}

/// The messages in `ms` of kind `type` (and addressed to `to`, unless 0).
inline std::vector<message> filter(const std::vector<message>& ms,
                                   message_type type, std::uint64_t to = 0) {
  std::vector<message> out;
  for (const auto& m : ms)
    if (m.type == type && (to == 0 || m.to == node_id{to}))
      out.push_back(m);
  return out;
}

inline bool is_persist_gated(message_type t) {
  return t == message_type::vote_response || t == message_type::append_response;
}

// -- storage stand-in
// -----------------------------------------------------------

/// Does to `disk` what the ready contract asks of storage, instantly.
inline void persist(persistent_state& disk, const ready& rd) {
  if (rd.snapshot) {
    // A received snapshot replaces the whole log (§7).
    disk.snapshot = *rd.snapshot;
    disk.entries.clear();
  }
  if (rd.state)
    disk.state = *rd.state;
  if (!rd.entries.empty()) {
    auto from = rd.entries.front().index;
    while (!disk.entries.empty() && disk.entries.back().index >= from)
      disk.entries.pop_back();
    disk.entries.insert(disk.entries.end(), rd.entries.begin(),
                        rd.entries.end());
  }
}

/// The durable entry at `i` on `disk`, if any.
inline const log_entry* durable_entry(const persistent_state& disk,
                                      log_index i) {
  for (const auto& e : disk.entries)
    if (e.index == i)
      return &e;
  return nullptr;
}

/// Takes one ready from `n`, persists it into `disk`, acknowledges it and
/// reports its committed entries applied. Returns the ready for inspection.
inline ready drain(node& n, persistent_state& disk) {
  auto rd = n.take_ready();
  persist(disk, rd);
  n.on_persisted(rd.ack);
  if (!rd.committed.empty())
    n.on_applied(rd.committed.back().index);
  return rd;
}

/// Same as above for tests that do not care about the durable copy.
inline ready drain(node& n) {
  persistent_state scratch;
  return drain(n, scratch);
}

/// Drains `n` until it has nothing left to report (bounded); returns every
/// message released on the way.
inline std::vector<message> drain_all(node& n) {
  std::vector<message> out;
  for (int i = 0; i < 16 && n.has_ready(); ++i) {
    auto ms = all_messages(drain(n));
    out.insert(out.end(), ms.begin(), ms.end());
  }
  REQUIRE_FALSE(n.has_ready());
  return out;
}

/// Makes `n` (of group {1,2,3}) leader with hand-made votes from `granting`.
/// Works with and without pre-vote. Leaves the leader's first ready (the noop
/// and its broadcast) drained and persisted.
inline void win_election(node& n, std::vector<std::uint64_t> granting = {2}) {
  REQUIRE(n.campaign() == raft_errc::ok);
  for (int round = 0; round < 4 && n.current_role() != role::leader; ++round) {
    auto rd = drain(n);
    for (const auto& m : rd.messages) {
      bool pre = m.type == message_type::pre_vote_request;
      if (!pre && m.type != message_type::vote_request)
        continue;
      if (std::find(granting.begin(), granting.end(), m.to.value)
          == granting.end())
        continue;
      n.step(vote_response(m.to.value, n.id().value, m.term.value, true, pre));
    }
  }
  REQUIRE(n.current_role() == role::leader);
  drain(n);
}

// -- an in-memory group
// -----------------------------------------------------------

/// One simulated server: the core plus what its environment did for it.
struct replica {
  replica(raft_config c, persistent_state ps) : cfg(c), disk(std::move(ps)) {
    core.emplace(cfg, disk);
  }

  /// Simulates a crash and restart from the durable state.
  void restart() {
    core.emplace(cfg, disk);
  }

  raft_config cfg;
  persistent_state disk;
  std::optional<node> core;
  /// Entries handed out in `ready::committed`, by index.
  std::map<log_index, log_entry> applied;
  /// Index of the last snapshot the environment restored, if any.
  log_index restored_snapshot;
  std::vector<read_state> reads;
};

/// A handful of replicas exchanging messages through a FIFO queue under the
/// test's control, in the spirit of etcd's raft_test.go `network`.
///
/// While processing readies the group checks two rules of the ready contract
/// on every node: persist-gated messages (vote and append responses) never
/// appear in `ready::messages`, and every committed entry was durable before
/// the ready that reports it.
class group {
public:
  group() = default;

  /// Creates replicas `ids`, all bootstrapped with `m` (default: all voters).
  group(std::initializer_list<std::uint64_t> node_ids,
        std::optional<membership> m = std::nullopt, std::uint64_t seed = 0,
        std::function<void(raft_config&)> tweak = {}) {
    membership init;
    if (m)
      init = *m;
    else
      for (auto id : node_ids)
        init.voters.insert(node_id{id});
    for (auto id : node_ids) {
      auto cfg = config_of(id, seed);
      if (tweak)
        tweak(cfg);
      add(cfg, bootstrap(init));
    }
  }

  /// Adds a replica (e.g. a joining node with an empty snapshot).
  replica& add(const raft_config& cfg, persistent_state ps) {
    auto [it, inserted] = replicas_.emplace(
      cfg.id, std::make_unique<replica>(cfg, std::move(ps)));
    REQUIRE(inserted);
    return *it->second;
  }

  replica& at(std::uint64_t id) {
    auto it = replicas_.find(node_id{id});
    REQUIRE(it != replicas_.end());
    return *it->second;
  }

  node& core(std::uint64_t id) {
    return *at(id).core;
  }

  // -- faults
  // -------------------------------------------------------------------

  /// Drops every message between `a` and `b`, both ways.
  void cut(std::uint64_t a, std::uint64_t b) {
    cut_.insert({node_id{a}, node_id{b}});
    cut_.insert({node_id{b}, node_id{a}});
  }

  /// Drops every message from or to `id`.
  void isolate(std::uint64_t id) {
    for (auto& [other, _] : replicas_)
      if (other != node_id{id})
        cut(id, other.value);
  }

  void heal() {
    cut_.clear();
    drop_if = {};
  }

  /// Extra drop rule, e.g. "all appends from 1".
  std::function<bool(const message&)> drop_if;

  /// When set, delivering install_snapshot also reports the (instant, out of
  /// band) snapshot transfer as successful to the sender.
  bool auto_report_snapshot = true;

  // -- manual driving
  // -----------------------------------------------------------------

  /// Processes one ready of `id` like a real environment would and returns the
  /// messages it may now send (`messages` then `messages_after_persist`).
  std::vector<message> process(std::uint64_t id) {
    auto& r = at(id);
    if (!r.core->has_ready())
      return {};
    auto rd = r.core->take_ready();
    trace_.push_back(render(id, rd));
    for (const auto& m : rd.messages)
      CHECK_MESSAGE(!is_persist_gated(m.type),
                    "persist-gated message sent early: " << describe(m));
    for (const auto& e : rd.committed) {
      bool in_snapshot = e.index <= r.disk.snapshot.last_index;
      auto durable = durable_entry(r.disk, e.index);
      CHECK_MESSAGE((in_snapshot || (durable && *durable == e)),
                    "node " << id << " applies index " << e.index.value
                            << " before it is durable");
    }
    persist(r.disk, rd);
    if (rd.snapshot)
      r.restored_snapshot = rd.snapshot->last_index;
    r.core->on_persisted(rd.ack);
    for (const auto& e : rd.committed) {
      if (!r.applied.empty())
        CHECK_MESSAGE(e.index > r.applied.rbegin()->first,
                      "node " << id << " applies out of order");
      r.applied[e.index] = e;
    }
    if (!rd.committed.empty())
      r.core->on_applied(rd.committed.back().index);
    r.reads.insert(r.reads.end(), rd.read_states.begin(), rd.read_states.end());
    return all_messages(rd);
  }

  /// Feeds `m` to its addressee unless a fault drops it. Returns whether it
  /// was delivered.
  bool deliver(const message& m) {
    auto it = replicas_.find(m.to);
    if (it == replicas_.end() || cut_.count({m.from, m.to}) > 0
        || (drop_if && drop_if(m)))
      return false;
    delivered_.push_back(m);
    it->second->core->step(m);
    if (auto_report_snapshot && m.type == message_type::install_snapshot) {
      auto sender = replicas_.find(m.from);
      if (sender != replicas_.end())
        sender->second->core->report_snapshot(m.to, true);
    }
    return true;
  }

  /// Processes the readies of every node (in id order) into the queue.
  /// Returns whether any node had a ready.
  bool flush() {
    bool any = false;
    for (auto& [id, r] : replicas_) {
      if (!r->core->has_ready())
        continue;
      any = true;
      for (auto& m : process(id.value))
        queue_.push_back(std::move(m));
    }
    return any;
  }

  /// Flushes and delivers until no node has work and nothing is in flight.
  void stabilize() {
    for (int round = 0; round < 10000; ++round) {
      bool any = flush();
      if (!any && queue_.empty())
        return;
      auto batch = std::move(queue_);
      queue_.clear();
      for (const auto& m : batch)
        deliver(m);
    }
    FAIL("group did not stabilize within 10000 rounds");
  }

  /// Ticks every node once, then stabilizes.
  void tick_all() {
    trace_.emplace_back("tick");
    for (auto& [_, r] : replicas_)
      r->core->tick();
    stabilize();
  }

  /// Ticks and stabilizes until `pred` holds; fails after `max_ticks`.
  void run_until(const std::function<bool()>& pred, int max_ticks = 200) {
    stabilize();
    for (int i = 0; i < max_ticks && !pred(); ++i)
      tick_all();
    REQUIRE_MESSAGE(pred(),
                    "condition not reached within " << max_ticks << " ticks");
  }

  /// Campaigns on `id` and stabilizes; requires that it won.
  void elect(std::uint64_t id) {
    REQUIRE(core(id).campaign() == raft_errc::ok);
    stabilize();
    REQUIRE(core(id).current_role() == role::leader);
  }

  /// Proposes `data` on leader `id`; requires acceptance.
  log_index propose(std::uint64_t id, std::string data) {
    auto res = core(id).propose(std::move(data));
    REQUIRE(res.error == raft_errc::ok);
    return res.index;
  }

  /// The current leaders (normally zero or one).
  std::vector<node_id> leaders() {
    std::vector<node_id> out;
    for (auto& [id, r] : replicas_)
      if (r->core->current_role() == role::leader)
        out.push_back(id);
    return out;
  }

  /// Every message delivered so far, in delivery order.
  const std::vector<message>& delivered() const {
    return delivered_;
  }

  /// One line per ready taken, for determinism checks.
  const std::vector<std::string>& trace() const {
    return trace_;
  }

  /// State machine safety (§5.4.3): replicas never apply different entries at
  /// the same index.
  void check_applied_agree() {
    for (auto& [a, ra] : replicas_)
      for (auto& [b, rb] : replicas_)
        for (auto& [i, e] : ra->applied) {
          auto it = rb->applied.find(i);
          if (it != rb->applied.end())
            CHECK_MESSAGE(it->second == e, "nodes " << a.value << " and "
                                                    << b.value
                                                    << " applied different "
                                                       "entries at "
                                                    << i.value);
        }
  }

  static std::string render(std::uint64_t id, const ready& rd) {
    std::string s = "n" + std::to_string(id) + ":";
    if (rd.soft)
      s += " soft(" + std::string{to_string(rd.soft->current_role)} + ","
           + to_string(rd.soft->leader) + "," + to_string(rd.soft->term) + ")";
    if (rd.state)
      s += " hs(" + to_string(rd.state->current_term) + ","
           + to_string(rd.state->voted_for) + ","
           + to_string(rd.state->commit_index) + ")";
    if (rd.snapshot)
      s += " snap(" + to_string(rd.snapshot->last_index) + ")";
    for (const auto& e : rd.entries)
      s += " e" + to_string(e.index) + "/" + to_string(e.term);
    for (const auto& m : rd.messages)
      s += " [" + describe(m) + "]";
    for (const auto& m : rd.messages_after_persist)
      s += " after[" + describe(m) + "]";
    for (const auto& e : rd.committed)
      s += " c" + to_string(e.index);
    for (const auto& r : rd.read_states)
      s += " read(" + to_string(r.index) + "," + std::to_string(r.context)
           + ")";
    return s;
  }

private:
  std::map<node_id, std::unique_ptr<replica>> replicas_;
  std::set<std::pair<node_id, node_id>> cut_;
  std::deque<message> queue_;
  std::vector<message> delivered_;
  std::vector<std::string> trace_;
};

} // namespace ees::raft::test
