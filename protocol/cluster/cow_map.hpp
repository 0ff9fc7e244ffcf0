// A map whose copies share their data until one of them writes: what lets a
// snapshot of a large state be taken without stopping the state machine.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <utility>
#include <vector>

namespace ees::cluster_sm {

/// A map split by key hash into `shard_count` shards, each held by a shared
/// pointer. Copying the map copies the pointers, and a write to a shard that
/// another copy still holds copies that one shard first.
///
/// Why: the applier captures the state for a snapshot by copying it and
/// serializes the copy on another thread (cluster_state_machine). A deep
/// copy of 100,000 keys took 40 ms, during which the group applied nothing
/// and answered nobody; this copy takes O(shard_count), and the writes after
/// it copy the state piecemeal, one shard (1/64 of it) at a time.
///
/// Thread safety: as for std::map, except that copies may be read and
/// destroyed on other threads while the original is written (a shard stays
/// immutable for as long as two copies hold it).
///
/// Iteration with `Shard = std::map` is in key order, as std::map's (a
/// merge of the shards); with an unordered `Shard` only lookups are offered.
template <class Key, class Value, class Hash = std::hash<Key>,
          class Shard = std::map<Key, Value>>
class cow_map {
public:
  static constexpr std::size_t shard_count = 64;

  cow_map() = default;
  cow_map(const cow_map&) = default;
  cow_map& operator=(const cow_map&) = default;

  /// Leaves `other` empty (its shards move; so must its size).
  cow_map(cow_map&& other) noexcept
    : shards_(std::move(other.shards_)), size_(std::exchange(other.size_, 0)) {
    // nop
  }

  cow_map& operator=(cow_map&& other) noexcept {
    shards_ = std::move(other.shards_);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }

  ~cow_map() = default;

  std::size_t size() const {
    return size_;
  }

  bool empty() const {
    return size_ == 0;
  }

  /// The value of `key`, or nullptr.
  const Value* find(const Key& key) const {
    return find_in(shard_of(key), key);
  }

  /// The value of `key` for writing (valid until the next write or copy of
  /// the map), or nullptr when absent.
  Value* find_mutable(const Key& key) {
    auto i = shard_of(key);
    if (find_in(i, key) == nullptr)
      return nullptr; // Absent: no reason to copy the shard.
    return &writable(i).find(key)->second;
  }

  std::size_t count(const Key& key) const {
    return find(key) != nullptr ? 1 : 0;
  }

  /// Inserts `key` with `value` unless present. Returns the value in the
  /// map (for reading) and whether it was inserted.
  std::pair<const Value*, bool> emplace(const Key& key, Value value) {
    auto i = shard_of(key);
    if (const auto* v = find_in(i, key))
      return {v, false}; // Present: no reason to copy the shard.
    auto pos = writable(i).emplace(key, std::move(value)).first;
    ++size_;
    return {&pos->second, true};
  }

  /// The value of `key` for writing, default-constructed when absent.
  Value& operator[](const Key& key) {
    auto& s = writable(shard_of(key));
    auto [i, fresh] = s.try_emplace(key);
    if (fresh)
      ++size_;
    return i->second;
  }

  /// Removes `key`; returns whether it was present.
  bool erase(const Key& key) {
    auto i = shard_of(key);
    if (find_in(i, key) == nullptr)
      return false; // Absent: no reason to copy the shard.
    writable(i).erase(key);
    --size_;
    return true;
  }

  /// Calls `f(key, value)` for every element in key order.
  template <class F>
  void for_each(F&& f) const {
    merge(nullptr, [&f](const Key& k, const Value& v) {
      f(k, v);
      return true;
    });
  }

  /// Calls `f(key, value)` in key order for the elements after `*after` (all
  /// when `after` is null) until `f` returns false.
  template <class F>
  void for_each_after(const Key* after, F&& f) const {
    merge(after, std::forward<F>(f));
  }

  /// Calls `f(key, value)` for every element in no particular order (cheaper
  /// than a merge: for sums).
  template <class F>
  void for_each_unordered(F&& f) const {
    for (const auto& s : shards_)
      if (s)
        for (const auto& [k, v] : *s)
          f(k, v);
  }

  /// Calls `f(key, value&)` for every element, in key order within each
  /// shard, for writing.
  template <class F>
  void for_each_mutable(F&& f) {
    for (std::size_t i = 0; i < shard_count; ++i)
      if (shards_[i] && !shards_[i]->empty())
        for (auto& [k, v] : writable(i))
          f(k, v);
  }

private:
  static std::size_t shard_of(const Key& key) {
    return Hash{}(key) % shard_count;
  }

  const Value* find_in(std::size_t shard, const Key& key) const {
    const auto& s = shards_[shard];
    if (!s)
      return nullptr;
    auto pos = s->find(key);
    return pos == s->end() ? nullptr : &pos->second;
  }

  /// The shard for writing: a copy of it first when another map holds it.
  Shard& writable(std::size_t i) {
    auto& s = shards_[i];
    if (!s) {
      s = std::make_shared<Shard>();
    } else if (s.use_count() > 1) {
      s = std::make_shared<Shard>(*s);
    } else {
      // Sole owner: every other copy released the shard. Their reads
      // happen before this write (the release of their reference pairs
      // with this fence).
      std::atomic_thread_fence(std::memory_order_acquire);
    }
    return *s;
  }

  /// The k-way merge of the shards in key order, from after `*after`.
  template <class F>
  void merge(const Key* after, F&& f) const {
    using iter = typename Shard::const_iterator;
    struct cursor {
      iter pos;
      iter end;
    };
    auto later = [](const cursor& a, const cursor& b) {
      return b.pos->first < a.pos->first;
    };
    std::priority_queue<cursor, std::vector<cursor>, decltype(later)> heads{
      later};
    for (const auto& s : shards_) {
      if (!s)
        continue;
      auto pos = after ? s->upper_bound(*after) : s->begin();
      if (pos != s->end())
        heads.push(cursor{pos, s->end()});
    }
    while (!heads.empty()) {
      auto c = heads.top();
      heads.pop();
      if (!f(c.pos->first, c.pos->second))
        return;
      if (++c.pos != c.end)
        heads.push(c);
    }
  }

  std::array<std::shared_ptr<Shard>, shard_count> shards_;
  std::size_t size_ = 0;
};

} // namespace ees::cluster_sm
