// An in-memory cluster of Raft cores for tests, demos and benchmarks.
//
// The harness plays every role the core leaves to its environment (after
// etcd-io/raft's `rafttest/interaction_env.go` and `raft_test.go` `network`):
// durable storage, the network, the state machine and snapshot transfer. It is
// fully deterministic: nodes and messages live in ordered containers, no clock
// is read and nothing sleeps. Time advances only through `tick`.
//
// The ready loop of one node (`process_ready`) follows the `ready` contract:
// persist snapshot, hard state and entries; call `on_persisted`; queue
// `messages` and then `messages_after_persist` on the network; apply
// `committed` and call `on_applied`. Because persisting is synchronous, the
// order of sends on the network matches what a real embedding may do.
#pragma once

#include "protocol/ids.hpp"
#include "protocol/raft/config.hpp"
#include "protocol/raft/errors.hpp"
#include "protocol/raft/node.hpp"
#include "protocol/raft/ready.hpp"
#include "protocol/raft/types.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ees::test {

/// The state machine of the harness: every applied entry in index order, so
/// `applied[i].index == i + 1`. Noop and config entries are included, which
/// makes "identical state machines" mean "identical applied logs".
using mem_state_machine = std::vector<raft::log_entry>;

/// Durable storage of one simulated server (etcd's MemoryStorage). It survives
/// `mem_cluster::crash`; nothing else about a node does.
///
/// Invariant: `entries` are contiguous from `snapshot.last_index + 1`, and
/// `snapshot_data` is the state machine after applying `snapshot.last_index`.
struct mem_storage {
  raft::hard_state state;
  raft::snapshot_meta snapshot;
  /// The "snapshot file": state machine content at `snapshot.last_index`.
  mem_state_machine snapshot_data;
  std::vector<raft::log_entry> entries;

  /// Index of the last durable entry (the snapshot index when none).
  log_index last_index() const;

  /// What a restarting core reads back.
  raft::persistent_state load() const;

  /// Persists the durable part of `rd` atomically, in the order the ready
  /// contract gives: snapshot (replacing the whole log), hard state, entries
  /// (replacing any stored suffix from the first new index).
  /// @param data State machine content at `rd.snapshot->last_index`; used only
  ///        when `rd.snapshot` is set.
  void persist(const raft::ready& rd, mem_state_machine data);

  /// Records a local snapshot at `meta.last_index` and drops the entries it
  /// covers (§7 log compaction).
  void compact(const raft::snapshot_meta& meta, mem_state_machine data);
};

/// One simulated server: a core (absent while crashed), its durable storage
/// and its volatile state machine.
struct mem_node {
  raft::raft_config cfg;
  /// Null while the node is crashed.
  std::unique_ptr<raft::node> core;
  mem_storage storage;
  /// Volatile: rebuilt from `storage.snapshot_data` and the log on restart.
  mem_state_machine applied;
  /// Reads confirmed by the core (ready::read_states), in arrival order. A
  /// read may be served once `applied.size() >= index`.
  std::vector<raft::read_state> read_states;
  /// Snapshot content shipped with install_snapshot messages, by snapshot
  /// index, until the ready that installs it arrives.
  std::map<log_index, mem_state_machine> incoming_snapshots;

  bool alive() const noexcept {
    return core != nullptr;
  }
};

/// Why the network discarded a message.
enum class drop_reason : std::uint8_t {
  link_cut, ///< A partition separates sender and receiver.
  node_down, ///< The receiver is crashed.
  unknown_node, ///< The receiver was never added to the cluster.
  filtered, ///< The caller dropped it explicitly (`drop`).
};

const char* to_string(drop_reason r);

/// Selects messages of the network; an empty filter selects all.
using message_filter = std::function<bool(const raft::message&)>;

/// Observers of what happens inside the harness, e.g. to print a trace. All
/// are optional and called synchronously.
struct mem_cluster_hooks {
  /// A node took `rd` from its core; called before it is persisted.
  std::function<void(node_id, const raft::ready&)> on_ready;
  /// `m` was stepped into its receiver, which returned `result`.
  std::function<void(const raft::message&, raft::raft_errc result)> on_deliver;
  /// The network discarded `m`.
  std::function<void(const raft::message&, drop_reason)> on_drop;
};

/// A deterministic in-memory cluster of `raft::node`s.
///
/// Typical use:
/// ```
/// mem_cluster c;
/// c.add_voters({node_id{1}, node_id{2}, node_id{3}});
/// c.core(node_id{1}).campaign();
/// c.stabilize();
/// c.core(node_id{1}).propose("x");
/// c.stabilize();
/// ```
/// Methods taking a node id throw std::out_of_range for unknown nodes, and
/// std::logic_error when the node must be alive but is crashed or when the
/// core breaks the contract the harness relies on.
class mem_cluster {
public:
  /// @param defaults Configuration template for new nodes. Its `id` is
  ///        overwritten per node; its `seed` is mixed with the node id so that
  ///        nodes draw different election timeouts.
  explicit mem_cluster(raft::raft_config defaults = {});

  mem_cluster(const mem_cluster&) = delete;
  mem_cluster& operator=(const mem_cluster&) = delete;

  // -- membership
  // --------------------------------------------------------------

  /// Configuration template for nodes added from now on.
  raft::raft_config& defaults() noexcept {
    return defaults_;
  }

  /// Adds a founding member bootstrapped with `initial` (a snapshot at index
  /// 0 holding the initial configuration).
  void add_node(node_id id, const raft::membership& initial);
  /// As above, with an explicit configuration (`cfg.id` names the node).
  void add_node(const raft::raft_config& cfg, const raft::membership& initial);
  /// Adds all of `voters` as founding members of one group.
  void add_voters(const std::set<node_id>& voters);
  /// Adds a node that joins later: empty membership, learns it from the
  /// leader (add it with a conf change first, e.g. add_learner).
  void add_joining_node(node_id id);

  bool contains(node_id id) const {
    return nodes_.count(id) > 0;
  }
  /// All node ids, ascending.
  std::vector<node_id> ids() const;
  mem_node& at(node_id id);
  const mem_node& at(node_id id) const;
  /// The core of a live node. @throws std::logic_error when crashed.
  raft::node& core(node_id id);
  const raft::node& core(node_id id) const;
  /// The live leader with the highest term, if any.
  std::optional<node_id> leader() const;

  // -- time
  // --------------------------------------------------------------------

  /// Ticks a live node `n` times.
  void tick(node_id id, std::uint32_t n = 1);
  /// Ticks every live node `n` times, in id order, one round at a time.
  void tick_all(std::uint32_t n = 1);
  /// Ticks `heartbeat_ticks` times.
  void tick_heartbeat(node_id id);
  /// Ticks until one election timeout fires: stops after the tick that changes
  /// the node's role or term. Bounded by `2 * election_ticks - 1` ticks for a
  /// non-leader (its randomized timeout lies in [election_ticks, 2 *
  /// election_ticks), so exactly one timeout fires from a freshly reset
  /// timer) and by `2 * election_ticks` for a leader (a check-quorum round
  /// counts the peers heard during the previous round, thesis §6.2, so an
  /// isolated leader steps down within two rounds). Returns the number of
  /// ticks.
  std::uint32_t tick_election(node_id id);
  /// Ticks `ids` in lockstep, one tick each per round in the given order,
  /// until the end of the first round in which any of them changed role or
  /// term, bounded as above (largest bound among `ids`). Models servers whose
  /// clocks run together, e.g. followers that lost their leader at the same
  /// moment. Returns the number of rounds.
  std::uint32_t tick_election(const std::vector<node_id>& ids);

  // -- the ready loop
  // ------------------------------------------------------------

  /// Takes, persists and acknowledges one ready of a live node, queues its
  /// messages and applies its committed entries. Returns false when the node
  /// had no ready (or is crashed).
  bool process_ready(node_id id);
  /// process_ready on every live node in id order; returns how many had one.
  std::size_t process_all_ready();

  // -- the network
  // ------------------------------------------------------------------

  /// Messages sent but not yet delivered or dropped, in send order.
  const std::vector<raft::message>& in_flight() const noexcept {
    return in_flight_;
  }
  /// Number of in-flight messages addressed to `to`.
  std::size_t pending_for(node_id to) const;
  /// Steps every in-flight message addressed to `to` that `select` accepts,
  /// in send order, and removes it from the network. Messages across a cut
  /// link or to a crashed node are dropped instead. Messages the receiver's
  /// steps produce wait for its next ready. Returns the number stepped.
  std::size_t deliver(node_id to, const message_filter& select = {});
  /// deliver() to every node in id order; returns the number stepped.
  std::size_t deliver_all();
  /// Discards every in-flight message addressed to `to` that `select`
  /// accepts. Returns the number dropped.
  std::size_t drop(node_id to, const message_filter& select = {});

  /// Loops process_all_ready and deliver_all until nothing is left to do, at
  /// most `max_rounds` rounds. Returns true when the cluster became quiet.
  /// Does not tick.
  bool stabilize(std::size_t max_rounds = 1000);
  /// As above, restricted to `ids`: only they process readies and receive
  /// messages; messages to other nodes stay in flight.
  bool stabilize(const std::vector<node_id>& ids,
                 std::size_t max_rounds = 1000);

  // -- faults
  // ------------------------------------------------------------------

  /// Cuts the link between `a` and `b` in both directions.
  void cut(node_id a, node_id b);
  /// Cuts every link of `id`.
  void isolate(node_id id);
  /// Cuts every link between nodes of different `groups`; links inside a
  /// group, and of nodes in no group, are left as they are.
  void partition(const std::vector<std::set<node_id>>& groups);
  /// Restores every link.
  void heal();
  bool link_up(node_id a, node_id b) const;

  /// Loses the core, its unpersisted work, its state machine and the messages
  /// it had not yet handed out; durable storage survives. Messages already
  /// sent by the node stay in flight.
  void crash(node_id id);
  /// Rebuilds the core from durable storage and the state machine from the
  /// stored snapshot; the core re-delivers committed entries after it.
  void restart(node_id id);

  /// Compacts the log of a live node up to `index` (§7): tells the core and
  /// stores the state machine at `index` as the node's snapshot. Returns
  /// `invalid_argument` without touching the core when `index` is beyond
  /// the applied index, otherwise what `node::compact` returns.
  raft::raft_errc compact(node_id id, log_index index);

  /// Whether a delivered install_snapshot is followed by
  /// `report_snapshot(peer, true)` on the sender, and a dropped one by
  /// `report_snapshot(peer, false)`, as a snapshot stream would report
  /// (default true).
  void set_report_snapshots(bool on) noexcept {
    report_snapshots_ = on;
  }

  // -- checks
  // ------------------------------------------------------------------

  /// Checks the safety properties of Figure 3 plus harness-level
  /// consistency: at most one leader per term over the whole observed
  /// history; log matching between live nodes; state machine safety over
  /// every entry ever applied (including across crashes and snapshot
  /// restores); the leader of the newest observed term holds every applied
  /// entry above its snapshot; per node applied <= commit <= last durable
  /// index and non-decreasing terms in the log. Returns an empty string when
  /// all hold, otherwise a description of the first violation.
  std::string check_invariants();

  mem_cluster_hooks hooks;

private:
  void observe_leaders();
  void send(raft::message m);
  void notify_drop(const raft::message& m, drop_reason why);
  mem_state_machine snapshot_content(node_id from, log_index index) const;
  mem_node& live(node_id id);

  raft::raft_config defaults_;
  std::map<node_id, mem_node> nodes_;
  std::vector<raft::message> in_flight_;
  /// Cut links, stored as (min, max) pairs.
  std::set<std::pair<node_id, node_id>> cut_links_;
  /// Every (term, leader) the harness observed, for election safety (§5.2).
  std::map<term_t, node_id> leaders_seen_;
  /// The longest applied prefix any node reached; every later apply and
  /// snapshot restore must agree with it (state machine safety, §5.4.3).
  mem_state_machine applied_history_;
  /// First violation seen while processing, reported by check_invariants.
  std::string violation_;
  bool report_snapshots_ = true;
};

/// Renders an entry as `term/index type data`, e.g. `2/5 normal "x"`,
/// `2/4 noop`, `3/7 config voters=(1,2,3) learners=(4)`.
std::string describe(const raft::log_entry& e);

/// Renders a membership as `voters=(1,2,3) learners=(4)`.
std::string describe(const raft::membership& m);

} // namespace ees::test
