#include "storage/log_store.hpp"

#include "storage/codec.hpp"
#include "storage/keys.hpp"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <system_error>
#include <utility>

namespace ees::storage {

namespace {

/// The default file system, except that WAL files are preallocated with
/// their size set (log_store_options::sized_wal).
class sized_wal_fs : public rocksdb::FileSystemWrapper {
public:
  using FileSystemWrapper::FileSystemWrapper;

  const char* Name() const override {
    return "ees.sized_wal";
  }

  rocksdb::FileOptions
  OptimizeForLogWrite(const rocksdb::FileOptions& fo,
                      const rocksdb::DBOptions& db) const override {
    auto out = target()->OptimizeForLogWrite(fo, db);
    out.fallocate_with_keep_size = false;
    return out;
  }
};

std::string tag(group_id group) {
  return "g=" + to_string(group);
}

storage_error from_status(const rocksdb::Status& s, const std::string& what) {
  auto code
    = s.IsCorruption() ? storage_errc::corruption : storage_errc::io_error;
  return storage_error{code, what + ": " + s.ToString()};
}

storage_error with_context(storage_error err, const std::string& what) {
  err.message = what + ": " + err.message;
  return err;
}

storage_error invalid(const std::string& what) {
  return storage_error{storage_errc::invalid_argument, what};
}

constexpr auto max_index = std::numeric_limits<std::uint64_t>::max();

/// Rejects writes the `ready` contract rules out, before anything is written.
status validate(const group_write& w) {
  if (w.entries.empty())
    return {};
  auto first = w.entries.front().index;
  if (first.value == 0)
    return invalid(tag(w.group) + ": entry index 0 (the first index is 1)");
  if (w.snapshot && first <= w.snapshot->last_index)
    return invalid(tag(w.group) + ": entries start at " + to_string(first)
                   + ", not after the snapshot at "
                   + to_string(w.snapshot->last_index));
  for (std::size_t i = 1; i < w.entries.size(); ++i)
    if (w.entries[i].index != w.entries[i - 1].index + 1)
      return invalid(tag(w.group) + ": entries not contiguous at index "
                     + to_string(w.entries[i].index));
  return {};
}

/// Exclusive end key for deleting `group`'s entries up to `index`.
std::string entries_through(group_id group, log_index index) {
  if (index.value == max_index)
    return keys::entries_end(group);
  return keys::entry_key(group, index + 1);
}

} // namespace

log_store::log_store(std::unique_ptr<rocksdb::DB> db,
                     std::shared_ptr<rocksdb::Env> env, bool sync)
  : env_(std::move(env)), db_(std::move(db)), sync_(sync) {
  // nop
}

log_store::~log_store() {
  if (db_) {
    // Errors here cannot be reported; what was acknowledged is durable
    // already, since every write was synced.
    auto s = db_->Close();
    static_cast<void>(s);
  }
}

result<std::unique_ptr<log_store>>
log_store::open(const log_store_options& opts) {
  if (opts.dir.empty())
    return invalid("log_store_options::dir is empty");
  std::error_code ec;
  std::filesystem::create_directories(opts.dir, ec);
  if (ec)
    return storage_error{storage_errc::io_error,
                         "cannot create " + opts.dir + ": " + ec.message()};
  rocksdb::Options options;
  options.create_if_missing = true;
  // Gotcha 15 of the field notes: bound the WAL even if a column family is
  // added later and rarely flushed.
  options.max_total_wal_size = opts.max_total_wal_size;
  // After a crash, recover every record before the first torn one. Records
  // after it were never acknowledged (each write is synced before it is,
  // except a lazy one holding only a commit index, which may be lost), so
  // dropping them is safe; refusing to open would not be.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  options.keep_log_file_num = 4;
  auto env = opts.env;
  if (!env && opts.sized_wal)
    env = std::shared_ptr<rocksdb::Env>{rocksdb::NewCompositeEnv(
      std::make_shared<sized_wal_fs>(rocksdb::FileSystem::Default()))};
  if (env)
    options.env = env.get();
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(options, opts.dir, &raw);
  std::unique_ptr<rocksdb::DB> db{raw};
  if (!s.ok())
    return from_status(s, "cannot open " + opts.dir);
  return std::unique_ptr<log_store>{
    new log_store(std::move(db), std::move(env), opts.sync)};
}

storage_error log_store::latch(storage_error err) {
  failure_ = err;
  return err;
}

status log_store::write(const std::vector<group_write>& batch) {
  if (failure_)
    return *failure_;
  if (batch.empty())
    return {};
  for (const auto& w : batch)
    if (auto st = validate(w); !st)
      return st;
  // Upper bounds of the highest stored entry index that this batch
  // establishes; merged into last_index_ once the batch is durable.
  std::map<group_id, log_index> updates;
  auto bound = [&](group_id g) -> std::optional<log_index> {
    if (auto i = updates.find(g); i != updates.end())
      return i->second;
    if (auto i = last_index_.find(g); i != last_index_.end())
      return i->second;
    return std::nullopt;
  };
  rocksdb::WriteBatch wb;
  auto ok = rocksdb::Status::OK();
  auto check = [&ok](rocksdb::Status s) {
    if (ok.ok() && !s.ok())
      ok = std::move(s);
  };
  for (const auto& w : batch) {
    auto g = w.group;
    if (w.snapshot) {
      // §7: the snapshot replaces the whole log.
      check(
        wb.DeleteRange(keys::entry_key(g, log_index{0}), keys::entries_end(g)));
      check(wb.Put(keys::snapshot_meta_key(g), encode(*w.snapshot)));
      updates[g] = log_index{0};
    }
    if (!w.entries.empty()) {
      // §5.3: replace the stored suffix from entries.front().index on. The
      // puts overwrite [front, back]; only entries after `back` need a
      // delete. A range tombstone per append would pile up and slow reads
      // (like the point tombstones of gotcha 17), so issue one only when
      // entries after `back` may exist: a conflict truncating a longer log,
      // or the first write of a group whose log length is not known yet.
      auto back = w.entries.back().index;
      if (auto b = bound(g); (!b || back < *b) && back.value < max_index)
        check(
          wb.DeleteRange(keys::entry_key(g, back + 1), keys::entries_end(g)));
      for (const auto& e : w.entries)
        check(wb.Put(keys::entry_key(g, e.index), encode(e)));
      updates[g] = back;
    }
    if (w.state)
      check(wb.Put(keys::hard_state_key(g), encode(*w.state)));
  }
  if (!ok.ok()) // Only a batch beyond RocksDB's size limit gets here.
    return invalid("cannot build the write batch: " + ok.ToString());
  rocksdb::WriteOptions wo;
  wo.sync = sync_
            && std::any_of(batch.begin(), batch.end(),
                           [](const group_write& w) { return w.sync; });
  if (auto s = db_->Write(wo, &wb); !s.ok())
    return latch(from_status(s, "write of " + std::to_string(batch.size())
                                  + " group writes failed"));
  for (const auto& [g, i] : updates)
    last_index_[g] = i;
  return {};
}

result<raft::snapshot_meta> log_store::read_snapshot_meta(group_id group) {
  std::string value;
  auto s
    = db_->Get(rocksdb::ReadOptions{}, keys::snapshot_meta_key(group), &value);
  if (s.IsNotFound())
    return raft::snapshot_meta{};
  if (!s.ok())
    return from_status(s, tag(group) + ": cannot read the snapshot meta");
  auto meta = decode_snapshot_meta(value);
  if (!meta)
    return with_context(meta.error(), tag(group));
  return std::move(*meta);
}

result<raft::persistent_state> log_store::load(group_id group) {
  if (failure_)
    return *failure_;
  raft::persistent_state out;
  std::string value;
  auto s
    = db_->Get(rocksdb::ReadOptions{}, keys::hard_state_key(group), &value);
  if (s.ok()) {
    auto hs = decode_hard_state(value);
    if (!hs)
      return with_context(hs.error(), tag(group));
    out.state = *hs;
  } else if (!s.IsNotFound()) {
    return from_status(s, tag(group) + ": cannot read the hard state");
  }
  auto meta = read_snapshot_meta(group);
  if (!meta)
    return meta.error();
  out.snapshot = std::move(*meta);
  auto snap = out.snapshot.last_index;
  if (snap.value == max_index) {
    last_index_[group] = snap;
    return out;
  }
  auto upper = keys::entries_end(group);
  rocksdb::Slice upper_slice{upper};
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro)};
  auto expected = snap + 1;
  auto last_term = out.snapshot.last_term;
  for (it->Seek(keys::entry_key(group, expected)); it->Valid(); it->Next()) {
    auto key = keys::decode_raft_key(
      std::string_view{it->key().data(), it->key().size()});
    if (!key || key->group != group || key->kind != keys::raft_kind::entry)
      return storage_error{storage_errc::corruption,
                           tag(group) + ": unexpected key in the log range"};
    auto e = decode_log_entry(
      std::string_view{it->value().data(), it->value().size()});
    if (!e)
      return with_context(e.error(),
                          tag(group) + " entry " + to_string(key->index));
    if (key->index != expected || e->index != expected)
      return storage_error{storage_errc::corruption,
                           tag(group) + ": log not contiguous: expected "
                             + to_string(expected) + ", found key "
                             + to_string(key->index) + " holding entry "
                             + to_string(e->index)};
    if (e->term < last_term)
      return storage_error{storage_errc::corruption,
                           tag(group) + ": term decreases at entry "
                             + to_string(expected)};
    last_term = e->term;
    out.entries.push_back(std::move(*e));
    ++expected;
  }
  if (!it->status().ok())
    return from_status(it->status(), tag(group) + ": cannot read the log");
  // Every stored entry is now known: nothing after the last one loaded
  // (the scan reached the end of the range), nothing at or below the
  // snapshot (each snapshot deleted them in the same batch).
  last_index_[group] = out.entries.empty() ? snap : out.entries.back().index;
  return out;
}

result<std::vector<group_id>> log_store::groups() {
  if (failure_)
    return *failure_;
  auto upper = keys::group_meta_end();
  rocksdb::Slice upper_slice{upper};
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro)};
  std::vector<group_id> out;
  for (it->Seek(keys::group_meta_begin()); it->Valid(); it->Next()) {
    auto g = keys::decode_group_meta_key(
      std::string_view{it->key().data(), it->key().size()});
    if (!g)
      return storage_error{storage_errc::corruption,
                           "malformed group registration key"};
    out.push_back(*g);
  }
  if (!it->status().ok())
    return from_status(it->status(), "cannot list the groups");
  return out;
}

status log_store::register_group(group_id group) {
  if (failure_)
    return *failure_;
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  // The value is a format version byte, leaving room for per-group
  // metadata later.
  std::string value(1, static_cast<char>(codec_version));
  if (auto s = db_->Put(wo, keys::group_meta_key(group), value); !s.ok())
    return latch(from_status(s, tag(group) + ": cannot register"));
  return {};
}

status log_store::remove_group(group_id group) {
  if (failure_)
    return *failure_;
  auto prefix = keys::raft_prefix(group);
  rocksdb::WriteBatch wb;
  auto s1 = wb.DeleteRange(prefix, keys::prefix_successor(prefix));
  auto s2 = wb.Delete(keys::group_meta_key(group));
  if (!s1.ok() || !s2.ok())
    return invalid(tag(group) + ": cannot build the write batch");
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  if (auto s = db_->Write(wo, &wb); !s.ok())
    return latch(from_status(s, tag(group) + ": cannot remove"));
  last_index_.erase(group);
  return {};
}

status log_store::compact(group_id group, const raft::snapshot_meta& meta) {
  if (failure_)
    return *failure_;
  auto stored = read_snapshot_meta(group);
  if (!stored)
    return stored.error();
  if (meta.last_index <= stored->last_index)
    return {};
  rocksdb::WriteBatch wb;
  auto s1 = wb.Put(keys::snapshot_meta_key(group), encode(meta));
  auto s2 = wb.DeleteRange(keys::entry_key(group, log_index{0}),
                           entries_through(group, meta.last_index));
  if (!s1.ok() || !s2.ok())
    return invalid(tag(group) + ": cannot build the write batch");
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  if (auto s = db_->Write(wo, &wb); !s.ok())
    return latch(from_status(s, tag(group) + ": cannot compact to "
                                  + to_string(meta.last_index)));
  // last_index_ stays a valid upper bound: compaction only deletes.
  return {};
}

} // namespace ees::storage
