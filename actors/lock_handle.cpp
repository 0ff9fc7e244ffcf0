// ees::cluster::lock_handle: the ClusterStateMachine's lock commands
// (protocol/cluster) on top of the client, with pushed grants.
#include "ees/cluster/client.hpp"

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <mutex>
#include <utility>

namespace ees::cluster {

using json = nlohmann::json;

/// What the push handler and the caller share.
struct lock_handle::shared {
  std::mutex mtx;
  std::condition_variable changed;
  std::optional<lock_grant> granted;
  /// The queued wait ended without a grant (the waiter's lease expired).
  bool wait_expired = false;
  log_index released_at;
  std::function<void(const lock_grant&)> lost;
};

namespace {

/// The state machine's answer, or the failure as {code, message}.
struct answer {
  bool ok = false;
  json body;
  std::string error;
};

answer parse(const client_result& r) {
  answer a;
  if (!r.ok) {
    a.error = r.error;
    return a;
  }
  a.body = json::parse(r.value, nullptr, false);
  if (a.body.is_discarded() || !a.body.is_object()) {
    a.error = "bad_answer: " + r.value;
    return a;
  }
  if (a.body.value("ok", false)) {
    a.ok = true;
    return a;
  }
  auto err = a.body.value("error", json::object());
  a.error = err.value("code", std::string{"error"});
  return a;
}

lock_grant grant_of(const json& j) {
  return lock_grant{j.value("token", std::uint64_t{0}),
                    j.value("expires_ms", std::int64_t{0})};
}

void set_why(std::string* why, std::string text) {
  if (why)
    *why = std::move(text);
}

} // namespace

lock_handle::lock_handle(client& c, group_id group, std::string lock,
                         std::string owner, std::chrono::milliseconds ttl)
  : client_(c), group_(group), lock_(std::move(lock)), owner_(std::move(owner)),
    ttl_(ttl), shared_(std::make_shared<shared>()) {
  // The handler only holds a weak reference: it outlives the handle in the
  // client.
  std::weak_ptr<shared> weak = shared_;
  auto lock_name = lock_;
  client_.subscribe(group_, owner_, [weak, lock_name](const std::string& p) {
    auto sh = weak.lock();
    if (!sh)
      return;
    auto ev = json::parse(p, nullptr, false);
    if (ev.is_discarded() || ev.value("lock", std::string{}) != lock_name)
      return;
    auto kind = ev.value("event", std::string{});
    std::function<void(const lock_grant&)> lost;
    lock_grant g = grant_of(ev);
    {
      std::lock_guard<std::mutex> guard{sh->mtx};
      if (kind == "granted") {
        sh->granted = g;
      } else if (kind == "lost") {
        if (sh->granted && sh->granted->token == g.token) {
          sh->granted.reset();
          lost = sh->lost;
        }
      } else if (kind == "wait_expired") {
        sh->wait_expired = true;
      }
    }
    sh->changed.notify_all();
    if (lost)
      lost(g);
  });
}

lock_handle::~lock_handle() = default;

std::string lock_handle::token_command(const char* type, std::uint64_t token) {
  json cmd
    = {{"v", 1},        {"type", type},    {"id", client_.next_request_id()},
       {"lock", lock_}, {"owner", owner_}, {"token", token}};
  return cmd.dump();
}

std::optional<lock_grant> lock_handle::acquire(std::chrono::milliseconds wait,
                                               std::string* why) {
  {
    std::lock_guard<std::mutex> guard{shared_->mtx};
    shared_->wait_expired = false;
  }
  json cmd = {{"v", 1},
              {"type", "LockCommand"},
              {"id", client_.next_request_id()},
              {"lock", lock_},
              {"owner", owner_},
              {"ttl_ms", ttl_.count()},
              {"wait", wait.count() > 0}};
  auto a = parse(client_.submit(group_, cmd.dump()));
  if (!a.ok) {
    set_why(why, a.error);
    return std::nullopt;
  }
  std::unique_lock<std::mutex> guard{shared_->mtx};
  if (a.body.value("state", std::string{}) == "granted") {
    shared_->granted = grant_of(a.body);
    return shared_->granted;
  }
  // Queued: the grant is pushed.
  shared_->changed.wait_for(guard, wait, [&] {
    return shared_->granted.has_value() || shared_->wait_expired;
  });
  if (shared_->granted)
    return shared_->granted;
  bool expired = shared_->wait_expired;
  guard.unlock();
  // Leave the queue. If that fails, the grant may have raced the timeout:
  // the lock's state decides.
  auto c = parse(client_.submit(group_, token_command("ReleaseLock", 0)));
  if (!c.ok) {
    json q = {{"v", 1}, {"type", "GetLock"}, {"lock", lock_}};
    auto s = parse(client_.query(group_, q.dump()));
    if (s.ok && s.body.contains("holder") && s.body["holder"].is_object()
        && s.body["holder"].value("owner", std::string{}) == owner_) {
      std::lock_guard<std::mutex> g2{shared_->mtx};
      shared_->granted = grant_of(s.body["holder"]);
      return shared_->granted;
    }
  }
  set_why(why, expired ? "wait_expired" : "timeout");
  return std::nullopt;
}

bool lock_handle::release(std::string* why) {
  auto held = grant();
  if (!held) {
    set_why(why, "not_holder");
    return false;
  }
  auto a
    = parse(client_.submit(group_, token_command("ReleaseLock", held->token)));
  std::lock_guard<std::mutex> guard{shared_->mtx};
  if (shared_->granted && shared_->granted->token == held->token)
    shared_->granted.reset(); // Released, or stale: not held either way.
  if (a.ok)
    shared_->released_at = log_index{a.body.value("index", std::uint64_t{0})};
  else
    set_why(why, a.error);
  return a.ok;
}

log_index lock_handle::last_release_index() const {
  std::lock_guard<std::mutex> guard{shared_->mtx};
  return shared_->released_at;
}

bool lock_handle::renew(std::string* why) {
  auto held = grant();
  if (!held) {
    set_why(why, "not_holder");
    return false;
  }
  auto a
    = parse(client_.submit(group_, token_command("RenewLock", held->token)));
  if (!a.ok) {
    set_why(why, a.error);
    return false;
  }
  std::lock_guard<std::mutex> guard{shared_->mtx};
  if (shared_->granted && shared_->granted->token == held->token)
    shared_->granted->expires_ms
      = a.body.value("expires_ms", shared_->granted->expires_ms);
  return true;
}

std::optional<lock_grant> lock_handle::grant() const {
  std::lock_guard<std::mutex> guard{shared_->mtx};
  return shared_->granted;
}

void lock_handle::on_lost(std::function<void(const lock_grant&)> f) {
  std::lock_guard<std::mutex> guard{shared_->mtx};
  shared_->lost = std::move(f);
}

} // namespace ees::cluster
