// The durable Raft state of every group of a process in one RocksDB
// database (DESIGN.md §1 and §3): one WriteBatch and one fsync carry the
// writes of many groups.
#pragma once

#include "protocol/ids.hpp"
#include "protocol/raft/types.hpp"
#include "storage/error.hpp"

#include <rocksdb/rocksdb_namespace.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ROCKSDB_NAMESPACE {
class DB;
class Env;
} // namespace ROCKSDB_NAMESPACE

namespace ees::storage {

/// How to open a `log_store`.
struct log_store_options {
  /// The RocksDB directory; created (with its parents) when missing. Give it
  /// a directory of its own, e.g. `<data-dir>/log`, and keep snapshot files
  /// (`snapshot_files`, `<data-dir>/snapshots`) out of it.
  std::string dir;
  /// Write with `sync = true` (fsync the WAL before acknowledging). Only
  /// benchmarks and throw-away tests may turn it off: Raft's safety needs
  /// votes and entries durable before they are acknowledged (§5.2, §5.3).
  bool sync = true;
  /// RocksDB environment to run on; null for the default. Tests pass an env
  /// that injects write and fsync failures. Kept alive by the store.
  std::shared_ptr<rocksdb::Env> env;
  /// Preallocate WAL files with their size set (`fallocate` without
  /// FALLOC_FL_KEEP_SIZE, RocksDB keeps the size by default), when `env` is
  /// null. An append then changes no inode size, so its fdatasync commits no
  /// ext4 journal transaction (bench/fsync_modes.py: one process 82-85 us
  /// per fdatasync instead of 120-121, three at once 141-169 instead of
  /// 211-229 in 3 of 4 runs). A WAL a crash left behind ends in zeros up to
  /// its preallocated size, which RocksDB's reader skips as padding
  /// (tested); a clean close truncates it.
  bool sized_wal = true;
  /// Upper bound on the total size of live WAL files (field notes, gotcha
  /// 15): once exceeded, RocksDB flushes the memtables that pin the oldest
  /// WAL, so a quiet column family can never keep the WAL growing.
  std::uint64_t max_total_wal_size = 64ull << 20;
};

/// What one group asks to persist; one ready's `snapshot`, `state` and
/// `entries` (protocol/raft/ready.hpp).
struct group_write {
  group_id group;
  /// Put if set.
  std::optional<raft::hard_state> state;
  /// If set, replaces the group's whole log and becomes its snapshot meta.
  std::optional<raft::snapshot_meta> snapshot;
  /// Contiguous, ascending indexes; replace every stored entry at or after
  /// `entries.front().index`.
  std::vector<raft::log_entry> entries;
  /// False for a write that may reach the disk later (a commit index only):
  /// a batch is synced when any of its writes asks for it, and a later
  /// synced batch makes every earlier write durable (one ordered WAL).
  bool sync = true;
};

/// The log, hard state and snapshot meta of all groups of one process.
///
/// Fail-stop: once a write or its fsync fails, the store latches that error
/// and every later call, reads included, returns it without touching the
/// database again. A failed fsync leaves unknown data on disk, and retrying
/// it could report success for writes the kernel already dropped
/// ("fsyncgate"; etcd and braft stop too). The owner stops the replicas that
/// depend on the store and restarts the process, which recovers from what
/// is durable.
///
/// Not thread-safe: one owner (the storage actor) makes all calls.
class log_store {
public:
  /// Opens or creates the database in `opts.dir`.
  static result<std::unique_ptr<log_store>> open(const log_store_options& opts);

  log_store(const log_store&) = delete;
  log_store& operator=(const log_store&) = delete;

  /// Closes the database; everything acknowledged stays durable.
  ~log_store();

  /// Persists the writes of many groups atomically, in one WriteBatch with
  /// one WAL fsync. Per group, in this order (the `ready` contract):
  /// 1. `snapshot`: deletes all of the group's entries, then records the
  ///    meta (§7: the snapshot replaces the whole log);
  /// 2. `entries`: deletes every stored entry from `entries.front().index`
  ///    on, then puts `entries` (§5.3: a conflicting suffix is replaced);
  /// 3. `state`: puts the hard state.
  /// Writes for the same group later in `batch` apply after earlier ones.
  /// An empty batch writes nothing and succeeds.
  /// @pre For every `snapshot`, the state machine snapshot it describes is
  ///      durable already (`snapshot_files::save` returned), or a crash
  ///      right after this write would leave a log that starts after a
  ///      snapshot nobody has.
  /// @returns `invalid_argument` (nothing written, nothing latched) when
  ///          some group's entries are not contiguous and ascending, start at
  ///          index 0, or do not start after that group's `snapshot`; the
  ///          latched error after a failure; otherwise success once the whole
  ///          batch is durable.
  status write(const std::vector<group_write>& batch);

  /// Reads what `group` restarts from: its hard state, its newest snapshot
  /// meta and the entries after that snapshot. A group without any stored
  /// state yields a default `persistent_state` (term 0, empty snapshot at
  /// index 0, no entries); registration is not required.
  /// @returns `corruption` when a record does not decode or the entries
  ///          after the snapshot are not contiguous from snapshot + 1 or
  ///          their terms decrease (Raft logs never do, §5.3).
  result<raft::persistent_state> load(group_id group);

  /// The registered groups in ascending order; reads only the registration
  /// keys, never a log.
  result<std::vector<group_id>> groups();

  /// Records that this process hosts `group`; idempotent. Durable on return.
  status register_group(group_id group);

  /// Deletes every key of `group` (log, hard state, snapshot meta and
  /// registration) in one durable write; idempotent. Snapshot files are not
  /// touched (see `snapshot_files::remove`).
  status remove_group(group_id group);

  /// Log compaction (§7): records `meta` as the group's snapshot and deletes
  /// its entries up to `meta.last_index`, in one durable write. A meta not
  /// newer than the stored snapshot is ignored, so a late compaction never
  /// rolls back a snapshot installed meanwhile.
  /// @pre The state machine snapshot for `meta` is durable (for instance a
  ///      `snapshot_files::save` returned), because the entries are gone.
  status compact(group_id group, const raft::snapshot_meta& meta);

  /// The latched error, if a write failed; nullopt while healthy.
  const std::optional<storage_error>& failure() const noexcept {
    return failure_;
  }

private:
  log_store(std::unique_ptr<rocksdb::DB> db, std::shared_ptr<rocksdb::Env> env,
            bool sync);

  /// Reads and decodes `group`'s snapshot meta (default when absent).
  result<raft::snapshot_meta> read_snapshot_meta(group_id group);

  /// Latches `err` (fail-stop) and returns it.
  storage_error latch(storage_error err);

  // Destroyed after db_, which uses it.
  std::shared_ptr<rocksdb::Env> env_;
  std::unique_ptr<rocksdb::DB> db_;
  bool sync_;
  std::optional<storage_error> failure_;
  /// Per group, an upper bound of the highest stored entry index, known
  /// after the group's first `load` or `write` (absent: unknown). Lets
  /// `write` skip the range tombstone of a suffix replacement when nothing
  /// can be stored after the new entries, which is every plain append.
  std::map<group_id, log_index> last_index_;
};

} // namespace ees::storage
