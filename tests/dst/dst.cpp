// Deterministic simulation test (DST) of the Raft core.
//
// One seed drives everything: a 3- or 5-voter group (plus a spare node that
// may join), a simulated network that drops, duplicates, delays and reorders
// messages and cuts links (one-way too, and leader isolation), storage whose
// unpersisted writes are lost on crash, restarts, membership changes,
// compaction with snapshot installs, leader transfers and ReadIndex reads.
// After every event the checker asserts the safety properties of the Raft
// paper (Figure 3) plus the durability rules of this implementation; after
// the faults heal it asserts liveness: a leader emerges and a proposal
// commits within a bounded number of ticks.
//
// The run ends with `dst: <S> seeds, <N> steps, <V> violations`. A failing
// seed prints the command that reproduces it. Exit status: 0 when no
// violation, 1 otherwise; `--expect-violation` inverts it (for mutants).

#include "protocol/raft/node.hpp"
#include "protocol/splitmix.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace ees;
using namespace ees::raft;

// -- deterministic randomness -------------------------------------------------

struct rng : splitmix64 {
  /// Uniform in [0, n). @pre n > 0.
  std::uint64_t below(std::uint64_t n) {
    return next() % n;
  }
  /// True with probability `per_mille` / 1000.
  bool chance(std::uint64_t per_mille) {
    return below(1000) < per_mille;
  }
};

std::uint64_t mix(std::uint64_t h, std::uint64_t x) {
  h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

std::uint64_t hash_bytes(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s)
    h = (h ^ c) * 1099511628211ull;
  return h;
}

std::uint64_t hash_entry(const log_entry& e) {
  return mix(
    mix(mix(e.term.value, e.index.value), static_cast<std::uint64_t>(e.type)),
    hash_bytes(e.data));
}

// -- the simulated world ------------------------------------------------------

/// Options derived from the seed (printed on failure, TigerBeetle style).
struct options {
  std::uint64_t seed = 0;
  std::size_t voters = 3;
  std::uint64_t chaos_ticks = 300;
  std::uint64_t drop = 0; // per mille
  std::uint64_t duplicate = 0; // per mille
  std::uint64_t crash = 0; // per mille per tick
  std::uint64_t partition = 0; // per mille per tick
  std::uint64_t compact = 0; // per mille per tick
  std::uint64_t reconfig = 0; // per mille per tick
  std::uint64_t transfer = 0; // per mille per tick
  std::uint64_t propose = 0; // per mille per tick
  std::uint64_t persist_lag = 0; // per mille: chance a persist waits a round
  std::uint64_t max_delay = 0; // ticks a message may spend in the network
  std::uint64_t step_crash = 0; // per 100k events: crash between events
  std::size_t max_inflight = 4;
  std::size_t batch = 8; // max entries per append
  bool pre_vote = true;
  bool check_quorum = true;
  bool broadcast_commit = true;

  std::string describe() const {
    std::ostringstream out;
    out << "voters=" << voters << " ticks=" << chaos_ticks << " drop=" << drop
        << " dup=" << duplicate << " crash=" << crash
        << " partition=" << partition << " compact=" << compact
        << " reconfig=" << reconfig << " transfer=" << transfer
        << " propose=" << propose << " persist_lag=" << persist_lag
        << " delay=" << max_delay << " step_crash=" << step_crash
        << " inflight=" << max_inflight << " batch=" << batch
        << " prevote=" << pre_vote << " checkquorum=" << check_quorum
        << " broadcastcommit=" << broadcast_commit;
    return out.str();
  }
};

options derive_options(std::uint64_t seed, std::size_t voters_override) {
  rng r{seed * 7919 + 17};
  options o;
  o.seed = seed;
  o.voters = voters_override != 0 ? voters_override : (r.chance(500) ? 3 : 5);
  o.chaos_ticks = 200 + r.below(200);
  o.drop = r.below(200);
  o.duplicate = r.below(100);
  o.crash = r.below(25);
  o.partition = r.below(25);
  o.compact = r.below(60);
  o.reconfig = r.below(30);
  o.transfer = r.below(10);
  o.propose = 200 + r.below(800);
  o.persist_lag = r.below(600);
  o.max_delay = r.below(4);
  o.step_crash = r.below(400);
  o.max_inflight = 1 + r.below(8);
  o.batch = 1 + r.below(8);
  o.pre_vote = r.chance(750);
  o.check_quorum = r.chance(750);
  o.broadcast_commit = r.chance(500); // Drawn last: earlier draws keep.
  return o;
}

/// The replicated state machine: a hash chain over applied entries.
struct machine {
  log_index applied;
  std::uint64_t hash = 0;
};

/// What survives a crash.
struct disk {
  hard_state state;
  snapshot_meta snapshot;
  machine snapshot_machine;
  std::vector<log_entry> entries;

  log_index last_index() const {
    return snapshot.last_index + entries.size();
  }
};

/// A ready handed to storage but not yet durable.
struct pending_write {
  std::optional<hard_state> state;
  std::optional<snapshot_meta> snapshot;
  std::vector<log_entry> entries;
  std::vector<message> after_persist;
  persist_ack ack;
  /// A commit-index-only write (`ready::sync == false`): acknowledged when it
  /// reaches the head of the queue but durable only once a later synced
  /// write is (one ordered WAL, as RocksDB's); a crash before that loses it.
  bool lazy = false;
};

struct sim_node {
  node_id id;
  std::unique_ptr<node> core; // null while crashed
  std::uint64_t incarnation = 0;
  disk stable;
  std::deque<pending_write> writes;
  /// Lazy writes acknowledged but not yet durable, oldest first.
  std::vector<pending_write> unsynced;
  machine sm;
  log_index last_commit; // this incarnation's highest commit index seen
};

struct in_flight {
  std::uint64_t deliver_at; // tick
  std::uint64_t seq;
  message msg;
  std::uint64_t sender_incarnation;
};

struct pending_read_check {
  node_id leader;
  std::uint64_t incarnation;
  log_index committed_before; // highest commit anywhere when issued
};

class simulation {
public:
  explicit simulation(const options& o) : opt_(o), rng_{o.seed} {
    membership initial;
    for (std::size_t i = 1; i <= o.voters; ++i)
      initial.voters.insert(node_id{i});
    // Two spare nodes outside the configuration, to be added as learners.
    auto universe = o.voters + 2;
    for (std::size_t i = 1; i <= universe; ++i) {
      sim_node n;
      n.id = node_id{i};
      if (i <= o.voters)
        n.stable.snapshot.config = initial;
      nodes_.emplace(n.id, std::move(n));
    }
    for (auto& [id, n] : nodes_)
      start(n);
  }

  /// Runs the chaos phase, then heals and checks liveness. Returns the number
  /// of violations (the first is described in `failure()`).
  std::uint64_t run() {
    for (std::uint64_t t = 0; t < opt_.chaos_ticks && violations_ == 0; ++t)
      chaos_tick();
    if (violations_ == 0)
      heal_and_check_liveness();
    return violations_;
  }

  std::uint64_t steps() const {
    return steps_;
  }
  /// Commit-index-only writes acknowledged before they were durable, and
  /// how many of them a crash lost.
  std::uint64_t lazy_writes() const {
    return lazy_writes_;
  }
  std::uint64_t lazy_lost() const {
    return lazy_lost_;
  }
  const std::string& failure() const {
    return failure_;
  }

private:
  // -- invariant bookkeeping --------------------------------------------------

  void violation(const std::string& what) {
    if (violations_++ == 0) {
      std::ostringstream out;
      out << "step " << steps_ << ": " << what;
      failure_ = out.str();
    }
  }

  /// Log matching (§5.3): an (index, term) pair identifies one entry and one
  /// preceding term anywhere in the cluster; by induction, equal prefixes.
  void check_written(const sim_node& n, const log_entry& e,
                     std::optional<term_t> prev_term) {
    auto key = std::make_pair(e.index.value, e.term.value);
    auto value
      = std::make_pair(hash_entry(e), prev_term ? prev_term->value : ~0ull);
    auto [it, fresh] = entries_.emplace(key, value);
    if (!fresh && it->second.first != value.first)
      violation("log matching: node " + to_string(n.id)
                + " holds a different entry at index " + to_string(e.index)
                + " term " + to_string(e.term));
    if (!fresh && prev_term && it->second.second != ~0ull
        && it->second.second != value.second)
      violation("log matching: node " + to_string(n.id)
                + " has a different predecessor term before "
                + to_string(e.index));
    if (prev_term && *prev_term > e.term)
      violation("terms decrease in the log of node " + to_string(n.id));
  }

  /// State machine safety: every index is committed with one entry only.
  void check_committed(sim_node& n) {
    auto& core = *n.core;
    auto commit = core.commit_index();
    if (commit < n.last_commit)
      violation("commit index of node " + to_string(n.id) + " went back from "
                + to_string(n.last_commit) + " to " + to_string(commit));
    if (commit > n.stable.last_index())
      violation("commit index " + to_string(commit) + " of node "
                + to_string(n.id) + " beyond its durable log "
                + to_string(n.stable.last_index()));
    else if (commit > n.stable.snapshot.last_index
             && commit >= core.log().first_index()
             && n.stable
                    .entries[commit.value - n.stable.snapshot.last_index.value
                             - 1]
                    .term
                  != core.log().at(commit).term)
      violation("node " + to_string(n.id) + " committed " + to_string(commit)
                + " but its disk holds another entry there");
    for (auto i = std::max(n.last_commit + 1, core.log().first_index());
         i <= commit && i <= core.log().last_index(); ++i) {
      const auto& e = core.log().at(i);
      auto [it, fresh] = committed_.emplace(
        i.value, std::make_pair(e.term.value, hash_entry(e)));
      if (!fresh && it->second.second != hash_entry(e))
        violation("state machine safety: node " + to_string(n.id)
                  + " committed a different entry at " + to_string(i));
    }
    n.last_commit = std::max(n.last_commit, commit);
    max_commit_ = std::max(max_commit_, commit);
    if (n.sm.applied > commit)
      violation("node " + to_string(n.id) + " applied "
                + to_string(n.sm.applied) + " beyond commit "
                + to_string(commit));
  }

  /// Election safety (§5.2) and leader completeness (§5.4).
  void check_leader(sim_node& n) {
    auto& core = *n.core;
    if (core.current_role() != role::leader)
      return;
    auto [it, fresh] = leaders_.emplace(core.current_term().value,
                                        std::make_pair(n.id, n.incarnation));
    if (!fresh && it->second.first != n.id) {
      violation("election safety: nodes " + to_string(it->second.first)
                + " and " + to_string(n.id) + " both lead term "
                + to_string(core.current_term()));
      return;
    }
    if (!fresh && it->second.second != n.incarnation) {
      // Leadership does not survive a crash; leading the same term again
      // means the node forgot its term or vote.
      violation("election safety: node " + to_string(n.id) + " leads term "
                + to_string(core.current_term()) + " again after a restart");
      return;
    }
    if (!fresh)
      return;
    for (const auto& [index, entry] : committed_) {
      log_index i{index};
      if (i <= core.log().snapshot_index())
        continue;
      auto t = core.log().term(i);
      if (!t || t->value != entry.first) {
        violation("leader completeness: leader " + to_string(n.id) + " of term "
                  + to_string(core.current_term()) + " lacks committed entry "
                  + to_string(i));
        return;
      }
    }
  }

  void apply(sim_node& n, const log_entry& e) {
    if (e.index != n.sm.applied + 1)
      violation("node " + to_string(n.id) + " applies " + to_string(e.index)
                + " after " + to_string(n.sm.applied));
    n.sm.applied = e.index;
    n.sm.hash = mix(n.sm.hash, hash_entry(e));
    check_machine(n);
  }

  /// Identical applied prefixes: same index, same machine state everywhere.
  void check_machine(const sim_node& n) {
    auto [it, fresh] = machines_.emplace(n.sm.applied.value, n.sm.hash);
    if (!fresh && it->second != n.sm.hash)
      violation("state machine safety: node " + to_string(n.id)
                + " has a different state after applying "
                + to_string(n.sm.applied));
  }

  // -- node lifecycle ---------------------------------------------------------

  raft_config config_for(const sim_node& n) const {
    raft_config c;
    c.id = n.id;
    c.election_ticks = 10;
    c.heartbeat_ticks = 2;
    c.seed = opt_.seed * 1000003 + n.incarnation;
    c.max_inflight = opt_.max_inflight;
    c.max_entries_per_append = opt_.batch;
    c.pre_vote = opt_.pre_vote;
    c.check_quorum = opt_.check_quorum;
    c.broadcast_commit = opt_.broadcast_commit;
    return c;
  }

  void start(sim_node& n) {
    ++n.incarnation;
    persistent_state ps{n.stable.state, n.stable.snapshot, n.stable.entries};
    n.core = std::make_unique<node>(config_for(n), std::move(ps));
    n.sm = n.stable.snapshot_machine;
    n.last_commit = log_index{};
    n.writes.clear();
    n.unsynced.clear();
    check_committed(n);
  }

  void crash(sim_node& n) {
    n.core.reset(); // Unpersisted writes and unsent messages are lost.
    n.writes.clear();
    lazy_lost_ += n.unsynced.size();
    n.unsynced.clear();
  }

  // -- the environment loop ---------------------------------------------------

  void process_ready(sim_node& n) {
    auto& core = *n.core;
    if (!core.has_ready())
      return;
    ++steps_;
    auto rd = core.take_ready();
    if (rd.soft && rd.soft->current_role == role::leader)
      check_leader(n);
    for (std::size_t i = 0; i < rd.entries.size(); ++i) {
      auto prev = i == 0 ? core.log().term(rd.entries[0].index - 1)
                         : std::optional<term_t>{rd.entries[i - 1].term};
      check_written(n, rd.entries[i], prev);
    }
    for (auto& m : rd.messages)
      send(n, std::move(m));
    for (const auto& e : rd.committed)
      apply(n, e);
    if (!rd.committed.empty())
      core.on_applied(rd.committed.back().index);
    for (const auto& rs : rd.read_states)
      check_read(n, rs);
    pending_write w;
    w.state = rd.state;
    w.snapshot = rd.snapshot;
    w.entries = std::move(rd.entries);
    w.after_persist = std::move(rd.messages_after_persist);
    w.ack = rd.ack;
    w.lazy = !rd.sync && rd.must_persist();
    n.writes.push_back(std::move(w));
    check_committed(n);
  }

  /// Makes the oldest pending write of `n` durable (storage is FIFO).
  void persist_one(sim_node& n) {
    if (n.writes.empty())
      return;
    ++steps_;
    auto w = std::move(n.writes.front());
    n.writes.pop_front();
    if (w.lazy) {
      ++lazy_writes_;
      n.core->on_persisted(w.ack);
      for (auto& m : w.after_persist)
        send(n, std::move(m));
      w.after_persist.clear();
      n.unsynced.push_back(std::move(w));
      check_committed(n);
      return;
    }
    // A synced write makes every earlier lazy write durable too.
    for (auto& u : n.unsynced)
      if (!make_durable(n, u))
        return;
    n.unsynced.clear();
    if (!make_durable(n, w))
      return;
    n.core->on_persisted(w.ack);
    for (auto& m : w.after_persist)
      send(n, std::move(m));
    check_committed(n);
  }

  /// Writes `w` to the node's stable storage; false on a violation.
  bool make_durable(sim_node& n, pending_write& w) {
    auto& d = n.stable;
    if (w.snapshot) {
      auto it = snapshots_.find(w.snapshot->last_index.value);
      if (it == snapshots_.end()) {
        violation("node " + to_string(n.id) + " installs unknown snapshot "
                  + to_string(w.snapshot->last_index));
        return false;
      }
      d.snapshot = *w.snapshot;
      d.snapshot_machine = it->second;
      d.entries.clear();
      n.sm = it->second; // restore the state machine from the snapshot
      check_machine(n);
    }
    if (!w.entries.empty()) {
      auto first = w.entries.front().index;
      if (first <= d.snapshot.last_index || first > d.last_index() + 1) {
        violation("node " + to_string(n.id) + " writes entry "
                  + to_string(first) + " outside its log");
        return false;
      }
      d.entries.resize(first.value - d.snapshot.last_index.value - 1);
      for (auto& e : w.entries)
        d.entries.push_back(std::move(e));
    }
    if (w.state)
      d.state = *w.state;
    if (d.state.commit_index > d.last_index())
      violation("node " + to_string(n.id)
                + " persisted commit index beyond "
                  "its log");
    return true;
  }

  void send(const sim_node& from, message m) {
    if (rng_.chance(opt_.drop) && !healed_) {
      snapshot_dropped(m);
      return;
    }
    auto copies = (!healed_ && rng_.chance(opt_.duplicate)) ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
      auto delay = healed_ ? 0 : rng_.below(opt_.max_delay + 1);
      network_.push_back(
        in_flight{now_ + delay, next_seq_++, m, from.incarnation});
    }
  }

  /// The snapshot stream to a follower failed: tell its leader (in a real
  /// node, the actor streaming the chunks does this).
  void snapshot_dropped(const message& m) {
    if (m.type != message_type::install_snapshot)
      return;
    auto& leader = nodes_.at(m.from);
    if (leader.core)
      leader.core->report_snapshot(m.to, false);
  }

  bool link_cut(node_id from, node_id to) const {
    return cut_.count({from, to}) > 0;
  }

  /// Delivers one due message chosen at random (so messages reorder).
  void deliver_one() {
    std::vector<std::size_t> due;
    for (std::size_t i = 0; i < network_.size() && due.size() < 8; ++i)
      if (network_[i].deliver_at <= now_)
        due.push_back(i);
    if (due.empty())
      return;
    ++steps_;
    auto pick = healed_ ? due.front() : due[rng_.below(due.size())];
    auto f = std::move(network_[pick]);
    network_.erase(network_.begin() + static_cast<std::ptrdiff_t>(pick));
    auto& to = nodes_.at(f.msg.to);
    if (!to.core || link_cut(f.msg.from, f.msg.to)) {
      snapshot_dropped(f.msg);
      return;
    }
    auto& core = *to.core;
    if (f.msg.type == message_type::install_snapshot) {
      // The chunks arrived: the snapshot's data is the cluster-wide machine
      // state at that index (checked for agreement when taken).
      if (snapshots_.count(f.msg.snapshot.last_index.value) == 0) {
        violation("install_snapshot without known snapshot data");
        return;
      }
      auto& leader = nodes_.at(f.msg.from);
      if (leader.core)
        leader.core->report_snapshot(f.msg.to, true);
    }
    core.step(f.msg);
    check_committed(to);
    check_leader(to);
  }

  void check_read(const sim_node& n, const read_state& rs) {
    auto it = reads_.find(rs.context);
    if (it == reads_.end()) {
      violation("unknown read released");
      return;
    }
    // Linearizable read (thesis §6.4): the read index covers every entry
    // committed anywhere before the read was requested.
    if (rs.index < it->second.committed_before)
      violation("stale read: node " + to_string(n.id) + " answered read "
                + std::to_string(rs.context) + " at index "
                + to_string(rs.index) + " but "
                + to_string(it->second.committed_before)
                + " was committed before it started");
    reads_.erase(it);
  }

  // -- faults and client actions ----------------------------------------------

  sim_node* leader() {
    sim_node* best = nullptr;
    for (auto& [id, n] : nodes_)
      if (n.core && n.core->current_role() == role::leader
          && (!best || n.core->current_term() > best->core->current_term()))
        best = &n;
    return best;
  }

  sim_node& random_node() {
    auto i = rng_.below(nodes_.size());
    return std::next(nodes_.begin(), static_cast<std::ptrdiff_t>(i))->second;
  }

  void client_actions() {
    auto* l = leader();
    if (l && rng_.chance(opt_.propose)) {
      auto n = 1 + rng_.below(3);
      for (std::uint64_t i = 0; i < n; ++i)
        l->core->propose("c" + std::to_string(next_command_++));
    }
    if (l && rng_.chance(100)) {
      auto ctx = next_read_++;
      reads_[ctx] = pending_read_check{l->id, l->incarnation, max_commit_};
      l->core->read_index(ctx);
    }
    if (healed_)
      return;
    if (l && rng_.chance(opt_.transfer)) {
      auto& target = random_node();
      l->core->transfer_leadership(target.id);
    }
    if (l && rng_.chance(opt_.reconfig))
      reconfigure(*l);
  }

  /// One-server changes: add the spare as a learner, promote it once caught
  /// up, or remove a voter while more than two remain.
  void reconfigure(sim_node& l) {
    const auto& cfg = l.core->config();
    conf_change cc;
    if (!cfg.learners.empty()) {
      cc.op = conf_change::kind::promote_learner;
      cc.node = *cfg.learners.begin();
    } else if (cfg.voters.size() > 2 && rng_.chance(700)) {
      cc.op = conf_change::kind::remove_node;
      auto i = rng_.below(cfg.voters.size());
      cc.node = *std::next(cfg.voters.begin(), static_cast<std::ptrdiff_t>(i));
    } else {
      std::vector<node_id> outside;
      for (auto& [id, n] : nodes_)
        if (!cfg.contains(id))
          outside.push_back(id);
      if (outside.empty())
        return;
      cc.op = conf_change::kind::add_learner;
      cc.node = outside[rng_.below(outside.size())];
    }
    l.core->propose_conf_change(cc);
  }

  void faults() {
    if (rng_.chance(opt_.crash)) {
      auto& n = random_node();
      if (n.core)
        crash(n);
    }
    for (auto& [id, n] : nodes_)
      if (!n.core && rng_.chance(100))
        start(n);
    if (rng_.chance(opt_.partition)) {
      cut_.clear();
      switch (rng_.below(3)) {
        case 0: { // isolate the leader (or any node)
          auto* l = leader();
          auto victim = l ? l->id : random_node().id;
          for (auto& [id, n] : nodes_)
            if (id != victim) {
              cut_.insert({victim, id});
              cut_.insert({id, victim});
            }
          break;
        }
        case 1: { // one-way: a node can send but not receive
          auto victim = random_node().id;
          for (auto& [id, n] : nodes_)
            if (id != victim)
              cut_.insert({id, victim});
          break;
        }
        default: // random split
          for (auto& [a, x] : nodes_)
            for (auto& [b, y] : nodes_)
              if (a < b && rng_.chance(400)) {
                cut_.insert({a, b});
                cut_.insert({b, a});
              }
      }
    }
    if (!cut_.empty() && rng_.chance(50))
      cut_.clear();
    if (rng_.chance(opt_.compact)) {
      auto& n = random_node();
      if (n.core)
        compact(n);
    }
  }

  void compact(sim_node& n) {
    auto& core = *n.core;
    auto at = core.applied_index();
    if (at <= core.log().snapshot_index() || n.sm.applied != at)
      return;
    auto [it, fresh] = snapshots_.emplace(at.value, n.sm);
    if (!fresh && it->second.hash != n.sm.hash)
      violation("snapshots at " + to_string(at) + " differ");
    if (core.compact(at) != raft_errc::ok)
      return;
    // The snapshot file is written before the log prefix goes (atomically
    // here; the storage layer does write, fsync, rename).
    auto& d = n.stable;
    auto drop = at.value - d.snapshot.last_index.value;
    d.snapshot = core.log().snapshot();
    d.snapshot_machine = n.sm;
    d.entries.erase(d.entries.begin(),
                    d.entries.begin() + static_cast<std::ptrdiff_t>(drop));
  }

  // -- the schedule -----------------------------------------------------------

  /// Lets nodes work: process readies, complete writes, deliver messages, in
  /// random interleavings, for a bounded number of events.
  void work(std::size_t budget) {
    for (std::size_t i = 0; i < budget && violations_ == 0; ++i) {
      auto& n = random_node();
      if (!healed_ && rng_.below(100000) < opt_.step_crash) {
        // Crash between any two events, e.g. after a vote left but before
        // it was durable; restart as quickly sometimes.
        if (n.core)
          crash(n);
        else
          start(n);
        continue;
      }
      switch (rng_.below(4)) {
        case 0:
          if (n.core)
            process_ready(n);
          break;
        case 1:
          if (n.core && (healed_ || !rng_.chance(opt_.persist_lag)))
            persist_one(n);
          break;
        default:
          deliver_one();
      }
    }
  }

  void tick_all() {
    ++now_;
    for (auto& [id, n] : nodes_)
      if (n.core)
        n.core->tick();
    ++steps_;
  }

  void chaos_tick() {
    tick_all();
    client_actions();
    faults();
    work(40);
    for (auto& [id, n] : nodes_)
      if (n.core)
        check_leader(n);
  }

  /// Heals every fault, then requires a leader and a fresh commit within a
  /// bound (liveness after faults stop).
  void heal_and_check_liveness() {
    healed_ = true;
    cut_.clear();
    for (auto& [id, n] : nodes_)
      if (!n.core)
        start(n);
    const std::uint64_t bound = 300; // 30 election timeouts
    std::optional<std::pair<node_id, propose_result>> marker;
    for (std::uint64_t t = 0; t < bound && violations_ == 0; ++t) {
      tick_all();
      if (auto* l = leader()) {
        if (!marker || marker->first != l->id
            || marker->second.term != l->core->current_term()) {
          auto r = l->core->propose("liveness");
          if (r.error == raft_errc::ok)
            marker = std::make_pair(l->id, r);
        } else {
          auto& core = *l->core;
          if (core.commit_index() >= marker->second.index
              && core.log().term(marker->second.index) == marker->second.term)
            return;
        }
      }
      // Without faults a tick spans many round trips: work until quiet.
      for (int round = 0; round < 1000 && busy(); ++round) {
        for (auto& [id, n] : nodes_)
          if (n.core) {
            process_ready(n);
            while (!n.writes.empty())
              persist_one(n);
          }
        for (auto& f : network_)
          f.deliver_at = std::min(f.deliver_at, now_);
        while (!network_.empty())
          deliver_one();
      }
    }
    if (violations_ == 0)
      violation("liveness: no proposal committed within "
                + std::to_string(bound) + " ticks after the faults healed; "
                + cluster_state());
  }

  /// Whether any node has work or any message is in flight.
  bool busy() const {
    if (!network_.empty())
      return true;
    for (const auto& [id, n] : nodes_)
      if (n.core && (n.core->has_ready() || !n.writes.empty()))
        return true;
    return false;
  }

  /// A one-line summary of every node, for failure reports.
  std::string cluster_state() const {
    std::ostringstream out;
    for (const auto& [id, n] : nodes_) {
      out << "[n" << id.value;
      if (!n.core) {
        out << " down]";
        continue;
      }
      const auto& c = *n.core;
      out << ' ' << to_string(c.current_role())
          << " t=" << c.current_term().value << " lead=" << c.leader().value
          << " commit=" << c.commit_index().value
          << " last=" << c.log().last_term().value << '/'
          << c.log().last_index().value
          << " snap=" << c.log().snapshot_index().value << ' '
          << encode_membership(c.config()) << "] ";
    }
    return out.str();
  }

  options opt_;
  rng rng_;
  std::map<node_id, sim_node> nodes_;
  std::deque<in_flight> network_;
  std::set<std::pair<node_id, node_id>> cut_;
  bool healed_ = false;
  std::uint64_t now_ = 0;
  std::uint64_t next_seq_ = 0;
  std::uint64_t next_command_ = 0;
  std::uint64_t next_read_ = 1;
  std::uint64_t steps_ = 0;
  std::uint64_t lazy_writes_ = 0;
  std::uint64_t lazy_lost_ = 0;
  std::uint64_t violations_ = 0;
  std::string failure_;

  // Cluster-wide knowledge for the checker.
  std::map<std::pair<std::uint64_t, std::uint64_t>,
           std::pair<std::uint64_t, std::uint64_t>>
    entries_; // (index, term) -> (entry hash, previous term)
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>>
    committed_; // index -> (term, entry hash)
  std::map<std::uint64_t, std::uint64_t> machines_; // applied -> state hash
  std::map<std::uint64_t, machine> snapshots_; // index -> state
  std::map<std::uint64_t, std::pair<node_id, std::uint64_t>>
    leaders_; // term -> (leader, incarnation)
  std::map<std::uint64_t, pending_read_check> reads_;
  log_index max_commit_;
};

} // namespace

int main(int argc, char** argv) {
  std::uint64_t seeds = 100;
  std::uint64_t first_seed = 1;
  std::size_t voters = 0;
  bool expect_violation = false;
  bool single = false;
  for (int i = 1; i < argc; ++i) {
    auto arg = std::string{argv[i]};
    auto value = [&](const char* name) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "dst: %s needs a value\n", name);
        std::exit(2);
      }
      return std::strtoull(argv[++i], nullptr, 10);
    };
    if (arg == "--seeds") {
      seeds = value("--seeds");
    } else if (arg == "--first-seed") {
      first_seed = value("--first-seed");
    } else if (arg == "--seed") {
      first_seed = value("--seed");
      seeds = 1;
      single = true;
    } else if (arg == "--voters") {
      voters = value("--voters");
      if (voters != 3 && voters != 5) {
        std::fprintf(stderr, "dst: --voters must be 3 or 5\n");
        return 2;
      }
    } else if (arg == "--expect-violation") {
      expect_violation = true;
    } else {
      std::fprintf(stderr, "usage: dst [--seeds N] [--first-seed S] [--seed S] "
                           "[--voters 3|5] [--expect-violation]\n");
      return 2;
    }
  }
  std::uint64_t total_steps = 0;
  std::uint64_t total_lazy = 0;
  std::uint64_t total_lazy_lost = 0;
  std::uint64_t total_violations = 0;
  std::uint64_t failed_seeds = 0;
  std::uint64_t first_failure = 0;
  for (auto s = first_seed; s < first_seed + seeds; ++s) {
    auto opt = derive_options(s, voters);
    simulation sim{opt};
    auto v = sim.run();
    total_steps += sim.steps();
    total_lazy += sim.lazy_writes();
    total_lazy_lost += sim.lazy_lost();
    total_violations += v;
    if (v > 0) {
      if (failed_seeds++ == 0)
        first_failure = s;
      if (failed_seeds <= 5 || single) {
        std::printf("seed %llu FAILED (%s): %s\n",
                    static_cast<unsigned long long>(s), opt.describe().c_str(),
                    sim.failure().c_str());
        std::printf("  reproduce: dst --seed %llu\n",
                    static_cast<unsigned long long>(s));
      }
    }
  }
  std::printf("dst: %llu seeds, %llu steps, %llu violations; %llu lazy "
              "commit-index writes, %llu of them lost in crashes\n",
              static_cast<unsigned long long>(seeds),
              static_cast<unsigned long long>(total_steps),
              static_cast<unsigned long long>(total_violations),
              static_cast<unsigned long long>(total_lazy),
              static_cast<unsigned long long>(total_lazy_lost));
  if (failed_seeds > 0)
    std::printf(
      "dst: %llu failing seeds; the first is seed %llu (caught after %llu of "
      "%llu seeds)\n",
      static_cast<unsigned long long>(failed_seeds),
      static_cast<unsigned long long>(first_failure),
      static_cast<unsigned long long>(first_failure - first_seed + 1),
      static_cast<unsigned long long>(seeds));
  auto failed = total_violations > 0;
  return failed == expect_violation ? 0 : 1;
}
