#include "runtime/job_summary.hpp"

#include <cstdio>
#include <map>

namespace sinfer {

std::vector<std::string> resilience_summary(const job_config& cfg, const job_counters& counters) {
  std::vector<std::string> lines;
  char buf[512];
  for (size_t i = 0; i < cfg.stages.size() && i < counters.stage_count; ++i) {
    auto& sc = counters.stages[i];
    auto calls = sc.calls.load();
    double avg = calls == 0 ? 0.0 : static_cast<double>(sc.batched_records.load()) / static_cast<double>(calls);
    std::snprintf(buf, sizeof buf,
                  "stage %zu \"%s\": %llu calls, %.1f records per call (max %llu), %llu retries, "
                  "%llu waits for the retry budget, %llu total timeouts, %llu failed records "
                  "(%llu fell back, %llu defaulted)",
                  i + 1, cfg.stages[i].c_str(), static_cast<unsigned long long>(calls), avg,
                  static_cast<unsigned long long>(sc.max_batch.load()),
                  static_cast<unsigned long long>(sc.retries.load()),
                  static_cast<unsigned long long>(sc.budget_refusals.load()),
                  static_cast<unsigned long long>(sc.total_timeouts.load()),
                  static_cast<unsigned long long>(sc.failed.load()),
                  static_cast<unsigned long long>(sc.fell_back.load()),
                  static_cast<unsigned long long>(sc.defaulted.load()));
    lines.emplace_back(buf);
  }
  // Breakers: openings per endpoint and scope, with the first time.
  struct tally {
    uint64_t job_opened = 0, subtask_opened = 0, closed = 0;
    double first_open_s = -1;
  };
  std::map<std::string, tally> by_endpoint;
  for (auto& e : counters.breaker_events()) {
    auto& t = by_endpoint[e.endpoint];
    if (e.to == "open") {
      (e.scope == "job" ? t.job_opened : t.subtask_opened) += 1;
      if (t.first_open_s < 0)
        t.first_open_s = static_cast<double>(e.at.count()) / 1e9;
    } else if (e.to == "closed" && e.scope == "job") {
      ++t.closed;
    }
  }
  for (auto& kv : by_endpoint) {
    auto& t = kv.second;
    if (t.job_opened + t.subtask_opened == 0)
      continue;
    std::snprintf(buf, sizeof buf,
                  "breaker %s: opened %llu time(s) job-wide, %llu time(s) in single subtasks, first at %.2f s; "
                  "closed job-wide %llu time(s)",
                  kv.first.c_str(), static_cast<unsigned long long>(t.job_opened),
                  static_cast<unsigned long long>(t.subtask_opened), t.first_open_s,
                  static_cast<unsigned long long>(t.closed));
    lines.emplace_back(buf);
  }
  for (auto& kv : counters.endpoints()) {
    auto& c = *kv.second;
    std::snprintf(buf, sizeof buf, "endpoint %s: %llu calls, %llu failed (%llu attempt timeouts, %llu rate-limited)",
                  kv.first.c_str(), static_cast<unsigned long long>(c.calls.load()),
                  static_cast<unsigned long long>(c.failures.load()),
                  static_cast<unsigned long long>(c.timeouts.load()),
                  static_cast<unsigned long long>(c.rate_limited.load()));
    lines.emplace_back(buf);
  }
  if (auto r = counters.restarts.load(); r > 0)
    lines.push_back("subtask restarts: " + std::to_string(r));
  if (cfg.checkpoint.enabled()) {
    auto line = "checkpoints: " + std::to_string(counters.checkpoints_completed.load()) + " completed";
    if (auto f = counters.checkpoints_failed.load(); f > 0)
      line += ", " + std::to_string(f) + " failed";
    if (auto n = counters.checkpoint_duration.count(); n > 0)
      line += " (p50 " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        counters.checkpoint_duration.quantile(0.5)).count())
              + " ms)";
    if (auto r = counters.restored_from.load(); r > 0)
      line += "; resumed from checkpoint " + std::to_string(r);
    if (auto c = counters.calls_replayed.load(); c > 0)
      line += "; " + std::to_string(c) + " records answered from the call log";
    line += "; output parts in " + cfg.sink.path;
    lines.push_back(line);
  }
  return lines;
}

} // namespace sinfer
