#pragma once
// Runs a whole job on virtual time (CAF's test coordinator): shared by the
// test files that drive jobs end to end.

#include <functional>
#include <memory>
#include <optional>

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include "actors/job_supervisor.hpp"
#include "sim/virtual_time.hpp"

namespace sinfer::test {

struct virtual_run {
  job_report report;
  std::shared_ptr<job_counters> counters;
  /// Virtual time from start to the job's end.
  std::chrono::nanoseconds elapsed{0};
};

/// Runs `cfg` on virtual time to the end; `observe` sees the counters and
/// the virtual time elapsed after every message; `options` go to the job
/// supervisor (e.g. scripted load-probe scrapes).
inline virtual_run run_virtual(
  const job_config& cfg, const model_registry& models,
  std::function<void(const job_counters&, std::chrono::nanoseconds)> observe = {},
  supervisor_options options = {}) {
  virtual_time_system vt;
  virtual_run result;
  result.counters = std::make_shared<job_counters>(cfg.stages.size());
  auto sup = spawn_job_supervisor(vt.system(), std::make_shared<const job_config>(cfg),
                                  std::make_shared<const model_registry>(models), std::move(options),
                                  result.counters);
  auto report = std::make_shared<std::optional<job_report>>();
  vt.system().spawn([sup, report](caf::event_based_actor* self) {
    self->request(sup, caf::infinite, run_atom::value).then([report](job_report& r) { *report = r; });
  });
  auto counters = result.counters;
  vt.run([&] {
    if (observe)
      observe(*counters, vt.elapsed());
  });
  if (!report->has_value()) {
    // Stalled: nothing left to do, no report. Say where records are, then
    // end the job so the actor system can shut down (else it waits forever).
    std::string where = "records in " + std::to_string(counters->records_in.load()) + ", out "
                        + std::to_string(counters->records_out.load()) + ", dead-lettered "
                        + std::to_string(counters->dead_lettered.load());
    for (size_t i = 0; i < counters->stage_count; ++i)
      where += "; stage " + std::to_string(i + 1) + " left " + std::to_string(counters->stages[i].left.load())
               + ", calls " + std::to_string(counters->stages[i].calls.load());
    for (auto& kv : counters->endpoints())
      where += "; " + kv.first + " calls " + std::to_string(kv.second->calls.load()) + " in flight "
               + std::to_string(kv.second->in_flight.load());
    caf::anon_send(sup, fail_atom::value, std::string{"stalled"});
    vt.run();
    FAIL("the job stalled on virtual time at " << vt.elapsed().count() / 1000000 << " ms: " << where);
  }
  result.report = **report;
  result.elapsed = std::chrono::nanoseconds{result.report.elapsed_ns};
  return result;
}

} // namespace sinfer::test
