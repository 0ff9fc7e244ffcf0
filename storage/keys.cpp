#include "storage/keys.hpp"

namespace ees::storage::keys {

namespace {

void put_be64(std::string& out, std::uint64_t x) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((x >> shift) & 0xFFu));
}

std::uint64_t get_be64(std::string_view in) {
  std::uint64_t x = 0;
  for (std::size_t i = 0; i < 8; ++i)
    x = (x << 8) | static_cast<unsigned char>(in[i]);
  return x;
}

std::string state_key(group_id group, raft_kind kind) {
  auto key = raft_prefix(group);
  key.push_back(static_cast<char>(kind));
  return key;
}

bool has_prefix(std::string_view key, std::uint8_t second) {
  return key.size() >= 2 && static_cast<unsigned char>(key[0]) == local_byte
         && static_cast<unsigned char>(key[1]) == second;
}

} // namespace

std::string raft_prefix(group_id group) {
  std::string key;
  key.reserve(entry_key_size);
  key.push_back(static_cast<char>(local_byte));
  key.push_back(static_cast<char>(raft_byte));
  put_be64(key, group.value);
  return key;
}

std::string entry_key(group_id group, log_index index) {
  auto key = state_key(group, raft_kind::entry);
  put_be64(key, index.value);
  return key;
}

std::string hard_state_key(group_id group) {
  return state_key(group, raft_kind::hard_state);
}

std::string snapshot_meta_key(group_id group) {
  return state_key(group, raft_kind::snapshot_meta);
}

std::string entries_end(group_id group) {
  // Every entry key is `prefix | 0x01 | index`, so `prefix | 0x02` (the hard
  // state key) is the first key after all of them.
  static_assert(static_cast<int>(raft_kind::hard_state)
                == static_cast<int>(raft_kind::entry) + 1);
  return state_key(group, raft_kind::hard_state);
}

std::string group_meta_key(group_id group) {
  std::string key;
  key.reserve(group_meta_key_size);
  key.push_back(static_cast<char>(local_byte));
  key.push_back(static_cast<char>(group_meta_byte));
  put_be64(key, group.value);
  return key;
}

std::string group_meta_begin() {
  return std::string{static_cast<char>(local_byte),
                     static_cast<char>(group_meta_byte)};
}

std::string group_meta_end() {
  return prefix_successor(group_meta_begin());
}

std::string prefix_successor(std::string_view prefix) {
  std::string key{prefix};
  while (!key.empty()) {
    auto last = static_cast<unsigned char>(key.back());
    if (last != 0xFF) {
      key.back() = static_cast<char>(last + 1);
      return key;
    }
    key.pop_back();
  }
  return key;
}

std::optional<raft_key> decode_raft_key(std::string_view key) {
  if (!has_prefix(key, raft_byte) || key.size() < state_key_size)
    return std::nullopt;
  raft_key out;
  out.group = group_id{get_be64(key.substr(2))};
  auto kind = static_cast<unsigned char>(key[raft_prefix_size]);
  switch (static_cast<raft_kind>(kind)) {
    case raft_kind::entry:
      if (key.size() != entry_key_size)
        return std::nullopt;
      out.kind = raft_kind::entry;
      out.index = log_index{get_be64(key.substr(state_key_size))};
      return out;
    case raft_kind::hard_state:
    case raft_kind::snapshot_meta:
      if (key.size() != state_key_size)
        return std::nullopt;
      out.kind = static_cast<raft_kind>(kind);
      return out;
  }
  return std::nullopt;
}

std::optional<group_id> decode_group_meta_key(std::string_view key) {
  if (!has_prefix(key, group_meta_byte) || key.size() != group_meta_key_size)
    return std::nullopt;
  return group_id{get_be64(key.substr(2))};
}

} // namespace ees::storage::keys
