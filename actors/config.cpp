#include "ees/cluster/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <sstream>

namespace ees::cluster {

namespace {

// -- key names ----------------------------------------------------------------

constexpr std::string_view key_node_id = "ees.cluster.node-id";
constexpr std::string_view key_rack = "ees.cluster.rack";
constexpr std::string_view key_zone = "ees.cluster.zone";
constexpr std::string_view key_listen = "ees.cluster.listen";
constexpr std::string_view key_peers = "ees.cluster.peers";
constexpr std::string_view key_data_dir = "ees.cluster.raft.data-dir";
constexpr std::string_view key_groups = "ees.cluster.raft.groups";
constexpr std::string_view key_peer_count = "ees.cluster.raft.peer-count";
constexpr std::string_view key_heartbeat = "ees.cluster.raft.heartbeat-ms";
constexpr std::string_view key_election = "ees.cluster.raft.election-ms";
constexpr std::string_view key_rpc_timeout = "ees.cluster.raft.rpc-timeout-ms";
constexpr std::string_view key_threshold
  = "ees.cluster.raft.snapshot.threshold";
constexpr std::string_view key_store = "ees.cluster.raft.snapshot.store";
constexpr std::string_view key_db_url = "ees.cluster.raft.snapshot.db.url";
constexpr std::string_view key_kafka_bootstrap
  = "ees.cluster.raft.snapshot.kafka.bootstrap-servers";
constexpr std::string_view key_kafka_topic
  = "ees.cluster.raft.snapshot.kafka.topic";
constexpr std::string_view key_threads = "ees.cluster.scheduler.threads";
constexpr std::string_view key_direct_links = "ees.cluster.raft.direct-links";
constexpr std::string_view key_tls_certificate = "ees.cluster.tls.certificate";
constexpr std::string_view key_tls_private_key = "ees.cluster.tls.private-key";
constexpr std::string_view key_tls_ca_file = "ees.cluster.tls.ca-file";

/// Keys that hold one value.
constexpr std::string_view scalar_keys[] = {
  key_node_id,
  key_rack,
  key_zone,
  key_listen,
  key_data_dir,
  key_peer_count,
  key_heartbeat,
  key_election,
  key_rpc_timeout,
  key_threshold,
  key_threads,
  key_direct_links,
  key_store,
  key_db_url,
  key_kafka_bootstrap,
  key_kafka_topic,
  key_tls_certificate,
  key_tls_private_key,
  key_tls_ca_file,
};

/// The key forms that hold lists.
constexpr std::string_view list_key_patterns[] = {
  "ees.cluster.peers[N]",
  key_peers,
  "ees.cluster.raft.groups[app].peers[i]",
  "ees.cluster.raft.groups[app].peers",
};

/// Every key form, as shown in suggestions.
const std::vector<std::string_view>& key_patterns() {
  static const auto all = [] {
    std::vector<std::string_view> out(std::begin(scalar_keys),
                                      std::end(scalar_keys));
    out.insert(out.end(), std::begin(list_key_patterns),
               std::end(list_key_patterns));
    return out;
  }();
  return all;
}

constexpr std::uint32_t max_group_peers = 7;
constexpr std::size_t max_file_size = 16 * 1024 * 1024;
constexpr int max_yaml_depth = 64;

const std::string command_line = "command line";

// -- string helpers -----------------------------------------------------------

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\f' || c == '\r' || c == '\v';
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  return s;
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

std::string_view trim(std::string_view s) {
  return trim_right(trim_left(s));
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

/// Parses a plain decimal number: digits only, no sign, no overflow.
std::optional<std::uint64_t> parse_uint(std::string_view s) {
  if (!all_digits(s))
    return std::nullopt;
  std::uint64_t x = 0;
  constexpr auto max = std::numeric_limits<std::uint64_t>::max();
  for (auto c : s) {
    auto digit = static_cast<std::uint64_t>(c - '0');
    if (x > (max - digit) / 10)
      return std::nullopt;
    x = x * 10 + digit;
  }
  return x;
}

/// Quotes `s` for a message, eliding the middle of long values.
std::string quote(std::string_view s) {
  constexpr std::size_t max_len = 80;
  std::string out = "'";
  if (s.size() <= max_len) {
    out += s;
  } else {
    out += s.substr(0, max_len / 2);
    out += "...";
    out += s.substr(s.size() - max_len / 2);
  }
  out += "'";
  return out;
}

/// Shows a value in a "got ..." clause: numbers bare, anything else quoted.
std::string shown(std::string_view s) {
  return all_digits(s) && s.size() <= 20 ? std::string{s} : quote(s);
}

std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    auto pos = s.find(',');
    out.push_back(trim(s.substr(0, pos)));
    if (pos == std::string_view::npos)
      return out;
    s.remove_prefix(pos + 1);
  }
}

std::string at_line(const std::string& source_name, int line) {
  return source_name + ":" + std::to_string(line);
}

// -- host:port ----------------------------------------------------------------

struct host_port {
  std::string host;
  std::uint16_t port = 0;
};

/// Returns the hostname characters we accept: letters, digits, `.`, `-`, `_`.
bool valid_hostname(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return is_alnum(c) || c == '.' || c == '-' || c == '_';
  });
}

bool valid_ipv6(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return is_alnum(c) || c == ':' || c == '.' || c == '%';
  });
}

/// Parses `host:port` or `[ipv6]:port`. On failure, sets `err` to a message
/// that says what is expected.
std::optional<host_port> parse_host_port(std::string_view s, std::string& err) {
  host_port out;
  std::string_view port;
  if (starts_with(s, "[")) {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size()
        || s[close + 1] != ':' || !valid_ipv6(s.substr(1, close - 1))) {
      err = "must be host:port or [ipv6]:port, got " + quote(s);
      return std::nullopt;
    }
    out.host = std::string{s.substr(1, close - 1)};
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      err = "must be host:port, got " + quote(s);
      return std::nullopt;
    }
    auto host = s.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      err = "must be host:port with IPv6 hosts in brackets ([::1]:7000), got "
            + quote(s);
      return std::nullopt;
    }
    if (!valid_hostname(host)) {
      err = "must be host:port with a host of letters, digits, '.', '-' or "
            "'_', got "
            + quote(s);
      return std::nullopt;
    }
    out.host = std::string{host};
    port = s.substr(colon + 1);
  }
  auto n = parse_uint(port);
  if (!n || *n < 1 || *n > 65535) {
    err = "port must be between 1 and 65535, got " + shown(port);
    return std::nullopt;
  }
  out.port = static_cast<std::uint16_t>(*n);
  return out;
}

std::string format_host_port(const std::string& host, std::uint16_t port) {
  auto p = std::to_string(port);
  if (host.find(':') != std::string::npos)
    return "[" + host + "]:" + p;
  return host + ":" + p;
}

bool is_wildcard(const std::string& host) {
  return host == "0.0.0.0" || host == "::";
}

// -- properties escapes -------------------------------------------------------

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::optional<std::uint32_t> parse_hex4(std::string_view s) {
  if (s.size() < 4)
    return std::nullopt;
  std::uint32_t x = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    auto c = s[i];
    x <<= 4;
    if (is_digit(c))
      x |= static_cast<std::uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      x |= static_cast<std::uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      x |= static_cast<std::uint32_t>(c - 'A' + 10);
    else
      return std::nullopt;
  }
  return x;
}

/// Resolves Java properties escapes. Returns nullopt on a malformed `\u`.
std::optional<std::string> unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    auto c = s[++i];
    switch (c) {
      case 't':
        out += '\t';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 'f':
        out += '\f';
        break;
      case 'u': {
        auto cp = parse_hex4(s.substr(i + 1));
        if (!cp)
          return std::nullopt;
        i += 4;
        if (*cp >= 0xD800 && *cp <= 0xDBFF) {
          // A high surrogate must be followed by an escaped low one.
          auto rest = s.substr(i + 1);
          if (!starts_with(rest, "\\u"))
            return std::nullopt;
          auto low = parse_hex4(rest.substr(2));
          if (!low || *low < 0xDC00 || *low > 0xDFFF)
            return std::nullopt;
          i += 6;
          *cp = 0x10000 + ((*cp - 0xD800) << 10) + (*low - 0xDC00);
        } else if (*cp >= 0xDC00 && *cp <= 0xDFFF) {
          return std::nullopt;
        }
        append_utf8(out, *cp);
        break;
      }
      default:
        out += c; // `\=`, `\:`, `\ `, `\\`, ...: the character itself
    }
  }
  return out;
}

std::string hex4(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "\\u%04X", static_cast<unsigned>(c));
  return buf;
}

/// Escapes `s` so that the properties parser reads it back unchanged.
std::string escape(std::string_view s, bool is_key) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = s[i];
    auto uc = static_cast<unsigned char>(c);
    bool edge = i == 0 || i + 1 == s.size();
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\f':
        out += "\\f";
        break;
      case ' ':
        // Unescaped whitespace at either end is trimmed, in keys anywhere.
        if (is_key || edge)
          out += "\\u0020";
        else
          out += c;
        break;
      case '=':
      case ':':
        if (is_key)
          out += '\\';
        out += c;
        break;
      case '#':
      case '!':
        if (is_key && i == 0)
          out += '\\';
        out += c;
        break;
      default:
        if (uc < 0x20 || uc == 0x7F)
          out += hex4(uc);
        else
          out += c;
    }
  }
  return out;
}

bool ends_in_escape(std::string_view s) {
  std::size_t n = 0;
  while (n < s.size() && s[s.size() - 1 - n] == '\\')
    ++n;
  return n % 2 == 1;
}

void add_entry(flat_config& out, std::vector<config_error>& errs,
               std::string key, std::string value, std::string source) {
  auto i = out.find(key);
  if (i != out.end()) {
    errs.push_back({std::move(key), "set twice; first at " + i->second.source,
                    std::move(source)});
    return;
  }
  out.emplace(std::move(key),
              config_entry{std::move(value), std::move(source)});
}

// -- YAML ---------------------------------------------------------------------

struct yaml_flattener {
  const std::string& source_name;
  flat_config out;
  std::vector<config_error> errs;

  std::string source_of(const YAML::Mark& mark, int fallback) const {
    return at_line(source_name, mark.is_null() ? fallback : mark.line + 1);
  }

  void add(const std::string& path, std::string value, int line) {
    if (path.empty()) {
      errs.push_back({{},
                      "the top level must be a map of keys",
                      at_line(source_name, line)});
      return;
    }
    add_entry(out, errs, path, std::move(value), at_line(source_name, line));
  }

  void flatten(const YAML::Node& node, const std::string& path, int line,
               int depth) {
    if (depth > max_yaml_depth) {
      errs.push_back({path, "nested too deeply", at_line(source_name, line)});
      return;
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        add(path, {}, line);
        return;
      case YAML::NodeType::Scalar:
        add(path, node.Scalar(), line);
        return;
      case YAML::NodeType::Sequence: {
        if (node.size() == 0) {
          add(path, {}, line);
          return;
        }
        std::size_t index = 0;
        for (const auto& item : node) {
          auto item_line = item.Mark().is_null() ? line : item.Mark().line + 1;
          flatten(item, path + "[" + std::to_string(index++) + "]", item_line,
                  depth + 1);
        }
        return;
      }
      case YAML::NodeType::Map: {
        if (node.size() == 0) {
          add(path, {}, line);
          return;
        }
        // The children of `groups` are application names, not key parts.
        bool app_names = path == key_groups;
        for (const auto& kv : node) {
          const auto& k = kv.first;
          auto key_line = k.Mark().is_null() ? line : k.Mark().line + 1;
          if (!k.IsScalar() || k.Scalar().empty()) {
            errs.push_back({path, "map keys must be non-empty scalars",
                            at_line(source_name, key_line)});
            continue;
          }
          std::string child;
          if (app_names)
            child = path + "[" + k.Scalar() + "]";
          else if (path.empty())
            child = k.Scalar();
          else
            child = path + "." + k.Scalar();
          flatten(kv.second, child, key_line, depth + 1);
        }
        return;
      }
    }
  }
};

// -- suggestions --------------------------------------------------------------

/// Replaces the contents of every `[...]` with nothing and collects them.
std::string strip_brackets(std::string_view key,
                           std::vector<std::string>* contents = nullptr) {
  std::string out;
  for (std::size_t i = 0; i < key.size(); ++i) {
    out += key[i];
    if (key[i] != '[')
      continue;
    auto close = key.find(']', i);
    if (close == std::string_view::npos)
      break;
    if (contents)
      contents->emplace_back(key.substr(i + 1, close - i - 1));
    i = close - 1;
  }
  return out;
}

/// Lower-cases and turns camelCase and snake_case into kebab-case.
std::string relaxed(std::string_view key) {
  std::string out;
  for (std::size_t i = 0; i < key.size(); ++i) {
    auto c = key[i];
    if (c >= 'A' && c <= 'Z') {
      if (i > 0
          && (is_alnum(key[i - 1])
              && !(key[i - 1] >= 'A' && key[i - 1] <= 'Z')))
        out += '-';
      out += static_cast<char>(c - 'A' + 'a');
    } else if (c == '_') {
      out += '-';
    } else {
      out += c;
    }
  }
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    auto diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      auto up = row[j];
      row[j] = std::min(
        {row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string_view last_segment(std::string_view key) {
  auto dot = key.rfind('.');
  return dot == std::string_view::npos ? key : key.substr(dot + 1);
}

/// Returns the known key closest to `key`, with `key`'s indices filled in,
/// or an empty string when none is close.
std::string suggest(std::string_view key) {
  if (key.size() > 200)
    return {};
  std::vector<std::string> contents;
  auto probe = strip_brackets(relaxed(key), &contents);
  std::optional<std::size_t> best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (std::size_t i = 0; i < key_patterns().size(); ++i) {
    auto pattern = strip_brackets(key_patterns()[i]);
    auto d = edit_distance(probe, pattern);
    if (d < best_distance
        && d <= std::max<std::size_t>(2, pattern.size() / 6)) {
      best = i;
      best_distance = d;
    }
  }
  auto tail = std::string{last_segment(probe)};
  if (!best) {
    // A key under the wrong parent: match on the last segment alone.
    for (std::size_t i = 0; i < key_patterns().size(); ++i) {
      if (last_segment(strip_brackets(key_patterns()[i])) != tail)
        continue;
      if (best)
        return {}; // ambiguous
      best = i;
    }
  }
  if (!best && tail.size() >= 3) {
    // A shortened name under the right parent, e.g. `tls.key`.
    auto parent = probe.substr(0, probe.size() - tail.size());
    for (std::size_t i = 0; i < key_patterns().size(); ++i) {
      auto pattern = strip_brackets(key_patterns()[i]);
      if (!starts_with(pattern, parent)
          || pattern.find('.', parent.size()) != std::string::npos
          || pattern.find(tail, parent.size()) == std::string::npos)
        continue;
      if (best)
        return {}; // ambiguous
      best = i;
    }
  }
  if (!best)
    return {};
  std::string_view pattern = key_patterns()[*best];
  std::vector<std::string> slots;
  strip_brackets(pattern, &slots);
  if (slots.size() != contents.size())
    return std::string{pattern};
  std::string out;
  std::size_t slot = 0;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    out += pattern[i];
    if (pattern[i] == '[') {
      out += contents[slot++];
      i = pattern.find(']', i) - 1;
    }
  }
  return out;
}

// -- validation ---------------------------------------------------------------

/// One item of a list key, in any of its forms.
struct list_item {
  std::string key; ///< The key it was set under.
  std::string value; ///< The item's text.
  std::string source; ///< Where it was set.
  std::optional<std::uint64_t> map_id; ///< Node id of the YAML map form.
};

/// The items of one list key, in order: the comma form, then indices.
struct list_value {
  const std::string* bare_key = nullptr;
  const config_entry* bare = nullptr;
  std::map<std::uint64_t, std::pair<const std::string*, const config_entry*>>
    indexed;
};

bool valid_app_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return is_alnum(c) || c == '.' || c == '_' || c == '-';
  });
}

bool valid_kafka_topic(std::string_view s) {
  return !s.empty() && s.size() <= 249 && s != "." && s != ".."
         && std::all_of(s.begin(), s.end(), [](char c) {
              return is_alnum(c) || c == '.' || c == '_' || c == '-';
            });
}

/// Parses `[N]` at the start of `s`; returns N and the rest after `]`.
std::optional<std::pair<std::uint64_t, std::string_view>>
parse_index(std::string_view s) {
  if (!starts_with(s, "["))
    return std::nullopt;
  auto close = s.find(']');
  if (close == std::string_view::npos)
    return std::nullopt;
  auto n = parse_uint(s.substr(1, close - 1));
  if (!n || close > 10)
    return std::nullopt;
  return std::make_pair(*n, s.substr(close + 1));
}

class validator {
public:
  explicit validator(const flat_config& cfg) : cfg_(cfg) {
    // nop
  }

  result<node_settings> run() {
    classify();
    read_identity();
    read_peers();
    read_raft();
    read_groups();
    read_snapshot();
    read_tls();
    if (!errs_.empty())
      return std::move(errs_);
    return std::move(out_);
  }

private:
  void fail(std::string_view key, std::string message, std::string source) {
    errs_.push_back({std::string{key}, std::move(message), std::move(source)});
  }

  const config_entry* find(std::string_view key) const {
    auto i = cfg_.find(std::string{key});
    return i == cfg_.end() ? nullptr : &i->second;
  }

  void missing(std::string_view key) {
    fail(key, "is required but not set", {});
  }

  // Sorts every key into its form, reporting the ones that are none.
  void classify() {
    for (const auto& [key, entry] : cfg_) {
      std::string_view k = key;
      if (std::find(std::begin(scalar_keys), std::end(scalar_keys), k)
          != std::end(scalar_keys))
        continue;
      if (k == key_peers) {
        peers_.bare_key = &key;
        peers_.bare = &entry;
        continue;
      }
      if (starts_with(k, key_peers) && k.size() > key_peers.size()) {
        auto rest = k.substr(key_peers.size());
        if (rest[0] == '[') {
          auto idx = parse_index(rest);
          if (idx && idx->second.empty()) {
            peers_.indexed.emplace(idx->first, std::make_pair(&key, &entry));
            continue;
          }
          fail(key,
               "unknown key; expected ees.cluster.peers[N] with N a "
               "number",
               entry.source);
          continue;
        }
        if (rest[0] == '.' && all_digits(rest.substr(1))) {
          peer_map_.emplace_back(&key, &entry);
          continue;
        }
      }
      if (starts_with(k, key_groups) && k.size() > key_groups.size()
          && k[key_groups.size()] == '[') {
        if (classify_group(key, entry))
          continue;
      }
      auto hint = suggest(k);
      fail(key,
           hint.empty() ? "unknown key"
                        : "unknown key; did you mean '" + hint + "'?",
           entry.source);
    }
  }

  // Handles `groups[app].peers` and `groups[app].peers[i]`.
  bool classify_group(const std::string& key, const config_entry& entry) {
    std::string_view k = key;
    auto rest = k.substr(key_groups.size() + 1);
    auto close = rest.find(']');
    if (close == std::string_view::npos)
      return false;
    auto app = std::string{rest.substr(0, close)};
    rest.remove_prefix(close + 1);
    if (!starts_with(rest, ".peers"))
      return false;
    rest.remove_prefix(6);
    if (!valid_app_name(app)) {
      fail(key,
           "application name must be letters, digits, '.', '_' or '-', got "
             + quote(app),
           entry.source);
      return true;
    }
    auto& group = groups_[app];
    if (rest.empty()) {
      group.bare_key = &key;
      group.bare = &entry;
      return true;
    }
    auto idx = parse_index(rest);
    if (!idx || !idx->second.empty())
      return false;
    group.indexed.emplace(idx->first, std::make_pair(&key, &entry));
    return true;
  }

  /// Flattens a list key's forms into items, reporting a mix of both.
  std::vector<list_item> items_of(const list_value& list,
                                  std::string_view index_form) {
    std::vector<list_item> out;
    if (list.bare != nullptr) {
      if (!list.indexed.empty())
        fail(*list.bare_key,
             "set both as a list and as " + std::string{index_form}
               + "; use one form",
             list.bare->source);
      auto value = trim(list.bare->value);
      if (!value.empty()) {
        std::size_t n = 0;
        for (auto item : split_commas(value)) {
          ++n;
          if (item.empty()) {
            fail(*list.bare_key,
                 "item " + std::to_string(n) + " of the list is empty",
                 list.bare->source);
            continue;
          }
          out.push_back({*list.bare_key, std::string{item}, list.bare->source,
                         std::nullopt});
        }
      }
    }
    for (const auto& [index, ke] : list.indexed)
      out.push_back({*ke.first, std::string{trim(ke.second->value)},
                     ke.second->source, std::nullopt});
    return out;
  }

  void read_string(std::string_view key, std::string& dst, bool required) {
    auto e = find(key);
    if (e == nullptr) {
      if (required)
        missing(key);
      return;
    }
    // Parsers already trim what is not escaped or quoted; keep the rest.
    if (trim(e->value).empty()) {
      fail(key, "must not be empty", e->source);
      return;
    }
    dst = e->value;
  }

  /// Reads an integer in [lo, hi]; returns whether the key was set and valid.
  template <class T>
  bool read_uint(std::string_view key, T& dst, std::uint64_t lo,
                 std::uint64_t hi) {
    auto e = find(key);
    if (e == nullptr)
      return false;
    auto value = trim(e->value);
    auto n = parse_uint(value);
    if (!n || *n < lo || *n > hi) {
      std::string expected;
      if (hi == std::numeric_limits<std::uint64_t>::max())
        expected = "an integer >= " + std::to_string(lo);
      else
        expected = "an integer between " + std::to_string(lo) + " and "
                   + std::to_string(hi);
      fail(key, "must be " + expected + ", got " + shown(value), e->source);
      return false;
    }
    dst = static_cast<T>(*n);
    return true;
  }

  void read_identity() {
    if (find(key_node_id) == nullptr)
      missing(key_node_id);
    else
      id_ok_ = read_uint(key_node_id, out_.id.value, 1,
                         std::numeric_limits<std::uint64_t>::max());
    read_string(key_rack, out_.rack, false);
    read_string(key_zone, out_.zone, false);
    if (auto e = find(key_listen); e == nullptr) {
      missing(key_listen);
    } else {
      std::string err;
      if (auto hp = parse_host_port(trim(e->value), err)) {
        out_.listen_host = hp->host;
        out_.listen_port = hp->port;
        listen_ok_ = true;
      } else {
        fail(key_listen, err, e->source);
      }
    }
  }

  std::optional<peer_address> parse_peer(const list_item& item) {
    peer_address peer;
    std::string_view text = item.value;
    if (item.map_id) {
      peer.id = node_id{*item.map_id};
    } else {
      auto at = text.find('@');
      if (at == std::string_view::npos) {
        fail(item.key, "must be id@host:port, got " + quote(text), item.source);
        return std::nullopt;
      }
      auto id = parse_uint(trim(text.substr(0, at)));
      if (!id) {
        fail(item.key,
             "must be id@host:port with a numeric id, got " + quote(text),
             item.source);
        return std::nullopt;
      }
      peer.id = node_id{*id};
      text = trim(text.substr(at + 1));
    }
    if (peer.id == no_node) {
      fail(item.key, "node id must be > 0, got 0", item.source);
      return std::nullopt;
    }
    std::string err;
    auto hp = parse_host_port(text, err);
    if (!hp) {
      fail(item.key, err, item.source);
      return std::nullopt;
    }
    peer.host = std::move(hp->host);
    peer.port = hp->port;
    return peer;
  }

  void read_peers() {
    auto items = items_of(peers_, "ees.cluster.peers[N]");
    std::sort(peer_map_.begin(), peer_map_.end(),
              [](const auto& x, const auto& y) {
                return x.first->size() != y.first->size()
                         ? x.first->size() < y.first->size()
                         : *x.first < *y.first;
              });
    for (const auto& [key, entry] : peer_map_) {
      auto id = parse_uint(std::string_view{*key}.substr(key_peers.size() + 1));
      if (!id) {
        fail(*key, "node id is too large", entry->source);
        peers_ok_ = false;
        continue;
      }
      items.push_back(
        {*key, std::string{trim(entry->value)}, entry->source, id});
    }
    std::map<node_id, std::string> seen_ids;
    std::map<std::pair<std::string, std::uint16_t>,
             std::pair<node_id, std::string>>
      seen_addresses;
    for (const auto& item : items) {
      auto peer = parse_peer(item);
      if (!peer) {
        peers_ok_ = false;
        continue;
      }
      auto address = format_host_port(peer->host, peer->port);
      if (auto i = seen_ids.find(peer->id); i != seen_ids.end()) {
        fail(item.key,
             "node " + to_string(peer->id) + " is listed twice (also at "
               + i->second + ")",
             item.source);
        continue;
      }
      seen_ids.emplace(peer->id, item.key);
      auto addr_key = std::make_pair(peer->host, peer->port);
      if (auto i = seen_addresses.find(addr_key); i != seen_addresses.end()) {
        fail(item.key,
             "address " + address + " is also used by node "
               + to_string(i->second.first) + " (at " + i->second.second + ")",
             item.source);
        continue;
      }
      seen_addresses.emplace(addr_key, std::make_pair(peer->id, item.key));
      if (id_ok_ && listen_ok_) {
        auto listen = format_host_port(out_.listen_host, out_.listen_port);
        bool same_port = peer->port == out_.listen_port;
        bool same_host
          = peer->host == out_.listen_host || is_wildcard(out_.listen_host);
        if (peer->id == out_.id && !(same_port && same_host)) {
          fail(item.key,
               "node " + to_string(peer->id)
                 + " is this node (ees.cluster.node-id), but its address "
                 + address + " differs from ees.cluster.listen " + listen,
               item.source);
          continue;
        }
        if (peer->id != out_.id && same_port
            && peer->host == out_.listen_host) {
          fail(item.key,
               "address " + address + " of node " + to_string(peer->id)
                 + " is this node's ees.cluster.listen",
               item.source);
          continue;
        }
      }
      out_.peers.push_back(std::move(*peer));
    }
  }

  void read_raft() {
    read_string(key_data_dir, out_.data_dir, true);
    if (auto e = find(key_peer_count); e != nullptr) {
      auto value = trim(e->value);
      auto n = parse_uint(value);
      if (!n || (*n != 3 && *n != 5))
        fail(key_peer_count, "must be 3 or 5, got " + shown(value), e->source);
      else
        out_.peer_count = static_cast<std::uint32_t>(*n);
    }
    bool heartbeat_ok = true;
    if (find(key_heartbeat) != nullptr)
      heartbeat_ok = read_uint(key_heartbeat, out_.heartbeat_ms, 10, 10000);
    bool election_ok = true;
    if (find(key_election) != nullptr)
      election_ok = read_uint(key_election, out_.election_ms, 1, 60000);
    // §5.2: followers must hear several heartbeats within an election
    // timeout, or a healthy leader loses its followers to elections.
    if (heartbeat_ok && election_ok
        && out_.election_ms < 3 * out_.heartbeat_ms) {
      auto e = find(key_election);
      auto source = e != nullptr ? e->source : find(key_heartbeat)->source;
      fail(key_election,
           "must be at least 3 x ees.cluster.raft.heartbeat-ms ("
             + std::to_string(3 * out_.heartbeat_ms) + "), got "
             + std::to_string(out_.election_ms)
             + (e != nullptr ? "" : " (the default)"),
           source);
    }
    read_uint(key_rpc_timeout, out_.rpc_timeout_ms, 10, 60000);
    read_uint(key_threads, out_.scheduler_threads, 0, 256);
    if (auto e = find(key_direct_links); e != nullptr) {
      auto value = trim(e->value);
      if (value == "true" || value == "false")
        out_.direct_links = value == "true";
      else
        fail(key_direct_links, "must be true or false, got " + shown(value),
             e->source);
    }
    read_uint(key_threshold, out_.snapshot_threshold, 1,
              std::numeric_limits<std::uint64_t>::max());
  }

  void read_groups() {
    auto index_form = std::string{key_groups} + "[app].peers[i]";
    bool check_known = id_ok_ && peers_ok_;
    std::set<node_id> known;
    if (check_known) {
      known.insert(out_.id);
      for (const auto& peer : out_.peers)
        known.insert(peer.id);
    }
    for (const auto& [app, list] : groups_) {
      auto group_key = std::string{key_groups} + "[" + app + "].peers";
      auto items = items_of(list, index_form);
      group_settings group;
      group.app = app;
      bool ok = true;
      for (const auto& item : items) {
        auto n = parse_uint(item.value);
        if (!n || *n == 0) {
          fail(item.key,
               "must be a node id (an integer >= 1), got " + shown(item.value),
               item.source);
          ok = false;
          continue;
        }
        node_id id{*n};
        if (std::find(group.peers.begin(), group.peers.end(), id)
            != group.peers.end()) {
          fail(item.key,
               "node " + to_string(id) + " is listed twice in group '" + app
                 + "'",
               item.source);
          ok = false;
          continue;
        }
        if (check_known && known.count(id) == 0) {
          fail(item.key,
               "node " + to_string(id)
                 + " is neither this node (ees.cluster.node-id) nor in "
                   "ees.cluster.peers",
               item.source);
          ok = false;
        }
        group.peers.push_back(id);
      }
      if (ok && (group.peers.empty() || group.peers.size() > max_group_peers)) {
        auto source = list.bare != nullptr
                        ? list.bare->source
                        : list.indexed.begin()->second.second->source;
        fail(group_key,
             "must list 1 to " + std::to_string(max_group_peers)
               + " node ids, got " + std::to_string(group.peers.size()),
             source);
      }
      out_.groups.push_back(std::move(group));
    }
  }

  void read_snapshot() {
    auto store = find(key_store);
    if (store != nullptr) {
      auto value = trim(store->value);
      if (value == "file")
        out_.snapshot_store = snapshot_store_kind::file;
      else if (value == "db")
        out_.snapshot_store = snapshot_store_kind::db;
      else if (value == "kafka-ktable")
        out_.snapshot_store = snapshot_store_kind::kafka_ktable;
      else
        fail(key_store, "must be file, db or kafka-ktable, got " + quote(value),
             store->source);
    }
    read_string(key_db_url, out_.snapshot_db_url, false);
    read_string(key_kafka_bootstrap, out_.kafka_bootstrap, false);
    read_string(key_kafka_topic, out_.kafka_topic, false);
    auto require = [&](std::string_view key) {
      if (find(key) == nullptr)
        fail(key,
             "is required when ees.cluster.raft.snapshot.store is "
               + std::string{to_string(out_.snapshot_store)},
             store->source);
    };
    if (out_.snapshot_store == snapshot_store_kind::db) {
      require(key_db_url);
    } else if (out_.snapshot_store == snapshot_store_kind::kafka_ktable) {
      require(key_kafka_bootstrap);
      require(key_kafka_topic);
    }
    if (auto e = find(key_kafka_bootstrap);
        e != nullptr && !out_.kafka_bootstrap.empty()) {
      for (auto server : split_commas(out_.kafka_bootstrap)) {
        std::string err;
        if (!parse_host_port(server, err)) {
          fail(key_kafka_bootstrap,
               "must be a comma-separated list of host:port; " + quote(server)
                 + ": " + err,
               e->source);
          break;
        }
      }
    }
    if (auto e = find(key_kafka_topic); e != nullptr
                                        && !out_.kafka_topic.empty()
                                        && !valid_kafka_topic(out_.kafka_topic))
      fail(key_kafka_topic,
           "must be 1 to 249 letters, digits, '.', '_' or '-', got "
             + quote(out_.kafka_topic),
           e->source);
  }

  void read_tls() {
    struct tls_key {
      std::string_view key;
      std::string* dst;
    };
    tls_key keys[] = {
      {key_tls_certificate, &out_.tls.certificate},
      {key_tls_private_key, &out_.tls.private_key},
      {key_tls_ca_file, &out_.tls.ca_file},
    };
    const tls_key* set = nullptr;
    for (const auto& k : keys) {
      auto e = find(k.key);
      if (e == nullptr)
        continue;
      set = &k;
      read_string(k.key, *k.dst, false);
      if (k.dst->empty())
        continue;
      std::error_code ec;
      auto status = std::filesystem::status(*k.dst, ec);
      if (!std::filesystem::exists(status))
        fail(k.key, "file not found: " + quote(*k.dst), e->source);
      else if (!std::filesystem::is_regular_file(status))
        fail(k.key, "is not a regular file: " + quote(*k.dst), e->source);
    }
    if (set == nullptr)
      return;
    for (const auto& k : keys)
      if (find(k.key) == nullptr)
        fail(k.key,
             "is required because " + std::string{set->key}
               + " is set (TLS needs all three files or none)",
             find(set->key)->source);
  }

  const flat_config& cfg_;
  std::vector<config_error> errs_;
  node_settings out_;
  bool id_ok_ = false;
  bool listen_ok_ = false;
  bool peers_ok_ = true;
  list_value peers_;
  std::vector<std::pair<const std::string*, const config_entry*>> peer_map_;
  std::map<std::string, list_value> groups_; // ordered: sorted by app
};

} // namespace

// -- errors -------------------------------------------------------------------

std::string to_string(const config_error& err) {
  std::string out = err.key;
  if (!err.message.empty())
    out += out.empty() ? err.message : ": " + err.message;
  if (!err.source.empty())
    out += out.empty() ? err.source : " (" + err.source + ")";
  return out;
}

std::string to_string(const std::vector<config_error>& errs) {
  std::string out;
  for (const auto& err : errs) {
    out += to_string(err);
    out += '\n';
  }
  return out;
}

void bad_result_access(const std::vector<config_error>& errs) {
  std::fprintf(stderr, "ees::cluster::result: value() of a failed result:\n%s",
               to_string(errs).c_str());
  std::abort();
}

// -- the settings model -------------------------------------------------------

const char* to_string(snapshot_store_kind x) {
  switch (x) {
    case snapshot_store_kind::file:
      return "file";
    case snapshot_store_kind::db:
      return "db";
    case snapshot_store_kind::kafka_ktable:
      return "kafka-ktable";
  }
  return "?";
}

bool tls_settings::enabled() const noexcept {
  return !certificate.empty() && !private_key.empty() && !ca_file.empty();
}

bool operator==(const tls_settings& x, const tls_settings& y) {
  return x.certificate == y.certificate && x.private_key == y.private_key
         && x.ca_file == y.ca_file;
}

bool operator==(const peer_address& x, const peer_address& y) {
  return x.id == y.id && x.host == y.host && x.port == y.port;
}

bool operator==(const group_settings& x, const group_settings& y) {
  return x.app == y.app && x.peers == y.peers;
}

bool operator==(const node_settings& x, const node_settings& y) {
  return x.id == y.id && x.rack == y.rack && x.zone == y.zone
         && x.listen_host == y.listen_host && x.listen_port == y.listen_port
         && x.peers == y.peers && x.data_dir == y.data_dir
         && x.groups == y.groups && x.peer_count == y.peer_count
         && x.heartbeat_ms == y.heartbeat_ms && x.election_ms == y.election_ms
         && x.rpc_timeout_ms == y.rpc_timeout_ms
         && x.scheduler_threads == y.scheduler_threads
         && x.direct_links == y.direct_links
         && x.snapshot_threshold == y.snapshot_threshold
         && x.snapshot_store == y.snapshot_store
         && x.snapshot_db_url == y.snapshot_db_url
         && x.kafka_bootstrap == y.kafka_bootstrap
         && x.kafka_topic == y.kafka_topic && x.tls == y.tls;
}

bool operator!=(const tls_settings& x, const tls_settings& y) {
  return !(x == y);
}

bool operator!=(const peer_address& x, const peer_address& y) {
  return !(x == y);
}

bool operator!=(const group_settings& x, const group_settings& y) {
  return !(x == y);
}

bool operator!=(const node_settings& x, const node_settings& y) {
  return !(x == y);
}

// -- parsing ------------------------------------------------------------------

result<flat_config> parse_properties(std::string_view text,
                                     const std::string& source_name) {
  flat_config out;
  std::vector<config_error> errs;
  if (starts_with(text, "\xEF\xBB\xBF"))
    text.remove_prefix(3);
  int line_no = 0;
  auto next_line = [&] {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_no;
    return line;
  };
  while (!text.empty()) {
    auto line = trim_left(next_line());
    auto first_line = line_no;
    if (line.empty() || line[0] == '#' || line[0] == '!')
      continue;
    std::string logical{trim_right(line)};
    while (ends_in_escape(logical)) {
      logical.pop_back();
      if (text.empty())
        break;
      logical += trim(next_line());
    }
    auto source = at_line(source_name, first_line);
    // The key ends at the first unescaped '=', ':' or whitespace.
    std::size_t i = 0;
    while (i < logical.size() && logical[i] != '=' && logical[i] != ':'
           && !is_space(logical[i]))
      i += logical[i] == '\\' ? 2 : 1;
    i = std::min(i, logical.size());
    std::string_view raw_key = std::string_view{logical}.substr(0, i);
    std::string_view rest = trim_left(std::string_view{logical}.substr(i));
    if (rest.empty() || (rest[0] != '=' && rest[0] != ':')) {
      errs.push_back({std::string{raw_key},
                      "malformed line: expected 'key=value' or 'key: value'",
                      source});
      continue;
    }
    if (raw_key.empty()) {
      errs.push_back({{}, "malformed line: missing key before '='", source});
      continue;
    }
    auto raw_value = trim_left(rest.substr(1));
    auto key = unescape(raw_key);
    auto value = unescape(raw_value);
    if (!key || !value) {
      errs.push_back({key ? *key : std::string{raw_key},
                      "malformed \\uXXXX escape", source});
      continue;
    }
    add_entry(out, errs, std::move(*key), std::move(*value), source);
  }
  if (!errs.empty())
    return errs;
  return out;
}

result<flat_config> parse_yaml(std::string_view text,
                               const std::string& source_name) {
  yaml_flattener flattener{source_name, {}, {}};
  try {
    auto root = YAML::Load(std::string{text});
    if (root.IsNull())
      return flat_config{};
    if (!root.IsMap())
      return std::vector<config_error>{{{},
                                        "the top level must be a map of keys",
                                        flattener.source_of(root.Mark(), 1)}};
    flattener.flatten(root, {}, 1, 0);
  } catch (const YAML::Exception& e) {
    auto source
      = e.mark.is_null() ? source_name : at_line(source_name, e.mark.line + 1);
    return std::vector<config_error>{{{}, "YAML: " + e.msg, source}};
  }
  if (!flattener.errs.empty())
    return std::move(flattener.errs);
  return std::move(flattener.out);
}

result<flat_config> parse_overrides(const std::vector<std::string>& args) {
  flat_config out;
  std::vector<config_error> errs;
  for (const auto& arg : args) {
    std::string_view s = arg;
    if (starts_with(s, "--"))
      s.remove_prefix(2);
    auto eq = s.find('=');
    auto key = trim(s.substr(0, eq));
    if (eq == std::string_view::npos || key.empty()) {
      errs.push_back(
        {std::string{key},
         "malformed override " + quote(arg) + ": expected key=value",
         command_line});
      continue;
    }
    out[std::string{key}] = {std::string{trim(s.substr(eq + 1))}, command_line};
  }
  if (!errs.empty())
    return errs;
  return out;
}

void apply_overrides(flat_config& base, const flat_config& overrides) {
  for (const auto& [key, entry] : overrides) {
    for (auto i = base.lower_bound(key); i != base.end();) {
      std::string_view k = i->first;
      if (!starts_with(k, key))
        break;
      if (k.size() == key.size() || k[key.size()] == '['
          || k[key.size()] == '.')
        i = base.erase(i);
      else
        ++i;
    }
    base[key] = entry;
  }
}

result<flat_config> read_config_file(const std::string& path) {
  namespace fs = std::filesystem;
  auto fail = [&](std::string message) {
    return std::vector<config_error>{{{}, std::move(message), path}};
  };
  auto ext = fs::path{path}.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  if (ext != ".properties" && ext != ".yaml" && ext != ".yml")
    return fail("unknown configuration file type " + quote(ext)
                + ": expected .properties, .yaml or .yml");
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (!fs::exists(status))
    return fail("configuration file not found");
  if (!fs::is_regular_file(status))
    return fail("configuration file is not a regular file");
  auto size = fs::file_size(path, ec);
  if (ec)
    return fail("cannot read configuration file: " + ec.message());
  if (size > max_file_size)
    return fail("configuration file is larger than 16 MiB");
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return fail("cannot open configuration file");
  std::string text{std::istreambuf_iterator<char>{in},
                   std::istreambuf_iterator<char>{}};
  if (in.bad())
    return fail("cannot read configuration file");
  if (ext == ".properties")
    return parse_properties(text, path);
  return parse_yaml(text, path);
}

result<node_settings> validate(const flat_config& cfg) {
  return validator{cfg}.run();
}

result<node_settings> load_settings(const std::optional<std::string>& file,
                                    const std::vector<std::string>& overrides) {
  try {
    flat_config cfg;
    std::vector<config_error> errs;
    if (file) {
      auto parsed = read_config_file(*file);
      if (parsed)
        cfg = std::move(*parsed);
      else
        errs = parsed.errors();
    }
    auto parsed = parse_overrides(overrides);
    if (!parsed) {
      errs.insert(errs.end(), parsed.errors().begin(), parsed.errors().end());
    } else if (errs.empty()) {
      apply_overrides(cfg, *parsed);
    }
    if (!errs.empty())
      return errs;
    return validate(cfg);
  } catch (const std::exception& e) {
    // Tier 3: nothing above should throw, but a bad file must never take the
    // process down with an unhandled exception.
    return std::vector<config_error>{
      {{}, std::string{"cannot load configuration: "} + e.what(), {}}};
  }
}

// -- output -------------------------------------------------------------------

std::string to_properties(const node_settings& x) {
  std::ostringstream out;
  auto put = [&](std::string_view key, std::string_view value) {
    out << escape(key, true) << '=' << escape(value, false) << '\n';
  };
  out << "# ees-cluster node settings (canonical form)\n";
  put(key_node_id, to_string(x.id));
  put(key_rack, x.rack);
  put(key_zone, x.zone);
  put(key_listen, format_host_port(x.listen_host, x.listen_port));
  for (std::size_t i = 0; i < x.peers.size(); ++i) {
    const auto& peer = x.peers[i];
    put(std::string{key_peers} + "[" + std::to_string(i) + "]",
        to_string(peer.id) + "@" + format_host_port(peer.host, peer.port));
  }
  put(key_data_dir, x.data_dir);
  for (const auto& group : x.groups)
    for (std::size_t i = 0; i < group.peers.size(); ++i)
      put(std::string{key_groups} + "[" + group.app + "].peers["
            + std::to_string(i) + "]",
          to_string(group.peers[i]));
  put(key_peer_count, std::to_string(x.peer_count));
  put(key_heartbeat, std::to_string(x.heartbeat_ms));
  put(key_election, std::to_string(x.election_ms));
  put(key_rpc_timeout, std::to_string(x.rpc_timeout_ms));
  put(key_threads, std::to_string(x.scheduler_threads));
  put(key_direct_links, x.direct_links ? "true" : "false");
  put(key_threshold, std::to_string(x.snapshot_threshold));
  put(key_store, to_string(x.snapshot_store));
  if (!x.snapshot_db_url.empty())
    put(key_db_url, x.snapshot_db_url);
  if (!x.kafka_bootstrap.empty())
    put(key_kafka_bootstrap, x.kafka_bootstrap);
  if (!x.kafka_topic.empty())
    put(key_kafka_topic, x.kafka_topic);
  if (!x.tls.certificate.empty())
    put(key_tls_certificate, x.tls.certificate);
  if (!x.tls.private_key.empty())
    put(key_tls_private_key, x.tls.private_key);
  if (!x.tls.ca_file.empty())
    put(key_tls_ca_file, x.tls.ca_file);
  return out.str();
}

} // namespace ees::cluster
