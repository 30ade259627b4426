#pragma once
/// A reference model server on loopback, for tests, demos and benchmarks:
/// it serves an in-process model (the keyword classifier by default) over
/// three protocols at once, follows a service time model, bounds its queue,
/// exposes Prometheus metrics and lets tests inject faults. Real time and
/// real sockets: this is what sinfer's HTTP backends talk to, not a
/// virtual-time actor. No CAF header here.
///
/// Every infer path (POST /infer, POST /v2/models/.../infer, POST
/// /v1/embeddings, POST /v1/chat/completions) goes through the same steps,
/// in this order: API key (when `api_key` is set: "Authorization: Bearer
/// KEY", else 401), fault (taken and counted down), request validation
/// (400/404, answered at once), queue (rejected at once when `slots` are busy
/// and `max_queue` wait already), slot and service time (`slots` calls at
/// once, each batch of b records takes base + b * per_record; b = rows of the
/// request), the fault's outcome, then the model. Error bodies use the
/// protocol's shape; 429/503 carry Retry-After when it is known.
///
/// http-json: POST /infer with {"inputs": [{"text": ...}, ...]}; answers
/// {"outputs": [{"label": ..., "score": ...}, ...]} in the same order, or
/// {"error": "..."} with a 4xx/5xx status. A row the model rejects answers
/// {"error": "..."} in its place.
///
/// KServe v2 / Open Inference Protocol, as Triton serves it; NAME is
/// `served_name`, the only version is "1", [/versions/1] is optional:
/// - GET /v2: {"name": "sinfer-reference", "version": "1", "extensions": []}.
/// - GET /v2/health/live: {"live": true}. GET /v2/health/ready: {"ready":
///   true}, or 503 {"ready": false} while the `unready` fault holds.
/// - GET /v2/models/NAME[/versions/1]/ready: {"name": NAME, "ready": true};
///   503 {"name": NAME, "ready": false} while unready; 404 {"error": "..."}
///   for another model or version.
/// - GET /v2/models/NAME[/versions/1]: {"name": NAME, "versions": ["1"],
///   "platform": "sinfer-reference", "inputs": [{"name": "text", "datatype":
///   "BYTES", "shape": [-1, 1]}], "outputs": [...]}. Each model input is
///   BYTES [-1, 1] (a model that declares none: one input "text"). Output
///   types come from one probe call at construction ({"text": "probe"}): a
///   string is BYTES [-1, 1], an integer INT64 [-1, 1], another number FP32
///   [-1, 1], a bool BOOL [-1, 1], an array of d numbers FP32 [-1, d];
///   anything else is BYTES [-1, 1] carrying its JSON text.
/// - POST /v2/models/NAME[/versions/1]/infer with {"id"?: "...", "inputs":
///   [{"name": "text", "datatype": "BYTES", "shape": [b, 1], "data": [...]}],
///   "outputs"?: [{"name": "label"}, ...]}; data flat or nested per row;
///   shape [b] is accepted too. Answers {"model_name": NAME, "model_version":
///   "1", "id"?: echoed, "outputs": [{"name", "datatype", "shape": [b, 1] or
///   [b, d], "data": [flat, row-major]}]} with every output, or only those
///   requested. A bad request, or a row the model rejects, is 400 {"error":
///   "..."}; another model or version 404; binary tensor data 400.
///
/// OpenAI-compatible, as vLLM serves it; MODEL is `served_name` (a request
/// without "model" means it):
/// - GET /v1/models: {"object": "list", "data": [{"id": MODEL, "object":
///   "model", "created": unix-time, "owned_by": "sinfer"}]} (API key checked).
/// - POST /v1/embeddings with {"model": MODEL, "input": "text" or ["a", ...],
///   "encoding_format"?: "float" | "base64"}: {"object": "list", "model":
///   MODEL, "data": [{"object": "embedding", "index": i, "embedding": [floats]
///   or "base64 of the little-endian float32s"}], "usage": {"prompt_tokens":
///   n, "total_tokens": n}}. Always computed by the hash embedder with
///   {"dimensions": embedding_dim}; b = number of inputs.
/// - POST /v1/chat/completions with {"model": MODEL, "messages": [{"role",
///   "content": string or [{"type": "text", "text"}]}], "max_tokens"? (or
///   "max_completion_tokens"), "temperature"?}: {"id": "chatcmpl-N", "object":
///   "chat.completion", "created": unix-time, "model": MODEL, "choices":
///   [{"index": 0, "message": {"role": "assistant", "content": TEXT},
///   "finish_reason": "stop" | "length"}], "usage": {"prompt_tokens",
///   "completion_tokens", "total_tokens"}}. TEXT is "Summary (LABEL): " and the
///   first 12 words of the last user message, LABEL from the keyword
///   classifier, cut to max_tokens words ("length"). b = 1. Tokens are
///   whitespace-separated words (prompt: every message's content). "stream":
///   true and "n" other than 1 are 400.
/// - GET /health: 200 with an empty body; 503 while the `unready` fault
///   holds (vLLM's probe).
/// - Errors: {"error": {"message", "type", "param": null, "code": status}};
///   with `legacy_errors` (or /control "error-shape": "legacy") vLLM's older
///   {"object": "error", "message", "type", "param": null, "code": status}.
///   Types: 400 invalid_request_error, 401 authentication_error, 404
///   not_found_error, 429 rate_limit_error, 5xx server_error. Another model
///   is 404. A full queue is 429 here (503 on the other protocols).
///
/// Bounded queue: with `max_queue` > 0 a request that finds every slot busy
/// and `max_queue` requests waiting is rejected at once with Retry-After: 1
/// (http-json, KServe: 503 {"error": "queue full"}; OpenAI: 429). Requests
/// are handled on slots + max_queue (64 when unbounded) + 8 threads, 16 to
/// 1024; a connection (kept alive or not) beyond those waits unseen in the
/// listener's queue, outside this model.
///
/// GET /metrics: Prometheus text exposition (version 0.0.4). Triton's
/// families, labelled {model=NAME, version="1"}: nv_inference_request_success,
/// nv_inference_request_failure (every infer request not answered 200 with a
/// result: 4xx, rejections, faults), nv_inference_count (records) and
/// nv_inference_exec_count (batches) of successful requests,
/// nv_inference_request_duration_us, nv_inference_queue_duration_us (waiting
/// for a slot) and nv_inference_compute_infer_duration_us (holding it), summed
/// over successful requests; gauge nv_inference_pending_request_count
/// (waiting now). vLLM's, labelled {model_name=NAME}: gauges
/// vllm:num_requests_running (holding a slot), vllm:num_requests_waiting,
/// vllm:kv_cache_usage_perc and vllm:gpu_cache_usage_perc (running / slots,
/// 0..1); counters vllm:prompt_tokens_total (chat and embeddings),
/// vllm:generation_tokens_total (chat), vllm:request_success_total (every
/// protocol, as nv_inference_request_success). And counter
/// sinfer_reference_rejected_total (queue full).
///
/// Faults (`inject`, or POST /control with the same fields as JSON: "fault":
/// "none" | "status" | "slow" | "hang" | "reset" | "garbage" | "unready",
/// "status", "retry-after" (s), "slowdown", "hang-ms", "count"): for the next
/// `count` infer requests (-1: until changed), answer `status` (with
/// `retry_after` seconds when > 0 on 429/503), or take `slowdown` times
/// longer, or hang for `hang`, or close the connection without answering
/// (reset), or send a body that is not JSON (garbage). `unready` makes the
/// readiness probes answer 503 for the next `count` probes (infer requests
/// neither see nor count it; /v2/health/ready, model ready and /health do).
/// "error-shape": "openai" | "legacy" switches the OpenAI error shape until
/// changed; a body with only "error-shape" leaves the fault alone, any other
/// body replaces it. Unknown values are 400.
/// GET /stats answers {"requests": n, "records": m, "in_flight": k,
/// "waiting": w, "rejected": r, "keyed_requests": kr, "repeated_keys": rk,
/// "distinct_inputs": di, "repeated_inputs": ri, "records_in_flight": f}
/// (`reference_stats`): records: rows of every valid infer request;
/// in_flight: requests holding a slot. Duplicate work, on every infer path:
/// keyed_requests: requests with an Idempotency-Key header (counted on
/// arrival, before the API key and validation), repeated_keys: those whose
/// key an earlier request carried; an input is the raw text of a row's first
/// input (a JSON string's content, another value's JSON text: http-json the
/// row's model input 0 ("text"), KServe the first input tensor's element,
/// embeddings each input string, chat the last user message), counted when
/// the model scores the row (its request held a slot and no fault replaced
/// the answer): distinct_inputs: distinct inputs scored, repeated_inputs:
/// rows scored whose input had been scored before. records_in_flight: rows
/// of valid requests between arrival and their answer (waiting for a slot or
/// holding one), released when the answer is handed to the HTTP layer, so a
/// client that got its answer no longer counts in it. The tallies are exact
/// (one map entry per distinct key and input: meant for tests and demos,
/// not for unbounded traffic).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backends/in_process.hpp"

namespace simdjson::dom {
class parser;
class object;
} // namespace simdjson::dom

namespace httplib {
class Server;
struct Request;
struct Response;
} // namespace httplib

namespace sinfer {

struct fault_plan {
  enum kind_t { none, status, slow, hang, reset, garbage, unready } kind = none;
  int status_code = 500;
  int retry_after_s = 0;
  double slowdown = 1.0;
  std::chrono::milliseconds hang_for{0};
  /// Requests it applies to; -1: every request until the plan changes.
  int64_t count = -1;
  /// A `status` fault's error message quotes the Authorization header the
  /// request carried, as a careless server or proxy does: for tests that
  /// check what sinfer writes never holds the key (not settable through
  /// /control).
  bool echo_credentials = false;
  /// The OpenAI error shape from now on (not counted down): `keep_shape`
  /// leaves it as it is.
  enum error_shape_t { keep_shape, openai_shape, legacy_shape } error_shape = keep_shape;
};

/// The figures of GET /stats (see the header comment).
struct reference_stats {
  uint64_t requests = 0;
  uint64_t records = 0;
  uint64_t in_flight = 0;
  uint64_t waiting = 0;
  uint64_t rejected = 0;
  uint64_t keyed_requests = 0;
  uint64_t repeated_keys = 0;
  uint64_t distinct_inputs = 0;
  uint64_t repeated_inputs = 0;
  uint64_t records_in_flight = 0;
};

struct reference_server_options {
  std::string host = "127.0.0.1";
  /// 0: any free port.
  int port = 0;
  /// The in-process model that computes the answers (http-json, KServe).
  std::string model = "keyword-classifier";
  /// The model's name on KServe and OpenAI paths and in metrics; empty:
  /// `model`.
  std::string served_name;
  /// Dimensions of the hash embedder behind /v1/embeddings (and of `model`
  /// when it is the hash embedder); 8 is the hash embedder's default.
  uint32_t embedding_dim = 8;
  uint32_t slots = 4;
  /// Requests that may wait for a slot; more are rejected at once. 0: no
  /// bound.
  uint32_t max_queue = 0;
  std::chrono::microseconds base{0};
  std::chrono::microseconds per_record{0};
  /// When set, infer paths and /v1/models answer 401 unless
  /// "Authorization: Bearer KEY".
  std::string api_key;
  /// OpenAI errors in vLLM's older flat shape.
  bool legacy_errors = false;
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
  /// Stops serving; handlers waiting for a slot or sleeping a service time
  /// or a hang wake up at once.
  void stop();

  int port() const noexcept {
    return port_;
  }
  std::string url() const;

  void inject(fault_plan plan);
  /// Infer requests received, on every protocol.
  uint64_t requests() const noexcept {
    return requests_.load();
  }
  /// Rows of every valid infer request.
  uint64_t records() const noexcept {
    return records_.load();
  }
  /// Requests rejected because the queue was full.
  uint64_t rejected() const noexcept {
    return rejected_.load();
  }
  /// Infer requests and GET /v1/models requests that carried the configured
  /// `api_key` (0 when none is configured): proof that a key reached the
  /// server.
  uint64_t authorized_requests() const noexcept {
    return authorized_.load();
  }
  /// Everything GET /stats answers.
  reference_stats stats() const;
  /// Infer requests that carried Idempotency-Key `key` so far.
  uint64_t key_requests(const std::string& key) const;
  /// Times a row whose first input's raw text is `input` was scored.
  uint64_t input_scored(const std::string& input) const;

private:
  /// The KServe datatype and per-row width of one model output.
  struct tensor_meta {
    std::string name;
    /// "BYTES", "INT64", "FP32" or "BOOL".
    std::string datatype;
    /// Elements per row: 1, or d for an array output.
    size_t width = 1;
    /// The value is a JSON array of `width` numbers.
    bool array = false;
    /// A BYTES output whose values are not JSON strings: sent as JSON text.
    bool as_text = false;
  };

  enum class protocol { http_json, kserve, openai };
  /// One answer (defined in the .cpp).
  struct reply;
  /// A validated infer request: its rows and how to compute its answer.
  struct work;

  /// Validates one request of a protocol into `w`, or sets `err`.
  using parse_fn = bool (reference_server::*)(const httplib::Request& req, work& w, reply& err);
  /// Every infer path: the steps in the header comment, then the counters.
  void serve(protocol p, parse_fn parse, const httplib::Request& req, httplib::Response& res);
  bool parse_http_json(const httplib::Request& req, work& w, reply& err);
  bool parse_kserve(const httplib::Request& req, work& w, reply& err);
  /// An OpenAI request's body as an object naming the served model (or
  /// none); else sets `err`. `parser` owns what `obj` points into.
  bool openai_body(simdjson::dom::parser& parser, const httplib::Request& req, simdjson::dom::object& obj,
                   reply& err);
  bool parse_embeddings(const httplib::Request& req, work& w, reply& err);
  bool parse_chat(const httplib::Request& req, work& w, reply& err);
  /// An error in protocol `p`'s shape.
  reply error_reply(protocol p, int status, const std::string& message) const;
  /// Waits for a slot and holds it for `service`; false (nothing held) when
  /// the queue is full. Adds the waiting and holding times, in us.
  bool hold_slot(std::chrono::microseconds service, uint64_t& queue_us, uint64_t& compute_us);
  /// Takes the fault for one infer request (counting it down).
  fault_plan take_fault();
  /// Whether a readiness probe sees the `unready` fault (counting it down).
  bool take_unready();
  bool key_ok(const httplib::Request& req) const;
  /// Counts an infer request's Idempotency-Key, and rows being scored.
  void note_key(const std::string& key);
  void note_scored(const std::vector<std::string>& inputs);
  bool known_model(const std::string& name, const std::string& version) const;
  std::string model_metadata() const;
  std::string metrics_text();

  reference_server_options opts_;
  in_process_model model_;
  /// Input names of `model_` as served (never empty).
  std::vector<std::string> inputs_;
  std::vector<tensor_meta> outputs_;
  /// Behind /v1/embeddings and /v1/chat/completions.
  in_process_model embedder_;
  in_process_model classifier_;
  int64_t started_unix_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = -1;
  mutable std::mutex mutex_;
  std::condition_variable slot_free_;
  /// Wakes sleeping handlers (service time, hangs) when the server stops.
  std::condition_variable stopped_;
  bool stopping_ = false;
  /// Requests holding a slot, and waiting for one (guarded by `mutex_`).
  uint32_t busy_ = 0;
  /// How late a timed wait wakes, smoothed (guarded by `mutex_`): service
  /// waits end this much early so that a batch takes a + c*b, not a + c*b
  /// plus the kernel's timer slack and wake-up (about 130 us on the
  /// 2-core VM, 2.5% of a 5.2 ms call).
  std::chrono::nanoseconds wake_lateness_{0};
  uint32_t waiting_ = 0;
  fault_plan fault_;
  bool legacy_errors_ = false;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> records_{0};
  std::atomic<uint64_t> in_flight_{0};
  std::atomic<uint64_t> rejected_{0};
  mutable std::atomic<uint64_t> authorized_{0};
  std::atomic<uint64_t> chat_ids_{0};
  std::atomic<uint64_t> records_in_flight_{0};
  /// Duplicate-work tallies (guarded by `tally_mutex_`).
  mutable std::mutex tally_mutex_;
  std::unordered_map<std::string, uint64_t> key_counts_;
  std::unordered_map<std::string, uint64_t> input_counts_;
  uint64_t keyed_requests_ = 0;
  uint64_t repeated_keys_ = 0;
  uint64_t repeated_inputs_ = 0;
  // Metrics (see the header comment).
  std::atomic<uint64_t> success_{0};
  std::atomic<uint64_t> failure_{0};
  std::atomic<uint64_t> inference_count_{0};
  std::atomic<uint64_t> exec_count_{0};
  std::atomic<uint64_t> request_us_{0};
  std::atomic<uint64_t> queue_us_{0};
  std::atomic<uint64_t> compute_us_{0};
  std::atomic<uint64_t> prompt_tokens_{0};
  std::atomic<uint64_t> generation_tokens_{0};
};

} // namespace sinfer
