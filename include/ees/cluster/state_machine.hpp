// The replicated state machine a host plugs into a Raft group (DESIGN.md §4).
#pragma once

#include "protocol/ids.hpp"

#include <memory>
#include <string>

namespace ees::cluster {

/// The application side of one Raft group on one node.
///
/// The group's applier actor makes every call, one at a time and never
/// concurrently, so implementations need no locking as long as nothing else
/// touches them. Calls must not block for long: they run on CAF's scheduler.
/// An exception thrown from any call stops the group's applier (fail-stop).
class state_machine {
public:
  virtual ~state_machine() = default;

  /// Applies the committed command at `index` (§5.3) and returns the answer
  /// for the client that proposed it. Called exactly once per committed
  /// normal entry, in index order, with the same commands on every replica;
  /// the result must depend only on the state and `command`.
  virtual std::string apply(log_index index, const std::string& command) = 0;

  /// Returns the whole state as bytes, for log compaction (§7). Covers every
  /// entry applied so far.
  virtual std::string snapshot() = 0;

  /// Replaces the whole state with `data`, as produced by `snapshot()`.
  virtual void restore(const std::string& data) = 0;

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
