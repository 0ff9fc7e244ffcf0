// The RocksDB key layout shared by all groups of a process, after TiKV's
// `components/keys/src/lib.rs` (style-and-architecture.md §10.5).
//
//   0x01 0x02 | group(8B BE) | 0x01 | index(8B BE)   log entry
//   0x01 0x02 | group(8B BE) | 0x02                  hard state
//   0x01 0x02 | group(8B BE) | 0x03                  snapshot meta
//   0x01 0x03 | group(8B BE)                         group registration
//
// Fixed-width big-endian integers make byte order equal numeric order, so
// one group's entries are contiguous and sorted by index: loading is one
// range scan, and truncation and compaction are one DeleteRange each. The
// registrations sit under their own prefix so startup lists the groups
// without walking any log (TiKV's reason for the separate meta prefix).
#pragma once

#include "protocol/ids.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ees::storage::keys {

/// First byte of every key this layer writes (TiKV's LOCAL_PREFIX), leaving
/// room for other key spaces in the same database.
inline constexpr std::uint8_t local_byte = 0x01;
/// Second byte of the per-group Raft state keys.
inline constexpr std::uint8_t raft_byte = 0x02;
/// Second byte of the group registration keys.
inline constexpr std::uint8_t group_meta_byte = 0x03;

/// What a Raft state key of a group holds; the byte after the group id.
enum class raft_kind : std::uint8_t {
  entry = 0x01,
  hard_state = 0x02,
  snapshot_meta = 0x03,
};

/// Length of `raft_prefix`: two prefix bytes and the group id.
inline constexpr std::size_t raft_prefix_size = 2 + 8;
/// Length of an entry key.
inline constexpr std::size_t entry_key_size = raft_prefix_size + 1 + 8;
/// Length of a hard state or snapshot meta key.
inline constexpr std::size_t state_key_size = raft_prefix_size + 1;
/// Length of a group registration key.
inline constexpr std::size_t group_meta_key_size = 2 + 8;

/// `0x01 0x02 | group`: the prefix of every Raft state key of `group`.
std::string raft_prefix(group_id group);

/// The key of the entry at `index` of `group`.
std::string entry_key(group_id group, log_index index);

/// The key of `group`'s hard state.
std::string hard_state_key(group_id group);

/// The key of `group`'s newest snapshot meta.
std::string snapshot_meta_key(group_id group);

/// The key recording that `group` is registered on this node.
std::string group_meta_key(group_id group);

/// Exclusive upper bound of `group`'s entry keys: greater than every entry
/// key of `group` and smaller than its hard state key.
std::string entries_end(group_id group);

/// [group_meta_begin(), group_meta_end()) holds exactly the registration
/// keys.
std::string group_meta_begin();
std::string group_meta_end();

/// The smallest key greater than every key starting with `prefix`, or the
/// empty string when no such key exists (`prefix` is all 0xFF). Used as the
/// exclusive end of DeleteRange and of iterator upper bounds.
std::string prefix_successor(std::string_view prefix);

/// A decoded Raft state key. `index` is zero unless `kind` is `entry`.
struct raft_key {
  group_id group;
  raft_kind kind = raft_kind::entry;
  log_index index;

  friend bool operator==(const raft_key& a, const raft_key& b) {
    return a.group == b.group && a.kind == b.kind && a.index == b.index;
  }
};

/// Decodes a Raft state key; nullopt for any other key, including one with
/// the right prefix but the wrong length or an unknown kind.
std::optional<raft_key> decode_raft_key(std::string_view key);

/// Decodes a group registration key; nullopt for any other key.
std::optional<group_id> decode_group_meta_key(std::string_view key);

} // namespace ees::storage::keys
