#pragma once
/// A job's figures in the Prometheus text exposition format (version 0.0.4),
/// what `metrics.port` serves at /metrics: counters end in _total, units are
/// in the names (seconds), latencies are histograms with fixed buckets.
/// Pure: reads the job's counters (atomics), no CAF, no clock.
///
/// Families (all prefixed sinfer_): the job's records in/out/dead-lettered,
/// in flight, restarts, checkpoints and their duration, calls answered from
/// the call log, end-to-end latency; per stage {stage, model}: records out,
/// calls, batches by close reason, batched records, retries, budget
/// refusals, failed/defaulted/fallback records, latency; per endpoint {model,
/// endpoint}: calls, failures, attempt timeouts, rate-limited answers,
/// records scored, LLM tokens, concurrency limit, calls in flight, call
/// latency, the load probe's queue depth and scrapes; per breaker {model,
/// endpoint, scope}: its state (one series per state, 1 for the current
/// one) and transitions by target state.
/// Histogram sums are approximate: each latency counts as its bucket's
/// midpoint in sinfer's log-linear histogram (under 4.5% off).

#include <string>

#include "policies/prometheus_text.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

std::string prometheus_text(const job_config& cfg, const job_counters& counters);

/// The job at a glance, as JSON (what /status serves and `sinfer status`
/// prints): {"job", "ready", "records": {in, out, dead_lettered, in_flight},
/// "restarts", "checkpoints": {completed, failed, restored_from},
/// "stages": [{stage, model, records_out, calls, retries, failed}],
/// "endpoints": [{model, endpoint, limit, in_flight, calls, failures,
/// rate_limited, latency_ms, probe_queue_depth (null: unknown), suspect,
/// breaker (the job breaker's state), subtask_breakers_open}]}.
std::string status_json(const job_config& cfg, const job_counters& counters, bool ready);

} // namespace sinfer
