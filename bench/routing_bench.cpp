// routing_bench: load-aware routing vs round-robin over two endpoints of
// unequal speed, in the same run.
//
// Two reference servers on loopback (k=4 slots each, a batch of b takes
// a + c*b ms): "fast" (a=5 ms, c=0.2 ms) and "slow", 3x slower (15 ms,
// 0.6 ms). Phase 1 measures as they are; then the fast one slows down 3x
// (an injected fault) and phase 2 measures again. The source offers 120% of
// the combined capacity of phase 1 (open loop), so both phases saturate.
// Capacity of an endpoint = k * bmax / (a + c*bmax) with bmax 64; goodput is
// reported as a share of the two endpoints' combined capacity in that phase.
// Each routing strategy runs against fresh servers:
// - load-aware (sinfer's default): slots are asked of every endpoint and a
//   batch goes where a slot frees first, so each endpoint is fed at its pace.
// - round-robin: batches alternate between the endpoints.
//
// Each endpoint's concurrency: fixed at k (sinfer's default limiter), or
// with `--limiter gradient` the gradient limiter between 1 and 16 (the
// goodput bench's "adaptive").
//
//   bench/run routing [--phase-seconds D] [--warmup W] [--limiter fixed|gradient]
//                     [--pacing true|false]
//
// Prints a table and one RESULT line per strategy and phase.

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "bench/bench_support.hpp"

using namespace sinfer;
using namespace sinfer::bench;

int main(int argc, char** argv) {
  CLI::App app{"routing_bench: load-aware routing vs round-robin over a fast and a 3x slower endpoint"};
  double phase = 4, warmup = 1.5;
  app.add_option("--phase-seconds", phase, "measured window per phase");
  app.add_option("--warmup", warmup, "warm-up before phase 1");
  bool pacing = true;
  app.add_option("--pacing", pacing, "concurrency.pacing (policies/call_pacing.hpp)");
  std::string limiter_name = "fixed";
  app.add_option("--limiter", limiter_name, "fixed (k slots) or gradient (1..16)");
  CLI11_PARSE(app, argc, argv);
  limiter_kind limiter = limiter_kind::fixed;
  if (!parse_limiter_kind(limiter_name, limiter) || limiter == limiter_kind::aimd) {
    std::fprintf(stderr, "routing_bench: --limiter must be fixed or gradient\n");
    return 2;
  }
  spdlog::set_level(std::getenv("SINFER_BENCH_PROGRESS") != nullptr ? spdlog::level::info : spdlog::level::warn);
  const uint32_t k = 4, bmax = 64;
  const double a = 5, c = 0.2, slower = 3;
  double fast_cap = server_limit(k, a, c, bmax), slow_cap = server_limit(k, a * slower, c * slower, bmax);
  std::vector<double> capacity = {fast_cap + slow_cap, 2 * slow_cap};
  double rate = 1.2 * capacity[0];
  auto models = model_registry::with_builtins();
  std::printf("endpoints: fast %.0f records/s, slow %.0f records/s; offered %.0f records/s\n", fast_cap, slow_cap,
              rate);
  std::printf("%-12s %-22s %9s %10s %8s %8s %14s\n", "strategy", "phase", "capacity", "goodput", "p50 ms",
              "p99 ms", "calls fast/slow");
  int failures = 0;
  for (auto strategy : {routing_strategy::load_aware, routing_strategy::round_robin}) {
    reference_server fast{sim_server(k, a, c)}, slow{sim_server(k, a * slower, c * slower)};
    std::string err;
    if (fast.start(err) < 0 || slow.start(err) < 0) {
      std::fprintf(stderr, "routing_bench: %s\n", err.c_str());
      return 1;
    }
    auto spec = remote_model({fast.url(), slow.url()}, {bmax, std::chrono::nanoseconds{0}, 0},
                             limiter == limiter_kind::fixed ? k : 16);
    if (limiter != limiter_kind::fixed)
      spec.limiter(limiter, 1, k);
    spec.routing(strategy);
    spec.pacing(pacing);
    auto m = measure(rate_job(spec, rate, warmup + 2 * phase, models), models, rate, warmup, {phase, phase},
                     [&](size_t i) {
                       if (i == 1) {
                         fault_plan slow_down;
                         slow_down.kind = fault_plan::slow;
                         slow_down.slowdown = slower;
                         fast.inject(slow_down);
                       }
                     });
    const char* phases[] = {"fast + 3x slower", "fast slowed 3x too"};
    for (size_t i = 0; i < m.windows.size(); ++i) {
      auto& w = m.windows[i];
      auto share = w.records_per_s / capacity[i];
      std::printf("%-12s %-22s %9.0f %9.3f %8.2f %8.2f %7llu/%-6llu%s%s\n", to_string(strategy), phases[i],
                  capacity[i], share, w.p50_ms, w.p99_ms, static_cast<unsigned long long>(w.calls.at(0)),
                  static_cast<unsigned long long>(w.calls.at(1)), m.ok ? "" : "  FAILED: ", m.error.c_str());
      std::printf("RESULT strategy=%s phase=%zu goodput_over_capacity=%.3f p50_ms=%.2f p99_ms=%.2f calls_fast=%llu "
                  "calls_slow=%llu limit_fast=%llu limit_slow=%llu ok=%d\n",
                  to_string(strategy), i + 1, share, w.p50_ms, w.p99_ms,
                  static_cast<unsigned long long>(w.calls.at(0)), static_cast<unsigned long long>(w.calls.at(1)),
                  static_cast<unsigned long long>(w.limit.at(0)), static_cast<unsigned long long>(w.limit.at(1)),
                  m.ok ? 1 : 0);
      std::fflush(stdout);
    }
    failures += m.ok ? 0 : 1;
  }
  return failures == 0 ? 0 : 1;
}
