// Shared by ees-node and eesctl: how application names map to group ids, and
// the built-in test state machine.
#pragma once

#include "ees/cluster/state_machine.hpp"
#include "protocol/ids.hpp"

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>

namespace ees::apps {

/// 64-bit FNV-1a.
inline std::uint64_t fnv1a(std::string_view data,
                           std::uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

/// The group id of application `app`: the low 48 bits of FNV-1a-64 of the
/// name (never 0). Stable across nodes, restarts and config reorderings; a
/// name of at most 18 digits is taken as the group id itself.
inline group_id group_for_app(std::string_view app) {
  if (!app.empty() && app.size() <= 18
      && app.find_first_not_of("0123456789") == std::string_view::npos)
    return group_id{std::stoull(std::string{app})};
  auto v = fnv1a(app) & 0xFFFFFFFFFFFFull;
  return group_id{v == 0 ? 1 : v};
}

/// The built-in test state machine: every command extends a running FNV-1a
/// hash (with its length, so concatenations differ) and a count. Its digest
/// is "count=<n> hash=<16 hex digits>", equal on replicas that applied the
/// same commands in the same order.
class counter_machine : public cluster::state_machine {
public:
  std::string apply(const cluster::entry_context&,
                    const std::string& command) override {
    std::lock_guard<std::mutex> guard{mtx_};
    auto len = std::to_string(command.size());
    hash_ = fnv1a(command, fnv1a(len + ":", hash_));
    ++count_;
    return std::to_string(count_);
  }

  std::string snapshot() override {
    std::lock_guard<std::mutex> guard{mtx_};
    return std::to_string(count_) + " " + std::to_string(hash_);
  }

  void restore(const std::string& data) override {
    std::lock_guard<std::mutex> guard{mtx_};
    std::istringstream in{data};
    std::uint64_t count = 0;
    std::uint64_t hash = 0;
    in >> count >> hash;
    count_ = count;
    hash_ = hash;
  }

  /// Safe to call from any thread.
  std::string digest() override {
    std::lock_guard<std::mutex> guard{mtx_};
    char buf[64];
    std::snprintf(buf, sizeof(buf), "count=%llu hash=%016llx",
                  static_cast<unsigned long long>(count_),
                  static_cast<unsigned long long>(hash_));
    return buf;
  }

private:
  std::mutex mtx_;
  std::uint64_t hash_ = 0xcbf29ce484222325ull;
  std::uint64_t count_ = 0;
};

} // namespace ees::apps
