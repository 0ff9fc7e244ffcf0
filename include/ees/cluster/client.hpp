// The client API of a RaftServer cluster (DESIGN.md §4): submit commands to
// and query a group, wherever its leader is, in-process or from another
// process, and receive the notifications the state machine pushes (lock
// grants, lock loss).
#pragma once

#include "actors/interfaces.hpp"
#include "protocol/ids.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/io/middleman_actor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ees::cluster {

/// How fresh the state a query reads must be.
enum class consistency : std::uint8_t {
  /// ReadIndex on the leader (Raft thesis §6.4): reflects every write
  /// acknowledged before the query was sent.
  linearizable = 0,
  /// The leader's applied state, without confirming leadership first: may
  /// miss the writes of a newer leader during a partition.
  leader = 1,
  /// Any replica's applied state (the first one that answers); the result
  /// carries the applied index it reflects.
  stale = 2,
};

/// How a client finds and talks to the servers.
struct client_options {
  /// Servers as "host:port" (their `ees.cluster.listen`). Leader hints may
  /// add more at run time.
  std::vector<std::string> endpoints;
  /// Bound of one call, all retries included.
  std::chrono::milliseconds timeout{5000};
  /// Bound of one attempt at one server.
  std::chrono::milliseconds attempt_timeout{1000};
  /// Pause before retrying at another server after a failure.
  std::chrono::milliseconds backoff{25};
  /// Prefix of the request ids `next_request_id` makes; random when empty.
  std::string client_id;
  /// Who dials the endpoints: null for the system's middleman (plain TCP);
  /// `sys.openssl_manager().actor_handle()` for TLS (docs/tls.md).
  caf::io::middleman_actor connector;
  /// Send calls and receive their answers over a direct link to each server
  /// that offers one (actors/direct_link.hpp: one thread hand-off less each
  /// way than CAF's middleman). The CAF connection stays the failure
  /// detector and carries everything else; calls fall back to it while a
  /// link is down. Never used with a `connector` (TLS): the link is
  /// plaintext.
  bool direct_links = true;
};

/// The outcome of one call.
struct client_result {
  /// True when the group answered: `value` holds the state machine's answer
  /// (which may itself report a rejected command, e.g. a stale token).
  bool ok = false;
  std::string value;
  /// Why the call failed when `ok` is false: "timeout", "invalid_command",
  /// "unknown_group", ... (after every retry).
  std::string error;
  /// Queries: the applied index the answer reflects.
  log_index applied;
  /// Servers tried, the successful one included.
  std::uint32_t attempts = 0;
};

/// A connection to a cluster. Thread-safe: any thread may call any method.
///
/// Every call goes to the leader of the group when the client knows it, else
/// to the servers in turn; a follower's not-leader answer redirects it to
/// the leader. A failed attempt (timeout, lost connection, leader change) is
/// retried with the very same command until `timeout`: commands of the
/// ClusterStateMachine carry a request id (`"id"`), so a retried command
/// that was applied already returns its first result instead of applying
/// twice. Build commands with `next_request_id()`.
///
/// Blocking calls must not be made from a CAF actor's thread.
class client {
public:
  /// Connects to the servers of `opts.endpoints` (lazily, over CAF io; the
  /// system must have loaded `caf::io::middleman`).
  client(caf::actor_system& sys, client_options opts);

  /// Talks to servers of this actor system (the host's own first, then
  /// `opts.endpoints`); leader hints to other nodes are followed over CAF io
  /// when the middleman is loaded.
  client(caf::actor_system& sys, std::vector<actors::server_actor> local,
         client_options opts = {});

  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Proposes `command` to `group` and waits for its answer.
  client_result submit(group_id group, std::string command);

  /// Asks `group` a read-only `request` at `level`.
  client_result query(group_id group, std::string request,
                      consistency level = consistency::linearizable);

  /// Like `submit`, but returns at once; `done` runs on a CAF thread and
  /// must not block.
  void submit_async(group_id group, std::string command,
                    std::function<void(client_result)> done);

  /// Like `query`, asynchronously.
  void query_async(group_id group, std::string request, consistency level,
                   std::function<void(client_result)> done);

  /// Receives the notifications of `owner` in `group` (e.g. a lock grant
  /// pushed to a queued waiter). The client subscribes at every server it
  /// knows, so a notification arrives while any of them is up; each one is
  /// delivered once. `on_event` runs on a CAF thread and must not block.
  void subscribe(group_id group, std::string owner,
                 std::function<void(const std::string& payload)> on_event);

  /// A request id unique to this client: "<client_id>-<n>".
  std::string next_request_id();

  /// This client's id (the prefix of its request ids).
  const std::string& id() const;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace ees::cluster

namespace ees::cluster {

/// A granted lock: the fencing token to present to the resource it guards
/// (it strictly increases per lock) and the replicated time the lease ends.
struct lock_grant {
  std::uint64_t token = 0;
  std::int64_t expires_ms = 0;
};

/// One owner's handle on one lock of a group running the ClusterStateMachine
/// (fenced, leased, FIFO). Thread-safe.
///
/// - `acquire` proposes a LockCommand: a free lock is granted at once; a held
///   one queues the owner FIFO and the grant is *pushed* to this handle when
///   the lock is handed over (no polling). A waiter whose own lease expires
///   while queued is never granted.
/// - Acquiring a lock the owner holds already answers with its current grant
///   (same token; the lease is not renewed: use `renew`).
/// - `release` and `renew` present the token; after the lease expired they
///   fail with stale_token, and `on_lost` has fired (lock loss is pushed).
/// - Keep the lease alive with `renew` well within the ttl.
class lock_handle {
public:
  lock_handle(client& c, group_id group, std::string lock, std::string owner,
              std::chrono::milliseconds ttl);
  ~lock_handle();
  lock_handle(const lock_handle&) = delete;
  lock_handle& operator=(const lock_handle&) = delete;

  /// Acquires the lock, waiting at most `wait` in the queue (0: fail with
  /// lock_held at once if another owner holds it). On failure returns
  /// nullopt and, if `why` is set, the reason ("lock_held", "timeout", ...).
  /// A wait that times out leaves the queue (ReleaseLock with token 0).
  std::optional<lock_grant> acquire(std::chrono::milliseconds wait,
                                    std::string* why = nullptr);

  /// Releases the current grant; false (with `why`) if there is none or the
  /// token went stale.
  bool release(std::string* why = nullptr);

  /// Extends the lease by its ttl; false (with `why`) if the token is stale.
  bool renew(std::string* why = nullptr);

  /// The grant this handle holds as far as it knows.
  std::optional<lock_grant> grant() const;

  /// The log index of the entry that applied the last successful release
  /// (0 before any): a grant's [token, release index] interval is where it
  /// held the lock in the log.
  log_index last_release_index() const;

  /// Called (on a CAF thread) when the lease of the held grant expired.
  void on_lost(std::function<void(const lock_grant&)> f);

  struct shared;

private:
  /// A ReleaseLock or RenewLock command of this owner with a fresh id.
  std::string token_command(const char* type, std::uint64_t token);

  client& client_;
  group_id group_;
  std::string lock_;
  std::string owner_;
  std::chrono::milliseconds ttl_;
  std::shared_ptr<shared> shared_;
};

} // namespace ees::cluster
