#include "protocol/raft/log.hpp"

#include "protocol/raft/invariant.hpp"

#include <algorithm>

namespace ees::raft {

raft_log::raft_log(const snapshot_meta& snap, std::vector<log_entry> entries)
  : snapshot_(snap), entries_(std::move(entries)) {
  for (std::size_t i = 0; i < entries_.size(); ++i)
    EES_ASSERT(entries_[i].index == snapshot_.last_index + (i + 1),
               "restored entry %zu has index %llu", i,
               static_cast<unsigned long long>(entries_[i].index.value));
  unstable_from_ = last_index() + 1;
  durable_index_ = last_index();
}

std::optional<term_t> raft_log::term(log_index i) const noexcept {
  if (i == snapshot_.last_index)
    return snapshot_.last_term;
  if (i < snapshot_.last_index || i > last_index())
    return std::nullopt;
  return entries_[i.value - snapshot_.last_index.value - 1].term;
}

const log_entry& raft_log::at(log_index i) const {
  EES_ASSERT(i >= first_index() && i <= last_index(),
             "index %llu outside [%llu, %llu]",
             static_cast<unsigned long long>(i.value),
             static_cast<unsigned long long>(first_index().value),
             static_cast<unsigned long long>(last_index().value));
  return entries_[i.value - snapshot_.last_index.value - 1];
}

std::vector<log_entry> raft_log::slice(log_index lo, log_index hi,
                                       std::size_t max_count,
                                       std::size_t max_bytes) const {
  std::vector<log_entry> out;
  auto from = std::max(lo, first_index());
  auto to = std::min(hi, last_index());
  if (from <= to)
    out.reserve(std::min<std::size_t>(to.value - from.value + 1, max_count));
  std::size_t bytes = 0;
  for (auto i = from; i <= to; ++i) {
    const auto& e = at(i);
    if (!out.empty()
        && (out.size() >= max_count || bytes + e.data.size() > max_bytes))
      break;
    bytes += e.data.size();
    out.push_back(e);
  }
  return out;
}

void raft_log::append(log_entry e) {
  EES_ASSERT(e.index == last_index() + 1 && e.term >= last_term(),
             "append of %llu/%llu after %llu/%llu",
             static_cast<unsigned long long>(e.term.value),
             static_cast<unsigned long long>(e.index.value),
             static_cast<unsigned long long>(last_term().value),
             static_cast<unsigned long long>(last_index().value));
  entries_.push_back(std::move(e));
}

std::optional<log_index>
raft_log::append_or_replace(const std::vector<log_entry>& es) {
  for (const auto& e : es) {
    if (e.index <= snapshot_.last_index)
      continue; // Covered by the snapshot, hence committed and identical.
    if (auto t = term(e.index); t && *t == e.term)
      continue; // Already present (§5.3 log matching).
    EES_ASSERT(e.index <= last_index() + 1, "gap: entry %llu after %llu",
               static_cast<unsigned long long>(e.index.value),
               static_cast<unsigned long long>(last_index().value));
    // §5.3: delete the conflicting entry and all that follow it.
    auto first_new = e.index;
    entries_.resize(first_new.value - snapshot_.last_index.value - 1);
    unstable_from_ = std::min(unstable_from_, first_new);
    durable_index_ = std::min(durable_index_, first_new - 1);
    for (const auto& x : es)
      if (x.index >= first_new)
        append(x);
    return first_new;
  }
  return std::nullopt;
}

log_index raft_log::find_conflict_by_term(log_index i,
                                          term_t t) const noexcept {
  i = std::min(i, last_index());
  while (i > snapshot_.last_index) {
    if (auto x = term(i); x && *x <= t)
      return i;
    i = i - 1;
  }
  return i;
}

void raft_log::compact(const snapshot_meta& meta) {
  EES_ASSERT(meta.last_index > snapshot_.last_index
               && meta.last_index <= last_index()
               && match_term(meta.last_index, meta.last_term),
             "compaction to %llu/%llu outside log (%llu, %llu]",
             static_cast<unsigned long long>(meta.last_term.value),
             static_cast<unsigned long long>(meta.last_index.value),
             static_cast<unsigned long long>(snapshot_.last_index.value),
             static_cast<unsigned long long>(last_index().value));
  auto drop = meta.last_index.value - snapshot_.last_index.value;
  entries_.erase(entries_.begin(), entries_.begin() + drop);
  snapshot_ = meta;
  unstable_from_ = std::max(unstable_from_, first_index());
}

void raft_log::restore(const snapshot_meta& meta) {
  entries_.clear();
  snapshot_ = meta;
  unstable_from_ = first_index();
  // Not durable until storage confirms the snapshot (snapshot_stable).
  if (meta.last_index.value > 0)
    durable_index_ = std::min(durable_index_, meta.last_index - 1);
}

std::vector<log_entry> raft_log::take_unstable() {
  std::vector<log_entry> out;
  if (unstable_from_ <= last_index())
    out = slice(unstable_from_, last_index());
  unstable_from_ = last_index() + 1;
  if (!out.empty())
    writes_.push_back(
      write{out.front().index, out.back().index, out.back().term});
  return out;
}

void raft_log::stable_to(log_index i, term_t t) noexcept {
  // The oldest write holding index i is the one acknowledged; storage is FIFO,
  // so every older write is done too.
  auto acked
    = std::find_if(writes_.begin(), writes_.end(), [&](const write& w) {
        return w.first <= i && i <= w.last && (i != w.last || w.last_term == t);
      });
  if (acked == writes_.end())
    return; // Not a write of ours (e.g. from before a restart).
  if (i == acked->last) {
    writes_.erase(writes_.begin(), std::next(acked));
  } else {
    acked->first = i + 1; // Part of the write is done.
    writes_.erase(writes_.begin(), acked);
  }
  if (!match_term(i, t))
    return; // Replaced since: that write is obsolete.
  auto candidate = i;
  for (const auto& later : writes_)
    if (later.first <= candidate)
      candidate = later.first - 1;
  durable_index_ = std::max(durable_index_, candidate);
}

void raft_log::snapshot_stable(log_index i) noexcept {
  // A durable snapshot covers every index up to its own, even when a newer
  // snapshot has replaced it in memory meanwhile.
  if (i <= snapshot_.last_index && i > durable_index_)
    durable_index_ = i;
}

} // namespace ees::raft
