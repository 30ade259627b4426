#pragma once
/// endpoint: one backend endpoint of a model, job-wide. Owns an
/// `inference_backend`, grants call slots up to its concurrency limit, and
/// answers each (infer, batch) request with exactly one call_result.
///
/// Scope: job (one per endpoint of each model). Spawned by job_supervisor
/// before the subtasks.
/// Receives: (want, listener, index, n) from batchers: grants each wanted
///   slot with (slot, index, k, load) as slots free, first asked first
///   served; (release, n) for granted slots a batcher did not use; (infer,
///   batch) on a granted slot; (scrape, outcome) from its load probe.
/// Sends: (slot, ...) to batchers; the call_result reply.
/// Load (policies/load_probe.hpp, `probe.type`): every slot message carries
/// an `endpoint_load` (slots busy, calls in flight, limit, queue depth,
/// smoothed latency of successful calls, recent failure share, paused, the
/// server's slots and latency without queueing as its limiter knows them)
/// for the batchers' load-aware router. With `load_reports` a want that
/// cannot be granted at once is answered at once with (slot, index, 0,
/// load): every want gets an answer in one message, so a batcher may wait
/// for the answer of the endpoint its router prefers; and with the gradient
/// limiter (where batchers may hold a slot here while waiting for a faster
/// endpoint) when a call ends
/// each batcher holding slots here unused gets (slot, index, 0, load), so
/// its view does not stay at its grant's load. The queue depth is
/// `routing_queue_depth` of:
/// - in-band: an `in_band_probe` fed with this endpoint's successful calls'
///   latencies, read at each slot message with the calls in flight;
/// - prometheus: a `prometheus_probe` fed with the (scrape, outcome)
///   messages of its `load_probe` actor (actors/load_probe.hpp). Answered
///   scrapes whose reading knows a queue depth feed `limiter.on_probe`;
///   failed ones only count towards suspicion (a suspect endpoint keeps
///   serving; the router sees it loaded). A (stale) timer re-evaluates the
///   suspicion at `stale_at` when no scrape answers;
/// - none: 0.
/// Timeouts and Retry-After are enforced here, where the calls are:
/// - a call that has not answered after `timeout.attempt` is answered with a
///   retryable "attempt timeout" error and its slot is freed; a late answer
///   is dropped;
/// - a rate-limited answer with Retry-After R stops all grants for R, so no
///   request goes to the server before R has passed, whichever subtask asks.
/// Service time: an in-process backend completes inside `infer`; with
/// `latency + rows * latency_per_record` > 0 the answer is held that long on
/// the actor clock (a simulated accelerator, in virtual time too), plus the
/// result's own `delay` (sim/sim_backend.hpp answers at once with the time its
/// simulated server takes). A backend that completes later, on another
/// thread, posts (deliver, id, result); one that never completes (a hung
/// server) is answered by timeout.attempt.

#include <chrono>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "backends/inference_backend.hpp"
#include "policies/concurrency_limiter.hpp"
#include "policies/load_probe.hpp"
#include "messages/scoring.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

struct endpoint_settings {
  /// The job's event log (metrics.event-log), or null.
  std::shared_ptr<event_log> events;
  /// "model/endpoint", for messages.
  std::string name;
  std::shared_ptr<inference_backend> backend;
  /// Calls in flight at once (slots): the most, and how the limit adapts
  /// below it (policies/concurrency_limiter.hpp; `fixed` keeps the most).
  uint32_t concurrency = 16;
  limiter_config limiter{limiter_kind::fixed};
  /// Space call starts for single partial batches (policies/call_pacing.hpp);
  /// the job supervisor turns it off when `load_reports` is on.
  bool pacing = true;
  std::chrono::nanoseconds latency{0};
  std::chrono::nanoseconds latency_per_record{0};
  /// timeout.attempt.
  std::chrono::nanoseconds attempt_timeout = std::chrono::seconds{30};
  /// How the endpoint reads its server's load (`probe.type`); for
  /// prometheus, the names it reads and when it turns suspect. Its
  /// `load_probe` actor is spawned by whoever spawns the endpoint.
  probe_kind probe = probe_kind::in_band;
  probe_metric_names probe_metrics;
  probe_health_config probe_health;
  /// Answer a want that must queue at once with a 0-slot load report (set
  /// when batchers choose between several endpoints by load).
  bool load_reports = false;
  /// Send the load to batchers holding unused slots here whenever a call
  /// ends (they may be waiting for a faster endpoint):
  /// model_config::routes_by_finish_time.
  bool tells_holders = false;
  std::shared_ptr<endpoint_counters> counters;
};

scheduled_endpoint spawn_endpoint(caf::actor_system& sys, endpoint_settings settings);

} // namespace sinfer
