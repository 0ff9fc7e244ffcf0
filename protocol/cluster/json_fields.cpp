#include "protocol/cluster/json_fields.hpp"

#include <algorithm>
#include <utility>

namespace ees::cluster_sm::detail {

json parse(std::string_view text) {
  return json::parse(text.begin(), text.end(), nullptr,
                     /*allow_exceptions=*/false);
}

expected<json> parse_input(std::string_view text, const std::string& what) {
  if (text.size() > max_command_bytes)
    return error{errc::too_large, what + " is " + std::to_string(text.size())
                                    + " bytes long; the limit is "
                                    + std::to_string(max_command_bytes)};
  auto doc = parse(text);
  if (doc.is_discarded())
    return error{errc::malformed_json, what + " is not valid JSON"};
  return doc;
}

std::string render(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

void append_json_string(std::string& out, std::string_view text) {
  auto plain = [](unsigned char c) {
    return c >= 0x20 && c != '"' && c != '\\';
  };
  if (std::any_of(text.begin(), text.end(), [](char c) {
        return static_cast<unsigned char>(c) >= 0x80;
      })) {
    // UTF-8: validated (and repaired) as render() does.
    out += render(json(std::string{text}));
    return;
  }
  out += '"';
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (plain(c))
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
  return render(json(abbreviate(text)));
}

field_reader::field_reader(const json& object, std::string what)
  : object_(object), what_(std::move(what)) {
  if (!object_.is_object())
    fail(errc::wrong_type, what_ + " must be a JSON object, not "
                             + std::string{object_.type_name()});
}

std::string field_reader::field(const char* key) const {
  return what_ + " field \"" + key + "\"";
}

void field_reader::fail(errc code, std::string message) {
  if (!error_)
    error_ = error{code, std::move(message)};
}

const json* field_reader::find(const char* key, bool required) {
  known_.emplace(key);
  if (error_)
    return nullptr;
  auto i = object_.find(key);
  if (i == object_.end()) {
    if (required)
      fail(errc::missing_field,
           what_ + " is missing the required field \"" + key + "\"");
    return nullptr;
  }
  return &*i;
}

bool field_reader::present(const char* key) {
  known_.emplace(key);
  return object_.is_object() && object_.contains(key);
}

bool field_reader::check_text(const char* key, const json& value,
                              std::string& out, std::size_t max_bytes) {
  if (!value.is_string()) {
    fail(errc::wrong_type, field(key) + " must be a string, not "
                             + std::string{value.type_name()});
    return false;
  }
  const auto& text = value.get_ref<const std::string&>();
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
  out = text;
  return true;
}

void field_reader::text(const char* key, std::string& out,
                        std::size_t max_bytes) {
  if (auto value = find(key, true))
    check_text(key, *value, out, max_bytes);
}

void field_reader::optional_text(const char* key,
                                 std::optional<std::string>& out,
                                 std::size_t max_bytes) {
  if (auto value = find(key, false)) {
    std::string text;
    if (check_text(key, *value, text, max_bytes))
      out = std::move(text);
  }
}

void field_reader::read_integer(const char* key, const json& value,
                                std::int64_t& out, std::int64_t min,
                                std::int64_t max) {
  if (!value.is_number_integer()) {
    fail(errc::wrong_type,
         field(key) + " must be an integer, not " + abbreviate(render(value)));
    return;
  }
  auto in_range = false;
  if (value.is_number_unsigned()) {
    auto u = value.get<std::uint64_t>();
    in_range = max >= 0 && u <= static_cast<std::uint64_t>(max)
               && static_cast<std::int64_t>(u) >= min;
  } else {
    auto i = value.get<std::int64_t>();
    in_range = i >= min && i <= max;
  }
  if (!in_range) {
    fail(errc::invalid_value,
         field(key) + " must be between " + std::to_string(min) + " and "
           + std::to_string(max) + ", got " + abbreviate(render(value)));
    return;
  }
  out = value.get<std::int64_t>();
}

void field_reader::integer(const char* key, std::int64_t& out, std::int64_t min,
                           std::int64_t max) {
  if (auto value = find(key, true))
    read_integer(key, *value, out, min, max);
}

void field_reader::optional_integer(const char* key, std::int64_t& out,
                                    std::int64_t min, std::int64_t max) {
  if (auto value = find(key, false))
    read_integer(key, *value, out, min, max);
}

void field_reader::natural(const char* key, std::uint64_t& out) {
  auto value = find(key, true);
  if (!value)
    return;
  if (!value->is_number_integer()) {
    fail(errc::wrong_type,
         field(key) + " must be an integer, not " + abbreviate(render(*value)));
    return;
  }
  if (!value->is_number_unsigned() && value->get<std::int64_t>() < 0) {
    fail(errc::invalid_value, field(key) + " must not be negative, got "
                                + abbreviate(render(*value)));
    return;
  }
  out = value->get<std::uint64_t>();
}

void field_reader::optional_flag(const char* key, bool& out) {
  auto value = find(key, false);
  if (!value)
    return;
  if (!value->is_boolean()) {
    fail(errc::wrong_type, field(key) + " must be true or false, not "
                             + abbreviate(render(*value)));
    return;
  }
  out = value->get<bool>();
}

void field_reader::names(const char* key, std::vector<std::string>& out,
                         std::size_t min_items, std::size_t max_items) {
  auto list = array(key);
  if (!list)
    return;
  if (list->size() < min_items) {
    fail(errc::invalid_value, field(key) + " must hold at least "
                                + std::to_string(min_items) + " item(s)");
    return;
  }
  if (list->size() > max_items) {
    fail(errc::too_large, field(key) + " holds " + std::to_string(list->size())
                            + " items; the limit is "
                            + std::to_string(max_items));
    return;
  }
  std::vector<std::string> result;
  result.reserve(list->size());
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const auto& item = (*list)[i];
    auto name = std::string{key} + "[" + std::to_string(i) + "]";
    std::string text;
    if (!check_text(name.c_str(), item, text, max_name_bytes))
      return;
    result.push_back(std::move(text));
  }
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
  auto value = find("v", true);
  if (!value)
    return;
  if (!value->is_number_integer()) {
    fail(errc::wrong_type,
         field("v") + " must be an integer, not " + abbreviate(render(*value)));
    return;
  }
  if (*value != version)
    fail(errc::unsupported_version,
         what_ + " version " + abbreviate(render(*value))
           + " is not supported; this replica speaks version "
           + std::to_string(version));
}

std::string field_reader::type_field() {
  std::string type;
  text("type", type);
  return type;
}

const json* field_reader::array(const char* key) {
  auto value = find(key, true);
  if (value && !value->is_array()) {
    fail(errc::wrong_type, field(key) + " must be an array, not "
                             + std::string{value->type_name()});
    return nullptr;
  }
  return value;
}

const json* field_reader::object_or_null(const char* key) {
  auto value = find(key, true);
  if (!value || value->is_null())
    return nullptr;
  if (!value->is_object()) {
    fail(errc::wrong_type, field(key) + " must be an object or null, not "
                             + std::string{value->type_name()});
    return nullptr;
  }
  return value;
}

std::optional<error> field_reader::finish() {
  if (!error_ && object_.is_object()) {
    for (const auto& item : object_.items()) {
      if (known_.count(item.key()) == 0) {
        std::string fields;
        for (const auto& k : known_)
          fields += (fields.empty() ? "" : ", ") + k;
        fail(errc::unknown_field, what_ + " has no field " + quote(item.key())
                                    + " (its fields: " + fields + ")");
        break;
      }
    }
  }
  return error_;
}

} // namespace ees::cluster_sm::detail
