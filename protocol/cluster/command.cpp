#include "protocol/cluster/command.hpp"

#include "protocol/cluster/json_fields.hpp"

#include <utility>

namespace ees::cluster_sm {

using detail::field_reader;
using detail::json;

namespace {

/// Wire names, in the order of the alternatives of `command_body`.
constexpr const char* type_names[] = {
  "LockCommand",     "RenewLock", "ReleaseLock", "AssignPartition",
  "RevokePartition", "AssignKey", "UnassignKey",
};
static_assert(std::size(type_names) == std::variant_size_v<command_body>);

/// Returns a default body of the alternative named `type`, if any.
template <std::size_t I = 0>
std::optional<command_body> make_body(std::string_view type) {
  if constexpr (I < std::variant_size_v<command_body>) {
    if (type == type_names[I])
      return command_body{std::in_place_index<I>};
    return make_body<I + 1>(type);
  } else {
    return std::nullopt;
  }
}

// Field readers and writers, one pair per command. Keep each pair in sync:
// the round-trip test of every command checks that they are.

void read(field_reader& r, lock_command& x) {
  r.text("lock", x.lock);
  r.text("owner", x.owner);
  r.integer("ttl_ms", x.ttl_ms, min_ttl_ms, max_ttl_ms);
  r.optional_flag("wait", x.wait);
}

void write(json& j, const lock_command& x) {
  j["lock"] = x.lock;
  j["owner"] = x.owner;
  j["ttl_ms"] = x.ttl_ms;
  j["wait"] = x.wait;
}

void read(field_reader& r, renew_lock& x) {
  r.text("lock", x.lock);
  r.text("owner", x.owner);
  r.natural("token", x.token);
}

void write(json& j, const renew_lock& x) {
  j["lock"] = x.lock;
  j["owner"] = x.owner;
  j["token"] = x.token;
}

void read(field_reader& r, release_lock& x) {
  r.text("lock", x.lock);
  r.text("owner", x.owner);
  r.natural("token", x.token);
}

void write(json& j, const release_lock& x) {
  j["lock"] = x.lock;
  j["owner"] = x.owner;
  j["token"] = x.token;
}

void read(field_reader& r, assign_partition& x) {
  r.text("app", x.app);
  r.text("group", x.group);
  r.text("partition", x.partition);
  r.names("equipment_ids", x.equipment_ids, 1, max_equipment_ids);
}

void write(json& j, const assign_partition& x) {
  j["app"] = x.app;
  j["group"] = x.group;
  j["partition"] = x.partition;
  j["equipment_ids"] = x.equipment_ids;
}

void read(field_reader& r, revoke_partition& x) {
  r.text("app", x.app);
  r.text("group", x.group);
  r.text("partition", x.partition);
  if (r.present("equipment_ids")) {
    x.equipment_ids.emplace();
    r.names("equipment_ids", *x.equipment_ids, 1, max_equipment_ids);
  }
}

void write(json& j, const revoke_partition& x) {
  j["app"] = x.app;
  j["group"] = x.group;
  j["partition"] = x.partition;
  if (x.equipment_ids)
    j["equipment_ids"] = *x.equipment_ids;
}

void read(field_reader& r, assign_key& x) {
  r.text("key", x.key);
  r.text("owner", x.owner);
}

void write(json& j, const assign_key& x) {
  j["key"] = x.key;
  j["owner"] = x.owner;
}

void read(field_reader& r, unassign_key& x) {
  r.text("key", x.key);
  r.optional_text("owner", x.owner);
}

void write(json& j, const unassign_key& x) {
  j["key"] = x.key;
  if (x.owner)
    j["owner"] = *x.owner;
}

} // namespace

const char* to_string(errc code) {
  switch (code) {
    case errc::malformed_json:
      return "malformed_json";
    case errc::unsupported_version:
      return "unsupported_version";
    case errc::unknown_type:
      return "unknown_type";
    case errc::missing_field:
      return "missing_field";
    case errc::unknown_field:
      return "unknown_field";
    case errc::wrong_type:
      return "wrong_type";
    case errc::invalid_value:
      return "invalid_value";
    case errc::too_large:
      return "too_large";
    case errc::lock_held:
      return "lock_held";
    case errc::not_holder:
      return "not_holder";
    case errc::stale_token:
      return "stale_token";
    case errc::conflict:
      return "conflict";
    case errc::not_found:
      return "not_found";
    case errc::out_of_order:
      return "out_of_order";
  }
  return "unknown";
}

bool operator==(const command& a, const command& b) {
  return a.id == b.id && a.body == b.body;
}

const char* type_name(const command_body& body) {
  return type_names[body.index()];
}

expected<command> decode_command(std::string_view text) {
  auto doc = detail::parse_input(text, "the command");
  if (!doc)
    return doc.error();
  field_reader r{*doc, "the command"};
  r.version_field();
  auto type = r.type_field();
  std::optional<command_body> body;
  if (r.ok()) {
    body = make_body(type);
    if (!body) {
      std::string known;
      for (auto name : type_names)
        known += (known.empty() ? "" : ", ") + std::string{name};
      return error{errc::unknown_type, "unknown command type "
                                         + detail::quote(type)
                                         + " (known: " + known + ")"};
    }
    r.rename(type);
  }
  command result;
  r.text("id", result.id, max_id_bytes);
  if (body) {
    std::visit([&r](auto& x) { read(r, x); }, *body);
    result.body = std::move(*body);
  }
  if (auto err = r.finish())
    return *err;
  return result;
}

std::string encode_command(const command& cmd) {
  json j = json::object();
  j["v"] = version;
  j["type"] = type_name(cmd.body);
  j["id"] = cmd.id;
  std::visit([&j](const auto& x) { write(j, x); }, cmd.body);
  return detail::render(j);
}

} // namespace ees::cluster_sm
