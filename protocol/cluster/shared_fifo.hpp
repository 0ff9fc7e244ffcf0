// A queue whose copies share their storage until one of them writes: what
// lets a snapshot capture the exactly-once table without copying it.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

namespace ees::cluster_sm {

/// A first-in first-out queue stored in blocks of `block_size` elements,
/// each held by a shared pointer. Copying the queue copies the block
/// pointers; a block is never written while two queues hold it (a push into
/// a shared last block copies that block first, a pop only moves the start).
///
/// Why: the applier copies the replicated state at every snapshot capture
/// (cluster_state::snapshot_task). With the remembered answers in a
/// cow_map, every write after a capture copied a whole shard, so each
/// snapshot cost a deep copy of the table spread over the next writes (2.0
/// against 0.55 us per apply in a loop that captured every 10,000 applies).
/// The table only ever grows at the back and shrinks at the front, so a copy
/// needs to share only blocks that nobody changes.
///
/// Thread safety: as for std::deque, except that copies may be read and
/// destroyed on other threads while the original is written.
template <class T, std::size_t block_size = 256>
class shared_fifo {
public:
  std::size_t size() const {
    return size_;
  }

  bool empty() const {
    return size_ == 0;
  }

  /// @pre !empty()
  const T& front() const {
    return (*blocks_.front())[head_];
  }

  void push_back(T value) {
    if (blocks_.empty() || blocks_.back()->size() == block_size) {
      auto fresh = std::make_shared<block>();
      fresh->reserve(block_size);
      blocks_.push_back(std::move(fresh));
    } else if (blocks_.back().use_count() > 1) {
      blocks_.back() = std::make_shared<block>(*blocks_.back());
      blocks_.back()->reserve(block_size);
    } else {
      // Sole owner: the copies that held this block released it, and their
      // reads happen before this write (see cow_map::writable).
      std::atomic_thread_fence(std::memory_order_acquire);
    }
    blocks_.back()->push_back(std::move(value));
    ++size_;
  }

  /// @pre !empty()
  void pop_front() {
    --size_;
    if (++head_ == blocks_.front()->size() && blocks_.size() > 1) {
      blocks_.pop_front();
      head_ = 0;
    } else if (size_ == 0) {
      blocks_.clear();
      head_ = 0;
    }
  }

  /// Calls `f(element)` from front to back.
  template <class F>
  void for_each(F&& f) const {
    auto skip = head_;
    for (const auto& b : blocks_) {
      for (auto i = skip; i < b->size(); ++i)
        f((*b)[i]);
      skip = 0;
    }
  }

private:
  using block = std::vector<T>;

  std::deque<std::shared_ptr<block>> blocks_;
  /// The front element's position in the first block.
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

} // namespace ees::cluster_sm
