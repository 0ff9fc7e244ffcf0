// Terms, elections and votes: Raft paper §5.1, §5.2, §5.4.1 and the thesis
// extensions that guard them (§4.2.3 leases, §6.2 check-quorum, §9.6 pre-vote).
#include "harness.hpp"

using namespace ees;
using namespace ees::raft;
using namespace ees::raft::test;

namespace {

raft_config without_pre_vote(std::uint64_t id) {
  auto cfg = config_of(id);
  cfg.pre_vote = false;
  return cfg;
}

/// Ticks `n` until it leaves the follower role; returns the ticks taken.
int ticks_until_campaign(node& n, int limit = 1000) {
  int ticks = 0;
  while (n.current_role() == role::follower && ticks < limit) {
    n.tick();
    ++ticks;
  }
  return ticks;
}

} // namespace

// -- §5.1 terms
// ------------------------------------------------------------------

TEST_CASE("§5.1 a node adopts a higher term and forgets its old vote") {
  node n{config_of(1), restored(hard_state{1_t, 3_n, 0_i}, {})};
  REQUIRE(n.current_term() == 1_t);
  REQUIRE(n.voted_for() == 3_n);
  n.step(heartbeat(2, 1, 2, 0));
  CHECK(n.current_term() == 2_t);
  CHECK(n.voted_for() == no_node);
  CHECK(n.current_role() == role::follower);
  CHECK(n.leader() == 2_n);
  auto rd = n.take_ready();
  REQUIRE(rd.state);
  CHECK(rd.state->current_term == 2_t);
  CHECK(rd.state->voted_for == no_node);
}

TEST_CASE("§5.1 a stale leader steps down on a higher term") {
  node n{config_of(1), bootstrap(members({1, 2, 3}))};
  win_election(n);
  auto t = n.current_term();
  SUBCASE("append request from a newer leader") {
    n.step(append_request(2, 1, t.value + 1, 0, 0, {}, 0));
    CHECK(n.leader() == 2_n);
  }
  SUBCASE("a response carrying a newer term") {
    n.step(make_msg(message_type::heartbeat_response, 2, 1, t.value + 1));
  }
  CHECK(n.current_role() == role::follower);
  CHECK(n.current_term() == t + 1);
  CHECK(n.propose("x").error == raft_errc::not_leader);
}

TEST_CASE(
  "§5.1 a message with a stale term is rejected without changing state") {
  node n{config_of(1), restored(hard_state{3_t, no_node, 0_i}, {entry(1, 1)})};
  drain_all(n);
  SUBCASE("append request") {
    CHECK(n.step(append_request(2, 1, 2, 1, 1, {entry(2, 2)}, 2))
          == raft_errc::stale_message);
    CHECK(n.log().last_index() == 1_i);
    CHECK(n.commit_index() == 0_i);
  }
  SUBCASE("vote request") {
    CHECK(n.step(vote_request(2, 1, 2, 5, 2)) == raft_errc::stale_message);
    CHECK(n.voted_for() == no_node);
  }
  SUBCASE("heartbeat") {
    CHECK(n.step(heartbeat(2, 1, 2, 0)) == raft_errc::stale_message);
  }
  CHECK(n.current_term() == 3_t);
  CHECK(n.leader() == no_node);
  CHECK(n.current_role() == role::follower);
  // Any answer must tell the sender about the newer term, and grant nothing.
  for (const auto& m : drain_all(n)) {
    CAPTURE(describe(m));
    CHECK(m.term == 3_t);
    if (m.type == message_type::vote_response
        || m.type == message_type::pre_vote_response)
      CHECK(m.reject);
  }
}

// -- §5.2 leader election
// ---------------------------------------------------------

TEST_CASE("§5.2 a follower starts an election after its election timeout") {
  node n{without_pre_vote(1), bootstrap(members({1, 2, 3}))};
  auto ticks = ticks_until_campaign(n);
  CHECK(ticks >= 10);
  CHECK(ticks < 20);
  CHECK(n.current_role() == role::candidate);
  CHECK(n.current_term() == 1_t);
  CHECK(n.voted_for() == 1_n);
  auto rd = n.take_ready();
  REQUIRE(rd.state);
  CHECK(rd.state->current_term == 1_t);
  CHECK(rd.state->voted_for == 1_n);
  auto requests = filter(rd.messages, message_type::vote_request);
  REQUIRE(requests.size() == 2);
  std::set<node_id> asked;
  for (const auto& m : requests) {
    asked.insert(m.to);
    CHECK(m.from == 1_n);
    CHECK(m.term == 1_t);
    CHECK(m.index == 0_i);
    CHECK(m.log_term == 0_t);
    CHECK(m.context != forced_campaign);
  }
  CHECK(asked == ids({2, 3}));
}

TEST_CASE("§5.2 hearing from the leader resets the election timer") {
  node n{config_of(1), bootstrap(members({1, 2, 3}))};
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 9; ++i)
      n.tick();
    n.step(heartbeat(2, 1, 1, 0));
    drain_all(n);
    CHECK(n.current_role() == role::follower);
  }
  CHECK(n.leader() == 2_n);
  CHECK(n.current_term() == 1_t);
  // Once the leader falls silent the follower does campaign (pre-vote first).
  auto ticks = ticks_until_campaign(n);
  CHECK(ticks >= 10);
  CHECK(ticks < 20);
  CHECK(n.current_role() == role::pre_candidate);
}

TEST_CASE("§5.2 randomized election timeouts lie in [election_ticks, "
          "2*election_ticks) and vary by seed") {
  std::set<int> seen;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    CAPTURE(seed);
    auto cfg = config_of(1);
    cfg.seed = seed;
    auto first_timeout = [&] {
      node n{cfg, bootstrap(members({1, 2, 3}))};
      return ticks_until_campaign(n);
    };
    auto timeout = first_timeout();
    CHECK(timeout >= 10);
    CHECK(timeout < 20);
    CHECK(first_timeout() == timeout); // same seed, same draw
    seen.insert(timeout);
  }
  CHECK(seen.size() >= 3);
}

TEST_CASE("§5.2 randomized election timeouts stay in bounds in later terms") {
  // A pre-candidate nobody answers keeps campaigning; every new timeout must
  // again be drawn from [election_ticks, 2*election_ticks).
  node n{config_of(1), bootstrap(members({1, 2, 3}))};
  auto first = ticks_until_campaign(n);
  REQUIRE(n.current_role() == role::pre_candidate);
  CHECK(first >= 10);
  drain_all(n);
  for (int campaign = 0; campaign < 10; ++campaign) {
    int ticks = 0;
    bool asked = false;
    while (!asked && ticks < 100) {
      n.tick();
      ++ticks;
      for (const auto& m : drain_all(n))
        asked |= m.type == message_type::pre_vote_request;
    }
    CAPTURE(campaign);
    CHECK(ticks >= 10);
    CHECK(ticks < 20);
  }
  CHECK(n.current_term() == 0_t); // pre-votes never bump the term
}

TEST_CASE(
  "§5.2 a node grants at most one vote per term, also across restarts") {
  replica r{config_of(1), bootstrap(members({1, 2, 3}))};
  r.core->step(vote_request(2, 1, 1, 0, 0));
  auto rd = drain(*r.core, r.disk);
  auto votes
    = filter(rd.messages_after_persist, message_type::vote_response, 2);
  REQUIRE(votes.size() == 1);
  CHECK_FALSE(votes[0].reject);
  CHECK(votes[0].term == 1_t);
  CHECK(r.core->voted_for() == 2_n);
  REQUIRE(rd.state);
  CHECK(rd.state->voted_for == 2_n);
  SUBCASE("without restart") {
    // nop
  }
  SUBCASE("after a restart from durable state") {
    r.restart();
    CHECK(r.core->current_term() == 1_t);
    CHECK(r.core->voted_for() == 2_n);
  }
  auto& n = *r.core;
  n.step(vote_request(3, 1, 1, 0, 0));
  auto refused
    = filter(all_messages(drain(n, r.disk)), message_type::vote_response, 3);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].reject);
  CHECK(n.voted_for() == 2_n);
  // The candidate it voted for may ask again (a lost reply) and gets the vote.
  n.step(vote_request(2, 1, 1, 0, 0));
  auto again
    = filter(all_messages(drain(n, r.disk)), message_type::vote_response, 2);
  REQUIRE(again.size() == 1);
  CHECK_FALSE(again[0].reject);
}

TEST_CASE("§5.2 a candidate wins with votes from a majority") {
  node n{without_pre_vote(1), bootstrap(members({1, 2, 3, 4, 5}))};
  REQUIRE(n.campaign() == raft_errc::ok);
  drain(n); // the self-vote is now durable
  REQUIRE(n.current_role() == role::candidate);
  n.step(vote_response(2, 1, 1, true));
  CHECK(n.current_role() == role::candidate); // 2 of 5
  n.step(vote_response(2, 1, 1, true)); // a duplicate counts once
  CHECK(n.current_role() == role::candidate);
  n.step(vote_response(3, 1, 1, true));
  CHECK(n.current_role() == role::leader);
  CHECK(n.leader() == 1_n);
  auto rd = drain(n);
  REQUIRE(rd.soft);
  CHECK(rd.soft->current_role == role::leader);
  CHECK(rd.soft->leader == 1_n);
  // §5.4.2 / thesis §6.4: a new leader appends a noop of its term.
  REQUIRE(rd.entries.size() == 1);
  CHECK(rd.entries[0].type == entry_type::noop);
  CHECK(rd.entries[0].index == 1_i);
  CHECK(rd.entries[0].term == 1_t);
  std::set<node_id> told;
  for (const auto& m : filter(rd.messages, message_type::append_request))
    told.insert(m.to);
  CHECK(told == ids({2, 3, 4, 5}));
}

TEST_CASE("§5.2 a candidate rejected by a majority does not become leader") {
  node n{without_pre_vote(1), bootstrap(members({1, 2, 3}))};
  REQUIRE(n.campaign() == raft_errc::ok);
  drain(n);
  n.step(vote_response(2, 1, 1, false));
  CHECK(n.current_role() == role::candidate);
  n.step(vote_response(3, 1, 1, false));
  CHECK(n.current_role() != role::leader);
  CHECK(n.current_term() == 1_t);
  CHECK(n.propose("x").error == raft_errc::not_leader);
}

TEST_CASE(
  "§5.2 a candidate steps down on an append from a leader of its term") {
  node n{without_pre_vote(1), bootstrap(members({1, 2, 3}))};
  REQUIRE(n.campaign() == raft_errc::ok);
  drain(n);
  REQUIRE(n.current_term() == 1_t);
  SUBCASE("append request") {
    n.step(append_request(2, 1, 1, 0, 0, {entry(1, 1)}, 0));
    CHECK(n.log().last_index() == 1_i);
  }
  SUBCASE("heartbeat") {
    n.step(heartbeat(2, 1, 1, 0));
  }
  CHECK(n.current_role() == role::follower);
  CHECK(n.leader() == 2_n);
  CHECK(n.current_term() == 1_t);
  CHECK(n.voted_for() == 1_n); // the vote of term 1 stays cast
}

TEST_CASE("§5.2 a leader sends heartbeats to every peer each heartbeat "
          "interval") {
  node n{config_of(1), bootstrap(members({1, 2, 3}))};
  win_election(n);
  for (int round = 0; round < 3; ++round) {
    n.tick(); // heartbeat_ticks == 1
    auto hbs = filter(drain(n).messages, message_type::heartbeat_request);
    std::set<node_id> told;
    for (const auto& m : hbs) {
      told.insert(m.to);
      CHECK(m.term == n.current_term());
    }
    CHECK(told == ids({2, 3}));
  }
}

// -- §5.4.1 election restriction
// -------------------------------------------------

TEST_CASE("§5.4.1 a vote is refused to a candidate whose log is less up to "
          "date") {
  node n{config_of(1),
         restored(hard_state{2_t, no_node, 0_i}, entries_with_terms({1, 2}))};
  drain_all(n);
  struct vote_case {
    std::uint64_t from, term, last_index, last_term;
    bool granted;
    const char* why;
  };
  const vote_case cases[] = {
    {2, 3, 5, 1, false, "lower last term, longer log"},
    {3, 4, 1, 2, false, "same last term, shorter log"},
    {2, 5, 2, 2, true, "identical logs"},
    {3, 6, 3, 2, true, "same last term, longer log"},
    {2, 7, 1, 3, true, "higher last term, shorter log"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.why);
    n.step(vote_request(c.from, 1, c.term, c.last_index, c.last_term));
    auto replies
      = filter(all_messages(drain(n)), message_type::vote_response, c.from);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].reject == !c.granted);
    CHECK(replies[0].term == term_t{c.term});
    CHECK(n.current_term() == term_t{c.term});
    CHECK(n.voted_for() == (c.granted ? node_id{c.from} : no_node));
  }
}

TEST_CASE("§5.4.1 a pre-vote is refused to a candidate whose log is less up "
          "to date") {
  node n{config_of(1),
         restored(hard_state{2_t, no_node, 0_i}, entries_with_terms({1, 2}))};
  drain_all(n);
  n.step(vote_request(2, 1, 3, 5, 1, true));
  auto replies
    = filter(all_messages(drain(n)), message_type::pre_vote_response, 2);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].reject);
  CHECK(n.current_term() == 2_t);
  n.step(vote_request(2, 1, 3, 2, 2, true));
  replies = filter(all_messages(drain(n)), message_type::pre_vote_response, 2);
  REQUIRE(replies.size() == 1);
  CHECK_FALSE(replies[0].reject);
  CHECK(n.current_term() == 2_t);
  CHECK(n.voted_for() == no_node);
}

// -- thesis §9.6 pre-vote
// ---------------------------------------------------------

TEST_CASE("thesis §9.6 pre-vote does not bump terms") {
  node n{config_of(1),
         restored(hard_state{2_t, no_node, 0_i}, entries_with_terms({1, 2}))};
  drain_all(n);
  REQUIRE(n.campaign() == raft_errc::ok);
  CHECK(n.current_role() == role::pre_candidate);
  CHECK(n.current_term() == 2_t);
  CHECK(n.voted_for() == no_node);
  auto rd = drain(n);
  CHECK((!rd.state || rd.state->current_term == 2_t));
  CHECK(filter(rd.messages, message_type::vote_request).empty());
  auto requests = filter(rd.messages, message_type::pre_vote_request);
  REQUIRE(requests.size() == 2);
  for (const auto& m : requests) {
    CHECK(m.term == 3_t); // the term it would campaign in
    CHECK(m.index == 2_i);
    CHECK(m.log_term == 2_t);
  }
  // A voter answering the pre-vote keeps its own term and vote.
  node voter{config_of(2), restored(hard_state{2_t, no_node, 0_i},
                                    entries_with_terms({1, 2}))};
  drain_all(voter);
  voter.step(filter(requests, message_type::pre_vote_request, 2).at(0));
  CHECK(voter.current_term() == 2_t);
  CHECK(voter.voted_for() == no_node);
  auto vrd = drain(voter);
  CHECK((!vrd.state || vrd.state->current_term == 2_t));
  auto answers = filter(all_messages(vrd), message_type::pre_vote_response, 1);
  REQUIRE(answers.size() == 1);
  CHECK_FALSE(answers[0].reject);
  // A granted pre-vote from a majority starts the real election in term 3.
  n.step(answers[0]);
  CHECK(n.current_role() == role::candidate);
  CHECK(n.current_term() == 3_t);
  auto crd = drain(n);
  CHECK(filter(crd.messages, message_type::vote_request).size() == 2);
}

TEST_CASE("thesis §9.6 a partitioned node rejoining does not disrupt the "
          "leader") {
  group g{{1, 2, 3}};
  g.elect(1);
  auto t = g.core(1).current_term();
  g.isolate(3);
  for (int i = 0; i < 100; ++i)
    g.tick_all();
  CHECK(g.leaders() == std::vector<node_id>{1_n});
  CHECK(g.core(3).current_term() == t);
  CHECK(g.core(3).current_role() != role::candidate);
  g.heal();
  g.run_until([&] { return g.core(3).leader() == 1_n; }, 50);
  CHECK(g.core(1).current_role() == role::leader);
  CHECK(g.core(1).current_term() == t);
  CHECK(g.core(2).current_term() == t);
  CHECK(g.core(3).current_role() == role::follower);
}

TEST_CASE("thesis §9.6 without pre-vote a rejoining node does disrupt the "
          "group (control)") {
  // Shows that the previous test can fail: the same script with pre-vote and
  // check-quorum off makes the rejoining node force a new term.
  group g{{1, 2, 3}, std::nullopt, 0, [](raft_config& cfg) {
            cfg.pre_vote = false;
            cfg.check_quorum = false;
          }};
  g.elect(1);
  auto t = g.core(1).current_term();
  g.isolate(3);
  for (int i = 0; i < 100; ++i)
    g.tick_all();
  CHECK(g.core(3).current_term() > t);
  g.heal();
  g.run_until([&] { return g.core(1).current_term() > t; }, 100);
  CHECK(g.leaders().size() <= 1);
}

// -- thesis §4.2.3 and §6.2: leases and check-quorum
// -------------------------------

TEST_CASE("thesis §4.2.3 a follower that hears from its leader ignores vote "
          "requests") {
  node n{config_of(2), bootstrap(members({1, 2, 3}))};
  n.step(heartbeat(1, 2, 1, 0));
  drain_all(n);
  REQUIRE(n.leader() == 1_n);
  SUBCASE("vote request") {
    n.step(vote_request(3, 2, 2, 0, 0));
  }
  SUBCASE("pre-vote request") {
    n.step(vote_request(3, 2, 2, 0, 0, true));
  }
  CHECK(n.current_term() == 1_t);
  CHECK(n.voted_for() == no_node);
  CHECK(n.leader() == 1_n);
  for (const auto& m : drain_all(n))
    if (m.type == message_type::vote_response
        || m.type == message_type::pre_vote_response)
      CHECK(m.reject);
}

TEST_CASE("thesis §3.10 a forced campaign overrides the leader lease") {
  node n{config_of(2), bootstrap(members({1, 2, 3}))};
  n.step(heartbeat(1, 2, 1, 0));
  drain_all(n);
  auto req = vote_request(3, 2, 2, 0, 0);
  req.context = forced_campaign;
  n.step(req);
  CHECK(n.current_term() == 2_t);
  CHECK(n.voted_for() == 3_n);
  auto votes = filter(all_messages(drain(n)), message_type::vote_response, 3);
  REQUIRE(votes.size() == 1);
  CHECK_FALSE(votes[0].reject);
}

TEST_CASE("thesis §6.2 check-quorum: a leader cut off from a majority steps "
          "down") {
  group g{{1, 2, 3}};
  g.elect(1);
  auto t = g.core(1).current_term();
  SUBCASE("a connected leader keeps leading") {
    for (int i = 0; i < 100; ++i)
      g.tick_all();
    CHECK(g.core(1).current_role() == role::leader);
    CHECK(g.core(1).current_term() == t);
  }
  SUBCASE("an isolated leader steps down") {
    g.isolate(1);
    int ticks = 0;
    while (g.core(1).current_role() == role::leader && ticks < 100) {
      g.core(1).tick();
      g.stabilize();
      ++ticks;
    }
    CHECK(g.core(1).current_role() == role::follower);
    CHECK(ticks < 40); // within a few election timeouts
    CHECK(g.core(1).current_term() == t);
    CHECK(g.core(1).propose("x").error == raft_errc::not_leader);
    // The majority side elects a new leader of a later term.
    g.run_until(
      [&] {
        return g.core(2).current_role() == role::leader
               || g.core(3).current_role() == role::leader;
      },
      100);
    CHECK(g.core(2).current_term() > t);
  }
}
