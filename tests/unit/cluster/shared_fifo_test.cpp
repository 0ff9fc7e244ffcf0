// shared_fifo: a queue whose copies share their blocks until one writes.
#include "protocol/cluster/shared_fifo.hpp"
#include "protocol/splitmix.hpp"

#include <doctest/doctest.h>

#include <deque>
#include <vector>

using namespace ees;
using namespace ees::cluster_sm;

namespace {

// Small blocks, so that pushes and pops cross block ends often.
using fifo = shared_fifo<int, 4>;

std::deque<int> contents(const fifo& q) {
  std::deque<int> out;
  q.for_each([&out](int x) { out.push_back(x); });
  CHECK(out.size() == q.size());
  if (!out.empty())
    CHECK(q.front() == out.front());
  return out;
}

} // namespace

TEST_CASE("a shared_fifo behaves as std::deque under random pushes and pops") {
  splitmix64 rng{11};
  fifo q;
  std::deque<int> model;
  for (int step = 0; step < 20'000; ++step) {
    // Pushes win slightly more often, so the queue grows and drains in waves.
    if (model.empty() || rng.next() % 9 < 5) {
      auto x = static_cast<int>(rng.next() % 1000);
      q.push_back(x);
      model.push_back(x);
    } else {
      q.pop_front();
      model.pop_front();
    }
    REQUIRE(q.size() == model.size());
    if (step % 97 == 0)
      CHECK(contents(q) == model);
  }
  CHECK(contents(q) == model);
  while (!model.empty()) {
    q.pop_front();
    model.pop_front();
  }
  CHECK(q.empty());
  q.push_back(5);
  CHECK(contents(q) == std::deque<int>{5});
}

TEST_CASE("a copy of a shared_fifo keeps its contents while the original "
          "pushes and pops, and the other way round") {
  splitmix64 rng{12};
  for (int trial = 0; trial < 50; ++trial) {
    fifo original;
    std::deque<int> model;
    // A partly filled last block and a partly popped first block.
    auto n = static_cast<int>(rng.next() % 20);
    for (int i = 0; i < n; ++i) {
      original.push_back(i);
      model.push_back(i);
    }
    for (auto pops = rng.next() % (model.size() + 1); pops > 0; --pops) {
      original.pop_front();
      model.pop_front();
    }
    auto copy = original;
    auto copy_model = model;
    for (int step = 0; step < 30; ++step) {
      auto& q = step % 2 == 0 ? original : copy;
      auto& m = step % 2 == 0 ? model : copy_model;
      if (m.empty() || rng.next() % 2 == 0) {
        q.push_back(1000 + step);
        m.push_back(1000 + step);
      } else {
        q.pop_front();
        m.pop_front();
      }
    }
    CHECK(contents(original) == model);
    CHECK(contents(copy) == copy_model);
  }
}
