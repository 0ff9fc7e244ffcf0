// Internal to ees_cluster_sm: checked reading of untrusted JSON objects and
// non-throwing rendering. Commands, queries and snapshots all go through
// here, so each field is checked in one way only.
#pragma once

#include "protocol/cluster/command.hpp"
#include "protocol/cluster/errors.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ees::cluster_sm::detail {

using json = nlohmann::json;

/// Parses `text`; a discarded value when it is not JSON. Never throws.
json parse(std::string_view text);

/// Parses untrusted input of at most `max_command_bytes` that must be JSON;
/// the `too_large` and `malformed_json` errors name it as `what`.
expected<json> parse_input(std::string_view text, const std::string& what);

/// Renders `value` compactly with sorted keys (canonical). Never throws:
/// invalid UTF-8, impossible after parse(), would be replaced.
std::string render(const json& value);

/// Appends `text` as a JSON string, exactly as render() writes it, without
/// building a json value (snapshots write hundreds of thousands).
void append_json_string(std::string& out, std::string_view text);

/// `text` cut after its first 64 bytes (never inside a UTF-8 sequence) and
/// marked with "..." when cut, for messages.
std::string abbreviate(std::string_view text);

/// abbreviate(text) as a JSON string literal, for messages.
std::string quote(std::string_view text);

/// Reads the fields of one JSON object with presence, type, range and size
/// checks. The first failure wins and makes every later read a no-op, so a
/// decoder reads all fields and then asks finish() once.
class field_reader {
public:
  /// @param object Any JSON value; not an object is a `wrong_type` error.
  /// @param what Names the object in messages, e.g. "LockCommand".
  field_reader(const json& object, std::string what);

  bool ok() const noexcept {
    return !error_.has_value();
  }

  /// True when `key` is present; counts it as a known field either way.
  bool present(const char* key);
  /// Reads a required string of 1..`max_bytes` bytes.
  void text(const char* key, std::string& out,
            std::size_t max_bytes = max_name_bytes);
  /// Reads an optional string of 1..`max_bytes` bytes.
  void optional_text(const char* key, std::optional<std::string>& out,
                     std::size_t max_bytes = max_name_bytes);
  /// Reads a required integer in [min, max].
  void integer(const char* key, std::int64_t& out, std::int64_t min,
               std::int64_t max);
  /// Reads an optional integer in [min, max]; keeps `out` when absent.
  void optional_integer(const char* key, std::int64_t& out, std::int64_t min,
                        std::int64_t max);
  /// Reads a required non-negative 64-bit integer.
  void natural(const char* key, std::uint64_t& out);
  /// Reads an optional boolean; keeps `out` when absent.
  void optional_flag(const char* key, bool& out);
  /// Reads a required array of `min_items`..`max_items` distinct strings of
  /// 1..max_name_bytes bytes each.
  void names(const char* key, std::vector<std::string>& out,
             std::size_t min_items, std::size_t max_items);
  /// Returns the required array at `key`, or nullptr after recording why not.
  const json* array(const char* key);
  /// Returns the object at `key`; nullptr when it is null or after recording
  /// an error (check ok()).
  const json* object_or_null(const char* key);

  /// Reads the required version field "v"; anything but `version` is an
  /// `unsupported_version` error naming the value.
  void version_field();
  /// Reads the required "type" and returns it ("" after a failure).
  std::string type_field();
  /// Changes how messages name the object, e.g. once its type is known.
  void rename(std::string what) {
    what_ = std::move(what);
  }

  /// Records a failure found by the caller (first failure wins).
  void fail(errc code, std::string message);

  /// Returns the first failure, or the first field (in key order) that no
  /// read asked for.
  std::optional<error> finish();

  /// Names the field for messages, e.g. `LockCommand field "ttl_ms"`.
  std::string field(const char* key) const;

private:
  /// Returns the value at `key`, or nullptr when absent (recording
  /// `missing_field` if `required`) or after an earlier failure.
  const json* find(const char* key, bool required);
  bool check_text(const char* key, const json& value, std::string& out,
                  std::size_t max_bytes);
  void read_integer(const char* key, const json& value, std::int64_t& out,
                    std::int64_t min, std::int64_t max);

  const json& object_;
  std::string what_;
  std::set<std::string, std::less<>> known_;
  std::optional<error> error_;
};

} // namespace ees::cluster_sm::detail
