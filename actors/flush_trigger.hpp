// Coalescing the work of many messages into one turn of the actor.
#pragma once

#include "actors/type_ids.hpp"

namespace ees::actors {

/// Gathers work across the messages an actor handles and does it once,
/// after them: `arm` sends the actor one `atom::flush`, which queues behind
/// the messages already in its mailbox; further calls send nothing until the
/// flush handler calls `fired`. Used for batches to peers and clients and
/// for synced writes: one message or one fsync per batch instead of one per
/// request.
class flush_trigger {
public:
  template <class Self>
  void arm(Self* self) {
    if (!armed_) {
      armed_ = true;
      self->send(self, atom::flush_v);
    }
  }

  /// The flush is being handled: the next `arm` sends a new one.
  void fired() noexcept {
    armed_ = false;
  }

private:
  bool armed_ = false;
};

} // namespace ees::actors
