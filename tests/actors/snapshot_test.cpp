// Snapshots and log compaction in the actor runtime (§7) on CAF's
// deterministic test_coordinator: taking snapshots at the threshold,
// restarting from them, and InstallSnapshot to a follower that missed the
// compacted entries. No sleeps, no real clock.
#include <doctest/doctest.h>

#include "actors/interfaces.hpp"
#include "actors/storage.hpp"
#include "ees/cluster/cluster_state_machine.hpp"
#include "ees/cluster/raft_server_factory.hpp"
#include "ees/cluster/state_machine.hpp"
#include "storage/log_store.hpp"
#include "storage/snapshot_file.hpp"
#include "tests/actors/support.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

using namespace ees;
using namespace ees::actors;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t threshold = 5;
const group_id g1{1};

/// Appends every command to a list; snapshots are the list, one command a
/// line. Counts what came from snapshots and what was applied one by one.
struct list_machine : cluster::state_machine {
  std::vector<std::string> commands;
  std::size_t applies = 0;
  std::size_t restores = 0;
  std::size_t restored_commands = 0;
  /// Extra bytes in every snapshot (a '#' line), to model a large state.
  std::size_t padding = 0;

  std::string apply(const cluster::entry_context&,
                    const std::string& command) override {
    ++applies;
    commands.push_back(command);
    return "ok:" + command;
  }
  std::string snapshot() override {
    std::string out;
    for (auto& c : commands)
      out += c + '\n';
    if (padding > 0)
      out += std::string(padding, '#') + '\n';
    return out;
  }
  void restore(const std::string& data) override {
    ++restores;
    commands.clear();
    std::istringstream in{data};
    for (std::string line; std::getline(in, line);)
      if (line.empty() || line.front() != '#')
        commands.push_back(line);
    restored_commands = commands.size();
  }
  std::size_t hash() {
    return std::hash<std::string>{}(snapshot());
  }
};

struct snap_fixture : test::actor_fixture {
  std::vector<std::shared_ptr<list_machine>> machines;

  snap_fixture() {
    if (std::getenv("EES_SNAP_LOG"))
      spdlog::set_level(spdlog::level::info);
  }

  cluster::raft_server start_server(std::size_t i) {
    auto s = settings(i);
    s.snapshot_threshold = threshold;
    return start(s);
  }

  void start_servers(std::size_t n = 3) {
    for (std::size_t i = 0; i < n; ++i) {
      servers.push_back(start_server(i));
      machines.push_back(std::make_shared<list_machine>());
    }
  }

  void connect(std::size_t i, std::size_t j) {
    self->send(servers[i].server, atom::connect_peer_v, node_id{j + 1},
               peer_actor{servers[j].server});
    self->send(servers[j].server, atom::connect_peer_v, node_id{i + 1},
               peer_actor{servers[i].server});
    sched.run();
  }

  void connect_all() {
    for (std::size_t i = 0; i < servers.size(); ++i)
      for (std::size_t j = i + 1; j < servers.size(); ++j)
        connect(i, j);
  }

  caf::expected<replica_status> status(std::size_t i) {
    return actor_fixture::status(i, g1);
  }

  void register_group(std::size_t i) {
    auto r
      = ask<caf::ok_atom>(0, servers[i].server, atom::register__v, g1, voters(),
                          cluster::state_machine_ptr{machines[i]});
    REQUIRE_MESSAGE(r, sys.render(r.error()));
  }

  /// Ticks until the servers in `among` agree on a leader of g1.
  std::optional<std::size_t> await_leader(std::vector<std::size_t> among,
                                          int max_ticks = 200) {
    return actor_fixture::await_leader(g1, max_ticks, std::move(among));
  }

  /// Registers g1 on every server and returns the leader they agree on.
  std::size_t register_all() {
    for (std::size_t i = 0; i < 3; ++i)
      register_group(i);
    auto leader = await_leader({0, 1, 2});
    REQUIRE(leader);
    return *leader;
  }

  caf::expected<std::string> propose(std::size_t i, std::string cmd) {
    return ask<std::string>(5, servers[i].server, atom::propose_v, g1,
                            std::move(cmd));
  }

  void propose_n(std::size_t leader, int from, int to) {
    for (int k = from; k < to; ++k) {
      auto cmd = "c" + std::to_string(k);
      auto r = propose(leader, cmd);
      REQUIRE_MESSAGE(r, sys.render(r.error()));
      CHECK(*r == "ok:" + cmd);
    }
  }

  /// The snapshot files of g1 on server `i`, newest first.
  std::vector<std::pair<log_index, term_t>> snapshot_files(std::size_t i) {
    storage::snapshot_files files{dirs.at(i)->path.string()};
    auto names = files.list(g1);
    REQUIRE(names);
    return *names;
  }

  /// Reads the log store of a stopped server.
  raft::persistent_state load_log(std::size_t i) {
    storage::log_store_options opts;
    opts.dir = (dirs.at(i)->path / "log").string();
    opts.sync = false;
    auto store = storage::log_store::open(opts);
    REQUIRE(store);
    auto ps = (*store)->load(g1);
    REQUIRE(ps);
    return *ps;
  }
};

} // namespace

TEST_CASE_FIXTURE(snap_fixture, "a snapshot is taken at the threshold and "
                                "the log is compacted on disk") {
  start_servers();
  connect_all();
  auto leader = register_all();
  propose_n(leader, 0, 12);
  tick(5);
  auto before = status(leader);
  REQUIRE(before);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(machines[i]->commands.size() == 12);
    CHECK(machines[i]->hash() == machines[leader]->hash());
    CHECK(machines[i]->restores == 0);
    auto files = snapshot_files(i);
    REQUIRE(!files.empty());
    CHECK(files.front().first.value >= threshold);
  }
  auto newest = snapshot_files(leader).front();
  cluster::stop_raft_server(servers[leader]);
  sched.run();
  auto ps = load_log(leader);
  CHECK(ps.snapshot.last_index == newest.first);
  CHECK(ps.snapshot.last_term == newest.second);
  CHECK(ps.snapshot.config == voters());
  // Only the entries after the snapshot are left in the log.
  CHECK(ps.entries.size()
        == before->last_index.value - ps.snapshot.last_index.value);
  CHECK(ps.entries.size() < before->last_index.value);
  if (!ps.entries.empty())
    CHECK(ps.entries.front().index == ps.snapshot.last_index + 1);
  // The file holds the state up to its index.
  storage::snapshot_files files{dirs.at(leader)->path.string()};
  auto snap = files.load_latest(g1);
  REQUIRE(snap);
  REQUIRE(*snap);
  CHECK((*snap)->meta == ps.snapshot);
  CHECK(!(*snap)->data.empty());
}

TEST_CASE_FIXTURE(snap_fixture, "a restarted server restores from its "
                                "snapshot and re-applies only the tail") {
  start_servers();
  connect_all();
  auto leader = register_all();
  propose_n(leader, 0, 13);
  tick(5);
  auto victim = (leader + 1) % 3;
  auto before = status(victim);
  REQUIRE(before);
  auto hash_before = machines[victim]->hash();
  REQUIRE(!snapshot_files(victim).empty());
  cluster::stop_raft_server(servers[victim]);
  sched.run();
  auto ps = load_log(victim);
  REQUIRE(ps.snapshot.last_index.value > 0);
  servers[victim] = start_server(victim);
  // Not connected: everything comes from its own data dir.
  machines[victim] = std::make_shared<list_machine>();
  register_group(victim);
  auto& m = *machines[victim];
  CHECK(m.restores == 1);
  CHECK(m.restored_commands > 0);
  CHECK(m.commands.size() == 13);
  // Only the tail after the snapshot was applied one by one.
  CHECK(m.applies == 13 - m.restored_commands);
  CHECK(m.applies < 13);
  CHECK(m.hash() == hash_before);
  auto recovered = status(victim);
  REQUIRE(recovered);
  CHECK(recovered->last_index == before->last_index);
  CHECK(recovered->applied == before->commit);
  // It rejoins and keeps up.
  connect_all();
  auto again = await_leader({0, 1, 2});
  REQUIRE(again);
  leader = *again;
  propose_n(leader, 13, 15);
  tick(5);
  for (auto& x : machines) {
    CHECK(x->commands.size() == 15);
    CHECK(x->hash() == machines[leader]->hash());
  }
}

TEST_CASE_FIXTURE(snap_fixture, "a follower that missed compacted entries "
                                "catches up by InstallSnapshot") {
  start_servers();
  // Node 3 is cut off: no server knows how to reach it, nor it them.
  connect(0, 1);
  for (std::size_t i = 0; i < 3; ++i)
    register_group(i);
  auto leader = await_leader({0, 1});
  REQUIRE(leader);
  propose_n(*leader, 0, 17);
  tick(5);
  auto files = snapshot_files(*leader);
  REQUIRE(!files.empty());
  CHECK(files.front().first.value >= threshold);
  CHECK(machines[2]->commands.empty());
  CHECK(snapshot_files(2).empty());
  // Reconnect: the leader's log no longer holds what node 3 needs.
  connect_all();
  auto all = await_leader({0, 1, 2});
  REQUIRE(all);
  for (int t = 0; t < 50 && machines[2]->commands.size() < 17; ++t)
    tick();
  auto& m3 = *machines[2];
  CHECK(m3.restores >= 1);
  CHECK(m3.restored_commands >= threshold);
  CHECK(m3.commands.size() == 17);
  CHECK(m3.hash() == machines[0]->hash());
  CHECK(!snapshot_files(2).empty());
  // Its status tells: a snapshot was installed, the log starts after it.
  auto s3 = status(2);
  REQUIRE(s3);
  CHECK(s3->snapshots_installed >= 1);
  CHECK(s3->snapshot_index.value >= threshold);
  auto sl = status(*all);
  REQUIRE(sl);
  CHECK(sl->snapshots_installed == 0);
  // Replication continues normally after the install.
  propose_n(*all, 17, 19);
  tick(5);
  for (auto& x : machines) {
    CHECK(x->commands.size() == 19);
    CHECK(x->hash() == machines[*all]->hash());
  }
  // The installed snapshot survives a restart of node 3.
  auto hash3 = m3.hash();
  cluster::stop_raft_server(servers[2]);
  sched.run();
  auto ps = load_log(2);
  CHECK(ps.snapshot.last_index.value >= threshold);
  servers[2] = start_server(2);
  machines[2] = std::make_shared<list_machine>();
  register_group(2);
  CHECK(machines[2]->restores == 1);
  CHECK(machines[2]->hash() == hash3);
}

TEST_CASE_FIXTURE(snap_fixture, "the storage picks the snapshot a restarting "
                                "replica can restore from") {
  dirs.push_back(std::make_unique<test::temp_dir>());
  storage::log_store_options opts;
  opts.dir = (dirs[0]->path / "log").string();
  opts.sync = false;
  auto opened = storage::log_store::open(opts);
  REQUIRE(opened);
  std::shared_ptr<storage::log_store> store{std::move(*opened)};
  snapshot_settings settings;
  settings.dir = dirs[0]->path.string();
  settings.threshold = 7;
  auto st = sys.spawn(snapshot_storage, store, settings);
  auto meta = [&](std::uint64_t index, std::uint64_t term) {
    return raft::snapshot_meta{log_index{index}, term_t{term}, voters()};
  };
  for (std::uint64_t i : {4, 8, 12}) {
    auto ok = ask<caf::ok_atom>(0, st, atom::snap_save_v, g1, meta(i, 2),
                                "state@" + std::to_string(i));
    REQUIRE_MESSAGE(ok, sys.render(ok.error()));
  }
  // Exact reads for InstallSnapshot; a meta that no longer matches fails.
  auto data = ask<std::string>(0, st, atom::snap_read_v, g1, meta(8, 2));
  REQUIRE(data);
  CHECK(*data == "state@8");
  CHECK(!ask<std::string>(0, st, atom::snap_read_v, g1, meta(8, 3)));
  CHECK(!ask<std::string>(0, st, atom::snap_read_v, g1, meta(9, 2)));
  // Restart: the newest file between the log's snapshot and its commit.
  auto start = ask<snapshot_start>(0, st, atom::restore_v, g1, meta(8, 2),
                                   log_index{10});
  REQUIRE(start);
  CHECK(start->enabled);
  CHECK(start->threshold == 7);
  REQUIRE(start->found);
  CHECK(start->meta == meta(8, 2));
  CHECK(start->data == "state@8");
  start = ask<snapshot_start>(0, st, atom::restore_v, g1, meta(4, 2),
                              log_index{20});
  REQUIRE(start);
  REQUIRE(start->found);
  CHECK(start->meta.last_index == log_index{12});
  // A fresh log ignores files (e.g. of an earlier incarnation).
  start
    = ask<snapshot_start>(0, st, atom::restore_v, g1, meta(0, 0), log_index{0});
  REQUIRE(start);
  CHECK(!start->found);
  // A log compacted past a snapshot nobody has is an error.
  CHECK(
    !ask<snapshot_start>(0, st, atom::restore_v, g1, meta(6, 2), log_index{7}));
  // Compaction records the meta in the log store.
  auto ok = ask<caf::ok_atom>(0, st, atom::compact_v, g1, meta(12, 2));
  REQUIRE(ok);
  auto ps = ask<raft::persistent_state>(0, st, atom::load_v, g1);
  REQUIRE(ps);
  CHECK(ps->snapshot == meta(12, 2));
  // Unregistering deletes the files too.
  REQUIRE(ask<caf::ok_atom>(0, st, atom::unregister_v, g1));
  storage::snapshot_files files{dirs[0]->path.string()};
  auto names = files.list(g1);
  CHECK((!names || names->empty()));
  self->send_exit(st, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_CASE_FIXTURE(snap_fixture, "the threshold can be overridden per group") {
  start_servers();
  connect_all();
  auto leader = register_all();
  auto replica
    = ask<replica_actor>(0, servers[leader].server, atom::replica_v, g1);
  REQUIRE(replica);
  self->send(*replica, atom::threshold_v, std::uint64_t{0});
  sched.run();
  propose_n(leader, 0, 12);
  tick(5);
  CHECK(snapshot_files(leader).empty());
  CHECK(!snapshot_files((leader + 1) % 3).empty());
  // Lowering it again takes a snapshot at once.
  self->send(*replica, atom::threshold_v, std::uint64_t{3});
  sched.run();
  CHECK(!snapshot_files(leader).empty());
}

TEST_CASE_FIXTURE(snap_fixture, "the voters of a group take their first "
                                "snapshots a third of a threshold apart, not "
                                "all at the same index") {
  start_servers();
  connect_all();
  auto leader = register_all();
  constexpr std::uint64_t every = 30;
  for (std::size_t i = 0; i < 3; ++i) {
    auto replica
      = ask<replica_actor>(0, servers[i].server, atom::replica_v, g1);
    REQUIRE(replica);
    self->send(*replica, atom::threshold_v, every);
  }
  sched.run();
  // Server i is node i + 1, the voter of rank i: its first snapshot waits
  // for every + i * every / 3 applied entries (the leader's no-op is one).
  int proposed = 0;
  auto files_after = [&](int more) {
    propose_n(leader, proposed, proposed + more);
    proposed += more;
    tick(5);
    std::vector<bool> has;
    for (std::size_t i = 0; i < 3; ++i)
      has.push_back(!snapshot_files(i).empty());
    return has;
  };
  CHECK(files_after(36) == std::vector<bool>{true, false, false});
  CHECK(files_after(10) == std::vector<bool>{true, true, false});
  CHECK(files_after(10) == std::vector<bool>{true, true, true});
  for (std::size_t i = 0; i < 3; ++i) {
    auto files = snapshot_files(i);
    REQUIRE(!files.empty());
    CHECK(files.back().first.value >= every + i * every / 3);
  }
}

TEST_CASE_FIXTURE(snap_fixture, "a large state is not snapshotted again until "
                                "the log since its last snapshot is as large "
                                "as that snapshot") {
  start_servers();
  for (auto& m : machines)
    m->padding = 4096; // each command adds about 20 bytes of log
  connect_all();
  auto leader = register_all();
  propose_n(leader, 0, 8 * threshold);
  tick(5);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(machines[i]->commands.size() == 8 * threshold);
    auto files = snapshot_files(i);
    REQUIRE(!files.empty()); // the first one, at the threshold
    // Without the size rule the newest would be near 8 * threshold.
    CHECK(files.front().first.value < 2 * threshold);
  }
}

TEST_CASE("a snapshot task of the cluster state machine serializes the state "
          "as it was when the task was made, not as it is when it runs") {
  cluster::cluster_state_machine m;
  auto assign = [&](std::uint64_t index, const std::string& key) {
    cluster::entry_context ctx{log_index{index}, term_t{1}, 1000};
    auto answer = m.apply(ctx, R"({"v":1,"type":"AssignKey","id":"r)" + key
                                 + R"(","key":")" + key + R"(","owner":"o"})");
    REQUIRE(answer.find(R"("ok":true)") != std::string::npos);
  };
  assign(1, "k1");
  auto before = m.snapshot();
  auto task = m.snapshot_task();
  assign(2, "k2");
  auto after = m.snapshot();
  CHECK(after != before);
  CHECK(task() == before);
  CHECK(m.snapshot() == after);
}
