// The commands of the ClusterStateMachine (DESIGN.md §4) and their versioned
// JSON encoding: `{"v":1,"type":"LockCommand","id":"<request id>",...}`.
//
// decode_command() checks everything a command can get wrong on its own
// (syntax, version, type, every field's presence, JSON type, range and size,
// unknown fields); the state machine checks the rest against its state.
#pragma once

#include "protocol/cluster/errors.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

namespace ees::cluster_sm {

/// The only command, query and snapshot version this code speaks.
inline constexpr std::int64_t version = 1;
/// Upper bound of a whole encoded command, checked before parsing.
inline constexpr std::size_t max_command_bytes = 1u << 20;
/// Upper bound of the client request id.
inline constexpr std::size_t max_id_bytes = 128;
/// Upper bound of every name: lock, owner, key, app, group, partition and
/// equipment id.
inline constexpr std::size_t max_name_bytes = 256;
/// Bounds of a lease's time to live.
inline constexpr std::int64_t min_ttl_ms = 1;
inline constexpr std::int64_t max_ttl_ms = 3'600'000;
/// Upper bound of the equipment ids in one partition command.
inline constexpr std::size_t max_equipment_ids = 10'000;

/// Acquires `lock` for `owner` with a lease of `ttl_ms`, or queues for it.
struct lock_command {
  std::string lock;
  std::string owner;
  std::int64_t ttl_ms = 0;
  /// Queue behind the holder instead of failing with `lock_held`.
  bool wait = true;
  friend bool operator==(const lock_command& a, const lock_command& b) {
    return std::tie(a.lock, a.owner, a.ttl_ms, a.wait)
           == std::tie(b.lock, b.owner, b.ttl_ms, b.wait);
  }
};

/// Extends the lease of a holder (its `token`) or of a queued waiter (0).
struct renew_lock {
  std::string lock;
  std::string owner;
  std::uint64_t token = 0;
  friend bool operator==(const renew_lock& a, const renew_lock& b) {
    return std::tie(a.lock, a.owner, a.token)
           == std::tie(b.lock, b.owner, b.token);
  }
};

/// Releases a held lock (its `token`) or leaves the queue (0).
struct release_lock {
  std::string lock;
  std::string owner;
  std::uint64_t token = 0;
  friend bool operator==(const release_lock& a, const release_lock& b) {
    return std::tie(a.lock, a.owner, a.token)
           == std::tie(b.lock, b.owner, b.token);
  }
};

/// Routes every id of `equipment_ids` to (app, group, partition).
struct assign_partition {
  std::string app;
  std::string group;
  std::string partition;
  std::vector<std::string> equipment_ids;
  friend bool operator==(const assign_partition& a, const assign_partition& b) {
    return std::tie(a.app, a.group, a.partition, a.equipment_ids)
           == std::tie(b.app, b.group, b.partition, b.equipment_ids);
  }
};

/// Removes some ids from a partition, or the whole partition when
/// `equipment_ids` is absent.
struct revoke_partition {
  std::string app;
  std::string group;
  std::string partition;
  std::optional<std::vector<std::string>> equipment_ids;
  friend bool operator==(const revoke_partition& a, const revoke_partition& b) {
    return std::tie(a.app, a.group, a.partition, a.equipment_ids)
           == std::tie(b.app, b.group, b.partition, b.equipment_ids);
  }
};

/// Assigns `key` to `owner`.
struct assign_key {
  std::string key;
  std::string owner;
  friend bool operator==(const assign_key& a, const assign_key& b) {
    return std::tie(a.key, a.owner) == std::tie(b.key, b.owner);
  }
};

/// Removes the assignment of `key`; only if it is `owner`'s when given.
struct unassign_key {
  std::string key;
  std::optional<std::string> owner;
  friend bool operator==(const unassign_key& a, const unassign_key& b) {
    return std::tie(a.key, a.owner) == std::tie(b.key, b.owner);
  }
};

using command_body
  = std::variant<lock_command, renew_lock, release_lock, assign_partition,
                 revoke_partition, assign_key, unassign_key>;

/// One decoded command: the client's request id (the key of exactly-once
/// retries) and what to do.
struct command {
  std::string id;
  command_body body;
};

bool operator==(const command& a, const command& b);
inline bool operator!=(const command& a, const command& b) {
  return !(a == b);
}

/// Returns the wire name of the body's type, e.g. "LockCommand".
const char* type_name(const command_body& body);

/// Parses and validates one command. Never throws.
expected<command> decode_command(std::string_view text);

/// Encodes `cmd` canonically (sorted keys, every field explicit);
/// `decode_command(encode_command(c)) == c` for every valid `c`.
std::string encode_command(const command& cmd);

} // namespace ees::cluster_sm
