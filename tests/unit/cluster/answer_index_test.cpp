// answer_index: the exactly-once table's open-addressing lookup by id.
#include "protocol/cluster/answer_index.hpp"
#include "protocol/splitmix.hpp"

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>

using namespace ees;
using namespace ees::cluster_sm::detail;

TEST_CASE("an answer_index finds exactly the records inserted and not "
          "erased, under random inserts and erases") {
  splitmix64 rng{21};
  answer_index index;
  std::map<std::string, std::unique_ptr<answer_record>> model;
  for (int step = 0; step < 30'000; ++step) {
    // A small id space: erases hit, inserts refill, runs wrap around.
    auto id = "req-" + std::to_string(rng.next() % 300);
    auto i = model.find(id);
    if (i == model.end()) {
      auto r = std::make_unique<answer_record>(
        answer_record{id, "answer-" + id, answer_index::hash(id)});
      index.insert(r.get());
      model.emplace(id, std::move(r));
    } else if (rng.next() % 2 == 0) {
      index.erase(i->second.get());
      model.erase(i);
    }
    REQUIRE(index.size() == model.size());
    if (step % 101 == 0) {
      for (int k = 0; k < 300; ++k) {
        auto probe = "req-" + std::to_string(k);
        auto m = model.find(probe);
        const auto* found = index.find(probe);
        CHECK(found == (m == model.end() ? nullptr : m->second.get()));
      }
    }
  }
  CHECK(index.find("never") == nullptr);
}
