// The client protocol (issue 4) on CAF's deterministic test_coordinator:
// leader discovery and retries, reads at each consistency level, pushed
// notifications, and replicated time advanced by the leader. The wall clock
// stamped into entries is the simulated clock.
#include <doctest/doctest.h>

#include "actors/interfaces.hpp"
#include "ees/cluster/client.hpp"
#include "ees/cluster/raft_server_factory.hpp"
#include "ees/cluster/state_machine.hpp"
#include "tests/actors/support.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace ees;
using namespace ees::actors;
using namespace std::chrono_literals;

namespace {

/// Records what it applies with the leader's stamp. Commands:
/// "lease N" sets a deadline N ms after the entry's stamp; "notify O" pushes
/// a notification to owner O; anything else is just recorded.
struct clock_machine : cluster::state_machine {
  struct applied_entry {
    log_index index;
    std::int64_t time;
    std::string command;
  };
  std::vector<applied_entry> entries;
  std::optional<std::int64_t> deadline;
  std::vector<cluster::notification> notes;

  std::string apply(const cluster::entry_context& ctx,
                    const std::string& command) override {
    entries.push_back({ctx.index, ctx.leader_time_ms, command});
    if (command.rfind("lease ", 0) == 0)
      deadline = ctx.leader_time_ms + std::stoll(command.substr(6));
    else if (command.empty() && deadline && ctx.leader_time_ms >= *deadline)
      deadline.reset();
    else if (command.rfind("notify ", 0) == 0)
      notes.push_back(
        {command.substr(7), "note@" + std::to_string(ctx.index.value)});
    return "ok:" + command;
  }
  std::string snapshot() override {
    return {};
  }
  void restore(const std::string&) override {
    // Not snapshotted in these tests.
  }
  std::string query(const std::string& request) override {
    return request + "=" + std::to_string(entries.size());
  }
  std::vector<cluster::notification> take_notifications() override {
    return std::exchange(notes, {});
  }
  std::optional<std::int64_t> next_deadline() override {
    return deadline;
  }
  std::size_t clock_advances() const {
    std::size_t n = 0;
    for (auto& e : entries)
      n += e.command.empty() ? 1 : 0;
    return n;
  }
};

struct client_fixture : test::actor_fixture {
  std::vector<std::shared_ptr<clock_machine>> machines;
  const group_id g{1};

  client_fixture() {
    for (std::size_t i = 0; i < 3; ++i) {
      auto s = settings(i);
      s.wall_clock = [this] {
        return now_ms();
      };
      servers.push_back(start(s));
    }
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 3; ++j)
        if (i != j)
          self->send(servers[i].server, atom::connect_peer_v, node_id{j + 1},
                     peer_actor{servers[j].server});
    for (std::size_t i = 0; i < 3; ++i) {
      machines.push_back(std::make_shared<clock_machine>());
      self->send(servers[i].server, atom::register__v, g, voters(),
                 cluster::state_machine_ptr{machines.back()});
    }
    sched.run();
  }

  std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
             sched.clock().now().time_since_epoch())
      .count();
  }

  std::vector<server_actor> handles(std::vector<std::size_t> order) {
    std::vector<server_actor> out;
    for (auto i : order)
      out.push_back(servers[i].server);
    return out;
  }

  /// Index of the leader once every replica knows it.
  std::size_t await_leader() {
    auto leader = actor_fixture::await_leader(g, 300);
    REQUIRE_MESSAGE(leader, "no leader within 300 ticks");
    return *leader;
  }

  /// Runs the system until `done` holds, at most `max_ticks` ticks.
  template <class Pred>
  bool run_until(Pred done, int max_ticks = 500) {
    sched.run();
    for (int t = 0; t < max_ticks && !done(); ++t)
      tick();
    return done();
  }

  /// A client whose first server is `first` (a stand-in that misbehaves),
  /// then the leader, with the given attempt bound and a 5 s call bound.
  std::unique_ptr<cluster::client>
  client_before_leader(const caf::actor& first, std::size_t leader,
                       std::chrono::milliseconds attempt_timeout) {
    cluster::client_options opts;
    opts.attempt_timeout = attempt_timeout;
    opts.timeout = 5000ms;
    return std::make_unique<cluster::client>(
      sys,
      std::vector<server_actor>{caf::actor_cast<server_actor>(first),
                                servers[leader].server},
      opts);
  }

  std::optional<cluster::client_result> submit(cluster::client& c,
                                               std::string cmd) {
    auto out = std::make_shared<std::optional<cluster::client_result>>();
    c.submit_async(g, std::move(cmd),
                   [out](cluster::client_result r) { *out = std::move(r); });
    run_until([&] { return out->has_value(); });
    return *out;
  }

  std::optional<cluster::client_result>
  query(cluster::client& c, std::string req, cluster::consistency level) {
    auto out = std::make_shared<std::optional<cluster::client_result>>();
    c.query_async(g, std::move(req), level,
                  [out](cluster::client_result r) { *out = std::move(r); });
    run_until([&] { return out->has_value(); });
    return *out;
  }
};

/// Takes every request and never answers it (nor fails it). The unused
/// argument: CAF 0.17 dereferences a null argument tuple when it spawns a
/// function without arguments (UBSan reports it).
caf::behavior silent_server(caf::event_based_actor* self, int) {
  self->set_default_handler(caf::skip);
  return {[](int) {
  }};
}

/// Takes every client call and never answers it, as a server that dies
/// with the calls taken does.
caf::behavior swallowing_server(caf::event_based_actor*, int) {
  return {
    [](atom::client, atom::calls, const std::vector<client_call>&,
       const client_sink_actor&) {},
  };
}

/// What an echoing server saw: the size of each batch of calls.
struct batch_log {
  std::vector<std::size_t> sizes;
};

/// Answers every call with its own payload, all calls of a message in one
/// answer message, in reverse order (answers are matched by id, not order).
caf::behavior echoing_server(caf::event_based_actor* self,
                             std::shared_ptr<batch_log> log) {
  return {
    [self, log](atom::client, atom::calls, std::vector<client_call>& calls,
                client_sink_actor& sink) {
      log->sizes.push_back(calls.size());
      std::vector<client_answer> answers;
      for (auto i = calls.rbegin(); i != calls.rend(); ++i) {
        client_reply reply;
        reply.ok = true;
        reply.value = i->payload;
        answers.push_back(client_answer{i->id, std::move(reply)});
      }
      self->send(sink, atom::answers_v, std::move(answers));
    },
  };
}

/// Answers every call with its payload and counts the direct-port requests
/// (a client's keepalives); offers no direct link (port 0).
caf::behavior counting_server(caf::event_based_actor* self,
                              std::shared_ptr<std::size_t> asked) {
  return {
    [self](atom::client, atom::calls, std::vector<client_call>& calls,
           client_sink_actor& sink) {
      std::vector<client_answer> answers;
      for (auto& call : calls) {
        client_reply reply;
        reply.ok = true;
        reply.value = call.payload;
        answers.push_back(client_answer{call.id, std::move(reply)});
      }
      self->send(sink, atom::answers_v, std::move(answers));
    },
    [asked](atom::direct_port) {
      ++*asked;
      return std::uint16_t{0};
    },
  };
}

/// Stands in for the middleman: every connect reaches `server`.
caf::behavior fake_connector(caf::event_based_actor*, caf::actor server) {
  return {
    [server](caf::connect_atom, const std::string&, std::uint16_t) {
      return caf::make_message(caf::node_id{},
                               caf::actor_cast<caf::strong_actor_ptr>(server),
                               std::set<std::string>{});
    },
  };
}

/// Takes subscriptions and never acknowledges them (the promises stay in
/// `held`); offers no direct link.
caf::behavior unanswering_subscriber(
  caf::event_based_actor* self,
  std::shared_ptr<std::vector<caf::typed_response_promise<caf::ok_atom>>>
    held) {
  return {
    [self, held](atom::client, atom::subscribe, group_id, std::string&,
                 client_sink_actor&) {
      held->push_back(self->make_response_promise<caf::ok_atom>());
      return held->back();
    },
    [](atom::direct_port) { return std::uint16_t{0}; },
  };
}

/// Acknowledges subscriptions and counts them; offers no direct link.
caf::behavior answering_subscriber(caf::event_based_actor*,
                                   std::shared_ptr<std::size_t> subscribed) {
  return {
    [subscribed](atom::client, atom::subscribe, group_id, std::string&,
                 client_sink_actor&) {
      ++*subscribed;
      return caf::ok_atom::value;
    },
    [](atom::direct_port) { return std::uint16_t{0}; },
  };
}

/// Stands in for the middleman: the first connect reaches `first`, every
/// later one `then`; counts them in `connects`.
caf::behavior two_server_connector(caf::event_based_actor*, caf::actor first,
                                   caf::actor then,
                                   std::shared_ptr<std::size_t> connects) {
  return {
    [=](caf::connect_atom, const std::string&, std::uint16_t) {
      auto to = ++*connects == 1 ? first : then;
      return caf::make_message(caf::node_id{},
                               caf::actor_cast<caf::strong_actor_ptr>(to),
                               std::set<std::string>{});
    },
  };
}

std::size_t follower_of(std::size_t leader) {
  return (leader + 1) % 3;
}

} // namespace

TEST_CASE_FIXTURE(client_fixture, "the calls a client makes in one turn "
                                  "reach the server as one message, and each "
                                  "caller gets the answer to its own call") {
  auto log = std::make_shared<batch_log>();
  auto echo = sys.spawn(echoing_server, log);
  cluster::client c{sys, {caf::actor_cast<server_actor>(echo)}};
  constexpr int n = 50;
  std::vector<std::optional<cluster::client_result>> out(n);
  for (int i = 0; i < n; ++i)
    c.submit_async(
      g, "call-" + std::to_string(i),
      [&out, i](cluster::client_result r) { out[i] = std::move(r); });
  sched.run();
  REQUIRE(log->sizes == std::vector<std::size_t>{n});
  for (int i = 0; i < n; ++i) {
    REQUIRE(out[i].has_value());
    CHECK(out[i]->ok);
    CHECK(out[i]->value == "call-" + std::to_string(i));
  }
  // The next turn's calls are the next message.
  std::optional<cluster::client_result> last;
  c.submit_async(g, "later", [&last](cluster::client_result r) { last = r; });
  sched.run();
  CHECK(log->sizes == std::vector<std::size_t>{n, 1});
  REQUIRE(last.has_value());
  CHECK(last->value == "later");
  self->send_exit(echo, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(client_fixture, "a client reaches the leader from any "
                                  "server and gets the applied answer") {
  auto leader = await_leader();
  auto f1 = follower_of(leader);
  auto f2 = follower_of(f1);
  // The followers come first: their not-leader answers send it on.
  cluster::client c{sys, handles({f1, f2, leader})};
  auto r = submit(c, "x");
  REQUIRE(r);
  CHECK_MESSAGE(r->ok, r->error);
  CHECK(r->value == "ok:x");
  CHECK(r->attempts >= 2);
  // The client remembers the leader: the next call needs one attempt.
  auto r2 = submit(c, "y");
  REQUIRE(r2);
  CHECK(r2->ok);
  CHECK(r2->attempts == 1);
  // Applied once on every replica, in the same order.
  REQUIRE(run_until([&] {
    for (auto& m : machines)
      if (m->entries.size() < 2)
        return false;
    return true;
  }));
  for (auto& m : machines) {
    REQUIRE(m->entries.size() == 2);
    CHECK(m->entries[0].command == "x");
    CHECK(m->entries[1].command == "y");
  }
}

TEST_CASE_FIXTURE(client_fixture, "empty commands are refused: only the "
                                  "leader's clock advance is empty") {
  auto leader = await_leader();
  cluster::client c{sys, handles({leader})};
  auto r = submit(c, "");
  REQUIRE(r);
  CHECK_FALSE(r->ok);
  CHECK(r->error == "invalid_command");
  CHECK(r->attempts == 1); // Not retried: no retry can fix it.
  run_until([] { return false; }, 5);
  for (auto& m : machines)
    CHECK(m->entries.empty());
}

TEST_CASE_FIXTURE(client_fixture, "reads at each consistency level") {
  auto leader = await_leader();
  auto f = follower_of(leader);
  cluster::client c{sys, handles({leader})};
  REQUIRE(submit(c, "a")->ok);
  // Linearizable and leader reads through a follower end up at the leader
  // (the follower answers not_leader); the second one goes there directly.
  for (auto level :
       {cluster::consistency::linearizable, cluster::consistency::leader}) {
    cluster::client via_follower{sys, handles({f, leader})};
    auto q = query(via_follower, "n", level);
    REQUIRE(q);
    CHECK_MESSAGE(q->ok, q->error);
    CHECK(q->value == "n=1");
    CHECK(q->attempts == 2);
    auto again = query(via_follower, "n", level);
    REQUIRE(again);
    CHECK(again->ok);
    CHECK(again->attempts == 1);
  }
  // A stale read is answered by the follower itself, with its applied index.
  cluster::client only_follower{sys, handles({f})};
  auto s = query(only_follower, "n", cluster::consistency::stale);
  REQUIRE(s);
  CHECK(s->ok);
  CHECK(s->attempts == 1);
  CHECK(s->applied.value >= 1);
  // A leader read on a follower alone never succeeds: it times out.
  cluster::client_options short_wait;
  short_wait.timeout = 30ms;
  cluster::client lone{sys, handles({f}), short_wait};
  auto l = query(lone, "n", cluster::consistency::leader);
  REQUIRE(l);
  CHECK_FALSE(l->ok);
  CHECK(l->error == "not_leader");
}

TEST_CASE_FIXTURE(client_fixture, "a notification reaches its owner once "
                                  "although every replica pushes it") {
  auto leader = await_leader();
  cluster::client c{sys, handles({0, 1, 2})};
  auto got = std::make_shared<std::vector<std::string>>();
  c.subscribe(g, "alice", [got](const std::string& p) { got->push_back(p); });
  auto others = std::make_shared<int>(0);
  c.subscribe(g, "bob", [others](const std::string&) { ++*others; });
  cluster::client writer{sys, handles({leader})};
  auto r = submit(writer, "notify alice");
  REQUIRE(r);
  REQUIRE(r->ok);
  // Every replica applies it and pushes the note; alice sees it once.
  REQUIRE(run_until([&] {
    for (auto& m : machines)
      if (m->entries.empty())
        return false;
    return true;
  }));
  run_until([] { return false; }, 5);
  REQUIRE(got->size() == 1);
  CHECK(got->front()
        == "note@" + std::to_string(machines[leader]->entries[0].index.value));
  CHECK(*others == 0);
}

TEST_CASE_FIXTURE(client_fixture, "the leader advances replicated time past "
                                  "a deadline without client writes") {
  auto leader = await_leader();
  cluster::client c{sys, handles({leader})};
  auto r = submit(c, "lease 200");
  REQUIRE(r);
  REQUIRE(r->ok);
  auto stamped = machines[leader]->entries.at(0).time;
  // Before the deadline nobody proposes anything.
  run_until([] { return false; }, 15);
  for (auto& m : machines)
    CHECK(m->clock_advances() == 0);
  // After it, the leader proposes one empty command, stamped past the
  // deadline, and every replica applies it.
  REQUIRE(run_until([&] {
    for (auto& m : machines)
      if (m->clock_advances() == 0)
        return false;
    return true;
  }));
  for (auto& m : machines) {
    CHECK(m->clock_advances() == 1);
    CHECK(m->entries.back().command.empty());
    CHECK(m->entries.back().time >= stamped + 200);
    CHECK_FALSE(m->deadline.has_value());
  }
  run_until([] { return false; }, 30);
  for (auto& m : machines)
    CHECK(m->clock_advances() == 1); // No deadline left: no more advances.
}

TEST_CASE_FIXTURE(client_fixture, "an attempt at a server that never answers "
                                  "is given up after the attempt timeout and "
                                  "the call goes on at the next server") {
  auto leader = await_leader();
  auto silent = sys.spawn(silent_server, 0);
  auto c = client_before_leader(silent, leader, 200ms);
  auto t0 = sched.clock().now();
  auto r = submit(*c, "x");
  auto waited = sched.clock().now() - t0;
  REQUIRE(r);
  CHECK_MESSAGE(r->ok, r->error);
  CHECK(r->attempts == 2);
  // Not before the attempt timeout, and not much after it.
  CHECK(waited >= 200ms);
  CHECK(waited <= 400ms);
  SUBCASE("with no other server the call fails at its own deadline") {
    cluster::client_options only;
    only.attempt_timeout = 200ms;
    only.timeout = 1000ms;
    cluster::client lone{sys, {caf::actor_cast<server_actor>(silent)}, only};
    auto t1 = sched.clock().now();
    auto r2 = submit(lone, "y");
    auto waited2 = sched.clock().now() - t1;
    REQUIRE(r2);
    CHECK_FALSE(r2->ok);
    CHECK(r2->error == "timeout");
    CHECK(r2->attempts >= 4);
    CHECK(waited2 >= 1000ms);
    CHECK(waited2 <= 1400ms);
  }
  self->send_exit(silent, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(client_fixture, "an attempt at a server that dies is "
                                  "retried at once, not after the attempt "
                                  "timeout") {
  auto leader = await_leader();
  auto swallower = sys.spawn(swallowing_server, 0);
  const auto attempt_timeout = 1000ms;
  auto c = client_before_leader(swallower, leader, attempt_timeout);
  auto out = std::make_shared<std::optional<cluster::client_result>>();
  c->submit_async(g, "x",
                  [out](cluster::client_result r) { *out = std::move(r); });
  sched.run();
  tick(2);
  REQUIRE_FALSE(out->has_value()); // Taken by the swallower, unanswered.
  auto t0 = sched.clock().now();
  self->send_exit(swallower, caf::exit_reason::kill);
  REQUIRE(run_until([&] { return out->has_value(); }));
  auto waited = sched.clock().now() - t0;
  CHECK_MESSAGE((*out)->ok, (*out)->error);
  CHECK((*out)->attempts == 2);
  // The death is the signal: the retry does not wait for the bound.
  CHECK(waited < attempt_timeout / 2);
}

TEST_CASE_FIXTURE(client_fixture, "an idle client keeps its connection to a "
                                  "server alive: a request at least every "
                                  "200 ms, which the server's connection "
                                  "timeout (at least 500 ms) never reaches") {
  auto asked = std::make_shared<std::size_t>(0);
  auto srv = sys.spawn(counting_server, asked);
  auto mm = sys.spawn(fake_connector, caf::actor_cast<caf::actor>(srv));
  cluster::client_options opts;
  opts.endpoints = {"server.test:7001"};
  opts.connector = caf::actor_cast<caf::io::middleman_actor>(mm);
  cluster::client c{sys, opts};
  auto res = submit(c, "x");
  REQUIRE(res);
  CHECK_MESSAGE(res->ok, res->error);
  // Idle from here on: 2 s of simulated time, no calls.
  auto before = *asked;
  for (int i = 0; i < 20; ++i) {
    sched.advance_time(100ms);
    sched.run();
  }
  CHECK(*asked - before >= 9);
  self->send_exit(srv, caf::exit_reason::user_shutdown);
  self->send_exit(mm, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(client_fixture, "a subscription that fails after its "
                                  "connection was replaced leaves the new "
                                  "connection alone") {
  auto held = std::make_shared<
    std::vector<caf::typed_response_promise<caf::ok_atom>>>();
  auto first = sys.spawn(unanswering_subscriber, held);
  auto subscribed = std::make_shared<std::size_t>(0);
  auto then = sys.spawn(answering_subscriber, subscribed);
  auto connects = std::make_shared<std::size_t>(0);
  auto mm = sys.spawn(two_server_connector, first, then, connects);
  cluster::client_options opts;
  opts.endpoints = {"server.test:7001"};
  opts.connector = caf::actor_cast<caf::io::middleman_actor>(mm);
  opts.attempt_timeout = 1000ms;
  cluster::client c{sys, opts};
  c.subscribe(g, "owner-1", [](const std::string&) {});
  sched.run();
  REQUIRE(held->size() == 1); // Unanswered at the first server.
  // The first server dies; the client connects again (to `then`) and
  // subscribes there.
  self->send_exit(first, caf::exit_reason::kill);
  for (int i = 0; i < 5; ++i) {
    sched.advance_time(50ms);
    sched.run();
  }
  REQUIRE(*connects == 2);
  REQUIRE(*subscribed == 1);
  // The first subscription times out now: it says nothing about the
  // connection to `then`, which must stay up.
  for (int i = 0; i < 20; ++i) {
    sched.advance_time(100ms);
    sched.run();
  }
  CHECK(*connects == 2);
  CHECK(*subscribed == 1);
  self->send_exit(then, caf::exit_reason::user_shutdown);
  self->send_exit(mm, caf::exit_reason::user_shutdown);
}
