// The `sinfer demo` pipeline, written with the C++ API instead of a config
// file: product reviews -> embeddings (KServe v2) -> sentiment (http-json,
// two endpoints) -> an LLM summary (OpenAI chat) for negative reviews only.
//
// It starts the four model servers itself (sinfer's reference servers, on
// loopback), makes one sentiment endpoint answer 503 for a while after a
// third of the records, prints what the runtime did about it as it happens
// (job breaker transitions) and ends with a summary.
//
//   review_demo [--dir DIR] [--records N] [--rate R] [--fault-seconds S]
//
// What to read here: job_builder / model_spec (the topology and its
// policies), run_options (live counters, the metrics port) and run_job.

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>

#include "runtime/job_builder.hpp"
#include "runtime/job_runner.hpp"
#include "runtime/job_summary.hpp"
#include "sim/reference_server.hpp"

using namespace std::chrono_literals;

namespace {

/// A reference server whose calls take `base + per_record * batch` on one of
/// `slots` slots: a small GPU model server, scaled down.
sinfer::reference_server_options server(std::string model, std::string served_name, uint32_t slots,
                                        std::chrono::microseconds base, std::chrono::microseconds per_record) {
  sinfer::reference_server_options o;
  o.model = std::move(model);
  o.served_name = std::move(served_name);
  o.slots = slots;
  o.base = base;
  o.per_record = per_record;
  return o;
}

sinfer::endpoint_config endpoint(std::string name, std::string url) {
  sinfer::endpoint_config ep;
  ep.name = std::move(name);
  ep.url = std::move(url);
  return ep;
}

struct demo_servers {
  std::string embed, gpu_a, gpu_b, llm;
};

/// The pipeline: what `sinfer demo` writes to demo-job.json, in code.
sinfer::job_config review_job(const demo_servers& urls, const std::string& dir, uint64_t records, double rate,
                              const sinfer::model_registry& models) {
  using namespace sinfer;
  const char* reviews = R"({"id":"${i}","user":"u${pick:1|2|3|4|5|6|7|8|9|10|11|12}",)"
                        R"("review":"${pick:great product, fast delivery|terrible service, never again|it was ok|)"
                        R"(love it, would recommend|broken on arrival, want a refund|nice but slow shipping|)"
                        R"(the worst purchase ever|excellent value and friendly support}"})";

  auto embed = model_spec{"embed", "hash-embedder"}
                 .provider("kserve-v2") // inputs, outputs and shapes come from the server's metadata
                 .endpoint(endpoint("triton", urls.embed))
                 .input("text", "review")
                 .output("embedding", "review_embedding")
                 .batch_max_size(32)
                 .concurrency(4)
                 .timeout(2s, 30s);

  breaker_config job_breaker; // job-wide: one endpoint's failures stop every subtask's calls
  job_breaker.failure_rate = 0.5;
  job_breaker.minimum_calls = 10;
  job_breaker.window_calls = 20;
  job_breaker.open_duration = 3s;
  job_breaker.open_growth = 1;
  job_breaker.half_open_probes = 3;
  backoff_config backoff;
  backoff.initial = 50ms;
  backoff.max = 1s;
  backoff.jitter = jitter_mode::full;
  retry_budget_config budget;
  budget.budget_percent = 50;
  auto sentiment = model_spec{"sentiment", "keyword-classifier"}
                     .provider("http-json")
                     .endpoint(endpoint("gpu-a", urls.gpu_a))
                     .endpoint(endpoint("gpu-b", urls.gpu_b))
                     .input("text", "review")
                     .output("label", "sentiment")
                     .output("score", "sentiment_score")
                     .routing(routing_strategy::load_aware)
                     .batch_max_size(32)
                     .concurrency(4)
                     .timeout(2s, 60s)
                     .retry(6, backoff)
                     .retry_budget(budget)
                     .job_breaker(job_breaker)
                     .on_failure(failure_action::dead_letter);

  auto summary = model_spec{"summary", "summarizer"}
                   .provider("openai")
                   .endpoint(endpoint("vllm", urls.llm))
                   .openai_chat("Summarise this complaint: ${review}", "Be brief.", 0.0, 16)
                   .output("content", "summary")
                   .concurrency(8)
                   .timeout(5s, 60s);

  metrics_config metrics;
  metrics.port = 0; // any free port: run_options::on_metrics says which
  metrics.event_log = dir + "/events.jsonl";

  return job_builder{"review-demo"}
    .parallelism(2)
    .output(output_mode::unordered)
    .source_generator(records, reviews, rate, 7)
    .model(embed)
    .model(sentiment)
    .model(summary)
    .stage("embed")
    .stage("sentiment")
    .stage("summary", when_equals("sentiment", "negative"))
    .sink_jsonl(dir + "/out.jsonl")
    .dead_letter(dir + "/dead.jsonl")
    .metrics(metrics)
    .build(models); // validated as a config file would be; throws invalid_job
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

} // namespace

int main(int argc, char** argv) {
  std::string dir = "build/review-demo";
  uint64_t records = 3000;
  double rate = 100;
  double fault_seconds = 9;
  CLI::App app{"The sinfer demo pipeline, built with the C++ API"};
  app.add_option("--dir", dir, "where the output, dead letters and event log go")->capture_default_str();
  app.add_option("--records", records, "generated reviews")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--rate", rate, "reviews per second")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--fault-seconds", fault_seconds, "how long gpu-a answers 503")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  for (auto* f : {"/out.jsonl", "/dead.jsonl", "/events.jsonl"})
    std::filesystem::remove(dir + f, ec);

  // The model servers (reference servers from sim/, on free loopback ports).
  sinfer::reference_server embedder{server("hash-embedder", "", 4, 3000us, 100us)};
  sinfer::reference_server gpu_a{server("keyword-classifier", "", 4, 20000us, 500us)};
  sinfer::reference_server gpu_b{server("keyword-classifier", "", 4, 20000us, 500us)};
  sinfer::reference_server llm{server("keyword-classifier", "summarizer", 8, 40000us, 0us)};
  std::string err;
  for (auto* s : {&embedder, &gpu_a, &gpu_b, &llm})
    if (s->start(err) < 0) {
      std::fprintf(stderr, "cannot start a reference server: %s\n", err.c_str());
      return 1;
    }

  auto models = sinfer::model_registry::with_builtins();
  sinfer::job_config cfg;
  try {
    cfg = review_job({embedder.url(), gpu_a.url(), gpu_b.url(), llm.url()}, dir, records, rate, models);
  } catch (const sinfer::invalid_job& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }

  // Live figures: the counters are shared with the running job.
  sinfer::run_options opts;
  opts.threads = 2;
  opts.counters = std::make_shared<sinfer::job_counters>(cfg.stages.size());
  opts.on_metrics = [](int port) {
    std::printf("metrics: http://127.0.0.1:%d/metrics (sinfer status --url http://127.0.0.1:%d)\n", port, port);
  };
  auto& c = *opts.counters;
  auto start = std::chrono::steady_clock::now();
  std::atomic<bool> done{false};
  sinfer::job_report report;
  std::thread job{[&] {
    report = sinfer::run_job(cfg, models, opts);
    done = true;
  }};

  // The fault: gpu-a's server answers 503 from a third of the records on.
  std::optional<std::chrono::steady_clock::time_point> fault_start;
  bool cleared = false;
  size_t events_seen = 0;
  while (!done) {
    if (!fault_start && c.records_in.load() >= records / 3) {
      fault_start = std::chrono::steady_clock::now();
      sinfer::fault_plan p;
      p.kind = sinfer::fault_plan::status;
      p.status_code = 503;
      gpu_a.inject(p);
      std::printf("[%5.1fs] FAULT: gpu-a answers 503 to every call\n", seconds_since(start));
    }
    if (fault_start && !cleared && seconds_since(*fault_start) >= fault_seconds) {
      cleared = true;
      gpu_a.inject(sinfer::fault_plan{});
      std::printf("[%5.1fs] fault cleared: gpu-a answers normally again\n", seconds_since(start));
    }
    auto events = c.breaker_events();
    for (; events_seen < events.size(); ++events_seen) {
      auto& e = events[events_seen];
      if (e.scope == "job")
        std::printf("[%5.1fs] job breaker %s: %s -> %s (%" PRIu64 " of %" PRIu64 " calls failed)\n",
                    seconds_since(start), e.endpoint.c_str(), e.from.c_str(), e.to.c_str(), e.failures, e.calls);
    }
    std::fflush(stdout);
    std::this_thread::sleep_for(50ms);
  }
  job.join();
  for (auto* s : {&embedder, &gpu_a, &gpu_b, &llm})
    s->stop();

  bool balanced = report.records_in == report.records_out + report.dead_lettered;
  double secs = static_cast<double>(report.elapsed_ns) / 1e9;
  std::printf("\nreview demo: %s in %.1f s\n", report.ok ? "finished" : ("FAILED: " + report.reason).c_str(), secs);
  std::printf("  records: %" PRIu64 " in, %" PRIu64 " out, %" PRIu64 " dead-lettered, %s lost\n", report.records_in,
              report.records_out, report.dead_lettered, balanced ? "none" : "SOME");
  std::printf("  end-to-end latency: p50 %.1f ms, p99 %.1f ms\n", c.end_to_end.quantile(0.5).count() / 1e6,
              c.end_to_end.quantile(0.99).count() / 1e6);
  for (auto& [key, ep] : c.endpoints())
    std::printf("  calls %-16s %" PRIu64 " (%" PRIu64 " failed)\n", key.c_str(), ep->calls.load(),
                ep->failures.load());
  for (auto& line : sinfer::resilience_summary(cfg, c))
    std::printf("  %s\n", line.c_str());
  std::printf("  output: %s/out.jsonl, event log: %s/events.jsonl\n", dir.c_str(), dir.c_str());
  return report.ok && balanced ? 0 : 1;
}
