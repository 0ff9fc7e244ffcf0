// Internal to ees_cluster_sm: checked reading of untrusted JSON objects and
// non-throwing rendering. Commands, queries and snapshots all go through
// here, so each field is checked in one way only.
//
// Reading uses simdjson's DOM (a tape, no allocation per value), writing
// uses nlohmann/json: every replica decodes every command, and nlohmann's
// tree cost 2.6 us per 330-byte AssignKey against 0.15 us (bench notes in
// json_fields.cpp), a fifth of the servers' CPU at 20k commits/s.
#pragma once

#include "protocol/cluster/command.hpp"
#include "protocol/cluster/errors.hpp"

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ees::cluster_sm::detail {

/// What answers and snapshots are written with.
using json = nlohmann::json;
/// What input is read as: a handle into the tape of the parser that parsed
/// it, valid until that parser parses again or is destroyed.
using value = simdjson::dom::element;

/// Parses `text` with `parser`; a `malformed_json` error naming the input
/// as `what` when it is not JSON (or holds a number that is neither a
/// 64-bit integer nor a double). Never throws.
expected<value> parse(simdjson::dom::parser& parser, std::string_view text,
                      const std::string& what);

/// Parses untrusted input of at most `max_command_bytes` with the calling
/// thread's parser (reused: no allocation once warm); the `too_large` and
/// `malformed_json` errors name it as `what`. The value lives until the
/// next parse_input on this thread.
expected<value> parse_input(std::string_view text, const std::string& what);

/// Renders `value` compactly with sorted keys (canonical). Never throws:
/// invalid UTF-8, impossible after parse(), would be replaced.
std::string render(const json& value);

/// Appends render(value) to `out`.
void append_json(std::string& out, const json& value);

/// Appends `text` as a JSON string, exactly as nlohmann's dump() writes it
/// (invalid UTF-8 replaced), without building a json value (snapshots
/// write hundreds of thousands).
void append_json_string(std::string& out, std::string_view text);

/// `text` cut after its first 64 bytes (never inside a UTF-8 sequence) and
/// marked with "..." when cut, for messages.
std::string abbreviate(std::string_view text);

/// abbreviate(text) as a JSON string literal, for messages.
std::string quote(std::string_view text);

/// The JSON type of `v` in words ("string", "number", "object", ...).
const char* type_name(const value& v);

/// Reads the fields of one JSON object with presence, type, range and size
/// checks. The first failure wins and makes every later read a no-op, so a
/// decoder reads all fields and then asks finish() once.
class field_reader {
public:
  /// @param object Any JSON value; not an object is a `wrong_type` error.
  /// @param what Names the object in messages, e.g. "LockCommand".
  field_reader(value object, std::string what);

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
  /// Returns the required array at `key`, or nothing after recording why
  /// not.
  std::optional<simdjson::dom::array> array(const char* key);
  /// Returns the object at `key`; nothing when it is null or after
  /// recording an error (check ok()).
  std::optional<value> object_or_null(const char* key);

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

  /// Returns the first failure, or else the first field (in input order)
  /// that no read asked for or that the object holds twice.
  std::optional<error> finish();

  /// Names the field for messages, e.g. `LockCommand field "ttl_ms"`.
  std::string field(const char* key) const;

private:
  /// Counts `key` as a field of the object.
  void ask(std::string_view key);
  /// Returns the value at `key`, or nothing when absent (recording
  /// `missing_field` if `required`) or after an earlier failure.
  std::optional<value> find(const char* key, bool required);
  bool check_text(const char* key, const value& v, std::string& out,
                  std::size_t max_bytes);
  void read_integer(const char* key, const value& v, std::int64_t& out,
                    std::int64_t min, std::int64_t max);

  /// The object (null when the input was not one).
  simdjson::dom::object object_;
  bool is_object_ = false;
  std::string what_;
  /// The keys asked for, in the order asked (string literals; a handful
  /// per object, so a linear scan beats a set).
  std::vector<std::string_view> known_;
  std::optional<error> error_;
};

} // namespace ees::cluster_sm::detail
