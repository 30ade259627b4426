// goodput_bench: what batching and concurrency control buy against a model
// server, over open-loop load from 5% to 200% of the server's limit.
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
// First, the floor in the same run: a plain blocking HTTP client's p50 call
// (one at a time, no runtime) with 1 and with 2 records. Then a table and
// one RESULT line per configuration and load; "call p50" is the backend
// calls' p50 inside the job, so p50 - call p50 is what batching waits and
// the runtime's own hand-offs add.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <httplib.h>
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

/// The p50 round trip of `calls` calls of `rows` records each from a plain
/// blocking HTTP client (no runtime) to a fresh `server`, one every
/// `gap_ms`: the floor any client of this server meets on this machine.
double plain_call_p50_ms(const reference_server_options& options, uint32_t rows, int calls, double gap_ms) {
  using namespace std::chrono;
  reference_server server{options};
  std::string err;
  auto port = server.start(err);
  if (port < 0)
    return 0;
  httplib::Client client{"127.0.0.1", port};
  client.set_keep_alive(true);
  client.set_tcp_nodelay(true);
  std::string body = R"({"inputs":[)";
  for (uint32_t i = 0; i < rows; ++i)
    body += std::string{i > 0 ? "," : ""} + R"({"text":"great product"})";
  body += "]}";
  std::vector<double> ms;
  for (int i = 0; i < calls + 10; ++i) {
    auto t0 = steady_clock::now();
    auto res = client.Post("/infer", body, "application/json");
    auto t1 = steady_clock::now();
    if (!res || res->status != 200)
      return 0;
    if (i >= 10) // the first calls open the connection and warm up
      ms.push_back(duration<double, std::milli>(t1 - t0).count());
    std::this_thread::sleep_until(t0 + duration_cast<steady_clock::duration>(duration<double, std::milli>(gap_ms)));
  }
  std::nth_element(ms.begin(), ms.begin() + static_cast<long>(ms.size() / 2), ms.end());
  return ms[ms.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"goodput_bench: sinfer's batching vs no batching vs fixed-wait batching against a model server"};
  double seconds = 4, warmup = 1.5;
  std::string loads_text = "0.05,0.1,0.5,0.9,1.1,2.0";
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
  // The floor, in the same run: what a plain client's call takes alone.
  // At 10% load calls must carry about 2 records (one per call needs 7.4
  // of the 4 slots), so the first record of a call also waits one gap
  // between arrivals for the second.
  auto plain1 = plain_call_p50_ms(sim_server(slots, base_ms, per_record_ms), 1, 200, base_ms + 2);
  auto plain2 = plain_call_p50_ms(sim_server(slots, base_ms, per_record_ms), 2, 200, base_ms + 2);
  auto gap_10 = 1000.0 / (0.1 * limit);
  std::printf("plain client, no runtime, one call at a time: p50 %.2f ms with 1 record, %.2f ms with 2; at 10%% "
              "load a record first in a call of 2 waits %.2f ms more: %.2f ms\n",
              plain1, plain2, gap_10, plain2 + gap_10);
  std::printf("RESULT config=plain-client p50_ms_1=%.2f p50_ms_2=%.2f first_of_2_at_10pct_ms=%.2f\n", plain1, plain2,
              plain2 + gap_10);
  // Up to this load one record per call fits the server's slots (k calls
  // of a + c each), so p50 can be one call: a + c plus the round trip.
  auto single_share = slots * 1000.0 / (base_ms + per_record_ms) / limit;
  std::printf("one record per call fits up to %.1f%% of the limit (k / (a + c) = %.0f records/s)\n",
              100.0 * single_share, single_share * limit);
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
