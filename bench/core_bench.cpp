// Proposals per second through the pure Raft core.
//
// A 3-node group with in-memory delivery and instant "persistence": each
// round proposes a batch of B 256-byte commands on the leader, then drains the
// readies of all nodes (persist = on_persisted at once, apply = on_applied)
// and delivers their messages until the leader has committed the batch. No
// disk, no network, no threads: this is the ceiling the core itself imposes.
//
// Reproduce: ./build/bench/core_bench [--smoke | proposals-per-batch-size]
#include "protocol/raft/node.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace ees;
using namespace ees::raft;

constexpr std::size_t payload_bytes = 256;
/// Entries kept behind the applied index when compacting.
constexpr std::uint64_t compaction_slack = 1024;

struct counters {
  std::uint64_t leader_committed
    = 0; ///< Normal entries committed on the leader.
  std::uint64_t applied_all = 0; ///< Entries applied summed over replicas.
  std::uint64_t messages = 0; ///< Messages delivered.
  std::uint64_t readies = 0; ///< Readies taken.
};

class bench_group {
public:
  bench_group() {
    membership m;
    for (std::uint64_t id = 1; id <= 3; ++id)
      m.voters.insert(node_id{id});
    for (std::uint64_t id = 1; id <= 3; ++id) {
      raft_config cfg;
      cfg.id = node_id{id};
      cfg.seed = id;
      if (auto err = validate(cfg); !err.empty()) {
        std::fprintf(stderr, "invalid config: %s\n", err.c_str());
        std::exit(1);
      }
      nodes_.emplace(
        cfg.id,
        std::make_unique<node>(
          cfg, persistent_state{
                 hard_state{}, snapshot_meta{log_index{0}, term_t{0}, m}, {}}));
    }
  }

  node& at(std::uint64_t id) {
    return *nodes_.at(node_id{id});
  }

  /// Drains every node and delivers every message until quiet. Returns false
  /// if that did not happen within `max_rounds`.
  bool settle(counters& c, int max_rounds = 100000) {
    for (int round = 0; round < max_rounds; ++round) {
      bool any = false;
      for (auto& [id, n] : nodes_) {
        if (!n->has_ready())
          continue;
        any = true;
        auto rd = n->take_ready();
        ++c.readies;
        // "Persist" instantly, then release what waited for it.
        n->on_persisted(rd.ack);
        for (auto& m : rd.messages)
          queue_.push_back(std::move(m));
        for (auto& m : rd.messages_after_persist)
          queue_.push_back(std::move(m));
        if (!rd.committed.empty()) {
          c.applied_all += rd.committed.size();
          if (n->current_role() == role::leader)
            for (const auto& e : rd.committed)
              c.leader_committed += e.type == entry_type::normal ? 1 : 0;
          n->on_applied(rd.committed.back().index);
        }
      }
      if (!any && queue_.empty())
        return true;
      while (!queue_.empty()) {
        auto m = std::move(queue_.front());
        queue_.pop_front();
        ++c.messages;
        nodes_.at(m.to)->step(m);
      }
    }
    return false;
  }

  /// Keeps memory flat over long runs (§7).
  void compact() {
    for (auto& [id, n] : nodes_) {
      auto applied = n->applied_index().value;
      if (applied > n->log().snapshot_index().value + 2 * compaction_slack)
        n->compact(log_index{applied - compaction_slack});
    }
  }

private:
  std::map<node_id, std::unique_ptr<node>> nodes_;
  std::deque<message> queue_;
};

struct result {
  std::size_t batch = 0;
  std::uint64_t proposals = 0;
  double seconds = 0;
  counters c;
};

result run(std::size_t batch, std::uint64_t total) {
  bench_group g;
  counters warmup;
  auto& leader = g.at(1);
  if (leader.campaign() != raft_errc::ok || !g.settle(warmup)
      || leader.current_role() != role::leader) {
    std::fprintf(stderr, "node 1 did not become leader\n");
    std::exit(1);
  }
  const std::string payload(payload_bytes, 'x');
  result r;
  r.batch = batch;
  auto rounds = (total + batch - 1) / batch;
  auto start = std::chrono::steady_clock::now();
  for (std::uint64_t round = 0; round < rounds; ++round) {
    log_index last;
    for (std::size_t i = 0; i < batch; ++i) {
      auto res = leader.propose(payload);
      if (res.error != raft_errc::ok) {
        std::fprintf(stderr, "proposal refused: %s\n", to_string(res.error));
        std::exit(1);
      }
      last = res.index;
      ++r.proposals;
    }
    if (!g.settle(r.c) || leader.commit_index() < last) {
      std::fprintf(stderr, "batch of %zu not committed (commit %llu < %llu)\n",
                   batch,
                   static_cast<unsigned long long>(leader.commit_index().value),
                   static_cast<unsigned long long>(last.value));
      std::exit(1);
    }
    g.compact();
  }
  auto stop = std::chrono::steady_clock::now();
  r.seconds = std::chrono::duration<double>(stop - start).count();
  return r;
}

} // namespace

int main(int argc, char** argv) {
  std::uint64_t total = 200000;
  if (argc > 1 && std::string{argv[1]} == "--smoke")
    total = 2000; // CI: checks the harness works, in well under a second
  else if (argc > 1)
    total = std::strtoull(argv[1], nullptr, 10);
  if (total == 0) {
    std::fprintf(stderr, "usage: %s [--smoke | proposals-per-batch-size > 0]\n",
                 argv[0]);
    return 2;
  }
  std::printf("core_bench: 3-node group, in-memory delivery, instant persist, "
              "%zu-byte proposals, %llu proposals per batch size\n",
              payload_bytes, static_cast<unsigned long long>(total));
  std::printf("%6s %10s %9s %14s %16s %16s %10s\n", "batch", "proposals",
              "seconds", "proposals/s", "committed/s", "applied/s(all)",
              "msgs/prop");
  for (std::size_t batch :
       {std::size_t{1}, std::size_t{16}, std::size_t{256}}) {
    auto r = run(batch, total);
    std::printf("%6zu %10llu %9.3f %14.0f %16.0f %16.0f %10.2f\n", r.batch,
                static_cast<unsigned long long>(r.proposals), r.seconds,
                r.proposals / r.seconds, r.c.leader_committed / r.seconds,
                r.c.applied_all / r.seconds,
                static_cast<double>(r.c.messages) / r.proposals);
  }
  std::printf("reproduce: cmake -S . -B build -G Ninja && cmake --build build "
              "--target core_bench && ./build/bench/core_bench %llu\n",
              static_cast<unsigned long long>(total));
  return 0;
}
