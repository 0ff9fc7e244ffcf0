// The client API of a RaftServer cluster (DESIGN.md §4): submit commands to
// and query a group, wherever its leader is, in-process or from another
// process, and receive the notifications the state machine pushes (lock
// grants, lock loss).
#pragma once

#include "actors/interfaces.hpp"
#include "protocol/ids.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
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
