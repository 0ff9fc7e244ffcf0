#include "actors/applier.hpp"

#include <spdlog/spdlog.h>

#include <utility>

namespace ees::actors {

applied_batch
applier_state::apply(const std::vector<raft::log_entry>& entries) {
  applied_batch out;
  for (const auto& e : entries) {
    if (e.index <= applied)
      continue; // Replayed after a replica restart: applied already.
    if (e.type == raft::entry_type::normal)
      out.results.push_back(
        apply_result{e.index, e.term, machine->apply(e.index, e.data)});
    applied = e.index;
  }
  out.last = entries.empty() ? applied : entries.back().index;
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
        node_id node, cluster::state_machine_ptr machine) {
  auto& st = self->state;
  st.self = self;
  st.group = group;
  st.node = node;
  st.machine = std::move(machine);
  return {
    [self](atom::apply, const std::vector<raft::log_entry>& entries) {
      return self->state.apply(entries);
    },
    [self](atom::leadership, bool leading, term_t term) {
      self->state.on_leadership(leading, term);
    },
    [self](atom::snapshot) -> caf::result<log_index, std::string> {
      auto& st = self->state;
      return {st.applied, st.machine->snapshot()};
    },
    [self](atom::restore, const raft::snapshot_meta& meta,
           const std::string& data) { return self->state.restore(meta, data); },
  };
}

} // namespace ees::actors
