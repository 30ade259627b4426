// limiter_bench: the adaptive concurrency limit over time against a server
// of k slots: where it settles under steady load, and how it backs off when
// the server slows down and its queue grows.
//
// One reference server on loopback (k slots, a batch of b takes a + c*b ms)
// and one http-json stage with the limiter under test (`--limiter`,
// default gradient; between 1 and `--max`), offered `--load` x the
// server's limit (open loop). Every `--tick` seconds it prints the limit,
// the calls in flight, throughput and latency; after `--steady` seconds
// the server turns `--slowdown` times slower (the same k slots, so its
// queue grows), for `--slow` seconds; then it recovers.
//
//   bench/run limiter [--limiter gradient|aimd] [--load 1.2] [--steady 6]
//                     [--slow 6] [--recover 6] [--tick 0.5]
//
// Prints the trace and RESULT lines with the mean limit per phase.

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "bench/bench_support.hpp"

using namespace sinfer;
using namespace sinfer::bench;

int main(int argc, char** argv) {
  CLI::App app{"limiter_bench: the adaptive concurrency limit against a server of k slots"};
  std::string kind = "gradient";
  double load = 1.2, steady = 6, slow = 6, recover = 6, tick = 0.5, slowdown = 3, warmup = 1;
  uint32_t k = 4, max = 32, bmax = 64;
  double a = 5, c = 0.2;
  app.add_option("--limiter", kind, "gradient or aimd");
  app.add_option("--load", load, "offered load as a fraction of the server's limit");
  app.add_option("--steady", steady, "seconds of steady load");
  app.add_option("--slow", slow, "seconds of the slowed server");
  app.add_option("--recover", recover, "seconds after it recovers");
  app.add_option("--slowdown", slowdown, "how much slower the server gets");
  app.add_option("--tick", tick, "seconds between trace lines");
  app.add_option("--slots", k, "server slots k");
  app.add_option("--max", max, "concurrency.max");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  limiter_kind lk = limiter_kind::gradient;
  if (!parse_limiter_kind(kind, lk) || lk == limiter_kind::fixed) {
    std::fprintf(stderr, "limiter_bench: --limiter must be gradient or aimd\n");
    return 2;
  }
  double limit = server_limit(k, a, c, bmax);
  double rate = load * limit;
  reference_server server{sim_server(k, a, c)};
  std::string err;
  if (server.start(err) < 0) {
    std::fprintf(stderr, "limiter_bench: %s\n", err.c_str());
    return 1;
  }
  auto spec = remote_model({server.url()}, {bmax, std::chrono::nanoseconds{0}, 0}, max);
  spec.limiter(lk, 1, k);
  auto models = model_registry::with_builtins();
  auto steady_ticks = static_cast<size_t>(steady / tick), slow_ticks = static_cast<size_t>(slow / tick);
  auto total = steady_ticks + slow_ticks + static_cast<size_t>(recover / tick);
  std::vector<double> windows(total, tick);
  std::printf("server k=%u, a=%.0f ms, c=%.1f ms, limit %.0f records/s; offered %.0f records/s; limiter %s "
              "(1..%u); the server slows %.0fx at %.1f s and recovers at %.1f s\n",
              k, a, c, limit, rate, kind.c_str(), max, slowdown, steady, steady + slow);
  std::printf("%7s %6s %7s %9s %10s %8s %8s %7s\n", "t (s)", "limit", "est. k", "in flight", "records/s", "p50 ms",
              "p99 ms", "batch");
  auto m = measure(rate_job(spec, rate, warmup + steady + slow + recover, models), models, rate, warmup, windows,
                   [&](size_t i) {
                     if (i == steady_ticks) {
                       fault_plan p;
                       p.kind = fault_plan::slow;
                       p.slowdown = slowdown;
                       server.inject(p);
                     } else if (i == steady_ticks + slow_ticks) {
                       server.inject(fault_plan{});
                     }
                   });
  double sums[3] = {0, 0, 0}, estimates[3] = {0, 0, 0};
  size_t counts[3] = {0, 0, 0};
  for (size_t i = 0; i < m.windows.size(); ++i) {
    auto& w = m.windows[i];
    std::printf("%7.1f %6llu %7.2f %9llu %10.0f %8.2f %8.2f %7.1f\n", (i + 1) * tick,
                static_cast<unsigned long long>(w.limit.at(0)), w.server_concurrency.at(0),
                static_cast<unsigned long long>(w.in_flight.at(0)), w.records_per_s, w.p50_ms, w.p99_ms,
                w.mean_batch);
    size_t phase = i < steady_ticks ? 0 : i < steady_ticks + slow_ticks ? 1 : 2;
    // The second half of each phase: where the limit settled.
    size_t begin = phase == 0 ? 0 : phase == 1 ? steady_ticks : steady_ticks + slow_ticks;
    size_t end = phase == 0 ? steady_ticks : phase == 1 ? steady_ticks + slow_ticks : total;
    if (i >= begin + (end - begin) / 2) {
      sums[phase] += static_cast<double>(w.limit.at(0));
      estimates[phase] += w.server_concurrency.at(0);
      ++counts[phase];
    }
  }
  const char* names[] = {"steady", "slowed", "recovered"};
  for (int p = 0; p < 3; ++p)
    std::printf("RESULT limiter=%s phase=%s k=%u mean_limit=%.1f mean_server_estimate=%.2f\n", kind.c_str(), names[p],
                k, counts[p] > 0 ? sums[p] / static_cast<double>(counts[p]) : 0.0,
                counts[p] > 0 ? estimates[p] / static_cast<double>(counts[p]) : 0.0);
  if (!m.ok)
    std::fprintf(stderr, "limiter_bench: %s\n", m.error.c_str());
  return m.ok ? 0 : 1;
}
