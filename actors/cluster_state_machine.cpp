#include "ees/cluster/cluster_state_machine.hpp"

#include "protocol/cluster/command.hpp"

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <utility>

namespace ees::cluster {

cluster_state_machine::cluster_state_machine(std::size_t dedup_capacity)
  : state_(dedup_capacity) {
  // nop
}

std::string cluster_state_machine::apply(const entry_context& ctx,
                                         const std::string& command) {
  return state_.apply(ctx.index, ctx.term, ctx.leader_time_ms, command);
}

std::string cluster_state_machine::check(const std::string& command) const {
  auto decoded = cluster_sm::decode_command(command);
  if (decoded)
    return {};
  const auto& err = decoded.error();
  nlohmann::json answer
    = {{"ok", false},
       {"error",
        {{"code", cluster_sm::to_string(err.code)}, {"message", err.message}}}};
  return answer.dump();
}

std::string cluster_state_machine::snapshot() {
  return state_.snapshot();
}

std::function<std::string()> cluster_state_machine::snapshot_task() {
  return state_.snapshot_task();
}

void cluster_state_machine::restore(const std::string& data) {
  if (auto err = state_.restore(data); !err.empty())
    throw std::runtime_error("cannot restore the cluster state: " + err);
}

std::string cluster_state_machine::query(const std::string& request) {
  return state_.query(request);
}

std::vector<notification> cluster_state_machine::take_notifications() {
  std::vector<notification> out;
  for (auto& n : state_.take_notifications())
    out.push_back(notification{std::move(n.owner), std::move(n.payload)});
  return out;
}

std::optional<std::int64_t> cluster_state_machine::next_deadline() {
  return state_.next_deadline();
}

std::string cluster_state_machine::digest() {
  // Serializing the whole state is costly (a status poll loop would redo it
  // for every poll): recompute only after something was applied.
  if (digest_.empty() || digest_index_ != state_.applied_index()) {
    auto n = state_.count();
    digest_ = "keys=" + std::to_string(n.keys)
              + " locks=" + std::to_string(n.locks) + " equipment="
              + std::to_string(n.equipment) + " hash=" + state_.digest();
    digest_index_ = state_.applied_index();
  }
  return digest_;
}

} // namespace ees::cluster
