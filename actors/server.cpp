#include "actors/server.hpp"

#include "actors/applier.hpp"
#include "actors/errors.hpp"
#include "actors/replica.hpp"
#include "actors/stage_trace.hpp"

#include <caf/actor_cast.hpp>
#include <caf/exit_reason.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>

namespace ees::actors {

void server_state::route(envelope& env) {
  if (env.msg.to == cfg.id) {
    stage_trace::message(true, env.msg);
    auto i = groups.find(env.group);
    if (i != groups.end() && i->second.replica)
      self->send(i->second.replica, std::move(env));
    return; // Unknown or restarting group: Raft tolerates the loss.
  }
  if (peers.count(env.msg.to) > 0)
    enqueue(std::move(env));
}

void server_state::adopt_sender(node_id from) {
  if (from == cfg.id || peers.count(from) > 0)
    return;
  auto sender = self->current_sender();
  if (!sender || sender->node() == self->node())
    return;
  // Watched like the transport's links: its loss is the peer's loss.
  self->monitor(sender);
  set_link(from, caf::actor_cast<peer_actor>(std::move(sender)));
}

void server_state::set_link(node_id id, peer_actor link) {
  // The storage sends what waits for a write straight to the link.
  self->send(storage, atom::connect_peer_v, id, link);
  if (link)
    peers[id] = std::move(link);
  else
    peers.erase(id);
}

void server_state::peer_lost(node_id id) {
  set_link(id, peer_actor{});
  outbox.erase(id);
  for (auto& [group, hosted] : groups)
    if (hosted.replica)
      self->send(hosted.replica, atom::peer_down_v, id);
}

void server_state::enqueue(envelope&& env) {
  outbox[env.msg.to].push_back(std::move(env));
  if (ticks_pending == 0)
    schedule_flush();
}

void server_state::schedule_flush() {
  flush_pending.arm(self);
}

void server_state::flush_outbox() {
  for (auto& [node, batch] : outbox) {
    if (batch.empty())
      continue;
    auto i = peers.find(node);
    if (i != peers.end()) {
      for (const auto& env : batch)
        stage_trace::message(false, env.msg);
      self->send(i->second, std::move(batch));
    }
    batch.clear();
  }
}

void server_state::tick_done(std::uint64_t round) {
  if (round != tick_round || ticks_pending == 0)
    return; // A round that ended already.
  if (--ticks_pending == 0)
    flush_outbox();
}

void server_state::on_tick(std::uint64_t generation) {
  if (generation != tick_generation)
    return; // A timer of an earlier start.
  // A round some replica never answered ends here.
  ticks_pending = 0;
  flush_outbox();
  auto round = ++tick_round;
  for (auto& [group, hosted] : groups) {
    if (!hosted.replica)
      continue;
    ++ticks_pending;
    self->request(hosted.replica, caf::infinite, atom::tick_v)
      .then([this, round](caf::ok_atom) { tick_done(round); },
            [this, round](caf::error&) { tick_done(round); });
  }
  self->delayed_send(self, cfg.tick_interval, atom::tick_v, tick_generation);
}

raft::raft_config server_state::raft_config_for(group_id group) const {
  raft::raft_config rc;
  rc.id = cfg.id;
  rc.election_ticks = cfg.election_ticks;
  rc.heartbeat_ticks = 1;
  // Followers learn a new commit index from the next append or heartbeat
  // (raft_config::broadcast_commit): every node pushes notifications and
  // clients subscribe at every node, so a follower applying up to a tick
  // later delays nobody. Measured on this 2-core machine at concurrency 1,
  // with the replica's deferred commit-index write, in five interleaved A/B
  // pairs: server CPU per commit 15-28% lower, commit p50 2-25% lower (the
  // machine is noisy); no change at concurrency 64.
  rc.broadcast_commit = false;
  // Deterministic per (node, group): elections of different groups spread.
  rc.seed = group.value * 0x9E3779B97F4A7C15ull + cfg.id.value;
  return rc;
}

caf::result<caf::ok_atom>
server_state::register_group(group_id group, raft::membership voters,
                             cluster::state_machine_ptr machine) {
  if (storage_failure)
    return make_error(cluster_errc::storage_failure, describe(storage_failure));
  if (groups.count(group) > 0 || registering.count(group) > 0)
    return make_error(cluster_errc::already_registered);
  registering.insert(group);
  auto rp = self->make_response_promise<caf::ok_atom>();
  self
    ->request(storage, caf::infinite, atom::register__v, group,
              std::move(voters))
    .then(
      [this, group, machine, rp](raft::persistent_state& ps) mutable {
        registering.erase(group);
        auto& hosted = groups[group];
        hosted.machine = machine;
        hosted.applier = self->spawn(applier, group, cfg.id, machine,
                                     caf::actor_cast<notify_actor>(self),
                                     cfg.detached_snapshots);
        self->monitor(hosted.applier);
        spdlog::info("g={} n={} t={} registered (commit {}, {} entries)",
                     group.value, cfg.id.value, ps.state.current_term.value,
                     ps.state.commit_index.value, ps.entries.size());
        start_replica(group, std::move(ps));
        rp.deliver(caf::ok_atom::value);
      },
      [this, group, rp](caf::error& err) mutable {
        registering.erase(group);
        rp.deliver(std::move(err));
      });
  return rp;
}

caf::result<caf::ok_atom> server_state::unregister_group(group_id group) {
  auto i = groups.find(group);
  if (i == groups.end())
    return make_error(cluster_errc::unknown_group);
  if (i->second.replica)
    self->send_exit(i->second.replica, caf::exit_reason::user_shutdown);
  if (i->second.applier)
    self->send_exit(i->second.applier, caf::exit_reason::user_shutdown);
  groups.erase(i);
  spdlog::info("g={} n={} unregistered", group.value, cfg.id.value);
  // The storage serves requests in order: pending persists of the stopped
  // replica are written before the group is deleted.
  return self->delegate(storage, atom::unregister_v, group);
}

void server_state::start_replica(group_id group,
                                 raft::persistent_state restored) {
  auto i = groups.find(group);
  if (i == groups.end())
    return; // Unregistered meanwhile.
  auto router = caf::actor_cast<peer_actor>(self);
  // The replica bounds how long a proposal waits, in its ticks: a timeout
  // of CAF's request would cost two wake-ups of CAF's clock thread per
  // call (set and cancel).
  auto answer_ticks = static_cast<std::uint64_t>(
    cfg.client_timeout
    / std::max(cfg.tick_interval, std::chrono::milliseconds{1}));
  i->second.replica = self->spawn(
    replica, group, raft_config_for(group), std::move(restored), router,
    storage, i->second.applier, cfg.wall_clock, answer_ticks);
  self->monitor(i->second.replica);
}

void server_state::on_down(const caf::down_msg& msg) {
  for (auto& [id, peer] : peers) {
    if (peer.address() == msg.source) {
      peer_lost(id); // An adopted link (adopt_sender) broke.
      return;
    }
  }
  // A client went away: drop its subscriptions.
  for (auto i = subscriptions.begin(); i != subscriptions.end();) {
    auto& sinks = i->second;
    sinks.erase(std::remove_if(sinks.begin(), sinks.end(),
                               [&](const client_sink_actor& s) {
                                 return s.address() == msg.source;
                               }),
                sinks.end());
    i = sinks.empty() ? subscriptions.erase(i) : std::next(i);
  }
  if (msg.source == storage.address()) {
    // Fail-stop (DESIGN.md §3): nothing can be made durable any more, so no
    // replica of this server may vote, acknowledge or lead again. The
    // server stays up to report it; a restart recovers from the disk.
    spdlog::error("n={} storage stopped ({}): every group fails (fail-stop); "
                  "restart the node to recover from disk",
                  cfg.id.value, describe(msg.reason));
    storage_failure
      = msg.reason ? msg.reason : make_error(cluster_errc::storage_failure);
    for (auto& [group, hosted] : groups)
      if (!hosted.failure)
        fail_group(group, hosted, storage_failure);
    return;
  }
  for (auto& [group, hosted] : groups) {
    if (hosted.replica && msg.source == hosted.replica.address()) {
      if (is_storage_failure(msg.reason) || storage_failure) {
        // Restarting from a storage that failed cannot help.
        fail_group(group, hosted, msg.reason);
        return;
      }
      spdlog::warn("g={} n={} replica down ({}): restarting from disk",
                   group.value, cfg.id.value, caf::to_string(msg.reason));
      hosted.replica = nullptr;
      auto g = group;
      self->request(storage, caf::infinite, atom::load_v, g)
        .then(
          [this, g](raft::persistent_state& ps) {
            auto j = groups.find(g);
            if (j != groups.end() && !j->second.replica && !j->second.failure)
              start_replica(g, std::move(ps));
          },
          [this, g](caf::error& err) {
            spdlog::error("g={} n={} restart failed: {}", g.value, cfg.id.value,
                          describe(err));
            auto j = groups.find(g);
            if (j != groups.end() && !j->second.failure)
              fail_group(g, j->second, err);
          });
      return;
    }
    if (hosted.applier && msg.source == hosted.applier.address()) {
      // The state machine failed: the group cannot make progress here.
      spdlog::error("g={} n={} applier down ({}): stopping the group",
                    group.value, cfg.id.value, caf::to_string(msg.reason));
      if (hosted.replica)
        self->send_exit(hosted.replica, caf::exit_reason::user_shutdown);
      groups.erase(group);
      return;
    }
  }
}

void server_state::fail_group(group_id group, hosted_group& hosted,
                              const caf::error& reason) {
  spdlog::error("g={} n={} group failed (fail-stop), not retried: {}",
                group.value, cfg.id.value, describe(reason));
  hosted.failure = reason ? reason : make_error(cluster_errc::storage_failure);
  // Nothing of the group leaves any more, queued messages included.
  for (auto& [node, batch] : outbox)
    batch.erase(std::remove_if(
                  batch.begin(), batch.end(),
                  [group](const envelope& env) { return env.group == group; }),
                batch.end());
  if (hosted.replica) {
    // Its exit handler answers whatever waits on it with the reason.
    self->demonitor(hosted.replica.address());
    self->send_exit(hosted.replica, hosted.failure);
    hosted.replica = nullptr;
  }
  if (hosted.applier) {
    self->demonitor(hosted.applier.address());
    self->send_exit(hosted.applier, hosted.failure);
    hosted.applier = nullptr;
  }
}

replica_status server_state::failed_status(group_id group,
                                           const hosted_group& hosted) const {
  replica_status st;
  st.group = group;
  st.node = cfg.id;
  st.failure = describe(hosted.failure);
  return st;
}

void server_state::stop_all(const caf::error& reason) {
  ++tick_generation;
  for (auto& [group, hosted] : groups) {
    if (hosted.replica)
      self->send_exit(hosted.replica, reason);
    if (hosted.applier)
      self->send_exit(hosted.applier, reason);
  }
  groups.clear();
  if (storage)
    self->send_exit(storage, reason);
}

caf::expected<replica_actor> server_state::find(group_id group) const {
  auto i = groups.find(group);
  if (i == groups.end())
    return make_error(cluster_errc::unknown_group);
  if (i->second.failure)
    return make_error(cluster_errc::group_failed, describe(i->second.failure));
  if (!i->second.replica)
    return make_error(cluster_errc::replica_restarting);
  return i->second.replica;
}

std::string server_state::address_of(node_id id) const {
  auto i = extras.addresses.find(id);
  return i != extras.addresses.end() ? i->second : std::string{};
}

namespace {

bool is_not_leader(const caf::error& err) {
  auto not_leader = raft::make_error(raft::raft_errc::not_leader);
  return err.category() == not_leader.category()
         && err.code() == not_leader.code();
}

client_reply failed(std::string error) {
  client_reply reply;
  reply.error = std::move(error);
  return reply;
}

/// The reply function of a single-call request: completes its promise.
server_state::reply_fn
deliver_to(caf::typed_response_promise<client_reply> rp) {
  return [rp](client_reply reply) mutable {
    rp.deliver(std::move(reply));
  };
}

} // namespace

void server_state::reply_not_leader(reply_fn done, replica_actor replica) {
  // Ask the replica whom it follows, for the hint.
  self->request(replica, cfg.client_timeout, atom::status_v)
    .then(
      [this, done](replica_status& st) {
        auto reply = failed("not_leader");
        reply.leader = st.leader;
        reply.leader_address = address_of(st.leader);
        done(std::move(reply));
      },
      [done](caf::error&) { done(failed("not_leader")); });
}

void server_state::client_propose(group_id group, std::string command,
                                  reply_fn done) {
  auto r = find(group);
  if (!r)
    return done(failed(error_name(r.error())));
  if (const auto& machine = groups[group].machine) {
    // Malformed commands are answered here and never reach the log.
    if (auto rejected = machine->check(command); !rejected.empty()) {
      client_reply reply;
      reply.ok = true;
      reply.value = std::move(rejected);
      return done(std::move(reply));
    }
  }
  auto replica = *r;
  self->request(replica, caf::infinite, atom::propose_v, std::move(command))
    .then(
      [done](std::string& value) {
        client_reply reply;
        reply.ok = true;
        reply.value = std::move(value);
        done(std::move(reply));
      },
      [this, done, replica](caf::error& err) {
        if (is_not_leader(err))
          reply_not_leader(done, replica);
        else
          done(failed(error_name(err)));
      });
}

void server_state::client_query(group_id group, std::uint8_t level,
                                std::string request, reply_fn done) {
  auto r = find(group);
  if (!r)
    return done(failed(error_name(r.error())));
  if (level > static_cast<std::uint8_t>(read_consistency::stale))
    return done(failed("invalid_consistency"));
  auto replica = *r;
  auto applier = groups[group].applier;
  auto answer = [this, done, applier, request = std::move(request)]() {
    self->request(applier, caf::infinite, atom::query_v, request)
      .then(
        [done](log_index applied, std::string& value) {
          client_reply reply;
          reply.ok = true;
          reply.value = std::move(value);
          reply.applied = applied;
          done(std::move(reply));
        },
        [done](caf::error& err) { done(failed(error_name(err))); });
  };
  auto on_error = [this, done, replica](caf::error& err) {
    if (is_not_leader(err))
      reply_not_leader(done, replica);
    else
      done(failed(error_name(err)));
  };
  switch (static_cast<read_consistency>(level)) {
    case read_consistency::stale:
      answer();
      break;
    case read_consistency::leader:
      self->request(replica, caf::infinite, atom::status_v)
        .then(
          [this, done, replica, answer](replica_status& st) {
            if (st.current_role == raft::role::leader)
              answer();
            else
              reply_not_leader(done, replica);
          },
          on_error);
      break;
    case read_consistency::linearizable:
      // ReadIndex (thesis §6.4): the replica answers once its state machine
      // applied the confirmed read index, so the applier's state is fresh.
      self->request(replica, caf::infinite, atom::read_v)
        .then([answer](log_index) { answer(); }, on_error);
      break;
  }
}

void server_state::client_calls(std::vector<client_call>& calls,
                                client_sink_actor sink) {
  if (!sink)
    return;
  auto addr = sink.address();
  for (auto& call : calls) {
    // The answer joins the sink's batch; the first one of a turn schedules
    // the flush that sends the batch.
    reply_fn done = [this, sink, addr, id = call.id](client_reply reply) {
      auto& [to, batch] = answer_outbox[addr];
      if (!to)
        to = sink;
      batch.push_back(client_answer{id, std::move(reply)});
      schedule_flush();
    };
    if (call.is_query)
      client_query(call.group, call.level, std::move(call.payload),
                   std::move(done));
    else
      client_propose(call.group, std::move(call.payload), std::move(done));
  }
}

void server_state::flush_answers() {
  for (auto& [addr, entry] : answer_outbox)
    if (!entry.second.empty())
      self->send(entry.first, atom::answers_v, std::move(entry.second));
  answer_outbox.clear();
}

caf::result<caf::ok_atom> server_state::subscribe(group_id group,
                                                  std::string owner,
                                                  client_sink_actor sink) {
  if (!sink)
    return make_error(cluster_errc::invalid_command);
  auto& sinks = subscriptions[{group, std::move(owner)}];
  if (std::find(sinks.begin(), sinks.end(), sink) == sinks.end()) {
    self->monitor(sink);
    sinks.push_back(std::move(sink));
  }
  return caf::ok_atom::value;
}

void server_state::notify(std::vector<client_event>& events) {
  for (auto& ev : events) {
    auto i = subscriptions.find({ev.group, ev.owner});
    if (i == subscriptions.end())
      continue;
    for (auto& sink : i->second)
      self->send(sink, atom::event_v, ev);
  }
}

caf::result<client_status> server_state::client_state(group_id group) {
  if (auto i = groups.find(group); i != groups.end() && i->second.failure) {
    client_status out;
    out.group = group;
    out.node = cfg.id;
    out.failure = describe(i->second.failure);
    return out;
  }
  auto r = find(group);
  if (!r)
    return r.error();
  auto applier = groups[group].applier;
  auto rp = self->make_response_promise<client_status>();
  self->request(*r, cfg.client_timeout, atom::status_v)
    .then(
      [this, rp, applier](replica_status& st) mutable {
        auto out = std::make_shared<client_status>();
        out->group = st.group;
        out->node = st.node;
        out->role = static_cast<std::uint8_t>(st.current_role);
        out->term = st.term;
        out->leader = st.leader;
        out->leader_address = address_of(st.leader);
        out->commit = st.commit;
        out->last_index = st.last_index;
        out->snapshot_index = st.snapshot_index;
        out->snapshots_installed = st.snapshots_installed;
        self->request(applier, cfg.client_timeout, atom::digest_v)
          .then(
            [rp, out](log_index applied, std::string& digest) mutable {
              out->applied = applied;
              out->state = std::move(digest);
              rp.deliver(std::move(*out));
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

server_actor::behavior_type
server(server_actor::stateful_pointer<server_state> self, server_config cfg,
       storage_actor storage) {
  auto& st = self->state;
  st.self = self;
  st.cfg = cfg;
  if (!st.cfg.wall_clock)
    st.cfg.wall_clock = [] {
      using namespace std::chrono;
      return static_cast<std::int64_t>(
        duration_cast<milliseconds>(system_clock::now().time_since_epoch())
          .count());
    };
  st.storage = std::move(storage);
  self->monitor(st.storage);
  self->send(st.storage, atom::router_v, caf::actor_cast<peer_actor>(self));
  self->set_down_handler(
    [self](caf::down_msg& msg) { self->state.on_down(msg); });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    self->state.stop_all(msg.reason);
    self->quit(msg.reason);
  });
  self->delayed_send(self, cfg.tick_interval, atom::tick_v, st.tick_generation);
  spdlog::info("n={} server started", cfg.id.value);
  return {
    [self](envelope& env) {
      self->state.adopt_sender(env.msg.from);
      self->state.route(env);
    },
    [self](atom::hello, node_id from) { self->state.adopt_sender(from); },
    [self](std::vector<envelope>& batch) {
      if (!batch.empty())
        self->state.adopt_sender(batch.front().msg.from);
      for (auto& env : batch)
        self->state.route(env);
    },
    [self](atom::flush) {
      auto& st = self->state;
      st.flush_pending.fired();
      st.flush_answers();
      if (st.ticks_pending == 0)
        st.flush_outbox();
    },
    [self](atom::tick, std::uint64_t generation) {
      self->state.on_tick(generation);
    },
    [self](atom::connect_peer, node_id id, peer_actor& peer) {
      auto& st = self->state;
      if (peer) {
        self->send(peer, atom::hello_v, st.cfg.id);
        st.set_link(id, std::move(peer));
        return;
      }
      // A null handle means the transport lost the peer (its process died
      // or the link broke): followers of it need not wait for a timeout.
      st.peer_lost(id);
    },
    [self](atom::register_, group_id group, raft::membership& voters,
           cluster::state_machine_ptr& machine) {
      return self->state.register_group(group, std::move(voters),
                                        std::move(machine));
    },
    [self](atom::unregister, group_id group) {
      return self->state.unregister_group(group);
    },
    [self](atom::propose, group_id group,
           std::string& command) -> caf::result<std::string> {
      auto r = self->state.find(group);
      if (!r)
        return r.error();
      return self->delegate(*r, atom::propose_v, std::move(command));
    },
    [self](atom::read, group_id group) -> caf::result<log_index> {
      auto r = self->state.find(group);
      if (!r)
        return r.error();
      return self->delegate(*r, atom::read_v);
    },
    [self](atom::status, group_id group) -> caf::result<replica_status> {
      auto& st = self->state;
      if (auto i = st.groups.find(group);
          i != st.groups.end() && i->second.failure)
        return st.failed_status(group, i->second);
      auto r = self->state.find(group);
      if (!r)
        return r.error();
      return self->delegate(*r, atom::status_v);
    },
    [self](atom::replica, group_id group) -> caf::result<replica_actor> {
      auto r = self->state.find(group);
      if (!r)
        return r.error();
      return *r;
    },
    [self](atom::client, atom::propose, group_id group, std::string& command) {
      auto rp = self->make_response_promise<client_reply>();
      self->state.client_propose(group, std::move(command), deliver_to(rp));
      return rp;
    },
    [self](atom::client, atom::calls, std::vector<client_call>& calls,
           client_sink_actor& sink) {
      self->state.client_calls(calls, std::move(sink));
    },
    [self](atom::client, atom::status, group_id group) {
      return self->state.client_state(group);
    },
    [self](atom::client, atom::query, group_id group, std::uint8_t level,
           std::string& request) {
      auto rp = self->make_response_promise<client_reply>();
      self->state.client_query(group, level, std::move(request),
                               deliver_to(rp));
      return rp;
    },
    [self](atom::client, atom::subscribe, group_id group, std::string& owner,
           client_sink_actor& sink) {
      return self->state.subscribe(group, std::move(owner), std::move(sink));
    },
    [self](atom::notify, std::vector<client_event>& events) {
      self->state.notify(events);
    },
    [self](atom::configure, server_extras& extras) {
      self->state.extras = std::move(extras);
    },
    [self](atom::direct_port) { return self->state.extras.direct_port; },
  };
}

} // namespace ees::actors
