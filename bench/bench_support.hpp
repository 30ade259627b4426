#pragma once
// What the HTTP benchmarks share: reference servers with a service-time
// model, a one-stage http-json job against them, and measuring a running
// job over wall-clock windows (benchmarks measure real time; tests never do).

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/job_builder.hpp"
#include "runtime/job_runner.hpp"
#include "sim/reference_server.hpp"

namespace sinfer::bench {

/// A server of `slots` slots where a batch of b takes base + b * per_record.
inline reference_server_options sim_server(uint32_t slots, double base_ms, double per_record_ms) {
  reference_server_options so;
  so.slots = slots;
  so.base = std::chrono::microseconds{static_cast<int64_t>(base_ms * 1000)};
  so.per_record = std::chrono::microseconds{static_cast<int64_t>(per_record_ms * 1000)};
  so.model = "keyword-classifier";
  return so;
}

/// The records/s a server of `slots` slots sustains with batches of `b`.
inline double server_limit(uint32_t slots, double base_ms, double per_record_ms, uint32_t b) {
  return slots * b / (base_ms + per_record_ms * b) * 1000;
}

/// An http-json model "m" over `urls`, breakers that never open (these
/// benchmarks measure throughput, not failure handling).
inline model_spec remote_model(const std::vector<std::string>& urls, batch_config batch, uint32_t concurrency) {
  breaker_config never;
  never.minimum_calls = 1000000;
  auto spec = model_spec{"m", "remote"}
                .provider("http-json")
                .input("text", "text")
                .output("label", "label")
                .batch(batch)
                .concurrency(concurrency)
                .timeout(std::chrono::seconds{30}, std::chrono::seconds{600})
                .retry(3)
                .subtask_breaker(never)
                .job_breaker(never, false)
                .max_concurrent_operations(1024);
  for (size_t i = 0; i < urls.size(); ++i) {
    endpoint_config ep;
    ep.url = urls[i];
    ep.name = "ep" + std::to_string(i);
    spec.endpoint(ep);
  }
  return spec;
}

/// A job: a generator offering `rate` records/s (open loop) for far longer
/// than measured, into `spec`, output discarded.
inline job_config rate_job(const model_spec& spec, double rate, double seconds, const model_registry& models) {
  auto count = static_cast<uint64_t>(rate * seconds * 3) + 1000;
  return job_builder{"bench"}
    .parallelism(1)
    .source_generator(count, R"({"id":"${i}","text":"${pick:great product|terrible service|it was ok}"})", rate)
    .model(spec)
    .stage("m")
    .sink_jsonl("/dev/null")
    .dead_letter("/tmp/sinfer-bench-dead.jsonl")
    .build(models);
}

/// Figures of one measured window.
struct window {
  double seconds = 0;
  double records_per_s = 0;
  double p50_ms = 0, p99_ms = 0, mean_batch = 0;
  /// p50 of the backend calls (sending to answer, every endpoint): what the
  /// stage's p50 adds to it is batching wait and the runtime's own time.
  double call_p50_ms = 0;
  /// Records the source was behind its schedule at the window's end.
  uint64_t source_lag = 0;
  /// Per endpoint: calls in the window; the concurrency limit, calls in
  /// flight and the limiter's server-concurrency estimate at its end.
  std::vector<uint64_t> calls;
  std::vector<uint64_t> limit, in_flight;
  std::vector<double> server_concurrency;
};

/// Runs `cfg` (offering `rate` records/s) and measures `windows.size()`
/// consecutive windows of the given lengths after `warmup`; `between(i)`
/// runs before window i (e.g. to inject a fault). Then stops the source and
/// waits for the job to drain. `ok` false (with `error`) when the job
/// failed or dead-lettered records.
struct measurement {
  std::vector<window> windows;
  bool ok = false;
  std::string error;
};

inline measurement measure(const job_config& cfg, const model_registry& models, double rate, double warmup,
                           const std::vector<double>& windows, const std::function<void(size_t)>& between = {}) {
  using namespace std::chrono;
  measurement m;
  run_options opts;
  opts.threads = 2;
  opts.progress = std::getenv("SINFER_BENCH_PROGRESS") != nullptr;
  opts.counters = std::make_shared<job_counters>(cfg.stages.size());
  auto& c = *opts.counters;
  auto& stage = c.stages[0];
  job_report report;
  auto start = steady_clock::now();
  std::thread job{[&] { report = run_job(cfg, models, opts); }};
  auto t = start + duration_cast<steady_clock::duration>(duration<double>(warmup));
  std::this_thread::sleep_until(t);
  std::vector<std::string> names;
  for (auto& ep : cfg.models.at(cfg.stages[0]).endpoints)
    names.push_back(cfg.stages[0] + "/" + ep.name);
  auto endpoint_calls = [&] {
    std::vector<uint64_t> v;
    for (auto& n : names)
      v.push_back(c.endpoint(n)->calls.load());
    return v;
  };
  for (size_t i = 0; i < windows.size(); ++i) {
    if (between)
      between(i);
    auto out0 = c.records_out.load();
    auto calls0 = stage.calls.load();
    auto batched0 = stage.batched_records.load();
    auto ep0 = endpoint_calls();
    stage.latency.clear();
    for (auto& n : names)
      c.endpoint(n)->latency.clear();
    auto t0 = steady_clock::now();
    std::this_thread::sleep_until(t0 + duration_cast<steady_clock::duration>(duration<double>(windows[i])));
    auto t1 = steady_clock::now();
    window w;
    w.seconds = duration<double>(t1 - t0).count();
    w.records_per_s = static_cast<double>(c.records_out.load() - out0) / w.seconds;
    auto calls = stage.calls.load() - calls0;
    w.mean_batch = calls > 0 ? static_cast<double>(stage.batched_records.load() - batched0) / calls : 0;
    w.p50_ms = static_cast<double>(stage.latency.quantile(0.5).count()) / 1e6;
    w.p99_ms = static_cast<double>(stage.latency.quantile(0.99).count()) / 1e6;
    latency_histogram::snapshot call_counts{};
    for (auto& n : names) {
      auto one = c.endpoint(n)->latency.counts();
      for (size_t b = 0; b < one.size(); ++b)
        call_counts[b] += one[b];
    }
    w.call_p50_ms = static_cast<double>(latency_histogram::quantile_of(call_counts, 0.5).count()) / 1e6;
    auto due = static_cast<uint64_t>(rate * duration<double>(t1 - start).count());
    auto in = c.records_in.load();
    w.source_lag = due > in ? due - in : 0;
    auto ep1 = endpoint_calls();
    for (size_t k = 0; k < ep1.size(); ++k) {
      w.calls.push_back(ep1[k] - ep0[k]);
      w.limit.push_back(c.endpoint(names[k])->limit.load());
      w.in_flight.push_back(c.endpoint(names[k])->in_flight.load());
      w.server_concurrency.push_back(c.endpoint(names[k])->server_concurrency.load());
    }
    m.windows.push_back(w);
  }
  c.stop_requested = true;
  job.join();
  m.ok = report.ok && c.dead_lettered.load() == 0;
  if (!m.ok)
    m.error = report.ok ? std::to_string(c.dead_lettered.load()) + " records dead-lettered" : report.reason;
  return m;
}

} // namespace sinfer::bench
