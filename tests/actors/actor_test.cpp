// The actor runtime (DESIGN.md §3) on CAF's deterministic test_coordinator:
// three servers in one actor system, real RocksDB stores in temp dirs, time
// advanced by hand. No sleeps, no real clock.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "actors/errors.hpp"
#include "actors/interfaces.hpp"
#include "actors/server.hpp"
#include "actors/storage.hpp"
#include "ees/cluster/raft_server_factory.hpp"
#include "ees/cluster/state_machine.hpp"
#include "tests/actors/support.hpp"
#include "tests/support/faulty_env.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace ees;
using namespace ees::actors;
using namespace std::chrono_literals;

namespace {

/// Appends every command to a list; two replicas agree iff the lists do.
struct test_machine : cluster::state_machine {
  std::vector<std::string> commands;
  int leader_starts = 0;

  std::string apply(const cluster::entry_context&,
                    const std::string& command) override {
    commands.push_back(command);
    return "ok:" + command;
  }
  std::string snapshot() override {
    std::string out;
    for (auto& c : commands)
      out += c + '\n';
    return out;
  }
  void restore(const std::string&) override {
    // Snapshots are not taken in these tests.
  }
  void on_leader_start(term_t) override {
    ++leader_starts;
  }
  std::size_t hash() {
    return std::hash<std::string>{}(snapshot());
  }
};

struct fixture : test::actor_fixture {
  std::vector<std::shared_ptr<test_machine>> machines; // group 1, per node
  /// When set before start_cluster: every node's log store runs on a
  /// fault-injecting file system (its switch at the node's index) and syncs.
  bool faulty_disks = false;
  std::vector<std::shared_ptr<test::fault_switch>> disks;
  /// When set before start_cluster: envelopes between servers pass through
  /// one tap per receiving server, which counts them by sender in `sent_by`
  /// and records every CAF message (a batch) in `deliveries`.
  bool tapped = false;
  std::shared_ptr<std::map<node_id, std::size_t>> sent_by
    = std::make_shared<std::map<node_id, std::size_t>>();
  struct delivery {
    node_id to;
    std::vector<envelope> batch;
  };
  std::shared_ptr<std::vector<delivery>> deliveries
    = std::make_shared<std::vector<delivery>>();
  std::vector<peer_actor> taps; // index j: in front of node j + 1
  /// raft_server_settings::client_timeout_ms of servers started later.
  std::uint32_t client_timeout_ms = 10000;

  ~fixture() {
    for (auto& t : taps)
      self->send_exit(t, caf::exit_reason::user_shutdown);
  }

  cluster::raft_server start_server(std::size_t i) {
    auto s = settings(i);
    s.client_timeout_ms = client_timeout_ms;
    if (faulty_disks) {
      while (disks.size() <= i)
        disks.push_back(std::make_shared<test::fault_switch>());
      s.storage_env = test::make_faulty_env(disks[i]);
      s.sync = true; // fsync faults bite only when the store syncs
    }
    return start(s);
  }

  /// Starts three servers and registers group `g` on each, with a fresh test
  /// machine per node in `machines`.
  void start_group(group_id g) {
    start_cluster();
    for (std::size_t i = 0; i < 3; ++i) {
      machines.push_back(std::make_shared<test_machine>());
      register_group(i, g, machines[i]);
    }
  }

  void start_cluster(std::size_t n = 3) {
    for (std::size_t i = 0; i < n; ++i)
      servers.push_back(start_server(i));
    connect_all();
  }

  void connect_all() {
    if (tapped && taps.empty())
      for (auto& srv : servers)
        taps.push_back(sys.spawn(tap, peer_actor{srv.server},
                                 node_id{taps.size() + 1}, sent_by,
                                 deliveries));
    for (std::size_t i = 0; i < servers.size(); ++i)
      for (std::size_t j = 0; j < servers.size(); ++j)
        if (i != j)
          self->send(servers[i].server, atom::connect_peer_v, node_id{j + 1},
                     tapped ? taps[j] : peer_actor{servers[j].server});
    sched.run();
  }

  /// Forwards everything to `dest` (node `to`), counting envelopes by their
  /// sender and recording each CAF message.
  static peer_actor::behavior_type
  tap(peer_actor::pointer self, peer_actor dest, node_id to,
      std::shared_ptr<std::map<node_id, std::size_t>> sent_by,
      std::shared_ptr<std::vector<delivery>> deliveries) {
    return {
      [=](envelope& env) {
        ++(*sent_by)[env.msg.from];
        deliveries->push_back(delivery{to, {env}});
        self->send(dest, std::move(env));
      },
      [=](std::vector<envelope>& batch) {
        for (auto& env : batch)
          ++(*sent_by)[env.msg.from];
        deliveries->push_back(delivery{to, batch});
        self->send(dest, std::move(batch));
      },
      [=](atom::hello, node_id from) { self->send(dest, atom::hello_v, from); },
    };
  }

  /// One tick under an adversarial schedule: a server with work runs before
  /// anyone else, as when the replicas run on other threads and the server
  /// sees the first heartbeat of a tick before the others are produced.
  void tick_servers_first() {
    sched.advance_time(tick_length);
    while (sched.has_job()) {
      for (auto& s : servers)
        if (sched.prioritize(s.server))
          break;
      sched.run_once();
    }
  }

  void register_group(std::size_t i, group_id g,
                      std::shared_ptr<test_machine> m) {
    auto r = ask<caf::ok_atom>(0, servers[i].server, atom::register__v, g,
                               voters(), cluster::state_machine_ptr{m});
    REQUIRE_MESSAGE(r, sys.render(r.error()));
  }

  /// A lone server 1 on `store`, its peer 2 a recorder of what it is sent
  /// (into `sent`), with group g1 of voters {1, 2, 3} registered.
  std::pair<server_actor, peer_actor>
  lone_server(storage_actor store, std::shared_ptr<std::vector<envelope>> sent);

  /// Proposes `cmd` through server `i`; ticks until the answer arrives.
  caf::expected<std::string> propose(std::size_t i, group_id g,
                                     std::string cmd) {
    return ask<std::string>(5, servers[i].server, atom::propose_v, g,
                            std::move(cmd));
  }
};

const group_id g1{1};
const group_id g2{2};

} // namespace

TEST_CASE_FIXTURE(fixture, "three servers elect a leader and converge") {
  start_group(g1);
  auto leader = await_leader(g1);
  REQUIRE(leader);
  for (int k = 0; k < 10; ++k) {
    auto cmd = "cmd" + std::to_string(k);
    auto r = propose(*leader, g1, cmd);
    REQUIRE_MESSAGE(r, sys.render(r.error()));
    CHECK(*r == "ok:" + cmd);
  }
  tick(5);
  for (auto& m : machines) {
    CHECK(m->commands.size() == 10);
    CHECK(m->hash() == machines[*leader]->hash());
  }
  CHECK(machines[*leader]->leader_starts == 1);
  SUBCASE("followers refuse proposals") {
    auto follower = (*leader + 1) % 3;
    auto r = propose(follower, g1, "nope");
    REQUIRE(!r);
    CHECK(r.error() == raft::make_error(raft::raft_errc::not_leader));
  }
  SUBCASE("linearizable read on the leader") {
    auto r = ask<log_index>(3, servers[*leader].server, atom::read_v, g1);
    REQUIRE_MESSAGE(r, sys.render(r.error()));
    CHECK(r->value >= 11); // 10 commands after the leader's no-op
  }
}

TEST_CASE_FIXTURE(fixture, "a proposal that cannot commit is answered "
                           "timed_out once the client timeout passed, "
                           "counted in the replica's ticks") {
  client_timeout_ms = 20 * tick_length.count(); // 20 ticks
  start_group(g1);
  auto leader = await_leader(g1);
  REQUIRE(leader);
  // Both followers are gone: the entry can never commit, and the leader
  // steps down (check-quorum) without learning the proposal's fate.
  for (std::size_t i = 0; i < 3; ++i)
    if (i != *leader)
      cluster::stop_raft_server(servers[i]);
  sched.run();
  auto handle = self->request(servers[*leader].server, caf::infinite,
                              atom::propose_v, g1, std::string{"stranded"});
  sched.run();
  tick(18);
  CHECK(self->mailbox().empty());
  auto st = status(*leader, g1);
  REQUIRE(st);
  CHECK(st->current_role != raft::role::leader);
  tick(3);
  REQUIRE_FALSE(self->mailbox().empty());
  caf::error got;
  std::move(handle).receive([](std::string&) {},
                            [&](caf::error& err) { got = std::move(err); });
  CHECK(got == make_error(cluster_errc::timed_out));
  CHECK(error_name(got) == "timed_out");
}

TEST_CASE_FIXTURE(fixture, "groups are registered and unregistered at "
                           "runtime; one tick timer drives them all") {
  start_group(g1);
  REQUIRE(await_leader(g1));
  std::vector<std::shared_ptr<test_machine>> second;
  for (std::size_t i = 0; i < 3; ++i) {
    second.push_back(std::make_shared<test_machine>());
    register_group(i, g2, second[i]);
  }
  // Registering twice is refused.
  auto dup = ask<caf::ok_atom>(0, servers[0].server, atom::register__v, g2,
                               voters(), cluster::state_machine_ptr{second[0]});
  CHECK(!dup);
  // Only the server's fan-out ticks the new replicas: they elect a leader.
  auto leader2 = await_leader(g2);
  REQUIRE(leader2);
  auto r = propose(*leader2, g2, "second");
  REQUIRE_MESSAGE(r, sys.render(r.error()));
  tick(5);
  for (auto& m : second)
    CHECK(m->commands == std::vector<std::string>{"second"});
  for (auto& m : machines)
    CHECK(m->commands.empty());
  for (std::size_t i = 0; i < 3; ++i) {
    auto ok = ask<caf::ok_atom>(0, servers[i].server, atom::unregister_v, g2);
    CHECK_MESSAGE(ok, sys.render(ok.error()));
    auto st = status(i, g2);
    REQUIRE(!st);
    CHECK(st.error() == make_error(cluster_errc::unknown_group));
  }
  // Group 1 is unaffected.
  auto leader1 = await_leader(g1);
  REQUIRE(leader1);
  CHECK(propose(*leader1, g1, "still-here"));
}

TEST_CASE_FIXTURE(fixture, "followers campaign at once when the "
                           "leader's connection is lost, not after a timeout") {
  start_group(g1);
  auto leader = await_leader(g1);
  REQUIRE(leader);
  auto old_term = status(*leader, g1)->term;
  std::vector<std::size_t> survivors;
  for (std::size_t i = 0; i < 3; ++i)
    if (i != *leader)
      survivors.push_back(i);
  auto new_leader = [&]() -> std::optional<std::size_t> {
    for (auto i : survivors) {
      auto st = status(i, g1);
      if (st && st->current_role == raft::role::leader && st->term > old_term)
        return i;
    }
    return std::nullopt;
  };
  // The leader's process dies. Without news of it, the followers wait for
  // their election timeout (>= 5 ticks): nothing happens in 2 ticks.
  cluster::stop_raft_server(servers[*leader]);
  sched.run();
  tick(2);
  CHECK_FALSE(new_leader());
  // The transports report the lost connection: a new leader within 2 ticks
  // (one pre-vote and one vote round; the ticks only deliver timers).
  for (auto i : survivors)
    self->send(servers[i].server, atom::connect_peer_v, node_id{*leader + 1},
               peer_actor{});
  sched.run();
  auto elected = new_leader();
  for (int t = 0; t < 2 && !elected; ++t) {
    tick();
    elected = new_leader();
  }
  REQUIRE(elected);
  CHECK(propose(*elected, g1, "after-failover"));
}

TEST_CASE_FIXTURE(fixture, "a killed replica is restarted from disk") {
  start_group(g1);
  auto leader = await_leader(g1);
  REQUIRE(leader);
  for (int k = 0; k < 5; ++k)
    REQUIRE(propose(*leader, g1, "c" + std::to_string(k)));
  tick(3);
  auto victim = (*leader + 1) % 3;
  auto before = status(victim, g1);
  REQUIRE(before);
  auto handle
    = ask<replica_actor>(0, servers[victim].server, atom::replica_v, g1);
  REQUIRE(handle);
  self->send_exit(*handle, caf::exit_reason::kill);
  sched.run();
  auto after = status(victim, g1);
  REQUIRE_MESSAGE(after, sys.render(after.error()));
  CHECK(after->last_index >= before->last_index);
  auto handle2
    = ask<replica_actor>(0, servers[victim].server, atom::replica_v, g1);
  REQUIRE(handle2);
  CHECK(*handle2 != *handle);
  // The applier survived: replayed entries are not applied twice.
  CHECK(machines[victim]->commands.size() == 5);
  leader = await_leader(g1);
  REQUIRE(leader);
  REQUIRE(propose(*leader, g1, "after-restart"));
  tick(5);
  for (auto& m : machines) {
    CHECK(m->commands.size() == 6);
    CHECK(m->hash() == machines[0]->hash());
  }
}

TEST_CASE_FIXTURE(fixture, "a restarted server recovers committed commands "
                           "from its data dir") {
  start_group(g1);
  auto leader = await_leader(g1);
  REQUIRE(leader);
  for (int k = 0; k < 5; ++k)
    REQUIRE(propose(*leader, g1, "c" + std::to_string(k)));
  tick(5);
  auto victim = (*leader + 1) % 3;
  auto before = status(victim, g1);
  REQUIRE(before);
  cluster::stop_raft_server(servers[victim]);
  sched.run();
  servers[victim] = start_server(victim);
  // Not connected yet: whatever it knows comes from its own disk.
  machines[victim] = std::make_shared<test_machine>();
  register_group(victim, g1, machines[victim]);
  auto recovered = status(victim, g1);
  REQUIRE(recovered);
  CHECK(recovered->last_index == before->last_index);
  CHECK(recovered->term == before->term);
  CHECK(machines[victim]->commands.size() == before->commit.value - 1);
  connect_all();
  tick(5);
  leader = await_leader(g1);
  REQUIRE(leader);
  REQUIRE(propose(*leader, g1, "after-restart"));
  tick(5);
  for (auto& m : machines) {
    CHECK(m->commands.size() == 6);
    CHECK(m->hash() == machines[*leader]->hash());
  }
}

namespace {

/// A storage that withholds every persist acknowledgement, and the messages
/// waiting for it, until it is sent `flush` by the test; it hands those
/// messages to the server.
struct stub_storage_state {
  static inline const char* name = "stub_storage";
  std::vector<caf::typed_response_promise<atom::persisted>> waiting;
  std::vector<envelope> then;
  peer_actor router;
};

using write_log = std::shared_ptr<std::vector<storage::group_write>>;

/// A storage that acknowledges persists only on `flush` and records every
/// write it is asked for in `writes`. (An argument is needed anyway: CAF
/// 0.17.6 spawning a function-based actor without extra arguments binds a
/// reference to a null tuple pointer in caf/detail/init_fun_factory.hpp,
/// which UBSan reports.)
storage_actor::behavior_type
stub_storage(storage_actor::stateful_pointer<stub_storage_state> self,
             write_log writes) {
  return {
    [](atom::register_, group_id, raft::membership& voters) {
      raft::persistent_state ps;
      ps.snapshot.config = voters;
      return ps;
    },
    [](atom::load, group_id) { return raft::persistent_state{}; },
    [self, writes](atom::persist, storage::group_write& w,
                   std::vector<envelope>& then) {
      writes->push_back(w);
      auto rp = self->make_response_promise<atom::persisted>();
      auto& st = self->state;
      st.waiting.push_back(rp);
      std::move(then.begin(), then.end(), std::back_inserter(st.then));
      return rp;
    },
    [self](atom::flush) {
      auto& st = self->state;
      if (!st.then.empty())
        caf::send_as(st.router, st.router, std::move(st.then));
      st.then.clear();
      for (auto& rp : st.waiting)
        rp.deliver(atom::persisted_v);
      st.waiting.clear();
    },
    [self](atom::router, peer_actor& server) {
      self->state.router = std::move(server);
    },
    [](atom::connect_peer, node_id, peer_actor&) {},
    [](atom::unregister, group_id) { return caf::ok_atom::value; },
  };
}

using envelope_log = std::shared_ptr<std::vector<envelope>>;
using sender_log = std::shared_ptr<std::vector<caf::actor_addr>>;

/// A peer server that records every envelope it receives in `log` and, when
/// `senders` is set, who sent it (in the same order).
peer_actor::behavior_type recording_peer(peer_actor::pointer self,
                                         envelope_log log, sender_log senders) {
  auto record = [self, log, senders](envelope& env) {
    if (senders)
      senders->push_back(
        caf::actor_cast<caf::actor_addr>(self->current_sender()));
    log->push_back(std::move(env));
  };
  return {
    [record](envelope& env) { record(env); },
    [record](std::vector<envelope>& batch) {
      for (auto& env : batch)
        record(env);
    },
    [](atom::hello, node_id) {
      // Not an envelope: nothing to record.
    },
  };
}

std::pair<server_actor, peer_actor>
fixture::lone_server(storage_actor store,
                     std::shared_ptr<std::vector<envelope>> sent) {
  server_config sc;
  sc.id = node_id{1};
  sc.tick_interval = tick_length;
  sc.election_ticks = 5;
  auto srv = sys.spawn(server, sc, store);
  auto peer2 = sys.spawn(recording_peer, std::move(sent), sender_log{});
  self->send(srv, atom::connect_peer_v, node_id{2}, peer2);
  sched.run();
  raft::membership m;
  m.voters = {node_id{1}, node_id{2}, node_id{3}};
  REQUIRE(ask<caf::ok_atom>(
    0, srv, atom::register__v, g1, m,
    cluster::state_machine_ptr{std::make_shared<test_machine>()}));
  return {srv, peer2};
}

bool has(const std::vector<envelope>& log, raft::message_type type) {
  for (auto& env : log)
    if (env.msg.type == type)
      return true;
  return false;
}

} // namespace

TEST_CASE_FIXTURE(fixture, "Rule 7: votes and append acknowledgements leave "
                           "only after the storage acknowledged") {
  auto store
    = sys.spawn(stub_storage, std::make_shared<write_log::element_type>());
  auto log = std::make_shared<std::vector<envelope>>();
  auto [srv, peer2] = lone_server(store, log);
  self->send(store, atom::flush_v);
  sched.run();
  log->clear();
  // Node 2 asks for a vote in term 5.
  raft::message vote;
  vote.type = raft::message_type::vote_request;
  vote.from = node_id{2};
  vote.to = node_id{1};
  vote.term = term_t{5};
  self->send(srv, envelope{g1, vote});
  sched.run();
  CHECK(!has(*log, raft::message_type::vote_response));
  self->send(store, atom::flush_v);
  sched.run();
  REQUIRE(has(*log, raft::message_type::vote_response));
  CHECK(!log->back().msg.reject);
  log->clear();
  // Node 2, now leader of term 5, appends an entry.
  raft::message app;
  app.type = raft::message_type::append_request;
  app.from = node_id{2};
  app.to = node_id{1};
  app.term = term_t{5};
  app.entries.push_back(
    raft::log_entry{term_t{5}, log_index{1}, raft::entry_type::noop, {}});
  self->send(srv, envelope{g1, app});
  sched.run();
  CHECK(!has(*log, raft::message_type::append_response));
  self->send(store, atom::flush_v);
  sched.run();
  REQUIRE(has(*log, raft::message_type::append_response));
  CHECK(!log->back().msg.reject);
  CHECK(log->back().msg.index == log_index{1});
  self->send_exit(srv, caf::exit_reason::user_shutdown);
  self->send_exit(peer2, caf::exit_reason::user_shutdown);
  sched.run();
}

namespace {

envelope ack_to(node_id to) {
  raft::message m;
  m.type = raft::message_type::append_response;
  m.from = node_id{1};
  m.to = to;
  m.term = term_t{1};
  m.index = log_index{1};
  return envelope{g1, m};
}

} // namespace

TEST_CASE_FIXTURE(fixture, "Rule 7 at the storage: the messages that wait "
                           "for a write leave once it is durable, straight "
                           "to the link of their node and as the server; a "
                           "failed write sends none") {
  test::temp_dir dir;
  auto disk = std::make_shared<test::fault_switch>();
  storage::log_store_options opts;
  opts.dir = (dir.path / "log").string();
  opts.env = test::make_faulty_env(disk);
  auto opened = storage::log_store::open(opts);
  REQUIRE(opened);
  auto store = sys.spawn(
    actors::storage, std::shared_ptr<storage::log_store>{std::move(*opened)});
  auto at_link = std::make_shared<envelope_log::element_type>();
  auto at_server = std::make_shared<envelope_log::element_type>();
  auto link_senders = std::make_shared<sender_log::element_type>();
  auto server_senders = std::make_shared<sender_log::element_type>();
  auto link2 = sys.spawn(recording_peer, at_link, link_senders);
  auto server = sys.spawn(recording_peer, at_server, server_senders);
  self->send(store, atom::router_v, server);
  self->send(store, atom::connect_peer_v, node_id{2}, link2);
  raft::membership m;
  m.voters = {node_id{1}, node_id{2}, node_id{3}};
  REQUIRE(ask<raft::persistent_state>(0, store, atom::register__v, g1, m));
  auto write = [&](std::uint64_t index) {
    storage::group_write w;
    w.group = g1;
    w.entries.push_back(
      raft::log_entry{term_t{1}, log_index{index}, raft::entry_type::noop, {}});
    w.sync = true;
    return w;
  };
  // Node 2 has a link, node 3 none: its message goes to the server.
  auto syncs = disk->syncs.load();
  auto ok = ask<atom::persisted>(
    0, store, atom::persist_v, write(1),
    std::vector<envelope>{ack_to(node_id{2}), ack_to(node_id{3})});
  REQUIRE(ok);
  CHECK(disk->syncs > syncs); // Durable before anything left.
  REQUIRE(at_link->size() == 1);
  CHECK(link_senders->front() == server.address());
  CHECK(at_link->front() == ack_to(node_id{2}));
  REQUIRE(at_server->size() == 1);
  CHECK(server_senders->front() == server.address());
  CHECK(at_server->front().msg.to == node_id{3});
  // A lost link: the server gets the message, to drop or reroute.
  self->send(store, atom::connect_peer_v, node_id{2}, peer_actor{});
  REQUIRE(ask<atom::persisted>(0, store, atom::persist_v, write(2),
                               std::vector<envelope>{ack_to(node_id{2})}));
  CHECK(at_link->size() == 1);
  REQUIRE(at_server->size() == 2);
  CHECK(at_server->back().msg.to == node_id{2});
  // The fsync fails: the storage stops, and nothing leaves.
  self->send(store, atom::connect_peer_v, node_id{2}, link2);
  disk->fail_syncs = true;
  auto failed = ask<atom::persisted>(
    0, store, atom::persist_v, write(3),
    std::vector<envelope>{ack_to(node_id{2}), ack_to(node_id{3})});
  REQUIRE(!failed);
  CHECK(disk->injected > 0);
  CHECK(at_link->size() == 1);
  CHECK(at_server->size() == 2);
  self->send_exit(link2, caf::exit_reason::user_shutdown);
  self->send_exit(server, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_CASE_FIXTURE(fixture, "a commit index alone costs no storage round "
                           "trip: it rides on the next write, or the next "
                           "tick writes it unsynced") {
  auto writes = std::make_shared<write_log::element_type>();
  auto store = sys.spawn(stub_storage, writes);
  auto log = std::make_shared<std::vector<envelope>>();
  auto [srv, peer2] = lone_server(store, log);
  self->send(store, atom::flush_v);
  sched.run();
  // Node 2, leader of term 5, appends entry 1.
  auto from_leader
    = [&](raft::message_type type, std::uint64_t commit, std::uint64_t entry) {
        raft::message m;
        m.type = type;
        m.from = node_id{2};
        m.to = node_id{1};
        m.term = term_t{5};
        m.commit = log_index{commit};
        if (entry > 0) {
          m.index = log_index{entry - 1};
          m.log_term = term_t{entry > 1 ? 5u : 0u};
          m.entries.push_back(raft::log_entry{
            term_t{5}, log_index{entry}, raft::entry_type::noop, {}});
        }
        self->send(srv, envelope{g1, m});
        sched.run();
        self->send(store, atom::flush_v);
        sched.run();
      };
  from_leader(raft::message_type::append_request, 0, 1);
  writes->clear();
  log->clear();
  // A heartbeat commits entry 1: the follower answers, applies, and writes
  // nothing yet.
  from_leader(raft::message_type::heartbeat_request, 1, 0);
  CHECK(has(*log, raft::message_type::heartbeat_response));
  CHECK(writes->empty());
  // Entry 2 is written (synced) together with commit index 1.
  from_leader(raft::message_type::append_request, 1, 2);
  REQUIRE(writes->size() == 1);
  CHECK(writes->front().sync);
  REQUIRE(writes->front().entries.size() == 1);
  CHECK(writes->front().entries.front().index == log_index{2});
  REQUIRE(writes->front().state.has_value());
  CHECK(writes->front().state->commit_index == log_index{1});
  CHECK(writes->front().state->current_term == term_t{5});
  writes->clear();
  // Commit index 2 with no write to follow: the next tick writes it alone,
  // unsynced.
  from_leader(raft::message_type::heartbeat_request, 2, 0);
  CHECK(writes->empty());
  tick();
  self->send(store, atom::flush_v);
  sched.run();
  REQUIRE(writes->size() == 1);
  CHECK(!writes->front().sync);
  CHECK(writes->front().entries.empty());
  REQUIRE(writes->front().state.has_value());
  CHECK(writes->front().state->commit_index == log_index{2});
  self->send_exit(srv, caf::exit_reason::user_shutdown);
  self->send_exit(peer2, caf::exit_reason::user_shutdown);
  sched.run();
}

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

bool is(const caf::error& err, cluster_errc code) {
  return err.category() == caf::atom("cluster")
         && err.code() == static_cast<std::uint8_t>(code);
}

} // namespace

TEST_CASE_FIXTURE(fixture, "fail-stop (DESIGN.md §3): after a failed fsync "
                           "the replica stops for good, the error is "
                           "reported and nothing is retried") {
  // Log lines are captured to show the failure is reported.
  test::log_watch captured;
  faulty_disks = true;
  tapped = true;
  start_group(g1);
  // A second group on the same servers shares each node's storage.
  std::vector<std::shared_ptr<test_machine>> second;
  for (std::size_t i = 0; i < 3; ++i) {
    second.push_back(std::make_shared<test_machine>());
    register_group(i, g2, second[i]);
  }
  auto leader = await_leader(g1);
  REQUIRE(leader);
  REQUIRE(await_leader(g2));
  for (int k = 0; k < 3; ++k)
    REQUIRE(propose(*leader, g1, "c" + std::to_string(k)));
  tick(3);
  auto f = *leader;
  const node_id failed_node{f + 1};
  auto& disk = *disks[f];
  REQUIRE(disk.injected == 0);
  // The disk of the leader's node starts failing every fsync.
  disk.fail_syncs = true;
  auto doomed = propose(f, g1, "doomed");
  // 1. The proposal whose persist failed is answered with the storage error.
  REQUIRE(!doomed);
  CHECK(doomed.error().category() == caf::atom("storage"));
  CHECK_MESSAGE(contains(describe(doomed.error()), "injected"),
                describe(doomed.error()));
  CHECK(disk.injected > 0);
  // 2. The error is reported: logged at error level as a fail-stop.
  auto errors = captured.text();
  CHECK_MESSAGE(contains(errors, "persist failed"), errors);
  CHECK_MESSAGE(contains(errors, "fail-stop"), errors);
  // 3. The server stays up and reports both groups failed on this node.
  for (auto g : {g1, g2}) {
    auto st = status(f, g);
    REQUIRE_MESSAGE(st, describe(st.error()));
    CHECK(st->node == failed_node);
    CHECK_MESSAGE(contains(st->failure, "injected"), st->failure);
    auto cs = ask<client_status>(0, servers[f].server, atom::client_v,
                                 atom::status_v, g);
    REQUIRE(cs);
    CHECK(contains(cs->failure, "injected"));
  }
  // 4. Proposals and reads are answered with group_failed, naming the cause.
  auto later = propose(f, g1, "later");
  REQUIRE(!later);
  CHECK(is(later.error(), cluster_errc::group_failed));
  CHECK_MESSAGE(contains(describe(later.error()), "injected"),
                describe(later.error()));
  auto read = ask<log_index>(3, servers[f].server, atom::read_v, g1);
  REQUIRE(!read);
  CHECK(is(read.error(), cluster_errc::group_failed));
  auto client = ask<client_reply>(3, servers[f].server, atom::client_v,
                                  atom::propose_v, g2, std::string{"x"});
  REQUIRE(client);
  CHECK(!client->ok);
  CHECK(contains(client->error, "group_failed"));
  auto replica = ask<replica_actor>(0, servers[f].server, atom::replica_v, g1);
  REQUIRE(!replica);
  CHECK(is(replica.error(), cluster_errc::group_failed));
  // 5. The failed node sends nothing any more and retries nothing, although
  //    the other two elect a new leader and keep committing around it.
  auto sent = (*sent_by)[failed_node];
  auto injected = disk.injected.load();
  auto calls = disk.calls.load();
  std::vector<std::size_t> rest;
  for (std::size_t i = 0; i < 3; ++i)
    if (i != f)
      rest.push_back(i);
  auto next = await_leader(g1, 200, rest);
  REQUIRE(next);
  CHECK(*next != f);
  REQUIRE(propose(*next, g1, "survivors"));
  tick(50);
  CHECK((*sent_by)[failed_node] == sent);
  CHECK(disk.injected == injected);
  CHECK(disk.calls == calls);
  for (auto i : rest)
    CHECK(machines[i]->commands.back() == "survivors");
  CHECK(machines[f]->commands.size() == 3);
  // Still failed, not restarted.
  auto st = status(f, g1);
  REQUIRE(st);
  CHECK(!st->failure.empty());
}

namespace {

/// A storage that fails every persist but, unlike the real one, stays up:
/// the replica must stop on its own.
storage_actor::behavior_type failing_storage(storage_actor::pointer, int) {
  return {
    [](atom::register_, group_id, raft::membership& voters) {
      raft::persistent_state ps;
      ps.snapshot.config = voters;
      return ps;
    },
    [](atom::load, group_id) { return raft::persistent_state{}; },
    [](atom::persist, storage::group_write&,
       std::vector<envelope>&) -> caf::result<atom::persisted> {
      return storage::make_error(storage::storage_error{
        storage::storage_errc::io_error, "injected persist failure"});
    },
    [](atom::flush) {},
    [](atom::router, peer_actor&) {},
    [](atom::connect_peer, node_id, peer_actor&) {},
    [](atom::unregister, group_id) { return caf::ok_atom::value; },
  };
}

} // namespace

TEST_CASE_FIXTURE(fixture, "fail-stop: a replica whose persist fails stops "
                           "on its own, even while its storage runs") {
  auto store = sys.spawn(failing_storage, 0);
  auto log = std::make_shared<std::vector<envelope>>();
  auto [srv, peer2] = lone_server(store, log);
  // A vote must be persisted before it is granted (§5.2): that write fails.
  raft::message vote;
  vote.type = raft::message_type::vote_request;
  vote.from = node_id{2};
  vote.to = node_id{1};
  vote.term = term_t{5};
  self->send(srv, envelope{g1, vote});
  sched.run();
  auto st = ask<replica_status>(0, srv, atom::status_v, g1);
  REQUIRE(st);
  CHECK_MESSAGE(contains(st->failure, "injected persist failure"), st->failure);
  auto r = ask<std::string>(3, srv, atom::propose_v, g1, std::string{"x"});
  REQUIRE(!r);
  CHECK(is(r.error(), cluster_errc::group_failed));
  // Nothing leaves for the group any more: no vote, no campaign of its own.
  tick(30);
  CHECK(!has(*log, raft::message_type::vote_response));
  CHECK(!has(*log, raft::message_type::vote_request));
  CHECK(!has(*log, raft::message_type::pre_vote_request));
  self->send_exit(srv, caf::exit_reason::user_shutdown);
  self->send_exit(peer2, caf::exit_reason::user_shutdown);
  self->send_exit(store, caf::exit_reason::user_shutdown);
  sched.run();
}

namespace {

/// A client's answer sink that keeps every answer it receives.
client_sink_actor::behavior_type
answer_sink(client_sink_actor::pointer,
            std::shared_ptr<std::vector<client_answer>> out) {
  return {
    [](atom::event, client_event&) {},
    [out](atom::answers, std::vector<client_answer>& batch) {
      out->insert(out->end(), batch.begin(), batch.end());
    },
  };
}

} // namespace

TEST_CASE_FIXTURE(fixture, "batching: the proposals of one client batch "
                           "reach each follower in one append") {
  // Proposed one by one, the first proposal of a batch left alone and the
  // rest waited for the leader's fsync of it: two appends per follower.
  constexpr std::size_t n = 20;
  tapped = true;
  start_group(g1);
  auto leader = await_leader(g1);
  REQUIRE(leader);
  tick(10); // settle: the leader's no-op is committed everywhere
  deliveries->clear();
  auto answers = std::make_shared<std::vector<client_answer>>();
  auto sink = sys.spawn(answer_sink, answers);
  std::vector<client_call> calls;
  for (std::size_t k = 0; k < n; ++k)
    calls.push_back(client_call{k, g1, false, 0, "cmd" + std::to_string(k)});
  self->send(servers[*leader].server, atom::client_v, atom::calls_v,
             std::move(calls), sink);
  sched.run();
  // Appends carrying entries, per follower: one, with all n entries.
  std::map<node_id, std::vector<std::size_t>> appends;
  for (auto& d : *deliveries)
    for (auto& env : d.batch)
      if (env.msg.type == raft::message_type::append_request
          && !env.msg.entries.empty())
        appends[d.to].push_back(env.msg.entries.size());
  REQUIRE(appends.size() == 2);
  for (auto& [to, sizes] : appends) {
    CAPTURE(to.value);
    CHECK(sizes == std::vector<std::size_t>{n});
  }
  // And every call is answered with its own command's result.
  REQUIRE(answers->size() == n);
  for (auto& a : *answers) {
    CHECK(a.reply.ok);
    CHECK(a.reply.value == "ok:cmd" + std::to_string(a.id));
  }
  self->send_exit(sink, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(fixture, "batching (DESIGN.md §3): the heartbeats of many "
                           "groups to one node leave as one message per "
                           "tick") {
  constexpr std::uint64_t n = 8;
  tapped = true;
  start_cluster();
  std::vector<std::shared_ptr<test_machine>> keep;
  for (std::uint64_t g = 1; g <= n; ++g)
    for (std::size_t i = 0; i < 3; ++i) {
      keep.push_back(std::make_shared<test_machine>());
      register_group(i, group_id{g}, keep.back());
    }
  // Who leads what: 8 groups on 3 nodes, so some node leads at least 3.
  std::map<node_id, std::size_t> led;
  for (std::uint64_t g = 1; g <= n; ++g) {
    auto leader = await_leader(group_id{g});
    REQUIRE(leader);
    ++led[node_id{*leader + 1}];
  }
  std::size_t most = 0;
  for (auto& [node, count] : led)
    most = std::max(most, count);
  REQUIRE(most >= 3);
  tick(10); // settle: no elections, no appends in flight
  for (int round = 0; round < 6; ++round) {
    deliveries->clear();
    if (round < 3)
      tick();
    else
      tick_servers_first();
    // Per (sender, receiver): the CAF messages of this tick that carry
    // heartbeats, and how many heartbeats they carry.
    std::map<std::pair<node_id, node_id>, std::vector<std::size_t>> hb;
    std::map<std::pair<node_id, node_id>, std::size_t> messages;
    std::size_t envelopes = 0;
    for (auto& d : *deliveries) {
      REQUIRE(!d.batch.empty());
      ++messages[{d.batch.front().msg.from, d.to}];
      envelopes += d.batch.size();
      std::map<node_id, std::size_t> beats;
      for (auto& env : d.batch)
        if (env.msg.type == raft::message_type::heartbeat_request)
          ++beats[env.msg.from];
      for (auto& [from, count] : beats)
        hb[{from, d.to}].push_back(count);
    }
    for (auto& [from, count] : led) {
      if (count == 0)
        continue;
      for (std::uint64_t to = 1; to <= 3; ++to) {
        if (node_id{to} == from)
          continue;
        CAPTURE(round);
        CAPTURE(from.value);
        CAPTURE(to);
        auto& msgs = hb[{from, node_id{to}}];
        // One message from `from` to `to` holds a heartbeat of every group
        // `from` leads.
        REQUIRE(msgs.size() == 1);
        CHECK(msgs.front() == count);
      }
    }
    CHECK(envelopes == 2 * 2 * n); // a heartbeat and a response per follower
    // In FIFO order the responses, too, leave in one message per turn: at
    // most two messages per ordered pair of nodes, however many groups.
    // (Responses are batched per turn of the follower's server, best effort:
    // under the adversarial schedule they may take several messages.)
    if (round < 3)
      for (auto& [pair, count] : messages)
        CHECK(count <= 2);
  }
  // Replication still works through the batches.
  auto leader = await_leader(group_id{1});
  REQUIRE(leader);
  REQUIRE(propose(*leader, group_id{1}, "batched"));
}
