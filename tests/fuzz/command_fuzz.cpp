// libFuzzer target: arbitrary bytes as a command, a query and a snapshot.
//
// For every input it checks, and aborts when one fails:
// - a decoded command re-encodes canonically and decodes to itself;
// - applying it to a populated state machine never throws, answers JSON,
//   and a rejection (including every decode failure) leaves the state equal
//   to a twin's that applied an empty entry instead;
// - an accepted command applied again under the same id answers the first
//   answer verbatim and changes nothing (exactly once);
// - snapshot() restores to the same bytes;
// - restore() of the input either fails and changes nothing, or yields a
//   state whose snapshot round-trips.
#include "protocol/cluster/command.hpp"
#include "protocol/cluster/state.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace ees;
using namespace ees::cluster_sm;

namespace {

#define FUZZ_CHECK(cond)                                                    \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "command_fuzz: %s:%d: violated: %s\n", __FILE__, \
                   __LINE__, #cond);                                        \
      std::abort();                                                         \
    }                                                                       \
  } while (false)

/// A state with something for every command to hit: a held lock with a
/// queue, a lock with a short lease, two partitions and a key.
const cluster_state& populated() {
  static const cluster_state state = [] {
    const char* log[] = {
      R"({"v":1,"type":"LockCommand","id":"b1","lock":"l1","owner":"a","ttl_ms":500})",
      R"({"v":1,"type":"LockCommand","id":"b2","lock":"l1","owner":"b","ttl_ms":300})",
      R"({"v":1,"type":"LockCommand","id":"b3","lock":"l1","owner":"c","ttl_ms":2000})",
      R"({"v":1,"type":"LockCommand","id":"b4","lock":"l2","owner":"a","ttl_ms":100})",
      R"({"v":1,"type":"AssignPartition","id":"b5","app":"app","group":"g1","partition":"p1","equipment_ids":["e1","e2","e3"]})",
      R"({"v":1,"type":"AssignPartition","id":"b6","app":"app","group":"g1","partition":"p2","equipment_ids":["e4"]})",
      R"({"v":1,"type":"AssignKey","id":"b7","key":"k1","owner":"a"})",
    };
    cluster_state s;
    std::uint64_t index = 0;
    for (auto command : log) {
      auto answer = s.apply(log_index{++index}, term_t{1}, 1000, command);
      FUZZ_CHECK(answer.find("\"ok\":true") != std::string::npos);
    }
    s.take_notifications();
    return s;
  }();
  return state;
}

/// Parses an answer, which must be a JSON object; returns its "ok".
bool accepted(const std::string& answer) {
  auto j = nlohmann::json::parse(answer, nullptr, false);
  FUZZ_CHECK(j.is_object());
  FUZZ_CHECK(j.contains("ok") && j["ok"].is_boolean());
  return j["ok"].get<bool>();
}

/// The state and a twin that applies an empty entry at the same position.
void check_apply(std::string_view input, bool decoded) {
  auto sm = populated();
  auto twin = sm;
  // Vary time and term with the input so that expiry and the leader-change
  // extension run too.
  auto time = std::int64_t{1000} + std::int64_t(input.size() % 7) * 100;
  auto term = term_t{1 + input.size() % 3 / 2};
  auto next = sm.applied_index() + 1;
  auto answer = sm.apply(next, term, time, input);
  twin.apply(next, term, time, "");
  if (input.empty()) {
    FUZZ_CHECK(answer.empty());
    FUZZ_CHECK(sm.digest() == twin.digest());
    return;
  }
  if (!accepted(answer)) {
    FUZZ_CHECK(sm.digest() == twin.digest());
    return;
  }
  FUZZ_CHECK(decoded);
  auto retry_twin = sm;
  retry_twin.apply(next + 1, term, time + 1, "");
  FUZZ_CHECK(sm.apply(next + 1, term, time + 1, input) == answer);
  FUZZ_CHECK(sm.digest() == retry_twin.digest());
  // Queries and snapshots of the changed state.
  FUZZ_CHECK(accepted(sm.query(R"({"v":1,"type":"Status"})")));
  cluster_state restored;
  FUZZ_CHECK(restored.restore(sm.snapshot()).empty());
  FUZZ_CHECK(restored.snapshot() == sm.snapshot());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};
  auto decoded = decode_command(input);
  if (decoded) {
    auto text = encode_command(*decoded);
    auto again = decode_command(text);
    FUZZ_CHECK(again);
    FUZZ_CHECK(*again == *decoded);
    FUZZ_CHECK(encode_command(*again) == text);
  } else {
    FUZZ_CHECK(!decoded.error().message.empty());
  }
  check_apply(input, static_cast<bool>(decoded));
  // The input as a query: any answer is a JSON object with the index.
  auto answer = nlohmann::json::parse(populated().query(input), nullptr, false);
  FUZZ_CHECK(answer.is_object() && answer.contains("applied_index"));
  // The input as a snapshot.
  auto target = populated();
  auto before = target.snapshot();
  if (!target.restore(input).empty()) {
    FUZZ_CHECK(target.snapshot() == before);
  } else {
    cluster_state again;
    FUZZ_CHECK(again.restore(target.snapshot()).empty());
    FUZZ_CHECK(again.snapshot() == target.snapshot());
  }
  return 0;
}
