#include "actors/transport.hpp"

#include "actors/direct_link.hpp"
#include "actors/one_shot.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/node_id.hpp>
#include <caf/spawn_options.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <utility>

namespace ees::actors {

void transport_state::connect(node_id id) {
  auto i = links.find(id);
  if (i == links.end() || i->second.proxy || i->second.connecting)
    return;
  auto& link = i->second;
  link.connecting = true;
  auto gen = ++link.generation;
  auto mm
    = cfg.connector ? cfg.connector : self->system().middleman().actor_handle();
  self
    ->request(mm, cfg.connect_timeout, caf::connect_atom_v, link.endpoint.host,
              link.endpoint.port)
    .then(
      [this, id, gen](const caf::node_id&, caf::strong_actor_ptr& ptr,
                      const std::set<std::string>&) {
        auto j = links.find(id);
        if (j == links.end() || j->second.generation != gen)
          return;
        auto& l = j->second;
        l.connecting = false;
        auto proxy = caf::actor_cast<caf::actor>(ptr);
        if (!proxy) {
          schedule_retry(l);
          return;
        }
        l.proxy = proxy;
        l.backoff = std::chrono::milliseconds{0};
        l.last_error.clear();
        self->monitor(proxy);
        spdlog::info("n={} connected to peer {} at {}:{}", self_id.value,
                     id.value, l.endpoint.host, l.endpoint.port);
        offer_link(id, gen);
      },
      [this, id, gen](caf::error& err) {
        auto j = links.find(id);
        if (j == links.end() || j->second.generation != gen)
          return;
        auto& l = j->second;
        l.connecting = false;
        auto what = caf::to_string(err);
        if (what != l.last_error)
          spdlog::warn("n={} connect to peer {} at {}:{} failed: {}",
                       self_id.value, id.value, l.endpoint.host,
                       l.endpoint.port, what);
        else
          spdlog::debug("n={} connect to peer {} failed again: {}",
                        self_id.value, id.value, what);
        l.last_error = std::move(what);
        schedule_retry(l);
      });
}

void transport_state::offer_link(node_id id, std::uint64_t gen) {
  auto& link = links[id];
  // BASP at once; a direct link replaces it once dialed.
  self->send(server, atom::connect_peer_v, id,
             caf::actor_cast<peer_actor>(link.proxy));
  if (!cfg.direct)
    return;
  self->request(link.proxy, cfg.connect_timeout, atom::direct_port_v)
    .then(
      [this, id, gen](std::uint16_t port) {
        auto j = links.find(id);
        if (j != links.end() && j->second.generation == gen && port != 0)
          dial(id, gen, port);
      },
      [this, id, gen](caf::error& err) {
        auto j = links.find(id);
        if (j == links.end() || j->second.generation != gen)
          return;
        spdlog::warn("n={} peer {} offers no direct link ({}): using BASP",
                     self_id.value, id.value, caf::to_string(err));
        // A peer that does not know the request (an older version) never
        // will; one that did not answer in time (stalled) is asked again.
        if (err != caf::sec::unexpected_message)
          redial_later(id, gen);
      });
}

void transport_state::dial(node_id id, std::uint64_t gen, std::uint16_t port) {
  auto& l = links[id];
  // The connect blocks (bounded by connect_timeout): on a thread of its
  // own, so that a peer whose direct port drops packets cannot stall a
  // worker of this node.
  auto helper = spawn_one_shot(
    self, true,
    [&sys = self->system(), from = self_id, host = l.endpoint.host, port,
     timeout = cfg.connect_timeout, fallback = l.proxy] {
      return direct::dial(sys, from, host, port, timeout, fallback);
    });
  self->request(helper, caf::infinite, atom::run_v)
    .then([this, id, gen, port](
            caf::actor& link) { on_dialed(id, gen, port, std::move(link)); },
          [this, id, gen, port](caf::error& err) {
            on_dial_failed(id, gen, port, caf::to_string(err));
          });
}

void transport_state::on_dialed(node_id id, std::uint64_t gen,
                                std::uint16_t port, caf::actor link) {
  auto i = links.find(id);
  if (i == links.end() || i->second.generation != gen || !i->second.proxy
      || i->second.direct) {
    // Lost or reconnected while dialing: this link is stale.
    self->send_exit(link, caf::exit_reason::user_shutdown);
    return;
  }
  auto& l = i->second;
  l.direct = std::move(link);
  self->monitor(l.direct);
  spdlog::info("n={} direct link to peer {} at {}:{}", self_id.value, id.value,
               l.endpoint.host, port);
  self->send(server, atom::connect_peer_v, id,
             caf::actor_cast<peer_actor>(l.direct));
}

void transport_state::on_dial_failed(node_id id, std::uint64_t gen,
                                     std::uint16_t port,
                                     const std::string& error) {
  auto i = links.find(id);
  if (i == links.end() || i->second.generation != gen)
    return;
  spdlog::warn("n={} direct link to peer {} at {}:{} failed: {}; using BASP",
               self_id.value, id.value, i->second.endpoint.host, port, error);
  redial_later(id, gen);
}

void transport_state::redial_later(node_id id, std::uint64_t gen) {
  self->delayed_send(self, cfg.max_backoff, atom::retry_v, atom::direct_port_v,
                     id, gen);
}

void transport_state::close_direct(peer_link& link) {
  if (!link.direct)
    return;
  self->demonitor(link.direct);
  self->send_exit(link.direct, caf::exit_reason::remote_link_unreachable);
  link.direct = nullptr;
}

void transport_state::schedule_retry(peer_link& link) {
  using std::chrono::milliseconds;
  link.backoff = link.backoff.count() == 0
                   ? cfg.min_backoff
                   : std::min(link.backoff * 2, cfg.max_backoff);
  auto stretch = link.backoff.count() > 1 ? static_cast<std::int64_t>(
                   link.jitter.next()
                   % static_cast<std::uint64_t>(link.backoff.count() / 2 + 1))
                                          : 0;
  self->delayed_send(self, link.backoff + milliseconds{stretch}, atom::retry_v,
                     link.endpoint.id, link.generation);
}

void transport_state::on_down(const caf::down_msg& msg) {
  for (auto& [id, link] : links) {
    if (link.direct && link.direct.address() == msg.source) {
      // The BASP connection may well be fine (a stalled peer's socket
      // buffer filled up): keep the peer, reached through BASP, and dial
      // a direct link again after the longest backoff.
      spdlog::warn("n={} direct link to peer {} broke ({}): using BASP",
                   self_id.value, id.value, caf::to_string(msg.reason));
      link.direct = nullptr;
      if (link.proxy) {
        self->send(server, atom::connect_peer_v, id,
                   caf::actor_cast<peer_actor>(link.proxy));
        redial_later(id, link.generation);
      }
      return;
    }
    if (link.proxy && link.proxy.address() == msg.source) {
      spdlog::warn("n={} lost peer {} ({}): reconnecting", self_id.value,
                   id.value, caf::to_string(msg.reason));
      link.proxy = nullptr;
      close_direct(link);
      ++link.generation;
      self->send(server, atom::connect_peer_v, id, peer_actor{});
      schedule_retry(link);
      return;
    }
  }
}

caf::behavior transport(caf::stateful_actor<transport_state>* self,
                        transport_config cfg, server_actor server) {
  auto& st = self->state;
  st.self = self;
  st.cfg = std::move(cfg);
  st.server = std::move(server);
  st.self_id = st.cfg.self;
  for (auto& ep : st.cfg.peers)
    if (ep.id != st.self_id) {
      auto& link = st.links[ep.id];
      link.endpoint = ep;
      link.jitter.state
        = st.self_id.value * 0x9E3779B97F4A7C15ull ^ ep.id.value;
    }
  self->set_down_handler(
    [self](caf::down_msg& msg) { self->state.on_down(msg); });
  for (auto& [id, link] : st.links)
    st.connect(id);
  return {
    [self](atom::retry, node_id id, std::uint64_t gen) {
      auto i = self->state.links.find(id);
      if (i == self->state.links.end() || i->second.generation != gen)
        return; // A stale timer.
      self->state.connect(id);
    },
    [self](atom::retry, atom::direct_port, node_id id, std::uint64_t gen) {
      auto& st = self->state;
      auto i = st.links.find(id);
      if (i == st.links.end() || i->second.generation != gen || !i->second.proxy
          || i->second.direct)
        return; // Reconnected, lost or direct again meanwhile.
      st.offer_link(id, gen);
    },
  };
}

} // namespace ees::actors
