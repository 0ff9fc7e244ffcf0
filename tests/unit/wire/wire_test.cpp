// Rule 8: every wire and disk type round-trips through CAF's binary
// serialization, field for field. The `inspect` overloads live next to the
// types in protocol/ (which includes no CAF); this test is where they meet
// CAF 0.17's serializers.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "actors/client_types.hpp"
#include "actors/entry_stamp.hpp"
#include "actors/envelope.hpp"
#include "protocol/raft/types.hpp"
#include "protocol/splitmix.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <vector>

using namespace ees;
using namespace ees::raft;

namespace {

template <class T>
std::vector<char> save(T x) {
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  auto err = sink(x);
  REQUIRE(!err);
  return buf;
}

template <class T>
T load(const std::vector<char>& buf) {
  T x;
  caf::binary_deserializer source{nullptr, buf};
  auto err = source(x);
  REQUIRE(!err);
  CHECK(source.remaining() == 0);
  return x;
}

template <class T>
void check_round_trip(const T& x) {
  auto bytes = save(x);
  CHECK(load<T>(bytes) == x);
  CHECK(save(x) == bytes); // deterministic encoding
}

/// Every mutation of `base` changes its encoding: no field is left out of
/// `inspect`.
template <class T>
void check_every_field_encoded(
  const T& base, std::initializer_list<std::function<void(T&)>> mutations) {
  auto bytes = save(base);
  int n = 0;
  for (auto& mutate : mutations) {
    CAPTURE(n++);
    auto x = base;
    mutate(x);
    CHECK(save(x) != bytes);
  }
}

/// Deterministic pseudo-random values (splitmix64).
struct gen : splitmix64 {
  std::uint64_t below(std::uint64_t n) {
    return next() % n;
  }
  std::string bytes() {
    std::string s(below(40), '\0');
    for (auto& c : s)
      c = static_cast<char>(next());
    return s;
  }
  membership members() {
    membership m;
    for (auto n = below(6); n > 0; --n)
      m.voters.insert(node_id{1 + below(9)});
    for (auto n = below(3); n > 0; --n) {
      node_id id{10 + below(9)};
      m.learners.insert(id);
    }
    return m;
  }
  log_entry entry() {
    return log_entry{term_t{next()}, log_index{next()},
                     static_cast<entry_type>(below(3)), bytes()};
  }
};

} // namespace

TEST_CASE("wire: log_entry of every type round-trips") {
  for (auto type : {entry_type::normal, entry_type::noop, entry_type::config})
    check_round_trip(log_entry{term_t{7}, log_index{1ull << 40}, type,
                               std::string("\0\xff payload", 10)});
}

TEST_CASE("wire: hard_state, membership, snapshot_meta and conf_change "
          "round-trip") {
  check_round_trip(hard_state{term_t{3}, node_id{2}, log_index{99}});
  check_round_trip(hard_state{});
  check_round_trip(membership{});
  membership m{{node_id{1}, node_id{2}, node_id{3}}, {node_id{4}}};
  check_round_trip(m);
  check_round_trip(snapshot_meta{log_index{10}, term_t{2}, m});
  for (auto op :
       {conf_change::kind::add_learner, conf_change::kind::promote_learner,
        conf_change::kind::remove_node})
    check_round_trip(conf_change{op, node_id{UINT64_MAX}});
}

TEST_CASE("wire: messages of every kind with every field set round-trip") {
  gen g{42};
  for (int i = 0; i < 500; ++i) {
    message m;
    m.type = static_cast<message_type>(i % 10);
    m.from = node_id{g.next()};
    m.to = node_id{g.next()};
    m.term = term_t{g.next()};
    m.log_term = term_t{g.next()};
    m.index = log_index{g.next()};
    for (auto n = g.below(4); n > 0; --n)
      m.entries.push_back(g.entry());
    m.commit = log_index{g.next()};
    m.reject = g.below(2) == 1;
    m.reject_hint = log_index{g.next()};
    m.context = g.next();
    m.snapshot
      = snapshot_meta{log_index{g.next()}, term_t{g.next()}, g.members()};
    CAPTURE(describe(m));
    check_round_trip(m);
  }
}

TEST_CASE("wire: a changed field changes the encoding") {
  // Guards against an inspect that forgets a field: every field must reach
  // the bytes.
  message base;
  base.type = message_type::append_request;
  auto bytes = save(base);
  auto differs = [&](auto mutate) {
    auto m = base;
    mutate(m);
    return save(m) != bytes;
  };
  CHECK(differs([](message& m) { m.type = message_type::timeout_now; }));
  CHECK(differs([](message& m) { m.from = node_id{1}; }));
  CHECK(differs([](message& m) { m.to = node_id{1}; }));
  CHECK(differs([](message& m) { m.term = term_t{1}; }));
  CHECK(differs([](message& m) { m.log_term = term_t{1}; }));
  CHECK(differs([](message& m) { m.index = log_index{1}; }));
  CHECK(differs([](message& m) { m.entries.emplace_back(); }));
  CHECK(differs([](message& m) { m.commit = log_index{1}; }));
  CHECK(differs([](message& m) { m.reject = true; }));
  CHECK(differs([](message& m) { m.reject_hint = log_index{1}; }));
  CHECK(differs([](message& m) { m.context = 1; }));
  CHECK(differs([](message& m) { m.snapshot.last_index = log_index{1}; }));
  CHECK(differs([](message& m) { m.snapshot.last_term = term_t{1}; }));
  CHECK(
    differs([](message& m) { m.snapshot.config.learners.insert(node_id{1}); }));
}

TEST_CASE("wire: truncated input is an error, never a crash") {
  gen g{7};
  message m;
  m.type = message_type::append_request;
  for (int i = 0; i < 3; ++i)
    m.entries.push_back(g.entry());
  auto bytes = save(m);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::vector<char> cut(bytes.begin(),
                          bytes.begin() + static_cast<std::ptrdiff_t>(n));
    message back;
    caf::binary_deserializer source{nullptr, cut};
    CHECK(static_cast<bool>(source(back)));
  }
}

TEST_CASE("wire: client events and applied batches round-trip") {
  check_round_trip(actors::client_event{group_id{7}, "owner-1", "{}"});
  actors::applied_batch batch;
  batch.last = log_index{9};
  batch.results.push_back({log_index{9}, term_t{2}, "v"});
  batch.next_deadline = 1234;
  auto b = load<actors::applied_batch>(save(batch));
  CHECK(b.last == batch.last);
  REQUIRE(b.results.size() == 1);
  CHECK(b.results[0].value == "v");
  CHECK(b.next_deadline == 1234);
}

TEST_CASE("entry payload: the leader's stamp and the command round-trip") {
  gen g{11};
  for (int i = 0; i < 200; ++i) {
    auto time = static_cast<std::int64_t>(g.next());
    auto cmd = g.bytes();
    auto data = actors::stamp_command(time, cmd);
    auto back = actors::unstamp_command(data);
    REQUIRE(back.has_value());
    CHECK(back->first == time);
    CHECK(back->second == cmd);
  }
  // An unstamped payload is recognised, never misread.
  CHECK_FALSE(actors::unstamp_command("").has_value());
  CHECK_FALSE(actors::unstamp_command("set x 1").has_value());
  CHECK_FALSE(
    actors::unstamp_command(std::string(8, static_cast<char>(1))).has_value());
}

TEST_CASE("wire: the actor layer's envelope, statuses and client replies "
          "round-trip with every field") {
  using namespace ees::actors;
  gen g{11};
  message m;
  m.type = message_type::install_snapshot;
  m.snapshot = snapshot_meta{log_index{9}, term_t{2}, g.members()};
  envelope env{group_id{g.next()}, m, g.bytes() + "x"};
  check_round_trip(env);
  check_every_field_encoded<envelope>(
    env, {[](envelope& e) { e.group.value ^= 1; },
          [](envelope& e) { e.msg.term = term_t{77}; },
          [](envelope& e) {
            e.snapshot_data += "y";
          }});
  // A batch to one peer node (the server's outbox): many groups, one
  // message.
  std::vector<envelope> batch{env, env, env};
  batch[1].group.value ^= 2;
  batch[2].msg.type = message_type::heartbeat_request;
  check_round_trip(batch);

  replica_status rs;
  rs.group = group_id{g.next()};
  rs.node = node_id{g.next()};
  rs.current_role = role::leader;
  rs.term = term_t{g.next()};
  rs.leader = node_id{g.next()};
  rs.commit = log_index{g.next()};
  rs.applied = log_index{g.next()};
  rs.last_index = log_index{g.next()};
  rs.snapshot_index = log_index{g.next()};
  rs.snapshots_installed = g.next();
  rs.failure = "storage:io_error: injected";
  check_round_trip(rs);
  check_round_trip(replica_status{});
  check_every_field_encoded<replica_status>(
    rs, {[](replica_status& x) { x.group.value ^= 1; },
         [](replica_status& x) { x.node.value ^= 1; },
         [](replica_status& x) { x.current_role = role::candidate; },
         [](replica_status& x) { x.term.value ^= 1; },
         [](replica_status& x) { x.leader.value ^= 1; },
         [](replica_status& x) { x.commit.value ^= 1; },
         [](replica_status& x) { x.applied.value ^= 1; },
         [](replica_status& x) { x.last_index.value ^= 1; },
         [](replica_status& x) { x.snapshot_index.value ^= 1; },
         [](replica_status& x) { x.snapshots_installed ^= 1; },
         [](replica_status& x) {
           x.failure.clear();
         }});

  client_status cs;
  cs.group = group_id{g.next()};
  cs.node = node_id{g.next()};
  cs.role = 3;
  cs.term = term_t{g.next()};
  cs.leader = node_id{g.next()};
  cs.leader_address = "127.0.0.1:4000";
  cs.commit = log_index{g.next()};
  cs.applied = log_index{g.next()};
  cs.last_index = log_index{g.next()};
  cs.snapshot_index = log_index{g.next()};
  cs.snapshots_installed = g.next();
  cs.state = "count=3 hash=00ff";
  cs.failure = "storage:io_error: injected";
  check_round_trip(cs);
  check_round_trip(client_status{});
  check_every_field_encoded<client_status>(
    cs, {[](client_status& x) { x.group.value ^= 1; },
         [](client_status& x) { x.node.value ^= 1; },
         [](client_status& x) { x.role = 1; },
         [](client_status& x) { x.term.value ^= 1; },
         [](client_status& x) { x.leader.value ^= 1; },
         [](client_status& x) { x.leader_address.clear(); },
         [](client_status& x) { x.commit.value ^= 1; },
         [](client_status& x) { x.applied.value ^= 1; },
         [](client_status& x) { x.last_index.value ^= 1; },
         [](client_status& x) { x.snapshot_index.value ^= 1; },
         [](client_status& x) { x.snapshots_installed ^= 1; },
         [](client_status& x) { x.state.clear(); },
         [](client_status& x) {
           x.failure.clear();
         }});

  client_reply cr{true, "42", "", node_id{3}, "127.0.0.1:4001", log_index{5}};
  check_round_trip(cr);
  check_every_field_encoded<client_reply>(
    cr, {[](client_reply& x) { x.ok = false; },
         [](client_reply& x) { x.value.clear(); },
         [](client_reply& x) { x.error = "not_leader"; },
         [](client_reply& x) { x.leader.value ^= 1; },
         [](client_reply& x) { x.leader_address.clear(); },
         [](client_reply& x) {
           x.applied.value ^= 1;
         }});
}

TEST_CASE("wire: batched client calls and their answers round-trip") {
  actors::client_call call{41, group_id{7}, true, 2,
                           R"({"v":1,"type":"Status"})"};
  check_round_trip(call);
  check_round_trip(
    std::vector<actors::client_call>{call, actors::client_call{}});
  check_every_field_encoded<actors::client_call>(
    call, {[](actors::client_call& x) { x.id ^= 1; },
           [](actors::client_call& x) { x.group.value ^= 1; },
           [](actors::client_call& x) { x.is_query = false; },
           [](actors::client_call& x) { x.level = 0; },
           [](actors::client_call& x) {
             x.payload.clear();
           }});
  actors::client_answer answer{
    41, actors::client_reply{true, "42", "", node_id{3}, "h:1", log_index{5}}};
  check_round_trip(answer);
  check_round_trip(
    std::vector<actors::client_answer>{answer, actors::client_answer{}});
  check_every_field_encoded<actors::client_answer>(
    answer, {[](actors::client_answer& x) { x.id ^= 1; },
             [](actors::client_answer& x) {
               x.reply.ok = false;
             }});
}
