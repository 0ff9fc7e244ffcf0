// The key layout (style-and-architecture.md §10.5), tested as TiKV's
// components/keys tests do: exact bytes, decoding, sort order and prefix
// containment.
#include "storage/keys.hpp"

#include "harness.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

using namespace ees;
using namespace ees::storage;
using namespace ees::storage::keys;

namespace {

constexpr auto max64 = std::numeric_limits<std::uint64_t>::max();

bool starts_with(const std::string& key, const std::string& prefix) {
  return key.compare(0, prefix.size(), prefix) == 0;
}

} // namespace

TEST_CASE("keys have the documented fixed-width big-endian bytes") {
  auto g = group_id{0x0102030405060708};
  CHECK(raft_prefix(g)
        == std::string("\x01\x02\x01\x02\x03\x04\x05\x06\x07\x08", 10));
  CHECK(entry_key(g, log_index{0x1122})
        == raft_prefix(g) + std::string("\x01\0\0\0\0\0\0\x11\x22", 9));
  CHECK(hard_state_key(g) == raft_prefix(g) + "\x02");
  CHECK(snapshot_meta_key(g) == raft_prefix(g) + "\x03");
  CHECK(group_meta_key(g)
        == std::string("\x01\x03\x01\x02\x03\x04\x05\x06\x07\x08", 10));
  CHECK(entry_key(g, log_index{1}).size() == entry_key_size);
  CHECK(hard_state_key(g).size() == state_key_size);
  CHECK(group_meta_key(g).size() == group_meta_key_size);
}

TEST_CASE("raft keys decode to what they encode") {
  for (auto g :
       {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{1} << 40, max64}) {
    for (auto i :
         {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{256}, max64}) {
      auto key = decode_raft_key(entry_key(group_id{g}, log_index{i}));
      REQUIRE(key);
      CHECK(*key == raft_key{group_id{g}, raft_kind::entry, log_index{i}});
    }
    auto h = decode_raft_key(hard_state_key(group_id{g}));
    REQUIRE(h);
    CHECK(*h == raft_key{group_id{g}, raft_kind::hard_state, log_index{}});
    auto s = decode_raft_key(snapshot_meta_key(group_id{g}));
    REQUIRE(s);
    CHECK(*s == raft_key{group_id{g}, raft_kind::snapshot_meta, log_index{}});
    auto m = decode_group_meta_key(group_meta_key(group_id{g}));
    REQUIRE(m);
    CHECK(*m == group_id{g});
  }
}

TEST_CASE("key decoders reject foreign and malformed keys") {
  auto g = group_id{7};
  auto e = entry_key(g, log_index{3});
  CHECK_FALSE(decode_raft_key(""));
  CHECK_FALSE(decode_raft_key(raft_prefix(g)));
  CHECK_FALSE(decode_raft_key(e.substr(0, e.size() - 1)));
  CHECK_FALSE(decode_raft_key(e + "x"));
  CHECK_FALSE(decode_raft_key(hard_state_key(g) + "x"));
  CHECK_FALSE(decode_raft_key(raft_prefix(g) + "\x04"));
  CHECK_FALSE(decode_raft_key(group_meta_key(g)));
  CHECK_FALSE(decode_group_meta_key(e));
  CHECK_FALSE(decode_group_meta_key(group_meta_key(g) + "x"));
  CHECK_FALSE(decode_group_meta_key(group_meta_begin()));
}

TEST_CASE("byte order of keys is numeric order: entries of a group sort by "
          "index, groups by id, entries before hard state before meta") {
  std::vector<std::string> expected;
  for (auto g : {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{256},
                 std::uint64_t{1} << 40, max64}) {
    for (auto i : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{255},
                   std::uint64_t{256}, std::uint64_t{1} << 33, max64})
      expected.push_back(entry_key(group_id{g}, log_index{i}));
    expected.push_back(hard_state_key(group_id{g}));
    expected.push_back(snapshot_meta_key(group_id{g}));
  }
  for (auto g : {std::uint64_t{0}, std::uint64_t{9}, std::uint64_t{1} << 20})
    expected.push_back(group_meta_key(group_id{g}));
  auto sorted = expected;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == expected);
}

TEST_CASE("ranges contain exactly their keys") {
  auto g = group_id{5};
  auto end = entries_end(g);
  CHECK(entry_key(g, log_index{max64}) < end);
  CHECK(end <= hard_state_key(g));
  CHECK(entry_key(g, log_index{0}) >= raft_prefix(g));

  auto group_end = prefix_successor(raft_prefix(g));
  CHECK(snapshot_meta_key(g) < group_end);
  CHECK(raft_prefix(group_id{6}) >= group_end);
  CHECK_FALSE(starts_with(raft_prefix(group_id{6}), raft_prefix(g)));
  CHECK(starts_with(entry_key(g, log_index{9}), raft_prefix(g)));

  // The last group: its successor is the registration prefix, not empty.
  auto last = prefix_successor(raft_prefix(group_id{max64}));
  CHECK(last == std::string("\x01\x03"));
  CHECK(snapshot_meta_key(group_id{max64}) < last);

  for (auto gid : {std::uint64_t{0}, std::uint64_t{77}, max64}) {
    auto key = group_meta_key(group_id{gid});
    CHECK(key >= group_meta_begin());
    CHECK(key < group_meta_end());
  }
  CHECK(snapshot_meta_key(group_id{max64}) < group_meta_begin());
}

TEST_CASE("prefix_successor increments the last non-0xff byte") {
  CHECK(prefix_successor("ab") == "ac");
  CHECK(prefix_successor(std::string("a\xff\xff", 3)) == "b");
  CHECK(prefix_successor(std::string("\xff\xff", 2)).empty());
  CHECK(prefix_successor("").empty());
}
