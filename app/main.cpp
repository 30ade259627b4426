// The `sinfer` command: run, validate and simulate jobs described by JSON config files,
// and serve a reference model server.
// Exit codes: 0 success, 1 the job failed, 2 bad config or usage.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "runtime/config_loader.hpp"
#include "runtime/demo.hpp"
#include "runtime/job_runner.hpp"
#include "runtime/job_summary.hpp"
#include "runtime/process_tuning.hpp"
#include "runtime/status_table.hpp"
#include "sim/reference_server.hpp"
#include "sim/sim_report.hpp"
#include "sim/simulator.hpp"

namespace {

constexpr int exit_ok = 0;
constexpr int exit_job_failed = 1;
constexpr int exit_usage = 2;

/// The running job's counters, for the signal handler: the first SIGINT or
/// SIGTERM asks the source to stop (the job drains what it holds and ends
/// normally); the second one ends the process at once.
std::atomic<sinfer::job_counters*> running_job{nullptr};

void on_stop_signal(int) {
  auto* c = running_job.load();
  if (c == nullptr || c->stop_requested.exchange(true))
    std::_Exit(130);
  static const char msg[] = "sinfer: stopping: draining records in flight (again to quit at once)\n";
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
}

/// Loads, validates and pre-flights a config; prints every error.
std::optional<sinfer::job_config> load(const std::string& path, const sinfer::model_registry& models,
                                       bool preflight) {
  auto result = sinfer::load_job_config(path, models);
  if (result.config && preflight)
    result.errors = sinfer::preflight_job(*result.config);
  if (!result.errors.empty()) {
    for (auto& e : result.errors)
      std::cerr << e << '\n';
    return std::nullopt;
  }
  return result.config;
}

int run(const std::string& path, bool progress_flag, bool quiet, size_t threads, const sinfer::restore_choice& restore) {
  auto models = sinfer::model_registry::with_builtins();
  auto cfg = load(path, models, true);
  if (!cfg)
    return exit_usage;
  sinfer::run_options opts;
  opts.progress = progress_flag || (!quiet && ::isatty(STDERR_FILENO));
  opts.threads = threads;
  opts.restore = restore;
  opts.counters = std::make_shared<sinfer::job_counters>(cfg->stages.size());
  running_job = opts.counters.get();
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  auto report = sinfer::run_job(*cfg, models, opts);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  running_job = nullptr;
  auto details = [&] {
    if (!quiet)
      for (auto& line : sinfer::resilience_summary(*cfg, *opts.counters))
        std::fprintf(stderr, "sinfer:   %s\n", line.c_str());
  };
  double secs = static_cast<double>(report.elapsed_ns) / 1e9;
  double rate = secs > 0 ? static_cast<double>(report.records_in) / secs : 0.0;
  if (!report.ok) {
    std::cerr << "sinfer: job \"" << cfg->name << "\" failed: " << report.reason << '\n';
    details();
    return exit_job_failed;
  }
  std::fprintf(stderr,
               "sinfer: job \"%s\" finished: %llu in, %llu out, %llu dead-lettered%s%s, %.2f s, "
               "%.0f records/s\n",
               cfg->name.c_str(), static_cast<unsigned long long>(report.records_in),
               static_cast<unsigned long long>(report.records_out),
               static_cast<unsigned long long>(report.dead_lettered),
               report.dead_lettered > 0 ? " (see " : "",
               report.dead_lettered > 0 ? (cfg->dead_letter_path + ")").c_str() : "", secs, rate);
  details();
  return exit_ok;
}

int validate(const std::string& path) {
  auto models = sinfer::model_registry::with_builtins();
  auto cfg = load(path, models, false);
  if (!cfg)
    return exit_usage;
  std::cerr << path << ": ok (job \"" << cfg->name << "\", " << cfg->stages.size() << " stage(s), parallelism "
            << cfg->parallelism << ")\n";
  return exit_ok;
}

struct sim_flags {
  std::optional<uint64_t> seed;
  std::string report;
  bool json = false;
  bool quiet = false;
  bool verbose = false;
};

/// `sinfer sim`: runs every config of the scenario on virtual time, prints
/// the summary on stdout and writes the report.
int simulate(const std::string& path, const sim_flags& flags) {
  auto models = sinfer::model_registry::with_builtins();
  auto loaded = sinfer::load_scenario(path, models);
  if (!loaded.scenario) {
    for (auto& e : loaded.errors)
      std::cerr << e << '\n';
    return exit_usage;
  }
  auto& sc = *loaded.scenario;
  // The summary lists what the actors log at info level (breaker changes),
  // at virtual times; wall-clock log lines would only interleave with it.
  if (!flags.verbose)
    spdlog::set_level(spdlog::level::warn);
  spdlog::set_pattern("%^sinfer sim: %l%$ %v"); // wall-clock times would mislead beside virtual ones
  sinfer::sim_run_options opts;
  opts.seed = flags.seed.value_or(sc.seed);
  bool show_progress = !flags.quiet && ::isatty(STDERR_FILENO);
  auto wall_start = std::chrono::steady_clock::now();
  std::vector<sinfer::sim_result> runs;
  for (size_t v = 0; v < sc.variants.size(); ++v) {
    auto label = sc.variants[v].label;
    if (show_progress) {
      auto last = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
      opts.progress = [label, last](double reached, double length) {
        auto now = std::chrono::steady_clock::now();
        if (now - *last < std::chrono::seconds{1})
          return;
        *last = now;
        std::fprintf(stderr, "sinfer sim:%s%s virtual %.0f s of %.0f s (%.0f%%)\n", label.empty() ? "" : " ",
                     label.c_str(), reached, length, length > 0 ? std::min(100.0, 100 * reached / length) : 0.0);
      };
    }
    runs.push_back(sinfer::run_simulation(sc, v, models, opts));
  }
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  auto summary = flags.json ? sinfer::sim_summary_json(runs) : sinfer::format_sim_summary(runs);
  std::fwrite(summary.data(), 1, summary.size(), stdout);
  if (!flags.report.empty()) {
    std::ofstream out{flags.report, std::ios::binary};
    auto html = sinfer::render_sim_report(runs);
    out.write(html.data(), static_cast<std::streamsize>(html.size()));
    out.close();
    if (!out) {
      std::cerr << "sinfer sim: --report: cannot write \"" << flags.report << "\"\n";
      return exit_job_failed;
    }
  }
  if (!flags.quiet)
    std::fprintf(stderr, "sinfer sim: %zu run(s) of \"%s\" in %.2f s of wall time%s%s\n", runs.size(),
                 sc.name.c_str(), wall, flags.report.empty() ? "" : "; report: ", flags.report.c_str());
  // The simulated job failing (fail-job, a stall, the drain limit) is the
  // scenario's answer, but scripts and CI need to see it.
  bool failed = std::any_of(runs.begin(), runs.end(), [](const sinfer::sim_result& r) { return !r.failure.empty(); });
  return failed ? exit_job_failed : exit_ok;
}

} // namespace

int main(int argc, char** argv) {
  sinfer::tune_allocator();
  auto logger = spdlog::stderr_color_mt("sinfer");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^[%H:%M:%S.%e] %l%$ %v");

  CLI::App app{"sinfer: a streaming-native AI inference runtime"};
  app.require_subcommand(1);
  std::string path;
  bool progress = false;
  bool quiet = false;
  size_t threads = 0;
  sinfer::restore_choice restore;
  uint64_t from_checkpoint = 0;

  auto* run_cmd = app.add_subcommand("run", "Run the job described by a JSON config file");
  run_cmd->add_option("config", path, "Job config file (JSON)")->required();
  run_cmd->add_flag("--progress", progress, "Log progress every second even when stderr is not a terminal");
  run_cmd->add_flag("-q,--quiet", quiet, "No progress lines (the final summary line is always printed)");
  run_cmd->add_option("--threads", threads, "Scheduler threads (default: one per core)");
  std::string log_level = "info";
  run_cmd->add_option("--log-level", log_level, "Readable log lines on stderr from this level (the event log, "
                                                "metrics.event-log, gets every event whatever it is)")
    ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  auto* fresh_flag = run_cmd->add_flag("--fresh", restore.fresh,
                                       "Checkpointed job: start over (forget its checkpoints, call log and output parts)");
  auto* from_opt = run_cmd->add_option("--from-checkpoint", from_checkpoint,
                                       "Checkpointed job: resume from this checkpoint instead of the latest "
                                       "(output parts after it are deleted)");
  from_opt->excludes(fresh_flag);

  auto* validate_cmd = app.add_subcommand("validate", "Check a job config file and report every error");
  validate_cmd->add_option("config", path, "Job config file (JSON)")->required();

  sinfer::reference_server_options sim;
  double base_ms = 5, per_record_ms = 0.2;
  auto* serve_cmd = app.add_subcommand(
    "serve-sim",
    "Serve a reference model server on loopback: http-json (POST /infer), KServe v2 (/v2/...), OpenAI "
    "(/v1/models, /v1/embeddings, /v1/chat/completions), POST /control, GET /stats, GET /metrics");
  serve_cmd->add_option("--port", sim.port, "Port (default 8000; 0 picks a free one)")->default_val(8000);
  serve_cmd->add_option("--slots", sim.slots, "Batches served at once (k)")->default_val(4);
  serve_cmd->add_option("--max-queue", sim.max_queue, "Requests that may wait for a slot; more get 503/429 (0: no bound)")
    ->default_val(0);
  serve_cmd->add_option("--base-ms", base_ms, "Service time of a batch: base (a), in ms")->default_val(5);
  serve_cmd->add_option("--per-record-ms", per_record_ms, "Service time per record of a batch (c), in ms")
    ->default_val(0.2);
  serve_cmd->add_option("--model", sim.model, "In-process model computing the answers")
    ->default_val("keyword-classifier");
  serve_cmd->add_option("--served-name", sim.served_name, "Model name on the KServe and OpenAI paths (default: --model)");
  serve_cmd->add_option("--embedding-dim", sim.embedding_dim, "Dimensions of the embeddings of /v1/embeddings")
    ->default_val(8)
    ->check(CLI::Range(1, 4096));
  serve_cmd->add_flag("--legacy-errors", sim.legacy_errors, "OpenAI errors in vLLM's older flat shape");
  serve_cmd->add_option("--api-key", sim.api_key, "Require \"Authorization: Bearer KEY\" on the infer paths");
  serve_cmd->add_option("--cert", sim.cert_file, "Serve HTTPS with this certificate (PEM; needs --key)")
    ->check(CLI::ExistingFile);
  serve_cmd->add_option("--key", sim.key_file, "Private key of --cert (PEM)")->check(CLI::ExistingFile);

  sim_flags simf;
  uint64_t seed = 0;
  auto* status_cmd = app.add_subcommand("status", "Print a running job's status (its metrics.port) as tables");
  std::string status_url;
  bool status_json_out = false;
  status_cmd->add_option("--url", status_url, "The job's metrics address, e.g. http://127.0.0.1:9464")->required();
  status_cmd->add_flag("--json", status_json_out, "Print the /status JSON as it is");

  auto* sim_cmd = app.add_subcommand(
    "sim", "Simulate a failure scenario in virtual time: the job's real actors against simulated servers with "
           "faults; prints a summary and writes an HTML report");
  sim_cmd->add_option("scenario", path, "Scenario file (JSON); exit 1 when the simulated job failed")->required();
  auto* seed_opt = sim_cmd->add_option("--seed", seed, "Seed (default: the scenario's); the same seed gives the "
                                                       "same run, byte for byte");
  sim_cmd->add_option("--report", simf.report, "Write a self-contained HTML report with charts to this file");
  sim_cmd->add_flag("--json", simf.json, "Print the summary as JSON");
  sim_cmd->add_flag("-q,--quiet", simf.quiet, "No progress lines and no wall-time line on stderr");
  sim_cmd->add_flag("-v,--verbose", simf.verbose, "Log the actors' info lines (breaker changes, restarts) on stderr");

  sinfer::demo_options demo;
  auto* demo_cmd = app.add_subcommand(
    "demo", "Run a three-model pipeline (kserve-v2 embeddings, two http-json classifier endpoints, an OpenAI chat "
            "summary for negative reviews) against reference servers on loopback, with a failure mid-run; "
            "narrates what the runtime does and prints a final table");
  demo_cmd->add_option("--dir", demo.dir, "Directory for the job config, output, dead letters and event log")
    ->default_val("build/demo");
  demo_cmd->add_option("--records", demo.records, "Generated reviews (paced at 100/s)")
    ->default_val(3000)
    ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}));
  demo_cmd->add_flag("-q,--quiet", demo.quiet, "No narration, only the final table");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? exit_ok : exit_usage;
  }
  try {
    if (*run_cmd) {
      if (*from_opt)
        restore.from = from_checkpoint;
      spdlog::set_level(spdlog::level::from_str(log_level));
      return run(path, progress, quiet, threads, restore);
    }
    if (*demo_cmd)
      return sinfer::run_demo(demo) == 0 ? exit_ok : exit_job_failed;
    if (*sim_cmd) {
      if (seed_opt->count() > 0)
        simf.seed = seed;
      return simulate(path, simf);
    }
    if (*status_cmd) {
      std::string body, error;
      if (!sinfer::fetch_status(status_url, body, error)) {
        std::cerr << "sinfer status: " << error << '\n';
        return exit_job_failed;
      }
      auto text = status_json_out ? body + "\n" : sinfer::format_status_table(body, error);
      if (text.empty()) {
        std::cerr << "sinfer status: " << error << '\n';
        return exit_job_failed;
      }
      std::fwrite(text.data(), 1, text.size(), stdout);
      return exit_ok;
    }
    if (*serve_cmd) {
      sim.base = std::chrono::microseconds{static_cast<int64_t>(base_ms * 1000)};
      sim.per_record = std::chrono::microseconds{static_cast<int64_t>(per_record_ms * 1000)};
      if (sim.cert_file.empty() != sim.key_file.empty()) {
        std::cerr << "sinfer serve-sim: --cert and --key go together\n";
        return exit_usage;
      }
      if (!sinfer::model_registry::with_builtins().find(sim.model)) {
        std::cerr << "sinfer serve-sim: --model: unknown model \"" << sim.model << "\"\n";
        return exit_usage;
      }
      sinfer::reference_server server{sim};
      std::string err;
      if (server.start(err) < 0) {
        std::cerr << "sinfer serve-sim: " << err << '\n';
        return exit_job_failed;
      }
      std::cerr << "sinfer serve-sim: serving " << sim.model << " at " << server.url() << " (k=" << sim.slots
                << ", a=" << base_ms << " ms, c=" << per_record_ms << " ms"
                << (sim.max_queue > 0 ? ", queue " + std::to_string(sim.max_queue) : std::string{})
                << (sim.api_key.empty() ? "" : ", API key required") << "); Ctrl-C stops\n";
      for (;;)
        std::this_thread::sleep_for(std::chrono::hours{1});
    }
    return validate(path);
  } catch (const std::exception& e) {
    std::cerr << "sinfer: " << e.what() << '\n';
    return exit_job_failed;
  }
}
