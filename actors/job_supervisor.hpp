#pragma once
/// job_supervisor: builds one job's actor topology, watches it, and reports
/// how it ended.
///
/// Scope: job (the root). Spawned by `run_job` or by a test. On (run) it
/// spawns, in order: one endpoint per model (with its load probe when
/// probe.type is prometheus), the sink, each subtask's stages (last first,
/// each wired to its downstream), and the source. It monitors every child:
/// a child that dies abnormally fails the job, except a crashed stage
/// (restarted under the job's restart strategy) and a load probe (a
/// warning, and a new probe one probe.interval later: its endpoint turns
/// suspect meanwhile, if the gap is long enough). It answers (run) with a
/// job_report when the sink reports (done) or anyone reports (fail), then
/// shuts the topology down. With `progress` it logs figures every interval.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "backends/http_protocol.hpp"
#include "backends/in_process.hpp"
#include "messages/flow.hpp"
#include "runtime/checkpointing.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

struct supervisor_options {
  /// Log progress (records in/out, rate, in-flight) every `progress_interval`.
  bool progress = false;
  std::chrono::milliseconds progress_interval{1000};
  /// Tests and the simulator: when set, each prometheus load probe scrapes with
  /// `scrape_for("model/endpoint")` instead of an HTTP GET, and runs on the
  /// scheduler instead of its own thread (the scrape must not block), so a
  /// job on virtual time can drive its probes' readings.
  std::function<std::function<http_answer()>(const std::string& endpoint)> scrape_for;
  /// The simulator (sim/simulator.hpp): when set, every endpoint's backend is
  /// `simulate("model/endpoint", model, index, real)` instead, where `real`
  /// is the in-process model's backend (for its output values) or nullptr for
  /// an HTTP provider (no connection is made). A nullptr answer keeps `real`.
  std::function<std::shared_ptr<inference_backend>(const std::string& endpoint, const model_config& model,
                                                   uint32_t index, std::shared_ptr<inference_backend> real)>
    simulate;
  /// Checkpoints (cfg.checkpoint.dir set): the opened store and restored
  /// state (runtime/checkpointing.hpp). When null the supervisor opens it
  /// itself, resuming from the latest checkpoint.
  std::shared_ptr<checkpoint_context> checkpoints;
};

supervisor_actor spawn_job_supervisor(caf::actor_system& sys, std::shared_ptr<const job_config> cfg,
                                      std::shared_ptr<const model_registry> models,
                                      supervisor_options options,
                                      std::shared_ptr<job_counters> counters);

} // namespace sinfer
