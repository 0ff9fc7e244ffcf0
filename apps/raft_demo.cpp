// raft-demo: the Raft core at work in one process.
//
// Runs a 3-node group on the deterministic in-memory cluster of the test
// support library (no disks, no sockets; the real daemon `ees-node` arrives
// with the node runtime): elects a leader, commits a batch of commands, kills
// the leader, elects a new one, keeps writing, restarts the old leader and
// shows that every replica applied the identical log. Exits non-zero if any
// step misbehaves.

#include "tests/support/mem_cluster.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

using namespace ees;

int fail(const char* what) {
  std::printf("raft-demo: FAILED: %s\n", what);
  return 1;
}

/// Ticks every live node until a leader emerges (bounded).
std::optional<node_id> elect(test::mem_cluster& c, std::uint32_t max_ticks) {
  for (std::uint32_t t = 0; t < max_ticks; ++t) {
    c.tick_all();
    c.stabilize();
    if (auto l = c.leader())
      return l;
  }
  return std::nullopt;
}

bool commit_batch(test::mem_cluster& c, node_id leader, int first, int n) {
  for (int i = first; i < first + n; ++i)
    if (c.core(leader).propose("cmd-" + std::to_string(i)).error
        != raft::raft_errc::ok)
      return false;
  return c.stabilize();
}

void print_status(test::mem_cluster& c) {
  for (auto id : c.ids()) {
    auto& n = c.at(id);
    if (!n.core) {
      std::printf("  node %llu: down\n",
                  static_cast<unsigned long long>(id.value));
      continue;
    }
    std::printf("  node %llu: %-9s term=%llu commit=%llu applied=%zu\n",
                static_cast<unsigned long long>(id.value),
                raft::to_string(n.core->current_role()),
                static_cast<unsigned long long>(n.core->current_term().value),
                static_cast<unsigned long long>(n.core->commit_index().value),
                n.applied.size());
  }
}

} // namespace

int main() {
  raft::raft_config defaults;
  defaults.election_ticks = 10;
  defaults.heartbeat_ticks = 1;
  defaults.seed = 42;
  test::mem_cluster c{defaults};
  c.add_voters({node_id{1}, node_id{2}, node_id{3}});

  std::printf("1. electing a leader among nodes 1, 2, 3\n");
  auto first = elect(c, 100);
  if (!first)
    return fail("no leader elected");
  std::printf(
    "   node %llu leads term %llu\n",
    static_cast<unsigned long long>(first->value),
    static_cast<unsigned long long>(c.core(*first).current_term().value));

  std::printf("2. committing 1000 commands\n");
  if (!commit_batch(c, *first, 0, 1000))
    return fail("cluster did not settle");
  print_status(c);

  std::printf("3. killing leader %llu\n",
              static_cast<unsigned long long>(first->value));
  c.crash(*first);
  auto second = elect(c, 100);
  if (!second || *second == *first)
    return fail("no new leader after the crash");
  std::printf(
    "   node %llu leads term %llu\n",
    static_cast<unsigned long long>(second->value),
    static_cast<unsigned long long>(c.core(*second).current_term().value));

  std::printf("4. committing 1000 more commands without node %llu\n",
              static_cast<unsigned long long>(first->value));
  if (!commit_batch(c, *second, 1000, 1000))
    return fail("cluster did not settle");

  std::printf("5. restarting node %llu; it catches up from the leader\n",
              static_cast<unsigned long long>(first->value));
  c.restart(*first);
  for (int t = 0; t < 10; ++t) {
    c.tick_all();
    c.stabilize();
  }
  print_status(c);

  auto& reference = c.at(*second).applied;
  for (auto id : c.ids())
    if (c.at(id).applied.size() != reference.size()
        || c.at(id).applied != reference)
      return fail("replicas applied different logs");
  if (auto v = c.check_invariants(); !v.empty())
    return fail(v.c_str());
  std::printf("raft-demo: ok: 3 replicas applied the same %zu entries; "
              "invariants hold\n",
              reference.size());
  return 0;
}
