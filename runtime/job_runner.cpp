#include "runtime/job_runner.hpp"

#include <cerrno>
#include <cstring>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include <caf/all.hpp>

#include "actors/job_supervisor.hpp"
#include "runtime/config_loader.hpp"
#include "runtime/http_models.hpp"
#include "runtime/metrics_server.hpp"

#include <spdlog/spdlog.h>

namespace sinfer {

namespace {

std::string parent_dir(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

void check_writable_dir(const std::string& key, const std::string& path, const job_config& cfg,
                        std::vector<std::string>& errors) {
  auto dir = parent_dir(path);
  if (::access(dir.c_str(), W_OK) != 0)
    errors.push_back((cfg.file.empty() ? "" : cfg.file + ": ") + key + ": cannot write to directory \""
                     + dir + "\": " + std::strerror(errno));
}

} // namespace

std::vector<std::string> preflight_job(const job_config& cfg) {
  std::vector<std::string> errors;
  auto prefix = cfg.file.empty() ? std::string{} : cfg.file + ": ";
  if (cfg.source.kind == source_kind::jsonl && ::access(cfg.source.path.c_str(), R_OK) != 0)
    errors.push_back(prefix + "source.path: cannot read \"" + cfg.source.path + "\": " + std::strerror(errno));
  if (cfg.sink.kind == sink_kind::jsonl)
    check_writable_dir("sink.path", cfg.sink.path, cfg, errors);
  check_writable_dir("dead-letter.path", cfg.dead_letter_path, cfg, errors);
  return errors;
}

job_report run_job(const job_config& unchecked, const model_registry& models, run_options options) {
  auto cfg = unchecked;
  if (auto errors = check_job_config(cfg, models); !errors.empty()) {
    job_report report;
    report.reason = "invalid job config: " + errors.front()
                    + (errors.size() > 1 ? " (and " + std::to_string(errors.size() - 1) + " more)" : "");
    return report;
  }
  // Ask the model servers what only they know (kserve metadata, model
  // lists) before anything starts.
  auto remote = check_remote_models(cfg);
  for (auto& w : remote.warnings)
    spdlog::warn("{}", w);
  if (!remote.errors.empty()) {
    job_report report;
    report.reason = "the model servers disagree with the job config: " + remote.errors.front()
                    + (remote.errors.size() > 1 ? " (and " + std::to_string(remote.errors.size() - 1) + " more)" : "");
    for (auto& e : remote.errors)
      spdlog::error("{}", e);
    return report;
  }
  std::shared_ptr<checkpoint_context> checkpoints;
  if (cfg.checkpoint.enabled()) {
    std::vector<std::string> notes;
    std::string error;
    checkpoints = open_checkpoints(cfg, options.restore, notes, error);
    for (auto& n : notes)
      spdlog::info("job \"{}\": {}", cfg.name, n);
    if (!checkpoints) {
      job_report report;
      report.reason = (cfg.file.empty() ? "" : cfg.file + ": ") + error;
      return report;
    }
  } else if (options.restore.fresh || options.restore.from) {
    job_report report;
    report.reason = std::string{options.restore.fresh ? "--fresh" : "--from-checkpoint"}
                    + " needs checkpoints: the job has no checkpoint.dir";
    return report;
  }
  caf::actor_system_config sys_cfg;
  // CAF 0.17 starts max(4, cores) workers; more workers than cores only add
  // wake-ups and cross-core hand-offs (measured: bench/run_pipeline --threads).
  auto threads = options.threads > 0 ? options.threads
                                     : std::max<size_t>(1, std::thread::hardware_concurrency());
  sys_cfg.set("scheduler.max-threads", threads);
  caf::actor_system sys{sys_cfg};
  auto shared_cfg = std::make_shared<const job_config>(cfg);
  auto shared_models = std::make_shared<const model_registry>(models);
  auto counters = options.counters ? options.counters : std::make_shared<job_counters>(cfg.stages.size());
  supervisor_options sup_opts;
  sup_opts.progress = options.progress;
  sup_opts.progress_interval = options.progress_interval;
  sup_opts.checkpoints = std::move(checkpoints);
  if (!cfg.metrics.event_log.empty()) {
    std::string error;
    counters->events = event_log::open(cfg.metrics.event_log, cfg.name, error);
    if (!counters->events) {
      job_report report;
      report.reason = (cfg.file.empty() ? "" : cfg.file + ": ") + error;
      return report;
    }
  }
  std::unique_ptr<metrics_server> metrics;
  if (cfg.metrics.port >= 0) {
    metrics = std::make_unique<metrics_server>(shared_cfg, counters);
    std::string error;
    int port = metrics->start(cfg.metrics.host, cfg.metrics.port, error);
    if (port < 0) {
      job_report report;
      report.reason = (cfg.file.empty() ? "" : cfg.file + ": ") + error;
      return report;
    }
    spdlog::info("job \"{}\": metrics at http://{}:{}/metrics (/healthz, /readyz)", cfg.name, cfg.metrics.host, port);
    if (options.on_metrics)
      options.on_metrics(port);
    metrics->set_ready(true);
  }
  auto supervisor = spawn_job_supervisor(sys, shared_cfg, shared_models, sup_opts, counters);
  job_report report;
  caf::scoped_actor self{sys};
  self->request(supervisor, caf::infinite, run_atom::value)
    .receive([&](job_report& r) { report = std::move(r); },
             [&](caf::error& err) {
               report.ok = false;
               report.reason = "the job supervisor ended without a report: " + sys.render(err);
             });
  if (metrics)
    metrics->set_ready(false);
  return report;
}

} // namespace sinfer
