// ees-node: one process of an ees-cluster (DESIGN.md §3).
//
//   ees-node --config FILE [key=value ...]
//
// Loads and validates the settings (every error is printed, exit code 2),
// starts the actor system, the RaftServer (storage on its own thread), the
// transport to every peer and one replica per configured group, each with
// the ClusterStateMachine (locks, assignments, keys). The server is published
// on `ees.cluster.listen`, where peers and clients (eesctl) reach it, over
// mutual TLS when `ees.cluster.tls.*` is set (docs/tls.md). SIGTERM or
// SIGINT stop it cleanly (exit code 0); a restart continues from the data
// directory. A storage failure stops every group (fail-stop) but keeps the
// process up, reporting the groups failed, until it is restarted.
//
// Group ids: `ees.cluster.raft.groups[app]` runs as group_for_app(app) (see
// node_common.hpp): the low 48 bits of FNV-1a-64 of the name.

#include "actors/direct_link.hpp"
#include "actors/interfaces.hpp"
#include "actors/server.hpp"
#include "actors/tls_plugin.hpp"
#include "actors/transport.hpp"
#include "actors/type_ids.hpp"
#include "apps/node_common.hpp"
#include "ees/cluster/cluster_state_machine.hpp"
#include "ees/cluster/config.hpp"
#include "ees/cluster/raft_server_factory.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace ees;
using namespace std::chrono_literals;

int usage() {
  std::fprintf(stderr, "usage: ees-node --config FILE [key=value ...]\n");
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  apps::tune_malloc(argv);
  std::optional<std::string> file;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc)
      file = argv[++i];
    else if (arg.rfind("--config=", 0) == 0)
      file = arg.substr(9);
    else if (arg == "-h" || arg == "--help")
      return usage(), 0;
    else if (arg.find('=') != std::string::npos && arg[0] != '-')
      overrides.push_back(arg);
    else {
      std::fprintf(stderr, "ees-node: unknown argument '%s'\n", arg.c_str());
      return usage();
    }
  }
  auto loaded = cluster::load_settings(file, overrides);
  if (!loaded) {
    for (auto& err : loaded.errors())
      std::fprintf(stderr, "ees-node: %s\n", cluster::to_string(err).c_str());
    return 2;
  }
  auto settings = std::move(*loaded);
  auto me = settings.id;
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [ees-node n="
                      + std::to_string(me.value) + "] %v");
  // Block the stop signals before CAF starts its threads, so that only
  // sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  // TLS (mutual, by certificate chain; docs/tls.md): the server is published
  // and peers are reached through the OpenSSL manager's middleman actor.
  const bool tls = settings.tls.enabled();
  const tls::plugin_api* tls_api = nullptr;
  if (tls) {
    tls_api = tls::enable(cfg,
                          {settings.tls.certificate, settings.tls.private_key,
                           settings.tls.ca_file},
                          "ees-node: ees.cluster.tls.*");
    if (tls_api == nullptr)
      return 2;
  }
  cfg.add_message_types<caf::id_block::ees>();
  // Hung peers are detected only with both set (field notes §5.9).
  cfg.set("middleman.heartbeat-interval",
          caf::timespan{std::chrono::milliseconds{settings.heartbeat_ms}});
  cfg.set("middleman.connection-timeout",
          caf::timespan{
            std::chrono::milliseconds{std::max(settings.election_ms, 500u)}});
  apps::configure_scheduler(cfg, settings.scheduler_threads);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  int rc = 0;
  {
    caf::actor_system sys{cfg};
    cluster::raft_server_settings rs;
    rs.id = me;
    rs.data_dir = settings.data_dir;
    rs.tick_ms = settings.heartbeat_ms;
    rs.snapshot_threshold = settings.snapshot_threshold;
    rs.election_ticks = std::max(3u, settings.election_ms
                                       / std::max(1u, settings.heartbeat_ms));
    std::error_code ec;
    std::filesystem::create_directories(settings.data_dir, ec);
    if (ec) {
      spdlog::error("cannot create {}: {}", settings.data_dir, ec.message());
      return 1;
    }
    auto started = cluster::start_raft_server(sys, rs);
    if (!started) {
      spdlog::error("cannot start the raft server in {}: {}", settings.data_dir,
                    caf::to_string(started.error()));
      return 1;
    }
    auto srv = std::move(*started);
    auto port = tls
                  ? tls_api->publish(caf::actor_cast<caf::actor>(srv.server),
                                     settings.listen_port,
                                     settings.listen_host.c_str(), true)
                  : sys.middleman().publish(srv.server, settings.listen_port,
                                            settings.listen_host.c_str(), true);
    if (!port) {
      spdlog::error("cannot listen on {}:{}: {}", settings.listen_host,
                    settings.listen_port, caf::to_string(port.error()));
      cluster::stop_raft_server(srv);
      return 1;
    }
    spdlog::info("listening on {}:{}{}", settings.listen_host, *port,
                 tls ? " (TLS; peers need a certificate signed by "
                         + settings.tls.ca_file + ")"
                     : std::string{});
    // Node-level extras: addresses for leader hints.
    actors::server_extras extras;
    for (auto& p : settings.peers)
      extras.addresses[p.id] = p.host + ":" + std::to_string(p.port);
    extras.addresses[me] = settings.listen_host + ":" + std::to_string(*port);
    // Direct links carry Raft batches in plaintext: never with TLS.
    std::unique_ptr<actors::direct::listener> direct;
    if (settings.direct_links && !tls) {
      auto started_direct
        = actors::direct::listener::start(settings.listen_host, me, srv.server);
      if (started_direct) {
        direct = std::move(*started_direct);
        extras.direct_port = direct->port();
        spdlog::info("direct links on {}:{}", settings.listen_host,
                     direct->port());
      } else {
        spdlog::warn("no direct links ({}): peers use BASP",
                     caf::to_string(started_direct.error()));
      }
    }
    caf::anon_send(srv.server, atom::configure_v, std::move(extras));
    // Groups.
    caf::scoped_actor self{sys};
    for (auto& g : settings.groups) {
      auto gid = apps::group_for_app(g.app);
      raft::membership voters;
      voters.voters.insert(g.peers.begin(), g.peers.end());
      if (!voters.contains(me)) {
        spdlog::info("g={} app={} does not include this node: skipped",
                     gid.value, g.app);
        continue;
      }
      auto machine = std::make_shared<cluster::cluster_state_machine>();
      bool ok = false;
      self
        ->request(srv.server, 30s, atom::register__v, gid, voters,
                  cluster::state_machine_ptr{machine})
        .receive([&](caf::ok_atom) { ok = true; },
                 [&](caf::error& err) {
                   spdlog::error("g={} app={} cannot register: {}", gid.value,
                                 g.app, caf::to_string(err));
                 });
      if (!ok) {
        rc = 1;
        break;
      }
      spdlog::info("g={} app={} registered", gid.value, g.app);
    }
    actors::transport_config tc;
    tc.self = me;
    std::chrono::milliseconds connect_timeout{
      std::max(settings.rpc_timeout_ms, 100u)};
    tc.connect_timeout = connect_timeout;
    if (tls)
      tc.connector = tls_api->connector(sys);
    tc.direct = settings.direct_links && !tls;
    for (auto& p : settings.peers)
      tc.peers.push_back(actors::peer_endpoint{p.id, p.host, p.port});
    auto net = sys.spawn(actors::transport, tc, srv.server);
    if (rc == 0) {
      spdlog::info("running");
      int sig = 0;
      sigwait(&stop_signals, &sig);
      spdlog::info("signal {}: stopping", sig);
    }
    caf::anon_send_exit(net, caf::exit_reason::user_shutdown);
    // Both middleman actors share the one BASP broker that owns the port
    // (caf::openssl::unpublish does not compile in 0.17.6).
    static_cast<void>(sys.middleman().unpublish(srv.server, *port));
    auto server = srv.server;
    cluster::stop_raft_server(srv);
    self->wait_for(server);
    direct.reset(); // Closes the direct links' sockets, joins their readers.
    // The actor system's destructor waits for the storage, which closes the
    // RocksDB when it exits.
  }
  spdlog::info("stopped");
  return rc;
}
