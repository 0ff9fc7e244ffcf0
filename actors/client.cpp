// The client actor behind ees::cluster::client: leader discovery, redirects,
// retries with the same command, timeouts, and pushed notifications.
#include "ees/cluster/client.hpp"

#include "actors/direct_link.hpp"
#include "actors/errors.hpp"
#include "actors/flush_trigger.hpp"
#include "actors/one_shot.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_clock.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <future>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <utility>

namespace ees::cluster {

namespace {

using steady = caf::actor_clock;

/// One call in flight, shared between the facade and the actor.
struct pending {
  bool is_query = false;
  group_id group;
  std::string payload;
  std::uint8_t level = 0;
  /// Bound of the whole call; set by the actor from its clock (simulated
  /// time under CAF's test scheduler).
  std::chrono::milliseconds timeout{0};
  steady::time_point deadline;
  std::function<void(client_result)> done;
  std::uint32_t attempts = 0;
  /// Rotates over the servers while no leader is known.
  std::size_t next = 0;
  std::string last_error = "timeout";
};

using pending_ptr = std::shared_ptr<pending>;

/// A subscription request from the facade.
struct subscription {
  group_id group;
  std::string owner;
  std::function<void(const std::string&)> on_event;
};

} // namespace

} // namespace ees::cluster

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ees::cluster::pending_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ees::cluster::subscription)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ees::actors::direct::client_link>)

namespace ees::cluster {

namespace {

/// A server the client knows.
struct endpoint {
  std::string address;
  std::string host;
  std::uint16_t port = 0;
  /// Null while not connected.
  actors::server_actor server;
  /// The direct link to the server, when it offers one and it is up.
  std::shared_ptr<actors::direct::client_link> direct;
  /// Counts connections: a direct link dialed for an earlier one is stale.
  std::uint64_t generation = 0;
  /// Subscriptions sent over CAF and not acknowledged yet. While there are
  /// any, calls go over CAF too: a call on the direct link could overtake
  /// the subscription and its notification (a lock grant) find no one.
  std::size_t subscribing = 0;
  /// When the direct link came up, and how long to wait before the next
  /// dial (see `redial_later`).
  caf::actor_clock::time_point direct_up;
  std::chrono::milliseconds redial_after{0};
  bool connecting = false;
  /// Calls waiting for the connection.
  std::vector<pending_ptr> waiting;
  /// Calls for the server, sent as one message at the next flush.
  std::vector<actors::client_call> outgoing;
};

bool split_address(const std::string& addr, std::string& host,
                   std::uint16_t& port) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return false;
  host = addr.substr(0, colon);
  auto digits = addr.substr(colon + 1);
  if (digits.empty() || digits.size() > 5
      || digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  auto p = std::stoul(digits);
  if (p == 0 || p > 65535)
    return false;
  port = static_cast<std::uint16_t>(p);
  return true;
}

/// Errors no retry can fix.
bool is_final(const std::string& error) {
  return error == "invalid_command" || error == "invalid_consistency";
}

struct client_state {
  static inline const char* name = "ees.client";

  void call(pending_ptr p);
  void attempt(pending_ptr p);
  void on_reply(pending_ptr p, std::size_t idx, actors::client_reply& r);
  void on_failure(pending_ptr p, std::size_t idx, const std::string& error,
                  bool disconnect);
  void retry_later(pending_ptr p);
  /// Fails the attempts whose bound passed, then sweeps again later while
  /// any are in flight.
  void sweep();
  void schedule_sweep();
  /// Asks every connected server for its direct port, then again after
  /// `keepalive_interval` while any is connected.
  void keepalive();
  void schedule_keepalive();
  struct attempt_record;
  /// Removes and returns the attempt `id` unless the sweep gave up on it.
  std::optional<attempt_record> take_attempt(std::uint64_t id);
  /// Removes and returns every attempt in flight that `pred` selects.
  template <class Pred>
  std::vector<attempt_record> take_attempts_if(Pred pred);
  void finish(pending_ptr p, client_result res);
  void connect(std::size_t idx);
  void on_connected(std::size_t idx, actors::server_actor server);
  void disconnect(std::size_t idx);
  /// Asks the server of `idx` for its direct port and dials it.
  void offer_direct(std::size_t idx, std::uint64_t gen);
  void on_direct(std::size_t idx, std::uint64_t gen,
                 std::shared_ptr<actors::direct::client_link> link);
  /// The direct link of `idx` broke: retries the calls it carried.
  void on_direct_lost(std::size_t idx);
  /// Offers `idx` a direct link again, after a wait that grows while its
  /// links keep failing (`direct_redial_interval`).
  void redial_later(std::size_t idx, std::uint64_t gen);
  void subscribe(subscription sub);
  void subscribe_at(std::size_t idx, group_id group, const std::string& owner);
  void on_event(actors::client_event& ev);
  /// Dispatches a server's answers to the attempts in flight.
  void on_answers(std::vector<actors::client_answer>& answers);
  /// Sends every endpoint its outgoing calls, one message each.
  void flush();
  /// The endpoint of `address`, added when new; nullopt if unusable.
  std::optional<std::size_t> endpoint_for(const std::string& address);

  caf::stateful_actor<client_state>* self = nullptr;
  client_options opts;
  std::vector<endpoint> endpoints;
  /// The endpoint of each group's leader, as last heard.
  std::map<group_id, std::size_t> leaders;
  /// Every handler of each (group, owner), in subscription order.
  std::map<std::pair<group_id, std::string>,
           std::vector<std::function<void(const std::string&)>>>
    handlers;
  /// Recently delivered notifications (they arrive once per server).
  std::set<std::tuple<group_id, std::string, std::string>> seen;
  std::deque<std::tuple<group_id, std::string, std::string>> seen_order;
  /// An attempt sent to a server and not yet answered.
  struct attempt_record {
    pending_ptr p;
    std::size_t idx;
    steady::time_point deadline;
    /// Sent over the endpoint's direct link: its answer comes back there.
    bool direct = false;
  };
  /// Attempts in flight by sequence number. Their bounds are checked by a
  /// periodic sweep rather than one CAF request timeout each: every timeout
  /// set and cancelled wakes CAF's clock thread, twice per call, which cost
  /// the load generator about a tenth of the cluster's throughput.
  std::map<std::uint64_t, attempt_record> inflight;
  std::uint64_t attempt_seq = 0;
  bool sweep_scheduled = false;
  bool keepalive_scheduled = false;
  actors::flush_trigger flush_pending;
};

/// How late past its bound an attempt may be abandoned, at most.
std::chrono::milliseconds sweep_interval(const client_options& opts) {
  return std::clamp(opts.attempt_timeout / 10, std::chrono::milliseconds{1},
                    std::chrono::milliseconds{50});
}

constexpr std::size_t seen_capacity = 4096;

/// How often a client with subscriptions retries an unreachable server.
constexpr auto resubscribe_interval = std::chrono::seconds{1};

/// How long a client uses the CAF connection after a direct link broke
/// before it dials again: at first, and after a link that lasted
/// `direct_stable`. The wait doubles with every failed dial and every link
/// that broke sooner, up to `direct_redial_max`: a server that closes every
/// link (full, or too old to know clients) must not cost a dial and the
/// retry of the calls in flight every second.
constexpr auto direct_redial_interval = std::chrono::milliseconds{1000};
constexpr auto direct_redial_max = std::chrono::milliseconds{30000};
constexpr auto direct_stable = std::chrono::seconds{10};

/// How often a client sends each connected server something over CAF. A
/// server closes a connection it heard nothing on for its
/// middleman.connection-timeout (at least 500 ms, ees-node.cpp), and a
/// client's connection carries no calls while they use a direct link, nor
/// any while the host is idle (a waiter queued for a lock): closing it
/// would drop the client's subscriptions there, and with them the lock
/// grant it waits for. The client's own system may send no heartbeats.
constexpr auto keepalive_interval = std::chrono::milliseconds{200};

void client_state::call(pending_ptr p) {
  p->deadline = self->clock().now() + p->timeout;
  if (endpoints.empty()) {
    client_result res;
    res.error = "no_endpoints";
    finish(std::move(p), std::move(res));
    return;
  }
  attempt(std::move(p));
}

void client_state::attempt(pending_ptr p) {
  auto now = self->clock().now();
  if (now >= p->deadline) {
    client_result res;
    res.error = p->last_error;
    finish(std::move(p), std::move(res));
    return;
  }
  auto hint = leaders.find(p->group);
  auto idx = hint != leaders.end() ? hint->second : p->next % endpoints.size();
  auto& ep = endpoints[idx];
  if (!ep.server) {
    ep.waiting.push_back(std::move(p));
    connect(idx);
    return;
  }
  ++p->attempts;
  auto bound
    = std::min<steady::duration_type>(opts.attempt_timeout, p->deadline - now);
  auto timeout
    = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(bound),
               std::chrono::milliseconds{1});
  auto id = ++attempt_seq;
  // Batched: the calls of one turn of this actor leave as one message per
  // server, and the server answers those it finished in one of its turns
  // as one message (two BASP messages per call cost the leader more than
  // the replication of the call).
  ep.outgoing.push_back(
    actors::client_call{id, p->group, p->is_query, p->level, p->payload});
  inflight.emplace(id, attempt_record{std::move(p), idx, now + timeout});
  schedule_sweep();
  flush_pending.arm(self);
}

void client_state::flush() {
  flush_pending.fired();
  auto sink = caf::actor_cast<actors::client_sink_actor>(self);
  for (auto& ep : endpoints) {
    if (ep.server && !ep.outgoing.empty()) {
#ifndef EES_MUTANT_CALLS_OVERTAKE_SUBSCRIBE
      bool direct = ep.direct && ep.subscribing == 0;
#else
      bool direct = static_cast<bool>(ep.direct); // Mutant: races them.
#endif
      if (direct)
        for (auto& call : ep.outgoing)
          if (auto i = inflight.find(call.id); i != inflight.end())
            i->second.direct = true;
      auto to = direct
                  ? caf::actor_cast<actors::server_actor>(ep.direct->handle())
                  : ep.server;
      self->send(to, atom::client_v, atom::calls_v, std::move(ep.outgoing),
                 sink);
    }
    ep.outgoing.clear();
  }
}

void client_state::on_answers(std::vector<actors::client_answer>& answers) {
  // An answer after the sweep gave up on its attempt is dropped.
  for (auto& a : answers)
    if (auto rec = take_attempt(a.id))
      on_reply(std::move(rec->p), rec->idx, a.reply);
}

std::optional<client_state::attempt_record>
client_state::take_attempt(std::uint64_t id) {
  auto i = inflight.find(id);
  if (i == inflight.end())
    return std::nullopt;
  auto rec = std::move(i->second);
  inflight.erase(i);
  return rec;
}

template <class Pred>
std::vector<client_state::attempt_record>
client_state::take_attempts_if(Pred pred) {
  std::vector<attempt_record> out;
  for (auto i = inflight.begin(); i != inflight.end();) {
    if (pred(i->second)) {
      out.push_back(std::move(i->second));
      i = inflight.erase(i);
    } else {
      ++i;
    }
  }
  return out;
}

void client_state::schedule_sweep() {
  if (sweep_scheduled || inflight.empty())
    return;
  sweep_scheduled = true;
  self->delayed_send(self, sweep_interval(opts), atom::tick_v);
}

void client_state::keepalive() {
  keepalive_scheduled = false;
  bool any = false;
  for (auto& ep : endpoints) {
    if (!ep.server)
      continue;
    any = true;
    // The cheapest request a server answers; errors show as down messages.
    self->request(ep.server, opts.attempt_timeout, atom::direct_port_v)
      .then([](std::uint16_t) {}, [](caf::error&) {});
  }
  if (any)
    schedule_keepalive();
}

void client_state::schedule_keepalive() {
  if (keepalive_scheduled)
    return;
  keepalive_scheduled = true;
  self->delayed_send(self, keepalive_interval, atom::tick_v, atom::client_v);
}

void client_state::sweep() {
  sweep_scheduled = false;
  auto now = self->clock().now();
  auto expired = take_attempts_if(
    [now](const attempt_record& rec) { return rec.deadline <= now; });
  // A timeout leaves the connection up.
  for (auto& rec : expired)
    on_failure(std::move(rec.p), rec.idx, "timeout", false);
  schedule_sweep();
}

void client_state::on_reply(pending_ptr p, std::size_t idx,
                            actors::client_reply& r) {
  if (r.ok) {
    leaders[p->group] = idx;
    client_result res;
    res.ok = true;
    res.value = std::move(r.value);
    res.applied = r.applied;
    finish(std::move(p), std::move(res));
    return;
  }
  if (is_final(r.error)) {
    client_result res;
    res.error = std::move(r.error);
    finish(std::move(p), std::move(res));
    return;
  }
  if (r.error == "not_leader" && !r.leader_address.empty()) {
    auto to = endpoint_for(r.leader_address);
    if (to && *to != idx) {
      // Redirect at once: the hint names another server.
      leaders[p->group] = *to;
      p->last_error = "not_leader";
      attempt(std::move(p));
      return;
    }
  }
  on_failure(std::move(p), idx, r.error, false);
}

void client_state::on_failure(pending_ptr p, std::size_t idx,
                              const std::string& error, bool drop) {
  p->last_error = error;
  if (auto i = leaders.find(p->group); i != leaders.end() && i->second == idx)
    leaders.erase(i);
  p->next = idx + 1;
  if (drop)
    disconnect(idx);
  retry_later(std::move(p));
}

void client_state::retry_later(pending_ptr p) {
  self->delayed_send(self, opts.backoff, atom::retry_v, std::move(p));
}

void client_state::finish(pending_ptr p, client_result res) {
  res.attempts = p->attempts;
  if (p->done)
    p->done(std::move(res));
  p->done = nullptr;
}

void client_state::connect(std::size_t idx) {
  auto& ep = endpoints[idx];
  if (ep.connecting || ep.server)
    return;
  if (!opts.connector && !self->system().has_middleman()) {
    // An in-process client without CAF io cannot follow hints elsewhere.
    auto waiting = std::move(ep.waiting);
    ep.waiting.clear();
    for (auto& p : waiting)
      on_failure(p, idx, "no_route", false);
    return;
  }
  ep.connecting = true;
  auto mm = opts.connector ? opts.connector
                           : self->system().middleman().actor_handle();
  self->request(mm, opts.attempt_timeout, caf::connect_atom_v, ep.host, ep.port)
    .then(
      [this, idx](const caf::node_id&, caf::strong_actor_ptr& ptr,
                  const std::set<std::string>&) {
        // No interface check: the interface strings of typed actors depend
        // on the build; a wrong peer answers requests with errors.
        endpoints[idx].connecting = false;
        if (!ptr) {
          disconnect(idx);
          return;
        }
        on_connected(idx, caf::actor_cast<actors::server_actor>(ptr));
      },
      [this, idx](caf::error& err) {
        auto& ep = endpoints[idx];
        ep.connecting = false;
        auto waiting = std::move(ep.waiting);
        ep.waiting.clear();
        for (auto& p : waiting)
          on_failure(p, idx, "unreachable: " + actors::error_name(err), false);
        // Subscriptions need every server: keep trying, once a second.
        if (!handlers.empty())
          self->delayed_send(self, resubscribe_interval, atom::connect_peer_v,
                             static_cast<std::uint64_t>(idx));
      });
}

void client_state::on_connected(std::size_t idx, actors::server_actor server) {
  auto& ep = endpoints[idx];
  ep.server = std::move(server);
  self->monitor(ep.server);
  offer_direct(idx, ++ep.generation);
#ifndef EES_MUTANT_NO_KEEPALIVE
  schedule_keepalive();
#endif
  for (auto& [key, hs] : handlers)
    subscribe_at(idx, key.first, key.second);
  auto waiting = std::move(ep.waiting);
  ep.waiting.clear();
  for (auto& p : waiting)
    attempt(p);
}

void client_state::disconnect(std::size_t idx) {
  // Attempts in flight to the lost server get no answer (nothing fails a
  // message to a remote node that died, nor calls a local server took
  // before it died): retry them now, not at their bound. Calls not sent
  // yet are among them.
  endpoints[idx].outgoing.clear();
  auto lost = take_attempts_if(
    [idx](const attempt_record& rec) { return rec.idx == idx; });
  for (auto& rec : lost)
    on_failure(std::move(rec.p), idx, "disconnected", false);
  auto& ep = endpoints[idx];
  if (ep.host.empty())
    return; // The in-process server: there is no connection to lose.
  if (ep.server)
    self->demonitor(ep.server.address());
  ep.server = nullptr;
  if (ep.direct)
    self->demonitor(ep.direct->handle().address());
  ep.direct = nullptr;
  ++ep.generation;
  ep.subscribing = 0;
  ep.redial_after = std::chrono::milliseconds{0};
  for (auto i = leaders.begin(); i != leaders.end();)
    i = i->second == idx ? leaders.erase(i) : std::next(i);
  auto waiting = std::move(ep.waiting);
  ep.waiting.clear();
  for (auto& p : waiting)
    on_failure(p, idx, "disconnected", false);
  // Subscriptions need every server: reconnect while there are any.
  if (!handlers.empty())
    self->delayed_send(self, opts.backoff, atom::connect_peer_v,
                       static_cast<std::uint64_t>(idx));
}

void client_state::subscribe(subscription sub) {
  auto& hs = handlers[{sub.group, sub.owner}];
  hs.push_back(std::move(sub.on_event));
  if (hs.size() > 1)
    return; // Subscribed at the servers already.
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    if (endpoints[i].server)
      subscribe_at(i, sub.group, sub.owner);
    else
      connect(i);
  }
}

void client_state::subscribe_at(std::size_t idx, group_id group,
                                const std::string& owner) {
  auto sink = caf::actor_cast<actors::client_sink_actor>(self);
  auto& ep = endpoints[idx];
  ++ep.subscribing;
  self
    ->request(ep.server, opts.attempt_timeout, atom::client_v,
              atom::subscribe_v, group, owner, sink)
    .then(
      [this, idx, gen = ep.generation](caf::ok_atom) {
        auto& ep = endpoints[idx];
        if (ep.generation == gen)
          --ep.subscribing;
      },
      [this, idx, gen = ep.generation](caf::error&) {
        // Retried on reconnection; a failure from an earlier connection
        // says nothing about the current one.
        if (endpoints[idx].generation == gen)
          disconnect(idx);
      });
}

void client_state::on_event(actors::client_event& ev) {
  auto key = std::make_tuple(ev.group, ev.owner, ev.payload);
  if (!seen.insert(key).second)
    return; // Delivered already (by another server).
  seen_order.push_back(key);
  if (seen_order.size() > seen_capacity) {
    seen.erase(seen_order.front());
    seen_order.pop_front();
  }
  auto i = handlers.find({ev.group, ev.owner});
  if (i == handlers.end())
    return;
  for (auto& handler : i->second)
    if (handler)
      handler(ev.payload);
}

void client_state::offer_direct(std::size_t idx, std::uint64_t gen) {
  auto& ep = endpoints[idx];
  // Not with TLS (a connector), nor to an in-process server.
  if (!opts.direct_links || opts.connector || ep.host.empty() || !ep.server)
    return;
  self->request(ep.server, opts.attempt_timeout, atom::direct_port_v)
    .then(
      [this, idx, gen](std::uint16_t port) {
        auto& ep = endpoints[idx];
        if (port == 0 || ep.generation != gen || !ep.server)
          return; // No direct links there (TLS, turned off), or stale.
        // The connect blocks (bounded): on a thread of its own.
        auto helper = actors::spawn_one_shot(
          self, true,
          [&sys = self->system(), gen, host = ep.host, port,
           timeout = opts.attempt_timeout,
           fallback = caf::actor_cast<caf::actor>(ep.server),
           sink = caf::actor_cast<actors::client_sink_actor>(self)] {
            return actors::direct::client_link::dial(sys, gen, host, port,
                                                     timeout, fallback, sink);
          });
        self->request(helper, caf::infinite, atom::run_v)
          .then(
            [this, idx,
             gen](std::shared_ptr<actors::direct::client_link>& link) {
              on_direct(idx, gen, std::move(link));
            },
            // A failed dial leaves the calls on the CAF connection; one for
            // an earlier connection says nothing about the current one.
            [this, idx, gen](caf::error&) {
              if (endpoints[idx].generation == gen)
                redial_later(idx, gen);
            });
      },
      [](caf::error&) {
        // A server without direct links (an older version): CAF only.
      });
}

void client_state::on_direct(
  std::size_t idx, std::uint64_t gen,
  std::shared_ptr<actors::direct::client_link> link) {
  if (idx >= endpoints.size())
    return;
  auto& ep = endpoints[idx];
  if (ep.generation != gen || !ep.server || ep.direct)
    return; // Stale: dropping the link closes it.
  ep.direct = std::move(link);
  ep.direct_up = self->clock().now();
  self->monitor(ep.direct->handle());
}

void client_state::on_direct_lost(std::size_t idx) {
  auto& ep = endpoints[idx];
  ep.direct = nullptr;
  if (self->clock().now() - ep.direct_up >= direct_stable) {
    ep.redial_after = std::chrono::milliseconds{0}; // Dial again in 1 s.
  }
  // The answers to the calls in flight on the link would have come back on
  // it: retry them (over the CAF connection) now, not at their bound. A
  // retried command is applied once (its request id), a retried query is
  // re-read. Calls sent over CAF get their answers there, and calls not
  // sent yet go there at the flush: neither is retried.
#ifndef EES_MUTANT_DIRECT_CALLS_WAIT
  auto lost = take_attempts_if([idx](const attempt_record& rec) {
#ifndef EES_MUTANT_RETRY_CAF_CALLS
    return rec.idx == idx && rec.direct;
#else
    return rec.idx == idx; // Mutant: CAF's calls too.
#endif
  });
  for (auto& rec : lost)
    on_failure(std::move(rec.p), idx, "disconnected", false);
#endif // Mutant: they wait out their bound.
  if (ep.server)
    redial_later(idx, ep.generation);
}

void client_state::redial_later(std::size_t idx, std::uint64_t gen) {
  auto& ep = endpoints[idx];
#ifndef EES_MUTANT_NO_REDIAL_BACKOFF
  ep.redial_after = ep.redial_after.count() == 0
                      ? direct_redial_interval
                      : std::min(ep.redial_after * 2, direct_redial_max);
#else
  ep.redial_after = direct_redial_interval; // Mutant: every second.
#endif
  self->delayed_send(self, ep.redial_after, atom::direct_port_v,
                     static_cast<std::uint64_t>(idx), gen);
}

std::optional<std::size_t>
client_state::endpoint_for(const std::string& address) {
  for (std::size_t i = 0; i < endpoints.size(); ++i)
    if (endpoints[i].address == address)
      return i;
  endpoint ep;
  ep.address = address;
  if (!split_address(address, ep.host, ep.port))
    return std::nullopt;
  endpoints.push_back(std::move(ep));
  return endpoints.size() - 1;
}

caf::behavior client_actor(caf::stateful_actor<client_state>* self,
                           client_options opts,
                           std::vector<endpoint> endpoints) {
  auto& st = self->state;
  st.self = self;
  st.opts = std::move(opts);
  st.endpoints = std::move(endpoints);
  for (std::size_t i = 0; i < st.endpoints.size(); ++i)
    if (st.endpoints[i].server)
      self->monitor(st.endpoints[i].server);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    for (std::size_t i = 0; i < st.endpoints.size(); ++i) {
      auto& ep = st.endpoints[i];
      if (ep.direct && ep.direct->handle().address() == msg.source)
        st.on_direct_lost(i);
      else if (ep.server && ep.server.address() == msg.source)
        st.disconnect(i);
    }
  });
  return {
    [self](atom::propose, pending_ptr& p) { self->state.call(std::move(p)); },
    [self](atom::retry, pending_ptr& p) { self->state.attempt(std::move(p)); },
    [self](atom::tick) { self->state.sweep(); },
    [self](atom::tick, atom::client) { self->state.keepalive(); },
    [self](atom::subscribe, subscription& sub) {
      self->state.subscribe(std::move(sub));
    },
    [self](atom::connect_peer, std::uint64_t idx) {
      auto& st = self->state;
      if (idx < st.endpoints.size())
        st.connect(static_cast<std::size_t>(idx));
    },
    [self](atom::event, actors::client_event& ev) { self->state.on_event(ev); },
    [self](atom::answers, std::vector<actors::client_answer>& answers) {
      self->state.on_answers(answers);
    },
    [self](atom::flush) { self->state.flush(); },
    [self](atom::direct_port, std::uint64_t idx, std::uint64_t gen) {
      auto& st = self->state;
      if (idx < st.endpoints.size() && st.endpoints[idx].generation == gen
          && !st.endpoints[idx].direct)
        st.offer_direct(static_cast<std::size_t>(idx), gen);
    },
  };
}

std::string random_id() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint64_t> dist;
  char buf[24];
  std::snprintf(buf, sizeof(buf), "c%012llx",
                static_cast<unsigned long long>(dist(rd) & 0xFFFFFFFFFFFFull));
  return buf;
}

} // namespace

struct client::impl {
  caf::actor actor;
  std::string id;
  std::atomic<std::uint64_t> next_request{0};
  std::chrono::milliseconds timeout;

  impl(caf::actor_system& sys, client_options opts,
       std::vector<endpoint> endpoints)
    : id(opts.client_id.empty() ? random_id() : opts.client_id),
      timeout(opts.timeout) {
    actor = sys.spawn(client_actor, std::move(opts), std::move(endpoints));
  }

  ~impl() {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  }

  void start(bool is_query, group_id group, std::string payload,
             std::uint8_t level, std::function<void(client_result)> done) {
    auto p = std::make_shared<pending>();
    p->is_query = is_query;
    p->group = group;
    p->payload = std::move(payload);
    p->level = level;
    p->timeout = timeout;
    p->done = std::move(done);
    caf::anon_send(actor, atom::propose_v, std::move(p));
  }

  client_result wait(bool is_query, group_id group, std::string payload,
                     std::uint8_t level) {
    auto promise = std::make_shared<std::promise<client_result>>();
    auto future = promise->get_future();
    start(is_query, group, std::move(payload), level,
          [promise](client_result res) { promise->set_value(std::move(res)); });
    return future.get();
  }
};

namespace {

std::vector<endpoint> parse_endpoints(const std::vector<std::string>& addrs) {
  std::vector<endpoint> out;
  for (const auto& a : addrs) {
    endpoint ep;
    ep.address = a;
    if (split_address(a, ep.host, ep.port))
      out.push_back(std::move(ep));
  }
  return out;
}

} // namespace

client::client(caf::actor_system& sys, client_options opts) {
  auto eps = parse_endpoints(opts.endpoints);
  impl_ = std::make_shared<impl>(sys, std::move(opts), std::move(eps));
}

client::client(caf::actor_system& sys, std::vector<actors::server_actor> local,
               client_options opts) {
  std::vector<endpoint> eps;
  for (auto& server : local) {
    endpoint ep;
    ep.address = "local";
    ep.server = std::move(server);
    eps.push_back(std::move(ep));
  }
  for (auto& ep : parse_endpoints(opts.endpoints))
    eps.push_back(std::move(ep));
  impl_ = std::make_shared<impl>(sys, std::move(opts), std::move(eps));
}

client::~client() = default;

client_result client::submit(group_id group, std::string command) {
  return impl_->wait(false, group, std::move(command), 0);
}

client_result client::query(group_id group, std::string request,
                            consistency level) {
  return impl_->wait(true, group, std::move(request),
                     static_cast<std::uint8_t>(level));
}

void client::submit_async(group_id group, std::string command,
                          std::function<void(client_result)> done) {
  impl_->start(false, group, std::move(command), 0, std::move(done));
}

void client::query_async(group_id group, std::string request, consistency level,
                         std::function<void(client_result)> done) {
  impl_->start(true, group, std::move(request),
               static_cast<std::uint8_t>(level), std::move(done));
}

void client::subscribe(group_id group, std::string owner,
                       std::function<void(const std::string&)> on_event) {
  caf::anon_send(impl_->actor, atom::subscribe_v,
                 subscription{group, std::move(owner), std::move(on_event)});
}

std::string client::next_request_id() {
  return impl_->id + "-" + std::to_string(++impl_->next_request);
}

const std::string& client::id() const {
  return impl_->id;
}

} // namespace ees::cluster
