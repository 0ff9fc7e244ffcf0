// The replicated state machine a host plugs into a Raft group (DESIGN.md §4).
#pragma once

#include "protocol/ids.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ees::cluster {

/// Where a committed command sits in the log, and the leader's clock.
struct entry_context {
  log_index index;
  /// The term of the leader that appended the entry (§5.3).
  term_t term;
  /// The leader's wall clock (ms since the epoch) when it accepted the
  /// proposal, replicated in the entry. The only time a state machine may
  /// read: apply must never look at a local clock, so every replica sees the
  /// same time for the same entry. It can go back across leader changes
  /// (clocks differ); keep `max(previous, leader_time_ms)`.
  std::int64_t leader_time_ms = 0;
};

/// A message the runtime pushes to the clients subscribed as `owner` on any
/// node, e.g. a lock grant to a queued waiter. Every replica produces the
/// same notifications; each node pushes them to its own subscribers.
struct notification {
  std::string owner;
  std::string payload;
};

/// The application side of one Raft group on one node.
///
/// The group's applier actor makes every call, one at a time and never
/// concurrently, so implementations need no locking as long as nothing else
/// touches them. Calls must not block for long: they run on CAF's scheduler.
/// An exception thrown from any call stops the group's applier (fail-stop).
class state_machine {
public:
  virtual ~state_machine() = default;

  /// Applies the committed command at `ctx.index` (§5.3) and returns the
  /// answer for the client that proposed it. Called exactly once per
  /// committed normal entry, in index order, with the same commands and
  /// contexts on every replica; the result must depend only on the state,
  /// `ctx` and `command`. An empty `command` is a clock advance the runtime
  /// proposes once `next_deadline()` passed (clients cannot propose empty
  /// commands): it only lets replicated time reach `ctx.leader_time_ms`.
  virtual std::string apply(const entry_context& ctx,
                            const std::string& command)
    = 0;

  /// Screens a client's command before it is proposed: returns the answer
  /// that rejects a malformed one (it then never reaches the log), or an
  /// empty string to let it through. Must depend only on `command`: it runs
  /// on the server's thread, concurrently with `apply`.
  virtual std::string check(const std::string& command) const {
    static_cast<void>(command);
    return {};
  }

  /// Returns the whole state as bytes, for log compaction (§7). Covers every
  /// entry applied so far.
  virtual std::string snapshot() = 0;

  /// A snapshot in two steps, so that applying need not wait for the
  /// serialization: this call runs on the applier and captures the state
  /// (a copy, say); the returned function runs later on another thread and
  /// returns the bytes `snapshot()` would have returned at this call. It
  /// must not touch `*this`. The default serializes here at once.
  virtual std::function<std::string()> snapshot_task() {
    return [data = snapshot()] {
      return data;
    };
  }
  /// Replaces the whole state with `data`, as produced by `snapshot()`.
  virtual void restore(const std::string& data) = 0;

  /// Answers a read-only request from the applied state. The runtime decides
  /// how fresh that state is (linearizable, leader or stale reads).
  virtual std::string query(const std::string& request) {
    static_cast<void>(request);
    return R"({"ok":false,"error":{"code":"unsupported","message":)"
           R"("this state machine answers no queries"}})";
  }

  /// Returns, and forgets, the notifications produced by `apply` since the
  /// last call, in order.
  virtual std::vector<notification> take_notifications() {
    return {};
  }

  /// The replicated time (ms) at which the state changes by itself (a lease
  /// expires), if any: once the leader's clock passes it, the leader
  /// proposes an empty command.
  virtual std::optional<std::int64_t> next_deadline() {
    return std::nullopt;
  }

  /// A digest of the whole state, equal on replicas that applied the same
  /// entries (operators and tests compare replicas with it).
  virtual std::string digest() {
    return {};
  }

  /// The local replica became leader in `term`. Entries proposed from now on
  /// are applied after every entry of earlier terms.
  virtual void on_leader_start(term_t term) {
    static_cast<void>(term);
  }

  /// The local replica stopped being leader (stepped down or was stopped).
  virtual void on_leader_stop() {
    // nop
  }
};

/// State machines are shared between the host and the applier actor.
using state_machine_ptr = std::shared_ptr<state_machine>;

} // namespace ees::cluster
