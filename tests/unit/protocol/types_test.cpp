// The vocabulary types: membership encoding (§6 config entries), message
// rendering, names, and config validation.
#include "harness.hpp"

using namespace ees;
using namespace ees::raft;
using namespace ees::raft::test;

TEST_CASE("§6 encode_membership and decode_membership round-trip") {
  const membership cases[] = {
    membership{},
    members({1}),
    members({1, 2, 3}),
    members({1, 2, 3}, {4}),
    members({7, 9, 11, 13, 15}, {2, 4}),
    membership{{node_id{1}, node_id{UINT64_MAX}}, {node_id{1ull << 40}}},
  };
  for (const auto& m : cases) {
    auto bytes = encode_membership(m);
    CAPTURE(bytes);
    auto back = decode_membership(bytes);
    REQUIRE(back);
    CHECK(*back == m);
    CHECK(encode_membership(*back) == bytes); // canonical
  }
  CHECK(encode_membership(members({1, 2, 3}))
        != encode_membership(members({1, 2}, {3})));
}

TEST_CASE("§6 decode_membership rejects malformed input") {
  auto good = encode_membership(members({1, 2, 3}, {4}));
  SUBCASE("garbage") {
    CHECK_FALSE(decode_membership(std::string(16, '\xff')));
    CHECK_FALSE(decode_membership("not a membership"));
  }
  SUBCASE("trailing bytes") {
    CHECK_FALSE(decode_membership(good + "x"));
  }
  SUBCASE("voters and learners overlap") {
    membership bad{ids({1, 2, 3}), ids({3})};
    CHECK_FALSE(decode_membership(encode_membership(bad)));
  }
}

TEST_CASE("§6 decode_membership never accepts a truncated encoding as the "
          "original") {
  auto m = members({1, 2, 3}, {4, 5});
  auto good = encode_membership(m);
  REQUIRE(good.size() > 1);
  for (std::size_t len = 0; len < good.size(); ++len) {
    CAPTURE(len);
    auto back = decode_membership(good.substr(0, len));
    CHECK((!back || *back != m));
  }
}

TEST_CASE("describe renders a message deterministically on one line") {
  auto m = append_request(1, 2, 3, 4, 2, {entry(5, 3, "x")}, 4);
  auto copy = m;
  auto s = describe(m);
  CHECK(s == describe(copy));
  CHECK(s.find('\n') == std::string::npos);
  CHECK(s.find("append_request") != std::string::npos);
  // Different messages render differently.
  auto other = m;
  other.term = 4_t;
  CHECK(describe(other) != s);
  other = m;
  other.to = 3_n;
  CHECK(describe(other) != s);
  other = m;
  other.commit = 5_i;
  CHECK(describe(other) != s);
  auto ack = append_ack(2, 1, 3, 5);
  auto nack = ack;
  nack.reject = true;
  CHECK(describe(ack) != describe(nack));
  auto snap
    = install_snapshot(1, 2, 3, snapshot_meta{9_i, 3_t, members({1, 2})});
  CHECK(describe(snap) == describe(snap));
  CHECK(describe(snap) != describe(heartbeat(1, 2, 3, 0)));
}

TEST_CASE("describe stays on one line whatever the command bytes are") {
  // Commands are opaque (JSON, binary): a trace or golden file must not be
  // split or corrupted by the payload.
  auto m = append_request(1, 2, 3, 4, 2, {entry(5, 3, "{\n\"a\": 1\n}\r")}, 4);
  auto s = describe(m);
  CHECK(s.find('\n') == std::string::npos);
  CHECK(s.find('\r') == std::string::npos);
  auto binary
    = append_request(1, 2, 3, 4, 2, {entry(5, 3, std::string("a\0b\n", 4))}, 4);
  CHECK(describe(binary).find('\n') == std::string::npos);
}

TEST_CASE("names of message kinds, roles and error codes") {
  CHECK(std::string{to_string(message_type::append_request)}
        == "append_request");
  CHECK(std::string{to_string(message_type::pre_vote_response)}
        == "pre_vote_response");
  CHECK(std::string{to_string(message_type::timeout_now)} == "timeout_now");
  CHECK(std::string{to_string(role::pre_candidate)} == "pre_candidate");
  CHECK(std::string{to_string(role::leader)} == "leader");
  CHECK(std::string{to_string(raft_errc::not_leader)} == "not_leader");
  CHECK(std::string{to_string(raft_errc::stale_message)} == "stale_message");
}

TEST_CASE("raft_config validation names the offending field") {
  auto cfg = config_of(1);
  CHECK(validate(cfg).empty());
  SUBCASE("no id") {
    cfg.id = no_node;
    auto err = validate(cfg);
    CHECK_FALSE(err.empty());
    CHECK(err.find("id") != std::string::npos);
  }
  SUBCASE("heartbeat not shorter than the election timeout") {
    cfg.heartbeat_ticks = cfg.election_ticks;
    auto err = validate(cfg);
    CHECK_FALSE(err.empty());
    CHECK(err.find("heartbeat") != std::string::npos);
  }
  SUBCASE("zero election ticks") {
    cfg.election_ticks = 0;
    CHECK_FALSE(validate(cfg).empty());
  }
}
