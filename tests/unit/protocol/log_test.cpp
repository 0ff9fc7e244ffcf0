// The core's view of the log (raft_log): §5.3 log matching and repair, §7
// compaction, and the durable/unstable bookkeeping behind thesis §3.8.
#include "harness.hpp"

using namespace ees;
using namespace ees::raft;
using namespace ees::raft::test;

TEST_CASE("§5.3 raft_log: an empty log starts right after its snapshot") {
  raft_log log{snapshot_meta{}, {}};
  CHECK(log.first_index() == 1_i);
  CHECK(log.last_index() == 0_i);
  CHECK(log.last_term() == 0_t);
  CHECK(log.term(0_i) == 0_t);
  CHECK_FALSE(log.term(1_i));
  CHECK(log.unstable_from() == 1_i);
  CHECK(log.take_unstable().empty());

  raft_log after{snapshot_meta{5_i, 2_t, members({1, 2, 3})}, {}};
  CHECK(after.first_index() == 6_i);
  CHECK(after.last_index() == 5_i);
  CHECK(after.last_term() == 2_t);
  CHECK(after.term(5_i) == 2_t);
  CHECK_FALSE(after.term(4_i)); // compacted
  CHECK_FALSE(after.term(6_i)); // beyond the log
  CHECK(after.match_term(5_i, 2_t));
}

TEST_CASE("§5.3 raft_log: a log restored from storage is durable") {
  raft_log log{snapshot_meta{}, entries_with_terms({1, 1, 2})};
  CHECK(log.last_index() == 3_i);
  CHECK(log.last_term() == 2_t);
  CHECK(log.durable_index() == 3_i);
  CHECK(log.unstable_from() == 4_i);
  CHECK(log.take_unstable().empty());
  CHECK(log.at(2_i) == entry(2, 1, "e2"));
  CHECK(log.match_term(2_i, 1_t));
  CHECK_FALSE(log.match_term(2_i, 2_t));
  CHECK_FALSE(log.match_term(9_i, 1_t));
}

TEST_CASE("thesis §3.8 raft_log: new entries are handed out once and become "
          "durable on stable_to") {
  raft_log log{snapshot_meta{}, {entry(1, 1)}};
  log.append(entry(2, 1, "a"));
  log.append(entry(3, 1, "b"));
  CHECK(log.last_index() == 3_i);
  CHECK(log.unstable_from() == 2_i);
  CHECK(log.durable_index() == 1_i);
  auto handed = log.take_unstable();
  REQUIRE(handed.size() == 2);
  CHECK(handed[0] == entry(2, 1, "a"));
  CHECK(handed[1] == entry(3, 1, "b"));
  CHECK(log.unstable_from() == 4_i);
  CHECK(log.take_unstable().empty());
  CHECK(log.durable_index() == 1_i); // handed out is not durable
  log.stable_to(3_i, 1_t); // storage acknowledges the whole write
  CHECK(log.durable_index() == 3_i);
  // Two writes in flight are acknowledged in order, one at a time.
  log.append(entry(4, 1));
  REQUIRE(log.take_unstable().size() == 1);
  log.append(entry(5, 1));
  REQUIRE(log.take_unstable().size() == 1);
  log.stable_to(4_i, 1_t);
  CHECK(log.durable_index() == 4_i);
  log.stable_to(5_i, 1_t);
  CHECK(log.durable_index() == 5_i);
}

TEST_CASE("§5.3 raft_log::append_or_replace skips matching entries and "
          "truncates a conflicting suffix") {
  raft_log log{snapshot_meta{}, entries_with_terms({1, 1, 1, 1})};
  SUBCASE("every entry already present") {
    CHECK_FALSE(log.append_or_replace({entry(2, 1, "e2"), entry(3, 1, "e3")}));
    CHECK(log.last_index() == 4_i);
    CHECK(log.unstable_from() == 5_i);
    CHECK(log.durable_index() == 4_i);
  }
  SUBCASE("overlapping and extending") {
    auto first = log.append_or_replace({entry(4, 1, "e4"), entry(5, 1, "e5")});
    REQUIRE(first);
    CHECK(*first == 5_i);
    CHECK(log.last_index() == 5_i);
    CHECK(log.unstable_from() == 5_i);
    CHECK(log.durable_index() == 4_i);
  }
  SUBCASE("conflict in the middle") {
    auto first = log.append_or_replace({entry(2, 1, "e2"), entry(3, 2, "x")});
    REQUIRE(first);
    CHECK(*first == 3_i);
    CHECK(log.last_index() == 3_i); // entry 4 followed a conflict: gone
    CHECK(log.term(3_i) == 2_t);
    CHECK_FALSE(log.term(4_i));
    CHECK(log.unstable_from() == 3_i);
    CHECK(log.durable_index() <= 2_i); // the new entry 3 is not durable
    auto handed = log.take_unstable();
    REQUIRE(handed.size() == 1);
    CHECK(handed[0] == entry(3, 2, "x"));
  }
  SUBCASE("conflict at the first entry") {
    auto first = log.append_or_replace({entry(1, 2, "y")});
    REQUIRE(first);
    CHECK(*first == 1_i);
    CHECK(log.last_index() == 1_i);
    CHECK(log.last_term() == 2_t);
    CHECK(log.durable_index() == 0_i);
  }
}

TEST_CASE("§5.3 raft_log::find_conflict_by_term finds the last index whose "
          "term is not newer") {
  raft_log log{snapshot_meta{}, entries_with_terms({1, 1, 2, 2, 3, 3})};
  CHECK(log.find_conflict_by_term(6_i, 3_t) == 6_i);
  CHECK(log.find_conflict_by_term(6_i, 2_t) == 4_i);
  CHECK(log.find_conflict_by_term(6_i, 1_t) == 2_i);
  CHECK(log.find_conflict_by_term(6_i, 0_t) == 0_i);
  CHECK(log.find_conflict_by_term(3_i, 5_t) == 3_i);
  CHECK(log.find_conflict_by_term(4_i, 2_t) == 4_i);
  CHECK(log.find_conflict_by_term(2_i, 1_t) == 2_i);

  raft_log compacted{snapshot_meta{2_i, 1_t, members({1, 2, 3})},
                     {entry(3, 2), entry(4, 2), entry(5, 3)}};
  CHECK(compacted.find_conflict_by_term(5_i, 2_t) == 4_i);
  CHECK(compacted.find_conflict_by_term(5_i, 1_t) == 2_i); // the snapshot
}

TEST_CASE("thesis §3.8 raft_log::stable_to ignores an acknowledgement for an "
          "entry replaced since") {
  raft_log log{snapshot_meta{}, {entry(1, 1)}};
  log.append(entry(2, 1, "old"));
  REQUIRE(log.take_unstable().size() == 1); // write A: (2, 1)
  REQUIRE(log.append_or_replace({entry(2, 2, "new")}));
  REQUIRE(log.take_unstable().size() == 1); // write B: (2, 2)
  log.stable_to(2_i, 1_t); // A is done, B is not
  CHECK(log.durable_index() < 2_i);
  log.stable_to(2_i, 2_t); // B is done
  CHECK(log.durable_index() == 2_i);
}

TEST_CASE("thesis §3.8 raft_log::stable_to ignores an acknowledgement "
          "overtaken by a rewrite of the same entry (ABA)") {
  // Entry 2 is written as (2,1) by a leader of term 1, overwritten with (2,2)
  // by a leader of term 2, then rewritten as (2,1) by a leader of term 3 whose
  // log still had it. The ack of the *first* write matches (index, term) of
  // the current entry, yet two later writes of index 2 are still in flight:
  // a crash now could leave (2,2) on disk.
  raft_log log{snapshot_meta{}, {entry(1, 1)}};
  log.append(entry(2, 1, "a"));
  REQUIRE(log.take_unstable().size() == 1); // write A: (2, 1)
  REQUIRE(log.append_or_replace({entry(2, 2, "b")}));
  REQUIRE(log.take_unstable().size() == 1); // write B: (2, 2)
  REQUIRE(log.append_or_replace({entry(2, 1, "a")}));
  REQUIRE(log.take_unstable().size() == 1); // write C: (2, 1) again
  log.stable_to(2_i, 1_t); // A done; B and C in flight
  CHECK(log.durable_index() < 2_i);
  log.stable_to(2_i, 2_t); // B done; C in flight
  CHECK(log.durable_index() < 2_i);
  log.stable_to(2_i, 1_t); // C done
  CHECK(log.durable_index() == 2_i);
}

TEST_CASE("§5.3 raft_log::slice honours count and byte limits but returns at "
          "least one entry") {
  raft_log log{snapshot_meta{}, entries_with_terms({1, 1, 1, 1, 1})};
  auto all = log.slice(2_i, 4_i);
  REQUIRE(all.size() == 3);
  CHECK(all.front().index == 2_i);
  CHECK(all.back().index == 4_i);
  CHECK(log.slice(2_i, 4_i, 2).size() == 2);
  CHECK(log.slice(2_i, 4_i, SIZE_MAX, 3).size() == 1); // each entry: 2 bytes
  CHECK(log.slice(2_i, 4_i, SIZE_MAX, 0).size() == 1);
  CHECK(log.slice(3_i, 3_i).size() == 1);
}

TEST_CASE("§5.4.1 raft_log::is_up_to_date compares last terms, then lengths") {
  raft_log log{snapshot_meta{}, entries_with_terms({1, 2, 2})};
  CHECK(log.is_up_to_date(3_i, 2_t));
  CHECK(log.is_up_to_date(4_i, 2_t));
  CHECK(log.is_up_to_date(1_i, 3_t));
  CHECK_FALSE(log.is_up_to_date(2_i, 2_t));
  CHECK_FALSE(log.is_up_to_date(10_i, 1_t));
}

TEST_CASE("§7 raft_log::compact drops the covered prefix and keeps the rest") {
  raft_log log{snapshot_meta{}, entries_with_terms({1, 1, 2, 2, 3})};
  log.compact(snapshot_meta{3_i, 2_t, members({1, 2, 3})});
  CHECK(log.snapshot_index() == 3_i);
  CHECK(log.snapshot_term() == 2_t);
  CHECK(log.first_index() == 4_i);
  CHECK(log.last_index() == 5_i);
  CHECK(log.term(3_i) == 2_t);
  CHECK_FALSE(log.term(2_i));
  CHECK(log.at(4_i) == entry(4, 2, "e4"));
  CHECK(log.slice(4_i, 5_i).size() == 2);
  CHECK(log.durable_index() == 5_i);
}

TEST_CASE("§7 raft_log::restore replaces the whole log by a snapshot") {
  raft_log log{snapshot_meta{}, entries_with_terms({1, 1, 2})};
  auto meta = snapshot_meta{10_i, 4_t, members({1, 2, 3})};
  log.restore(meta);
  CHECK(log.snapshot() == meta);
  CHECK(log.first_index() == 11_i);
  CHECK(log.last_index() == 10_i);
  CHECK(log.last_term() == 4_t);
  CHECK_FALSE(log.term(3_i));
  CHECK(log.durable_index() <= log.last_index());
  CHECK(log.unstable_from() <= log.last_index() + 1);
  log.snapshot_stable(10_i);
  CHECK(log.durable_index() == 10_i);
  log.append(entry(11, 4));
  CHECK(log.last_index() == 11_i);
}
