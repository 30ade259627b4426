#pragma once
/// When an endpoint may start its next call: pacing call starts so that
/// calls at partial load spread over the server's slots instead of bunching.
///
/// Why: slots granted the moment one frees (the batching rule in
/// policies/batching.hpp) synchronise at partial load. Every free slot takes
/// the next record alone, the slots fill with calls of one record that end
/// together, and the records that came meanwhile wait for the next free
/// slot in a larger batch. Spacing call starts by the time a call takes
/// over the calls the server runs at once keeps each slot busy with a call
/// of the records that came in one spacing. In a model of the goodput
/// bench's server (k = 4 slots, a batch of b takes 5 + 0.2 b ms, evenly
/// spaced arrivals at 10% of its batched limit; a discrete-event model of
/// this rule, without network or runtime overhead), p50 / p99 go
/// from 7.4 / 9.5 ms to 6.0 / 6.7 ms with the concurrency fixed at k; at
/// 50% from 14.0 / 20.1 to 9.6 / 10.8 ms; goodput is the same at every
/// load.
///
/// The rule: a slot wanted for one partial batch is granted no sooner than
///   last_start + latency / concurrency
/// where `latency` is the endpoint's smoothed call latency (fading while
/// idle, so a quiet endpoint is not held back by an old figure) and
/// `concurrency` the calls its server runs without queueing as the limiter
/// sees it (`concurrency_limiter::unqueued_concurrency`: the limit, or for
/// the gradient kind its Little's-law estimate of the server's
/// concurrency, policies/server_concurrency.hpp). A listener that
/// wants more than one slot has a full batch queued: it is never held
/// (`pacing_holds`), so pacing never costs goodput under load. Off with
/// `concurrency.pacing: false`.
/// Pure: no clock reads, no threads, no CAF.

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "policies/time.hpp"

namespace sinfer {

/// The earliest start of the next paced call after one started at
/// `last_start`, given the smoothed call `latency_ms` and the server's
/// unqueued `concurrency`. `last_start` itself when either is unknown (not
/// positive) or not a number: no pacing without a measurement.
inline policy_time paced_start(policy_time last_start, double latency_ms, double concurrency) noexcept {
  if (!(latency_ms > 0.0) || !(concurrency > 0.0))
    return last_start;
  double gap_ms = latency_ms / std::max(1.0, concurrency);
  // At most 1 s: a slow or stale figure must not stall an endpoint (a
  // model slower than that gains nothing from spacing its calls).
  gap_ms = std::min(gap_ms, 1000.0);
  return last_start + std::chrono::duration_cast<policy_duration>(std::chrono::duration<double, std::milli>(gap_ms));
}

/// Whether pacing holds a want of `wanted` slots at `now`, the next paced
/// start being `next_start`: only a want of a single slot (one partial
/// batch) before that time.
inline bool pacing_holds(uint32_t wanted, policy_time now, policy_time next_start) noexcept {
  return wanted == 1 && now < next_start;
}

} // namespace sinfer
