// A RocksDB file system that fails writes and fsyncs on demand, for the
// fail-stop tests of the storage layer (tests/unit/storage) and of the actor
// layer (tests/actors). Pass `make_faulty_env(sw)` as
// `storage::log_store_options::env` (or `raft_server_settings::storage_env`)
// and flip the switches of `sw` to inject the faults.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace ees::test {

/// Shared switch of the fault-injecting file system.
struct fault_switch {
  /// Fail every Append/Flush of files opened for writing.
  std::atomic<bool> fail_writes{false};
  /// Fail every Sync/Fsync/RangeSync (the write itself succeeds, as when
  /// the kernel accepts the data but the disk then fails).
  std::atomic<bool> fail_syncs{false};
  /// How many operations failed on purpose.
  std::atomic<int> injected{0};
  /// How many Append/Sync/Fsync calls were made on files opened for
  /// writing, failed or not (a latched store makes none).
  std::atomic<int> calls{0};
  /// How many Sync/Fsync calls were made, failed or not.
  std::atomic<int> syncs{0};
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
    ++sw_->calls;
    if (sw_->fail_writes)
      return fail("append");
    return FSWritableFileOwnerWrapper::Append(data, opts, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& opts,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    ++sw_->calls;
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
    ++sw_->calls;
    ++sw_->syncs;
    if (sw_->fail_syncs)
      return fail("sync");
    return FSWritableFileOwnerWrapper::Sync(opts, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& opts,
                          rocksdb::IODebugContext* dbg) override {
    ++sw_->calls;
    ++sw_->syncs;
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

} // namespace ees::test
