#pragma once
/// The job's observability endpoint (`metrics.port`): an HTTP server on its
/// own threads (cpp-httplib) that reads the job's counters, which are
/// atomics, so it never messages an actor or slows one.
/// - GET /metrics: Prometheus text exposition (runtime/metrics_text.hpp).
/// - GET /status: the job at a glance as JSON (status_json), for humans
///   (`sinfer status --url`) and scripts.
/// - GET /healthz: 200 while the process serves (liveness).
/// - GET /readyz: 200 while the job runs, 503 before it starts and once it
///   is ending (readiness: an orchestrator stops sending it traffic).
/// No CAF here.

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace httplib {
class Server;
}

namespace sinfer {

class metrics_server {
public:
  metrics_server(std::shared_ptr<const job_config> cfg, std::shared_ptr<job_counters> counters);
  ~metrics_server();
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  /// Listens on `host`:`port` (0: any free port) and serves on its own
  /// threads; returns the port, or -1 with `error`.
  int start(const std::string& host, int port, std::string& error);

  /// /readyz answers 200 while set.
  void set_ready(bool ready) noexcept {
    ready_.store(ready, std::memory_order_relaxed);
  }

  void stop();

private:
  std::shared_ptr<const job_config> cfg_;
  std::shared_ptr<job_counters> counters_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> ready_{false};
};

} // namespace sinfer
