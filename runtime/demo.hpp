#pragma once
/// `sinfer demo`: a multi-model pipeline against reference servers on
/// loopback, with a fault injected mid-run, narrated as it happens.
///
/// It starts four reference servers (sim/reference_server.hpp) on free
/// ports: a KServe v2 hash embedder, two http-json keyword classifiers (the
/// endpoints "gpu-a" and "gpu-b" of one model "sentiment") and an
/// OpenAI-compatible chat server ("summarizer"). It writes the job config it
/// runs to DIR/demo-job.json: generated product reviews, paced, pass through
/// embed (kserve-v2) -> sentiment (http-json, load-aware routing, retries,
/// job breaker) -> summary (openai chat, only when sentiment is "negative").
/// After a third of the records, gpu-a's server answers 503 to every call
/// for a while, then recovers. Narration lines (stdout, prefixed with the
/// elapsed seconds) follow the job's live counters: the fault, the job
/// breaker opening, traffic moving to gpu-b, half-open probes, recovery. A
/// final table follows. No CAF header here.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "messages/report.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

struct demo_options {
  /// Where the config, output, dead letters and event log go (made if
  /// missing; earlier demo files there are replaced).
  std::string dir = "build/demo";
  /// Generated reviews and their pace (records/s): 3000 at 100/s is ~30 s.
  uint64_t records = 3000;
  double rate = 100.0;
  /// How long gpu-a's server answers 503; 0: 30% of the paced run, at most
  /// 9 s.
  std::chrono::milliseconds fault_for{0};
  /// The job breaker's open period (short, so recovery shows).
  std::chrono::milliseconds open_duration{3000};
  /// No narration; the final table only.
  bool quiet = false;
};

/// What a demo run did (for tests; `run_demo` prints it).
struct demo_result {
  /// 0 when the job ended ok and in == out + dead-lettered, else 1.
  int exit_code = 1;
  /// Why it could not run or failed (empty when fine).
  std::string error;
  job_report report;
  std::shared_ptr<job_counters> counters;
  std::string config_path, output_path, dead_letter_path, event_log_path;
  /// "sentiment/gpu-a" (the one that fails) and "sentiment/gpu-b".
  std::string failing_endpoint, healthy_endpoint;
  /// Whether the fault was injected (and cleared).
  bool fault_injected = false;
  /// Calls each classifier endpoint made from the fault's start to the end.
  uint64_t failing_calls_after_fault = 0, healthy_calls_after_fault = 0;
  /// The job's /metrics page, scraped while it ran, when the failing
  /// endpoint's breaker closed again (empty if the job ended first).
  std::string metrics_after_recovery;
};

/// Runs the demo; narration and the final table go to stdout.
demo_result run_demo_detailed(const demo_options& options);

/// Runs the demo; returns its exit code.
int run_demo(const demo_options& options);

} // namespace sinfer
