#pragma once
/// Running a job to completion: the entry point of `sinfer run` and of
/// programs built on the C++ API. No CAF header here (see
/// actors/job_supervisor.hpp to run a job inside your own actor system).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/in_process.hpp"
#include "messages/report.hpp"
#include "runtime/checkpointing.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

struct run_options {
  /// Log progress lines through spdlog every `progress_interval`.
  bool progress = false;
  std::chrono::milliseconds progress_interval{1000};
  /// Scheduler threads; 0 means one per core (CAF's own default is at
  /// least 4, which is slower on small machines).
  size_t threads = 0;
  /// Where the job's live figures go (made by run_job when empty); read it
  /// during or after the run.
  std::shared_ptr<job_counters> counters;
  /// checkpoint.dir set: which checkpoint to resume from (default: the
  /// latest completed one; `--fresh`, `--from-checkpoint ID`).
  restore_choice restore;
  /// metrics.port set: called with the port once /metrics serves.
  std::function<void(int port)> on_metrics;
};

/// What can only be checked on this machine, before anything starts: the
/// source file is readable, the output and dead-letter directories exist.
/// Returns errors naming the key path, empty when fine.
std::vector<std::string> preflight_job(const job_config& cfg);

/// Runs `cfg` on a fresh actor system; blocks until the job ends and returns
/// its report. An invalid config gives a failed report without starting.
job_report run_job(const job_config& cfg, const model_registry& models, run_options options = {});

} // namespace sinfer
