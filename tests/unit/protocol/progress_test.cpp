// The leader's per-follower replication state (Figure 2: nextIndex and
// matchIndex), with etcd's probe / replicate / snapshot flow control.
#include "harness.hpp"

using namespace ees;
using namespace ees::raft;
using namespace ees::raft::test;

namespace {

void check_invariant(const progress& pr) {
  CHECK(pr.match < pr.next);
}

} // namespace

TEST_CASE("Figure 2 progress starts probing at index 1 with nothing matched") {
  progress pr;
  CHECK(pr.match == 0_i);
  CHECK(pr.next == 1_i);
  CHECK(pr.state == progress_state::probe);
  CHECK_FALSE(pr.is_paused(256));
}

TEST_CASE("Figure 2 progress::maybe_update raises match_index and never "
          "lowers it") {
  progress pr;
  CHECK(pr.maybe_update(5_i));
  CHECK(pr.match == 5_i);
  CHECK(pr.next >= 6_i);
  check_invariant(pr);
  CHECK_FALSE(pr.maybe_update(3_i)); // stale acknowledgement
  CHECK(pr.match == 5_i);
  CHECK(pr.next >= 6_i);
  CHECK_FALSE(pr.maybe_update(5_i)); // duplicate
  CHECK(pr.maybe_update(7_i));
  CHECK(pr.match == 7_i);
  check_invariant(pr);
}

TEST_CASE("§5.3 progress in probe backs next_index up to the follower's hint") {
  progress pr;
  pr.next = 10_i;
  CHECK_FALSE(pr.maybe_decrease_to(5_i, 3_i)); // not the probe in flight
  CHECK(pr.next == 10_i);
  CHECK(pr.maybe_decrease_to(9_i, 3_i));
  CHECK(pr.next == 4_i);
  check_invariant(pr);
  CHECK(pr.maybe_decrease_to(3_i, 0_i));
  CHECK(pr.next == 1_i);
  check_invariant(pr);
}

TEST_CASE("§5.3 progress in replicate falls back to match + 1 on a rejection") {
  progress pr;
  REQUIRE(pr.maybe_update(4_i));
  pr.become_replicate();
  CHECK(pr.state == progress_state::replicate);
  CHECK(pr.next == 5_i);
  pr.sent_entries(8_i);
  pr.next = 9_i; // optimistic pipelining
  CHECK_FALSE(pr.maybe_decrease_to(3_i, 3_i)); // below match: stale
  CHECK(pr.next == 9_i);
  CHECK(pr.maybe_decrease_to(8_i, 6_i));
  CHECK(pr.next == 5_i);
  check_invariant(pr);
}

TEST_CASE("Figure 2 progress pauses in probe after one append and in "
          "replicate when the window is full") {
  progress pr;
  CHECK_FALSE(pr.is_paused(2));
  pr.sent_entries(1_i);
  CHECK(pr.is_paused(2)); // one probe at a time
  pr.become_replicate();
  CHECK_FALSE(pr.is_paused(2));
  CHECK(pr.inflight.empty());
  pr.sent_entries(1_i);
  CHECK_FALSE(pr.is_paused(2));
  pr.sent_entries(2_i);
  CHECK(pr.inflight.size() == 2);
  CHECK(pr.is_paused(2)); // window of two is full
  pr.become_probe();
  CHECK(pr.state == progress_state::probe);
  CHECK_FALSE(pr.is_paused(2));
  CHECK(pr.next == pr.match + 1);
}

TEST_CASE("§7 progress in snapshot state sends nothing until the snapshot is "
          "done") {
  progress pr;
  REQUIRE(pr.maybe_update(2_i));
  pr.become_snapshot(10_i);
  CHECK(pr.state == progress_state::snapshot);
  CHECK(pr.pending_snapshot == 10_i);
  CHECK(pr.is_paused(256));
  pr.become_probe();
  CHECK(pr.state == progress_state::probe);
  CHECK_FALSE(pr.is_paused(256));
  CHECK(pr.next > pr.match);
}

TEST_CASE("Figure 2 progress_state names") {
  CHECK(std::string{to_string(progress_state::probe)} == "probe");
  CHECK(std::string{to_string(progress_state::replicate)} == "replicate");
  CHECK(std::string{to_string(progress_state::snapshot)} == "snapshot");
}
