// A helper actor that runs one task off its caller's thread, and how
// helpers are spawned on a thread of their own or on the scheduler.
#pragma once

#include "actors/type_ids.hpp"

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>

#include <utility>

namespace ees::actors {

/// Answers the first `atom::run` with `task()` and quits. The caller waits
/// for the answer as for any request, so work that blocks (a file write and
/// its fsync) or takes long (serializing a large state) does not hold up the
/// caller's other messages. An exception from `task` kills the actor, which
/// the caller sees as an error reply.
template <class Task>
caf::behavior one_shot(caf::event_based_actor* self, Task task) {
  return {
    [self, task = std::move(task)](atom::run) mutable {
      auto result = task();
      self->quit();
      return result;
    },
  };
}

/// Spawns `fun(xs...)` from `parent`: on a thread of its own when
/// `detached` (production), else on the parent's scheduler (tests on CAF's
/// deterministic scheduler).
template <class Parent, class F, class... Ts>
auto spawn_maybe_detached(Parent* parent, bool detached, F fun, Ts&&... xs) {
  if (detached)
    return parent->template spawn<caf::detached>(fun, std::forward<Ts>(xs)...);
  return parent->spawn(fun, std::forward<Ts>(xs)...);
}

/// Spawns `one_shot(task)` from `parent` (see spawn_maybe_detached).
template <class Parent, class Task>
caf::actor spawn_one_shot(Parent* parent, bool detached, Task task) {
  return spawn_maybe_detached(parent, detached, one_shot<Task>,
                              std::move(task));
}

} // namespace ees::actors
