#pragma once
/// subtask_breaker: the fast, local circuit breaker of one endpoint in one
/// subtask, and the subtask's link to that endpoint's job breaker.
///
/// Scope: subtask (one per endpoint of each model the subtask uses).
/// Spawned by job_supervisor before the subtask's operators.
/// Receives: (subscribe, batcher, endpoint index) from batchers; (outcome,
///   report) from batchers after every call; (jobstate, index, gate) from the
///   job breaker; (tick) its own timer.
/// Sends: (gate, index, gate) to its batchers whenever what they may do
///   changes (state is pushed, never asked for: no round trip per call);
///   (summary, ...) to the job breaker: at once for a failure or a probe,
///   else every 16 calls.
/// Decision (policies/circuit_breaker.hpp): while the job breaker is closed
/// (or there is none) the local breaker decides; once the job breaker is
/// open or half-open its decision is the gate, and its probe grants are the
/// only probes this subtask sends. When the job breaker closes, the local
/// breaker closes too (the job has seen the endpoint recover).

#include <chrono>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "messages/scoring.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

struct subtask_breaker_settings {
  /// "model/endpoint", for events.
  std::string endpoint;
  uint32_t subtask = 0;
  breaker_config local;
  /// The job tier's config (slow-call duration for summaries).
  breaker_config job;
  /// The job breaker, or an invalid handle for subtask-only breaking.
  job_breaker_actor job_breaker;
  std::shared_ptr<job_counters> counters;
  /// When the job started (event times are relative to it).
  caf::actor_clock::time_point job_start;
};

subtask_breaker_actor spawn_subtask_breaker(caf::actor_system& sys, subtask_breaker_settings settings);

} // namespace sinfer
