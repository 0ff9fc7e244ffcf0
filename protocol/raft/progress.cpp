#include "protocol/raft/progress.hpp"

#include <algorithm>

namespace ees::raft {

const char* to_string(progress_state s) {
  switch (s) {
    case progress_state::probe:
      return "probe";
    case progress_state::replicate:
      return "replicate";
    case progress_state::snapshot:
      return "snapshot";
  }
  return "unknown";
}

bool progress::is_paused(std::size_t max_inflight) const noexcept {
  switch (state) {
    case progress_state::probe:
      return probe_sent;
    case progress_state::replicate:
      return inflight.size() >= max_inflight;
    case progress_state::snapshot:
      return true;
  }
  return true;
}

void progress::become_probe() noexcept {
  // After a snapshot, resume right behind it; otherwise behind the match.
  if (state == progress_state::snapshot)
    next = std::max(match, pending_snapshot) + 1;
  else
    next = match + 1;
  state = progress_state::probe;
  probe_sent = false;
  pending_snapshot = log_index{};
  inflight.clear();
}

void progress::become_replicate() noexcept {
  state = progress_state::replicate;
  next = match + 1;
  probe_sent = false;
  pending_snapshot = log_index{};
  inflight.clear();
}

void progress::become_snapshot(log_index snapshot_index) noexcept {
  state = progress_state::snapshot;
  pending_snapshot = snapshot_index;
  probe_sent = false;
  inflight.clear();
}

void progress::sent_entries(log_index last) noexcept {
  switch (state) {
    case progress_state::replicate:
      if (last >= next) {
        next = last + 1;
        inflight.push_back(last);
      }
      break;
    case progress_state::probe:
      probe_sent = true;
      break;
    case progress_state::snapshot:
      break;
  }
}

bool progress::maybe_update(log_index i) noexcept {
  auto updated = false;
  if (i > match) {
    match = i;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, i + 1);
  while (!inflight.empty() && inflight.front() <= i)
    inflight.pop_front();
  return updated;
}

bool progress::maybe_decrease_to(log_index rejected, log_index hint) noexcept {
  if (state == progress_state::replicate) {
    // Answers to appends at or below the match are stale: the follower has
    // since confirmed a longer prefix.
    if (rejected <= match)
      return false;
    next = match + 1;
    return true;
  }
  // Probe: only the answer to the probe we sent (at next - 1) counts.
  if (next.value == 0 || next - 1 != rejected)
    return false;
  next = std::max(std::min(rejected, hint + 1), match + 1);
  probe_sent = false;
  return true;
}

} // namespace ees::raft
