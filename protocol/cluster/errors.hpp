// Typed errors of the ClusterStateMachine (DESIGN.md §4): every rejected
// command or query is answered with one of these codes and a message for a
// human; the state is left untouched. They are protocol outcomes (tier 2 of
// the style rules), never exceptions.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace ees::cluster_sm {

enum class errc : std::uint8_t {
  malformed_json, ///< The input is not JSON text.
  unsupported_version, ///< `v` is not a version this replica speaks.
  unknown_type, ///< `type` names no command or query.
  missing_field, ///< A required field is absent.
  unknown_field, ///< A field the type does not define is present.
  wrong_type, ///< A field has the wrong JSON type.
  invalid_value, ///< A field's value is out of range, empty or duplicated.
  too_large, ///< The input or a field exceeds its size limit.
  lock_held, ///< The lock is held by another owner and the caller won't wait.
  not_holder, ///< The owner neither holds nor waits for the lock.
  stale_token, ///< The fencing token is not the owner's current one.
  conflict, ///< An equipment id or key is owned by someone else.
  not_found, ///< The partition, equipment, key or id does not exist.
  out_of_order, ///< An entry index not after the applied index (runtime bug).
};

/// Returns the code's name as used on the wire, e.g. "stale_token".
const char* to_string(errc code);

/// A typed error: the code for programs, the message for people.
struct error {
  errc code;
  std::string message;

  friend bool operator==(const error& a, const error& b) {
    return a.code == b.code && a.message == b.message;
  }
};

/// Either a value or an error (the small cousin of `caf::expected`).
template <class T>
class expected {
public:
  expected(T value) : data_(std::move(value)) {
    // nop
  }
  expected(cluster_sm::error err) : data_(std::move(err)) {
    // nop
  }

  explicit operator bool() const noexcept {
    return data_.index() == 0;
  }
  /// @pre `*this` holds a value.
  const T& operator*() const {
    return std::get<0>(data_);
  }
  /// @pre `*this` holds a value.
  const T* operator->() const {
    return &std::get<0>(data_);
  }
  /// @pre `*this` holds an error.
  const cluster_sm::error& error() const {
    return std::get<1>(data_);
  }

private:
  std::variant<T, cluster_sm::error> data_;
};

} // namespace ees::cluster_sm
