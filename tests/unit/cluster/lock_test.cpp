// Locks: fencing tokens, FIFO queues, renewals, releases and leases that
// expire in replicated time (DESIGN.md §4).
#include "harness.hpp"

using namespace ees;
using namespace ees::cluster_sm;
using namespace ees::cluster_sm::test;

TEST_CASE("LockCommand on a free lock grants it with the entry index as the "
          "fencing token") {
  replica r;
  r.advance(0);
  auto answer = r.ok(lock("l", "a", 500));
  CHECK(answer["state"] == "granted");
  CHECK(answer["token"] == 2);
  CHECK(answer["index"] == 2);
  CHECK(answer["expires_ms"] == r.time + 500);
  auto state = r.query(R"({"v":1,"type":"GetLock","lock":"l"})");
  CHECK(state["holder"]["owner"] == "a");
  CHECK(state["holder"]["token"] == 2);
  CHECK(state["holder"]["ttl_ms"] == 500);
  CHECK(state["waiters"].empty());
  CHECK(r.sm.next_deadline() == r.time + 500);
}

TEST_CASE("LockCommand by the holder answers its current grant without "
          "renewing it") {
  replica r;
  auto first = r.ok(lock("l", "a", 500));
  r.time += 100;
  auto again = r.ok(lock("l", "a", 900));
  CHECK(again["state"] == "granted");
  CHECK(again["token"] == first["token"]);
  CHECK(again["expires_ms"] == first["expires_ms"]);
}

TEST_CASE("LockCommand without waiting on a held lock fails with lock_held "
          "naming the holder") {
  replica r;
  r.ok(lock("l", "a"));
  auto answer
    = expect_rejected(r, lock("l", "b", 1000, false), errc::lock_held);
  CHECK(message(answer).find("\"a\"") != std::string::npos);
}

TEST_CASE("waiters queue FIFO and are granted in order on release, each "
          "with a new token and a notification") {
  replica r;
  auto a = r.ok(lock("l", "a"));
  auto b = r.ok(lock("l", "b", 2000));
  CHECK(b["state"] == "queued");
  CHECK(b["position"] == 1);
  CHECK(r.ok(lock("l", "c"))["position"] == 2);
  SUBCASE("a queued owner asking again gets its current position") {
    auto again = r.ok(lock("l", "c", 5, false));
    CHECK(again["state"] == "queued");
    CHECK(again["position"] == 2);
  }
  auto released = r.ok(release("l", "a", a["token"]));
  CHECK(released["state"] == "released");
  auto notes = payloads(r.notes());
  REQUIRE(notes.size() == 1);
  CHECK(notes[0]["event"] == "granted");
  CHECK(notes[0]["owner"] == "b");
  CHECK(notes[0]["lock"] == "l");
  CHECK(notes[0]["token"] == r.index);
  CHECK(notes[0]["expires_ms"] == r.time + 2000);
  auto b_token = notes[0]["token"].get<std::uint64_t>();
  r.ok(release("l", "b", b_token));
  notes = payloads(r.notes());
  REQUIRE(notes.size() == 1);
  CHECK(notes[0]["owner"] == "c");
  CHECK(notes[0]["token"].get<std::uint64_t>() > b_token);
  r.ok(release("l", "c", notes[0]["token"]));
  CHECK(r.notes().empty());
  auto state = r.query(R"({"v":1,"type":"GetLock","lock":"l"})");
  CHECK(state["holder"].is_null());
}

TEST_CASE("fencing tokens strictly increase per lock across releases, "
          "expiry and re-acquisition") {
  replica r;
  std::uint64_t last = 0;
  auto check = [&last](std::uint64_t token) {
    CHECK(token > last);
    last = token;
  };
  for (int round = 0; round < 5; ++round) {
    auto a = r.ok(lock("l", "a", 100));
    check(a["token"]);
    r.ok(lock("l", "b", 1000));
    r.ok(release("l", "a", a["token"]));
    auto notes = payloads(r.notes());
    REQUIRE(notes.size() == 1);
    check(notes[0]["token"]);
    r.ok(lock("l", "c", 5000));
    r.advance(1000); // b's lease ends: c is granted by the clock advance
    notes = payloads(r.notes());
    REQUIRE(notes.size() == 2);
    CHECK(notes[0]["event"] == "lost");
    CHECK(notes[1]["event"] == "granted");
    check(notes[1]["token"]);
    r.ok(release("l", "c", notes[1]["token"]));
  }
}

TEST_CASE("ReleaseLock with a stale or wrong token is rejected and changes "
          "nothing") {
  replica r;
  auto first = r.ok(lock("l", "a")).at("token").get<std::uint64_t>();
  r.ok(release("l", "a", first));
  auto current = r.ok(lock("l", "a")).at("token").get<std::uint64_t>();
  r.ok(lock("l", "w"));
  expect_rejected(r, release("l", "a", first), errc::stale_token);
  expect_rejected(r, release("l", "a", current + 1), errc::stale_token);
  expect_rejected(r, release("l", "a", 0), errc::stale_token);
  SUBCASE("another owner presenting the holder's token is not the holder") {
    expect_rejected(r, release("l", "b", current), errc::not_holder);
  }
  SUBCASE("a waiter must leave the queue with token 0") {
    expect_rejected(r, release("l", "w", current), errc::stale_token);
    CHECK(r.ok(release("l", "w", 0))["state"] == "cancelled");
    CHECK(r.query(R"({"v":1,"type":"GetLock","lock":"l"})")["waiters"].empty());
  }
  SUBCASE("a free lock has no holder to release") {
    r.ok(release("l", "w", 0));
    r.ok(release("l", "a", current));
    expect_rejected(r, release("l", "a", current), errc::not_holder);
  }
}

TEST_CASE("RenewLock extends a holder's lease with its token and a waiter's "
          "with token 0") {
  replica r;
  auto token = r.ok(lock("l", "a", 1000)).at("token").get<std::uint64_t>();
  r.ok(lock("l", "w", 300));
  r.time += 250;
  auto renewed = r.ok(renew("l", "a", token));
  CHECK(renewed["state"] == "granted");
  CHECK(renewed["expires_ms"] == r.time + 1000);
  auto waiting = r.ok(renew("l", "w", 0));
  CHECK(waiting["state"] == "queued");
  CHECK(waiting["expires_ms"] == r.time + 300);
  expect_rejected(r, renew("l", "a", token + 1), errc::stale_token);
  expect_rejected(r, renew("l", "w", token), errc::stale_token);
  expect_rejected(r, renew("l", "x", 0), errc::not_holder);
  expect_rejected(r, renew("free", "a", token), errc::not_holder);
  // The renewed waiter outlives its first lease.
  r.advance(200);
  CHECK(r.notes().empty());
  CHECK(r.query(R"({"v":1,"type":"GetLock","lock":"l"})")["waiters"].size()
        == 1);
}

TEST_CASE("an expired holder loses the lock at a clock-advance entry and the "
          "next waiter is granted") {
  replica r;
  auto a = r.ok(lock("l", "a", 100));
  r.ok(lock("l", "b", 5000));
  r.advance(99);
  CHECK(r.notes().empty());
  r.advance(1);
  auto notes = payloads(r.notes());
  REQUIRE(notes.size() == 2);
  CHECK(notes[0]
        == json{{"event", "lost"},
                {"lock", "l"},
                {"owner", "a"},
                {"token", a["token"]},
                {"reason", "expired"}});
  CHECK(notes[1]["event"] == "granted");
  CHECK(notes[1]["owner"] == "b");
  CHECK(notes[1]["token"] == r.index);
  // The old holder's token is now stale.
  expect_rejected(r, release("l", "a", a["token"]), errc::not_holder);
}

TEST_CASE("a waiter whose lease expired is never granted") {
  replica r;
  auto a = r.ok(lock("l", "a", 10'000));
  r.ok(lock("l", "short", 100));
  r.ok(lock("l", "long", 10'000));
  SUBCASE("dropped by a clock advance") {
    r.advance(100);
    auto notes = payloads(r.notes());
    REQUIRE(notes.size() == 1);
    CHECK(
      notes[0]
      == json{{"event", "wait_expired"}, {"lock", "l"}, {"owner", "short"}});
  }
  SUBCASE("skipped at release in the same entry") {
    r.time += 100; // no entry between: the release sees the expiry first
  }
  r.ok(release("l", "a", a["token"]));
  auto notes = payloads(r.notes());
  REQUIRE_FALSE(notes.empty());
  CHECK(notes.back()["event"] == "granted");
  CHECK(notes.back()["owner"] == "long");
  for (const auto& n : notes)
    CHECK_FALSE((n["event"] == "granted" && n["owner"] == "short"));
  expect_rejected(r, renew("l", "short", 0), errc::not_holder);
}

TEST_CASE("the replicated clock never goes back") {
  replica r;
  r.time = 5000;
  r.ok(lock("l", "a", 100));
  r.time = 10; // a leader with a slow clock
  r.advance(0);
  CHECK(r.sm.now_ms() == 5000);
  CHECK(
    r.query(R"({"v":1,"type":"GetLock","lock":"l"})")["holder"].is_object());
  auto granted = r.ok(lock("m", "a", 100));
  CHECK(granted["expires_ms"] == 5100);
}

TEST_CASE("next_deadline is the earliest expiry of any holder or waiter") {
  replica r;
  CHECK_FALSE(r.sm.next_deadline());
  r.ok(lock("l", "a", 500));
  r.ok(lock("l", "w", 200));
  r.ok(lock("m", "b", 800));
  CHECK(r.sm.next_deadline() == r.time + 200);
  r.advance(200);
  CHECK(r.sm.next_deadline() == r.time + 300);
}

TEST_CASE("leases that end in one entry end in lock-name order, whatever "
          "their deadlines and the order they were taken in") {
  replica r;
  r.ok(lock("c", "owner-c", 300));
  r.ok(lock("b", "owner-b", 100));
  r.ok(lock("a", "owner-a", 200));
  r.ok(lock("keep", "owner-keep", 5000));
  r.notes();
  r.advance(1000);
  auto notes = payloads(r.notes());
  REQUIRE(notes.size() == 3);
  CHECK(notes[0]["lock"] == "a");
  CHECK(notes[1]["lock"] == "b");
  CHECK(notes[2]["lock"] == "c");
  CHECK(r.sm.count().locks == 1);
  CHECK(r.sm.next_deadline() == r.time - 1000 + 5000);
}

TEST_CASE("a new leader's first entry extends every lease to at least now + "
          "ttl") {
  replica r;
  r.ok(lock("l", "a", 1000)); // expires at 2000
  r.ok(lock("l", "w", 400)); // expires at 1400
  r.ok(lock("long", "b", 3'600'000));
  // An election gap: nobody could renew until the new leader's entries.
  r.term = 2;
  r.time = 2500;
  r.advance(0);
  CHECK(r.notes().empty());
  auto l = r.query(R"({"v":1,"type":"GetLock","lock":"l"})");
  CHECK(l["holder"]["expires_ms"] == 3500);
  CHECK(l["waiters"][0]["expires_ms"] == 2900);
  auto b = r.query(R"({"v":1,"type":"GetLock","lock":"long"})");
  CHECK(b["holder"]["expires_ms"] == 2500 + 3'600'000);
  // Within the term, time runs out as usual.
  r.advance(400);
  auto notes = payloads(r.notes());
  REQUIRE(notes.size() == 1);
  CHECK(notes[0]["event"] == "wait_expired");
  r.advance(600);
  notes = payloads(r.notes());
  REQUIRE(notes.size() == 1);
  CHECK(notes[0]["event"] == "lost");
}

TEST_CASE("a token cannot be released by the entry that granted it") {
  replica r;
  r.ok(lock("l", "a", 100));
  r.ok(lock("l", "b", 1000));
  r.ok(lock("l", "c", 1000));
  r.time += 100;
  // The next entry expires a and grants b with token r.index + 1; a release
  // in that same entry would grant c the same token.
  auto answer
    = expect_rejected(r, release("l", "b", r.index + 1), errc::stale_token);
  CHECK(message(answer).find("same entry") != std::string::npos);
  auto notes = payloads(r.notes());
  REQUIRE(notes.size() == 2);
  CHECK(notes[1]["owner"] == "b");
  r.ok(release("l", "b", notes[1]["token"]));
}

TEST_CASE("an entry at or below the applied index changes nothing") {
  replica r;
  r.ok(lock("l", "a"));
  auto before = r.sm.digest();
  auto answer = json::parse(
    r.sm.apply(log_index{r.index}, term_t{r.term}, r.time + 10'000, ""));
  CHECK(answer["error"]["code"] == "out_of_order");
  CHECK(r.sm.digest() == before);
  CHECK(r.sm.applied_index() == log_index{r.index});
}
