#include "actors/replica.hpp"

#include "actors/errors.hpp"

#include <caf/event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include <utility>

namespace ees::actors {

void replica_state::flush() {
  while (!persisting && core->has_ready()) {
    auto rd = core->take_ready();
    if (rd.soft)
      on_soft_state(*rd.soft);
    // 3. Messages that promise nothing durable leave at once.
    for (auto& m : rd.messages)
      send(std::move(m));
    // 4. Committed entries are durable already; apply them in order.
    if (!rd.committed.empty()) {
      self
        ->request(applier, caf::infinite, atom::apply_v,
                  std::move(rd.committed))
        .then([self
               = self](applied_batch& batch) { self->state.on_applied(batch); },
              [self = self](caf::error& err) { self->quit(std::move(err)); });
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
    if (rd.snapshot)
      spdlog::warn("g={} n={} t={} snapshot install at {} without data "
                   "transfer (not implemented yet)",
                   group.value, core->id().value, core->current_term().value,
                   rd.snapshot->last_index.value);
    if (!rd.must_persist()) {
      // Nothing to write, and every earlier ready is durable already.
      on_persisted(rd.ack, rd.messages_after_persist);
      continue;
    }
    // 1. Persist, and 2. only on the ack release messages_after_persist.
    persisting = true;
    storage::group_write w;
    w.group = group;
    w.state = rd.state;
    w.snapshot = rd.snapshot;
    w.entries = std::move(rd.entries);
    self->request(storage, caf::infinite, atom::persist_v, std::move(w))
      .then(
        [self = self, ack = rd.ack,
         after
         = std::move(rd.messages_after_persist)](atom::persisted) mutable {
          auto& st = self->state;
          st.persisting = false;
          st.on_persisted(ack, after);
          st.flush();
        },
        [self = self](caf::error& err) {
          // Fail-stop: the storage could not make the ready durable.
          spdlog::error("g={} n={} persist failed: {}", self->state.group.value,
                        self->state.core->id().value, caf::to_string(err));
          self->quit(std::move(err));
        });
    return;
  }
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
  core->on_applied(batch.last);
  release_reads();
  flush();
}

caf::result<std::string> replica_state::propose(std::string command) {
  auto res = core->propose(std::move(command));
  if (res.error != raft::raft_errc::ok)
    return raft::make_error(res.error);
  auto rp = self->make_response_promise<std::string>();
  if (auto i = proposals.find(res.index); i != proposals.end()) {
    i->second.promise.deliver(make_error(cluster_errc::proposal_dropped));
    proposals.erase(i);
  }
  proposals.emplace(res.index, pending_proposal{res.term, rp});
  flush();
  return rp;
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
  return s;
}

void replica_state::send(raft::message m) {
  self->send(router, envelope{group, std::move(m)});
}

void replica_state::on_soft_state(const raft::soft_state& soft) {
  bool now_leading = soft.current_role == raft::role::leader;
  spdlog::debug("g={} n={} t={} role {} leader {}", group.value,
                core->id().value, soft.term.value,
                raft::to_string(soft.current_role), soft.leader.value);
  if (now_leading == leading)
    return;
  leading = now_leading;
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
        peer_actor router, storage_actor storage, applier_actor applier) {
  auto& st = self->state;
  st.self = self;
  st.group = group;
  st.applied = restored.snapshot.last_index;
  st.core.emplace(cfg, std::move(restored));
  st.router = std::move(router);
  st.storage = std::move(storage);
  st.applier = std::move(applier);
  spdlog::debug("g={} n={} t={} replica started at commit {}", group.value,
                cfg.id.value, st.core->current_term().value,
                st.core->commit_index().value);
  st.flush();
  return {
    [self](atom::tick) {
      self->state.core->tick();
      self->state.flush();
    },
    [self](envelope& env) {
      auto& st = self->state;
      if (auto ec = st.core->step(env.msg); ec != raft::raft_errc::ok)
        spdlog::debug("g={} n={} t={} dropped {}: {}", st.group.value,
                      st.core->id().value, st.core->current_term().value,
                      raft::describe(env.msg), raft::to_string(ec));
      st.flush();
    },
    [self](atom::propose, std::string& command) {
      return self->state.propose(std::move(command));
    },
    [self](atom::read) { return self->state.read(); },
    [self](atom::status) { return self->state.status(); },
  };
}

} // namespace ees::actors
