#pragma once
/// What one simulated run produced: the summary figures and the time series
/// the report draws. Plain data, filled by the simulator (sim/simulator.hpp)
/// and read by the summary printers and the HTML report. No CAF here.
///
/// Times are seconds of virtual time since the job started; latencies are
/// milliseconds. Everything here is a pure function of the scenario, its
/// configs and the seed (no wall-clock figure), so two runs with the same
/// inputs produce byte-identical summaries and reports.

#include <cstdint>
#include <string>
#include <vector>

namespace sinfer {

/// One endpoint's figures at the end of one sample interval.
struct sim_endpoint_sample {
  /// Calls in flight at the sample instant, and the endpoint's concurrency
  /// limit (its slots) then.
  double in_flight = 0;
  double limit = 0;
  /// Requests waiting in the simulated server's queue, and executing, at
  /// the sample instant.
  double server_queue = 0;
  double server_running = 0;
  /// Calls started, and calls that failed as a whole, per second over the
  /// interval.
  double calls_per_s = 0;
  double failures_per_s = 0;
};

/// The job over one sample interval (t - interval, t].
struct sim_sample {
  /// End of the interval.
  double t = 0;
  /// Records read by the source, written to the output, dead-lettered, per
  /// second over the interval.
  double in_per_s = 0;
  double out_per_s = 0;
  double dead_per_s = 0;
  /// End-to-end latency (record due at the source to written) of the records
  /// written in the interval; 0 when none were written.
  double p50_ms = 0;
  double p99_ms = 0;
  double p999_ms = 0;
  /// Records inside the job at the sample instant.
  double in_flight = 0;
  /// Retries sent per second over the interval (all stages).
  double retries_per_s = 0;
  /// Mean records per call over the interval, one per stage (0: no call).
  std::vector<double> batch_mean;
  /// One per endpoint, in `sim_result::endpoints` order.
  std::vector<sim_endpoint_sample> endpoints;
};

/// A stretch of time during which a breaker was in one state.
struct sim_breaker_band {
  std::string endpoint;  ///< "model/endpoint"
  std::string scope;     ///< "job" or "subtask N"
  std::string state;     ///< "open", "half-open" (closed stretches are not listed)
  double from = 0, to = 0;
};

/// A breaker state change, as the summary lists it.
struct sim_transition {
  double at = 0;
  std::string endpoint, scope, from, to;
  uint64_t calls = 0, failures = 0;
};

/// A fault injected into a simulated server, as the report's timeline shows it.
struct sim_fault_span {
  std::string endpoint;  ///< "model/endpoint"
  std::string kind;      ///< "outage", "brownout", "rate-limit", "errors", "resets", "crash"
  std::string label;     ///< human-readable, e.g. "outage (hang)", "brownout x4"
  double from = 0, to = 0;
};

/// A named stretch of the run with its own figures.
struct sim_phase {
  std::string name;
  double from = 0, to = 0;
  uint64_t records_out = 0;
  uint64_t dead_lettered = 0;
  /// Records written per second over the phase.
  double goodput = 0;
  double p50_ms = 0, p99_ms = 0, p999_ms = 0;
};

/// One endpoint over the whole run.
struct sim_endpoint_total {
  std::string name;  ///< "model/endpoint"
  uint64_t calls = 0;
  uint64_t failures = 0;
  uint64_t timeouts = 0;
  uint64_t rate_limited = 0;
  /// Records scored by this endpoint's successful calls.
  uint64_t records_ok = 0;
  uint64_t max_in_flight = 0;
  /// The concurrency limit at the end.
  uint64_t final_limit = 0;
  /// prometheus probes: scrapes of the simulated server's metrics, failed
  /// ones (the server was down), and the largest queue a scrape read (-1:
  /// none read).
  uint64_t probe_scrapes = 0;
  uint64_t probe_failures = 0;
  double max_probe_queue = -1;
};

struct sim_result {
  /// The scenario's name, and which config of a comparison this run used
  /// ("" when the scenario compares nothing).
  std::string scenario;
  std::string label;
  uint64_t seed = 0;
  /// Virtual time the run took (the load profile, then the drain).
  double duration = 0;
  double sample_interval = 1;
  /// Why the job failed ("" when it drained and ended well).
  std::string failure;

  uint64_t records_in = 0;
  uint64_t records_out = 0;
  uint64_t dead_lettered = 0;
  /// Records read but neither written nor dead-lettered when the run ended,
  /// plus `unread`.
  uint64_t lost = 0;
  /// Records of the load the source never read (the run stopped first).
  uint64_t unread = 0;
  uint64_t calls = 0;
  /// Calls that scored no record (failed as a whole, timed out, or every row
  /// failed).
  uint64_t wasted_calls = 0;
  uint64_t retries = 0;
  uint64_t restarts = 0;
  /// Records written per second of the load profile's duration.
  double goodput = 0;
  double p50_ms = 0, p99_ms = 0, p999_ms = 0;

  /// Stage (model) names, and endpoint names ("model/endpoint"), in the
  /// order the samples list them.
  std::vector<std::string> stages;
  std::vector<std::string> endpoints;

  std::vector<sim_phase> phases;
  std::vector<sim_endpoint_total> endpoint_totals;
  std::vector<sim_transition> transitions;
  std::vector<sim_breaker_band> bands;
  std::vector<sim_fault_span> faults;
  std::vector<sim_sample> samples;
};

} // namespace sinfer
