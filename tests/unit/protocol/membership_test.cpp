// Membership changes: Raft paper §6 and thesis §4 (one server at a time,
// learners, leader removal).
#include "harness.hpp"

using namespace ees;
using namespace ees::raft;
using namespace ees::raft::test;

namespace {

conf_change add_learner(std::uint64_t id) {
  return conf_change{conf_change::kind::add_learner, node_id{id}};
}
conf_change promote(std::uint64_t id) {
  return conf_change{conf_change::kind::promote_learner, node_id{id}};
}
conf_change remove(std::uint64_t id) {
  return conf_change{conf_change::kind::remove_node, node_id{id}};
}

/// A leader of {1,2,3} whose noop is committed (node 2 acknowledged it).
void lead_with_committed_noop(node& n) {
  win_election(n);
  n.step(append_ack(2, 1, n.current_term().value, 1));
  drain_all(n);
  REQUIRE(n.commit_index() == 1_i);
}

} // namespace

TEST_CASE("§6 a learner is added by a committed config entry and catches up") {
  group g{{1, 2, 3}};
  g.elect(1);
  auto& leader = g.core(1);
  auto res = leader.propose_conf_change(add_learner(4));
  REQUIRE(res.error == raft_errc::ok);
  // The change is in force only once committed.
  CHECK_FALSE(leader.config().contains(4_n));
  const auto& e = leader.log().at(res.index);
  CHECK(e.type == entry_type::config);
  auto carried = decode_membership(e.data);
  REQUIRE(carried);
  CHECK(*carried == members({1, 2, 3}, {4}));
  // Node 4 joins with an empty snapshot and learns everything from the leader.
  g.add(config_of(4), persistent_state{});
  g.run_until(
    [&] {
      return g.core(4).log().last_index() == leader.log().last_index()
             && g.core(4).config().learners.count(4_n) == 1;
    },
    50);
  for (std::uint64_t id : {1, 2, 3, 4}) {
    CAPTURE(id);
    CHECK(g.core(id).config() == members({1, 2, 3}, {4}));
  }
  auto pr = leader.progress_of(4_n);
  REQUIRE(pr != nullptr);
  CHECK(pr->is_learner);
  CHECK(g.core(4).current_role() == role::follower);
  g.check_applied_agree();
}

TEST_CASE("§6 a learner's copy of an entry does not count toward commitment") {
  group g{{1, 2, 3, 4}, members({1, 2, 3}, {4})};
  g.elect(1);
  auto& leader = g.core(1);
  g.cut(1, 2);
  g.cut(1, 3);
  auto idx = g.propose(1, "x");
  g.stabilize();
  for (int i = 0; i < 3; ++i) {
    leader.tick();
    g.stabilize();
  }
  auto pr = leader.progress_of(4_n);
  REQUIRE(pr != nullptr);
  CHECK(pr->match >= idx); // the learner has it...
  CHECK(leader.commit_index() < idx); // ...but leader + learner is no quorum
  g.heal();
  g.run_until([&] { return leader.commit_index() >= idx; }, 20);
}

TEST_CASE("§6 a learner never starts an election") {
  node n{config_of(4), bootstrap(members({1, 2, 3}, {4}))};
  std::vector<message> sent;
  for (int i = 0; i < 100; ++i) {
    n.tick();
    auto ms = drain_all(n);
    sent.insert(sent.end(), ms.begin(), ms.end());
  }
  n.campaign(); // refused or a no-op; either way no election
  auto ms = drain_all(n);
  sent.insert(sent.end(), ms.begin(), ms.end());
  CHECK(n.current_role() == role::follower);
  CHECK(n.current_term() == 0_t);
  CHECK(filter(sent, message_type::vote_request).empty());
  CHECK(filter(sent, message_type::pre_vote_request).empty());
}

TEST_CASE("§6 a candidate does not count a learner's vote") {
  auto cfg = config_of(1);
  cfg.pre_vote = false;
  node n{cfg, bootstrap(members({1, 2, 3}, {4}))};
  REQUIRE(n.campaign() == raft_errc::ok);
  auto rd = drain(n);
  // Learners are not asked...
  CHECK(filter(rd.messages, message_type::vote_request, 4).empty());
  // ...and an unsolicited grant from one does not help.
  n.step(vote_response(4, 1, 1, true));
  CHECK(n.current_role() == role::candidate);
  n.step(vote_response(2, 1, 1, true));
  CHECK(n.current_role() == role::leader);
}

TEST_CASE("§6 promoting a learner is refused until it has caught up") {
  group g{{1, 2, 3, 4}, members({1, 2, 3}, {4})};
  g.isolate(4);
  g.elect(1);
  auto& leader = g.core(1);
  g.propose(1, "a");
  g.propose(1, "b");
  g.stabilize();
  REQUIRE(leader.commit_index() == 3_i);
  CHECK(leader.propose_conf_change(promote(4)).error
        == raft_errc::learner_not_caught_up);
  CHECK(leader.config().learners.count(4_n) == 1);
  g.heal();
  g.run_until(
    [&] {
      auto pr = leader.progress_of(4_n);
      return pr != nullptr && pr->match >= leader.commit_index();
    },
    50);
  REQUIRE(leader.propose_conf_change(promote(4)).error == raft_errc::ok);
  g.run_until([&] { return leader.config().is_voter(4_n); }, 20);
  CHECK(leader.config() == members({1, 2, 3, 4}));
  auto pr = leader.progress_of(4_n);
  REQUIRE(pr != nullptr);
  CHECK_FALSE(pr->is_learner);
}

TEST_CASE("§6 a membership change is refused while another one is pending") {
  group g{{1, 2, 3}};
  g.elect(1);
  auto& leader = g.core(1);
  REQUIRE(leader.propose_conf_change(add_learner(4)).error == raft_errc::ok);
  CHECK(leader.propose_conf_change(add_learner(5)).error
        == raft_errc::conf_change_pending);
  CHECK(leader.propose_conf_change(remove(3)).error
        == raft_errc::conf_change_pending);
  g.stabilize();
  REQUIRE(leader.config().learners.count(4_n) == 1);
  CHECK(leader.propose_conf_change(add_learner(5)).error == raft_errc::ok);
  g.stabilize();
  CHECK(leader.config() == members({1, 2, 3}, {4, 5}));
}

TEST_CASE("thesis §4.1 a new leader refuses membership changes until it "
          "commits an entry of its term") {
  node n{config_of(1), bootstrap(members({1, 2, 3}))};
  win_election(n); // the noop is not acknowledged yet
  REQUIRE(n.commit_index() == 0_i);
  CHECK(n.propose_conf_change(add_learner(4)).error != raft_errc::ok);
  n.step(append_ack(2, 1, n.current_term().value, 1));
  drain_all(n);
  REQUIRE(n.commit_index() == 1_i);
  CHECK(n.propose_conf_change(add_learner(4)).error == raft_errc::ok);
}

TEST_CASE("§6 a membership change that does not fit the configuration is "
          "refused") {
  node n{config_of(1), bootstrap(members({1, 2, 3}))};
  lead_with_committed_noop(n);
  auto last = n.log().last_index();
  CHECK(n.propose_conf_change(promote(2)).error
        == raft_errc::invalid_conf_change); // already a voter
  CHECK(n.propose_conf_change(promote(9)).error
        == raft_errc::invalid_conf_change); // not a member
  CHECK(n.propose_conf_change(add_learner(2)).error
        == raft_errc::invalid_conf_change); // already a voter
  CHECK(n.propose_conf_change(remove(9)).error
        == raft_errc::invalid_conf_change); // not a member
  CHECK(n.log().last_index() == last); // nothing was appended
}

TEST_CASE("§6 only the leader accepts membership changes") {
  node n{config_of(2), bootstrap(members({1, 2, 3}))};
  n.step(heartbeat(1, 2, 1, 0));
  drain_all(n);
  CHECK(n.propose_conf_change(add_learner(4)).error == raft_errc::not_leader);
}

TEST_CASE("thesis §4.2.2 a leader removed from the configuration steps down") {
  group g{{1, 2, 3}};
  g.elect(1);
  REQUIRE(g.core(1).propose_conf_change(remove(1)).error == raft_errc::ok);
  g.stabilize();
  CHECK(g.core(1).config() == members({2, 3}));
  CHECK(g.core(1).current_role() != role::leader);
  // The remaining voters elect a leader among themselves; 1 never leads again.
  bool new_leader = false;
  for (int i = 0; i < 200 && !new_leader; ++i) {
    g.tick_all();
    CHECK(g.core(1).current_role() != role::leader);
    CHECK(g.core(1).current_role() != role::candidate);
    new_leader = g.core(2).current_role() == role::leader
                 || g.core(3).current_role() == role::leader;
  }
  REQUIRE(new_leader);
  auto l = g.leaders();
  REQUIRE(l.size() == 1);
  g.stabilize();
  CHECK(g.core(l[0].value).config() == members({2, 3}));
  // The new configuration commits without node 1.
  auto idx = g.propose(l[0].value, "after");
  g.isolate(1);
  g.stabilize();
  CHECK(g.core(l[0].value).commit_index() >= idx);
}

TEST_CASE("§6 apply_conf_change follows the one-server-at-a-time rules") {
  auto m = members({1, 2, 3});
  CHECK(apply_conf_change(m, add_learner(4)));
  CHECK(m == members({1, 2, 3}, {4}));
  CHECK(apply_conf_change(m, promote(4)));
  CHECK(m == members({1, 2, 3, 4}));
  CHECK(apply_conf_change(m, remove(2)));
  CHECK(m == members({1, 3, 4}));
  auto before = m;
  CHECK_FALSE(apply_conf_change(m, promote(3))); // not a learner
  CHECK_FALSE(apply_conf_change(m, promote(9))); // not a member
  CHECK_FALSE(apply_conf_change(m, add_learner(1))); // already a voter
  CHECK_FALSE(apply_conf_change(m, remove(9))); // not a member
  CHECK(m == before);
  CHECK(apply_conf_change(m, add_learner(5)));
  CHECK(apply_conf_change(m, remove(5))); // learners can be removed too
  CHECK(m == before);
}

TEST_CASE("thesis §4.2.3 a removed server does not disrupt the remaining "
          "group") {
  group g{{1, 2, 3}};
  g.elect(1);
  auto t = g.core(1).current_term();
  REQUIRE(g.core(1).propose_conf_change(remove(3)).error == raft_errc::ok);
  g.stabilize();
  REQUIRE(g.core(1).config() == members({1, 2}));
  // Node 3 no longer hears from the leader; it keeps ticking and (pre-)
  // campaigning, yet the leader of {1, 2} stays in place in the same term.
  for (int i = 0; i < 200; ++i)
    g.tick_all();
  CHECK(g.core(1).current_role() == role::leader);
  CHECK(g.core(1).current_term() == t);
  CHECK(g.core(2).leader() == 1_n);
  auto idx = g.propose(1, "still here");
  g.stabilize();
  CHECK(g.core(2).commit_index() >= idx);
}

// Regression (liveness): the leader used to step down the moment its removal
// committed, without telling anyone about the commit. The only remaining
// voter still ran the old configuration {1, 2}, needed node 1's vote, and node
// 1 refused it forever because its own log was longer (§5.4.1). Now a removed
// leader stops taking proposals and hands leadership to a caught-up voter.
TEST_CASE("thesis §4.2.2 a two-voter group that removes its leader elects "
          "the survivor") {
  group g{{1, 2}};
  g.elect(1);
  auto& leader = g.core(1);
  auto removal = leader.propose_conf_change(remove(1));
  REQUIRE(removal.error == raft_errc::ok);
  // Node 2 receives and acknowledges the removal...
  for (const auto& m : g.process(1))
    g.deliver(m);
  auto acks = filter(g.process(2), message_type::append_response, 1);
  REQUIRE(acks.size() == 1);
  // ...while the leader appends one more command that never reaches node 2.
  REQUIRE(leader.propose("late").error == raft_errc::ok);
  g.process(1);
  g.deliver(acks[0]);
  REQUIRE(leader.commit_index() >= removal.index);
  CHECK(leader.config() == members({2}));
  if (leader.current_role() == role::leader)
    CHECK(leader.propose("refused").error == raft_errc::proposal_dropped);
  // Node 2 is the whole new configuration; it must eventually lead it.
  g.run_until([&] { return g.core(2).current_role() == role::leader; }, 300);
  auto idx = g.propose(2, "after");
  g.stabilize();
  CHECK(g.core(2).commit_index() >= idx);
}
