#include "runtime/metrics_server.hpp"

#include <httplib.h>

#include "runtime/metrics_text.hpp"

namespace sinfer {

metrics_server::metrics_server(std::shared_ptr<const job_config> cfg, std::shared_ptr<job_counters> counters)
  : cfg_(std::move(cfg)), counters_(std::move(counters)) {
}

metrics_server::~metrics_server() {
  stop();
}

int metrics_server::start(const std::string& host, int port, std::string& error) {
  server_ = std::make_unique<httplib::Server>();
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus_text(*cfg_, *counters_), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/status", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(status_json(*cfg_, *counters_, ready_.load(std::memory_order_relaxed)), "application/json");
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    bool ready = ready_.load(std::memory_order_relaxed);
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "not ready\n", "text/plain");
  });
  int bound = port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound < 0) {
    error = "metrics.port: cannot listen on " + host + ":" + std::to_string(port) + " (in use, or not allowed)";
    server_.reset();
    return -1;
  }
  thread_ = std::thread{[this] { server_->listen_after_bind(); }};
  return bound;
}

void metrics_server::stop() {
  if (!server_)
    return;
  server_->stop();
  if (thread_.joinable())
    thread_.join();
  server_.reset();
}

} // namespace sinfer
