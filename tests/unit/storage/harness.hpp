// Helpers for the storage unit tests: value builders, doctest printers, a
// self-deleting temp directory and a RocksDB file system that fails writes
// and fsyncs on demand.
#pragma once

#include "protocol/raft/node.hpp"
#include "protocol/raft/types.hpp"
#include "storage/error.hpp"

#include <doctest/doctest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

// Printers so that doctest shows values instead of "{?}" on failures.
namespace ees {
template <class Tag>
std::ostream& operator<<(std::ostream& os, strong_int<Tag> x) {
  return os << x.value;
}
} // namespace ees

namespace ees::raft {
inline std::ostream& operator<<(std::ostream& os, const log_entry& e) {
  return os << "entry{t=" << e.term << " i=" << e.index
            << " type=" << static_cast<int>(e.type) << " size=" << e.data.size()
            << "}";
}
inline std::ostream& operator<<(std::ostream& os, const hard_state& s) {
  return os << "hard_state{t=" << s.current_term << " vote=" << s.voted_for
            << " commit=" << s.commit_index << "}";
}
inline std::ostream& operator<<(std::ostream& os, const membership& m) {
  os << "{voters=";
  for (auto id : m.voters)
    os << id << ",";
  os << " learners=";
  for (auto id : m.learners)
    os << id << ",";
  return os << "}";
}
inline std::ostream& operator<<(std::ostream& os, const snapshot_meta& m) {
  return os << "snapshot{i=" << m.last_index << " t=" << m.last_term << " "
            << m.config << "}";
}
inline std::ostream& operator<<(std::ostream& os, const persistent_state& p) {
  os << "persistent_state{" << p.state << " " << p.snapshot << " entries=[";
  for (const auto& e : p.entries)
    os << e << " ";
  return os << "]}";
}
} // namespace ees::raft

namespace ees::storage {
inline std::ostream& operator<<(std::ostream& os, storage_errc c) {
  return os << to_string(c);
}
inline std::ostream& operator<<(std::ostream& os, const storage_error& e) {
  return os << to_string(e);
}
} // namespace ees::storage

namespace ees::storage::test {

inline raft::log_entry entry(std::uint64_t index, std::uint64_t term,
                             std::string data = {},
                             raft::entry_type type = raft::entry_type::normal) {
  return raft::log_entry{term_t{term}, log_index{index}, type, std::move(data)};
}

/// Entries [first, last] of term `term`, payload "<index>@<term>".
inline std::vector<raft::log_entry>
entries(std::uint64_t first, std::uint64_t last, std::uint64_t term) {
  std::vector<raft::log_entry> out;
  for (auto i = first; i <= last; ++i)
    out.push_back(
      entry(i, term, std::to_string(i) + "@" + std::to_string(term)));
  return out;
}

inline raft::hard_state hs(std::uint64_t term, std::uint64_t vote,
                           std::uint64_t commit) {
  return raft::hard_state{term_t{term}, node_id{vote}, log_index{commit}};
}

inline raft::membership members(std::initializer_list<std::uint64_t> voters,
                                std::initializer_list<std::uint64_t> learners
                                = {}) {
  raft::membership m;
  for (auto v : voters)
    m.voters.insert(node_id{v});
  for (auto l : learners)
    m.learners.insert(node_id{l});
  return m;
}

inline raft::snapshot_meta snap(std::uint64_t index, std::uint64_t term,
                                raft::membership m = members({1, 2, 3})) {
  return raft::snapshot_meta{log_index{index}, term_t{term}, std::move(m)};
}

/// A fresh directory (mkdtemp under $TMPDIR or /tmp), deleted with all its
/// contents when the object goes away.
class temp_dir {
public:
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string{base != nullptr && *base ? base : "/tmp"}
                       + "/ees-storage-test-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    REQUIRE(::mkdtemp(buf.data()) != nullptr);
    path_ = buf.data();
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const {
    return path_;
  }

private:
  std::string path_;
};

/// Shared switch of the fault-injecting file system.
struct fault_switch {
  /// Fail every Append/Flush of files opened for writing.
  std::atomic<bool> fail_writes{false};
  /// Fail every Sync/Fsync/RangeSync (the write itself succeeds, as when
  /// the kernel accepts the data but the disk then fails).
  std::atomic<bool> fail_syncs{false};
  /// How many operations failed on purpose.
  std::atomic<int> injected{0};
};

/// A writable file that fails on demand.
class faulty_file : public rocksdb::FSWritableFileOwnerWrapper {
public:
  faulty_file(std::unique_ptr<rocksdb::FSWritableFile> f,
              std::shared_ptr<fault_switch> sw)
    : rocksdb::FSWritableFileOwnerWrapper(std::move(f)), sw_(std::move(sw)) {
    // nop
  }

  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& opts,
                           rocksdb::IODebugContext* dbg) override {
    if (sw_->fail_writes)
      return fail("append");
    return FSWritableFileOwnerWrapper::Append(data, opts, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& opts,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (sw_->fail_writes)
      return fail("append");
    return FSWritableFileOwnerWrapper::Append(data, opts, info, dbg);
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& opts,
                          rocksdb::IODebugContext* dbg) override {
    if (sw_->fail_writes)
      return fail("flush");
    return FSWritableFileOwnerWrapper::Flush(opts, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& opts,
                         rocksdb::IODebugContext* dbg) override {
    if (sw_->fail_syncs)
      return fail("sync");
    return FSWritableFileOwnerWrapper::Sync(opts, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& opts,
                          rocksdb::IODebugContext* dbg) override {
    if (sw_->fail_syncs)
      return fail("fsync");
    return FSWritableFileOwnerWrapper::Fsync(opts, dbg);
  }
  rocksdb::IOStatus RangeSync(std::uint64_t offset, std::uint64_t n,
                              const rocksdb::IOOptions& opts,
                              rocksdb::IODebugContext* dbg) override {
    if (sw_->fail_syncs)
      return fail("range sync");
    return FSWritableFileOwnerWrapper::RangeSync(offset, n, opts, dbg);
  }

private:
  rocksdb::IOStatus fail(const char* op) {
    ++sw_->injected;
    return rocksdb::IOStatus::IOError(std::string{"injected "} + op
                                      + " failure");
  }

  std::shared_ptr<fault_switch> sw_;
};

/// The default file system, except that files opened for writing fail
/// according to a shared `fault_switch`.
class faulty_fs : public rocksdb::FileSystemWrapper {
public:
  explicit faulty_fs(std::shared_ptr<fault_switch> sw)
    : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()),
      sw_(std::move(sw)) {
    // nop
  }

  const char* Name() const override {
    return "ees_faulty_fs";
  }

  rocksdb::IOStatus NewWritableFile(const std::string& f,
                                    const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    return wrap(target()->NewWritableFile(f, opts, r, dbg), r);
  }
  rocksdb::IOStatus
  ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& opts,
                     std::unique_ptr<rocksdb::FSWritableFile>* r,
                     rocksdb::IODebugContext* dbg) override {
    return wrap(target()->ReopenWritableFile(f, opts, r, dbg), r);
  }
  rocksdb::IOStatus
  ReuseWritableFile(const std::string& f, const std::string& old,
                    const rocksdb::FileOptions& opts,
                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                    rocksdb::IODebugContext* dbg) override {
    return wrap(target()->ReuseWritableFile(f, old, opts, r, dbg), r);
  }

private:
  rocksdb::IOStatus wrap(rocksdb::IOStatus s,
                         std::unique_ptr<rocksdb::FSWritableFile>* r) {
    if (s.ok())
      *r = std::make_unique<faulty_file>(std::move(*r), sw_);
    return s;
  }

  std::shared_ptr<fault_switch> sw_;
};

/// An Env whose file system is `faulty_fs` driven by `sw`.
inline std::shared_ptr<rocksdb::Env>
make_faulty_env(std::shared_ptr<fault_switch> sw) {
  return rocksdb::NewCompositeEnv(std::make_shared<faulty_fs>(std::move(sw)));
}

} // namespace ees::storage::test
