#pragma once
/// batcher: forms the batches of one model in one subtask's stage and sends
/// each to an endpoint that granted a slot.
///
/// Scope: subtask (one per model stage, and one per fallback model of the
/// stage). Spawned by job_supervisor with its inference operator.
/// Receives: (work, items) from its operator; (slot, endpoint, n, load)
///   from endpoints; (gate, endpoint, gate) from its subtask breakers; (flush)
///   at end of input; (tick) its own linger timer.
/// Sends: (want, self, endpoint, n) and (release, n) to endpoints, (infer,
///   batch) requests on granted slots; (outcome, report) for every call to
///   the endpoint's subtask breaker; (scored, results) to its operator.
/// The decision when a batch closes is policies/batching.hpp; which endpoint
/// may be called is the gate its breaker pushed (closed, or half-open with
/// probes left). Which endpoint gets a batch is `routing.strategy`
/// (policies/routing.hpp): load-aware asks every allowed endpoint for slots
/// and picks, by power of two choices, where a batch would be answered
/// sooner, from each endpoint's job-wide load as its slot messages report
/// it (calls in flight, the load probe's queue depth, latency with and
/// without queueing, its server's slots, failure share, the last left out
/// while the endpoint's breaker is about to rule on its failures). With
/// the gradient limiter a batch may wait for a slot at the endpoint it
/// prefers (an answer one message away, or a call there ending: endpoints
/// tell batchers holding unused slots their load whenever a call ends)
/// rather than queue at a slower server, but not while a free slot
/// elsewhere would run it at once; a
/// slow, loaded or suspect endpoint thus gets fewer batches, yet still
/// takes them while the others are full. Round-robin, weighted
/// and primary-backup pin the next batch to the endpoint the router names
/// and wait for a slot there. A retry avoids the endpoint
/// that failed it when another one can take it. Items past their deadline
/// are dropped unsent (the operator's total timeout answers for them).
/// Each batch carries the Idempotency-Key of its items' call keys
/// (`idempotency_key_of`, messages/call.hpp), so a retry of the same records
/// in the same order carries the same key.

#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "messages/scoring.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

struct batcher_settings {
  /// "stage 1 \"sentiment\"", for messages.
  std::string label;
  uint32_t stage = 0;
  std::shared_ptr<const model_config> model;
  /// The model's endpoints, and this subtask's breaker of each (same order).
  std::vector<scheduled_endpoint> endpoints;
  std::vector<subtask_breaker_actor> breakers;
  scored_listener owner;
  /// Seeds the load-aware router's random pairs (differs per subtask).
  uint64_t routing_seed = 1;
  std::shared_ptr<job_counters> counters;
};

batcher_actor spawn_batcher(caf::actor_system& sys, batcher_settings settings);

} // namespace sinfer
