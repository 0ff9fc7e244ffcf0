// The TRANSPORT actor (DESIGN.md §3): keeps one CAF io (BASP over TCP)
// connection to the server actor of every peer node and wires it into the
// local server with `connect_peer`.
#pragma once

#include "actors/interfaces.hpp"
#include "protocol/ids.hpp"
#include "protocol/splitmix.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ees::actors {

/// Where the server actor of one peer node is published.
struct peer_endpoint {
  node_id id;
  std::string host;
  std::uint16_t port = 0;
};

/// How the transport (re)connects.
struct transport_config {
  /// This node (for logs).
  node_id self;
  /// Every other node; entries for `self` are ignored.
  std::vector<peer_endpoint> peers;
  /// Bound of one connect attempt (the middleman's `connect_atom` request).
  std::chrono::milliseconds connect_timeout{2000};
  /// First retry delay after a failed attempt or a lost connection; doubles
  /// up to `max_backoff`. Each delay is stretched by up to half of itself,
  /// drawn per link from a generator seeded with (this node, peer): two
  /// nodes that lost each other do not keep dialing each other in the same
  /// millisecond (simultaneous BASP connects knock each other out, which
  /// the longer TLS handshake makes likely; docs/tls.md).
  std::chrono::milliseconds min_backoff{50};
  std::chrono::milliseconds max_backoff{1000};
  /// The middleman actor that connects (`connect_atom`): the OpenSSL
  /// manager's for TLS; null for the plain TCP middleman of the system.
  caf::io::middleman_actor connector;
  /// Once a peer's BASP connection is up, dial its direct-link listener
  /// (actors/direct_link.hpp) and hand the server that link instead; BASP
  /// stays the failure detector and the fallback while a direct link is
  /// down (dialed again every `max_backoff`). Never with TLS.
  bool direct = false;
};

/// One peer's connection state.
struct peer_link {
  peer_endpoint endpoint;
  /// The proxy of the peer's server while connected.
  caf::actor proxy;
  /// The direct link to the peer while it works (`transport_config::direct`).
  caf::actor direct;
  std::chrono::milliseconds backoff{0};
  /// Draws the jitter of this link's retries.
  splitmix64 jitter;
  /// Ignores stale retry timers and connect replies.
  std::uint64_t generation = 0;
  bool connecting = false;
  /// The error of the last failed attempt: a new one is logged at warning
  /// level (a refused TLS handshake shows as disconnect_during_handshake).
  std::string last_error;
};

struct transport_state {
  static inline const char* name = "transport";

  void connect(node_id id);
  /// Hands the server the BASP proxy of the connected peer `id`, then, when
  /// configured and the peer offers one, dials a direct link to replace it.
  void offer_link(node_id id, std::uint64_t generation);
  /// Dials the direct link to `id` (listening on `port`) on a detached
  /// helper, which reports back with on_dialed or on_dial_failed.
  void dial(node_id id, std::uint64_t generation, std::uint16_t port);
  void on_dialed(node_id id, std::uint64_t generation, std::uint16_t port,
                 caf::actor link);
  void on_dial_failed(node_id id, std::uint64_t generation, std::uint16_t port,
                      const std::string& error);
  /// Dials the direct link to `id` again after the longest backoff, if the
  /// BASP connection of `generation` is still up then and no direct link is.
  void redial_later(node_id id, std::uint64_t generation);
  /// Drops the direct link of `link` (its BASP connection went down).
  void close_direct(peer_link& link);
  void schedule_retry(peer_link& link);
  void on_down(const caf::down_msg& msg);

  caf::stateful_actor<transport_state>* self = nullptr;
  transport_config cfg;
  node_id self_id;
  server_actor server;
  std::map<node_id, peer_link> links;
};

/// Connects to every peer of `cfg` without blocking, monitors the proxies
/// and reconnects with capped exponential backoff; every (re)connect and
/// every loss is reported to `server` as `connect_peer` (a null handle for a
/// loss).
caf::behavior transport(caf::stateful_actor<transport_state>* self,
                        transport_config cfg, server_actor server);

} // namespace ees::actors
