#include "actors/applier.hpp"

#include "actors/entry_stamp.hpp"
#include "actors/errors.hpp"
#include "actors/one_shot.hpp"

#include <spdlog/spdlog.h>

#include <functional>
#include <utility>

namespace ees::actors {

applied_batch
applier_state::apply(const std::vector<raft::log_entry>& entries) {
  applied_batch out;
  for (const auto& e : entries) {
    if (e.index <= applied)
      continue; // Replayed after a replica restart: applied already.
    if (e.type == raft::entry_type::normal) {
      auto stamped = unstamp_command(e.data);
      if (!stamped) {
        spdlog::error("g={} n={} entry {} is not a stamped command: stopping "
                      "the applier",
                      group.value, node.value, e.index.value);
        self->quit(make_error(cluster_errc::invalid_command));
        break;
      }
      cluster::entry_context ctx{e.index, e.term, stamped->first};
      out.results.push_back(apply_result{
        e.index, e.term, machine->apply(ctx, std::string{stamped->second})});
    }
    applied = e.index;
  }
  out.last = applied;
  if (auto deadline = machine->next_deadline())
    out.next_deadline = *deadline;
  auto notes = machine->take_notifications();
  if (!notes.empty() && sink) {
    std::vector<client_event> events;
    events.reserve(notes.size());
    for (auto& n : notes)
      events.push_back(
        client_event{group, std::move(n.owner), std::move(n.payload)});
    self->send(sink, atom::notify_v, std::move(events));
  }
  return out;
}

void applier_state::on_leadership(bool now_leading, term_t term) {
  if (now_leading == leading)
    return;
  leading = now_leading;
  if (leading) {
    spdlog::info("g={} n={} t={} leader start", group.value, node.value,
                 term.value);
    machine->on_leader_start(term);
  } else {
    spdlog::info("g={} n={} t={} leader stop", group.value, node.value,
                 term.value);
    machine->on_leader_stop();
  }
}

log_index applier_state::restore(const raft::snapshot_meta& meta,
                                 const std::string& data) {
  if (meta.last_index <= applied)
    return applied;
  spdlog::info("g={} n={} restoring the state machine from the snapshot at {}",
               group.value, node.value, meta.last_index.value);
  machine->restore(data);
  applied = meta.last_index;
  return applied;
}

applier_actor::behavior_type
applier(applier_actor::stateful_pointer<applier_state> self, group_id group,
        node_id node, cluster::state_machine_ptr machine, notify_actor sink,
        bool detached) {
  auto& st = self->state;
  st.detached = detached;
  st.self = self;
  st.group = group;
  st.node = node;
  st.machine = std::move(machine);
  st.sink = std::move(sink);
  return {
    [self](atom::apply, const std::vector<raft::log_entry>& entries) {
      return self->state.apply(entries);
    },
    [self](atom::leadership, bool leading, term_t term) {
      self->state.on_leadership(leading, term);
    },
    [self](atom::snapshot) -> caf::result<log_index, std::string> {
      auto& st = self->state;
      auto task = st.machine->snapshot_task();
      auto writer = spawn_one_shot(self, st.detached, std::move(task));
      auto rp = self->make_response_promise<log_index, std::string>();
      self->request(writer, caf::infinite, atom::run_v)
        .then(
          [rp, index = st.applied](std::string& data) mutable {
            rp.deliver(index, std::move(data));
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [self](atom::restore, const raft::snapshot_meta& meta,
           const std::string& data) { return self->state.restore(meta, data); },
    [self](atom::query,
           const std::string& request) -> caf::result<log_index, std::string> {
      auto& st = self->state;
      return {st.applied, st.machine->query(request)};
    },
    [self](atom::digest) -> caf::result<log_index, std::string> {
      auto& st = self->state;
      return {st.applied, st.machine->digest()};
    },
  };
}

} // namespace ees::actors
