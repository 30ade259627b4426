#pragma once
/// Retry budget: how many retries may be outstanding, so that an outage
/// cannot multiply the load on a backend.
///
/// Algorithm: Envoy's retry budget (envoy.config.cluster.v3.CircuitBreakers
/// .Thresholds.RetryBudget): retries in flight are capped at
///   max(min_retry_concurrency, floor(budget_percent/100 * active_requests)),
/// plus a token ratio in the spirit of gRPC's retry throttling: every first
/// attempt deposits budget_percent/100 of a token and every granted retry
/// spends one whole token. Hence the invariant, at every moment:
///   granted() <= budget_percent/100 * first_attempts()
/// i.e. retries add at most budget_percent % to the requests a backend sees,
/// however long the outage; the concurrency cap additionally bounds how many
/// of them hit it at once.
///
/// Who calls it: the actor that sends attempts (one budget per backend it
/// talks to). Pure: no clocks, no threads, no CAF.
///
/// Simplifications: tokens never expire and are not capped (gRPC caps them
/// at max_tokens), so a long healthy period banks retries that an outage may
/// spend later, still within the invariant and the concurrency cap. The
/// percentage is rounded to 4 decimals (parts per million) and all
/// accounting is in integers, so e.g. 6000 first attempts at 33.3 % give
/// exactly 1998 tokens (doubles would give 1997.9999...).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

namespace sinfer {

/// Parameters of a `retry_budget`.
struct retry_budget_config {
  /// Retries allowed, as a percentage of first attempts (tokens) and of
  /// active requests (concurrency). Envoy's default is 20. Config validation
  /// is expected to enforce [0, 100]; the policy clamps to that range
  /// (NaN counts as 0).
  double budget_percent = 20.0;
  /// Retries in flight always allowed by the concurrency cap, even with few
  /// active requests (Envoy's default: 3). Tokens are still required.
  uint32_t min_retry_concurrency = 3;
};

/// Retry admission for one backend (see the file comment).
class retry_budget {
public:
  explicit retry_budget(retry_budget_config cfg) noexcept
    : ppm_(cfg.budget_percent > 0.0
             ? static_cast<uint64_t>(std::llround(std::min(cfg.budget_percent, 100.0) * 1e4))
             : 0),
      min_concurrency_(cfg.min_retry_concurrency) {
  }

  /// Called once per record, when its first attempt is sent (never for a
  /// retry). Deposits budget_percent/100 of a token.
  void on_first_attempt() noexcept {
    ++first_attempts_;
    // Saturates (after ~1.8e13 banked first attempts) instead of wrapping.
    micro_tokens_ = micro_tokens_ > max_micro_tokens - ppm_ ? max_micro_tokens
                                                             : micro_tokens_ + ppm_;
  }

  /// Called when a record wants a retry. `active_requests`: records the
  /// caller is currently working on (in flight or waiting to retry), retries
  /// included. Returns true iff
  ///   retries_in_flight() < max(min_retry_concurrency,
  ///                             floor(budget_percent/100 * active_requests))
  ///   and tokens() >= 1;
  /// then it spends one token and counts one retry in flight, which the
  /// caller hands back with `release()`. Otherwise it counts a rejection and
  /// changes nothing else; the caller fails the record (or tries again
  /// later, as a new acquire).
  bool try_acquire(uint64_t active_requests) noexcept {
    // floor(ppm * active / 1e6), split so that it cannot overflow.
    uint64_t share = active_requests / one_million * ppm_
                     + active_requests % one_million * ppm_ / one_million;
    uint64_t cap = std::max<uint64_t>(min_concurrency_, share);
    if (in_flight_ >= cap || micro_tokens_ < one_million) {
      ++rejected_;
      return false;
    }
    micro_tokens_ -= one_million;
    ++granted_;
    ++in_flight_;
    return true;
  }

  /// Called when a retry acquired with `try_acquire` has finished, whatever
  /// its result (success, failure, timeout, cancelled). Throws
  /// std::logic_error when no retry is in flight (a caller bug).
  void release() {
    if (in_flight_ == 0)
      throw std::logic_error("retry_budget::release without a retry in flight");
    --in_flight_;
  }

  /// Retries granted and not yet released.
  uint64_t retries_in_flight() const noexcept {
    return in_flight_;
  }

  /// Tokens left: budget_percent/100 * first_attempts() - granted(); >= 0
  /// (exact to a millionth of a token).
  double tokens() const noexcept {
    return static_cast<double>(micro_tokens_) / 1e6;
  }

  /// Calls of `on_first_attempt` so far.
  uint64_t first_attempts() const noexcept {
    return first_attempts_;
  }

  /// Retries granted so far (released or not).
  uint64_t granted() const noexcept {
    return granted_;
  }

  /// `try_acquire` calls that returned false so far.
  uint64_t rejected() const noexcept {
    return rejected_;
  }

private:
  static constexpr uint64_t one_million = 1'000'000;
  static constexpr uint64_t max_micro_tokens = std::numeric_limits<uint64_t>::max();
  uint64_t ppm_;               // budget_percent clamped to [0, 100], in 1e-4 %
  uint32_t min_concurrency_;   // min_retry_concurrency
  uint64_t micro_tokens_ = 0;  // tokens(), in millionths of a token
  uint64_t first_attempts_ = 0;
  uint64_t granted_ = 0;
  uint64_t rejected_ = 0;
  uint64_t in_flight_ = 0;
};

} // namespace sinfer
