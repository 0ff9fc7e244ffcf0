// Test support for the ClusterStateMachine: a replica fed by a simulated
// log, typed command builders and the "rejected means unchanged" check.
#pragma once

#include "protocol/cluster/command.hpp"
#include "protocol/cluster/state.hpp"
#include "protocol/splitmix.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ees::cluster_sm::test {

using json = nlohmann::json;

/// Encodes `body` under a fresh request id (or `id` when given).
inline std::string cmd(command_body body, std::string id = {}) {
  static std::uint64_t next_id = 0;
  if (id.empty())
    id = "req-" + std::to_string(++next_id);
  return encode_command(command{std::move(id), std::move(body)});
}

inline std::string lock(const std::string& lock, const std::string& owner,
                        std::int64_t ttl_ms = 1000, bool wait = true) {
  return cmd(lock_command{lock, owner, ttl_ms, wait});
}

inline std::string release(const std::string& lock, const std::string& owner,
                           std::uint64_t token) {
  return cmd(release_lock{lock, owner, token});
}

inline std::string renew(const std::string& lock, const std::string& owner,
                         std::uint64_t token) {
  return cmd(renew_lock{lock, owner, token});
}

inline std::string assign(const std::string& partition,
                          std::vector<std::string> ids,
                          const std::string& app = "app",
                          const std::string& group = "g1") {
  return cmd(assign_partition{app, group, partition, std::move(ids)});
}

/// A state machine fed by a simulated log: every apply takes the next index
/// at the current term and time.
struct replica {
  explicit replica(std::size_t capacity = default_dedup_capacity)
    : sm(capacity) {
    // nop
  }

  /// Applies `command` as the next entry and returns the raw answer.
  std::string raw(std::string_view command) {
    return sm.apply(log_index{++index}, term_t{term}, time, command);
  }

  /// Applies `command` as the next entry and returns the parsed answer.
  json apply(std::string_view command) {
    auto answer = raw(command);
    REQUIRE_FALSE(answer.empty());
    return json::parse(answer);
  }

  /// Applies `command`, which must succeed, and returns the answer.
  json ok(std::string_view command) {
    auto answer = apply(command);
    INFO(command);
    INFO(answer.dump());
    REQUIRE(answer["ok"] == true);
    return answer;
  }

  /// Advances the clock by `ms` with an empty entry (a clock advance).
  void advance(std::int64_t ms) {
    time += ms;
    CHECK(raw("").empty());
  }

  json query(std::string_view request) const {
    return json::parse(sm.query(request));
  }

  std::vector<notification> notes() {
    return sm.take_notifications();
  }

  cluster_state sm;
  std::uint64_t index = 0;
  std::uint64_t term = 1;
  std::int64_t time = 1000;
};

/// Applies `command`, which must be rejected with `code`, and checks that it
/// changed nothing: the state equals that of a twin that applied an empty
/// entry (a clock advance) at the same index, term and time instead.
inline json expect_rejected(replica& r, std::string_view command, errc code) {
  auto twin = r.sm;
  twin.apply(log_index{r.index + 1}, term_t{r.term}, r.time, "");
  auto answer = r.apply(command);
  INFO(command.substr(0, 300));
  INFO(answer.dump());
  CHECK(answer["ok"] == false);
  CHECK(answer["error"]["code"] == to_string(code));
  CHECK_FALSE(answer["error"]["message"].get<std::string>().empty());
  CHECK(r.sm.digest() == twin.digest());
  return answer;
}

/// The message of a rejection answer.
inline std::string message(const json& answer) {
  return answer["error"]["message"].get<std::string>();
}

/// The parsed payloads of `notes`, with the owner added as "owner".
inline std::vector<json> payloads(const std::vector<notification>& notes) {
  std::vector<json> out;
  for (const auto& n : notes) {
    auto p = json::parse(n.payload);
    p["owner"] = n.owner;
    out.push_back(std::move(p));
  }
  return out;
}

} // namespace ees::cluster_sm::test
