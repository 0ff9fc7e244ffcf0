#include "protocol/raft/config.hpp"

namespace ees::raft {

std::string validate(const raft_config& cfg) {
  if (cfg.id == no_node)
    return "id: must not be 0";
  if (cfg.heartbeat_ticks == 0)
    return "heartbeat_ticks: must be at least 1";
  if (cfg.election_ticks <= cfg.heartbeat_ticks)
    return "election_ticks: must be greater than heartbeat_ticks";
  if (cfg.max_inflight == 0)
    return "max_inflight: must be at least 1";
  if (cfg.max_entries_per_append == 0)
    return "max_entries_per_append: must be at least 1";
  if (cfg.max_bytes_per_append == 0)
    return "max_bytes_per_append: must be at least 1";
  return {};
}

} // namespace ees::raft
