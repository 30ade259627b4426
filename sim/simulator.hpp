#pragma once
/// The simulator behind `sinfer sim`: runs a scenario's job with the real
/// actors (job_supervisor and everything under it, unchanged) on virtual time
/// (sim/virtual_time.hpp), each endpoint's backend replaced by a simulated
/// server (sim/sim_server.hpp) and each prometheus probe scraping that
/// server. No sleep and no wall clock: time jumps to the next event, so a
/// scenario of hours runs in seconds, and the same seed gives the same run.
///
/// While it runs it samples the job's counters at every `sample-interval` of
/// virtual time (just before time passes the boundary) for the report, and
/// adds each interval's end-to-end latencies to the phase it falls in.
/// No CAF in this header.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backends/in_process.hpp"
#include "sim/scenario.hpp"
#include "sim/sim_result.hpp"

namespace sinfer {

struct sim_run_options {
  /// Replaces the scenario's seed (load template, retry jitter, routing,
  /// server jitter and fault draws all derive from it).
  uint64_t seed = 1;
  /// Called now and then with the virtual time reached and the load's
  /// length (seconds), for progress output; may be empty.
  std::function<void(double reached, double load_length)> progress;
};

/// Runs variant `variant` of the scenario to its end: the load profile, then
/// the drain (at most `drain-limit`).
sim_result run_simulation(const scenario_config& scenario, size_t variant, const model_registry& models,
                          const sim_run_options& options);

/// The summary as text (one block per run, labelled in a comparison).
std::string format_sim_summary(const std::vector<sim_result>& runs);

/// The summary as one JSON object: {"scenario", "seed", "runs": [...]}.
std::string sim_summary_json(const std::vector<sim_result>& runs);

} // namespace sinfer
