#include "protocol/cluster/state.hpp"

#include "protocol/cluster/json_fields.hpp"

#include <algorithm>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace ees::cluster_sm {

using detail::field_reader;
using detail::json;
using detail::quote;
using detail::render;
using detail::replicated;

namespace {

constexpr auto max_time = std::numeric_limits<std::int64_t>::max();

/// now + ttl, saturating: leader stamps are untrusted input.
/// @pre `ttl >= 0`.
std::int64_t expiry(std::int64_t now, std::int64_t ttl) {
  return now > max_time - ttl ? max_time : now + ttl;
}

std::string describe(const partition_ref& p) {
  return "partition " + quote(p.partition) + " of group " + quote(p.group)
         + " of app " + quote(p.app);
}

json error_json(const error& err) {
  json j = json::object();
  j["ok"] = false;
  j["error"] = {{"code", to_string(err.code)}, {"message", err.message}};
  return j;
}

json lease_json(const lease& l, bool holder) {
  json j
    = {{"owner", l.owner}, {"ttl_ms", l.ttl_ms}, {"expires_ms", l.expires_ms}};
  if (holder)
    j["token"] = l.token;
  return j;
}

json granted_json(const std::string& lock, const lease& holder) {
  return {{"state", "granted"},
          {"lock", lock},
          {"token", holder.token},
          {"expires_ms", holder.expires_ms}};
}

json queued_json(const std::string& lock, std::size_t position,
                 const lease& waiter) {
  return {{"state", "queued"},
          {"lock", lock},
          {"position", position},
          {"expires_ms", waiter.expires_ms}};
}

/// Returns the 1-based queue position of `owner`, or 0 when not queued.
std::size_t position(const lock_entry& entry, const std::string& owner) {
  auto i = std::find_if(entry.waiters.begin(), entry.waiters.end(),
                        [&](const lease& w) { return w.owner == owner; });
  return i == entry.waiters.end()
           ? 0
           : static_cast<std::size_t>(i - entry.waiters.begin()) + 1;
}

/// The end of the lock's earliest lease: its key in `deadlines`.
std::int64_t earliest_end(const lock_entry& e) {
  auto end = e.holder.expires_ms;
  for (const auto& w : e.waiters)
    end = std::min(end, w.expires_ms);
  return end;
}

/// Takes lock `name` out of the deadline index, before it changes.
void unindex_lock(const replicated& s, detail::deadline_index& deadlines,
                  const std::string& name) {
  if (const auto* entry = s.locks.find(name))
    deadlines.erase({earliest_end(*entry), name});
}

/// Puts lock `name` back into the deadline index after it changed, unless
/// it is gone.
void index_lock(const replicated& s, detail::deadline_index& deadlines,
                const std::string& name) {
  if (const auto* entry = s.locks.find(name))
    deadlines.emplace(earliest_end(*entry), name);
}

/// The deadline index of `s`, built from its locks (restore, a new term).
detail::deadline_index index_all_locks(const replicated& s) {
  detail::deadline_index deadlines;
  s.locks.for_each_unordered(
    [&deadlines](const std::string& name, const lock_entry& entry) {
      deadlines.emplace(earliest_end(entry), name);
    });
  return deadlines;
}

/// Forgets the oldest remembered answers beyond `capacity`.
void forget_beyond(replicated& s, detail::answer_index& index,
                   std::size_t capacity) {
  while (s.answers.size() > capacity) {
    index.erase(s.answers.front().get());
    s.answers.pop_front();
  }
}

/// Remembers `answer` as the first answer to request `id` (absent from
/// `index`); the caller forgets beyond its capacity (forget_beyond).
void remember(replicated& s, detail::answer_index& index, std::string id,
              std::string answer) {
  auto h = detail::answer_index::hash(id);
  auto record = std::make_shared<const detail::answer_record>(
    detail::answer_record{std::move(id), std::move(answer), h});
  index.insert(record.get());
  s.answers.push_back(std::move(record));
}

/// Commands on one lock: the only lock they can change is theirs.
template <class Command>
constexpr bool acts_on_a_lock
  = std::disjunction_v<std::is_same<Command, lock_command>,
                       std::is_same<Command, renew_lock>,
                       std::is_same<Command, release_lock>>;

/// The lock a command acts on, or nullptr.
const std::string* lock_of(const command_body& body) {
  return std::visit(
    [](const auto& c) -> const std::string* {
      if constexpr (acts_on_a_lock<std::decay_t<decltype(c)>>)
        return &c.lock;
      else
        return nullptr;
    },
    body);
}

error not_holder(const std::string& lock, const std::string& owner) {
  return {errc::not_holder, "owner " + quote(owner)
                              + " neither holds nor waits for lock "
                              + quote(lock) + " (a lease may have expired)"};
}

/// Applies the replicated-time rules and the commands of one entry to the
/// state. Every command handler checks everything before it changes
/// anything, so a rejected command leaves the state as it was.
class executor {
public:
  executor(replicated& s, detail::deadline_index& deadlines, log_index index,
           std::vector<notification>& notifications)
    : s_(s), deadlines_(deadlines), index_(index),
      notifications_(notifications) {
    // nop
  }

  /// A new leader extends every lease to at least now + ttl (etcd lessor
  /// Promote): nobody could renew during the election.
  void extend_leases() {
    auto extend = [this](lease& l) {
      l.expires_ms = std::max(l.expires_ms, expiry(s_.now_ms, l.ttl_ms));
    };
    s_.locks.for_each_mutable([&](const std::string&, lock_entry& entry) {
      extend(entry.holder);
      std::for_each(entry.waiters.begin(), entry.waiters.end(), extend);
    });
    deadlines_ = index_all_locks(s_);
  }

  /// Ends every lease that expired at the current replicated time. Only the
  /// locks at the front of the deadline index hold one; they are handled in
  /// name order, as a scan of every lock would, so that notifications come
  /// in the same order.
  void expire_leases() {
    std::vector<std::string> due;
    while (!deadlines_.empty() && deadlines_.begin()->first <= s_.now_ms)
      due.push_back(
        std::move(deadlines_.extract(deadlines_.begin()).value().second));
    std::sort(due.begin(), due.end());
    for (const auto& name : due) {
      auto* found = s_.locks.find_mutable(name);
      if (found == nullptr)
        continue; // Cannot happen: the index names existing locks only.
      auto& entry = *found;
      drop_expired_waiters(name, entry);
      if (expired(entry.holder)) {
        notify(entry.holder.owner, {{"event", "lost"},
                                    {"lock", name},
                                    {"token", entry.holder.token},
                                    {"reason", "expired"}});
        if (!grant_next(name, entry)) {
          s_.locks.erase(name);
          continue;
        }
      }
      index_lock(s_, deadlines_, name);
    }
  }

  expected<json> operator()(const lock_command& c) {
    auto* found = s_.locks.find_mutable(c.lock);
    if (found == nullptr) {
      auto& entry = s_.locks[c.lock];
      entry.holder
        = lease{c.owner, index_.value, c.ttl_ms, expiry(s_.now_ms, c.ttl_ms)};
      return granted_json(c.lock, entry.holder);
    }
    auto& entry = *found;
    // The current grant, unchanged: a retry with a new id must not renew
    // (RenewLock does) nor mint a second token.
    if (entry.holder.owner == c.owner)
      return granted_json(c.lock, entry.holder);
    if (auto pos = position(entry, c.owner))
      return queued_json(c.lock, pos, entry.waiters[pos - 1]);
    if (!c.wait)
      return error{errc::lock_held,
                   "lock " + quote(c.lock) + " is held by "
                     + quote(entry.holder.owner) + " until "
                     + std::to_string(entry.holder.expires_ms)};
    entry.waiters.push_back(
      lease{c.owner, 0, c.ttl_ms, expiry(s_.now_ms, c.ttl_ms)});
    return queued_json(c.lock, entry.waiters.size(), entry.waiters.back());
  }

  expected<json> operator()(const renew_lock& c) {
    auto* found = s_.locks.find_mutable(c.lock);
    if (found == nullptr)
      return not_holder(c.lock, c.owner);
    auto& entry = *found;
    if (entry.holder.owner == c.owner) {
      if (c.token != entry.holder.token)
        return stale(c.lock, c.owner, c.token);
      renew(entry.holder);
      return granted_json(c.lock, entry.holder);
    }
    if (auto pos = position(entry, c.owner)) {
      if (c.token != 0)
        return stale(c.lock, c.owner, c.token);
      renew(entry.waiters[pos - 1]);
      return queued_json(c.lock, pos, entry.waiters[pos - 1]);
    }
    return not_holder(c.lock, c.owner);
  }

  expected<json> operator()(const release_lock& c) {
    auto* found = s_.locks.find_mutable(c.lock);
    if (found == nullptr)
      return not_holder(c.lock, c.owner);
    auto& entry = *found;
    if (entry.holder.owner == c.owner) {
      if (c.token != entry.holder.token)
        return stale(c.lock, c.owner, c.token);
      // Granting the next waiter now would reuse this entry's index as its
      // token; tokens must strictly increase per lock.
      if (c.token == index_.value)
        return error{errc::stale_token,
                     "token " + std::to_string(c.token)
                       + " was granted by this same entry; release it in a "
                         "later one"};
      if (!grant_next(c.lock, entry))
        s_.locks.erase(c.lock);
      return json{{"state", "released"}, {"lock", c.lock}};
    }
    if (auto pos = position(entry, c.owner)) {
      if (c.token != 0)
        return stale(c.lock, c.owner, c.token);
      entry.waiters.erase(entry.waiters.begin()
                          + static_cast<std::ptrdiff_t>(pos - 1));
      return json{{"state", "cancelled"}, {"lock", c.lock}};
    }
    return not_holder(c.lock, c.owner);
  }

  expected<json> operator()(const assign_partition& c) {
    partition_ref ref{c.app, c.group, c.partition};
    for (const auto& id : c.equipment_ids) {
      const auto* assigned = s_.equipment.find(id);
      if (assigned != nullptr && !(*assigned == ref))
        return error{errc::conflict, "equipment " + quote(id)
                                       + " is already assigned to "
                                       + describe(*assigned)};
    }
    auto& ids = s_.partitions[ref];
    std::size_t added = 0;
    for (const auto& id : c.equipment_ids) {
      if (ids.insert(id).second) {
        s_.equipment.emplace(id, ref);
        ++added;
      }
    }
    return json{{"added", added}, {"equipment_count", ids.size()}};
  }

  expected<json> operator()(const revoke_partition& c) {
    partition_ref ref{c.app, c.group, c.partition};
    auto* found = s_.partitions.find_mutable(ref);
    if (found == nullptr)
      return error{errc::not_found, describe(ref) + " does not exist"};
    auto& ids = *found;
    std::vector<std::string> removed;
    if (c.equipment_ids) {
      for (const auto& id : *c.equipment_ids)
        if (ids.count(id) == 0)
          return error{errc::not_found, "equipment " + quote(id) + " is not in "
                                          + describe(ref)};
      removed = *c.equipment_ids;
    } else {
      removed.assign(ids.begin(), ids.end());
    }
    for (const auto& id : removed) {
      ids.erase(id);
      s_.equipment.erase(id);
    }
    auto remaining = ids.size();
    if (ids.empty())
      s_.partitions.erase(ref);
    return json{{"removed", removed.size()}, {"equipment_count", remaining}};
  }

  expected<json> operator()(const assign_key& c) {
    auto [owner, added] = s_.keys.emplace(c.key, c.owner);
    if (!added && *owner != c.owner)
      return error{errc::conflict,
                   "key " + quote(c.key) + " is assigned to " + quote(*owner)};
    return json{{"key", c.key}, {"owner", c.owner}};
  }

  expected<json> operator()(const unassign_key& c) {
    const auto* owner = s_.keys.find(c.key);
    if (owner == nullptr)
      return error{errc::not_found, "key " + quote(c.key) + " is not assigned"};
    if (c.owner && *c.owner != *owner)
      return error{errc::conflict, "key " + quote(c.key) + " is assigned to "
                                     + quote(*owner) + ", not "
                                     + quote(*c.owner)};
    json answer = {{"key", c.key}, {"owner", *owner}};
    s_.keys.erase(c.key);
    return answer;
  }

private:
  bool expired(const lease& l) const {
    return l.expires_ms <= s_.now_ms;
  }

  void renew(lease& l) const {
    l.expires_ms = expiry(s_.now_ms, l.ttl_ms);
  }

  static error stale(const std::string& lock, const std::string& owner,
                     std::uint64_t token) {
    return {errc::stale_token,
            "token " + std::to_string(token) + " is not the current token of "
              + quote(owner) + " on lock " + quote(lock)
              + " (waiters use 0; a holder uses its grant's token)"};
  }

  void notify(const std::string& owner, json payload) {
    notifications_.push_back({owner, render(payload)});
  }

  /// Drops the waiters whose lease ended; they are never granted.
  void drop_expired_waiters(const std::string& lock, lock_entry& entry) {
    auto& ws = entry.waiters;
    auto live = std::stable_partition(ws.begin(), ws.end(),
                                      [this](auto& w) { return !expired(w); });
    for (auto i = live; i != ws.end(); ++i)
      notify(i->owner, {{"event", "wait_expired"}, {"lock", lock}});
    ws.erase(live, ws.end());
  }

  /// Hands the lock to its first live waiter with this entry's index as the
  /// fencing token. Returns false when nobody is waiting.
  bool grant_next(const std::string& lock, lock_entry& entry) {
    drop_expired_waiters(lock, entry);
    if (entry.waiters.empty())
      return false;
    entry.holder = std::move(entry.waiters.front());
    entry.waiters.erase(entry.waiters.begin());
    entry.holder.token = index_.value;
    renew(entry.holder);
    notify(entry.holder.owner, {{"event", "granted"},
                                {"lock", lock},
                                {"token", entry.holder.token},
                                {"expires_ms", entry.holder.expires_ms}});
    return true;
  }

  replicated& s_;
  detail::deadline_index& deadlines_;
  log_index index_;
  std::vector<notification>& notifications_;
};

// -- queries ------------------------------------------------------------------

constexpr std::int64_t default_page = 100;
constexpr std::int64_t max_page = 1000;

json assignment_json(const std::string& id, const partition_ref& p) {
  return {{"equipment_id", id},
          {"app", p.app},
          {"group", p.group},
          {"partition", p.partition}};
}

/// Answers one decoded query; `r` has read the envelope already.
expected<json> answer_query(const replicated& s, const std::string& type,
                            field_reader& r, const cluster_state& self) {
  auto finish = [&r](json answer) -> expected<json> {
    if (auto err = r.finish())
      return *err;
    return answer;
  };
  if (type == "GetLock") {
    std::string lock;
    r.text("lock", lock);
    json answer = {{"lock", lock}, {"holder", nullptr}};
    answer["waiters"] = json::array();
    if (const auto* entry = s.locks.find(lock)) {
      answer["holder"] = lease_json(entry->holder, true);
      for (const auto& w : entry->waiters)
        answer["waiters"].push_back(lease_json(w, false));
    }
    return finish(std::move(answer));
  }
  if (type == "GetEquipment") {
    std::string id;
    r.text("equipment_id", id);
    if (auto err = r.finish())
      return *err;
    const auto* assigned = s.equipment.find(id);
    if (assigned == nullptr)
      return error{errc::not_found,
                   "equipment " + quote(id) + " is not assigned"};
    return assignment_json(id, *assigned);
  }
  if (type == "GetPartition") {
    partition_ref ref;
    r.text("app", ref.app);
    r.text("group", ref.group);
    r.text("partition", ref.partition);
    if (auto err = r.finish())
      return *err;
    const auto* ids = s.partitions.find(ref);
    if (ids == nullptr)
      return error{errc::not_found, describe(ref) + " does not exist"};
    return json{{"app", ref.app},
                {"group", ref.group},
                {"partition", ref.partition},
                {"equipment_ids", *ids}};
  }
  if (type == "ListAssignments") {
    std::optional<std::string> after;
    auto limit = default_page;
    r.optional_text("after", after);
    r.optional_integer("limit", limit, 1, max_page);
    // One more than a page: whether a next page exists.
    auto page = json::array();
    bool more = false;
    s.equipment.for_each_after(
      after ? &*after : nullptr,
      [&](const std::string& id, const partition_ref& ref) {
        if (page.size() == std::size_t(limit)) {
          more = true;
          return false;
        }
        page.push_back(assignment_json(id, ref));
        return true;
      });
    json next = nullptr;
    if (more)
      next = page.back()["equipment_id"];
    return finish({{"assignments", std::move(page)}, {"next", next}});
  }
  if (type == "GetKey") {
    std::string key;
    r.text("key", key);
    if (auto err = r.finish())
      return *err;
    const auto* owner = s.keys.find(key);
    if (owner == nullptr)
      return error{errc::not_found, "key " + quote(key) + " is not assigned"};
    return json{{"key", key}, {"owner", *owner}};
  }
  if (type == "Status") {
    auto n = self.count();
    auto deadline = self.next_deadline();
    return finish(
      {{"locks", n.locks},
       {"waiters", n.waiters},
       {"partitions", n.partitions},
       {"equipment", n.equipment},
       {"keys", n.keys},
       {"remembered_requests", n.remembered_requests},
       {"now_ms", s.now_ms},
       {"last_term", s.last_term.value},
       {"next_deadline_ms", deadline ? json(*deadline) : json(nullptr)},
       {"digest", self.digest()}});
  }
  return error{errc::unknown_type,
               "unknown query type " + quote(type)
                 + " (known: GetLock, GetEquipment, GetPartition, "
                   "ListAssignments, GetKey, Status)"};
}

// -- snapshot -----------------------------------------------------------------

/// Reads the object `item` with a reader of its own and copies its first
/// failure to `outer`. Returns false on failure.
template <class F>
bool read_nested(field_reader& outer, detail::value item, std::string what,
                 F&& read) {
  field_reader inner{item, std::move(what)};
  read(inner);
  if (auto err = inner.finish()) {
    outer.fail(err->code, err->message);
    return false;
  }
  return true;
}

void read_lease(field_reader& r, lease& l, bool holder) {
  r.text("owner", l.owner);
  r.integer("ttl_ms", l.ttl_ms, min_ttl_ms, max_ttl_ms);
  r.integer("expires_ms", l.expires_ms, 0, max_time);
  if (holder) {
    r.natural("token", l.token);
    if (r.ok() && l.token == 0)
      r.fail(errc::invalid_value, r.field("token") + " must not be 0");
  }
}

/// Reads one element of "locks" into `s`.
void read_lock(field_reader& r, replicated& s) {
  std::string name;
  lock_entry entry;
  r.text("lock", name);
  auto holder = r.object_or_null("holder");
  if (r.ok() && !holder)
    r.fail(errc::invalid_value, r.field("holder") + " must not be null");
  if (holder)
    read_nested(r, *holder, "the holder of lock " + quote(name),
                [&](field_reader& h) { read_lease(h, entry.holder, true); });
  std::set<std::string> owners{entry.holder.owner};
  if (auto waiters = r.array("waiters")) {
    for (detail::value item : *waiters) {
      lease w;
      if (!read_nested(r, item, "a waiter of lock " + quote(name),
                       [&](field_reader& in) { read_lease(in, w, false); }))
        return;
      if (!owners.insert(w.owner).second) {
        r.fail(errc::invalid_value, "owner " + quote(w.owner)
                                      + " appears twice on lock "
                                      + quote(name));
        return;
      }
      entry.waiters.push_back(std::move(w));
    }
  }
  if (!r.ok())
    return;
  if (entry.holder.token > s.applied_index.value)
    r.fail(errc::invalid_value, "lock " + quote(name) + " has token "
                                  + std::to_string(entry.holder.token)
                                  + " beyond the applied index");
  else if (!s.locks.emplace(name, std::move(entry)).second)
    r.fail(errc::invalid_value, "lock " + quote(name) + " appears twice");
}

/// Reads one element of "partitions" into `s`.
void read_partition(field_reader& r, replicated& s) {
  partition_ref ref;
  std::vector<std::string> ids;
  r.text("app", ref.app);
  r.text("group", ref.group);
  r.text("partition", ref.partition);
  r.names("equipment_ids", ids, 1, std::numeric_limits<std::size_t>::max());
  if (!r.ok())
    return;
  if (s.partitions.count(ref) != 0) {
    r.fail(errc::invalid_value, describe(ref) + " appears twice");
    return;
  }
  for (const auto& id : ids) {
    if (!s.equipment.emplace(id, ref).second) {
      r.fail(errc::invalid_value,
             "equipment " + quote(id) + " is in two partitions");
      return;
    }
  }
  s.partitions.emplace(std::move(ref),
                       std::set<std::string>(ids.begin(), ids.end()));
}

/// Reads the snapshot that `r` reads into `s` and its answers' index into
/// `index`; `capacity` bounds the answers.
void read_snapshot(field_reader& r, replicated& s, detail::answer_index& index,
                   std::size_t capacity) {
  r.version_field();
  std::uint64_t applied = 0;
  std::uint64_t term = 0;
  r.natural("applied_index", applied);
  r.natural("last_term", term);
  r.integer("now_ms", s.now_ms, 0, max_time);
  s.applied_index = log_index{applied};
  s.last_term = term_t{term};
  if (auto locks = r.array("locks"))
    for (detail::value item : *locks)
      if (!read_nested(r, item, "a lock",
                       [&](field_reader& in) { read_lock(in, s); }))
        return;
  if (auto parts = r.array("partitions"))
    for (detail::value item : *parts)
      if (!read_nested(r, item, "a partition",
                       [&](field_reader& in) { read_partition(in, s); }))
        return;
  if (auto keys = r.array("keys")) {
    for (detail::value item : *keys) {
      std::string key;
      std::string owner;
      if (!read_nested(r, item, "a key", [&](field_reader& in) {
            in.text("key", key);
            in.text("owner", owner);
          }))
        return;
      if (!s.keys.emplace(key, owner).second) {
        r.fail(errc::invalid_value, "key " + quote(key) + " appears twice");
        return;
      }
    }
  }
  if (auto answers = r.array("answers")) {
    for (detail::value item : *answers) {
      std::string id;
      std::string answer;
      if (!read_nested(r, item, "a remembered answer", [&](field_reader& in) {
            in.text("id", id, max_id_bytes);
            in.text("answer", answer, max_command_bytes);
          }))
        return;
      if (index.find(id) != nullptr) {
        r.fail(errc::invalid_value,
               "request id " + quote(id) + " is remembered twice");
        return;
      }
      // Every id is kept until the end, so that a repeated one is found
      // however far apart the two are.
      remember(s, index, std::move(id), std::move(answer));
    }
  }
  forget_beyond(s, index, capacity);
}

} // namespace

cluster_state::cluster_state(std::size_t dedup_capacity)
  : dedup_capacity_(dedup_capacity) {
  // nop
}

std::string cluster_state::apply(log_index index, term_t term,
                                 std::int64_t time_ms,
                                 std::string_view command) {
  auto& s = data_;
  if (index <= s.applied_index)
    return render(
      error_json({errc::out_of_order, "entry " + to_string(index)
                                        + " is not after the applied index "
                                        + to_string(s.applied_index)}));
  s.applied_index = index;
  s.now_ms = std::max(s.now_ms, time_ms);
  executor exec{s, deadlines_, index, notifications_};
  if (term > s.last_term) {
    exec.extend_leases();
    s.last_term = term;
  }
  exec.expire_leases();
  if (command.empty())
    return {};
  auto cmd = decode_command(command);
  if (!cmd)
    return render(error_json(cmd.error()));
  if (const auto* first = answer_index_.find(cmd->id))
    return first->answer;
  // Out of the deadline index while the command changes its lock.
  const auto* lock = lock_of(cmd->body);
  if (lock)
    unindex_lock(s, deadlines_, *lock);
  auto result = std::visit(exec, cmd->body);
  if (lock)
    index_lock(s, deadlines_, *lock);
  if (!result)
    return render(error_json(result.error()));
  auto answer = std::move(*result);
  answer["ok"] = true;
  answer["index"] = index.value;
  auto text = render(answer);
  if (dedup_capacity_ > 0) {
    remember(s, answer_index_, std::move(cmd->id), text);
    forget_beyond(s, answer_index_, dedup_capacity_);
  }
  return text;
}

std::vector<notification> cluster_state::take_notifications() {
  return std::exchange(notifications_, {});
}

std::optional<std::int64_t> cluster_state::next_deadline() const {
  if (deadlines_.empty())
    return std::nullopt;
  return deadlines_.begin()->first;
}

std::string cluster_state::query(std::string_view request) const {
  auto answer = [&]() -> expected<json> {
    auto doc = detail::parse_input(request, "the query");
    if (!doc)
      return doc.error();
    field_reader r{*doc, "the query"};
    r.version_field();
    auto type = r.type_field();
    std::optional<std::string> id;
    r.optional_text("id", id, max_id_bytes);
    if (!r.ok())
      return *r.finish();
    r.rename(type);
    return answer_query(data_, type, r, *this);
  }();
  auto result = answer ? *answer : error_json(answer.error());
  if (answer)
    result["ok"] = true;
  result["applied_index"] = data_.applied_index.value;
  return render(result);
}

namespace {

/// The body of cluster_state::snapshot().
std::string write_snapshot(const replicated& s) {
  auto locks = json::array();
  s.locks.for_each([&](const std::string& name, const lock_entry& entry) {
    auto waiters = json::array();
    for (const auto& w : entry.waiters)
      waiters.push_back(lease_json(w, false));
    locks.push_back({{"lock", name},
                     {"holder", lease_json(entry.holder, true)},
                     {"waiters", std::move(waiters)}});
  });
  auto partitions = json::array();
  s.partitions.for_each(
    [&](const partition_ref& ref, const std::set<std::string>& ids) {
      partitions.push_back({{"app", ref.app},
                            {"group", ref.group},
                            {"partition", ref.partition},
                            {"equipment_ids", ids}});
    });
  // The large arrays (keys, remembered answers) are written directly: a
  // JSON tree of them costs five times the time. The text is the one
  // render() gives for the tree (keys sorted, no spaces; tests check
  // render(parse(s)) == s). The reserved size is a sum, taken in any order.
  std::size_t estimate = 256;
  s.keys.for_each_unordered(
    [&](const std::string& key, const std::string& owner) {
      estimate += key.size() + owner.size() + 24;
    });
  s.answers.for_each([&](const auto& record) {
    estimate += 2 * record->id.size() + record->answer.size() + 32;
  });
  std::string out;
  out.reserve(estimate);
  out += R"({"answers":[)";
  auto sep = "";
  s.answers.for_each([&](const auto& record) {
    out += sep;
    out += R"({"answer":)";
    detail::append_json_string(out, record->answer);
    out += R"(,"id":)";
    detail::append_json_string(out, record->id);
    out += '}';
    sep = ",";
  });
  out += R"(],"applied_index":)" + std::to_string(s.applied_index.value);
  out += R"(,"keys":[)";
  sep = "";
  s.keys.for_each([&](const std::string& key, const std::string& owner) {
    out += sep;
    out += R"({"key":)";
    detail::append_json_string(out, key);
    out += R"(,"owner":)";
    detail::append_json_string(out, owner);
    out += '}';
    sep = ",";
  });
  out += R"(],"last_term":)" + std::to_string(s.last_term.value);
  out += R"(,"locks":)" + render(locks);
  out += R"(,"now_ms":)" + std::to_string(s.now_ms);
  out += R"(,"partitions":)" + render(partitions);
  out += R"(,"v":)" + std::to_string(version) + '}';
  return out;
}

} // namespace

std::string cluster_state::snapshot() const {
  return write_snapshot(data_);
}

std::function<std::string()> cluster_state::snapshot_task() const {
  auto copy = std::make_shared<const replicated>(data_);
  return [copy] {
    return write_snapshot(*copy);
  };
}

std::string cluster_state::restore(std::string_view data) {
  // A parser of its own: the snapshot's buffers (several times its size) are
  // freed on return, not kept by the thread.
  simdjson::dom::parser parser;
  auto doc = detail::parse(parser, data, "the snapshot");
  if (!doc)
    return std::string{to_string(doc.error().code)} + ": "
           + doc.error().message;
  replicated next;
  detail::answer_index answers;
  field_reader r{*doc, "the snapshot"};
  if (r.ok())
    read_snapshot(r, next, answers, dedup_capacity_);
  if (auto err = r.finish())
    return std::string{to_string(err->code)} + ": " + err->message;
  deadlines_ = index_all_locks(next);
  // The index views records on the heap, which the move keeps.
  data_ = std::move(next);
  answer_index_ = std::move(answers);
  return {};
}

cluster_state::sizes cluster_state::count() const {
  sizes n;
  n.locks = data_.locks.size();
  data_.locks.for_each_unordered(
    [&n](const std::string&, const lock_entry& entry) {
      n.waiters += entry.waiters.size();
    });
  n.partitions = data_.partitions.size();
  n.equipment = data_.equipment.size();
  n.keys = data_.keys.size();
  n.remembered_requests = data_.answers.size();
  return n;
}

std::string cluster_state::digest() const {
  std::uint64_t hash = 0xcbf29ce484222325ull; // FNV-1a 64 offset basis
  for (unsigned char c : snapshot()) {
    hash ^= c;
    hash *= 0x100000001b3ull; // FNV prime
  }
  static const char* hex = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, hash >>= 4)
    out[static_cast<std::size_t>(i)] = hex[hash & 0xf];
  return out;
}

} // namespace ees::cluster_sm
