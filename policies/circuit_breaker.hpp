#pragma once
/// The circuit breaker's decision: closed, open or half-open, from a sliding
/// window of call outcomes. One instance per (subtask, endpoint) in a
/// `subtask_breaker` and one per endpoint in a `job_breaker`; the two tiers
/// differ only in who feeds them and who obeys them.
///
/// Calls, in time order, with `now` from the caller's clock:
/// - `acquire(now)` before starting a call: returns whether the call may
///   start and the epoch to hand back with its outcome. Closed: always.
///   Open: never (but once `now` reaches the end of the open period the
///   breaker turns half-open first). Half-open: while fewer than
///   `half_open_probes` probes have started.
/// - `record(now, epoch, outcome)` when a call ends. Only outcomes of calls
///   acquired in the current epoch count: a late answer to a call started
///   before the breaker opened (or before it turned half-open) neither
///   reopens nor closes it.
/// - `record_summary(now, epoch, calls, failures, slow)`: the same for many
///   outcomes at once (the job tier receives subtask summaries).
/// - `tick(now)` when `next_deadline()` is reached: open -> half-open when the
///   open period is over. A half-open breaker whose probes have not all
///   answered within `half_open_max_wait` of the first probe is stuck (the
///   probes went to callers that never used them, or that died: a call that
///   hangs is bounded by its attempt timeout and answers as a failure): it
///   turns half-open again, a new epoch with fresh probes, without counting
///   the silence as a failure.
/// Every function that changes the state returns the transition (or
/// nothing); the epoch grows with each transition.
///
/// Opening: in closed state, once the window holds at least `minimum_calls`
/// outcomes and the failure rate >= `failure_rate` or the slow-call rate >=
/// `slow_call_rate`. The open period is `open_duration * open_growth^(k-1)`
/// for the k-th consecutive opening without a successful close, capped at
/// `max_open_duration`. Half-open: every probe must succeed to close; one
/// failed (or slow) probe opens again. Closing clears the window.
/// Pure: no clock reads, no threads, no CAF.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "policies/time.hpp"

namespace sinfer {

enum class breaker_state : uint8_t { closed, open, half_open };

inline const char* to_string(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed: return "closed";
    case breaker_state::open: return "open";
    case breaker_state::half_open: return "half-open";
  }
  return "unknown";
}

enum class window_kind : uint8_t { count, time };

struct breaker_config {
  /// `count`: the last `window_calls` outcomes; `time`: outcomes of the
  /// last `window_duration`. Default count.
  window_kind window = window_kind::count;
  /// Count window size. Default 100.
  uint32_t window_calls = 100;
  /// Time window length (kept in 10 buckets). Default 10 s.
  policy_duration window_duration = std::chrono::seconds{10};
  /// Failure rate (0..1] that opens the breaker. Default 0.5.
  double failure_rate = 0.5;
  /// Slow-call rate (0..1] that opens the breaker. Default 1.0 (only when
  /// every call is slow).
  double slow_call_rate = 1.0;
  /// A call slower than this is slow. Default 10 s.
  policy_duration slow_call_duration = std::chrono::seconds{10};
  /// Outcomes needed in the window before a rate can open it. Default 10.
  uint32_t minimum_calls = 10;
  /// First open period. Default 5 s.
  policy_duration open_duration = std::chrono::seconds{5};
  /// Growth of the open period on each reopening. Default 2.
  double open_growth = 2.0;
  /// Longest open period. Default 5 min.
  policy_duration max_open_duration = std::chrono::minutes{5};
  /// Probe calls allowed in half-open state. Default 3.
  uint32_t half_open_probes = 3;
  /// A half-open breaker whose started probes have not all answered after
  /// this long opens again. Default 60 s.
  policy_duration half_open_max_wait = std::chrono::seconds{60};
};

/// The end of one call, as the breaker counts it.
struct call_outcome {
  bool failed = false;
  policy_duration latency{0};
};

/// A state change with the window's figures at the moment it happened.
struct breaker_transition {
  breaker_state from = breaker_state::closed;
  breaker_state to = breaker_state::closed;
  policy_time at{};
  /// The epoch after the change.
  uint64_t epoch = 0;
  /// Window figures that led to it (opening) or probe figures (half-open).
  uint64_t calls = 0;
  uint64_t failures = 0;
  uint64_t slow = 0;
  /// When opening: how long it stays open.
  policy_duration open_for{0};
};

/// Outcome counts over a sliding window (count or time based).
class outcome_window {
public:
  struct totals {
    uint64_t calls = 0;
    uint64_t failures = 0;
    uint64_t slow = 0;
  };

  explicit outcome_window(const breaker_config& cfg)
    : kind_(cfg.window), max_calls_(std::max<uint32_t>(1, cfg.window_calls)),
      bucket_(std::max<policy_duration>(policy_duration{1}, cfg.window_duration / buckets)) {
  }

  /// Adds `calls` outcomes, `failures` and `slow` of them, observed at `now`.
  void add(policy_time now, uint64_t calls, uint64_t failures, uint64_t slow) {
    if (calls == 0)
      return;
    if (kind_ == window_kind::count) {
      // A summary has no order; its failed and slow calls go last (a
      // subtask sends a summary right after a failure, so the failure is
      // the newest call), which matters only when it overflows the window.
      for (uint64_t i = 0; i < calls; ++i) {
        uint8_t f = i >= calls - std::min(calls, failures) ? 1 : 0;
        uint8_t s = i >= calls - std::min(calls, slow) ? 1 : 0;
        ring_.push_back(entry{f, s});
        sum_.calls += 1;
        sum_.failures += f;
        sum_.slow += s;
        if (ring_.size() > max_calls_) {
          sum_.calls -= 1;
          sum_.failures -= ring_.front().failed;
          sum_.slow -= ring_.front().slow;
          ring_.pop_front();
        }
      }
      return;
    }
    auto index = now.time_since_epoch() / bucket_;
    expire(index);
    if (slots_.empty() || slots_.back().index != index)
      slots_.push_back(bucket{index, {}});
    auto& b = slots_.back().sum;
    b.calls += calls;
    b.failures += failures;
    b.slow += slow;
    sum_.calls += calls;
    sum_.failures += failures;
    sum_.slow += slow;
  }

  /// The window's totals at `now`.
  totals at(policy_time now) {
    if (kind_ == window_kind::time)
      expire(now.time_since_epoch() / bucket_);
    return sum_;
  }

  void clear() {
    ring_.clear();
    slots_.clear();
    sum_ = {};
  }

  static constexpr int64_t buckets = 10;

private:
  struct entry {
    uint8_t failed;
    uint8_t slow;
  };
  struct bucket {
    int64_t index;
    totals sum;
  };

  /// Drops buckets older than the window ending in bucket `index`.
  void expire(int64_t index) {
    while (!slots_.empty() && slots_.front().index <= index - buckets) {
      auto& b = slots_.front().sum;
      sum_.calls -= b.calls;
      sum_.failures -= b.failures;
      sum_.slow -= b.slow;
      slots_.pop_front();
    }
  }

  window_kind kind_;
  uint32_t max_calls_;
  policy_duration bucket_;
  std::deque<entry> ring_;
  std::deque<bucket> slots_;
  totals sum_;
};

class circuit_breaker {
public:
  explicit circuit_breaker(breaker_config cfg) : cfg_(cfg), window_(cfg) {
  }

  struct permit {
    bool allowed = false;
    /// True when the call is a half-open probe.
    bool probe = false;
    uint64_t epoch = 0;
  };

  /// Before starting a call at `now`. May turn an expired open breaker
  /// half-open (the transition goes to `changed` when given).
  permit acquire(policy_time now, std::optional<breaker_transition>* changed = nullptr) {
    if (auto t = tick(now); t && changed != nullptr)
      *changed = t;
    switch (state_) {
      case breaker_state::closed: return permit{true, false, epoch_};
      case breaker_state::open: return permit{false, false, epoch_};
      case breaker_state::half_open:
        if (probes_started_ >= cfg_.half_open_probes)
          return permit{false, true, epoch_};
        if (probes_started_ == 0)
          first_probe_at_ = now;
        ++probes_started_;
        return permit{true, true, epoch_};
    }
    return {};
  }

  /// A call acquired in `epoch` ended at `now`.
  std::optional<breaker_transition> record(policy_time now, uint64_t epoch, call_outcome outcome) {
    bool slow = outcome.latency >= cfg_.slow_call_duration;
    return record_summary(now, epoch, 1, outcome.failed ? 1 : 0, slow ? 1 : 0);
  }

  /// `calls` calls acquired in `epoch` ended by `now`; `failures` of them
  /// failed and `slow` were slow.
  std::optional<breaker_transition> record_summary(policy_time now, uint64_t epoch, uint64_t calls,
                                                   uint64_t failures, uint64_t slow) {
    if (epoch != epoch_ || calls == 0)
      return std::nullopt;
    switch (state_) {
      case breaker_state::open: return std::nullopt;
      case breaker_state::closed: {
        window_.add(now, calls, failures, slow);
        auto t = window_.at(now);
        if (t.calls < cfg_.minimum_calls)
          return std::nullopt;
        double calls_d = static_cast<double>(t.calls);
        bool too_many_failures = static_cast<double>(t.failures) >= cfg_.failure_rate * calls_d;
        bool too_slow = static_cast<double>(t.slow) >= cfg_.slow_call_rate * calls_d;
        if (too_many_failures || too_slow)
          return open(now, t.calls, t.failures, t.slow);
        return std::nullopt;
      }
      case breaker_state::half_open: {
        // A failed or slow probe counts against recovery.
        auto bad = std::min(calls, std::max(failures, slow));
        probes_failed_ += bad;
        probes_succeeded_ += calls - bad;
        if (probes_failed_ > 0)
          return open(now, probes_failed_ + probes_succeeded_, probes_failed_, 0);
        if (probes_succeeded_ >= cfg_.half_open_probes)
          return close(now);
        return std::nullopt;
      }
    }
    return std::nullopt;
  }

  /// Time-driven transitions; call when `next_deadline()` is reached (calling
  /// earlier or more often is harmless).
  std::optional<breaker_transition> tick(policy_time now) {
    if (state_ == breaker_state::open && now >= open_until_) {
      auto t = change(breaker_state::half_open, now);
      probes_started_ = probes_failed_ = probes_succeeded_ = 0;
      return t;
    }
    if (state_ == breaker_state::half_open && probes_started_ > probes_failed_ + probes_succeeded_
        && now >= first_probe_at_ + cfg_.half_open_max_wait) {
      auto t = change(breaker_state::half_open, now);
      t.calls = probes_started_;
      t.failures = 0;
      probes_started_ = probes_failed_ = probes_succeeded_ = 0;
      return t;
    }
    return std::nullopt;
  }

  /// When `tick` has work next: the end of the open period, or the stuck
  /// half-open limit while probes are outstanding; nullopt when nothing is
  /// due by time alone.
  std::optional<policy_time> next_deadline() const {
    if (state_ == breaker_state::open)
      return open_until_;
    if (state_ == breaker_state::half_open && probes_started_ > probes_failed_ + probes_succeeded_)
      return first_probe_at_ + cfg_.half_open_max_wait;
    return std::nullopt;
  }

  /// Forces a state (the job tier pushing its decision into a subtask
  /// breaker): `closed` clears the window and the opening count; `open`
  /// stays open until `until`. Returns the transition if the state changed.
  std::optional<breaker_transition> force(policy_time now, breaker_state to, policy_time until = {}) {
    if (to == breaker_state::closed) {
      if (state_ == breaker_state::closed)
        return std::nullopt;
      return close(now);
    }
    if (to == breaker_state::open) {
      auto from = state_;
      open_until_ = std::max(until, now);
      if (from == breaker_state::open)
        return std::nullopt;
      auto t = change(breaker_state::open, now);
      t.open_for = open_until_ - now;
      return t;
    }
    if (state_ == breaker_state::half_open)
      return std::nullopt;
    auto t = change(breaker_state::half_open, now);
    probes_started_ = probes_failed_ = probes_succeeded_ = 0;
    return t;
  }

  breaker_state state() const noexcept {
    return state_;
  }
  uint64_t epoch() const noexcept {
    return epoch_;
  }
  /// Consecutive openings since the last close.
  uint32_t openings() const noexcept {
    return openings_;
  }
  policy_time open_until() const noexcept {
    return open_until_;
  }
  /// Probes that may still start in this half-open period.
  uint32_t probes_left() const noexcept {
    return state_ == breaker_state::half_open && probes_started_ < cfg_.half_open_probes
             ? cfg_.half_open_probes - probes_started_
             : 0;
  }
  const breaker_config& config() const noexcept {
    return cfg_;
  }

  /// The open period of the `k`-th consecutive opening (k >= 1).
  policy_duration open_period(uint32_t k) const {
    double factor = std::pow(std::max(1.0, cfg_.open_growth), static_cast<double>(k - 1));
    double ns = static_cast<double>(cfg_.open_duration.count()) * factor;
    double cap = static_cast<double>(cfg_.max_open_duration.count());
    return policy_duration{static_cast<int64_t>(std::min(ns, cap))};
  }

private:
  breaker_transition change(breaker_state to, policy_time now) {
    breaker_transition t;
    t.from = state_;
    t.to = to;
    t.at = now;
    state_ = to;
    t.epoch = ++epoch_;
    return t;
  }

  breaker_transition open(policy_time now, uint64_t calls, uint64_t failures, uint64_t slow) {
    ++openings_;
    auto period = open_period(openings_);
    open_until_ = now + period;
    auto t = change(breaker_state::open, now);
    t.calls = calls;
    t.failures = failures;
    t.slow = slow;
    t.open_for = period;
    window_.clear();
    return t;
  }

  breaker_transition close(policy_time now) {
    auto t = change(breaker_state::closed, now);
    t.calls = probes_succeeded_ + probes_failed_;
    t.failures = probes_failed_;
    openings_ = 0;
    window_.clear();
    probes_started_ = probes_failed_ = probes_succeeded_ = 0;
    return t;
  }

  breaker_config cfg_;
  outcome_window window_;
  breaker_state state_ = breaker_state::closed;
  uint64_t epoch_ = 0;
  uint32_t openings_ = 0;
  policy_time open_until_{};
  /// When the first probe of this half-open period started.
  policy_time first_probe_at_{};
  uint64_t probes_started_ = 0;
  uint64_t probes_failed_ = 0;
  uint64_t probes_succeeded_ = 0;
};

} // namespace sinfer
