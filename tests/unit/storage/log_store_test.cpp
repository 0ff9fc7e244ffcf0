// The RocksDB log store: what a replica restarts from is exactly what it
// persisted (Figure 2's persistent state, §5.3 log replacement, §7
// snapshots and compaction), for many groups in one database, and a failed
// write or fsync stops the store for good (fail-stop).
#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "storage/log_store.hpp"

#include "harness.hpp"

#include <rocksdb/db.h>

#include <filesystem>
#include <fstream>

using namespace ees;
using namespace ees::storage;
using namespace ees::storage::test;

namespace {

std::unique_ptr<log_store> open_store(const std::string& dir,
                                      std::shared_ptr<rocksdb::Env> env = {}) {
  log_store_options opts;
  opts.dir = dir;
  opts.env = std::move(env);
  auto store = log_store::open(opts);
  REQUIRE_MESSAGE(store, to_string(store.error()));
  return std::move(*store);
}

raft::persistent_state load(log_store& store, std::uint64_t g) {
  auto st = store.load(group_id{g});
  REQUIRE_MESSAGE(st, to_string(st.error()));
  return std::move(*st);
}

void write(log_store& store, std::vector<group_write> batch) {
  auto st = store.write(batch);
  REQUIRE_MESSAGE(st, to_string(st.error()));
}

group_write gw(std::uint64_t g, std::vector<raft::log_entry> es,
               std::optional<raft::hard_state> state = std::nullopt,
               std::optional<raft::snapshot_meta> snapshot = std::nullopt) {
  return group_write{group_id{g}, state, std::move(snapshot), std::move(es)};
}

raft::persistent_state expected(raft::hard_state state,
                                raft::snapshot_meta snapshot,
                                std::vector<raft::log_entry> es) {
  return raft::persistent_state{state, std::move(snapshot), std::move(es)};
}

std::vector<raft::log_entry> concat(std::vector<raft::log_entry> a,
                                    const std::vector<raft::log_entry>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

} // namespace

TEST_CASE("Figure 2: an unknown group loads as the initial state") {
  temp_dir tmp;
  auto store = open_store(tmp.path());
  CHECK(load(*store, 1) == raft::persistent_state{});
  auto gs = store->groups();
  REQUIRE(gs);
  CHECK(gs->empty());
}

TEST_CASE("Figure 2: hard state, snapshot and entries survive a reopen "
          "exactly") {
  temp_dir tmp;
  auto want = expected(hs(3, 2, 7), snap(4, 2, members({1, 2, 3}, {4})),
                       concat(entries(5, 6, 2), entries(7, 9, 3)));
  want.entries[1].type = raft::entry_type::config;
  want.entries[2].type = raft::entry_type::noop;
  {
    auto store = open_store(tmp.path());
    write(*store, {gw(1, {}, std::nullopt, want.snapshot)});
    write(*store, {gw(1, {want.entries[0], want.entries[1]}, hs(2, 1, 4))});
    write(*store,
          {gw(1, {want.entries.begin() + 2, want.entries.end()}, want.state)});
    CHECK(load(*store, 1) == want);
  }
  auto store = open_store(tmp.path());
  CHECK(load(*store, 1) == want);
}

TEST_CASE("durability: a WAL preallocated with its size set, as a crash "
          "leaves it (zeros to its end), recovers every synced write") {
  temp_dir live;
  temp_dir crashed;
  auto want = expected(hs(2, 1, 40), {}, entries(1, 50, 2));
  auto store = open_store(live.path());
  for (std::uint64_t i = 1; i <= 50; i += 10)
    write(*store, {gw(1, entries(i, i + 9, 2), hs(2, 1, i - 1))});
  write(*store, {gw(1, {}, want.state)});
  // The open WAL is as long as its preallocation, zeros after the records.
  std::string wal;
  for (const auto& f : std::filesystem::directory_iterator{live.path()})
    if (f.path().extension() == ".log")
      wal = f.path().string();
  REQUIRE(!wal.empty());
  auto size = std::filesystem::file_size(wal);
  CHECK(size >= (1u << 20));
  {
    std::ifstream in{wal, std::ios::binary};
    in.seekg(static_cast<std::streamoff>(size - 4096));
    std::string tail(4096, 'x');
    in.read(tail.data(), 4096);
    CHECK(tail == std::string(4096, '\0'));
  }
  // What a kill -9 leaves: the files as they are while the store is open
  // (every write above was synced).
  std::filesystem::copy(live.path(), crashed.path(),
                        std::filesystem::copy_options::recursive
                          | std::filesystem::copy_options::overwrite_existing);
  store.reset();
  {
    auto recovered = open_store(crashed.path());
    CHECK(load(*recovered, 1) == want);
    write(*recovered, {gw(1, entries(51, 51, 3), hs(3, 0, 50))});
  }
  // A clean close truncates the WAL; the store reopens with the new write.
  auto reopened = open_store(crashed.path());
  auto after = load(*reopened, 1);
  CHECK(after.entries.size() == 51);
  CHECK(after.state == hs(3, 0, 50));
}

TEST_CASE("§5.3 entries replace the stored suffix from their first index") {
  temp_dir tmp;
  auto store = open_store(tmp.path());
  write(*store, {gw(1, entries(1, 6, 1), hs(1, 1, 0))});
  SUBCASE("shorter replacement drops the tail") {
    write(*store, {gw(1, entries(3, 4, 2), hs(2, 2, 0))});
    auto want
      = expected(hs(2, 2, 0), {}, concat(entries(1, 2, 1), entries(3, 4, 2)));
    CHECK(load(*store, 1) == want);
    store.reset();
    store = open_store(tmp.path());
    CHECK(load(*store, 1) == want);
  }
  SUBCASE("replacement after a reopen") {
    // The store learns each group's last index lazily; the first write after
    // opening must still truncate.
    store.reset();
    store = open_store(tmp.path());
    write(*store, {gw(1, entries(2, 3, 3))});
    CHECK(load(*store, 1).entries
          == concat(entries(1, 1, 1), entries(2, 3, 3)));
  }
  SUBCASE("replacement after a load") {
    store.reset();
    store = open_store(tmp.path());
    CHECK(load(*store, 1).entries.size() == 6);
    write(*store, {gw(1, entries(6, 6, 2))});
    write(*store, {gw(1, entries(2, 2, 3))});
    CHECK(load(*store, 1).entries
          == concat(entries(1, 1, 1), entries(2, 2, 3)));
  }
  SUBCASE("a plain append keeps everything") {
    write(*store, {gw(1, entries(7, 8, 1))});
    CHECK(load(*store, 1).entries == entries(1, 8, 1));
  }
  SUBCASE("hard state alone leaves the log") {
    write(*store, {gw(1, {}, hs(5, 0, 6))});
    CHECK(load(*store, 1) == expected(hs(5, 0, 6), {}, entries(1, 6, 1)));
  }
}

TEST_CASE("§7 an installed snapshot replaces the whole log") {
  temp_dir tmp;
  auto store = open_store(tmp.path());
  write(*store, {gw(1, entries(1, 10, 1), hs(1, 1, 5))});
  SUBCASE("snapshot beyond the log") {
    write(*store, {gw(1, {}, hs(2, 0, 20), snap(20, 2, members({4, 5, 6})))});
    auto want = expected(hs(2, 0, 20), snap(20, 2, members({4, 5, 6})), {});
    CHECK(load(*store, 1) == want);
    store.reset();
    store = open_store(tmp.path());
    CHECK(load(*store, 1) == want);
    write(*store, {gw(1, entries(21, 22, 2))});
    want.entries = entries(21, 22, 2);
    CHECK(load(*store, 1) == want);
  }
  SUBCASE("snapshot inside the log drops the entries after it too") {
    write(*store, {gw(1, {}, std::nullopt, snap(4, 1))});
    CHECK(load(*store, 1) == expected(hs(1, 1, 5), snap(4, 1), {}));
  }
  SUBCASE("snapshot and entries in one write") {
    write(*store,
          {gw(1, entries(31, 33, 3), hs(3, 0, 30), snap(30, 3, members({1})))});
    CHECK(
      load(*store, 1)
      == expected(hs(3, 0, 30), snap(30, 3, members({1})), entries(31, 33, 3)));
  }
}

TEST_CASE("§7 compaction drops entries up to the snapshot and records it") {
  temp_dir tmp;
  auto store = open_store(tmp.path());
  write(*store,
        {gw(1, concat(entries(1, 5, 1), entries(6, 10, 2)), hs(2, 1, 10))});
  REQUIRE(store->compact(group_id{1}, snap(6, 2, members({1, 2}))));
  auto want
    = expected(hs(2, 1, 10), snap(6, 2, members({1, 2})), entries(7, 10, 2));
  CHECK(load(*store, 1) == want);
  SUBCASE("an older or equal compaction is ignored") {
    REQUIRE(store->compact(group_id{1}, snap(3, 1)));
    REQUIRE(store->compact(group_id{1}, snap(6, 2)));
    CHECK(load(*store, 1) == want);
  }
  SUBCASE("compaction survives a reopen, and appends continue") {
    store.reset();
    store = open_store(tmp.path());
    CHECK(load(*store, 1) == want);
    write(*store, {gw(1, entries(11, 11, 2))});
    REQUIRE(store->compact(group_id{1}, snap(10, 2, members({1, 2}))));
    CHECK(load(*store, 1)
          == expected(hs(2, 1, 10), snap(10, 2, members({1, 2})),
                      entries(11, 11, 2)));
  }
  SUBCASE("compacting the whole log leaves an empty log") {
    REQUIRE(store->compact(group_id{1}, snap(10, 2)));
    CHECK(load(*store, 1) == expected(hs(2, 1, 10), snap(10, 2), {}));
  }
}

TEST_CASE("groups written in one batch stay independent") {
  temp_dir tmp;
  auto store = open_store(tmp.path());
  write(*store, {
                  gw(1, entries(1, 3, 1), hs(1, 1, 0)),
                  gw(2, entries(1, 5, 4), hs(4, 2, 3)),
                  gw(3, {}, hs(9, 0, 0), snap(50, 8)),
                });
  write(*store, {
                  gw(2, entries(2, 2, 5)),
                  gw(1, entries(4, 4, 1)),
                  gw(3, entries(51, 51, 9)),
                });
  auto check_all = [&] {
    CHECK(load(*store, 1) == expected(hs(1, 1, 0), {}, entries(1, 4, 1)));
    CHECK(
      load(*store, 2)
      == expected(hs(4, 2, 3), {}, concat(entries(1, 1, 4), entries(2, 2, 5))));
    CHECK(load(*store, 3)
          == expected(hs(9, 0, 0), snap(50, 8), entries(51, 51, 9)));
  };
  check_all();
  store.reset();
  store = open_store(tmp.path());
  check_all();
  SUBCASE("compaction and snapshots of one group leave the others") {
    REQUIRE(store->compact(group_id{2}, snap(2, 5)));
    write(*store, {gw(1, {}, std::nullopt, snap(100, 7))});
    CHECK(load(*store, 3)
          == expected(hs(9, 0, 0), snap(50, 8), entries(51, 51, 9)));
    CHECK(load(*store, 2) == expected(hs(4, 2, 3), snap(2, 5), {}));
    CHECK(load(*store, 1) == expected(hs(1, 1, 0), snap(100, 7), {}));
  }
}

TEST_CASE("writes for the same group in one batch apply in order") {
  temp_dir tmp;
  auto store = open_store(tmp.path());
  write(*store, {
                  gw(1, entries(1, 5, 1), hs(1, 1, 0)),
                  gw(1, entries(3, 3, 2), hs(2, 0, 0)),
                  gw(1, entries(4, 4, 2)),
                });
  CHECK(
    load(*store, 1)
    == expected(hs(2, 0, 0), {}, concat(entries(1, 2, 1), entries(3, 4, 2))));
}

TEST_CASE("groups() lists registered groups in order; remove_group deletes "
          "everything of one group") {
  temp_dir tmp;
  auto store = open_store(tmp.path());
  for (auto g : {7u, 3u, 300u, 3u})
    REQUIRE(store->register_group(group_id{g}));
  REQUIRE(store->register_group(group_id{UINT64_MAX}));
  write(*store,
        {gw(3, entries(1, 3, 1), hs(1, 1, 1), std::nullopt),
         gw(7, entries(1, 2, 1), hs(1, 2, 1)), gw(300, entries(1, 1, 1))});
  REQUIRE(store->compact(group_id{3}, snap(1, 1)));
  auto gs = store->groups();
  REQUIRE(gs);
  CHECK(*gs
        == std::vector<group_id>{group_id{3}, group_id{7}, group_id{300},
                                 group_id{UINT64_MAX}});
  REQUIRE(store->remove_group(group_id{3}));
  REQUIRE(store->remove_group(group_id{UINT64_MAX}));
  REQUIRE(store->remove_group(group_id{12345})); // idempotent
  store.reset();
  store = open_store(tmp.path());
  gs = store->groups();
  REQUIRE(gs);
  CHECK(*gs == std::vector<group_id>{group_id{7}, group_id{300}});
  CHECK(load(*store, 3) == raft::persistent_state{});
  CHECK(load(*store, 7) == expected(hs(1, 2, 1), {}, entries(1, 2, 1)));
  CHECK(load(*store, 300) == expected({}, {}, entries(1, 1, 1)));
  // A removed group starts from scratch when written again.
  write(*store, {gw(3, entries(1, 1, 5))});
  CHECK(load(*store, 3) == expected({}, {}, entries(1, 1, 5)));
}

TEST_CASE("write rejects batches that break the ready contract, writing "
          "nothing") {
  temp_dir tmp;
  auto store = open_store(tmp.path());
  write(*store, {gw(1, entries(1, 2, 1))});
  auto reject = [&](std::vector<group_write> batch) {
    auto st = store->write(batch);
    REQUIRE_FALSE(st);
    CHECK(st.error().code == storage_errc::invalid_argument);
  };
  auto gap = entries(3, 4, 1);
  gap[1].index = log_index{5};
  reject({gw(2, entries(1, 1, 1)), gw(1, gap)});
  reject({gw(1, {entry(0, 1)})});
  reject({gw(1, entries(5, 5, 1), std::nullopt, snap(5, 1))});
  CHECK_FALSE(store->failure()); // not latched
  CHECK(load(*store, 1) == expected({}, {}, entries(1, 2, 1)));
  CHECK(load(*store, 2) == raft::persistent_state{});
  CHECK(store->write({}));
}

TEST_CASE("load reports corrupted records and broken logs as corruption") {
  temp_dir tmp;
  auto raw_put = [&](const std::string& key, const std::string& value) {
    rocksdb::DB* db = nullptr;
    rocksdb::Options opts;
    REQUIRE(rocksdb::DB::Open(opts, tmp.path(), &db).ok());
    std::unique_ptr<rocksdb::DB> guard{db};
    rocksdb::WriteOptions wo;
    wo.sync = true;
    REQUIRE(db->Put(wo, key, value).ok());
  };
  {
    auto store = open_store(tmp.path());
    write(*store, {gw(1, entries(1, 5, 2), hs(2, 1, 0))});
  }
  auto load_error = [&](std::uint64_t g) {
    auto store = open_store(tmp.path());
    auto st = store->load(group_id{g});
    REQUIRE_FALSE(st);
    CHECK(st.error().code == storage_errc::corruption);
    CHECK(st.error().message.find("g=" + std::to_string(g))
          != std::string::npos);
  };
  SUBCASE("garbage hard state") {
    raw_put(keys::hard_state_key(group_id{1}), "\x01garbage");
    load_error(1);
  }
  SUBCASE("garbage snapshot meta") {
    raw_put(keys::snapshot_meta_key(group_id{1}), std::string(3, '\x01'));
    load_error(1);
  }
  SUBCASE("garbage entry") {
    raw_put(keys::entry_key(group_id{1}, log_index{3}), "\x01trunc");
    load_error(1);
  }
  SUBCASE("a gap in the log") {
    raw_put(keys::entry_key(group_id{1}, log_index{7}), encode(entry(7, 2)));
    load_error(1);
  }
  SUBCASE("an entry stored under another index") {
    raw_put(keys::entry_key(group_id{1}, log_index{6}), encode(entry(9, 2)));
    load_error(1);
  }
  SUBCASE("a term that decreases") {
    raw_put(keys::entry_key(group_id{1}, log_index{6}), encode(entry(6, 1)));
    load_error(1);
  }
  SUBCASE("the log does not start right after the snapshot") {
    raw_put(keys::snapshot_meta_key(group_id{2}), encode(snap(3, 1)));
    raw_put(keys::entry_key(group_id{2}, log_index{5}), encode(entry(5, 1)));
    load_error(2);
  }
}

TEST_CASE("fail-stop: a failed write or fsync latches the error, and what "
          "was acknowledged before survives") {
  temp_dir tmp;
  auto sw = std::make_shared<fault_switch>();
  auto store = open_store(tmp.path(), make_faulty_env(sw));
  REQUIRE(store->register_group(group_id{1}));
  write(*store, {gw(1, entries(1, 3, 1), hs(1, 1, 2)),
                 gw(2, entries(1, 1, 1), hs(1, 2, 0))});
  auto acknowledged1 = load(*store, 1);
  auto acknowledged2 = load(*store, 2);
  SUBCASE("the write fails") {
    sw->fail_writes = true;
  }
  SUBCASE("the fsync fails") {
    sw->fail_syncs = true;
  }
  auto st = store->write({gw(1, entries(4, 5, 1), hs(2, 0, 3))});
  REQUIRE_FALSE(st);
  CHECK(sw->injected > 0);
  CHECK(st.error().code == storage_errc::io_error);
  REQUIRE(store->failure());
  CHECK(*store->failure() == st.error());
  // The disk works again, but the store does not retry: every later call
  // returns the first error.
  sw->fail_writes = false;
  sw->fail_syncs = false;
  auto injected = sw->injected.load();
  auto again = store->write({gw(2, entries(2, 2, 1))});
  REQUIRE_FALSE(again);
  CHECK(again.error() == st.error());
  auto reg = store->register_group(group_id{9});
  REQUIRE_FALSE(reg);
  CHECK(reg.error() == st.error());
  auto comp = store->compact(group_id{1}, snap(1, 1));
  REQUIRE_FALSE(comp);
  CHECK(comp.error() == st.error());
  auto rm = store->remove_group(group_id{2});
  REQUIRE_FALSE(rm);
  CHECK(rm.error() == st.error());
  auto ld = store->load(group_id{1});
  REQUIRE_FALSE(ld);
  CHECK(ld.error() == st.error());
  CHECK_FALSE(store->groups());
  CHECK(sw->injected == injected);
  store.reset();
  // Restart on a healthy disk: everything acknowledged is there. (The failed
  // write may or may not be: its data may have reached the disk before the
  // fsync failed, and it was never acknowledged either way.)
  store = open_store(tmp.path());
  auto after1 = load(*store, 1);
  CHECK(after1.entries.size() >= 3);
  after1.entries.resize(std::min<std::size_t>(after1.entries.size(), 3));
  CHECK(after1.entries == acknowledged1.entries);
  CHECK(after1.state.current_term >= acknowledged1.state.current_term);
  CHECK(load(*store, 2) == acknowledged2);
  auto gs = store->groups();
  REQUIRE(gs);
  CHECK(*gs == std::vector<group_id>{group_id{1}});
  CHECK(store->write({gw(2, entries(2, 2, 1))}));
}

TEST_CASE("thesis §3.8 a batch of lazy writes is not synced; the next synced "
          "batch makes it durable with itself") {
  temp_dir tmp;
  auto sw = std::make_shared<fault_switch>();
  auto store = open_store(tmp.path(), make_faulty_env(sw));
  REQUIRE(store->register_group(group_id{1}));
  write(*store, {gw(1, entries(1, 3, 1), hs(1, 1, 1))});
  auto lazy = gw(1, {}, hs(1, 1, 3));
  lazy.sync = false;
  auto before = sw->syncs.load();
  write(*store, {lazy});
  CHECK(sw->syncs == before);
  CHECK(load(*store, 1).state.commit_index == log_index{3});
  // Mixed with a write that must be synced, the batch is synced.
  write(*store, {lazy, gw(1, entries(4, 4, 1))});
  CHECK(sw->syncs > before);
  store.reset();
  store = open_store(tmp.path());
  auto after = load(*store, 1);
  CHECK(after.state.commit_index == log_index{3});
  CHECK(after.entries.size() == 4);
}
