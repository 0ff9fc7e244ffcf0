// Shared by ees-node, eesctl and ees_loadgen: how application names map to
// group ids, and latency percentiles.
#pragma once

#include "protocol/ids.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

/// The p-quantile (0..1) of `v` by nearest rank below; 0 when empty.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k),
                   v.end());
  return v[k];
}

} // namespace ees::apps
