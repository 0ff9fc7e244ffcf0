// The command codec: every command round-trips, and every class of
// malformed input is a typed error that leaves the state machine unchanged.
#include "harness.hpp"
#include "protocol/cluster/json_fields.hpp"
#include "protocol/splitmix.hpp"

#include <set>

using namespace ees;
using namespace ees::cluster_sm;
using namespace ees::cluster_sm::test;

namespace {

/// One example of every command, with optional fields both ways and values
/// at the edges of their ranges.
std::vector<command> every_command() {
  std::string long_name(max_name_bytes, 'n');
  std::vector<std::string> many;
  for (std::size_t i = 0; i < max_equipment_ids; ++i)
    many.push_back("eq-" + std::to_string(i));
  return {
    {"a", lock_command{"l", "o", 1, true}},
    {std::string(max_id_bytes, 'i'),
     lock_command{long_name, "o", 3'600'000, false}},
    {"r1", renew_lock{"l", "o", 0}},
    {"r2", renew_lock{"l", "o", UINT64_MAX}},
    {"x1", release_lock{"l", "o", 17}},
    {"p1", assign_partition{"app", "g", "p", {"e1"}}},
    {"p2", assign_partition{"app", "g", "p", many}},
    {"p3", revoke_partition{"app", "g", "p", std::nullopt}},
    {"p4",
     revoke_partition{"app", "g", "p", std::vector<std::string>{"e2", "e1"}}},
    {"k1", assign_key{"key", "owner"}},
    {"k2", unassign_key{"key", std::nullopt}},
    {"k3", unassign_key{"key", std::string{"owner"}}},
    {"u", assign_key{"\xc3\xa4 \"quoted\" \\ \n", "\xe2\x82\xac"}},
  };
}

struct bad_input {
  const char* what;
  std::string text;
  errc code;
  /// A part of the message that names the culprit.
  std::string names;
};

std::string with(const char* type, const std::string& fields) {
  return std::string{R"({"v":1,"id":"r","type":")"} + type + "\"" + fields
         + "}";
}

std::vector<bad_input> malformed_inputs() {
  std::string ids10001 = "[";
  for (int i = 0; i <= 10000; ++i)
    ids10001 += (i ? ",\"e" : "\"e") + std::to_string(i) + "\"";
  ids10001 += "]";
  auto lock = [](const std::string& extra) {
    return with("LockCommand", R"(,"lock":"l","owner":"o")" + extra);
  };
  auto part = [](const std::string& extra) {
    return with("AssignPartition",
                R"(,"app":"a","group":"g","partition":"p")" + extra);
  };
  return {
    {"empty object", "{}", errc::missing_field, "\"v\""},
    {"not JSON", "lock please", errc::malformed_json, "JSON"},
    {"truncated JSON", R"({"v":1,"type":"LockCommand")", errc::malformed_json,
     "JSON"},
    {"trailing garbage", R"({"v":1} x)", errc::malformed_json, "JSON"},
    {"invalid UTF-8", "{\"v\":1,\"id\":\"\xff\"}", errc::malformed_json, ""},
    {"an array", "[1,2]", errc::wrong_type, "object"},
    {"a string", "\"LockCommand\"", errc::wrong_type, "object"},
    {"v is a string", R"({"v":"1","type":"AssignKey","id":"r"})",
     errc::wrong_type, "\"v\""},
    {"v is a float", R"({"v":1.5,"type":"AssignKey","id":"r"})",
     errc::wrong_type, "\"v\""},
    {"v is 2", R"({"v":2,"type":"AssignKey","id":"r"})",
     errc::unsupported_version, "version 2"},
    {"v is 0", R"({"v":0,"type":"AssignKey","id":"r"})",
     errc::unsupported_version, "version 0"},
    {"missing type", R"({"v":1,"id":"r"})", errc::missing_field, "\"type\""},
    {"type is a number", R"({"v":1,"id":"r","type":7})", errc::wrong_type,
     "\"type\""},
    {"unknown type", with("Frobnicate", ""), errc::unknown_type,
     "\"Frobnicate\""},
    {"missing id", R"({"v":1,"type":"AssignKey","key":"k","owner":"o"})",
     errc::missing_field, "\"id\""},
    {"empty id", R"({"v":1,"id":"","type":"AssignKey","key":"k","owner":"o"})",
     errc::invalid_value, "\"id\""},
    {"id is a number",
     R"({"v":1,"id":5,"type":"AssignKey","key":"k","owner":"o"})",
     errc::wrong_type, "\"id\""},
    {"oversize id",
     R"({"v":1,"type":"AssignKey","key":"k","owner":"o","id":")"
       + std::string(max_id_bytes + 1, 'i') + "\"}",
     errc::too_large, "\"id\""},
    {"missing lock", with("LockCommand", R"(,"owner":"o","ttl_ms":5)"),
     errc::missing_field, "\"lock\""},
    {"missing ttl", lock(""), errc::missing_field, "\"ttl_ms\""},
    {"ttl is a string", lock(R"(,"ttl_ms":"5")"), errc::wrong_type,
     "\"ttl_ms\""},
    {"ttl is a float", lock(R"(,"ttl_ms":5.5)"), errc::wrong_type,
     "\"ttl_ms\""},
    {"ttl is 0", lock(R"(,"ttl_ms":0)"), errc::invalid_value, "\"ttl_ms\""},
    {"ttl is negative", lock(R"(,"ttl_ms":-5)"), errc::invalid_value,
     "\"ttl_ms\""},
    {"ttl above an hour", lock(R"(,"ttl_ms":3600001)"), errc::invalid_value,
     "3600000"},
    // The parser (simdjson) rejects the whole input, so the message cannot
    // name the field.
    {"ttl beyond 64 bits", lock(R"(,"ttl_ms":99999999999999999999)"),
     errc::malformed_json, "beyond 64 bits"},
    {"a number with a leading zero", lock(R"(,"ttl_ms":05)"),
     errc::malformed_json, "malformed number"},
    {"a field given twice", lock(R"(,"ttl_ms":5,"lock":"m")"),
     errc::invalid_value, "\"lock\" more than once"},
    {"wait is a string", lock(R"(,"ttl_ms":5,"wait":"yes")"), errc::wrong_type,
     "\"wait\""},
    {"extra field", lock(R"(,"ttl_ms":5,"session":"s")"), errc::unknown_field,
     "\"session\""},
    {"empty owner", with("LockCommand", R"(,"lock":"l","owner":"","ttl_ms":5)"),
     errc::invalid_value, "\"owner\""},
    {"oversize lock name",
     with("LockCommand", R"(,"owner":"o","ttl_ms":5,"lock":")"
                           + std::string(max_name_bytes + 1, 'l') + "\""),
     errc::too_large, "\"lock\""},
    {"token is negative",
     with("ReleaseLock", R"(,"lock":"l","owner":"o","token":-1)"),
     errc::invalid_value, "\"token\""},
    {"token is a string",
     with("RenewLock", R"(,"lock":"l","owner":"o","token":"1")"),
     errc::wrong_type, "\"token\""},
    {"token missing", with("RenewLock", R"(,"lock":"l","owner":"o")"),
     errc::missing_field, "\"token\""},
    {"equipment list missing", part(""), errc::missing_field,
     "\"equipment_ids\""},
    {"equipment list is a string", part(R"(,"equipment_ids":"e1")"),
     errc::wrong_type, "\"equipment_ids\""},
    {"empty equipment list", part(R"(,"equipment_ids":[])"),
     errc::invalid_value, "\"equipment_ids\""},
    {"oversize equipment list", part(",\"equipment_ids\":" + ids10001),
     errc::too_large, "10000"},
    {"equipment id is a number", part(R"(,"equipment_ids":["e1",2])"),
     errc::wrong_type, "equipment_ids[1]"},
    {"empty equipment id", part(R"(,"equipment_ids":["e1",""])"),
     errc::invalid_value, "equipment_ids[1]"},
    {"duplicate equipment id", part(R"(,"equipment_ids":["e1","e2","e1"])"),
     errc::invalid_value, "\"e1\""},
    {"empty revoke list",
     with("RevokePartition",
          R"(,"app":"a","group":"g","partition":"p","equipment_ids":[])"),
     errc::invalid_value, "\"equipment_ids\""},
    {"unassign owner is null",
     with("UnassignKey", R"(,"key":"k","owner":null)"), errc::wrong_type,
     "\"owner\""},
    {"oversize command",
     with("AssignKey", R"(,"key":"k","owner":"o","pad":")"
                         + std::string(max_command_bytes, ' ') + "\""),
     errc::too_large, "1048576"},
  };
}

} // namespace

TEST_CASE("encode_command and decode_command round-trip every command") {
  for (const auto& c : every_command()) {
    auto text = encode_command(c);
    CAPTURE(text.substr(0, 200));
    auto back = decode_command(text);
    REQUIRE(back);
    CHECK(*back == c);
    CHECK(encode_command(*back) == text); // canonical
  }
}

TEST_CASE("decode_command takes the documented defaults and envelope") {
  auto c = decode_command(
    R"({"type":"LockCommand","v":1,"id":"r","lock":"l","owner":"o","ttl_ms":7})");
  REQUIRE(c);
  CHECK(c->id == "r");
  REQUIRE(std::holds_alternative<lock_command>(c->body));
  CHECK(std::get<lock_command>(c->body).wait);
  CHECK(std::string{type_name(c->body)} == "LockCommand");
  auto encoded = json::parse(encode_command(*c));
  CHECK(encoded["v"] == 1);
  CHECK(encoded["type"] == "LockCommand");
  CHECK(encoded["wait"] == true);
}

TEST_CASE("every malformed input class is a typed error naming the culprit "
          "and changes nothing") {
  replica r;
  r.ok(lock("l", "holder"));
  r.ok(assign("p", {"e1", "e2"}));
  for (const auto& bad : malformed_inputs()) {
    CAPTURE(bad.what);
    auto decoded = decode_command(bad.text);
    REQUIRE_FALSE(decoded);
    CHECK(decoded.error().code == bad.code);
    CAPTURE(decoded.error().message);
    CHECK(decoded.error().message.find(bad.names) != std::string::npos);
    auto answer = expect_rejected(r, bad.text, bad.code);
    CHECK(message(answer) == decoded.error().message);
  }
}

TEST_CASE("every error code has a distinct wire name") {
  std::set<std::string> names;
  for (int i = 0; i <= static_cast<int>(errc::out_of_order); ++i)
    names.insert(to_string(static_cast<errc>(i)));
  CHECK(names.size() == static_cast<std::size_t>(errc::out_of_order) + 1);
  CHECK(names.count("unknown") == 0);
}

TEST_CASE("render writes exactly what nlohmann's dump writes, for every "
          "string byte and every kind of value") {
  using detail::json;
  auto dump = [](const json& v) {
    return v.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  std::string every_ascii;
  for (int c = 0; c < 0x80; ++c)
    every_ascii += static_cast<char>(c);
  std::vector<json> fixed = {
    every_ascii,
    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", // valid UTF-8
    "bad \xff\xfe utf-8 \xc3", // replaced
    json::object(),
    json::array(),
    nullptr,
    true,
    false,
    std::int64_t{-9'223'372'036'854'775'807} - 1,
    std::uint64_t{18'446'744'073'709'551'615u},
    0.1,
    -1.5e300,
    {{"z", 1}, {"a", {{"\n", "\t"}, {"q\"", json::array({1, "x", nullptr})}}}},
  };
  for (const auto& v : fixed)
    CHECK(detail::render(v) == dump(v));
  // Random strings of every byte value, nested in objects and arrays.
  splitmix64 rng{7};
  for (int i = 0; i < 2000; ++i) {
    std::string text(rng.next() % 40, ' ');
    for (auto& c : text)
      c = static_cast<char>(rng.next() % (i % 2 == 0 ? 0x80 : 0x100));
    json v = {{text, json::array({text, i})}, {"k", text}};
    CHECK(detail::render(v) == dump(v));
  }
  // Long plain runs (read eight bytes at a time) with one byte that needs
  // care at every position of the words.
  for (char special :
       {'"', '\\', '\n', '\x01', '\x1f', ' ', '~', '\x7f', '\xc3', '\xff'}) {
    for (std::size_t at = 0; at < 40; ++at) {
      std::string text(40, 'a');
      text[at] = special;
      CHECK(detail::render(json(text)) == dump(json(text)));
    }
  }
}
