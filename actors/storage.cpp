#include "actors/storage.hpp"

#include "actors/errors.hpp"

#include <spdlog/spdlog.h>

#include <utility>

namespace ees::actors {

bool storage_state::flush() {
  flush_scheduled = false;
  if (queued.empty())
    return !store->failure();
  auto batch = std::move(queued);
  auto promises = std::move(waiting);
  queued.clear();
  waiting.clear();
  if (auto st = store->write(batch); !st) {
    waiting = std::move(promises);
    fail(st.error());
    return false;
  }
  for (auto& rp : promises)
    rp.deliver(atom::persisted_v);
  return true;
}

void storage_state::fail(const storage::storage_error& err) {
  spdlog::error("storage: write failed, stopping (fail-stop): {}",
                storage::to_string(err));
  auto reason = storage::make_error(err);
  for (auto& rp : waiting)
    rp.deliver(reason);
  waiting.clear();
  queued.clear();
  self->quit(reason);
}

caf::result<raft::persistent_state>
storage_state::register_group(group_id group, raft::membership voters) {
  if (!flush())
    return storage::make_error(*store->failure());
  if (auto st = store->register_group(group); !st) {
    fail(st.error());
    return storage::make_error(st.error());
  }
  auto loaded = store->load(group);
  if (!loaded)
    return storage::make_error(loaded.error());
  auto ps = std::move(*loaded);
  bool fresh = ps.state.current_term == term_t{0} && ps.entries.empty()
               && ps.snapshot.last_index == log_index{0}
               && ps.snapshot.config.voters.empty();
  if (fresh && !voters.voters.empty()) {
    // A new group starts from a snapshot at index 0 holding its voters.
    storage::group_write w;
    w.group = group;
    w.snapshot = raft::snapshot_meta{log_index{0}, term_t{0}, voters};
    if (auto st = store->write({w}); !st) {
      fail(st.error());
      return storage::make_error(st.error());
    }
    ps.snapshot = *w.snapshot;
  }
  return ps;
}

storage_actor::behavior_type
storage(storage_actor::stateful_pointer<storage_state> self,
        std::shared_ptr<storage::log_store> store) {
  self->state.self = self;
  self->state.store = std::move(store);
  return {
    [self](atom::register_, group_id group,
           raft::membership& voters) -> caf::result<raft::persistent_state> {
      return self->state.register_group(group, std::move(voters));
    },
    [self](atom::load, group_id group) -> caf::result<raft::persistent_state> {
      auto& st = self->state;
      if (!st.flush())
        return storage::make_error(*st.store->failure());
      auto loaded = st.store->load(group);
      if (!loaded)
        return storage::make_error(loaded.error());
      return std::move(*loaded);
    },
    [self](atom::persist,
           storage::group_write& w) -> caf::result<atom::persisted> {
      auto& st = self->state;
      if (auto& failure = st.store->failure())
        return storage::make_error(*failure);
      auto rp = self->make_response_promise<atom::persisted>();
      st.queued.push_back(std::move(w));
      st.waiting.push_back(rp);
      if (!st.flush_scheduled) {
        st.flush_scheduled = true;
        self->send(self, atom::flush_v);
      }
      return rp;
    },
    [self](atom::flush) { self->state.flush(); },
    [self](atom::unregister, group_id group) -> caf::result<caf::ok_atom> {
      auto& st = self->state;
      if (!st.flush())
        return storage::make_error(*st.store->failure());
      if (auto res = st.store->remove_group(group); !res) {
        st.fail(res.error());
        return storage::make_error(res.error());
      }
      return caf::ok_atom::value;
    },
  };
}

} // namespace ees::actors
