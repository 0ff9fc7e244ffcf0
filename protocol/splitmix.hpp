// A tiny seedable pseudo-random generator.
#pragma once

#include <cstdint>

namespace ees {

/// splitmix64 (Steele, Lea, Flood 2014): seedable and identical on every
/// platform, unlike the distributions of <random>. Used for election jitter
/// in the core and for every random choice of the simulations.
struct splitmix64 {
  std::uint64_t state = 0;

  std::uint64_t next() noexcept {
    auto z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

} // namespace ees
