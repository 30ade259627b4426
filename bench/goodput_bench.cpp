// goodput_bench: what batching and concurrency control buy against a model
// server, over open-loop load from 10% to 200% of the server's limit.
//
// The server is sim/reference_server on loopback (real sockets, real time):
// k slots, a batch of b records takes a + c*b ms; its limit is
// k * bmax / (a + c * bmax) records/s (k=4, a=5 ms, c=0.2 ms, bmax=64:
// 14,382 records/s). Each load point runs a fresh server and a fresh job of
// one http-json stage whose generator source offers `load x limit` records/s
// (open loop: the source's schedule does not wait for the job; what the job
// cannot take waits at the source, as it would in Kafka, and shows as lag).
// Measured over a window after a warm-up: goodput (records out per second)
// / limit, and the stage's latency p50/p99 (record in to record out of the
// model stage). Then the source is told to stop, the job drains and ends.
//
// Configurations, all in the same run:
// - adaptive:   sinfer's batching (a batch goes when a slot frees, up to
//               bmax) with the gradient concurrency limiter (1..16).
// - slot-free-k: sinfer's batching with the concurrency fixed at k (what
//               the limiter would find if it knew k).
// - adaptive-unpaced, slot-free-k-unpaced: the same with
//               concurrency.pacing off (every free slot taken at once).
// - async-io:   no batching, fixed concurrency 16: what Flink's Async I/O
//               operator does (one request per record, capacity-bounded;
//               no pacing, as Async I/O has none).
// - fixed-wait: batches of up to bmax that wait up to 10 ms to fill (Ray
//               Serve's batch_wait_timeout_s), fixed concurrency k, no
//               pacing.
//
//   bench/run goodput [--seconds D] [--warmup W] [--loads 0.1,0.5,...]
//                     [--only CONFIG]
//
// Prints a table and one RESULT line per configuration and load.

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "bench/bench_support.hpp"

using namespace sinfer;
using namespace sinfer::bench;

namespace {

struct variant {
  std::string name;
  batch_config batch;
  uint32_t concurrency;
  limiter_kind limiter;
  /// concurrency.pacing (policies/call_pacing.hpp).
  bool pacing;
};

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"goodput_bench: sinfer's batching vs no batching vs fixed-wait batching against a model server"};
  double seconds = 4, warmup = 1.5;
  std::string loads_text = "0.1,0.5,0.9,1.1,2.0";
  std::string only;
  uint32_t slots = 4, max_batch = 64;
  double base_ms = 5, per_record_ms = 0.2;
  app.add_option("--seconds", seconds, "measured window per point");
  app.add_option("--warmup", warmup, "warm-up before the window");
  app.add_option("--loads", loads_text, "offered loads as fractions of the server's limit");
  app.add_option("--only", only, "run one configuration");
  app.add_option("--slots", slots, "server slots k");
  app.add_option("--base-ms", base_ms, "server time per batch a");
  app.add_option("--per-record-ms", per_record_ms, "server time per record c");
  app.add_option("--max-batch", max_batch, "largest batch bmax");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(std::getenv("SINFER_BENCH_PROGRESS") != nullptr ? spdlog::level::info : spdlog::level::warn);
  std::vector<double> loads;
  std::stringstream ss{loads_text};
  for (std::string item; std::getline(ss, item, ',');)
    loads.push_back(std::stod(item));
  double limit = server_limit(slots, base_ms, per_record_ms, max_batch);
  std::vector<variant> variants = {
    {"adaptive", {max_batch, std::chrono::nanoseconds{0}, 0}, 16, limiter_kind::gradient, true},
    {"adaptive-unpaced", {max_batch, std::chrono::nanoseconds{0}, 0}, 16, limiter_kind::gradient, false},
    {"slot-free-k", {max_batch, std::chrono::nanoseconds{0}, 0}, slots, limiter_kind::fixed, true},
    {"slot-free-k-unpaced", {max_batch, std::chrono::nanoseconds{0}, 0}, slots, limiter_kind::fixed, false},
    {"async-io", {1, std::chrono::nanoseconds{0}, 0}, 16, limiter_kind::fixed, false},
    {"fixed-wait", {max_batch, std::chrono::milliseconds{10}, 0}, slots, limiter_kind::fixed, false},
  };
  std::printf("server: k=%u a=%.1f ms c=%.2f ms bmax=%u -> limit %.0f records/s; a+c = %.2f ms\n", slots, base_ms,
              per_record_ms, max_batch, limit, base_ms + per_record_ms);
  std::printf("%-19s %7s %9s %8s %8s %9s %7s %9s\n", "config", "offered", "goodput", "p50 ms", "p99 ms",
              "call p50", "batch", "src lag");
  int failures = 0;
  auto models = model_registry::with_builtins();
  for (auto& v : variants) {
    if (!only.empty() && only != v.name)
      continue;
    for (auto load : loads) {
      reference_server server{sim_server(slots, base_ms, per_record_ms)};
      std::string err;
      if (server.start(err) < 0) {
        std::fprintf(stderr, "goodput_bench: %s\n", err.c_str());
        return 1;
      }
      auto spec = remote_model({server.url()}, v.batch, v.concurrency);
      if (v.limiter != limiter_kind::fixed)
        spec.limiter(v.limiter, 1, slots);
      spec.pacing(v.pacing);
      auto rate = load * limit;
      auto m = measure(rate_job(spec, rate, seconds + warmup, models), models, rate, warmup, {seconds});
      auto& w = m.windows.at(0);
      std::printf("%-19s %6.0f%% %8.3f %8.2f %8.2f %9.2f %7.1f %9llu%s%s\n", v.name.c_str(), load * 100,
                  w.records_per_s / limit, w.p50_ms, w.p99_ms, w.call_p50_ms, w.mean_batch,
                  static_cast<unsigned long long>(w.source_lag), m.ok ? "" : "  FAILED: ", m.error.c_str());
      std::printf("RESULT config=%s offered=%.2f goodput_over_limit=%.3f p50_ms=%.2f p99_ms=%.2f call_p50_ms=%.2f "
                  "mean_batch=%.1f source_lag=%llu ok=%d\n",
                  v.name.c_str(), load, w.records_per_s / limit, w.p50_ms, w.p99_ms, w.call_p50_ms, w.mean_batch,
                  static_cast<unsigned long long>(w.source_lag), m.ok ? 1 : 0);
      std::fflush(stdout);
      failures += m.ok ? 0 : 1;
    }
  }
  return failures == 0 ? 0 : 1;
}
