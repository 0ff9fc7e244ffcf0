// What makes the state machine replicable: determinism, exactly-once
// retries, and snapshots that restore the same state and the same future.
#include "harness.hpp"
#include "protocol/cluster/json_fields.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

using namespace ees;
using namespace ees::cluster_sm;
using namespace ees::cluster_sm::test;

namespace {

/// One committed entry as the runtime hands it to apply().
struct entry {
  log_index index;
  term_t term;
  std::int64_t time_ms;
  std::string command;
};

/// What one apply produced, for comparing replicas.
struct outcome {
  std::string answer;
  std::vector<notification> notes;
  std::string digest;

  friend bool operator==(const outcome& a, const outcome& b) {
    return a.answer == b.answer && a.notes == b.notes && a.digest == b.digest;
  }
};

outcome apply(cluster_state& sm, const entry& e) {
  auto answer = sm.apply(e.index, e.term, e.time_ms, e.command);
  return {answer, sm.take_notifications(), sm.digest()};
}

/// Generates a random log over small name spaces, so that commands collide:
/// locks with short leases, releases and renewals with current, stale and
/// zero tokens, partitions that conflict, keys, clock advances, new terms,
/// retried request ids and malformed entries. Tokens come from the answers
/// and notifications of the replica under test (feed them to observe()).
class workload {
public:
  explicit workload(std::uint64_t seed) : rng_{seed} {
    // nop
  }

  entry next() {
    ++index_;
    time_ += static_cast<std::int64_t>(pick(8) == 0 ? pick(800) : pick(20));
    if (pick(40) == 0)
      ++term_;
    return {log_index{index_}, term_t{term_}, time_, command()};
  }

  void observe(const std::string& answer,
               const std::vector<notification>& notes) {
    if (!answer.empty()) {
      auto j = json::parse(answer);
      if (j.value("state", "") == "granted")
        tokens_[j["lock"].get<std::string>()] = j["token"];
    }
    for (const auto& n : notes) {
      auto j = json::parse(n.payload);
      if (j["event"] == "granted")
        tokens_[j["lock"].get<std::string>()] = j["token"];
    }
  }

private:
  std::uint64_t pick(std::uint64_t n) {
    return rng_.next() % n;
  }

  std::string name(const char* prefix, std::uint64_t n) {
    return prefix + std::to_string(pick(n));
  }

  std::uint64_t token(const std::string& lock) {
    switch (pick(3)) {
      case 0:
        return 0;
      case 1:
        return pick(index_ + 1);
      default:
        return tokens_.count(lock) ? tokens_[lock] : 0;
    }
  }

  std::string command() {
    auto kind = pick(14);
    if (kind == 0)
      return {}; // a clock advance
    if (kind == 1 && !sent_.empty())
      return sent_[pick(sent_.size())]; // a retry
    if (kind == 2)
      return pick(2) ? "{\"v\":1" : R"({"v":1,"type":"LockCommand","id":"x"})";
    auto lock = name("lock", 3);
    auto owner = name("owner", 4);
    command_body body;
    switch (kind) {
      case 3:
      case 4:
      case 5:
        body = lock_command{lock, owner,
                            static_cast<std::int64_t>(100 + pick(900)),
                            pick(3) != 0};
        break;
      case 6:
      case 7:
        body = release_lock{lock, owner, token(lock)};
        break;
      case 8:
        body = renew_lock{lock, owner, token(lock)};
        break;
      case 9:
      case 10: {
        std::vector<std::string> ids;
        auto n = 1 + pick(3);
        for (std::uint64_t i = 0; i < n; ++i) {
          auto id = name("eq", 8);
          if (std::find(ids.begin(), ids.end(), id) == ids.end())
            ids.push_back(id);
        }
        if (kind == 9)
          body = assign_partition{"app", name("g", 2), name("p", 2), ids};
        else
          body = revoke_partition{"app", name("g", 2), name("p", 2),
                                  pick(2) ? std::nullopt : std::optional{ids}};
        break;
      }
      case 11:
        body = assign_key{name("key", 3), owner};
        break;
      default:
        body = unassign_key{name("key", 3),
                            pick(2) ? std::nullopt : std::optional{owner}};
        break;
    }
    auto text = cmd(std::move(body));
    sent_.push_back(text);
    return text;
  }

  splitmix64 rng_;
  std::uint64_t index_ = 0;
  std::uint64_t term_ = 1;
  std::int64_t time_ = 1'000'000;
  std::map<std::string, std::uint64_t> tokens_;
  std::vector<std::string> sent_;
};

/// Checks the invariants of `sm` after an apply: no live lease is expired,
/// and every new grant's token is above every earlier token of its lock.
struct invariant_checker {
  std::map<std::string, std::uint64_t> last_token;

  void check(const cluster_state& sm, const entry& e, const outcome& out) {
    auto snap = json::parse(sm.snapshot());
    // No lease outlives its end, and the next deadline is the earliest end
    // of any lease (both kept by an index, checked here by a full scan).
    std::optional<std::int64_t> earliest;
    auto end = [&](const json& lease) {
      auto t = lease["expires_ms"].get<std::int64_t>();
      CHECK(t > sm.now_ms());
      earliest = earliest ? std::min(*earliest, t) : t;
    };
    for (const auto& l : snap["locks"]) {
      end(l["holder"]);
      CHECK(l["holder"]["token"] <= e.index.value);
      for (const auto& w : l["waiters"])
        end(w);
    }
    CHECK(sm.next_deadline() == earliest);
    auto grant = [&](const json& j) {
      auto& last = last_token[j["lock"].get<std::string>()];
      CHECK(j["token"] > last);
      CHECK(j["token"] == e.index.value);
      last = j["token"];
    };
    std::set<std::string> granted;
    for (const auto& n : out.notes) {
      if (auto j = json::parse(n.payload); j["event"] == "granted") {
        grant(j);
        granted.insert(j["lock"].get<std::string>());
      }
    }
    if (out.answer.empty())
      return;
    // A fresh grant by the command, unless the expiry processing of this
    // entry granted the lock and the command re-asked for the current grant.
    auto j = json::parse(out.answer);
    if (j.value("state", "") == "granted" && j["token"] == e.index.value
        && granted.count(j["lock"].get<std::string>()) == 0)
      grant(j);
  }
};

} // namespace

TEST_CASE("an empty entry advances the replicated clock and answers nothing") {
  cluster_state sm;
  CHECK(sm.apply(log_index{3}, term_t{1}, 12345, "").empty());
  CHECK(sm.now_ms() == 12345);
  CHECK(sm.applied_index() == log_index{3});
  CHECK(sm.take_notifications().empty());
}

TEST_CASE("a retried request id returns the first answer verbatim and "
          "applies nothing") {
  replica r;
  auto first_lock = cmd(lock_command{"l", "a", 1000, true}, "retry-1");
  auto first = r.raw(first_lock);
  r.ok(release("l", "a", json::parse(first)["token"]));
  r.time += 10;
  auto twin = r.sm;
  twin.apply(log_index{r.index + 1}, term_t{r.term}, r.time, "");
  CHECK(r.raw(first_lock) == first); // would grant anew otherwise
  CHECK(r.sm.digest() == twin.digest());
  // The id alone identifies the request, whatever the body says.
  CHECK(r.raw(cmd(assign_key{"k", "a"}, "retry-1")) == first);
  CHECK(r.query(R"({"v":1,"type":"GetLock","lock":"l"})")["holder"].is_null());
}

TEST_CASE("a rejected command is not remembered: its retry is evaluated "
          "afresh") {
  replica r;
  auto token = r.ok(lock("l", "a"))["token"];
  auto attempt = cmd(lock_command{"l", "b", 1000, false}, "try-b");
  expect_rejected(r, attempt, errc::lock_held);
  r.ok(release("l", "a", token));
  auto retry = r.apply(attempt);
  CHECK(retry["state"] == "granted");
  CHECK(r.raw(attempt) == retry.dump()); // now remembered
}

TEST_CASE("the exactly-once table forgets the oldest request id first") {
  replica r{2};
  auto a = cmd(assign_key{"ka", "o"}, "a");
  auto b = cmd(assign_key{"kb", "o"}, "b");
  auto c = cmd(assign_key{"kc", "o"}, "c");
  auto first_a = r.raw(a);
  auto first_b = r.raw(b);
  auto first_c = r.raw(c);
  CHECK(r.query(R"({"v":1,"type":"Status"})")["remembered_requests"] == 2);
  CHECK(r.raw(c) == first_c);
  CHECK(r.raw(b) == first_b);
  auto again_a = r.raw(a); // forgotten: applied again, at a new index
  CHECK(again_a != first_a);
  CHECK(json::parse(again_a)["index"] == r.index);
  CHECK(r.raw(b) != first_b); // a's new record pushed b out
}

TEST_CASE("snapshot and restore round-trip the state mid-queue, byte for "
          "byte, and the restored replica continues identically") {
  replica r;
  r.ok(lock("l", "a", 500));
  r.ok(lock("l", "b", 300));
  r.ok(lock("l", "c", 2000));
  r.ok(lock("m", "a", 900));
  r.ok(assign("p1", {"e1", "e2"}));
  r.ok(assign("p2", {"e3"}, "app", "g2"));
  r.ok(cmd(assign_key{"k", "a"}));
  r.term = 3;
  r.advance(100);
  auto snap = r.sm.snapshot();
  cluster_state restored;
  REQUIRE(restored.restore(snap).empty());
  CHECK(restored.snapshot() == snap);
  CHECK(restored.digest() == r.sm.digest());
  CHECK(restored.applied_index() == r.sm.applied_index());
  CHECK(restored.now_ms() == r.sm.now_ms());
  CHECK(restored.next_deadline() == r.sm.next_deadline());
  const char* queries[] = {
    R"({"v":1,"type":"GetLock","lock":"l"})",
    R"({"v":1,"type":"ListAssignments"})",
    R"({"v":1,"type":"Status"})",
  };
  for (auto q : queries)
    CHECK(restored.query(q) == r.sm.query(q));
  // The same future: expiry of b's wait, a's loss, grants to c, retries.
  r.notes();
  std::vector<entry> tail = {
    {log_index{r.index + 1}, term_t{3}, r.time + 250, ""},
    {log_index{r.index + 2}, term_t{3}, r.time + 600, lock("l", "d")},
    {log_index{r.index + 3}, term_t{4}, r.time + 700, ""},
    {log_index{r.index + 4}, term_t{4}, r.time + 5000, ""},
    {log_index{r.index + 5}, term_t{4}, r.time + 5000,
     cmd(assign_key{"k", "a"}, "req-1")},
  };
  for (const auto& e : tail) {
    CAPTURE(e.command);
    auto original = apply(r.sm, e);
    CHECK(apply(restored, e) == original);
  }
}

TEST_CASE("the snapshot is the canonical rendering of its own JSON, also "
          "for keys, owners and request ids that need escaping") {
  replica r;
  const std::string odd[] = {
    "plain",
    "quote\"q",
    "back\\slash",
    "tab\tnl\ncr\r",
    "bell\x07",
    "del\x7f",
    "caf\xc3\xa9 \xe2\x82\xac",
    "slash/",
    "\x01\x1f",
    "\b\f",
  };
  int n = 0;
  for (const auto& k : odd)
    r.ok(cmd(assign_key{k, "owner " + k}, "req " + k + std::to_string(n++)));
  r.ok(lock("l\"1", "a\\b", 500));
  r.ok(assign("p\t1", {"e\"1", "e2"}));
  auto snap = r.sm.snapshot();
  // render(parse(s)) is what a JSON tree of the state would have given:
  // sorted keys, no spaces, nlohmann's escapes.
  CHECK(detail::render(json::parse(snap)) == snap);
  cluster_state restored;
  REQUIRE(restored.restore(snap).empty());
  CHECK(restored.snapshot() == snap);
  for (const auto& k : odd) {
    auto q = json{{"v", 1}, {"type", "GetKey"}, {"key", k}}.dump();
    CHECK(restored.query(q) == r.sm.query(q));
  }
}

TEST_CASE("restore rejects a malformed or wrong-version snapshot and keeps "
          "the state") {
  replica source;
  source.ok(lock("l", "a"));
  source.ok(lock("l", "b"));
  source.ok(assign("p1", {"e1"}));
  source.ok(assign("p2", {"e2"}));
  source.ok(cmd(assign_key{"k", "a"}));
  auto good = json::parse(source.sm.snapshot());
  replica target;
  target.ok(lock("x", "z"));
  auto before = target.sm.snapshot();
  auto corrupt = [&](auto edit) {
    auto j = good;
    edit(j);
    return j.dump();
  };
  const std::pair<const char*, std::string> cases[] = {
    {"not JSON", "{\"v\":1,"},
    {"an array", "[]"},
    {"version 2", corrupt([](json& j) { j["v"] = 2; })},
    {"no version", corrupt([](json& j) { j.erase("v"); })},
    {"no locks", corrupt([](json& j) { j.erase("locks"); })},
    {"an extra field", corrupt([](json& j) { j["extra"] = 1; })},
    {"negative clock", corrupt([](json& j) { j["now_ms"] = -1; })},
    {"token 0", corrupt([](json& j) { j["locks"][0]["holder"]["token"] = 0; })},
    {"token beyond the index",
     corrupt([](json& j) { j["locks"][0]["holder"]["token"] = 99; })},
    {"null holder",
     corrupt([](json& j) { j["locks"][0]["holder"] = nullptr; })},
    {"a lock twice",
     corrupt([](json& j) { j["locks"].push_back(j["locks"][0]); })},
    {"the holder queued too", corrupt([](json& j) {
       j["locks"][0]["waiters"][0]["owner"] = j["locks"][0]["holder"]["owner"];
     })},
    {"a waiter with a bad ttl",
     corrupt([](json& j) { j["locks"][0]["waiters"][0]["ttl_ms"] = 0; })},
    {"equipment in two partitions",
     corrupt([](json& j) { j["partitions"][1]["equipment_ids"][0] = "e1"; })},
    {"an empty partition", corrupt([](json& j) {
       j["partitions"][0]["equipment_ids"] = json::array();
     })},
    {"a key twice",
     corrupt([](json& j) { j["keys"].push_back(j["keys"][0]); })},
    {"an answer twice",
     corrupt([](json& j) { j["answers"].push_back(j["answers"][0]); })},
    {"a mistyped answer",
     corrupt([](json& j) { j["answers"][0]["answer"] = 5; })},
  };
  for (const auto& [what, data] : cases) {
    CAPTURE(what);
    auto err = target.sm.restore(data);
    CHECK_FALSE(err.empty());
    CAPTURE(err);
    CHECK(target.sm.snapshot() == before);
  }
  CHECK(target.sm.restore(good.dump()).empty());
  CHECK(target.sm.digest() == source.sm.digest());
}

TEST_CASE("restore keeps the newest remembered answers when its capacity is "
          "smaller") {
  replica source;
  for (int i = 0; i < 5; ++i)
    source.ok(
      cmd(assign_key{"k" + std::to_string(i), "o"}, "id" + std::to_string(i)));
  cluster_state small{2};
  REQUIRE(small.restore(source.sm.snapshot()).empty());
  auto answers = json::parse(small.snapshot())["answers"];
  REQUIRE(answers.size() == 2);
  CHECK(answers[0]["id"] == "id3");
  CHECK(answers[1]["id"] == "id4");
  // A repeated id is corrupt even when the capacity would forget its first
  // occurrence before reading the second; the state stays as it was.
  auto repeated = json::parse(source.sm.snapshot());
  repeated["answers"].push_back(repeated["answers"][0]);
  auto before = small.snapshot();
  CHECK(small.restore(repeated.dump()).find("remembered twice")
        != std::string::npos);
  CHECK(small.snapshot() == before);
}

TEST_CASE("replicas fed the same random log stay identical, and a replica "
          "restored mid-log continues identically") {
  // What the workload exercised, so that a weaker generator cannot pass
  // silently.
  std::map<std::string, int> seen;
  for (std::uint64_t seed = 1; seed <= 25; ++seed) {
    CAPTURE(seed);
    workload gen{seed};
    invariant_checker invariants;
    cluster_state leader;
    cluster_state follower;
    std::optional<cluster_state> late; // restored from a snapshot at 150
    std::map<std::string, std::string> first_answer;
    for (int step = 0; step < 300; ++step) {
      auto e = gen.next();
      auto twin = leader;
      twin.apply(e.index, e.term, e.time_ms, "");
      auto out = apply(leader, e);
      gen.observe(out.answer, out.notes);
      for (const auto& n : out.notes)
        ++seen[json::parse(n.payload)["event"].get<std::string>()];
      invariants.check(leader, e, out);
      if (!e.command.empty()) {
        auto answer = json::parse(out.answer);
        if (answer["ok"] == false) {
          CHECK(out.digest == twin.digest()); // rejected: unchanged
          ++seen[answer["error"]["code"].get<std::string>()];
        } else {
          ++seen[answer.value("state", "ok")];
        }
        auto id = decode_command(e.command);
        if (id && answer["ok"] == true) {
          // Exactly once: a retried id answers the first answer.
          auto [it, fresh] = first_answer.emplace(id->id, out.answer);
          if (!fresh) {
            CHECK(out.answer == it->second);
            CHECK(out.digest == twin.digest());
            ++seen["retry"];
          }
        }
      }
      CHECK(apply(follower, e) == out);
      if (late)
        CHECK(apply(*late, e) == out);
      if (step == 150) {
        late.emplace();
        REQUIRE(late->restore(leader.snapshot()).empty());
        CHECK(late->digest() == leader.digest());
      }
    }
    CHECK(follower.digest() == leader.digest());
  }
  for (auto what :
       {"granted", "queued", "released", "cancelled", "lost", "wait_expired",
        "retry", "ok", "malformed_json", "missing_field", "lock_held",
        "not_holder", "stale_token", "conflict", "not_found"}) {
    std::string name = what;
    CAPTURE(name);
    CHECK(seen[name] > 0);
  }
}
