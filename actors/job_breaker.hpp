#pragma once
/// job_breaker: the circuit breaker of one endpoint for the whole job.
///
/// Scope: job (one per endpoint of each model, unless breaker.job.enabled is
/// false). Spawned by job_supervisor before the subtasks.
/// Receives: (subscribe, subtask breaker, subtask) from every subtask
///   breaker of the endpoint; (summary, s) with their call outcomes; (tick)
///   its own timer.
/// Sends: (jobstate, endpoint index, gate) to every subscriber on each
///   transition.
/// Decision (policies/circuit_breaker.hpp over the aggregate of all
/// subtasks): opens for the whole job when the job-wide window crosses its
/// threshold, so an outage costs the job about `minimum-calls` failed calls
/// rather than P times that. After the open period it turns half-open and
/// grants its `half-open-probes` (default 3) probes to that many subtasks,
/// one each, in turn, so recovery is probed by a few calls, not by every
/// subtask. All probes good: closed everywhere; one bad: open again, longer.

#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "messages/scoring.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

struct job_breaker_settings {
  /// "model/endpoint", for events and logs.
  std::string endpoint;
  /// The endpoint's index in its model.
  uint32_t index = 0;
  breaker_config config;
  std::shared_ptr<job_counters> counters;
  caf::actor_clock::time_point job_start;
};

job_breaker_actor spawn_job_breaker(caf::actor_system& sys, job_breaker_settings settings);

} // namespace sinfer
