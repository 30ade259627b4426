#pragma once
/// Credit accounting for one link between a producer and a consumer.
///
/// Algorithm: the consumer grants its capacity once when the link opens and
/// then one credit back for every record that has left it. The producer sends
/// only while it holds credit. So at any time
///   records sent and not yet credited back <= capacity,
/// which bounds the consumer's buffer whatever the speeds. Pure: no clocks,
/// no threads, no CAF.

#include <algorithm>
#include <cstdint>

namespace sinfer {

/// Producer side of a link: how many records it may still send.
///
/// Under backpressure credit returns a few records at a time; sending on
/// every trickle makes many tiny messages (a wake-up each: measured 4x
/// slower end to end). So a producer starts a new chunk only when
/// `may_start_chunk()`: it holds a quarter of the consumer's capacity (the
/// most credit it ever held: the first grant, or more when a consumer
/// restored from a checkpoint granted less at first), at most `max_chunk`. Once started, a chunk may use every
/// credit left. This cannot deadlock: once the consumer has emptied and its
/// grants have arrived, the producer holds the whole capacity, which is at
/// least the threshold.
class send_credit {
public:
  /// `max_chunk`: the largest chunk the producer sends (caps the threshold).
  explicit send_credit(uint64_t max_chunk = 256) noexcept : max_chunk_(max_chunk) {
  }

  /// Called when the consumer grants `n` more records. The most credit
  /// held at once is taken as the consumer's capacity.
  void grant(uint64_t n) noexcept {
    available_ += n;
    threshold_ = std::max(threshold_, std::max<uint64_t>(1, std::min(max_chunk_, available_ / 4)));
  }

  /// Whether enough credit is there to start a new chunk (see above).
  bool may_start_chunk() const noexcept {
    return threshold_ > 0 && available_ >= threshold_;
  }

  /// Records that may be sent now.
  uint64_t available() const noexcept {
    return available_;
  }

  /// Called for every record sent; returns false (and changes nothing) when
  /// there is no credit left.
  bool take(uint64_t n = 1) noexcept {
    if (available_ < n)
      return false;
    available_ -= n;
    return true;
  }

private:
  uint64_t max_chunk_;
  uint64_t threshold_ = 0;
  uint64_t available_ = 0;
};

/// Consumer side of a link: what to grant back and how full the consumer is.
class receive_credit {
public:
  /// `capacity` is the most records the consumer holds for this link.
  /// `min_grant`: credit goes back in grants of at least this many records
  /// (one message per record at light load otherwise). Safe up to 3/4 of
  /// the capacity: the producer still ends up holding at least a quarter of
  /// it, its threshold for starting a chunk (see send_credit).
  explicit receive_credit(uint64_t capacity, uint64_t min_grant = 1) noexcept
    : capacity_(capacity), min_grant_(std::max<uint64_t>(1, std::min(min_grant, capacity - capacity / 4))) {
  }

  /// The grant to send when the link opens: the whole capacity, less the
  /// records held (restored from a checkpoint). Restored records that left
  /// before the link opened are in it, not granted again later.
  uint64_t initial_grant() noexcept {
    to_grant_ = 0;
    return held_ >= capacity_ ? 0 : capacity_ - held_;
  }

  /// Records restored from a checkpoint before the link opens: they count as
  /// held, and those beyond the capacity (it shrank since the checkpoint)
  /// are never granted back, so the producer's credit stays within it.
  void restored(uint64_t n) noexcept {
    held_ += n;
    max_held_ = std::max(max_held_, held_);
    excess_ = held_ > capacity_ ? held_ - capacity_ : 0;
  }

  /// Called for each record that arrived; returns false if the producer sent
  /// more than it was granted (a protocol violation).
  bool arrived(uint64_t n = 1) noexcept {
    held_ += n;
    max_held_ = std::max(max_held_, held_);
    return held_ <= capacity_;
  }

  /// Called when `n` records have left the consumer.
  void left(uint64_t n = 1) noexcept {
    held_ -= n;
    auto kept = std::min(excess_, n);
    excess_ -= kept;
    to_grant_ += n - kept;
  }

  /// The grant to send now: everything freed since the last grant, once that
  /// is at least `min_grant` records (else 0, kept for later).
  uint64_t take_grant() noexcept {
    if (to_grant_ < min_grant_)
      return 0;
    auto n = to_grant_;
    to_grant_ = 0;
    return n;
  }

  uint64_t capacity() const noexcept {
    return capacity_;
  }

  /// Records held now.
  uint64_t held() const noexcept {
    return held_;
  }

  /// The most records ever held at once.
  uint64_t max_held() const noexcept {
    return max_held_;
  }

private:
  uint64_t capacity_;
  uint64_t min_grant_;
  uint64_t held_ = 0;
  uint64_t max_held_ = 0;
  uint64_t to_grant_ = 0;
  uint64_t excess_ = 0;
};

} // namespace sinfer
