// Errors of the storage layer, reported as values (error tier 3 of the style
// rules): storage never throws and never logs; the actor layer decides what a
// failure means (fail-stop for the affected replicas, DESIGN.md §3).
#pragma once

#include "protocol/raft/invariant.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace ees::storage {

/// Why a storage operation failed.
enum class storage_errc : std::uint8_t {
  /// The OS or RocksDB failed to read, write or fsync. For `log_store`
  /// writes this is fail-stop: the store latches it.
  io_error = 1,
  /// Stored bytes do not decode, or break an invariant of the log
  /// (non-contiguous entries, decreasing terms, a checksum mismatch).
  corruption,
  /// A record carries a format version this code does not know; written by
  /// a newer release, so it must not be guessed at.
  unsupported_version,
  /// The caller broke a documented precondition; nothing was written.
  invalid_argument,
};

/// Returns the code's name, e.g. "io_error".
const char* to_string(storage_errc code);

/// A failed storage operation: what kind of failure and a human-readable
/// explanation naming the group, key or file involved.
struct storage_error {
  storage_errc code = storage_errc::io_error;
  std::string message;

  friend bool operator==(const storage_error& a, const storage_error& b) {
    return a.code == b.code && a.message == b.message;
  }
  friend bool operator!=(const storage_error& a, const storage_error& b) {
    return !(a == b);
  }
};

/// Renders `err` as "<code>: <message>".
std::string to_string(const storage_error& err);

/// Either a value of type `T` or a `storage_error`; a minimal stand-in for
/// C++23's `std::expected`. Accessing the wrong alternative is a programming
/// error and aborts (error tier 1).
template <class T>
class [[nodiscard]] result {
  /// True when `U` initializes the value: anything `T` is constructible
  /// from, except errors and results.
  template <class U>
  static constexpr bool accepts_value = std::conjunction_v<
    std::is_constructible<T, U>,
    std::negation<std::is_same<std::decay_t<U>, storage_error>>,
    std::negation<std::is_same<std::decay_t<U>, result>>>;

public:
  static_assert(!std::is_same_v<T, storage_error>);

  /// Holds a value.
  template <class U = T, class = std::enable_if_t<accepts_value<U>>>
  result(U&& value) : v_(std::in_place_index<0>, std::forward<U>(value)) {
    // nop
  }

  /// Holds an error.
  result(storage_error err) : v_(std::in_place_index<1>, std::move(err)) {
    // nop
  }

  bool has_value() const noexcept {
    return v_.index() == 0;
  }
  explicit operator bool() const noexcept {
    return has_value();
  }

  /// @pre has_value().
  T& value() & {
    check_value();
    return std::get<0>(v_);
  }
  /// @pre has_value().
  const T& value() const& {
    check_value();
    return std::get<0>(v_);
  }
  /// @pre has_value().
  T&& value() && {
    check_value();
    return std::get<0>(std::move(v_));
  }
  T& operator*() & {
    return value();
  }
  const T& operator*() const& {
    return value();
  }
  T&& operator*() && {
    return std::move(*this).value();
  }
  T* operator->() {
    return &value();
  }
  const T* operator->() const {
    return &value();
  }

  /// @pre !has_value().
  const storage_error& error() const& {
    EES_ASSERT(!has_value(), "result holds a value, not an error");
    return std::get<1>(v_);
  }

private:
  void check_value() const {
    EES_ASSERT(has_value(), "result holds an error: %s",
               to_string(std::get<1>(v_)).c_str());
  }

  std::variant<T, storage_error> v_;
};

/// The outcome of an operation that returns nothing: success or an error.
template <>
class [[nodiscard]] result<void> {
public:
  /// Success.
  result() noexcept = default;

  /// Failure.
  result(storage_error err) : err_(std::move(err)) {
    // nop
  }

  bool has_value() const noexcept {
    return !err_.has_value();
  }
  explicit operator bool() const noexcept {
    return has_value();
  }

  /// @pre !has_value().
  const storage_error& error() const& {
    EES_ASSERT(err_.has_value(), "status holds success, not an error");
    return *err_;
  }

private:
  std::optional<storage_error> err_;
};

/// Success or a `storage_error`.
using status = result<void>;

} // namespace ees::storage
