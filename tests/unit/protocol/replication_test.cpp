// Log replication and commitment: Raft paper §5.3, §5.4.2 (Figure 8), and
// the thesis §3.8 rule that acknowledgements wait for durable state.
#include "harness.hpp"

using namespace ees;
using namespace ees::raft;
using namespace ees::raft::test;

namespace {

std::vector<message> append_responses(const ready& rd, std::uint64_t to) {
  return filter(all_messages(rd), message_type::append_response, to);
}

} // namespace

// -- §5.3 log replication
// -----------------------------------------------------------

TEST_CASE("§5.3 a follower rejects an append whose previous entry does not "
          "match") {
  node n{config_of(1),
         restored(hard_state{1_t, no_node, 0_i}, entries_with_terms({1, 1}))};
  drain_all(n);
  SUBCASE("previous index beyond the log") {
    n.step(append_request(2, 1, 2, 3, 2, {entry(4, 2)}, 0));
    auto rd = drain(n);
    auto resp = append_responses(rd, 2);
    REQUIRE(resp.size() == 1);
    CHECK(resp[0].reject);
    CHECK(resp[0].index == 3_i);
    CHECK(resp[0].reject_hint <= 2_i); // never past the follower's log
    CHECK(rd.entries.empty());
  }
  SUBCASE("previous entry has another term") {
    n.step(append_request(2, 1, 2, 2, 2, {entry(3, 2)}, 0));
    auto rd = drain(n);
    auto resp = append_responses(rd, 2);
    REQUIRE(resp.size() == 1);
    CHECK(resp[0].reject);
    CHECK(resp[0].index == 2_i);
    CHECK(resp[0].reject_hint <= 2_i);
    CHECK(rd.entries.empty());
  }
  CHECK(n.log().last_index() == 2_i);
  CHECK(n.log().term(2_i) == 1_t);
  CHECK(n.current_term() == 2_t);
  CHECK(n.leader() == 2_n);
}

TEST_CASE("§5.3 a conflicting suffix is replaced by the leader's entries") {
  auto disk
    = restored(hard_state{1_t, no_node, 1_i}, entries_with_terms({1, 1, 1}));
  node n{config_of(1), disk};
  for (int i = 0; i < 4 && n.has_ready(); ++i)
    drain(n, disk);
  n.step(append_request(2, 1, 2, 1, 1, {entry(2, 2, "new")}, 1));
  CHECK(n.log().last_index() == 2_i);
  CHECK(n.log().term(2_i) == 2_t);
  CHECK(n.log().at(2_i).data == "new");
  auto rd = drain(n, disk);
  REQUIRE(rd.entries.size() == 1);
  CHECK(rd.entries[0] == entry(2, 2, "new"));
  auto resp = append_responses(rd, 2);
  REQUIRE(resp.size() == 1);
  CHECK_FALSE(resp[0].reject);
  CHECK(resp[0].index == 2_i);
  // Storage followed the ready's "replace the suffix" instruction.
  REQUIRE(disk.entries.size() == 2);
  CHECK(disk.entries.back() == entry(2, 2, "new"));
}

TEST_CASE("§5.3 an append that matches the log does not truncate later "
          "entries") {
  // A delayed, duplicated append must not erase entries that followed it.
  node n{config_of(1), restored(hard_state{1_t, no_node, 0_i},
                                entries_with_terms({1, 1, 1}))};
  drain_all(n);
  n.step(append_request(2, 1, 1, 0, 0, {entry(1, 1, "e1")}, 0));
  CHECK(n.log().last_index() == 3_i);
  auto rd = drain(n);
  CHECK(rd.entries.empty());
  auto resp = append_responses(rd, 2);
  REQUIRE(resp.size() == 1);
  CHECK_FALSE(resp[0].reject);
  CHECK(resp[0].index >= 1_i);
  CHECK(resp[0].index <= 3_i);
}

TEST_CASE("§5.3 a follower's commit follows the leader's but never passes its "
          "durable log") {
  node n{config_of(1), bootstrap(members({1, 2, 3}))};
  n.step(
    append_request(2, 1, 1, 0, 0, {entry(1, 1, "a"), entry(2, 1, "b")}, 2));
  auto rd = n.take_ready();
  CHECK(rd.entries.size() == 2);
  CHECK(rd.committed.empty());
  CHECK(n.commit_index() == 0_i);
  // The commit index written with the batch is the one its entries have once
  // durable (atomically with them); in memory it waits for the write.
  REQUIRE(rd.state);
  CHECK(rd.state->commit_index == 2_i);
  n.on_persisted(rd.ack);
  CHECK(n.commit_index() == 2_i);
  auto rd2 = drain(n);
  REQUIRE(rd2.committed.size() == 2);
  CHECK(rd2.committed[0].data == "a");
  CHECK(rd2.committed[1].data == "b");
  CHECK((!rd2.state || rd2.state->commit_index == 2_i));
}

TEST_CASE("§5.3 a follower commits no further than the entries the append "
          "verified") {
  SUBCASE("leader commit beyond the last new entry") {
    node n{config_of(1), bootstrap(members({1, 2, 3}))};
    n.step(append_request(2, 1, 1, 0, 0, {entry(1, 1)}, 5));
    drain_all(n);
    CHECK(n.commit_index() == 1_i);
  }
  SUBCASE("stale entries after the matching point") {
    // Entries 2 and 3 came from an old leader; the new leader only verified
    // index 1, so they must not be committed on its word.
    node n{config_of(1), restored(hard_state{1_t, no_node, 0_i},
                                  entries_with_terms({1, 1, 1}))};
    drain_all(n);
    n.step(append_request(2, 1, 2, 1, 1, {}, 3));
    drain_all(n);
    CHECK(n.commit_index() == 1_i);
  }
}

TEST_CASE("§5.3 a leader's heartbeat never carries a commit index past the "
          "follower's match") {
  group g{{1, 2, 3}};
  g.elect(1);
  g.cut(1, 3);
  for (int i = 0; i < 3; ++i)
    g.propose(1, "p" + std::to_string(i));
  g.stabilize();
  auto& leader = g.core(1);
  REQUIRE(leader.commit_index() == 4_i);
  g.heal();
  leader.tick();
  auto hbs = filter(g.process(1), message_type::heartbeat_request, 3);
  REQUIRE(hbs.size() == 1);
  auto pr = leader.progress_of(3_n);
  REQUIRE(pr != nullptr);
  CHECK(pr->match < 4_i);
  CHECK(hbs[0].commit <= pr->match);
  // Delivered, it leaves node 3 with a commit index it can back with entries.
  g.deliver(hbs[0]);
  g.stabilize();
  CHECK(g.core(3).commit_index() <= g.core(3).log().last_index());
  g.run_until([&] { return g.core(3).commit_index() == 4_i; }, 20);
  g.check_applied_agree();
}

TEST_CASE("§5.3 the leader backs up next_index until the logs match and "
          "repairs the follower") {
  group g;
  auto cfg = [](std::uint64_t id) {
    auto c = config_of(id);
    c.pre_vote = false;
    return c;
  };
  // Node 1 (future leader) holds 1:1 2:1 3:3; node 2 holds a divergent
  // 1:1 2:2 2:2 2:2 suffix from a deposed leader of term 2.
  g.add(cfg(1),
        restored(hard_state{3_t, no_node, 0_i}, entries_with_terms({1, 1, 3})));
  g.add(cfg(2), restored(hard_state{3_t, no_node, 0_i},
                         entries_with_terms({1, 2, 2, 2})));
  g.add(cfg(3),
        restored(hard_state{3_t, no_node, 0_i}, entries_with_terms({1, 1})));
  g.elect(1);
  g.stabilize();
  auto& leader = g.core(1);
  REQUIRE(leader.current_term() == 4_t);
  for (std::uint64_t id : {1, 2, 3}) {
    CAPTURE(id);
    auto& n = g.core(id);
    REQUIRE(n.log().last_index() == leader.log().last_index());
    for (auto i = 1_i; i <= leader.log().last_index(); ++i)
      CHECK(n.log().at(i) == leader.log().at(i));
  }
  CHECK(leader.commit_index() == leader.log().last_index());
  g.check_applied_agree();
}

// -- §5.4.2 committing entries from previous terms
// --------------------------------

TEST_CASE("§5.4.2 a leader never commits an entry of an older term by "
          "counting replicas (Figure 8)") {
  // Node 1 holds 1:1 2:2, node 2 only 1:1; node 3 is down. Node 1 wins term 3
  // and replicates entry 2 (term 2) to node 2: it is then on a majority but
  // must not be committed until the noop of term 3 is too. One entry per
  // append makes the two acknowledgements arrive separately.
  auto cfg = [](std::uint64_t id) {
    auto c = config_of(id);
    c.pre_vote = false;
    c.max_entries_per_append = 1;
    return c;
  };
  group g;
  g.add(cfg(1),
        restored(hard_state{2_t, 1_n, 0_i}, entries_with_terms({1, 2})));
  g.add(cfg(2),
        restored(hard_state{2_t, no_node, 0_i}, entries_with_terms({1})));
  REQUIRE(g.core(1).campaign() == raft_errc::ok);
  bool saw_old_term_ack = false;
  for (int round = 0; round < 50 && g.core(1).commit_index() < 3_i; ++round) {
    for (const auto& m : g.process(1))
      g.deliver(m);
    for (const auto& m : g.process(2)) {
      g.deliver(m);
      if (m.type == message_type::append_response && !m.reject
          && m.index == 2_i) {
        saw_old_term_ack = true;
        REQUIRE(g.core(1).current_role() == role::leader);
        CHECK(g.core(1).commit_index() == 0_i);
      }
    }
  }
  CHECK(saw_old_term_ack);
  CHECK(g.core(1).current_role() == role::leader);
  CHECK(g.core(1).current_term() == 3_t);
  // Once the noop of term 3 is replicated, everything before it commits too.
  CHECK(g.core(1).commit_index() == 3_i);
  g.stabilize();
  auto& applied = g.at(1).applied;
  REQUIRE(applied.size() == 3);
  CHECK(applied[2_i].term == 2_t);
  CHECK(applied[3_i].type == entry_type::noop);
  CHECK(applied[3_i].term == 3_t);
}

TEST_CASE("§5.4.2 a leader commits an entry of its term once a majority holds "
          "it") {
  group g{{1, 2, 3, 4, 5}};
  g.elect(1);
  auto& leader = g.core(1);
  auto base = leader.commit_index();
  g.isolate(4);
  g.isolate(5);
  g.cut(1, 3);
  auto idx = g.propose(1, "x");
  g.stabilize();
  CHECK(leader.commit_index() == base); // leader + node 2: 2 of 5
  g.heal();
  g.isolate(4);
  g.isolate(5);
  g.run_until([&] { return leader.commit_index() == idx; }, 20); // 3 of 5
  g.check_applied_agree();
}

// -- thesis §3.8: persist before you send
// -------------------------------------------

TEST_CASE("thesis §3.8 a vote is sent only after it is durable") {
  node n{config_of(1), bootstrap(members({1, 2, 3}))};
  n.step(vote_request(2, 1, 1, 0, 0));
  auto rd = n.take_ready();
  CHECK(filter(rd.messages, message_type::vote_response).empty());
  auto votes
    = filter(rd.messages_after_persist, message_type::vote_response, 2);
  REQUIRE(votes.size() == 1);
  CHECK_FALSE(votes[0].reject);
  CHECK(rd.must_persist());
  REQUIRE(rd.state);
  CHECK(rd.state->voted_for == 2_n);
  REQUIRE(rd.ack.state);
  CHECK(rd.ack.state->voted_for == 2_n);
}

TEST_CASE("thesis §3.8 an append is acknowledged only after its entries are "
          "durable") {
  node n{config_of(1), bootstrap(members({1, 2, 3}))};
  n.step(append_request(2, 1, 1, 0, 0, {entry(1, 1, "x")}, 0));
  auto rd = n.take_ready();
  CHECK(filter(rd.messages, message_type::append_response).empty());
  auto acks
    = filter(rd.messages_after_persist, message_type::append_response, 2);
  REQUIRE(acks.size() == 1);
  CHECK_FALSE(acks[0].reject);
  CHECK(acks[0].index == 1_i);
  REQUIRE(rd.entries.size() == 1);
  CHECK(rd.ack.last_index == 1_i);
  CHECK(rd.ack.last_term == 1_t);
}

TEST_CASE("thesis §3.8 a candidate counts its own vote only once it is "
          "durable") {
  auto cfg = config_of(1);
  cfg.pre_vote = false;
  node n{cfg, bootstrap(members({1, 2, 3}))};
  REQUIRE(n.campaign() == raft_errc::ok);
  auto rd = n.take_ready(); // self-vote handed to storage, not yet durable
  REQUIRE(rd.state);
  CHECK(rd.state->voted_for == 1_n);
  n.step(vote_response(2, 1, 1, true));
  CHECK(n.current_role() == role::candidate);
  n.on_persisted(rd.ack);
  CHECK(n.current_role() == role::leader);
}

TEST_CASE("thesis §3.8 a leader counts its own entries only once they are "
          "durable") {
  node n{config_of(1), bootstrap(members({1, 2, 3}))};
  win_election(n);
  n.step(append_ack(2, 1, 1, 1));
  drain_all(n);
  REQUIRE(n.commit_index() == 1_i);
  auto res = n.propose("x");
  REQUIRE(res.error == raft_errc::ok);
  REQUIRE(res.index == 2_i);
  auto rd = n.take_ready();
  REQUIRE(rd.entries.size() == 1);
  CHECK(filter(rd.messages, message_type::append_request, 2).size() == 1);
  n.step(append_ack(2, 1, 1, 2));
  CHECK(n.commit_index() == 1_i); // only node 2 has it durably
  n.on_persisted(rd.ack);
  CHECK(n.commit_index() == 2_i);
  auto rd2 = drain(n);
  REQUIRE(rd2.committed.size() == 1);
  CHECK(rd2.committed[0].data == "x");
}

TEST_CASE("batching: proposals between two readies go out as one append per "
          "follower") {
  node n{config_of(1), bootstrap(members({1, 2, 3}))};
  win_election(n);
  n.step(append_ack(2, 1, 1, 1));
  n.step(append_ack(3, 1, 1, 1));
  drain_all(n);
  for (int i = 0; i < 5; ++i)
    REQUIRE(n.propose("p" + std::to_string(i)).error == raft_errc::ok);
  auto rd = n.take_ready();
  CHECK(rd.entries.size() == 5);
  for (std::uint64_t peer : {2, 3}) {
    auto apps = filter(rd.messages, message_type::append_request, peer);
    REQUIRE(apps.size() == 1);
    CHECK(apps[0].entries.size() == 5);
    CHECK(apps[0].index == 1_i);
  }
}

TEST_CASE("thesis §3.8 no ready releases an acknowledgement early in a busy "
          "group") {
  // The group harness checks every ready: no vote or append response in
  // `messages`, and nothing committed before it is durable.
  group g{{1, 2, 3}};
  g.run_until([&] { return g.leaders().size() == 1; }, 100);
  auto leader = g.leaders()[0].value;
  for (int i = 0; i < 20; ++i) {
    g.propose(leader, "p" + std::to_string(i));
    if (i % 3 == 0)
      g.tick_all();
  }
  g.stabilize();
  std::size_t normal = 0;
  for (const auto& [_, e] : g.at(leader).applied)
    normal += e.type == entry_type::normal ? 1 : 0;
  CHECK(normal == 20);
  g.check_applied_agree();
  std::size_t gated = 0;
  for (const auto& m : g.delivered())
    gated += is_persist_gated(m.type) ? 1 : 0;
  CHECK(gated > 0);
}

TEST_CASE("thesis §3.8 a follower with pipelined writes commits only what "
          "storage holds (ABA)") {
  // Entry 2 is written as (2,1), overwritten with (2,2), then rewritten as
  // (2,1) by three leaders while storage still works on the first write. The
  // first write's acknowledgement must not make entry 2 count as durable:
  // the later writes may yet leave (2,2) on disk.
  auto disk = restored(hard_state{1_t, no_node, 1_i}, entries_with_terms({1}));
  node n{config_of(1), disk};
  std::vector<log_entry> applied;
  auto apply = [&](const ready& rd) {
    for (const auto& e : rd.committed) {
      auto durable = durable_entry(disk, e.index);
      CHECK_MESSAGE((durable && *durable == e),
                    "applies " << e.index.value << " before it is durable");
      applied.push_back(e);
    }
  };
  apply(n.take_ready());
  n.step(append_request(2, 1, 1, 1, 1, {entry(2, 1, "a")}, 1));
  auto a = n.take_ready();
  apply(a);
  n.step(append_request(3, 1, 2, 1, 1, {entry(2, 2, "b")}, 1));
  auto b = n.take_ready();
  apply(b);
  n.step(append_request(
    2, 1, 3, 1, 1, {entry(2, 1, "a"), entry(3, 3, "", entry_type::noop)}, 3));
  auto c = n.take_ready();
  apply(c);
  REQUIRE(c.entries.size() == 2);
  for (auto* rd : {&a, &b}) {
    persist(disk, *rd);
    n.on_persisted(rd->ack);
    CHECK(n.commit_index() <= 1_i);
    apply(n.take_ready());
  }
  persist(disk, c);
  n.on_persisted(c.ack);
  CHECK(n.commit_index() == 3_i);
  apply(n.take_ready());
  REQUIRE(applied.size() == 3);
  CHECK(applied[1] == entry(2, 1, "a"));
  CHECK(applied[2].index == 3_i);
}

TEST_CASE("§5.3 a restarted node re-applies its committed entries after its "
          "snapshot") {
  auto disk
    = restored(hard_state{2_t, no_node, 2_i}, entries_with_terms({1, 2, 2}));
  node n{config_of(1), disk};
  CHECK(n.commit_index() == 2_i);
  CHECK(n.current_term() == 2_t);
  auto rd = drain(n);
  REQUIRE(rd.committed.size() == 2);
  CHECK(rd.committed[0] == entry(1, 1, "e1"));
  CHECK(rd.committed[1] == entry(2, 2, "e2"));
  CHECK(n.log().last_index() == 3_i); // the uncommitted entry is kept
  CHECK(rd.entries.empty()); // and not written again
}

TEST_CASE("§5.2 a single-voter group elects itself once its vote is durable "
          "and commits alone") {
  node n{config_of(1), bootstrap(members({1}))};
  REQUIRE(n.campaign() == raft_errc::ok);
  for (int i = 0; i < 4 && n.current_role() != role::leader; ++i)
    drain(n);
  REQUIRE(n.current_role() == role::leader);
  auto res = n.propose("solo");
  REQUIRE(res.error == raft_errc::ok);
  std::vector<log_entry> applied;
  for (int i = 0; i < 4 && n.has_ready(); ++i) {
    auto rd = drain(n);
    CHECK(rd.messages.empty());
    applied.insert(applied.end(), rd.committed.begin(), rd.committed.end());
  }
  CHECK(n.commit_index() == res.index);
  REQUIRE_FALSE(applied.empty());
  CHECK(applied.back().data == "solo");
}

// -- thesis §3.8 what must be synced ------------------------------------------

TEST_CASE("thesis §3.8 entries, a new term and a vote must be synced; a "
          "commit index alone need not be (it is volatile, Figure 2)") {
  node n{config_of(1),
         restored(hard_state{1_t, no_node, 0_i}, entries_with_terms({1, 1}))};
  drain_all(n);
  // A new term (a leader's heartbeat of term 2).
  n.step(heartbeat(2, 1, 2, 0));
  auto rd = drain(n);
  REQUIRE(rd.state);
  CHECK(rd.state->current_term == 2_t);
  CHECK(rd.sync);
  drain_all(n);
  // New entries.
  n.step(append_request(2, 1, 2, 2, 1, {entry(3, 2)}, 0));
  rd = drain(n);
  CHECK(rd.entries.size() == 1);
  CHECK(rd.sync);
  drain_all(n);
  // Only the commit index moves.
  n.step(heartbeat(2, 1, 2, 3));
  rd = drain(n);
  REQUIRE(rd.state);
  CHECK(rd.state->commit_index == 3_i);
  CHECK(rd.entries.empty());
  CHECK_FALSE(rd.snapshot);
  CHECK_FALSE(rd.sync);
  CHECK(rd.must_persist());
  drain_all(n);
  // A vote in a new term (the leader is gone: node 3 campaigns).
  for (int i = 0; i < 64 && n.leader() != no_node; ++i)
    n.tick();
  drain_all(n);
  auto term = n.current_term().value + 1;
  n.step(vote_request(3, 1, term, 3, 2));
  rd = drain(n);
  REQUIRE(rd.state);
  CHECK(rd.state->voted_for == 3_n);
  CHECK(rd.sync);
}
