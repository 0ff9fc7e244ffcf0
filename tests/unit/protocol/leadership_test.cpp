// Leader-only services: ReadIndex (thesis §6.4) and leadership transfer
// (thesis §3.10).
#include "harness.hpp"

using namespace ees;
using namespace ees::raft;
using namespace ees::raft::test;

// -- thesis §6.4 ReadIndex
// ------------------------------------------------------------

TEST_CASE("thesis §6.4 ReadIndex releases a read only after a quorum "
          "acknowledged a heartbeat round") {
  group g{{1, 2, 3, 4, 5}};
  g.elect(1);
  auto& leader = g.core(1);
  auto commit = leader.commit_index();
  REQUIRE(commit == 1_i);
  REQUIRE(leader.read_index(42) == raft_errc::ok);
  auto out = g.process(1);
  if (filter(out, message_type::heartbeat_request).empty()) {
    leader.tick(); // the round may wait for the next heartbeat
    out = g.process(1);
  }
  CHECK(g.at(1).reads.empty());
  auto hbs = filter(out, message_type::heartbeat_request);
  REQUIRE(hbs.size() == 4);
  auto round = hbs.front().context;
  CHECK(round != 0);
  for (const auto& m : hbs)
    CHECK(m.context == round);
  auto ack_from = [&](std::uint64_t peer) {
    REQUIRE(
      g.deliver(filter(hbs, message_type::heartbeat_request, peer).at(0)));
    auto replies = filter(g.process(peer), message_type::heartbeat_response, 1);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].context == round);
    g.deliver(replies[0]);
    g.process(1);
  };
  ack_from(2);
  CHECK(g.at(1).reads.empty()); // leader + node 2 are 2 of 5
  ack_from(3);
  REQUIRE(g.at(1).reads.size() == 1);
  CHECK(g.at(1).reads[0] == read_state{commit, 42});
  ack_from(4); // a late ack releases nothing twice
  CHECK(g.at(1).reads.size() == 1);
}

TEST_CASE("thesis §6.4 ReadIndex ignores acknowledgements of an older round") {
  group g{{1, 2, 3}};
  g.elect(1);
  auto& leader = g.core(1);
  leader.tick(); // an ordinary heartbeat round without a read
  auto plain = filter(g.process(1), message_type::heartbeat_request, 2);
  REQUIRE(plain.size() == 1);
  REQUIRE(leader.read_index(7) == raft_errc::ok);
  auto out = g.process(1);
  if (filter(out, message_type::heartbeat_request).empty()) {
    leader.tick(); // the round may wait for the next heartbeat
    out = g.process(1);
  }
  auto hb = filter(out, message_type::heartbeat_request, 2);
  REQUIRE(hb.size() == 1);
  REQUIRE(hb[0].context != plain[0].context);
  // Node 2 answers the old heartbeat: that proves nothing about the read.
  g.deliver(plain[0]);
  for (const auto& m : g.process(2))
    g.deliver(m);
  g.process(1);
  CHECK(g.at(1).reads.empty());
  g.deliver(hb[0]);
  for (const auto& m : g.process(2))
    g.deliver(m);
  g.process(1);
  REQUIRE(g.at(1).reads.size() == 1);
  CHECK(g.at(1).reads[0].context == 7);
}

TEST_CASE("thesis §6.4 ReadIndex waits until the leader committed an entry of "
          "its term") {
  group g{{1, 2, 3}};
  g.drop_if = [](const message& m) {
    return m.type == message_type::append_request;
  };
  g.elect(1);
  auto& leader = g.core(1);
  REQUIRE(leader.commit_index() == 0_i); // the noop is stuck
  REQUIRE(leader.read_index(7) == raft_errc::ok);
  for (int i = 0; i < 5; ++i) {
    leader.tick(); // heartbeats flow and are acknowledged
    g.stabilize();
  }
  CHECK(g.at(1).reads.empty());
  g.heal();
  g.run_until([&] { return !g.at(1).reads.empty(); }, 20);
  REQUIRE(g.at(1).reads.size() == 1);
  CHECK(g.at(1).reads[0].context == 7);
  CHECK(g.at(1).reads[0].index >= 1_i); // at least the noop
  CHECK(leader.commit_index() >= 1_i);
}

TEST_CASE("thesis §6.4 only the leader serves ReadIndex") {
  group g{{1, 2, 3}};
  g.elect(1);
  CHECK(g.core(2).read_index(1) == raft_errc::not_leader);
  CHECK(g.at(2).reads.empty());
}

// -- thesis §3.10 leadership transfer
// -------------------------------------------------

TEST_CASE("thesis §3.10 leader transfer hands leadership to an up-to-date "
          "target with timeout_now") {
  group g{{1, 2, 3}};
  g.elect(1);
  auto t = g.core(1).current_term();
  g.propose(1, "x");
  g.stabilize();
  REQUIRE(g.core(1).transfer_leadership(2_n) == raft_errc::ok);
  g.stabilize();
  auto kicks = filter(g.delivered(), message_type::timeout_now, 2);
  REQUIRE(kicks.size() == 1);
  CHECK(kicks[0].from == 1_n);
  bool forced = false;
  for (const auto& m : g.delivered())
    if (m.from == 2_n && m.type == message_type::vote_request)
      forced |= m.context == forced_campaign;
  CHECK(forced); // voters must not refuse it because of the lease
  CHECK(g.core(2).current_role() == role::leader);
  CHECK(g.core(2).current_term() == t + 1);
  CHECK(g.core(1).current_role() == role::follower);
  CHECK(g.core(1).leader() == 2_n);
  CHECK(g.core(1).transfer_target() == no_node);
  g.check_applied_agree();
}

TEST_CASE("thesis §3.10 leader transfer first brings a lagging target up to "
          "date") {
  group g{{1, 2, 3}};
  g.elect(1);
  g.isolate(2);
  auto idx = g.propose(1, "x");
  g.stabilize();
  REQUIRE(g.core(2).log().last_index() < idx);
  REQUIRE(g.core(1).transfer_leadership(2_n) == raft_errc::ok);
  CHECK(filter(g.process(1), message_type::timeout_now).empty());
  g.heal();
  g.run_until([&] { return g.core(2).current_role() == role::leader; }, 8);
  CHECK(g.core(2).log().at(idx).data == "x");
}

TEST_CASE("thesis §3.10 proposals are dropped while leadership is being "
          "transferred") {
  group g{{1, 2, 3}};
  g.elect(1);
  auto& leader = g.core(1);
  g.isolate(2);
  g.propose(1, "x"); // node 2 now lags and cannot catch up
  g.stabilize();
  REQUIRE(leader.transfer_leadership(2_n) == raft_errc::ok);
  CHECK(leader.transfer_target() == 2_n);
  auto last = leader.log().last_index();
  CHECK(leader.propose("y").error == raft_errc::proposal_dropped);
  CHECK(leader.log().last_index() == last);
  // The transfer gives up after an election timeout and leadership stays.
  int ticks = 0;
  while (leader.transfer_target() != no_node && ticks < 100) {
    leader.tick();
    g.stabilize();
    ++ticks;
  }
  CHECK(leader.transfer_target() == no_node);
  CHECK(ticks <= 20);
  CHECK(leader.current_role() == role::leader);
  CHECK(leader.propose("z").error == raft_errc::ok);
}

TEST_CASE("thesis §3.10 leader transfer to a non-member is refused") {
  group g{{1, 2, 3}};
  g.elect(1);
  CHECK(g.core(1).transfer_leadership(9_n) != raft_errc::ok);
  CHECK(g.core(1).transfer_target() == no_node);
  CHECK(g.core(2).transfer_leadership(3_n) == raft_errc::not_leader);
}
