// Strong identifier and counter types shared by every layer.
//
// Raft juggles several 64-bit numbers (terms, indexes, node and group ids);
// giving each its own type makes swapping two arguments a compile error
// instead of a consensus bug.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace ees {

/// A 64-bit unsigned value tagged with its meaning.
/// Only the operations that make sense for counters are provided: ordering,
/// and adding or subtracting a plain count. Two values of different tags never
/// mix.
template <class Tag>
struct strong_int {
  std::uint64_t value = 0;

  constexpr strong_int() noexcept = default;
  constexpr explicit strong_int(std::uint64_t v) noexcept : value(v) {
    // nop
  }

  friend constexpr bool operator==(strong_int a, strong_int b) noexcept {
    return a.value == b.value;
  }
  friend constexpr bool operator!=(strong_int a, strong_int b) noexcept {
    return a.value != b.value;
  }
  friend constexpr bool operator<(strong_int a, strong_int b) noexcept {
    return a.value < b.value;
  }
  friend constexpr bool operator<=(strong_int a, strong_int b) noexcept {
    return a.value <= b.value;
  }
  friend constexpr bool operator>(strong_int a, strong_int b) noexcept {
    return a.value > b.value;
  }
  friend constexpr bool operator>=(strong_int a, strong_int b) noexcept {
    return a.value >= b.value;
  }
  friend constexpr strong_int operator+(strong_int a,
                                        std::uint64_t n) noexcept {
    return strong_int{a.value + n};
  }
  /// @pre `a.value >= n`.
  friend constexpr strong_int operator-(strong_int a,
                                        std::uint64_t n) noexcept {
    return strong_int{a.value - n};
  }
  constexpr strong_int& operator++() noexcept {
    ++value;
    return *this;
  }

  template <class Inspector>
  friend auto inspect(Inspector& f, strong_int& x) {
    return f(x.value);
  }
};

template <class Tag>
std::string to_string(strong_int<Tag> x) {
  return std::to_string(x.value);
}

/// Identifies a server process (a node) in the cluster. 0 means "none".
using node_id = strong_int<struct node_id_tag>;
/// Identifies a Raft group hosted by many nodes.
using group_id = strong_int<struct group_id_tag>;
/// A Raft term (§5.1); 0 is the term before any election.
using term_t = strong_int<struct term_tag>;
/// A position in the replicated log; the first entry has index 1 (§5.3).
using log_index = strong_int<struct log_index_tag>;

/// The "no node" value, e.g. for voted_for before any vote.
inline constexpr node_id no_node{0};

} // namespace ees

namespace std {
template <class Tag>
struct hash<ees::strong_int<Tag>> {
  size_t operator()(ees::strong_int<Tag> x) const noexcept {
    return hash<uint64_t>{}(x.value);
  }
};
} // namespace std
