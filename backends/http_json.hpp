#pragma once
/// The `http-json` provider: a batch is one POST of a JSON body, records as
/// an array of objects under a configurable field; the answer holds one
/// object per record, in order, under another field:
///
///   POST {url}{path}   {"inputs": [{"text": "great"}, {"text": "awful"}]}
///   200                {"outputs": [{"label": "positive"}, {"label": "negative"}]}
///
/// A row may answer {"error": "..."} (that record fails, fatal for it); a
/// whole-call failure is classified by its status (policies/http_status.hpp)
/// with the message from an {"error": ...} body when there is one. A body
/// that is not JSON or has the wrong number of rows fails the call as fatal
/// for the endpoint (the records retry elsewhere).
///
/// Never blocks its caller: `infer` queues the call for a pool of
/// connection workers, threads that each keep one keep-alive client; `done`
/// runs on a worker thread. A call still queued when its timeout has passed
/// is not sent (the endpoint has answered for it already). Destroying the
/// backend never waits: queued calls fail at once, the workers finish their
/// current request on their own and end (they own what they use, so the
/// last reference may even be dropped inside a `done` callback). No CAF here.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "backends/inference_backend.hpp"

namespace sinfer {

struct http_json_settings {
  /// "http://host:port" or "https://host:port" (no path).
  std::string url;
  /// Request path. Default "/infer".
  std::string path = "/infer";
  /// Field holding the records in the request / the results in the answer.
  std::string inputs_field = "inputs";
  std::string outputs_field = "outputs";
  /// The model's input names (keys of each record object sent) and output
  /// names (keys read from each result object).
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  /// Connection workers (calls in flight at once). Default 4.
  uint32_t connections = 4;
  /// Socket connect/read/write timeout (the endpoint's timeout.attempt).
  std::chrono::milliseconds timeout{30000};
  /// HTTPS: a CA bundle (PEM) to trust instead of the system's CAs.
  std::string ca_file;
  /// Extra request headers (e.g. an API key); never logged.
  std::vector<std::pair<std::string, std::string>> headers;
};

class http_json_backend : public inference_backend {
public:
  explicit http_json_backend(http_json_settings settings);
  ~http_json_backend() override;

  const std::vector<std::string>& output_names() const override {
    return cfg_.outputs;
  }

  void infer(const call_request& req, completion done) override;

  /// Turns an answer into a call result (exposed for tests and fuzzing).
  /// `status` 0 means no answer, `transport_error` says why.
  static call_result decode(const http_json_settings& cfg, uint32_t rows, int status, const std::string& body,
                            const std::string& retry_after, const std::string& transport_error);

  /// The request body for a batch (exposed for tests).
  static std::string encode(const http_json_settings& cfg, const call_request& req);

  /// Replaces every header value (the API key) in `text` with "***".
  static std::string scrub(const http_json_settings& cfg, std::string text);

private:
  struct job {
    std::string body;
    uint32_t rows;
    completion done;
    std::chrono::steady_clock::time_point deadline;
  };
  /// What the workers share with the backend, owned by all of them.
  struct pool {
    http_json_settings cfg;
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<job> queue;
    bool stopping = false;
  };
  static void work(std::shared_ptr<pool> p);

  http_json_settings cfg_;
  std::shared_ptr<pool> pool_;
};

} // namespace sinfer
