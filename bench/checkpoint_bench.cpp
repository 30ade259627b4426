// checkpoint_bench: what checkpoints cost. The same job runs without
// checkpoints and with a checkpoint every second (exactly-once part files,
// operator snapshots, the call log), interleaved run by run so drift in the
// machine hits both alike; throughput = records / wall time of the whole
// run (start-up and the final checkpoint included).
//
// Workloads:
// - http: one http-json stage against the reference server of the goodput
//   bench (k=4 slots, a batch of b takes 5 ms + 0.2 ms x b, batches up to
//   64: a limit of 14,382 records/s), P=2, all records offered at once: the
//   call log records every result ("remote", the default).
// - http-fast: the same against a server that answers in 0.2 ms + 0.01 ms x
//   b with 8 slots, in this process: CPU-bound on 2 cores (client, server
//   and runtime share them), so every per-record cost of checkpointing
//   shows; the worst case for a remote model.
// - in-process: two in-process stages (keyword classifier, hash embedder),
//   P=2, as fast as the pipeline goes: the worst case for checkpoints (no
//   model time to hide them). The call log's default skips in-process
//   models; "in-process+log" logs them too ("all"), to show that cost.
//
//   bench/run checkpoint [--repeat R] [--records N] [--http-records N]
//                        [--slow-records N] [--interval 1s]
//                        [--only http|http-fast|in-process]
//
// Prints one RESULT line per workload: median records/s of each mode and
// the ratio checkpointed / plain (target >= 0.9).

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "bench/bench_support.hpp"
#include "runtime/config_loader.hpp"
#include "tests/test_util.hpp"

using namespace sinfer;

namespace {

struct workload {
  std::string name;
  std::function<job_config(const std::string& dir, bool checkpointed)> make;
  uint64_t records;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double run_once(const job_config& cfg, const model_registry& models, uint64_t records) {
  run_options opts;
  opts.threads = 2;
  opts.restore.fresh = cfg.checkpoint.enabled();
  opts.counters = std::make_shared<job_counters>(cfg.stages.size());
  auto t0 = std::chrono::steady_clock::now();
  auto report = run_job(cfg, models, opts);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!report.ok || report.records_out != records) {
    std::fprintf(stderr, "checkpoint_bench: run failed: %s (%llu out of %llu)\n", report.reason.c_str(),
                 static_cast<unsigned long long>(report.records_out), static_cast<unsigned long long>(records));
    std::exit(1);
  }
  if (cfg.checkpoint.enabled())
    std::fprintf(stderr, "  checkpoints %llu completed, %llu failed; calls logged %llu\n",
                 static_cast<unsigned long long>(opts.counters->checkpoints_completed.load()),
                 static_cast<unsigned long long>(opts.counters->checkpoints_failed.load()),
                 static_cast<unsigned long long>(opts.counters->calls_logged.load()));
  return static_cast<double>(records) / secs;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"checkpoint_bench: throughput with checkpoints every second vs none"};
  int repeat = 3;
  uint64_t records = 1000000, http_records = 300000, slow_records = 100000;
  std::string interval_text = "1s", only;
  app.add_option("--repeat", repeat, "Runs of each mode, interleaved (median reported)");
  app.add_option("--records", records, "Records of the in-process workload");
  app.add_option("--http-records", http_records, "Records of the http-fast workload");
  app.add_option("--slow-records", slow_records, "Records of the http workload (about 14k/s)");
  app.add_option("--interval", interval_text, "checkpoint.interval");
  app.add_option("--only", only, "a workload name (prefix): http, http-fast, in-process");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  std::chrono::nanoseconds interval{};
  if (!parse_duration(interval_text, interval)) {
    std::fprintf(stderr, "--interval: expected a duration such as 1s\n");
    return 2;
  }
  auto models = model_registry::with_builtins();
  test::temp_dir dir;

  reference_server server{bench::sim_server(4, 5, 0.2)}, fast{bench::sim_server(8, 0.2, 0.01)};
  std::string error;
  int port = server.start(error);
  int fast_port = port < 0 ? -1 : fast.start(error);
  if (port < 0 || fast_port < 0) {
    std::fprintf(stderr, "checkpoint_bench: reference server: %s\n", error.c_str());
    return 1;
  }
  auto checkpointing = [&](job_builder& b, const std::string& d, bool on, call_log_mode log) {
    if (!on) {
      b.sink_jsonl(d + "/plain-out.jsonl").dead_letter(d + "/plain-dead.jsonl");
      return;
    }
    checkpoint_config ck;
    ck.dir = d + "/state";
    ck.interval = std::chrono::duration_cast<std::chrono::milliseconds>(interval);
    ck.call_log = log;
    b.sink_jsonl(d + "/out").dead_letter(d + "/dead").checkpoint(ck);
  };
  const char* tmpl = R"({"id":"${i}","text":"${pick:great product|terrible service|it was ok|love it}"})";
  std::vector<workload> loads;
  auto http = [&](int at, uint32_t concurrency, uint64_t n) {
    return [&, at, concurrency, n](const std::string& d, bool on) {
      batch_config batch;
      batch.max_size = 64;
      job_builder b{"bench-http"};
      b.parallelism(2).source_generator(n, tmpl);
      b.model(bench::remote_model({"http://127.0.0.1:" + std::to_string(at)}, batch, concurrency)).stage("m");
      checkpointing(b, d, on, call_log_mode::remote);
      return b.build(models);
    };
  };
  loads.push_back({"http", http(port, 4, slow_records), slow_records});
  loads.push_back({"http-fast", http(fast_port, 8, http_records), http_records});
  auto in_process = [&](call_log_mode log) {
    return [&, log](const std::string& d, bool on) {
      job_builder b{"bench-in-process"};
      b.parallelism(2).source_generator(records, tmpl);
      b.model(model_spec{"sentiment", "keyword-classifier"}.input("text", "text").output("label", "sentiment").batch_max_size(64));
      b.model(model_spec{"embedding", "hash-embedder"}.input("text", "text").output("embedding", "embedding").batch_max_size(64));
      b.stage("sentiment").stage("embedding");
      checkpointing(b, d, on, log);
      return b.build(models);
    };
  };
  loads.push_back({"in-process", in_process(call_log_mode::remote), records});
  loads.push_back({"in-process+log", in_process(call_log_mode::all), records});

  std::printf("%-16s %14s %14s %8s   (records/s: median of %d; ratio = checkpointed / plain)\n", "workload",
              "plain", "checkpointed", "ratio", repeat);
  for (auto& w : loads) {
    if (!only.empty() && w.name.rfind(only, 0) != 0)
      continue;
    std::vector<double> plain, ck, ratios;
    for (int r = 0; r < repeat; ++r) {
      auto d = dir.path() + "/" + w.name + "-" + std::to_string(r);
      ::mkdir(d.c_str(), 0755);
      // Alternate which mode goes first, so neither always runs warm.
      for (int k = 0; k < 2; ++k) {
        bool on = (k + r) % 2 == 1;
        auto rate = run_once(w.make(d, on), models, w.records);
        (on ? ck : plain).push_back(rate);
        std::fprintf(stderr, "%s run %d %s: %.0f records/s\n", w.name.c_str(), r + 1, on ? "checkpointed" : "plain",
                     rate);
      }
      ratios.push_back(ck.back() / plain.back());
    }
    std::printf("%-16s %14.0f %14.0f %8.3f   (pairs: ", w.name.c_str(), median(plain), median(ck),
                median(ck) / median(plain));
    for (auto x : ratios)
      std::printf("%.3f ", x);
    std::printf(")\n");
    std::printf("RESULT checkpoint %s plain=%.0f checkpointed=%.0f ratio=%.3f\n", w.name.c_str(), median(plain),
                median(ck), median(ck) / median(plain));
    std::fflush(stdout);
  }
  server.stop();
  fast.stop();
  return 0;
}
