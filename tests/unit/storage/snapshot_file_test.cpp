// Local snapshot files (§7): saved atomically, loaded newest-valid-first,
// corruption detected and skipped, only the newest N kept.
#include "storage/snapshot_file.hpp"

#include "harness.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

using namespace ees;
using namespace ees::storage;
using namespace ees::storage::test;

namespace {

using file_ids = std::vector<std::pair<log_index, term_t>>;

file_ids
ids(std::initializer_list<std::pair<std::uint64_t, std::uint64_t>> xs) {
  file_ids out;
  for (auto [i, t] : xs)
    out.emplace_back(log_index{i}, term_t{t});
  return out;
}

file_ids list(const snapshot_files& files, std::uint64_t g) {
  auto xs = files.list(group_id{g});
  REQUIRE_MESSAGE(xs, to_string(xs.error()));
  return *xs;
}

void save(snapshot_files& files, std::uint64_t g,
          const raft::snapshot_meta& meta, const std::string& data) {
  auto st = files.save(group_id{g}, meta, data);
  REQUIRE_MESSAGE(st, to_string(st.error()));
}

std::optional<snapshot>
load_latest(const snapshot_files& files, std::uint64_t g,
            std::vector<storage_error>* skipped = nullptr) {
  auto s = files.load_latest(group_id{g}, skipped);
  REQUIRE_MESSAGE(s, to_string(s.error()));
  return *s;
}

std::string read_all(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, {}};
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << bytes;
}

std::vector<std::string> dir_names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator{dir})
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

TEST_CASE("snapshot file bytes round-trip and detect any corruption") {
  auto meta = snap(12, 3, members({1, 2, 3}, {4}));
  std::string data = "state machine bytes";
  data += std::string("\0\xff", 2);
  auto bytes = encode_snapshot_file(meta, data);
  CHECK(static_cast<std::uint8_t>(bytes[0]) == snapshot_file_version);
  auto back = decode_snapshot_file(bytes);
  REQUIRE(back);
  CHECK(*back == snapshot{meta, data});
  auto empty = decode_snapshot_file(encode_snapshot_file({}, ""));
  REQUIRE(empty);
  CHECK(*empty == snapshot{raft::snapshot_meta{}, ""});
  SUBCASE("every single-bit flip") {
    for (std::size_t i = 1; i < bytes.size(); ++i)
      for (int bit = 0; bit < 8; ++bit) {
        auto bad = bytes;
        bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
        auto r = decode_snapshot_file(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == storage_errc::corruption);
      }
  }
  SUBCASE("every truncation") {
    for (std::size_t len = 0; len < bytes.size(); ++len)
      CHECK_FALSE(decode_snapshot_file(std::string_view{bytes}.substr(0, len)));
  }
  SUBCASE("trailing bytes") {
    CHECK_FALSE(decode_snapshot_file(bytes + "x"));
  }
  SUBCASE("a newer version") {
    auto newer = bytes;
    newer[0] = static_cast<char>(snapshot_file_version + 1);
    auto r = decode_snapshot_file(newer);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == storage_errc::unsupported_version);
  }
}

TEST_CASE("save then load_latest returns the newest snapshot of each group") {
  temp_dir tmp;
  snapshot_files files{tmp.path() + "/data"};
  CHECK_FALSE(load_latest(files, 1));
  CHECK(list(files, 1).empty());
  save(files, 1, snap(10, 2), "ten");
  save(files, 2, snap(5, 1, members({4, 5, 6})), "five");
  save(files, 1, snap(20, 3), "twenty");
  auto s1 = load_latest(files, 1);
  REQUIRE(s1);
  CHECK(*s1 == snapshot{snap(20, 3), "twenty"});
  auto s2 = load_latest(files, 2);
  REQUIRE(s2);
  CHECK(*s2 == snapshot{snap(5, 1, members({4, 5, 6})), "five"});
  CHECK(files.group_dir(group_id{1}) == tmp.path() + "/data/snapshots/1");
  // Names sort like (index, term); no temporary file is left behind.
  CHECK(dir_names(files.group_dir(group_id{1}))
        == std::vector<std::string>{
          "00000000000000000010-00000000000000000002.snap",
          "00000000000000000020-00000000000000000003.snap"});
  // A fresh instance (a restart) sees the same.
  snapshot_files again{tmp.path() + "/data"};
  CHECK(load_latest(again, 1) == s1);
}

TEST_CASE("save keeps only the newest N snapshots and removes leftovers") {
  temp_dir tmp;
  SUBCASE("default N = 2") {
    snapshot_files files{tmp.path()};
    for (std::uint64_t i = 1; i <= 5; ++i)
      save(files, 1, snap(i * 10, i), std::to_string(i));
    CHECK(list(files, 1) == ids({{50, 5}, {40, 4}}));
  }
  SUBCASE("N = 3, and an older save than the newest kept") {
    snapshot_files files{tmp.path(), 3};
    save(files, 1, snap(30, 2), "a");
    save(files, 1, snap(40, 2), "b");
    save(files, 1, snap(50, 3), "c");
    save(files, 1, snap(20, 1), "old");
    CHECK(list(files, 1) == ids({{50, 3}, {40, 2}, {30, 2}}));
  }
  SUBCASE("same index, higher term is newer") {
    snapshot_files files{tmp.path(), 1};
    save(files, 1, snap(30, 2), "a");
    save(files, 1, snap(30, 3), "b");
    CHECK(list(files, 1) == ids({{30, 3}}));
    CHECK(load_latest(files, 1)->data == "b");
  }
  SUBCASE("interrupted saves leave .tmp files that the next save deletes") {
    snapshot_files files{tmp.path()};
    save(files, 1, snap(10, 1), "a");
    auto dir = files.group_dir(group_id{1});
    write_all(dir + "/00000000000000000011-00000000000000000001.snap.tmp",
              "half a snapsh");
    CHECK(load_latest(files, 1)->data == "a");
    save(files, 1, snap(12, 1), "b");
    CHECK(dir_names(dir)
          == std::vector<std::string>{
            "00000000000000000010-00000000000000000001.snap",
            "00000000000000000012-00000000000000000001.snap"});
  }
  SUBCASE("saving the same snapshot twice replaces it") {
    snapshot_files files{tmp.path()};
    save(files, 1, snap(10, 1), "a");
    save(files, 1, snap(10, 1), "a2");
    CHECK(list(files, 1) == ids({{10, 1}}));
    CHECK(load_latest(files, 1)->data == "a2");
  }
}

TEST_CASE("load_latest skips corrupted snapshot files for older valid ones") {
  temp_dir tmp;
  snapshot_files files{tmp.path(), 3};
  save(files, 1, snap(10, 1), "ten");
  save(files, 1, snap(20, 1), "twenty");
  save(files, 1, snap(30, 2), "thirty");
  auto dir = files.group_dir(group_id{1});
  auto newest = dir + "/00000000000000000030-00000000000000000002.snap";
  auto middle = dir + "/00000000000000000020-00000000000000000001.snap";
  std::vector<storage_error> skipped;
  SUBCASE("a flipped byte in the newest") {
    auto bytes = read_all(newest);
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 1);
    write_all(newest, bytes);
    auto s = load_latest(files, 1, &skipped);
    REQUIRE(s);
    CHECK(*s == snapshot{snap(20, 1), "twenty"});
    REQUIRE(skipped.size() == 1);
    CHECK(skipped[0].code == storage_errc::corruption);
    CHECK(skipped[0].message.find(newest) != std::string::npos);
  }
  SUBCASE("the two newest truncated or empty") {
    auto bytes = read_all(newest);
    write_all(newest, bytes.substr(0, bytes.size() - 1));
    write_all(middle, "");
    auto s = load_latest(files, 1, &skipped);
    REQUIRE(s);
    CHECK(*s == snapshot{snap(10, 1), "ten"});
    CHECK(skipped.size() == 2);
  }
  SUBCASE("a valid file under the wrong name") {
    std::filesystem::remove(newest);
    std::filesystem::copy_file(
      middle, dir + "/00000000000000000025-00000000000000000001.snap");
    auto s = load_latest(files, 1, &skipped);
    REQUIRE(s);
    CHECK(*s == snapshot{snap(20, 1), "twenty"});
    CHECK(skipped.size() == 1);
  }
  SUBCASE("all corrupted: none, every file reported") {
    for (const auto& name : dir_names(dir))
      write_all(dir + "/" + name, "junk");
    CHECK_FALSE(load_latest(files, 1, &skipped));
    CHECK(skipped.size() == 3);
  }
  SUBCASE("foreign files are ignored") {
    write_all(dir + "/notes.txt", "hello");
    write_all(dir + "/99-1.snap", "short name");
    CHECK(load_latest(files, 1)->data == "thirty");
    CHECK(list(files, 1).size() == 3);
  }
}

TEST_CASE("remove deletes a group's snapshots only") {
  temp_dir tmp;
  snapshot_files files{tmp.path()};
  save(files, 1, snap(10, 1), "a");
  save(files, 2, snap(10, 1), "b");
  REQUIRE(files.remove(group_id{1}));
  REQUIRE(files.remove(group_id{1})); // idempotent
  CHECK_FALSE(std::filesystem::exists(files.group_dir(group_id{1})));
  CHECK_FALSE(load_latest(files, 1));
  CHECK(load_latest(files, 2)->data == "b");
}

TEST_CASE("save reports an unwritable directory as io_error") {
  temp_dir tmp;
  // A regular file where the data directory should be.
  write_all(tmp.path() + "/file", "x");
  snapshot_files files{tmp.path() + "/file"};
  auto st = files.save(group_id{1}, snap(1, 1), "a");
  REQUIRE_FALSE(st);
  CHECK(st.error().code == storage_errc::io_error);
}
