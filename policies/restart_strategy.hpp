#pragma once
/// Whether, and after how long, to restart a crashed subtask.
///
/// Algorithm: Apache Flink's restart strategies (option prefix
/// `restart-strategy.`; Flink's RestartBackoffTimeStrategy implementations):
///   none:              never restart.
///   fixed-delay:       restart after `delay`, at most `attempts` times in all.
///   exponential-delay: restart after initial_backoff, then multiply the
///                      delay by backoff_multiplier per failure, capped at
///                      max_backoff. When the subtask ran for at least
///                      reset_backoff_threshold after its last restart, the
///                      delay and the attempt count start over. Give up after
///                      max_attempts restarts without such a reset.
///   failure-rate:      restart after `delay` unless more than
///                      max_failures_per_interval failures (this one
///                      included) fall within the last failure_rate_interval.
///
/// Who calls it: the job supervisor, one `restart_strategy` per subtask,
/// calling `on_failure(now)` each time that subtask crashes; it arms a timer
/// for `delay` when told to restart and fails the job when told not to.
/// `now` is the time the crash was observed (never read here) and must not
/// decrease between calls. Pure: no clocks, no threads, no CAF.
///
/// Simplifications, relative to Flink: no jitter on exponential delays; a
/// strategy that has given up stays given up (Flink fails the job at that
/// point, so it never asks again); the reset rule assumes the subtask was
/// restarted exactly `delay` after the previous failure.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "policies/time.hpp"

namespace sinfer {

/// The restart strategy of a job (Flink's `restart-strategy.type`).
enum class restart_kind : uint8_t { none, fixed_delay, exponential_delay, failure_rate };

/// The config name of `k`: "none", "fixed-delay", "exponential-delay" or
/// "failure-rate" (Flink's spelling).
inline const char* to_string(restart_kind k) noexcept {
  switch (k) {
    case restart_kind::none:
      return "none";
    case restart_kind::fixed_delay:
      return "fixed-delay";
    case restart_kind::exponential_delay:
      return "exponential-delay";
    case restart_kind::failure_rate:
      return "failure-rate";
  }
  return "?";
}

/// Parses a config name (exact, lower case, with hyphens). Returns false and
/// leaves `out` unchanged when `name` is not one of the four names.
inline bool parse_restart_kind(std::string_view name, restart_kind& out) noexcept {
  for (auto k : {restart_kind::none, restart_kind::fixed_delay, restart_kind::exponential_delay,
                 restart_kind::failure_rate}) {
    if (name == to_string(k)) {
      out = k;
      return true;
    }
  }
  return false;
}

/// Parameters of a `restart_strategy`; each field is read by the kinds named
/// in its comment and ignored by the others. Config validation is expected
/// to enforce initial_backoff <= max_backoff, backoff_multiplier >= 1 and
/// non-negative durations; the policy clamps (a multiplier below 1 counts as
/// 1, the delay never exceeds max_backoff).
struct restart_config {
  /// Which strategy. Default: exponential-delay (Flink's default since 1.19
  /// when checkpointing is on).
  restart_kind kind = restart_kind::exponential_delay;
  /// fixed-delay: restarts allowed over the subtask's life
  /// (`restart-strategy.fixed-delay.attempts`; Flink's default is 1, or
  /// unbounded with checkpointing). Ours: 3.
  uint32_t attempts = 3;
  /// fixed-delay and failure-rate: wait before each restart
  /// (`restart-strategy.fixed-delay.delay`, `...failure-rate.delay`; 1 s as in Flink).
  policy_duration delay = std::chrono::seconds{1};
  /// exponential-delay: the first delay, and the delay after a reset
  /// (`restart-strategy.exponential-delay.initial-backoff`; 1 s as in Flink).
  policy_duration initial_backoff = std::chrono::seconds{1};
  /// exponential-delay: the longest delay
  /// (`restart-strategy.exponential-delay.max-backoff`; 60 s as in Flink).
  policy_duration max_backoff = std::chrono::seconds{60};
  /// exponential-delay: delay growth per failure
  /// (`restart-strategy.exponential-delay.backoff-multiplier`; Flink: 2.0
  /// before 1.19, 1.5 since). Ours: 2.0.
  double backoff_multiplier = 2.0;
  /// exponential-delay: a subtask that ran this long after its last restart
  /// without failing is healthy again; its next failure starts over at
  /// initial_backoff with a fresh attempt count
  /// (`restart-strategy.exponential-delay.reset-backoff-threshold`; Flink: 1 h).
  /// Ours: 60 s.
  policy_duration reset_backoff_threshold = std::chrono::seconds{60};
  /// exponential-delay: restarts allowed without a reset; the next failure
  /// gives up (`restart-strategy.exponential-delay.attempts-before-reset-backoff`;
  /// Flink: unbounded). Ours: 10.
  uint32_t max_attempts = 10;
  /// failure-rate: failures tolerated within one interval; one more gives up
  /// (`restart-strategy.failure-rate.max-failures-per-interval`; Flink: 1). Ours: 3.
  uint32_t max_failures_per_interval = 3;
  /// failure-rate: length of the sliding window over failure times
  /// (`restart-strategy.failure-rate.failure-rate-interval`; 60 s as in Flink).
  policy_duration failure_rate_interval = std::chrono::seconds{60};
};

/// What to do about one failure.
struct restart_decision {
  /// Restart the subtask after `delay` (true), or give up and fail the job.
  bool restart = false;
  /// Wait before restarting, from the `now` passed to `on_failure`; zero
  /// when giving up.
  policy_duration delay{0};
  /// Empty on restart. On giving up, why, for the job's error message,
  /// naming the strategy: e.g. "fixed-delay: 3 restart attempts used".
  std::string reason;
};

/// Restart decisions for one subtask (see the file comment).
class restart_strategy {
public:
  explicit restart_strategy(restart_config cfg) : cfg_(cfg) {
    if (!(cfg_.backoff_multiplier >= 1.0)) // also NaN
      cfg_.backoff_multiplier = 1.0;
    current_backoff_ = std::min(cfg_.initial_backoff, cfg_.max_backoff);
  }

  /// Called each time the subtask crashes, with the time the crash was
  /// observed. Returns whether to restart and after how long. Once it has
  /// returned restart == false, every later call returns the same decision.
  restart_decision on_failure(policy_time now) {
    if (gave_up_)
      return give_up(reason_);
    switch (cfg_.kind) {
      case restart_kind::none:
        return give_up("none: restarts are disabled");
      case restart_kind::fixed_delay:
        if (restarts_ >= cfg_.attempts)
          return give_up("fixed-delay: " + std::to_string(cfg_.attempts)
                         + " restart attempts used");
        return restart_after(cfg_.delay);
      case restart_kind::exponential_delay:
        return exponential(now);
      case restart_kind::failure_rate:
        return failure_rate(now);
    }
    return give_up("unknown restart strategy");
  }

  /// Restarts granted so far over the subtask's life (resets do not clear it).
  uint32_t restarts() const noexcept {
    return restarts_;
  }

private:
  restart_decision restart_after(policy_duration delay) {
    ++restarts_;
    return restart_decision{true, delay, {}};
  }

  restart_decision give_up(std::string reason) {
    gave_up_ = true;
    reason_ = reason;
    return restart_decision{false, policy_duration{0}, std::move(reason)};
  }

  static std::string ms_text(policy_duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
  }

  // Flink's reset rule: the subtask restarted at last_failure_ + last_delay_
  // and has run since then for at least the threshold.
  restart_decision exponential(policy_time now) {
    if (has_failed_ && now - last_failure_ >= last_delay_ + cfg_.reset_backoff_threshold) {
      current_backoff_ = std::min(cfg_.initial_backoff, cfg_.max_backoff);
      attempts_since_reset_ = 0;
    }
    has_failed_ = true;
    last_failure_ = now;
    if (attempts_since_reset_ >= cfg_.max_attempts)
      return give_up("exponential-delay: " + std::to_string(cfg_.max_attempts)
                     + " restart attempts without a reset (no run of "
                     + ms_text(cfg_.reset_backoff_threshold) + ")");
    ++attempts_since_reset_;
    last_delay_ = current_backoff_;
    double next = static_cast<double>(current_backoff_.count()) * cfg_.backoff_multiplier;
    current_backoff_ = next < static_cast<double>(cfg_.max_backoff.count())
                         ? policy_duration{static_cast<policy_duration::rep>(next)}
                         : cfg_.max_backoff;
    return restart_after(last_delay_);
  }

  // Window [now - interval, now], both ends included (as Flink: a failure
  // exactly `interval` old still counts).
  restart_decision failure_rate(policy_time now) {
    failures_.push_back(now);
    while (now - failures_.front() > cfg_.failure_rate_interval)
      failures_.pop_front();
    if (failures_.size() > cfg_.max_failures_per_interval)
      return give_up("failure-rate: " + std::to_string(failures_.size()) + " failures within "
                     + ms_text(cfg_.failure_rate_interval) + " (at most "
                     + std::to_string(cfg_.max_failures_per_interval) + " allowed)");
    return restart_after(cfg_.delay);
  }

  restart_config cfg_;
  uint32_t restarts_ = 0;
  bool gave_up_ = false;
  std::string reason_;                // why we gave up (when gave_up_)
  // exponential-delay state
  policy_duration current_backoff_{0}; // delay of the next restart
  policy_duration last_delay_{0};      // delay granted at the previous failure
  policy_time last_failure_{};
  bool has_failed_ = false;
  uint32_t attempts_since_reset_ = 0;
  // failure-rate state: failure times inside the window, oldest first
  // (at most max_failures_per_interval + 1 entries).
  std::deque<policy_time> failures_;
};

} // namespace sinfer
