#include "actors/replica.hpp"

#include "actors/entry_stamp.hpp"
#include "actors/errors.hpp"
#include "actors/stage_trace.hpp"

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <utility>

namespace ees::actors {

void replica_state::flush() {
  if (starting)
    return; // The state machine is not restored yet.
  while (!persisting && core->has_ready()) {
    auto rd = core->take_ready();
    if (rd.soft)
      on_soft_state(*rd.soft);
    // 3. Messages that promise nothing durable leave at once.
    for (auto& m : rd.messages)
      send(std::move(m));
    // 4. Committed entries are durable already; apply them in order.
    if (!rd.committed.empty()) {
      stage_trace::stamp("commit", rd.committed.back().index);
      for (const auto& e : rd.committed)
        log_bytes += e.data.size();
      self
        ->request(applier, caf::infinite, atom::apply_v,
                  std::move(rd.committed))
        .then(
          [self = self](applied_batch& batch) {
            self->state.on_applied(batch);
          },
          [self = self](caf::error& err) { self->state.stop(std::move(err)); });
    }
    // 5. Confirmed reads wait for the state machine to catch up.
    for (const auto& rs : rd.read_states) {
      auto i = reads.find(rs.context);
      if (i == reads.end())
        continue;
      ready_reads.emplace(rs.index, std::move(i->second));
      reads.erase(i);
    }
    release_reads();
    if (!rd.must_persist()) {
      // Nothing to write, and every earlier ready is durable already.
      on_persisted(rd.ack, rd.messages_after_persist);
      continue;
    }
    if (!rd.sync) {
      // Only the commit index changed: volatile state, acknowledged at once
      // (ready.hpp, 1.). It rides on the next write, or the next tick writes
      // it alone: one storage round trip per commit fewer.
      deferred_state = rd.state;
      on_persisted(rd.ack, rd.messages_after_persist);
      continue;
    }
    storage::group_write w;
    w.group = group;
    // A synced hard state is the newer one: it holds the commit index too.
    w.state = rd.state ? rd.state : deferred_state;
    deferred_state.reset();
    w.snapshot = rd.snapshot;
    w.entries = std::move(rd.entries);
    w.sync = true;
    // 1. Persist; 2. the storage sends messages_after_persist once the
    // write is durable, and its ack reports the write to the core.
    persisting = true;
    std::vector<envelope> then;
    then.reserve(rd.messages_after_persist.size());
    for (auto& m : rd.messages_after_persist)
      then.push_back(envelope{group, std::move(m)});
    self
      ->request(storage, caf::infinite, atom::persist_v, std::move(w),
                std::move(then))
      .then(
        [self = self, ack = rd.ack, snap = rd.snapshot](atom::persisted) {
          auto& st = self->state;
          st.persisting = false;
          // The restore reaches the applier before any later entry.
          if (snap && snap->last_index.value > 0)
            st.on_installed(*snap);
          st.core->on_persisted(ack);
          st.flush();
        },
        [self = self](caf::error& err) {
          // Fail-stop: the storage could not make the ready durable.
          spdlog::error("g={} n={} persist failed (fail-stop): {}",
                        self->state.group.value, self->state.core->id().value,
                        describe(err));
          self->state.stop(std::move(err));
        });
    return;
  }
}

void replica_state::write_deferred_state() {
  if (!deferred_state)
    return;
  storage::group_write w;
  w.group = group;
  w.state = std::exchange(deferred_state, std::nullopt);
  w.sync = false;
  // Written in order behind earlier writes, unsynced and without waiting.
  self
    ->request(storage, caf::infinite, atom::persist_v, std::move(w),
              std::vector<envelope>{})
    .then([](atom::persisted) {},
          [self = self](caf::error& err) { self->state.stop(std::move(err)); });
}

void replica_state::stop(caf::error reason) {
  for (auto& [index, proposal] : proposals)
    proposal.promise.deliver(reason);
  proposals.clear();
  for (auto& [context, rp] : reads)
    rp.deliver(reason);
  reads.clear();
  for (auto& [index, rp] : ready_reads)
    rp.deliver(reason);
  ready_reads.clear();
  self->quit(std::move(reason));
}

void replica_state::on_persisted(const raft::persist_ack& ack,
                                 std::vector<raft::message>& after_persist) {
  core->on_persisted(ack);
  for (auto& m : after_persist)
    send(std::move(m));
}

void replica_state::on_applied(applied_batch& batch) {
  for (auto& r : batch.results) {
    auto i = proposals.find(r.index);
    if (i == proposals.end())
      continue;
    stage_trace::stamp("answer", r.index);
    if (i->second.term == r.term)
      i->second.promise.deliver(std::move(r.value));
    else
      i->second.promise.deliver(make_error(cluster_errc::proposal_dropped));
    proposals.erase(i);
  }
  // Proposals at applied indexes without a result were replaced by another
  // leader's no-op or config entry.
  while (!proposals.empty() && proposals.begin()->first <= batch.last) {
    proposals.begin()->second.promise.deliver(
      make_error(cluster_errc::proposal_dropped));
    proposals.erase(proposals.begin());
  }
  if (batch.last > applied)
    applied = batch.last;
  deadline = batch.next_deadline;
  if (advancing.value > 0 && applied >= advancing)
    advancing = log_index{0};
  core->on_applied(batch.last);
  // Received snapshots the core found old news are never installed.
  received.erase(received.begin(), received.upper_bound(applied));
  release_reads();
  flush();
  maybe_snapshot();
}

caf::result<std::string> replica_state::propose(const std::string& command) {
  if (command.empty() || command.size() > max_command_size)
    return make_error(cluster_errc::invalid_command);
  auto res = core->propose(stamp_command(wall_clock(), command));
  if (res.error != raft::raft_errc::ok)
    return raft::make_error(res.error);
  auto rp = self->make_response_promise<std::string>();
  if (auto i = proposals.find(res.index); i != proposals.end()) {
    i->second.promise.deliver(make_error(cluster_errc::proposal_dropped));
    proposals.erase(i);
  }
  stage_trace::stamp("propose", res.index);
  proposals.emplace(res.index,
                    pending_proposal{res.term, rp, ticks + answer_ticks});
  // The other proposals of the client batch are in the mailbox already: the
  // flush behind them hands them to the followers and the storage as one
  // ready, instead of this one alone and the rest after its fsync.
  flush_pending.arm(self);
  return rp;
}

void replica_state::expire_proposals() {
  for (auto i = proposals.begin(); i != proposals.end();) {
    if (i->second.due > ticks) {
      ++i;
      continue;
    }
    i->second.promise.deliver(make_error(cluster_errc::timed_out));
    i = proposals.erase(i);
  }
}

void replica_state::on_peer_down(node_id id) {
  lost_peers.insert(id);
  auto follows
    = core->leader() == id && core->current_role() == raft::role::follower;
  // Ends this follower's lease (node::report_unreachable), so that it
  // answers the other survivors' pre-votes at once.
  core->report_unreachable(id);
  if (starting || !follows) {
    flush();
    return;
  }
  // Rank among the surviving voters, by id: the first campaigns now, the
  // next one tick later if still leaderless, and so on, so that survivors
  // told at the same instant do not split the vote. A survivor whose
  // campaign fails (its pre-vote reached a voter that had not heard of the
  // loss yet, or its log is behind) tries again in its next slot.
  std::uint32_t rank = 0;
  std::uint32_t survivors = 0;
  for (auto v : core->config().voters) {
    if (v == id)
      continue;
    if (v == core->id())
      rank = survivors;
    ++survivors;
  }
  lost_leader = id;
  campaign_in = static_cast<int>(rank);
  campaign_period = static_cast<int>(std::max<std::uint32_t>(survivors, 1));
  campaigns_left = max_early_campaigns;
  maybe_campaign_early();
  flush();
}

void replica_state::maybe_campaign_early() {
  if (campaign_in < 0)
    return;
  if (campaign_in > 0) {
    --campaign_in;
    return;
  }
  campaign_in = -1;
  if (core->current_role() == raft::role::leader || core->leader() != no_node
      || campaigns_left <= 0)
    return; // Someone leads already (or the election timeout takes over).
  --campaigns_left;
  campaign_in = campaign_period - 1;
  spdlog::info("g={} n={} t={} lost the connection to leader {}: campaigning",
               group.value, core->id().value, core->current_term().value,
               lost_leader.value);
  core->campaign();
  flush();
}

void replica_state::maybe_advance_clock() {
  if (!leading || deadline < 0 || advancing.value > 0 || starting)
    return;
  auto now = wall_clock();
  if (now < deadline)
    return;
  auto res = core->propose(stamp_command(now, {}));
  if (res.error == raft::raft_errc::ok)
    advancing = res.index;
}

caf::result<log_index> replica_state::read() {
  auto context = ++next_read;
  if (auto ec = core->read_index(context); ec != raft::raft_errc::ok)
    return raft::make_error(ec);
  auto rp = self->make_response_promise<log_index>();
  reads.emplace(context, rp);
  flush();
  return rp;
}

replica_status replica_state::status() const {
  replica_status s;
  s.group = group;
  s.node = core->id();
  s.current_role = core->current_role();
  s.term = core->current_term();
  s.leader = core->leader();
  s.commit = core->commit_index();
  s.applied = applied;
  s.last_index = core->log().last_index();
  s.snapshot_index = core->log().snapshot_index();
  s.snapshots_installed = snapshots_installed;
  return s;
}

void replica_state::send(raft::message m) {
  if (m.type == raft::message_type::install_snapshot) {
    send_snapshot(std::move(m));
    return;
  }
  self->send(router, envelope{group, std::move(m)});
}

void replica_state::send_snapshot(raft::message m) {
  auto peer = m.to;
  if (m.snapshot.last_index.value == 0) {
    // The bootstrap snapshot holds no state.
    self->send(router, envelope{group, std::move(m)});
    core->report_snapshot(peer, true);
    return;
  }
  if (!snapshots_enabled) {
    core->report_snapshot(peer, false);
    return;
  }
  auto meta = m.snapshot;
  self->request(snapshots, caf::infinite, atom::snap_read_v, group, meta)
    .then(
      [self = self, m = std::move(m)](std::string& data) mutable {
        auto& st = self->state;
        auto to = m.to;
        spdlog::info("g={} n={} t={} sending snapshot at {} ({} bytes) to {}",
                     st.group.value, st.core->id().value,
                     st.core->current_term().value, m.snapshot.last_index.value,
                     data.size(), to.value);
        self->send(st.router,
                   envelope{st.group, std::move(m), std::move(data)});
        st.core->report_snapshot(to, true);
        st.flush();
      },
      [self = self, peer](caf::error& err) {
        // Compacted again meanwhile, or unreadable: the core probes again
        // and asks for the newest snapshot.
        auto& st = self->state;
        spdlog::warn("g={} n={} cannot send snapshot to {}: {}", st.group.value,
                     st.core->id().value, peer.value, caf::to_string(err));
        st.core->report_snapshot(peer, false);
        st.flush();
      });
}

void replica_state::receive_snapshot(envelope& env) {
  const auto& meta = env.msg.snapshot;
  // Mirrors the core (node::handle_install_snapshot): only a snapshot the
  // core will install needs its data on disk first.
  bool installs = env.msg.term >= core->current_term()
                  && meta.last_index > std::max(core->commit_index(),
                                                core->log().snapshot_index())
                  && !core->log().match_term(meta.last_index, meta.last_term);
  if (!installs) {
    step(env.msg);
    return;
  }
  if (!snapshots_enabled) {
    spdlog::error("g={} n={} dropped a snapshot at {}: snapshots are off",
                  group.value, core->id().value, meta.last_index.value);
    return;
  }
  auto data = env.snapshot_data;
  self
    ->request(snapshots, caf::infinite, atom::snap_save_v, group, meta,
              std::move(env.snapshot_data))
    .then(
      [self = self, msg = std::move(env.msg),
       data = std::move(data)](caf::ok_atom) mutable {
        auto& st = self->state;
        auto index = msg.snapshot.last_index;
        st.received[index] = {msg.snapshot, std::move(data)};
        st.step_late(msg);
      },
      [self = self](caf::error& err) {
        // Dropped: the leader sends the snapshot again.
        auto& st = self->state;
        spdlog::warn("g={} n={} cannot save a received snapshot: {}",
                     st.group.value, st.core->id().value, caf::to_string(err));
      });
}

void replica_state::step_late(const raft::message& m) {
  step(m);
  // Sent before the link to its sender broke: it must not renew a lease
  // that on_peer_down ended.
  if (lost_peers.count(m.from) > 0) {
    core->report_unreachable(m.from);
    flush();
  }
}

void replica_state::step(const raft::message& m) {
  if (auto ec = core->step(m); ec != raft::raft_errc::ok)
    spdlog::debug("g={} n={} t={} dropped {}: {}", group.value,
                  core->id().value, core->current_term().value,
                  raft::describe(m), raft::to_string(ec));
  flush();
}

void replica_state::on_installed(const raft::snapshot_meta& meta) {
  auto i = received.find(meta.last_index);
  if (i == received.end() || i->second.first != meta) {
    // Cannot happen: installs are stepped only after their data is saved.
    // Restart from disk, where the data is.
    spdlog::error("g={} n={} installed a snapshot at {} without its data",
                  group.value, core->id().value, meta.last_index.value);
    stop(make_error(cluster_errc::storage_failure));
    return;
  }
  ++snapshots_installed;
  snapshot_bytes = i->second.second.size();
  log_bytes = 0;
  spdlog::info("g={} n={} t={} installed snapshot at {}", group.value,
               core->id().value, core->current_term().value,
               meta.last_index.value);
  self
    ->request(applier, caf::infinite, atom::restore_v, meta,
              std::move(i->second.second))
    .then([](log_index) {},
          [self = self](caf::error& err) { self->state.stop(std::move(err)); });
  received.erase(received.begin(), std::next(i));
  if (meta.last_index > applied)
    applied = meta.last_index;
  // Proposals up to the snapshot can no longer be matched to results.
  while (!proposals.empty() && proposals.begin()->first <= meta.last_index) {
    proposals.begin()->second.promise.deliver(
      make_error(cluster_errc::proposal_dropped));
    proposals.erase(proposals.begin());
  }
  release_reads();
}

std::optional<raft::snapshot_meta>
replica_state::meta_at(log_index index) const {
  const auto& log = core->log();
  if (index <= log.snapshot_index() || index > log.last_index())
    return std::nullopt;
  auto term = log.term(index);
  if (!term)
    return std::nullopt;
  raft::snapshot_meta meta{index, *term, log.snapshot().config};
  // The membership in force at `index`: the newest config entry up to it.
  for (auto i = log.snapshot_index() + 1; i <= index; ++i) {
    const auto& e = log.at(i);
    if (e.type == raft::entry_type::config)
      if (auto m = raft::decode_membership(e.data))
        meta.config = std::move(*m);
  }
  return meta;
}

std::uint64_t replica_state::stagger(std::uint64_t amount) const {
  if (staggered)
    return 0;
  const auto& voters = core->config().voters;
  std::uint64_t rank = 0;
  for (auto v : voters) {
    if (v == core->id())
      break;
    ++rank;
  }
  auto n = std::max<std::uint64_t>(voters.size(), 1);
  return amount / n * std::min(rank, n - 1);
}

void replica_state::maybe_snapshot() {
  if (starting || snapshotting || !snapshots_enabled || threshold == 0)
    return;
  auto snap = core->log().snapshot_index();
  if (applied <= snap
      || applied.value - snap.value < threshold + stagger(threshold)
      || log_bytes < snapshot_bytes + stagger(snapshot_bytes))
    return;
  snapshotting = true;
  staggered = true;
  log_bytes = 0;
  // Timed for the log line: what a snapshot of this state costs
  // (bench/README.md, "Snapshots and tail latency").
  auto started = std::chrono::steady_clock::now();
  self->request(applier, caf::infinite, atom::snapshot_v)
    .then(
      [self = self, started](log_index index, std::string& data) {
        auto& st = self->state;
        st.snapshot_bytes = data.size();
        auto taken = std::chrono::steady_clock::now();
        auto meta = st.meta_at(index);
        if (!meta) {
          st.snapshotting = false; // Overtaken by an installed snapshot.
          return;
        }
        // 1. The data is durable ...
        self
          ->request(st.snapshots, caf::infinite, atom::snap_save_v, st.group,
                    *meta, std::move(data))
          .then(
            [self, meta = *meta, started, taken](caf::ok_atom) {
              auto& st = self->state;
              // 2. ... before the core and 3. the log store drop the prefix.
              auto ec = st.core->compact(meta.last_index);
              if (ec != raft::raft_errc::ok
                  && ec != raft::raft_errc::compacted) {
                spdlog::warn("g={} n={} cannot compact at {}: {}",
                             st.group.value, st.core->id().value,
                             meta.last_index.value, raft::to_string(ec));
                st.snapshotting = false;
                return;
              }
              self
                ->request(st.snapshots, caf::infinite, atom::compact_v,
                          st.group, meta)
                .then(
                  [self, meta, started, taken](caf::ok_atom) {
                    auto& st = self->state;
                    auto ms = [](auto d) {
                      return std::chrono::duration_cast<
                               std::chrono::milliseconds>(d)
                        .count();
                    };
                    auto saved = std::chrono::steady_clock::now();
                    spdlog::info("g={} n={} t={} snapshot at {} ({} bytes; "
                                 "taken in {} ms, saved in {} ms), log "
                                 "compacted",
                                 st.group.value, st.core->id().value,
                                 st.core->current_term().value,
                                 meta.last_index.value, st.snapshot_bytes,
                                 ms(taken - started), ms(saved - taken));
                    st.snapshotting = false;
                    st.maybe_snapshot();
                  },
                  [self](caf::error& err) {
                    self->state.stop(std::move(err));
                  });
            },
            [self](caf::error& err) {
              auto& st = self->state;
              spdlog::warn("g={} n={} snapshot not saved: {}", st.group.value,
                           st.core->id().value, caf::to_string(err));
              st.snapshotting = false;
            });
      },
      [self = self](caf::error& err) { self->state.stop(std::move(err)); });
}

void replica_state::start(const raft::persistent_state& restored) {
  auto log_meta = restored.snapshot;
  self
    ->request(snapshots, caf::infinite, atom::restore_v, group, log_meta,
              restored.state.commit_index)
    .then(
      [self = self](snapshot_start& s) {
        auto& st = self->state;
        st.snapshots_enabled = s.enabled;
        if (!st.threshold_overridden)
          st.threshold = s.threshold;
        if (s.found && s.meta.last_index > st.core->log().snapshot_index()
            && !st.core->log().match_term(s.meta.last_index,
                                          s.meta.last_term)) {
          // Not a snapshot of this log (a leftover of an earlier incarnation
          // of the group): the log alone rebuilds the state.
          spdlog::warn("g={} n={} ignoring snapshot file at {}: its term does "
                       "not match the log",
                       st.group.value, st.core->id().value,
                       s.meta.last_index.value);
          s.found = false;
        }
        if (!s.found || s.meta.last_index.value == 0) {
          if (st.core->log().snapshot_index().value > 0) {
            spdlog::error("g={} n={} no snapshot file matches the log",
                          st.group.value, st.core->id().value);
            st.stop(make_error(cluster_errc::storage_failure));
            return;
          }
          st.starting = false;
          st.flush();
          return;
        }
        spdlog::info("g={} n={} restarting from the snapshot at {}",
                     st.group.value, st.core->id().value,
                     s.meta.last_index.value);
        st.snapshot_bytes = s.data.size();
        self
          ->request(st.applier, caf::infinite, atom::restore_v, s.meta,
                    std::move(s.data))
          .then(
            [self](log_index) {
              auto& st = self->state;
              st.starting = false;
              st.flush();
            },
            [self](caf::error& err) { self->state.stop(std::move(err)); });
      },
      [self = self, log_meta](caf::error& err) {
        auto& st = self->state;
        if (log_meta.last_index.value > 0) {
          // The log starts after a snapshot nobody has: fail-stop.
          spdlog::error("g={} n={} cannot load its snapshot: {}",
                        st.group.value, st.core->id().value,
                        caf::to_string(err));
          st.stop(std::move(err));
          return;
        }
        // A storage without snapshot files: run without snapshots.
        st.starting = false;
        st.flush();
      });
}

void replica_state::on_soft_state(const raft::soft_state& soft) {
  bool now_leading = soft.current_role == raft::role::leader;
  spdlog::debug("g={} n={} t={} role {} leader {}", group.value,
                core->id().value, soft.term.value,
                raft::to_string(soft.current_role), soft.leader.value);
  if (now_leading == leading)
    return;
  leading = now_leading;
  advancing = log_index{0};
  self->send(applier, atom::leadership_v, leading, soft.term);
  if (!leading) {
    // Reads not yet confirmed can no longer be confirmed by this replica.
    for (auto& [context, rp] : reads)
      rp.deliver(raft::make_error(raft::raft_errc::not_leader));
    reads.clear();
  }
}

void replica_state::release_reads() {
  while (!ready_reads.empty() && ready_reads.begin()->first <= applied) {
    auto i = ready_reads.begin();
    i->second.deliver(i->first);
    ready_reads.erase(i);
  }
}

replica_actor::behavior_type
replica(replica_actor::stateful_pointer<replica_state> self, group_id group,
        raft::raft_config cfg, raft::persistent_state restored,
        peer_actor router, storage_actor storage, applier_actor applier,
        std::function<std::int64_t()> wall_clock, std::uint64_t answer_ticks) {
  auto& st = self->state;
  st.self = self;
  st.wall_clock = std::move(wall_clock);
  st.answer_ticks = std::max<std::uint64_t>(answer_ticks, 1);
  st.group = group;
  st.applied = restored.snapshot.last_index;
  raft::persistent_state restored_copy;
  restored_copy.state = restored.state;
  restored_copy.snapshot = restored.snapshot;
  st.core.emplace(cfg, std::move(restored));
  st.router = std::move(router);
  st.storage = std::move(storage);
  st.applier = std::move(applier);
  st.snapshots = caf::actor_cast<snapshot_storage_actor>(st.storage);
  spdlog::debug("g={} n={} t={} replica started at commit {}", group.value,
                cfg.id.value, st.core->current_term().value,
                st.core->commit_index().value);
  // Stopped by the server (unregister, shutdown, storage failure): nobody
  // waits forever for an answer.
  self->set_exit_handler(
    [self](caf::exit_msg& msg) { self->state.stop(std::move(msg.reason)); });
  st.start(restored_copy);
  return {
    [self](atom::tick) {
      ++self->state.ticks;
      self->state.expire_proposals();
      self->state.core->tick();
      self->state.maybe_campaign_early();
      self->state.maybe_advance_clock();
      self->state.flush();
      self->state.write_deferred_state();
      return caf::ok_atom::value;
    },
    [self](envelope& env) {
      auto& st = self->state;
      // Routed after the server's peer_down: the link is back.
      st.lost_peers.erase(env.msg.from);
      if (env.msg.type == raft::message_type::install_snapshot)
        st.receive_snapshot(env);
      else
        st.step(env.msg);
    },
    [self](atom::propose, const std::string& command) {
      return self->state.propose(command);
    },
    [self](atom::read) { return self->state.read(); },
    [self](atom::status) { return self->state.status(); },
    [self](atom::threshold, std::uint64_t threshold) {
      auto& st = self->state;
      st.threshold = threshold;
      st.threshold_overridden = true;
      st.maybe_snapshot();
    },
    [self](atom::flush) {
      self->state.flush_pending.fired();
      self->state.flush();
    },
    [self](atom::peer_down, node_id id) { self->state.on_peer_down(id); },
  };
}

} // namespace ees::actors
