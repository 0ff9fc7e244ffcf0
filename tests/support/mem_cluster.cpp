#include "tests/support/mem_cluster.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace ees::test {

namespace {

std::string node_name(node_id id) {
  return "node " + std::to_string(id.value);
}

std::pair<node_id, node_id> link_key(node_id a, node_id b) {
  return a < b ? std::make_pair(a, b) : std::make_pair(b, a);
}

mem_state_machine prefix(const mem_state_machine& sm, log_index index) {
  auto n = std::min<std::size_t>(sm.size(), index.value);
  return mem_state_machine(sm.begin(), sm.begin() + n);
}

bool same_entry(const raft::log_entry& a, const raft::log_entry& b) {
  return a == b;
}

} // namespace

// -- free functions
// -------------------------------------------------------------

const char* to_string(drop_reason r) {
  switch (r) {
    case drop_reason::link_cut:
      return "link cut";
    case drop_reason::node_down:
      return "node down";
    case drop_reason::unknown_node:
      return "unknown node";
    case drop_reason::filtered:
      return "dropped";
  }
  return "unknown";
}

std::string describe(const raft::membership& m) {
  std::ostringstream out;
  auto ids = [&](const std::set<node_id>& xs) {
    out << '(';
    auto first = true;
    for (auto x : xs) {
      out << (first ? "" : ",") << x.value;
      first = false;
    }
    out << ')';
  };
  out << "voters=";
  ids(m.voters);
  out << " learners=";
  ids(m.learners);
  return out.str();
}

std::string describe(const raft::log_entry& e) {
  std::ostringstream out;
  out << e.term.value << '/' << e.index.value;
  switch (e.type) {
    case raft::entry_type::normal:
      out << " normal \"" << e.data << '"';
      break;
    case raft::entry_type::noop:
      out << " noop";
      break;
    case raft::entry_type::config:
      if (auto m = raft::decode_membership(e.data))
        out << " config " << describe(*m);
      else
        out << " config <malformed \"" << e.data << "\">";
      break;
  }
  return out.str();
}

// -- mem_storage
// ------------------------------------------------------------------

log_index mem_storage::last_index() const {
  return snapshot.last_index + entries.size();
}

raft::persistent_state mem_storage::load() const {
  return raft::persistent_state{state, snapshot, entries};
}

void mem_storage::persist(const raft::ready& rd, mem_state_machine data) {
  if (rd.snapshot) {
    snapshot = *rd.snapshot;
    snapshot_data = std::move(data);
    entries.clear();
  }
  if (rd.state)
    state = *rd.state;
  if (rd.entries.empty())
    return;
  auto first = rd.entries.front().index;
  if (first <= snapshot.last_index || first > last_index() + 1) {
    std::ostringstream msg;
    msg << "ready entries start at " << first.value
        << " but the durable log holds (" << snapshot.last_index.value << ", "
        << last_index().value << "]";
    throw std::logic_error(msg.str());
  }
  entries.resize(first.value - snapshot.last_index.value - 1);
  for (const auto& e : rd.entries) {
    if (e.index != last_index() + 1)
      throw std::logic_error("ready entries are not contiguous at index "
                             + std::to_string(e.index.value));
    entries.push_back(e);
  }
}

void mem_storage::compact(const raft::snapshot_meta& meta,
                          mem_state_machine data) {
  if (meta.last_index < snapshot.last_index || meta.last_index > last_index())
    throw std::logic_error("compaction to "
                           + std::to_string(meta.last_index.value)
                           + " outside the durable log");
  auto drop = meta.last_index.value - snapshot.last_index.value;
  entries.erase(entries.begin(),
                entries.begin() + static_cast<std::ptrdiff_t>(drop));
  snapshot = meta;
  snapshot_data = std::move(data);
}

// -- mem_cluster: membership
// ------------------------------------------------------

mem_cluster::mem_cluster(raft::raft_config defaults)
  : defaults_(std::move(defaults)) {
  // nop
}

void mem_cluster::add_node(node_id id, const raft::membership& initial) {
  auto cfg = defaults_;
  cfg.id = id;
  cfg.seed = defaults_.seed + id.value;
  add_node(cfg, initial);
}

void mem_cluster::add_node(const raft::raft_config& cfg,
                           const raft::membership& initial) {
  if (auto err = raft::validate(cfg); !err.empty())
    throw std::invalid_argument("invalid raft_config for " + node_name(cfg.id)
                                + ": " + err);
  if (contains(cfg.id))
    throw std::invalid_argument(node_name(cfg.id) + " already exists");
  auto& n = nodes_[cfg.id];
  n.cfg = cfg;
  n.storage.snapshot = raft::snapshot_meta{log_index{0}, term_t{0}, initial};
  n.core = std::make_unique<raft::node>(n.cfg, n.storage.load());
}

void mem_cluster::add_voters(const std::set<node_id>& voters) {
  raft::membership m;
  m.voters = voters;
  for (auto id : voters)
    add_node(id, m);
}

void mem_cluster::add_joining_node(node_id id) {
  add_node(id, raft::membership{});
}

std::vector<node_id> mem_cluster::ids() const {
  std::vector<node_id> result;
  for (const auto& kv : nodes_)
    result.push_back(kv.first);
  return result;
}

mem_node& mem_cluster::at(node_id id) {
  auto i = nodes_.find(id);
  if (i == nodes_.end())
    throw std::out_of_range("no " + node_name(id));
  return i->second;
}

const mem_node& mem_cluster::at(node_id id) const {
  auto i = nodes_.find(id);
  if (i == nodes_.end())
    throw std::out_of_range("no " + node_name(id));
  return i->second;
}

mem_node& mem_cluster::live(node_id id) {
  auto& n = at(id);
  if (!n.alive())
    throw std::logic_error(node_name(id) + " is crashed");
  return n;
}

raft::node& mem_cluster::core(node_id id) {
  return *live(id).core;
}

const raft::node& mem_cluster::core(node_id id) const {
  const auto& n = at(id);
  if (!n.alive())
    throw std::logic_error(node_name(id) + " is crashed");
  return *n.core;
}

std::optional<node_id> mem_cluster::leader() const {
  std::optional<node_id> result;
  term_t best;
  for (const auto& [id, n] : nodes_) {
    if (!n.alive() || n.core->current_role() != raft::role::leader)
      continue;
    if (!result || n.core->current_term() > best) {
      result = id;
      best = n.core->current_term();
    }
  }
  return result;
}

// -- mem_cluster: time
// ----------------------------------------------------------------

void mem_cluster::tick(node_id id, std::uint32_t n) {
  auto& x = live(id);
  for (std::uint32_t i = 0; i < n; ++i) {
    x.core->tick();
    observe_leaders();
  }
}

void mem_cluster::tick_all(std::uint32_t n) {
  for (std::uint32_t i = 0; i < n; ++i)
    for (auto& [id, x] : nodes_)
      if (x.alive()) {
        x.core->tick();
        observe_leaders();
      }
}

void mem_cluster::tick_heartbeat(node_id id) {
  tick(id, live(id).cfg.heartbeat_ticks);
}

std::uint32_t mem_cluster::tick_election(node_id id) {
  return tick_election(std::vector<node_id>{id});
}

std::uint32_t mem_cluster::tick_election(const std::vector<node_id>& ids) {
  std::vector<std::pair<raft::role, term_t>> before;
  std::uint32_t limit = 0;
  for (auto id : ids) {
    auto& x = live(id);
    before.emplace_back(x.core->current_role(), x.core->current_term());
    auto bound = 2 * x.cfg.election_ticks;
    if (x.core->current_role() != raft::role::leader)
      --bound;
    limit = std::max(limit, bound);
  }
  for (std::uint32_t round = 1; round <= limit; ++round) {
    auto changed = false;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto& c = *live(ids[i]).core;
      c.tick();
      observe_leaders();
      if (c.current_role() != before[i].first
          || c.current_term() != before[i].second)
        changed = true;
    }
    if (changed)
      return round;
  }
  return limit;
}

// -- mem_cluster: the ready loop
// ---------------------------------------------------

bool mem_cluster::process_ready(node_id id) {
  auto& n = at(id);
  if (!n.alive() || !n.core->has_ready())
    return false;
  auto rd = n.core->take_ready();
  if (hooks.on_ready)
    hooks.on_ready(id, rd);
  // 1. Persist. A snapshot's content arrived with the install_snapshot
  //    message; the state machine is restored from it.
  mem_state_machine snap_data;
  if (rd.snapshot) {
    auto idx = rd.snapshot->last_index;
    auto i = n.incoming_snapshots.find(idx);
    if (i == n.incoming_snapshots.end())
      throw std::logic_error(node_name(id) + " installs a snapshot at "
                             + std::to_string(idx.value)
                             + " but no snapshot content arrived for it");
    snap_data = i->second;
    n.incoming_snapshots.erase(n.incoming_snapshots.begin(),
                               n.incoming_snapshots.upper_bound(idx));
    if (snap_data.size() != idx.value)
      throw std::logic_error("snapshot content of " + node_name(id)
                             + " does not end at its index");
  }
  n.storage.persist(rd, snap_data);
  if (rd.snapshot) {
    n.applied = snap_data;
    // State machine safety (§5.4.3) for the restored content.
    for (const auto& e : snap_data)
      if (e.index.value <= applied_history_.size()
          && !same_entry(applied_history_[e.index.value - 1], e)
          && violation_.empty())
        violation_ = node_name(id) + " restored a snapshot whose entry "
                     + describe(e) + " differs from the applied "
                     + describe(applied_history_[e.index.value - 1]);
  }
  // 2. Acknowledge, then send: `messages` could have left earlier, votes and
  //    append acks only now.
  n.core->on_persisted(rd.ack);
  for (auto& m : rd.messages)
    send(std::move(m));
  for (auto& m : rd.messages_after_persist)
    send(std::move(m));
  // 3. Apply committed entries in order.
  for (const auto& e : rd.committed) {
    if (e.index.value != n.applied.size() + 1)
      throw std::logic_error(node_name(id) + " was asked to apply "
                             + describe(e) + " after applying "
                             + std::to_string(n.applied.size()));
    if (e.index.value <= applied_history_.size()) {
      if (!same_entry(applied_history_[e.index.value - 1], e)
          && violation_.empty())
        violation_ = "state machine safety (§5.4.3): " + node_name(id)
                     + " applied " + describe(e) + " where another applied "
                     + describe(applied_history_[e.index.value - 1]);
    } else {
      applied_history_.push_back(e);
    }
    n.applied.push_back(e);
  }
  if (!rd.committed.empty())
    n.core->on_applied(rd.committed.back().index);
  // 4. Reads are served once applied; record them for the caller.
  for (const auto& r : rd.read_states)
    n.read_states.push_back(r);
  observe_leaders();
  return true;
}

std::size_t mem_cluster::process_all_ready() {
  std::size_t result = 0;
  for (auto id : ids())
    if (process_ready(id))
      ++result;
  return result;
}

// -- mem_cluster: the network
// ------------------------------------------------------

void mem_cluster::notify_drop(const raft::message& m, drop_reason why) {
  if (hooks.on_drop)
    hooks.on_drop(m, why);
  if (m.type != raft::message_type::install_snapshot || !report_snapshots_)
    return;
  // The snapshot stream failed; the leader probes again.
  auto i = nodes_.find(m.from);
  if (i != nodes_.end() && i->second.alive())
    i->second.core->report_snapshot(m.to, false);
}

void mem_cluster::send(raft::message m) {
  auto i = nodes_.find(m.to);
  if (i == nodes_.end())
    notify_drop(m, drop_reason::unknown_node);
  else if (!i->second.alive())
    notify_drop(m, drop_reason::node_down);
  else if (!link_up(m.from, m.to))
    notify_drop(m, drop_reason::link_cut);
  else
    in_flight_.push_back(std::move(m));
}

std::size_t mem_cluster::pending_for(node_id to) const {
  return static_cast<std::size_t>(
    std::count_if(in_flight_.begin(), in_flight_.end(),
                  [to](const raft::message& m) { return m.to == to; }));
}

mem_state_machine mem_cluster::snapshot_content(node_id from,
                                                log_index index) const {
  auto i = nodes_.find(from);
  if (i != nodes_.end()) {
    const auto& sender = i->second;
    if (sender.storage.snapshot.last_index == index)
      return sender.storage.snapshot_data;
    if (sender.applied.size() >= index.value)
      return prefix(sender.applied, index);
  }
  throw std::logic_error(node_name(from) + " sent a snapshot at "
                         + std::to_string(index.value)
                         + " but has no state machine content for it");
}

std::size_t mem_cluster::deliver(node_id to, const message_filter& select) {
  std::vector<raft::message> batch;
  std::vector<raft::message> rest;
  for (auto& m : in_flight_) {
    if (m.to == to && (!select || select(m)))
      batch.push_back(std::move(m));
    else
      rest.push_back(std::move(m));
  }
  in_flight_ = std::move(rest);
  std::size_t stepped = 0;
  for (const auto& m : batch) {
    auto i = nodes_.find(to);
    if (i == nodes_.end()) {
      notify_drop(m, drop_reason::unknown_node);
      continue;
    }
    auto& n = i->second;
    if (!n.alive()) {
      notify_drop(m, drop_reason::node_down);
      continue;
    }
    if (!link_up(m.from, to)) {
      notify_drop(m, drop_reason::link_cut);
      continue;
    }
    auto is_snapshot = m.type == raft::message_type::install_snapshot;
    if (is_snapshot) {
      auto idx = m.snapshot.last_index;
      n.incoming_snapshots[idx] = snapshot_content(m.from, idx);
    }
    auto result = n.core->step(m);
    ++stepped;
    if (hooks.on_deliver)
      hooks.on_deliver(m, result);
    observe_leaders();
    if (is_snapshot && report_snapshots_) {
      auto s = nodes_.find(m.from);
      if (s != nodes_.end() && s->second.alive())
        s->second.core->report_snapshot(to, result == raft::raft_errc::ok);
    }
  }
  return stepped;
}

std::size_t mem_cluster::deliver_all() {
  std::size_t result = 0;
  for (auto id : ids())
    result += deliver(id);
  return result;
}

std::size_t mem_cluster::drop(node_id to, const message_filter& select) {
  std::vector<raft::message> rest;
  std::vector<raft::message> dropped;
  for (auto& m : in_flight_) {
    if (m.to == to && (!select || select(m)))
      dropped.push_back(std::move(m));
    else
      rest.push_back(std::move(m));
  }
  in_flight_ = std::move(rest);
  for (const auto& m : dropped)
    notify_drop(m, drop_reason::filtered);
  return dropped.size();
}

bool mem_cluster::stabilize(std::size_t max_rounds) {
  return stabilize(ids(), max_rounds);
}

bool mem_cluster::stabilize(const std::vector<node_id>& ids,
                            std::size_t max_rounds) {
  for (std::size_t round = 0; round < max_rounds; ++round) {
    auto busy = false;
    for (auto id : ids)
      if (process_ready(id))
        busy = true;
    for (auto id : ids)
      if (pending_for(id) > 0) {
        deliver(id);
        busy = true;
      }
    if (!busy)
      return true;
  }
  return false;
}

// -- mem_cluster: faults
// ------------------------------------------------------------

void mem_cluster::cut(node_id a, node_id b) {
  if (a != b)
    cut_links_.insert(link_key(a, b));
}

void mem_cluster::isolate(node_id id) {
  for (const auto& kv : nodes_)
    cut(id, kv.first);
}

void mem_cluster::partition(const std::vector<std::set<node_id>>& groups) {
  for (std::size_t i = 0; i < groups.size(); ++i)
    for (std::size_t j = i + 1; j < groups.size(); ++j)
      for (auto a : groups[i])
        for (auto b : groups[j])
          cut(a, b);
}

void mem_cluster::heal() {
  cut_links_.clear();
}

bool mem_cluster::link_up(node_id a, node_id b) const {
  return cut_links_.count(link_key(a, b)) == 0;
}

void mem_cluster::crash(node_id id) {
  auto& n = live(id);
  n.core.reset();
  n.applied.clear();
  n.read_states.clear();
  n.incoming_snapshots.clear();
}

void mem_cluster::restart(node_id id) {
  auto& n = at(id);
  if (n.alive())
    throw std::logic_error(node_name(id) + " is not crashed");
  n.core = std::make_unique<raft::node>(n.cfg, n.storage.load());
  n.applied = n.storage.snapshot_data;
  observe_leaders();
}

raft::raft_errc mem_cluster::compact(node_id id, log_index index) {
  auto& n = live(id);
  if (index > n.core->applied_index())
    return raft::raft_errc::invalid_argument;
  auto result = n.core->compact(index);
  if (result != raft::raft_errc::ok)
    return result;
  const auto& meta = n.core->log().snapshot();
  if (meta.last_index > n.storage.snapshot.last_index)
    n.storage.compact(meta, prefix(n.applied, meta.last_index));
  return result;
}

// -- mem_cluster: checks
// --------------------------------------------------------------

void mem_cluster::observe_leaders() {
  for (const auto& [id, n] : nodes_) {
    if (!n.alive() || n.core->current_role() != raft::role::leader)
      continue;
    auto term = n.core->current_term();
    auto [i, added] = leaders_seen_.emplace(term, id);
    if (!added && i->second != id && violation_.empty())
      violation_ = "election safety (§5.2): " + node_name(i->second) + " and "
                   + node_name(id) + " both led term "
                   + std::to_string(term.value);
  }
}

std::string mem_cluster::check_invariants() {
  observe_leaders();
  if (!violation_.empty())
    return violation_;
  std::ostringstream err;
  // Per node: applied <= commit <= durable last index, applied content.
  for (const auto& [id, n] : nodes_) {
    if (!n.alive())
      continue;
    const auto& c = *n.core;
    if (c.commit_index() > c.log().last_index()
        || c.commit_index() > n.storage.last_index()) {
      err << node_name(id) << ": commit index " << c.commit_index().value
          << " beyond the log (last " << c.log().last_index().value
          << ", durable " << n.storage.last_index().value << ")";
      return err.str();
    }
    if (c.applied_index() > c.commit_index()
        || c.applied_index().value != n.applied.size()) {
      err << node_name(id) << ": applied index " << c.applied_index().value
          << ", commit index " << c.commit_index().value
          << ", state machine holds " << n.applied.size() << " entries";
      return err.str();
    }
    for (std::size_t i = 0; i < n.applied.size(); ++i)
      if (n.applied[i].index.value != i + 1) {
        err << node_name(id) << ": state machine entry " << i + 1
            << " carries index " << n.applied[i].index.value;
        return err.str();
      }
    term_t prev;
    for (auto i = c.log().first_index(); i <= c.log().last_index(); ++i) {
      const auto& e = c.log().at(i);
      if (e.index != i || e.term < prev) {
        err << node_name(id) << ": log entry at " << i.value << " is "
            << describe(e) << " after term " << prev.value;
        return err.str();
      }
      prev = e.term;
    }
  }
  // Log matching (§5.3): if two logs hold an entry with the same index and
  // term, they are identical up to it.
  for (auto a = nodes_.begin(); a != nodes_.end(); ++a) {
    for (auto b = std::next(a); b != nodes_.end(); ++b) {
      if (!a->second.alive() || !b->second.alive())
        continue;
      const auto& la = a->second.core->log();
      const auto& lb = b->second.core->log();
      auto lo = std::max(la.first_index(), lb.first_index());
      auto hi = std::min(la.last_index(), lb.last_index());
      if (lo > hi)
        continue;
      auto match = lo - 1;
      for (auto i = hi; i >= lo; i = i - 1) {
        if (la.at(i).term == lb.at(i).term) {
          match = i;
          break;
        }
        if (i == lo)
          break;
      }
      for (auto i = lo; i <= match; ++i)
        if (!same_entry(la.at(i), lb.at(i))) {
          err << "log matching (§5.3): " << node_name(a->first) << " holds "
              << describe(la.at(i)) << ", " << node_name(b->first) << " holds "
              << describe(lb.at(i)) << ", yet both hold "
              << describe(la.at(match));
          return err.str();
        }
    }
  }
  // Leader completeness (§5.4.1): the leader of the newest term observed holds
  // every applied entry above its snapshot.
  if (!leaders_seen_.empty()) {
    auto [term, id] = *leaders_seen_.rbegin();
    auto i = nodes_.find(id);
    if (i != nodes_.end() && i->second.alive()
        && i->second.core->current_role() == raft::role::leader
        && i->second.core->current_term() == term) {
      const auto& log = i->second.core->log();
      for (const auto& e : applied_history_) {
        if (e.index < log.first_index())
          continue;
        if (e.index > log.last_index() || !same_entry(log.at(e.index), e)) {
          err << "leader completeness (§5.4.1): leader " << node_name(id)
              << " of term " << term.value << " lacks applied entry "
              << describe(e);
          return err.str();
        }
      }
    }
  }
  return {};
}

} // namespace ees::test
