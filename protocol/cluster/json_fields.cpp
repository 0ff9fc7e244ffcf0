#include "protocol/cluster/json_fields.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>
#include <utility>

namespace ees::cluster_sm::detail {

// Measured with 330-byte AssignKey commands (a 256-byte owner), 200,000
// decodes on this 2-core VM: nlohmann::json::parse 2.65 us each, simdjson's
// DOM parser 0.15 us.
expected<value> parse(simdjson::dom::parser& parser, std::string_view text,
                      const std::string& what) {
  value root;
  // Copies `text` into the parser's padded buffer (reused once grown).
  auto err = parser.parse(text.data(), text.size()).get(root);
  if (err == simdjson::NUMBER_ERROR)
    return error{errc::malformed_json,
                 what
                   + " is not valid JSON for this replica: it holds a "
                     "malformed number or an integer beyond 64 bits"};
  if (err)
    return error{errc::malformed_json, what + " is not valid JSON ("
                                         + simdjson::error_message(err) + ")"};
  return root;
}

expected<value> parse_input(std::string_view text, const std::string& what) {
  if (text.size() > max_command_bytes)
    return error{errc::too_large, what + " is " + std::to_string(text.size())
                                    + " bytes long; the limit is "
                                    + std::to_string(max_command_bytes)};
  // One per thread: an applier decodes every entry, and a warm parser
  // allocates nothing. Bounded by max_command_bytes of buffers.
  thread_local simdjson::dom::parser parser;
  return parse(parser, text, what);
}

std::string render(const json& value) {
  std::string out;
  append_json(out, value);
  return out;
}

// nlohmann's serializer decodes every byte of a string as UTF-8; answers
// echo 256-byte owners, and that decoding was a third of applying an
// AssignKey. Only strings with non-ASCII bytes still take that path.
void append_json(std::string& out, const json& value) {
  switch (value.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : value.items()) {
        if (!first)
          out += ',';
        first = false;
        append_json_string(out, key);
        out += ':';
        append_json(out, item);
      }
      out += '}';
      return;
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& item : value) {
        if (!first)
          out += ',';
        first = false;
        append_json(out, item);
      }
      out += ']';
      return;
    }
    case json::value_t::string:
      append_json_string(out, value.get_ref<const std::string&>());
      return;
    default:
      out += value.dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

namespace {

/// Whether any of the 8 bytes of `w` needs care in a JSON string: a control
/// character, '"', '\\' or a non-ASCII byte. Bit Twiddling Hacks' hasless
/// and haszero, exact as booleans.
constexpr bool any_special(std::uint64_t w) {
  constexpr std::uint64_t ones = 0x0101010101010101ull;
  constexpr std::uint64_t high = 0x8080808080808080ull;
  auto zero_byte = [](std::uint64_t v) {
    return (v - ones) & ~v & high;
  };
  auto below_space = (w - ones * 0x20) & ~w & high;
  return ((w & high) | below_space | zero_byte(w ^ (ones * '"'))
          | zero_byte(w ^ (ones * '\\')))
         != 0;
}

} // namespace

void append_json_string(std::string& out, std::string_view text) {
  auto start = out.size();
  out += '"';
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    // Eight plain bytes at a time: answers echo owners of hundreds of them.
    while (text.size() - i >= 8) {
      std::uint64_t word;
      std::memcpy(&word, text.data() + i, sizeof word);
      if (any_special(word))
        break;
      i += 8;
    }
    if (i == text.size())
      break;
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      // UTF-8: validated (and repaired) by nlohmann's serializer.
      out.resize(start);
      out += json(std::string{text})
               .dump(-1, ' ', false, json::error_handler_t::replace);
      return;
    }
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        static constexpr char hex[] = "0123456789abcdef";
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xF];
      }
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

std::string abbreviate(std::string_view text) {
  constexpr std::size_t shown = 64;
  if (text.size() <= shown)
    return std::string{text};
  auto cut = shown;
  // Never split a UTF-8 sequence: back up over continuation bytes.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;
  return std::string{text.substr(0, cut)} + "...";
}

std::string quote(std::string_view text) {
  std::string out;
  append_json_string(out, abbreviate(text));
  return out;
}

const char* type_name(const value& v) {
  switch (v.type()) {
    case simdjson::dom::element_type::ARRAY:
      return "array";
    case simdjson::dom::element_type::OBJECT:
      return "object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      return "number";
    case simdjson::dom::element_type::STRING:
      return "string";
    case simdjson::dom::element_type::BOOL:
      return "boolean";
    case simdjson::dom::element_type::NULL_VALUE:
      return "null";
  }
  return "value";
}

namespace {

/// `v` as compact JSON cut for a message.
std::string shown(const value& v) {
  return abbreviate(simdjson::minify(v));
}

bool is_integer(const value& v) {
  auto t = v.type();
  return t == simdjson::dom::element_type::INT64
         || t == simdjson::dom::element_type::UINT64;
}

} // namespace

field_reader::field_reader(value object, std::string what)
  : what_(std::move(what)) {
  if (object.get_object().get(object_) == simdjson::SUCCESS)
    is_object_ = true;
  else
    fail(errc::wrong_type,
         what_ + " must be a JSON object, not " + type_name(object));
}

std::string field_reader::field(const char* key) const {
  return what_ + " field \"" + key + "\"";
}

void field_reader::fail(errc code, std::string message) {
  if (!error_)
    error_ = error{code, std::move(message)};
}

void field_reader::ask(std::string_view key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end())
    known_.push_back(key);
}

std::optional<value> field_reader::find(const char* key, bool required) {
  ask(key);
  if (error_)
    return std::nullopt;
  value v;
  if (object_.at_key(key).get(v) != simdjson::SUCCESS) {
    if (required)
      fail(errc::missing_field,
           what_ + " is missing the required field \"" + key + "\"");
    return std::nullopt;
  }
  return v;
}

bool field_reader::present(const char* key) {
  ask(key);
  return is_object_ && object_.at_key(key).error() == simdjson::SUCCESS;
}

bool field_reader::check_text(const char* key, const value& v, std::string& out,
                              std::size_t max_bytes) {
  std::string_view text;
  if (v.get_string().get(text) != simdjson::SUCCESS) {
    fail(errc::wrong_type,
         field(key) + " must be a string, not " + std::string{type_name(v)});
    return false;
  }
  if (text.empty()) {
    fail(errc::invalid_value, field(key) + " must not be empty");
    return false;
  }
  if (text.size() > max_bytes) {
    fail(errc::too_large, field(key) + " is " + std::to_string(text.size())
                            + " bytes long; the limit is "
                            + std::to_string(max_bytes));
    return false;
  }
  out.assign(text.data(), text.size());
  return true;
}

void field_reader::text(const char* key, std::string& out,
                        std::size_t max_bytes) {
  if (auto v = find(key, true))
    check_text(key, *v, out, max_bytes);
}

void field_reader::optional_text(const char* key,
                                 std::optional<std::string>& out,
                                 std::size_t max_bytes) {
  if (auto v = find(key, false)) {
    std::string text;
    if (check_text(key, *v, text, max_bytes))
      out = std::move(text);
  }
}

void field_reader::read_integer(const char* key, const value& v,
                                std::int64_t& out, std::int64_t min,
                                std::int64_t max) {
  if (!is_integer(v)) {
    fail(errc::wrong_type, field(key) + " must be an integer, not " + shown(v));
    return;
  }
  // INT64 holds every integer that fits; UINT64 only those above
  // INT64_MAX, which no [min, max] here reaches.
  std::int64_t i = 0;
  if (v.type() != simdjson::dom::element_type::INT64
      || v.get_int64().get(i) != simdjson::SUCCESS || i < min || i > max) {
    fail(errc::invalid_value, field(key) + " must be between "
                                + std::to_string(min) + " and "
                                + std::to_string(max) + ", got " + shown(v));
    return;
  }
  out = i;
}

void field_reader::integer(const char* key, std::int64_t& out, std::int64_t min,
                           std::int64_t max) {
  if (auto v = find(key, true))
    read_integer(key, *v, out, min, max);
}

void field_reader::optional_integer(const char* key, std::int64_t& out,
                                    std::int64_t min, std::int64_t max) {
  if (auto v = find(key, false))
    read_integer(key, *v, out, min, max);
}

void field_reader::natural(const char* key, std::uint64_t& out) {
  auto v = find(key, true);
  if (!v)
    return;
  if (!is_integer(*v)) {
    fail(errc::wrong_type,
         field(key) + " must be an integer, not " + shown(*v));
    return;
  }
  std::uint64_t u = 0;
  if (v->get_uint64().get(u) != simdjson::SUCCESS) {
    fail(errc::invalid_value,
         field(key) + " must not be negative, got " + shown(*v));
    return;
  }
  out = u;
}

void field_reader::optional_flag(const char* key, bool& out) {
  auto v = find(key, false);
  if (!v)
    return;
  bool flag = false;
  if (v->get_bool().get(flag) != simdjson::SUCCESS) {
    fail(errc::wrong_type,
         field(key) + " must be true or false, not " + shown(*v));
    return;
  }
  out = flag;
}

void field_reader::names(const char* key, std::vector<std::string>& out,
                         std::size_t min_items, std::size_t max_items) {
  auto list = array(key);
  if (!list)
    return;
  auto size = list->size();
  if (size < min_items) {
    fail(errc::invalid_value, field(key) + " must hold at least "
                                + std::to_string(min_items) + " item(s)");
    return;
  }
  if (size > max_items) {
    fail(errc::too_large, field(key) + " holds " + std::to_string(size)
                            + " items; the limit is "
                            + std::to_string(max_items));
    return;
  }
  std::vector<std::string> result;
  result.reserve(size);
  std::size_t i = 0;
  for (value item : *list) {
    auto name = std::string{key} + "[" + std::to_string(i++) + "]";
    std::string text;
    if (!check_text(name.c_str(), item, text, max_name_bytes))
      return;
    result.push_back(std::move(text));
  }
  std::set<std::string_view> seen;
  for (const auto& text : result) {
    if (!seen.insert(text).second) {
      fail(errc::invalid_value,
           field(key) + " lists " + quote(text) + " more than once");
      return;
    }
  }
  out = std::move(result);
}

void field_reader::version_field() {
  auto v = find("v", true);
  if (!v)
    return;
  if (!is_integer(*v)) {
    fail(errc::wrong_type,
         field("v") + " must be an integer, not " + shown(*v));
    return;
  }
  std::int64_t got = 0;
  if (v->get_int64().get(got) != simdjson::SUCCESS || got != version)
    fail(errc::unsupported_version,
         what_ + " version " + shown(*v)
           + " is not supported; this replica speaks version "
           + std::to_string(version));
}

std::string field_reader::type_field() {
  std::string type;
  text("type", type);
  return type;
}

std::optional<simdjson::dom::array> field_reader::array(const char* key) {
  auto v = find(key, true);
  if (!v)
    return std::nullopt;
  simdjson::dom::array list;
  if (v->get_array().get(list) != simdjson::SUCCESS) {
    fail(errc::wrong_type,
         field(key) + " must be an array, not " + std::string{type_name(*v)});
    return std::nullopt;
  }
  return list;
}

std::optional<value> field_reader::object_or_null(const char* key) {
  auto v = find(key, true);
  if (!v || v->is_null())
    return std::nullopt;
  if (!v->is_object()) {
    fail(errc::wrong_type, field(key) + " must be an object or null, not "
                             + std::string{type_name(*v)});
    return std::nullopt;
  }
  return v;
}

std::optional<error> field_reader::finish() {
  if (error_ || !is_object_)
    return error_;
  // Input order; stops at the first problem, so `seen` never outgrows the
  // known fields.
  std::vector<std::string_view> seen;
  for (auto field : object_) {
    auto key = field.key;
    if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
      std::vector<std::string_view> names = known_;
      std::sort(names.begin(), names.end());
      std::string fields;
      for (auto k : names)
        fields += (fields.empty() ? "" : ", ") + std::string{k};
      fail(errc::unknown_field, what_ + " has no field " + quote(key)
                                  + " (its fields: " + fields + ")");
      break;
    }
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      fail(errc::invalid_value,
           what_ + " holds the field " + quote(key) + " more than once");
      break;
    }
    seen.push_back(key);
  }
  return error_;
}

} // namespace ees::cluster_sm::detail
