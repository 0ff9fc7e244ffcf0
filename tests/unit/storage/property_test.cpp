// Property: for any sequence of ready-like writes, compactions and group
// registrations, what the log store loads back (also after reopening) equals
// an in-memory model that applies the same operations by the book: §5.3
// suffix replacement, §7 snapshots and compaction, independent groups.
#include "storage/log_store.hpp"

#include "harness.hpp"

#include <cstdint>
#include <map>
#include <random>
#include <set>

using namespace ees;
using namespace ees::storage;
using namespace ees::storage::test;

namespace {

/// One group as the model sees it.
struct model_group {
  raft::hard_state state;
  raft::snapshot_meta snapshot;
  /// Entries after the snapshot, contiguous.
  std::map<log_index, raft::log_entry> log;

  log_index last() const {
    return log.empty() ? snapshot.last_index : log.rbegin()->first;
  }
  term_t term_at(log_index i) const {
    return i == snapshot.last_index ? snapshot.last_term : log.at(i).term;
  }
  raft::persistent_state expected() const {
    raft::persistent_state out{state, snapshot, {}};
    for (const auto& [i, e] : log)
      out.entries.push_back(e);
    return out;
  }

  /// The ready contract, as protocol/raft/ready.hpp states it.
  void apply(const group_write& w) {
    if (w.snapshot) {
      snapshot = *w.snapshot;
      log.clear();
    }
    if (!w.entries.empty()) {
      log.erase(log.lower_bound(w.entries.front().index), log.end());
      for (const auto& e : w.entries)
        log[e.index] = e;
    }
    if (w.state)
      state = *w.state;
  }

  void compact(const raft::snapshot_meta& meta) {
    if (meta.last_index <= snapshot.last_index)
      return;
    snapshot = meta;
    log.erase(log.begin(), log.upper_bound(meta.last_index));
  }
};

class generator {
public:
  explicit generator(std::uint64_t seed) : rng_(seed) {
    // nop
  }

  /// Uniform in [lo, hi].
  std::uint64_t pick(std::uint64_t lo, std::uint64_t hi) {
    return lo + rng_() % (hi - lo + 1);
  }
  bool chance(std::uint64_t one_in) {
    return rng_() % one_in == 0;
  }

  std::string payload() {
    std::string s(pick(0, 40), '\0');
    for (auto& ch : s)
      ch = static_cast<char>(rng_());
    return s;
  }

  raft::membership membership() {
    raft::membership m;
    for (std::uint64_t id = 1; id <= 5; ++id) {
      auto r = pick(0, 2);
      if (r == 1)
        m.voters.insert(node_id{id});
      else if (r == 2)
        m.learners.insert(node_id{id});
    }
    return m;
  }

  raft::hard_state hard_state() {
    return hs(pick(0, 50), pick(0, 5), pick(0, 200));
  }

  std::vector<raft::log_entry> run(log_index first, std::uint64_t count,
                                   term_t term) {
    std::vector<raft::log_entry> out;
    for (std::uint64_t k = 0; k < count; ++k) {
      if (chance(4))
        ++term;
      auto type = static_cast<raft::entry_type>(pick(0, 2));
      out.push_back(entry(first.value + k, term.value, payload(), type));
    }
    return out;
  }

  /// A write a core could produce for `m`: an append, a suffix
  /// replacement, a snapshot install, or just a hard state.
  group_write write_for(group_id g, const model_group& m) {
    group_write w;
    w.group = g;
    auto last = m.last();
    switch (pick(0, 9)) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4: // append
        w.entries = run(last + 1, pick(1, 8), m.term_at(last));
        break;
      case 5:
      case 6: { // replace a suffix (§5.3)
        auto first
          = log_index{pick(m.snapshot.last_index.value + 1, last.value + 1)};
        w.entries = run(first, pick(1, 5), m.term_at(first - 1) + pick(0, 1));
        break;
      }
      case 7: { // install a snapshot (§7), maybe with entries after it
        auto index
          = log_index{pick(m.snapshot.last_index.value + 1, last.value + 10)};
        auto term = m.term_at(last) + pick(0, 2);
        w.snapshot = raft::snapshot_meta{index, term, membership()};
        if (chance(2))
          w.entries = run(index + 1, pick(1, 4), term);
        break;
      }
      default:
        w.state = hard_state();
        break;
    }
    if (!w.state && chance(2))
      w.state = hard_state();
    return w;
  }

private:
  std::mt19937_64 rng_;
};

struct harness {
  explicit harness(const std::string& dir) : dir(dir) {
    reopen();
  }

  void reopen() {
    store.reset();
    log_store_options opts;
    opts.dir = dir;
    // The property is about content, not crash durability (the fail-stop
    // test covers that), and every reopen closes the store cleanly, which
    // flushes the WAL. Skipping the fsyncs makes the run 20x faster.
    opts.sync = false;
    auto s = log_store::open(opts);
    REQUIRE_MESSAGE(s, to_string(s.error()));
    store = std::move(*s);
  }

  void check(std::uint64_t g) {
    CAPTURE(g);
    auto st = store->load(group_id{g});
    REQUIRE_MESSAGE(st, to_string(st.error()));
    CHECK(*st == model[group_id{g}].expected());
  }

  void check_all() {
    for (std::uint64_t g = 1; g <= groups; ++g)
      check(g);
    auto gs = store->groups();
    REQUIRE(gs);
    CHECK(*gs == std::vector<group_id>(registered.begin(), registered.end()));
  }

  static constexpr std::uint64_t groups = 6;
  std::string dir;
  std::unique_ptr<log_store> store;
  std::map<group_id, model_group> model;
  std::set<group_id> registered;
};

} // namespace

TEST_CASE("log_store loads exactly what a model of the ready contract "
          "predicts, across random writes and reopens") {
  for (std::uint64_t seed : {1, 2, 3, 4}) {
    CAPTURE(seed);
    temp_dir tmp;
    harness h{tmp.path()};
    generator gen{seed};
    for (int step = 0; step < 500; ++step) {
      CAPTURE(step);
      auto g = group_id{gen.pick(1, harness::groups)};
      auto& m = h.model[g];
      switch (gen.pick(0, 19)) {
        case 0: { // compaction, sometimes stale
          auto last = m.last();
          raft::snapshot_meta meta;
          if (last > m.snapshot.last_index && !gen.chance(5)) {
            meta.last_index = log_index{
              gen.pick(m.snapshot.last_index.value + 1, last.value)};
            meta.last_term = m.term_at(meta.last_index);
          } else {
            meta.last_index
              = log_index{gen.pick(0, m.snapshot.last_index.value)};
            meta.last_term = term_t{gen.pick(0, 9)};
          }
          meta.config = gen.membership();
          auto st = h.store->compact(g, meta);
          REQUIRE_MESSAGE(st, to_string(st.error()));
          m.compact(meta);
          break;
        }
        case 1: {
          REQUIRE(h.store->register_group(g));
          h.registered.insert(g);
          break;
        }
        case 2: {
          if (!gen.chance(3))
            break;
          REQUIRE(h.store->remove_group(g));
          h.registered.erase(g);
          m = model_group{};
          break;
        }
        case 3: // a restart; rarer, since opening RocksDB costs fsyncs
          if (!gen.chance(3))
            break;
          h.reopen();
          h.check_all();
          break;
        case 4:
          h.check(g.value);
          break;
        default: { // one batch, one fsync, several groups
          std::vector<group_write> batch;
          auto n = gen.pick(1, 4);
          for (std::uint64_t k = 0; k < n; ++k) {
            auto bg = group_id{gen.pick(1, harness::groups)};
            batch.push_back(gen.write_for(bg, h.model[bg]));
            h.model[bg].apply(batch.back());
          }
          auto st = h.store->write(batch);
          REQUIRE_MESSAGE(st, to_string(st.error()));
          break;
        }
      }
    }
    h.check_all();
    h.reopen();
    h.check_all();
  }
}
