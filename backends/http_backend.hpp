#pragma once
/// An HTTP model endpoint: a pool of keep-alive connections that carries
/// the calls of any `http_protocol` (http-json, kserve-v2, openai).
///
/// Never blocks its caller: `infer` queues the call for a pool of
/// connection workers, threads that each keep one keep-alive client (a
/// broken connection is reopened by the client on the next request); `done`
/// runs on a worker thread. A call still queued when its timeout has passed
/// is not sent (the endpoint has answered for it already). Destroying the
/// backend never waits: queued calls fail at once, the workers finish their
/// current request on their own and end (they own what they use, so the
/// last reference may even be dropped inside a `done` callback).
/// Every error message is scrubbed of the configured header values (API
/// keys) before it leaves the backend. A batch with an `idempotency_key`
/// is POSTed with the header "Idempotency-Key: KEY" (every retry of the
/// same records carries the same key; a row sent alone after the server
/// refused its batch carries `row_idempotency_key`). No CAF here.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "backends/http_protocol.hpp"
#include "backends/inference_backend.hpp"

namespace sinfer {

/// How to reach one server.
struct http_connection_settings {
  /// "http://host:port" or "https://host:port" (no path).
  std::string url;
  /// Connection workers (calls in flight at once). Default 4.
  uint32_t connections = 4;
  /// Socket connect/read/write timeout (the endpoint's timeout.attempt).
  std::chrono::milliseconds timeout{30000};
  /// HTTPS: a CA bundle (PEM) to trust instead of the system's CAs.
  std::string ca_file;
  /// Extra request headers (e.g. an API key); never logged.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Replaces every header value of `cfg` (the API key, with or without its
/// "Bearer " prefix) in `text` with "***", and caps it at 300 characters.
std::string scrub_secrets(const http_connection_settings& cfg, std::string text);

/// One blocking GET on a fresh connection (startup checks: health, model
/// metadata). Call it before the job's actors start, never from an actor.
http_answer http_get(const http_connection_settings& cfg, const std::string& path);

class http_backend : public inference_backend {
public:
  http_backend(http_connection_settings settings, std::shared_ptr<const http_protocol> protocol);
  ~http_backend() override;

  const std::vector<std::string>& output_names() const override {
    return protocol_->output_names();
  }

  void infer(const call_request& req, completion done) override;

  /// Joins the rows a request left out with the answer for the rows it
  /// carried (exposed for tests). A whole-call failure stays whole.
  static call_result merge_rejected(const http_request& sent, call_result answer, uint32_t rows);

  /// Most connection workers (threads) one endpoint keeps.
  static constexpr uint32_t max_connections = 256;

private:
  struct job {
    http_request request;
    uint32_t rows;
    completion done;
    std::chrono::steady_clock::time_point deadline;
    /// The batch's inputs (batches of several rows only).
    call_request input;
    /// Sent as the Idempotency-Key header (empty: none).
    std::string idempotency_key;
  };
  /// What the workers share with the backend, owned by all of them.
  struct pool {
    http_connection_settings cfg;
    std::shared_ptr<const http_protocol> protocol;
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<job> queue;
    bool stopping = false;
    /// Answers in progress; once `closed`, workers drop answers (the
    /// destructor waits for those in progress).
    std::mutex answer_mutex;
    std::condition_variable answered;
    int answering = 0;
    bool closed = false;
  };
  static void work(std::shared_ptr<pool> p);

  /// Finishes `j` with `res` (scrubbed, rejected rows merged).
  static void finish(const pool& p, job& j, call_result res);

  std::shared_ptr<const http_protocol> protocol_;
  std::shared_ptr<pool> pool_;
};

} // namespace sinfer
