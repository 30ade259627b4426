#pragma once
/// A reference model server on loopback, for tests, demos and benchmarks:
/// it speaks the `http-json` protocol, computes a real small result with an
/// in-process model (the keyword classifier by default), follows a service
/// time model and lets tests inject faults. Real time and real sockets:
/// this is what sinfer's HTTP backends talk to, not a virtual-time actor.
///
/// Protocol (http-json): POST /infer with {"inputs": [{"text": ...}, ...]};
/// answers {"outputs": [{"label": ..., "score": ...}, ...]} in the same
/// order, or {"error": "..."} with a 4xx/5xx status. A row the model rejects
/// answers {"error": "..."} in its place.
/// Service time: `slots` calls at once (others wait in line), each batch of
/// b records takes base + b * per_record.
/// Faults (`inject`, or POST /control with the same fields as JSON): for the
/// next `count` requests (-1: until changed), answer `status` (with
/// `retry_after` seconds when > 0), or take `slowdown` times longer, or hang
/// for `hang`, or close the connection without answering (reset), or send
/// a body that is not JSON (garbage).
/// GET /stats answers {"requests": n, "records": m, "in_flight": k}.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "backends/in_process.hpp"

namespace httplib {
class Server;
}

namespace sinfer {

struct fault_plan {
  enum kind_t { none, status, slow, hang, reset, garbage } kind = none;
  int status_code = 500;
  int retry_after_s = 0;
  double slowdown = 1.0;
  std::chrono::milliseconds hang_for{0};
  /// Requests it applies to; -1: every request until the plan changes.
  int64_t count = -1;
};

struct reference_server_options {
  std::string host = "127.0.0.1";
  /// 0: any free port.
  int port = 0;
  /// The in-process model that computes the answers.
  std::string model = "keyword-classifier";
  uint32_t slots = 4;
  std::chrono::microseconds base{0};
  std::chrono::microseconds per_record{0};
  /// When set, /infer answers 401 unless "Authorization: Bearer KEY".
  std::string api_key;
  /// When both are set, serve HTTPS with this certificate and key (PEM).
  std::string cert_file;
  std::string key_file;
};

class reference_server {
public:
  explicit reference_server(reference_server_options options);
  ~reference_server();

  reference_server(const reference_server&) = delete;
  reference_server& operator=(const reference_server&) = delete;

  /// Binds and starts serving on its own threads; returns the port, or -1
  /// (with `error`) when it cannot bind.
  int start(std::string& error);
  /// Serves on the calling thread until `stop` (for `sinfer serve-sim`).
  bool run(std::string& error);
  void stop();

  int port() const noexcept {
    return port_;
  }
  std::string url() const;

  void inject(fault_plan plan);
  uint64_t requests() const noexcept {
    return requests_.load();
  }
  uint64_t records() const noexcept {
    return records_.load();
  }

private:
  void handle_infer(const std::string& body, int& status, std::string& out, bool& reset, int& retry_after);
  /// Takes the fault for one request (counting it down).
  fault_plan take_fault();

  reference_server_options opts_;
  in_process_model model_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = -1;
  std::mutex mutex_;
  std::condition_variable slot_free_;
  /// Wakes sleeping handlers (service time, hangs) when the server stops.
  std::condition_variable stopped_;
  bool stopping_ = false;
  uint32_t busy_ = 0;
  fault_plan fault_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> records_{0};
  std::atomic<uint64_t> in_flight_{0};
};

} // namespace sinfer
