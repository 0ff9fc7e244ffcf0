// Versioned binary encoding of the durable Raft records (log entries, hard
// state, snapshot metadata) as stored in RocksDB values and snapshot files.
//
// Every record starts with a format version byte (style rule 8, after VAST's
// snapshot_header::version), so a later release can change the layout and
// still read old data. Integers are fixed-width little-endian, written byte
// by byte, so the bytes do not depend on the host. Encodings are canonical:
// decode(encode(x)) == x and encode(decode(b)) == b for every accepted b.
//
// Decoding never trusts its input: truncated, trailing or garbage bytes and
// unknown versions or enum values are reported as errors, and no length
// field can make the decoder allocate more than the input holds.
#pragma once

#include "protocol/raft/types.hpp"
#include "storage/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace ees::storage {

/// The format version this code writes and the only one it reads.
inline constexpr std::uint8_t codec_version = 1;

/// Layout v1: version u8 | term u64 | index u64 | type u8 | size u64 | data.
std::string encode(const raft::log_entry& x);

/// Layout v1: version u8 | current_term u64 | voted_for u64 | commit u64.
std::string encode(const raft::hard_state& x);

/// Layout v1: version u8 | last_index u64 | last_term u64 | voters | learners,
/// where each id set is count u32 followed by the ids in ascending order.
std::string encode(const raft::snapshot_meta& x);

/// Decodes `encode(const log_entry&)`.
/// @returns `unsupported_version` for an unknown version byte, `corruption`
///          for anything else that is not exactly one valid record.
result<raft::log_entry> decode_log_entry(std::string_view bytes);

/// Decodes `encode(const hard_state&)`; errors as `decode_log_entry`.
result<raft::hard_state> decode_hard_state(std::string_view bytes);

/// Decodes `encode(const snapshot_meta&)`; errors as `decode_log_entry`.
/// Id sets must be strictly ascending and voters and learners disjoint (the
/// membership invariant), so a decoded meta re-encodes to the same bytes.
result<raft::snapshot_meta> decode_snapshot_meta(std::string_view bytes);

// -- building blocks, shared with the snapshot file format --------------------

/// Appends `x` as one byte.
void put_u8(std::string& out, std::uint8_t x);
/// Appends `x` as 4 little-endian bytes.
void put_u32(std::string& out, std::uint32_t x);
/// Appends `x` as 8 little-endian bytes.
void put_u64(std::string& out, std::uint64_t x);

/// Reads fixed-width little-endian fields from a byte string. Every read
/// checks the remaining length first and returns false, consuming nothing,
/// when the input is too short.
class byte_reader {
public:
  explicit byte_reader(std::string_view in) noexcept : in_(in) {
    // nop
  }

  bool u8(std::uint8_t& x) noexcept;
  bool u32(std::uint32_t& x) noexcept;
  bool u64(std::uint64_t& x) noexcept;
  /// Reads `n` raw bytes. @returns false when fewer than `n` remain.
  bool bytes(std::uint64_t n, std::string_view& x) noexcept;

  std::size_t remaining() const noexcept {
    return in_.size();
  }

private:
  std::string_view in_;
};

} // namespace ees::storage
