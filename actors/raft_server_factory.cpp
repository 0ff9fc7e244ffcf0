#include "ees/cluster/raft_server_factory.hpp"

#include "actors/errors.hpp"
#include "actors/server.hpp"
#include "actors/storage.hpp"

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>

#include <chrono>
#include <memory>

namespace ees::cluster {

caf::expected<raft_server> start_raft_server(caf::actor_system& sys,
                                             const raft_server_settings& cfg) {
  storage::log_store_options opts;
  opts.dir = cfg.data_dir + "/log";
  opts.sync = cfg.sync;
  opts.env = cfg.storage_env;
  auto opened = storage::log_store::open(opts);
  if (!opened)
    return storage::make_error(opened.error());
  std::shared_ptr<storage::log_store> store{std::move(*opened)};
  actors::snapshot_settings snaps;
  snaps.dir = cfg.data_dir;
  snaps.threshold = cfg.snapshot_threshold;
  snaps.detached_saves = cfg.detached_storage;
  raft_server srv;
  if (cfg.detached_storage)
    srv.storage
      = sys.spawn<caf::detached>(actors::snapshot_storage, store, snaps);
  else
    srv.storage = sys.spawn(actors::snapshot_storage, store, snaps);
  actors::server_config sc;
  sc.id = cfg.id;
  sc.tick_interval = std::chrono::milliseconds{cfg.tick_ms};
  sc.client_timeout = std::chrono::milliseconds{cfg.client_timeout_ms};
  sc.election_ticks = cfg.election_ticks;
  sc.wall_clock = cfg.wall_clock;
  sc.detached_snapshots = cfg.detached_storage;
  srv.server = sys.spawn(actors::server, sc, srv.storage);
  return srv;
}

void stop_raft_server(raft_server& srv) {
  // The server stops its replicas, appliers and the storage.
  if (srv.server)
    caf::anon_send_exit(srv.server, caf::exit_reason::user_shutdown);
  srv.server = nullptr;
  srv.storage = nullptr;
}

} // namespace ees::cluster
