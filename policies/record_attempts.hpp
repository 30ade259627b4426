#pragma once
/// The life of one record in a model stage: attempts, retries and timeouts,
/// with exactly one outcome whatever order the events arrive in.
///
/// Flink's AsyncWaitOperator could lose a result when a timeout, a retry
/// timer and a late response raced (FLINK-40456). Here each record carries
/// its own `attempt_state`; every event names the attempt it belongs to, and
/// the functions below decide, from the state alone, whether the event
/// matters. Once a record is `done`, every later event is ignored.
///
/// The operator calls, per record:
/// - `begin_attempt(st)` when it hands the record to the batcher; keep the
///   returned attempt number with the call.
/// - `on_result(st, cfg, attempt, error, now)` when a call for the record
///   ends (an attempt timeout is a result with a retryable error). A success
///   from any attempt completes the record, even a late one (the result is
///   as good, and the pending retry is then ignored); an error from any
///   attempt but the current one is ignored.
/// - `on_retry_timer(st, attempt, now)` when a retry timer fires: true means
///   send the record again now (call `begin_attempt`).
/// - `on_total_timeout(st, now)` when the record's deadline passes.
/// What to do with a `retry` decision (budget, backoff) is the caller's: it
/// calls `schedule_retry` with the time, or `give_up` when it will not retry
/// (the inference operator gives up when the retry budget is out of tokens,
/// and lets the record wait when only the budget's concurrency cap refuses).
/// Pure: no clock reads, no threads, no CAF.

#include <cstdint>
#include <string>

#include "messages/call.hpp"
#include "policies/time.hpp"

namespace sinfer {

struct timeout_config {
  /// Longest one backend call may take (`timeout.attempt`). Default 30 s.
  policy_duration attempt = std::chrono::seconds{30};
  /// Longest a record may spend in a stage, all attempts and waits included
  /// (`timeout.total`); 0 means no limit. Default 120 s.
  policy_duration total = std::chrono::seconds{120};
};

enum class record_phase : uint8_t {
  queued,         ///< handed to the batcher, call not ended
  waiting_retry,  ///< a retry is scheduled
  done,           ///< the outcome is decided
};

struct attempt_state {
  record_phase phase = record_phase::queued;
  /// Attempts started; the current attempt's number (1-based).
  uint32_t attempt = 0;
  /// The record's deadline (`timeout.total`), or the max time point.
  policy_time deadline = policy_time::max();
  /// When the scheduled retry may go.
  policy_time retry_at{};
  /// The previous backoff (decorrelated jitter reads it).
  policy_duration last_backoff{0};
  /// The last error, for the failure message.
  call_error last_error;
};

enum class attempt_action : uint8_t {
  ignore,   ///< stale or after the outcome: nothing to do
  success,  ///< emit the record with the result
  retry,    ///< try again: caller picks the time (backoff, budget)
  fail,     ///< the record failed: take the failure action
};

/// Starts the record's life at `now` with the total timeout.
inline void admit_record(attempt_state& st, policy_time now, const timeout_config& t) {
  st = attempt_state{};
  if (t.total.count() > 0)
    st.deadline = now + t.total;
}

/// The record goes to the batcher: returns the attempt number.
inline uint32_t begin_attempt(attempt_state& st) {
  st.phase = record_phase::queued;
  return ++st.attempt;
}

/// A call for attempt `attempt` ended with `err` (ok() for success).
/// `max_attempts` bounds the attempts; a fatal-record error never retries.
inline attempt_action on_result(attempt_state& st, uint32_t max_attempts, uint32_t attempt,
                                const call_error& err, policy_time now) {
  if (st.phase == record_phase::done)
    return attempt_action::ignore;
  if (err.ok()) {
    st.phase = record_phase::done;
    return attempt_action::success;
  }
  if (attempt != st.attempt || st.phase != record_phase::queued)
    return attempt_action::ignore;
  st.last_error = err;
  if (err.cls == error_class::fatal_record || st.attempt >= max_attempts || now >= st.deadline) {
    st.phase = record_phase::done;
    return attempt_action::fail;
  }
  return attempt_action::retry;
}

/// After a `retry` decision: the retry goes at `when`. If that is at or past
/// the deadline the record fails instead (returns false): waiting would only
/// end in the total timeout.
inline bool schedule_retry(attempt_state& st, policy_time when, policy_duration backoff) {
  if (when >= st.deadline) {
    st.phase = record_phase::done;
    return false;
  }
  st.phase = record_phase::waiting_retry;
  st.retry_at = when;
  st.last_backoff = backoff;
  return true;
}

/// After a `retry` decision the caller cannot honour (retry budget).
inline void give_up(attempt_state& st) {
  st.phase = record_phase::done;
}

/// The retry timer set for attempt `attempt` fired at `now`; true: send the
/// record again (call begin_attempt).
inline bool on_retry_timer(attempt_state& st, uint32_t attempt, policy_time now) {
  return st.phase == record_phase::waiting_retry && attempt == st.attempt && now >= st.retry_at;
}

/// The record's deadline timer fired at `now`; true: the record failed
/// (timeout.total) and this is its outcome.
inline bool on_total_timeout(attempt_state& st, policy_time now) {
  if (st.phase == record_phase::done || now < st.deadline)
    return false;
  st.phase = record_phase::done;
  return true;
}

} // namespace sinfer
