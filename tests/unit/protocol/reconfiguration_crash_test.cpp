// Membership changes across crashes: a restarted node must come back at most
// one configuration change behind (thesis §4.1), because configurations two
// changes apart need not have overlapping quorums.
#include "harness.hpp"

using namespace ees;
using namespace ees::raft;
using namespace ees::raft::test;

namespace {

conf_change promote_node(std::uint64_t id) {
  return conf_change{conf_change::kind::promote_learner, node_id{id}};
}

} // namespace

// Regression (found in review): every voter must run a configuration at most
// one change away from the newest committed one. This core activates a config
// entry once the node knows it is committed, and a restarted node rebuilds its
// configuration from the durable commit index. That index used to be written
// lazily (in the ready after the entries), so a node that crashed after
// acknowledging two config entries came back two changes behind, and could
// win with a majority of {1,2,3} while {1,4,5} was a majority of the newest
// configuration {1,2,3,4,5}. Now the commit index the entries will have once
// durable is written atomically with them.
//
// Scenario (voters {1,2,3}, learners {4,5}; leader 1):
//   1. node 3 is partitioned; 1 promotes 4 (index 2) and then 5 (index 3);
//   2. node 3 receives indexes 2..3 with commit 3, persists and acknowledges
//      them, and crashes right after that write;
//   3. partition {1,4,5} | {2,3}; 1 commits "x" at index 4;
//   4. node 3 must not win an election with {2,3}.
TEST_CASE("thesis §4.1 a restarted node must not win with a configuration two "
          "changes old") {
  group g{{1, 2, 3, 4, 5}, members({1, 2, 3}, {4, 5})};
  g.elect(1);
  auto& l = g.core(1);
  REQUIRE(l.commit_index() == 1_i);

  g.isolate(3);
  REQUIRE(l.propose_conf_change(promote_node(4)).error == raft_errc::ok);
  g.stabilize();
  REQUIRE(l.commit_index() == 2_i);
  REQUIRE(l.propose_conf_change(promote_node(5)).error == raft_errc::ok);
  g.stabilize();
  REQUIRE(l.commit_index() == 3_i);
  REQUIRE(l.config() == members({1, 2, 3, 4, 5}));

  // Node 3 gets indexes 2..3 (as the leader's probe would send them), persists
  // and acknowledges them ...
  auto app
    = append_request(1, 3, l.current_term().value, 1, l.log().term(1_i)->value,
                     l.log().slice(2_i, 3_i), l.commit_index().value);
  g.core(3).step(app);
  g.process(3);
  REQUIRE(g.core(3).commit_index() == 3_i);
  // ... and crashes right after that write: its durable commit covers the
  // first change whenever the second is durable.
  CHECK(g.at(3).disk.state.commit_index >= 2_i);
  g.at(3).applied.clear(); // the state machine restarts from snapshot 0
  g.at(3).restart();
  CHECK(g.core(3).log().last_index() == 3_i);
  CHECK(g.core(3).config().voters.size() >= 4); // at most one change behind

  g.heal();
  for (std::uint64_t a : {1, 4, 5})
    for (std::uint64_t b : {2, 3})
      g.cut(a, b);
  auto x = g.propose(1, "x");
  g.stabilize();
  REQUIRE(l.commit_index() >= x);
  REQUIRE(g.at(1).applied.count(x) == 1);

  auto x_term = *l.log().term(x);
  bool minority_led = false;
  for (int i = 0; i < 100; ++i) {
    g.tick_all();
    for (std::uint64_t id : {2, 3})
      minority_led = minority_led || g.core(id).current_role() == role::leader;
  }
  CHECK_FALSE(minority_led); // {2,3} is no majority of {1,2,3,4,5}
  for (std::uint64_t id : {2, 3}) {
    CAPTURE(id);
    auto& c = g.core(id);
    if (c.commit_index() >= x)
      CHECK(c.log().term(x) == x_term); // fails: a term-2 noop is committed
  }
  g.check_applied_agree();
}
