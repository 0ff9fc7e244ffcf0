// Local snapshot files: every replica keeps the newest snapshots of each of
// its groups on disk (DESIGN.md §1), for log compaction and for sending
// InstallSnapshot (§7).
//
// Layout: `<dir>/snapshots/<group>/<index>-<term>.snap`, the numbers
// zero-padded to 20 digits so names sort like (index, term).
//
// File format v1 (integers little-endian):
//   version u8 (= 1) | meta size u32 | meta (storage/codec.hpp) |
//   data size u64 | data | crc32c u32 of every preceding byte
#pragma once

#include "protocol/ids.hpp"
#include "protocol/raft/types.hpp"
#include "storage/error.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ees::storage {

/// The format version of snapshot files this code writes and reads.
inline constexpr std::uint8_t snapshot_file_version = 1;

/// A state machine snapshot (§7): its meta and the opaque state bytes.
struct snapshot {
  raft::snapshot_meta meta;
  std::string data;

  friend bool operator==(const snapshot& a, const snapshot& b) {
    return a.meta == b.meta && a.data == b.data;
  }
};

/// The bytes of a snapshot file holding `meta` and `data`.
std::string encode_snapshot_file(const raft::snapshot_meta& meta,
                                 std::string_view data);

/// Parses the bytes of a snapshot file.
/// @returns `unsupported_version` for an unknown version byte, `corruption`
///          on a checksum mismatch, truncation or trailing bytes.
result<snapshot> decode_snapshot_file(std::string_view bytes);

/// The snapshot files of all groups under one data directory.
///
/// Single writer: one owner saves and removes files (concurrent readers of
/// complete files are fine, since files appear only by atomic rename).
/// Failures are reported, never latched: a failed save deletes its
/// temporary file, so a retry writes and fsyncs a new file instead of
/// trusting a second fsync of the same one.
class snapshot_files {
public:
  /// @param dir The data directory; files live in `<dir>/snapshots/`.
  /// @param keep How many snapshots per group `save` keeps (at least 1).
  explicit snapshot_files(std::string dir, std::size_t keep = 2);

  /// `<dir>/snapshots/<group>`.
  std::string group_dir(group_id group) const;

  /// Atomically stores a snapshot of `group`: writes
  /// `<index>-<term>.snap.tmp`, fsyncs it, renames it to its final name and
  /// fsyncs the directory, so after a crash the file is either complete or
  /// absent. A file with the same (index, term) is replaced. Then deletes
  /// all but the `keep` newest snapshots by (index, term), and leftover
  /// temporary files of interrupted saves; failures to delete are ignored
  /// (the next save retries).
  /// @returns success once the new file is durable.
  status save(group_id group, const raft::snapshot_meta& meta,
              std::string_view data);

  /// The newest valid snapshot of `group`, or nullopt when there is none.
  /// Files that cannot be read, fail their checksum or whose contents do not
  /// match their name are skipped in favour of older ones; each is reported
  /// in `skipped` when given (for logging by the caller).
  /// @returns `io_error` only when the directory cannot be listed.
  result<std::optional<snapshot>>
  load_latest(group_id group,
              std::vector<storage_error>* skipped = nullptr) const;

  /// (index, term) of every snapshot file of `group` with a well-formed
  /// name, newest first. Contents are not checked.
  result<std::vector<std::pair<log_index, term_t>>> list(group_id group) const;

  /// Deletes every snapshot file of `group` and its directory.
  status remove(group_id group);

private:
  std::string dir_;
  std::size_t keep_;
};

} // namespace ees::storage
