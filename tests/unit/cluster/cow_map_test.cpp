// cow_map: copies share their shards until one writes, and iteration merges
// the shards in key order, as std::map's.
#include "protocol/cluster/cow_map.hpp"
#include "protocol/splitmix.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

using namespace ees;
using namespace ees::cluster_sm;

namespace {

using map_type = cow_map<std::string, int>;

std::map<std::string, int> contents(const map_type& m) {
  std::map<std::string, int> out;
  std::vector<std::string> order;
  m.for_each([&](const std::string& k, int v) {
    out.emplace(k, v);
    order.push_back(k);
  });
  CHECK(std::is_sorted(order.begin(), order.end()));
  CHECK(out.size() == m.size());
  return out;
}

} // namespace

TEST_CASE("a cow_map behaves as std::map under random writes, iterating in "
          "key order") {
  splitmix64 rng{7};
  map_type m;
  std::map<std::string, int> model;
  for (int step = 0; step < 20'000; ++step) {
    auto key = "k" + std::to_string(rng.next() % 3000);
    auto value = static_cast<int>(rng.next() % 1000);
    switch (rng.next() % 4) {
      case 0: {
        auto [stored, fresh] = m.emplace(key, value);
        auto [i, model_fresh] = model.emplace(key, value);
        CHECK(fresh == model_fresh);
        CHECK(*stored == i->second);
        break;
      }
      case 1:
        m[key] = value;
        model[key] = value;
        break;
      case 2:
        CHECK(m.erase(key) == (model.erase(key) == 1));
        break;
      default:
        if (auto* v = m.find_mutable(key)) {
          REQUIRE(model.count(key) == 1);
          *v += 1;
          model[key] += 1;
        } else {
          CHECK(model.count(key) == 0);
        }
    }
    CHECK(m.size() == model.size());
  }
  CHECK(contents(m) == model);
}

TEST_CASE("a copy of a cow_map keeps its contents while the original is "
          "written, and the other way round") {
  map_type original;
  for (int i = 0; i < 1000; ++i)
    original["k" + std::to_string(i)] = i;
  auto before = contents(original);
  auto copy = original;
  for (int i = 0; i < 1000; i += 3)
    original.erase("k" + std::to_string(i));
  for (int i = 1; i < 1000; i += 3)
    *original.find_mutable("k" + std::to_string(i)) = -1;
  original["new"] = 7;
  original.for_each_mutable([](const std::string&, int& v) { v *= 2; });
  CHECK(contents(copy) == before);
  auto written = contents(original);
  copy["only-in-copy"] = 1;
  CHECK(contents(original) == written);
  CHECK(original.find("only-in-copy") == nullptr);
  CHECK(*copy.find("k0") == 0);
  CHECK(*original.find("k1") == -2);
}

TEST_CASE("for_each_after pages through a cow_map in key order from after "
          "a key") {
  map_type m;
  for (int i = 0; i < 500; ++i)
    m[std::to_string(1000 + i)] = i;
  std::vector<std::string> seen;
  std::string after;
  for (int page = 0; page < 100; ++page) {
    std::size_t n = 0;
    m.for_each_after(seen.empty() ? nullptr : &after,
                     [&](const std::string& k, int) {
                       seen.push_back(k);
                       return ++n < 7;
                     });
    if (n == 0)
      break;
    after = seen.back();
  }
  REQUIRE(seen.size() == 500);
  for (int i = 0; i < 500; ++i)
    CHECK(seen[static_cast<std::size_t>(i)] == std::to_string(1000 + i));
}

TEST_CASE("a copy of a cow_map can be read on another thread while the "
          "original is written") {
  map_type original;
  for (int i = 0; i < 20'000; ++i)
    original["k" + std::to_string(i)] = i;
  auto copy = std::make_shared<const map_type>(original);
  long long sum = 0;
  std::thread reader{[copy, &sum] {
    copy->for_each([&](const std::string&, int v) { sum += v; });
  }};
  for (int i = 0; i < 20'000; i += 2)
    original["k" + std::to_string(i)] = 0;
  copy.reset();
  reader.join();
  CHECK(sum == 20'000LL * 19'999 / 2);
  long long after = 0;
  original.for_each_unordered([&](const std::string&, int v) { after += v; });
  const long long evens = 2 * (9'999LL * 10'000 / 2); // 0 + 2 + ... + 19'998
  CHECK(after == sum - evens);
}

TEST_CASE("a cow_map over unordered shards finds, replaces and erases") {
  cow_map<std::string, std::string, std::hash<std::string>,
          std::unordered_map<std::string, std::string>>
    m;
  CHECK(m.emplace("a", "1").second);
  CHECK_FALSE(m.emplace("a", "2").second);
  CHECK(*m.find("a") == "1");
  auto copy = m;
  *m.find_mutable("a") = "3";
  CHECK(*copy.find("a") == "1");
  CHECK(m.erase("a"));
  CHECK(m.empty());
  CHECK(copy.size() == 1);
}

TEST_CASE("a moved-from cow_map is empty and usable") {
  map_type m;
  m["a"] = 1;
  auto taken = std::move(m);
  CHECK(taken.size() == 1);
  CHECK(m.empty()); // NOLINT(bugprone-use-after-move): the property tested
  CHECK(m.find("a") == nullptr);
  m["b"] = 2;
  CHECK(contents(m) == std::map<std::string, int>{{"b", 2}});
  map_type other;
  other = std::move(taken);
  CHECK(taken.empty()); // NOLINT(bugprone-use-after-move)
  CHECK(*other.find("a") == 1);
}
