#pragma once
/// The records a stage holds between arrival and departure, and the order in
/// which they may leave.
///
/// - ordered: a record leaves only when it and every record that arrived
///   before it are complete (Flink's ordered AsyncWaitOperator queue), so a
///   subtask's output keeps its input order.
/// - unordered: a record leaves as soon as it is complete, in completion order.
///
/// Usage: `admit` each arriving item (returns its ticket), `complete(ticket)`
/// when its result is in, then `pop_ready` until it returns false. Tickets are
/// consecutive from 0. Pure: no clocks, threads or CAF.
///
/// Cost: ordered mode is a deque indexed by ticket; unordered keeps completed
/// items in a FIFO and pending ones in a hash map.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sinfer {

enum class output_mode : uint8_t { ordered, unordered };

template <class T>
class inflight_table {
public:
  explicit inflight_table(output_mode mode) : mode_(mode) {
  }

  /// Takes `item` in; returns its ticket.
  uint64_t admit(T item) {
    auto ticket = next_++;
    if (mode_ == output_mode::ordered)
      slots_.push_back(slot{std::move(item), false});
    else
      pending_.emplace(ticket, std::move(item));
    ++size_;
    return ticket;
  }

  /// The item behind a ticket that has not completed yet.
  T& at(uint64_t ticket) {
    if (mode_ == output_mode::ordered)
      return slots_.at(ticket - base_).item;
    return pending_.at(ticket);
  }

  /// The item behind `ticket` if it is held and not complete, else nullptr
  /// (already complete, already left, or never admitted).
  T* find_pending(uint64_t ticket) {
    if (mode_ == output_mode::ordered) {
      if (ticket < base_ || ticket - base_ >= slots_.size())
        return nullptr;
      auto& s = slots_[ticket - base_];
      return s.done ? nullptr : &s.item;
    }
    auto i = pending_.find(ticket);
    return i == pending_.end() ? nullptr : &i->second;
  }

  /// Calls `f(ticket, item)` for every item that is not complete, in ticket
  /// order when ordered.
  template <class F>
  void for_each_pending(F f) {
    if (mode_ == output_mode::ordered) {
      for (size_t i = 0; i < slots_.size(); ++i)
        if (!slots_[i].done)
          f(base_ + i, slots_[i].item);
      return;
    }
    for (auto t : pending_tickets())
      f(t, pending_.at(t));
  }

  /// Calls `f(item, done)` for every item held, complete or not (a
  /// checkpoint's snapshot): ordered mode in arrival order; unordered mode
  /// the complete ones first, in the order they will leave, then the
  /// pending ones by ticket.
  template <class F>
  void for_each_held(F f) const {
    if (mode_ == output_mode::ordered) {
      for (auto& s : slots_)
        f(s.item, s.done);
      return;
    }
    for (auto& item : ready_)
      f(item, true);
    for (auto t : pending_tickets())
      f(pending_.at(t), false);
  }

  /// Marks the item behind `ticket` complete. Completing twice throws.
  void complete(uint64_t ticket) {
    if (mode_ == output_mode::ordered) {
      auto& s = slots_.at(ticket - base_);
      if (s.done)
        throw std::logic_error("inflight_table: ticket completed twice");
      s.done = true;
      return;
    }
    auto i = pending_.find(ticket);
    if (i == pending_.end())
      throw std::logic_error("inflight_table: unknown or completed ticket");
    ready_.push_back(std::move(i->second));
    pending_.erase(i);
  }

  /// Moves the next item allowed to leave into `out`; false if none may.
  bool pop_ready(T& out) {
    if (mode_ == output_mode::ordered) {
      if (slots_.empty() || !slots_.front().done)
        return false;
      out = std::move(slots_.front().item);
      slots_.pop_front();
      ++base_;
    } else {
      if (ready_.empty())
        return false;
      out = std::move(ready_.front());
      ready_.pop_front();
    }
    --size_;
    return true;
  }

  /// Items held (pending or complete but not yet popped).
  size_t size() const noexcept {
    return size_;
  }

  bool empty() const noexcept {
    return size_ == 0;
  }

private:
  /// Unordered mode: the pending tickets, sorted.
  std::vector<uint64_t> pending_tickets() const {
    std::vector<uint64_t> tickets;
    tickets.reserve(pending_.size());
    for (auto& kv : pending_)
      tickets.push_back(kv.first);
    std::sort(tickets.begin(), tickets.end());
    return tickets;
  }

  struct slot {
    T item;
    bool done;
  };
  output_mode mode_;
  uint64_t next_ = 0;
  uint64_t base_ = 0;
  size_t size_ = 0;
  std::deque<slot> slots_;
  std::unordered_map<uint64_t, T> pending_;
  std::deque<T> ready_;
};

} // namespace sinfer
