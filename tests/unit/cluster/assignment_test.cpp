// The routing table (equipment -> app/group/partition), key assignments and
// the read-only queries over them.
#include "harness.hpp"

#include <cstdio>

using namespace ees;
using namespace ees::cluster_sm;
using namespace ees::cluster_sm::test;

namespace {

std::string revoke(const std::string& partition,
                   std::optional<std::vector<std::string>> ids = {}) {
  return cmd(revoke_partition{"app", "g1", partition, std::move(ids)});
}

json get_equipment(const replica& r, const std::string& id) {
  return r.query(R"({"v":1,"type":"GetEquipment","equipment_id":")" + id
                 + "\"}");
}

json get_partition(const replica& r, const std::string& partition) {
  return r.query(R"({"v":1,"type":"GetPartition","app":"app","group":"g1",)"
                 R"("partition":")"
                 + partition + "\"}");
}

} // namespace

TEST_CASE("AssignPartition routes every listed equipment id to the "
          "partition, as an idempotent union") {
  replica r;
  auto answer = r.ok(assign("p1", {"e2", "e1"}));
  CHECK(answer["added"] == 2);
  CHECK(answer["equipment_count"] == 2);
  answer = r.ok(assign("p1", {"e1", "e3"}));
  CHECK(answer["added"] == 1);
  CHECK(answer["equipment_count"] == 3);
  auto e1 = get_equipment(r, "e1");
  CHECK(e1["ok"] == true);
  CHECK(e1["app"] == "app");
  CHECK(e1["group"] == "g1");
  CHECK(e1["partition"] == "p1");
  CHECK(get_partition(r, "p1")["equipment_ids"]
        == json::array({"e1", "e2", "e3"}));
}

TEST_CASE("an equipment id in another partition is a conflict naming the id "
          "and its partition, and nothing is assigned") {
  replica r;
  r.ok(assign("p1", {"e1", "e2"}));
  auto answer
    = expect_rejected(r, assign("p2", {"e9", "e2", "e1"}), errc::conflict);
  CHECK(message(answer).find("\"e2\"") != std::string::npos);
  CHECK(message(answer).find("\"p1\"") != std::string::npos);
  CHECK(get_equipment(r, "e9")["error"]["code"] == "not_found");
  // The same partition name in another group is another partition.
  expect_rejected(r, assign("p1", {"e1"}, "app", "g2"), errc::conflict);
  expect_rejected(r, assign("p1", {"e1"}, "other-app"), errc::conflict);
}

TEST_CASE("RevokePartition removes listed ids or the whole partition") {
  replica r;
  r.ok(assign("p1", {"e1", "e2", "e3"}));
  r.ok(assign("p2", {"e4"}));
  auto answer = r.ok(revoke("p1", std::vector<std::string>{"e3", "e1"}));
  CHECK(answer["removed"] == 2);
  CHECK(answer["equipment_count"] == 1);
  CHECK(get_equipment(r, "e1")["error"]["code"] == "not_found");
  CHECK(get_equipment(r, "e2")["partition"] == "p1");
  SUBCASE("an id not in the partition is not_found naming it") {
    auto rejected = expect_rejected(
      r, revoke("p1", std::vector<std::string>{"e2", "e4"}), errc::not_found);
    CHECK(message(rejected).find("\"e4\"") != std::string::npos);
  }
  SUBCASE("without ids the whole partition goes") {
    CHECK(r.ok(revoke("p1"))["removed"] == 1);
    CHECK(get_partition(r, "p1")["error"]["code"] == "not_found");
    CHECK(get_equipment(r, "e4")["partition"] == "p2");
    // Its ids are free for another partition now.
    r.ok(assign("p2", {"e2"}));
  }
  SUBCASE("removing the last id removes the partition") {
    r.ok(revoke("p2", std::vector<std::string>{"e4"}));
    CHECK(get_partition(r, "p2")["error"]["code"] == "not_found");
  }
  SUBCASE("an unknown partition is not_found") {
    auto rejected = expect_rejected(r, revoke("nope"), errc::not_found);
    CHECK(message(rejected).find("\"nope\"") != std::string::npos);
  }
}

TEST_CASE("AssignKey and UnassignKey keep one owner per key") {
  replica r;
  CHECK(r.ok(cmd(assign_key{"k", "a"}))["owner"] == "a");
  r.ok(cmd(assign_key{"k", "a"})); // same owner: fine
  auto answer = expect_rejected(r, cmd(assign_key{"k", "b"}), errc::conflict);
  CHECK(message(answer).find("\"a\"") != std::string::npos);
  auto key = r.query(R"({"v":1,"type":"GetKey","key":"k"})");
  CHECK(key["owner"] == "a");
  expect_rejected(r, cmd(unassign_key{"k", std::string{"b"}}), errc::conflict);
  expect_rejected(r, cmd(unassign_key{"nope", std::nullopt}), errc::not_found);
  SUBCASE("by its owner") {
    CHECK(r.ok(cmd(unassign_key{"k", std::string{"a"}}))["owner"] == "a");
  }
  SUBCASE("by anyone when no owner is given") {
    r.ok(cmd(unassign_key{"k", std::nullopt}));
  }
  CHECK(r.query(R"({"v":1,"type":"GetKey","key":"k"})")["error"]["code"]
        == "not_found");
  r.ok(cmd(assign_key{"k", "b"}));
}

TEST_CASE("ListAssignments pages through the whole routing table in "
          "equipment id order") {
  replica r;
  std::vector<std::string> ids;
  for (int i = 0; i < 250; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "e%03d", i);
    ids.emplace_back(name);
  }
  // Spread over partitions, assigned out of order.
  r.ok(assign("p2", std::vector<std::string>(ids.begin() + 100, ids.end())));
  r.ok(assign("p1", std::vector<std::string>(ids.begin(), ids.begin() + 100)));
  std::vector<std::string> seen;
  std::string request = R"({"v":1,"type":"ListAssignments"})";
  for (int pages = 1;; ++pages) {
    auto page = r.query(request);
    REQUIRE(page["ok"] == true);
    CHECK(page["applied_index"] == r.index);
    for (const auto& a : page["assignments"]) {
      seen.push_back(a["equipment_id"].get<std::string>());
      CHECK(a["partition"] == (seen.size() <= 100 ? "p1" : "p2"));
    }
    if (page["next"].is_null()) {
      CHECK(pages == 3);
      break;
    }
    CHECK(page["assignments"].size() == 100);
    request = R"({"v":1,"type":"ListAssignments","after":)"
              + page["next"].dump() + "}";
  }
  CHECK(seen == ids);
  auto small
    = r.query(R"({"v":1,"type":"ListAssignments","after":"e100x","limit":2})");
  CHECK(small["assignments"].size() == 2);
  CHECK(small["assignments"][0]["equipment_id"] == "e101");
  CHECK(small["next"] == "e102");
  auto last
    = r.query(R"({"v":1,"type":"ListAssignments","after":"e247","limit":2})");
  CHECK(last["assignments"].size() == 2);
  CHECK(last["next"].is_null());
  auto empty = r.query(R"({"v":1,"type":"ListAssignments","after":"z"})");
  CHECK(empty["assignments"].empty());
  CHECK(empty["next"].is_null());
}

TEST_CASE("Status counts the state and reports clock, index and digest") {
  replica r;
  r.ok(lock("l", "a"));
  r.ok(lock("l", "b"));
  r.ok(assign("p1", {"e1", "e2"}));
  r.ok(cmd(assign_key{"k", "a"}));
  auto status = r.query(R"({"v":1,"type":"Status"})");
  CHECK(status["ok"] == true);
  CHECK(status["locks"] == 1);
  CHECK(status["waiters"] == 1);
  CHECK(status["partitions"] == 1);
  CHECK(status["equipment"] == 2);
  CHECK(status["keys"] == 1);
  CHECK(status["remembered_requests"] == 4);
  CHECK(status["now_ms"] == r.time);
  CHECK(status["applied_index"] == 4);
  CHECK(status["next_deadline_ms"] == r.time + 1000);
  CHECK(status["digest"] == r.sm.digest());
}

TEST_CASE("bad queries get typed errors and still carry the applied index") {
  replica r;
  r.ok(lock("l", "a"));
  struct bad {
    const char* request;
    errc code;
  };
  const bad cases[] = {
    {"", errc::malformed_json},
    {"{", errc::malformed_json},
    {"[]", errc::wrong_type},
    {R"({"type":"Status"})", errc::missing_field},
    {R"({"v":2,"type":"Status"})", errc::unsupported_version},
    {R"({"v":1})", errc::missing_field},
    {R"({"v":1,"type":"Frobnicate"})", errc::unknown_type},
    {R"({"v":1,"type":"LockCommand","lock":"l"})", errc::unknown_type},
    {R"({"v":1,"type":"Status","extra":1})", errc::unknown_field},
    {R"({"v":1,"type":"GetLock"})", errc::missing_field},
    {R"({"v":1,"type":"GetLock","lock":7})", errc::wrong_type},
    {R"({"v":1,"type":"GetEquipment","equipment_id":""})", errc::invalid_value},
    {R"({"v":1,"type":"GetPartition","app":"a","group":"g"})",
     errc::missing_field},
    {R"({"v":1,"type":"ListAssignments","limit":0})", errc::invalid_value},
    {R"({"v":1,"type":"ListAssignments","limit":1001})", errc::invalid_value},
    {R"({"v":1,"type":"ListAssignments","after":5})", errc::wrong_type},
    {R"({"v":1,"type":"GetKey","key":"k","id":""})", errc::invalid_value},
    {R"({"v":1,"type":"GetKey","key":"k"})", errc::not_found},
  };
  for (const auto& c : cases) {
    CAPTURE(c.request);
    auto answer = r.query(c.request);
    CHECK(answer["ok"] == false);
    CHECK(answer["error"]["code"] == to_string(c.code));
    CHECK(answer["applied_index"] == 1);
  }
  // An optional request id is accepted on queries.
  auto answer = r.query(R"({"v":1,"type":"GetLock","lock":"l","id":"q1"})");
  CHECK(answer["ok"] == true);
  CHECK(answer["applied_index"] == 1);
  auto oversize = std::string(max_command_bytes + 1, ' ');
  CHECK(r.query(oversize)["error"]["code"] == "too_large");
}
