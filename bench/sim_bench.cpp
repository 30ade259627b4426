// sim_bench: how fast `sinfer sim` runs a scenario, in wall time.
//
// Runs a scenario's first config `--repeat` times on virtual time (default
// examples/scenarios/one-hour.json: an hour at 1,000 records/s, P=4, two
// endpoints, a brownout and an outage) and prints the wall time of each run,
// the best and the median, records per wall second and how many times faster
// than real time the virtual hour went. The summary of every run must be the
// same (the simulator is deterministic); the bench fails otherwise.
//
//   bench/run sim [--scenario FILE] [--repeat 3] [--seed 1]
//
// Target (issue 5): a one-hour scenario at 1k records/s in under 30 s.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "sim/scenario.hpp"
#include "sim/simulator.hpp"

using namespace sinfer;

int main(int argc, char** argv) {
  CLI::App app{"sim_bench: wall time of a simulated scenario"};
  std::string path = std::string{SINFER_SOURCE_DIR} + "/examples/scenarios/one-hour.json";
  int repeat = 3;
  uint64_t seed = 1;
  app.add_option("--scenario", path, "scenario file");
  app.add_option("--repeat", repeat, "runs")->check(CLI::Range(1, 100));
  app.add_option("--seed", seed, "seed");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  auto models = model_registry::with_builtins();
  auto loaded = load_scenario(path, models);
  if (!loaded.scenario) {
    for (auto& e : loaded.errors)
      std::fprintf(stderr, "%s\n", e.c_str());
    return 2;
  }
  sim_run_options opts;
  opts.seed = seed;
  std::vector<double> walls;
  std::string first;
  sim_result last;
  for (int i = 0; i < repeat; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    last = run_simulation(*loaded.scenario, 0, models, opts);
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    walls.push_back(wall);
    auto summary = format_sim_summary({last});
    if (i == 0)
      first = summary;
    else if (summary != first) {
      std::fprintf(stderr, "sim_bench: run %d gave another summary than run 1: not deterministic\n", i + 1);
      return 1;
    }
    std::printf("run %d: %.2f s wall for %.0f s virtual, %llu records\n", i + 1, wall, last.duration,
                static_cast<unsigned long long>(last.records_in));
    std::fflush(stdout);
  }
  auto sorted = walls;
  std::sort(sorted.begin(), sorted.end());
  double best = sorted.front(), median = sorted[sorted.size() / 2];
  std::printf("RESULT scenario=%s records=%llu virtual_s=%.0f wall_best_s=%.2f wall_median_s=%.2f "
              "records_per_wall_s=%.0f speedup_over_real_time=%.0fx\n",
              last.scenario.c_str(), static_cast<unsigned long long>(last.records_in), last.duration, best, median,
              static_cast<double>(last.records_in) / median, last.duration / median);
  return 0;
}
