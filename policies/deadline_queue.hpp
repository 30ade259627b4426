#pragma once
/// Many timers on one: (time, key) entries kept in time order, so an actor
/// arms a single timer for the earliest entry instead of one per record.
///
/// `push` an entry; `next()` is the earliest time (arm a timer for it when it
/// is earlier than the timer already armed); when a timer fires, `pop_due(now)`
/// returns every entry due by `now`, earliest first. Entries are not removed
/// when they become moot: the caller checks each popped key against its own
/// state (a stale entry is cheaper than a search), and calls `remove_if` now
/// and then (e.g. when the queue is twice the live entries) to keep it
/// bounded. Ties keep push order.
/// Pure: no clock reads, no threads, no CAF.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "policies/time.hpp"

namespace sinfer {

template <class Key>
class deadline_queue {
public:
  struct entry {
    policy_time at;
    uint64_t seq;
    Key key;
  };

  void push(policy_time at, Key key) {
    heap_.push_back(entry{at, seq_++, std::move(key)});
    std::push_heap(heap_.begin(), heap_.end(), later{});
  }

  std::optional<policy_time> next() const {
    if (heap_.empty())
      return std::nullopt;
    return heap_.front().at;
  }

  /// Removes and returns the entries due at `now`, in time (then push) order.
  std::vector<Key> pop_due(policy_time now) {
    std::vector<Key> due;
    while (!heap_.empty() && heap_.front().at <= now) {
      std::pop_heap(heap_.begin(), heap_.end(), later{});
      due.push_back(std::move(heap_.back().key));
      heap_.pop_back();
    }
    return due;
  }

  /// Drops every entry for which `moot(at, key)` holds (entries whose
  /// records finished long ago), keeping the rest in order. Linear.
  template <class Pred>
  void remove_if(Pred moot) {
    heap_.erase(std::remove_if(heap_.begin(), heap_.end(), [&](const entry& e) { return moot(e.at, e.key); }),
                heap_.end());
    std::make_heap(heap_.begin(), heap_.end(), later{});
  }

  size_t size() const noexcept {
    return heap_.size();
  }
  bool empty() const noexcept {
    return heap_.empty();
  }

private:
  struct later {
    bool operator()(const entry& a, const entry& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };
  std::vector<entry> heap_;
  uint64_t seq_ = 0;
};

} // namespace sinfer
