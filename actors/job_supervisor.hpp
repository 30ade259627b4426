#pragma once
/// job_supervisor: builds one job's actor topology, watches it, and reports
/// how it ended.
///
/// Scope: job (the root). Spawned by `run_job` or by a test. On (run) it
/// spawns, in order: one endpoint per model, the sink, each subtask's stages
/// (last first, each wired to its downstream), and the source. It monitors
/// every child: a child that dies abnormally fails the job (restart
/// strategies arrive with checkpoints). It answers (run) with a job_report
/// when the sink reports (done) or anyone reports (fail), then shuts the
/// topology down. With `progress` it logs figures every interval.

#include <chrono>
#include <memory>

#include <caf/fwd.hpp>

#include "backends/in_process.hpp"
#include "messages/flow.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

struct supervisor_options {
  /// Log progress (records in/out, rate, in-flight) every `progress_interval`.
  bool progress = false;
  std::chrono::milliseconds progress_interval{1000};
};

supervisor_actor spawn_job_supervisor(caf::actor_system& sys, std::shared_ptr<const job_config> cfg,
                                      std::shared_ptr<const model_registry> models,
                                      supervisor_options options,
                                      std::shared_ptr<job_counters> counters);

} // namespace sinfer
