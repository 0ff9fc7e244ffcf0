// The exactly-once table's lookup by request id.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ees::cluster_sm::detail {

/// One remembered answer. Immutable, held by a shared pointer so that the
/// answer index can point at it while copies of the table come and go.
struct answer_record {
  std::string id;
  std::string answer;
  /// answer_index::hash(id).
  std::uint64_t hash = 0;
};

/// Request id -> its remembered answer record, derived from the table's
/// records (it points at them and never owns them).
///
/// Open addressing with linear probing over (hash, record) slots, at most
/// half full. Why: a std::unordered_map keyed by a view of the record's id
/// read a node, the record and the id's bytes at every probe (several cache
/// misses per lookup; the table was 8% of a follower's CPU at 20,000
/// commits/s); here a probe compares hashes in one array and reads a record
/// only when the hash matches. Never iterated, so its order is no concern
/// of determinism.
class answer_index {
public:
  static std::uint64_t hash(std::string_view id) {
    return std::hash<std::string_view>{}(id);
  }

  std::size_t size() const {
    return size_;
  }

  /// The record of `id`, or nullptr.
  const answer_record* find(std::string_view id) const {
    if (slots_.empty())
      return nullptr;
    auto h = hash(id);
    for (auto i = h & mask(); slots_[i].record != nullptr; i = (i + 1) & mask())
      if (slots_[i].hash == h && slots_[i].record->id == id)
        return slots_[i].record;
    return nullptr;
  }

  /// @pre no record with `r->id` is indexed.
  void insert(const answer_record* r) {
    if (2 * (size_ + 1) > slots_.size())
      grow();
    place(r);
    ++size_;
  }

  /// @pre `r` is indexed.
  void erase(const answer_record* r) {
    auto i = r->hash & mask();
    while (slots_[i].record != r)
      i = (i + 1) & mask();
    // Backward-shift deletion (Knuth, TAOCP 6.4, Algorithm R): the later
    // entries of the run move into the hole unless their home slot lies
    // cyclically in (hole, their slot].
    for (auto j = (i + 1) & mask(); slots_[j].record != nullptr;
         j = (j + 1) & mask()) {
      auto home = slots_[j].hash & mask();
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = slot{};
    --size_;
  }

private:
  struct slot {
    std::uint64_t hash = 0;
    const answer_record* record = nullptr;
  };

  std::size_t mask() const {
    return slots_.size() - 1;
  }

  void place(const answer_record* r) {
    auto i = r->hash & mask();
    while (slots_[i].record != nullptr)
      i = (i + 1) & mask();
    slots_[i] = slot{r->hash, r};
  }

  void grow() {
    auto old = std::move(slots_);
    slots_.assign(old.empty() ? 16 : 2 * old.size(), slot{});
    for (const auto& s : old)
      if (s.record != nullptr)
        place(s.record);
  }

  /// A power of two in size (or empty).
  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

} // namespace ees::cluster_sm::detail
