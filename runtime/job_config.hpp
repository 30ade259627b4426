#pragma once
/// The typed, validated description of a job. Produced by the config loader
/// (from JSON) or by `job_builder` (from C++); immutable once built.
/// Every field's default is written here. No CAF header here.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/kserve_v2.hpp"
#include "backends/openai.hpp"
#include "policies/backoff.hpp"
#include "policies/batching.hpp"
#include "policies/circuit_breaker.hpp"
#include "policies/concurrency_limiter.hpp"
#include "policies/inflight_table.hpp"
#include "policies/load_probe.hpp"
#include "policies/load_profile.hpp"
#include "policies/record_attempts.hpp"
#include "policies/restart_strategy.hpp"
#include "policies/retry_budget.hpp"
#include "policies/routing.hpp"
#include "policies/stage_condition.hpp"

namespace sinfer {

enum class source_kind : uint8_t { jsonl, stdin_lines, generator };
/// `discard` counts records and writes nothing (load tests, the simulator).
enum class sink_kind : uint8_t { jsonl, stdout_lines, discard };
/// What happens to a record a model cannot score (`failure-action`).
enum class failure_action : uint8_t {
  dead_letter,    ///< the record, with its error, to the dead-letter file
  fail_job,       ///< the job fails with the record's error
  default_value,  ///< the configured `default-value` outputs are written
  fallback,       ///< the `fallback` model scores it instead
};

/// How each endpoint of a model learns its server's load (`probe.type`).
enum class probe_kind : uint8_t {
  in_band,     ///< estimated from the endpoint's own calls (latency, in flight)
  prometheus,  ///< scraped from the server's metrics page (HTTP providers)
  none,        ///< no load reading: the router sees queue depth 0
};

/// The config name of `k`: "in-band", "prometheus" or "none".
inline const char* to_string(probe_kind k) noexcept {
  switch (k) {
    case probe_kind::in_band: return "in-band";
    case probe_kind::prometheus: return "prometheus";
    case probe_kind::none: return "none";
  }
  return "unknown";
}

/// `models.NAME.probe`: the load probe of each endpoint of the model
/// (policies/load_probe.hpp says what readings mean to the router and the
/// limiter). Every field but `kind` is for `prometheus` only.
struct probe_config {
  /// `type`. Default in-band.
  probe_kind kind = probe_kind::in_band;
  /// `interval`: time from one scrape's start to the next (> 0; a scrape
  /// slower than this delays the next one). Default 1 s.
  std::chrono::nanoseconds interval = std::chrono::seconds{1};
  /// `path`: the metrics page on the endpoint's server. Default "/metrics".
  std::string path = "/metrics";
  /// `timeout`: the longest one scrape may take (connect and read), > 0.
  /// Default 500 ms.
  std::chrono::nanoseconds timeout = std::chrono::milliseconds{500};
  /// The metric names read: `queue-depth`, `running`, `queue-time-us`,
  /// `queue-time-requests`, `cache-usage` (defaults: Triton's and vLLM's,
  /// see probe_metric_names). `metrics.model` is not read: the model filter
  /// is `model_label_value`.
  probe_metric_names metrics;
  /// `model-label-value`: only series whose `model` or `model_name` label
  /// has this value count ("": every series). Unset: the model's name on
  /// the server (`model`).
  std::optional<std::string> model_label_value;
  /// `failure-threshold` (consecutive failed scrapes, >= 1; default 3) and
  /// `stale-after` (no answered scrape for this long, 0: never; default
  /// 30 s) make the endpoint suspect.
  probe_health_config health;
};

struct source_config {
  source_kind kind = source_kind::generator;
  /// Name used in record identities and dead letters (default: the path,
  /// "stdin" or "generator").
  std::string name;
  /// jsonl: the file to read.
  std::string path;
  /// jsonl, stdin (`max-record-bytes`): the longest line read as a record,
  /// in bytes (without its newline). A longer line is not buffered whole:
  /// the source keeps its first bytes (at most 1 KiB, never more than the
  /// limit) and skips the rest, and the record goes to the dead-letter file
  /// with a reason naming its size and this limit. 1..1073741824; default
  /// 16 MiB.
  uint64_t max_record_bytes = uint64_t{16} << 20;
  /// generator: how many records (default 1000; a config file with a
  /// `profile` and no `count` gets the records the profile holds). With a
  /// profile the generator ends at `count` records or at the profile's
  /// end, whichever comes first.
  uint64_t count = 1000;
  /// generator: records per second; 0 means as fast as credit allows.
  /// Not with a `profile`.
  double rate = 0;
  /// generator: `profile`, the load over time (policies/load_profile.hpp):
  /// segments in order (constant, ramp, diurnal, bursts); record i is
  /// emitted when the profile says it is due. Empty: paced by `rate`.
  std::vector<load_segment> profile;
  /// generator: a JSON object whose strings may hold placeholders:
  /// `${i}` (sequence number; a string that is exactly "${i}" becomes a
  /// number) and `${pick:a|b|c}` (a deterministic choice by i and seed).
  std::string record_template = R"({"id":"${i}","text":"${pick:great product|terrible service|it was ok}"})";
  /// generator: seed for `${pick:...}`.
  uint64_t seed = 1;
};

/// One endpoint of a model (`models.NAME.endpoints[i]`). Unset fields take
/// the model's values.
struct endpoint_config {
  /// Name in logs, metrics and reports. Default "NAME#i" (in-process) or the
  /// URL's host:port (HTTP providers).
  std::string name;
  /// HTTP providers: the server's base URL ("http://127.0.0.1:8000").
  std::string url;
  /// in-process: the options for this endpoint's instance (JSON text);
  /// empty means the model's `options`.
  std::string options_json;
  /// in-process: simulated service time of a call of b records,
  /// latency + b * latency-per-record; negative means the model's.
  std::chrono::nanoseconds latency{-1};
  std::chrono::nanoseconds latency_per_record{-1};
  /// Calls in flight at this endpoint, job-wide; 0 means the model's
  /// `concurrency.max`.
  uint32_t concurrency = 0;
  /// `routing.strategy` weighted: this endpoint's share (default 1).
  double weight = 1;
};

struct model_config {
  std::string name;
  /// "in-process", "http-json", "kserve-v2" or "openai".
  std::string provider = "in-process";
  /// http-json: false sends one record per request (`http.batched`).
  bool http_batched = true;
  /// kserve-v2: the model version (`kserve.version`; empty: the server's
  /// choice) and input tensors' datatypes and per-record shapes
  /// (`kserve.inputs.NAME.datatype` / `.shape`; the rest come from the
  /// model's metadata at start).
  std::string kserve_version;
  std::vector<kserve_tensor> kserve_inputs;
  /// openai: `openai.api` ("embeddings" or "chat"), `openai.encoding-format`,
  /// `openai.prompt`, `openai.system-prompt`, `openai.temperature`,
  /// `openai.max-tokens`.
  openai_api openai_kind = openai_api::embeddings;
  bool openai_api_set = false;
  std::string openai_encoding_format = "float";
  std::string openai_prompt;
  std::string openai_system_prompt;
  std::optional<double> openai_temperature;
  uint32_t openai_max_tokens = 0;
  /// http-json: request path, and the fields holding the records in the
  /// request and the results in the answer (`http.path`, `http.inputs-field`,
  /// `http.outputs-field`).
  std::string http_path = "/infer";
  std::string http_inputs_field = "inputs";
  std::string http_outputs_field = "outputs";
  /// HTTP providers: the API key (`api-key`, or read at start from the
  /// environment variable named by `api-key-env`), sent in `api-key-header`
  /// (default "Authorization", as "Bearer KEY"). Never logged or printed.
  std::string api_key;
  std::string api_key_env;
  std::string api_key_header = "Authorization";
  /// HTTPS: a CA bundle (PEM) to trust instead of the system's (`ca-file`).
  std::string ca_file;
  /// The registered in-process model, or the model's name on the server
  /// for HTTP providers (default: the model's own name).
  std::string model;
  /// The JSON text of `options`, passed to the model's factory.
  std::string options_json = "{}";
  /// Model input name -> record field it reads (default: same name).
  std::vector<std::pair<std::string, std::string>> input;
  /// Model output name -> record field it writes (default: every output
  /// under its own name).
  std::vector<std::pair<std::string, std::string>> output;
  /// Records in flight in this stage, per subtask (Flink's name). The stage
  /// grants its upstream exactly this much credit. Default 256.
  uint32_t max_concurrent_operations = 256;
  /// `batch.*`: max-size (default 64), max-delay (default 0), max-bytes
  /// (default 0: no cap).
  batch_config batch;
  /// The model's endpoints; an in-process model without `endpoints` has one.
  std::vector<endpoint_config> endpoints;
  /// `routing.strategy`: which endpoint gets each batch (load-aware,
  /// round-robin, weighted, primary-backup). Default load-aware.
  routing_strategy routing = routing_strategy::load_aware;
  /// `probe.*`: how each endpoint reads its server's load. Default in-band.
  probe_config probe;
  /// `concurrency.max`: calls in flight per endpoint, job-wide. Default 16.
  uint32_t concurrency_max = 16;
  /// `concurrency.limiter`: `fixed` (default: always `concurrency.max`),
  /// `aimd` or `gradient` (adaptive between `concurrency.min`, default 1,
  /// and the max, starting at `concurrency.initial`, default 4).
  limiter_kind limiter = limiter_kind::fixed;
  uint32_t concurrency_min = 1;
  uint32_t concurrency_initial = 4;
  /// `concurrency.pacing`: space call starts at partial load by latency /
  /// unqueued concurrency (policies/call_pacing.hpp). Default true.
  bool concurrency_pacing = true;

  /// Batchers choose between endpoints by load, and endpoints answer every
  /// want at once with theirs: load-aware routing over several endpoints.
  bool reports_load() const noexcept {
    return routing == routing_strategy::load_aware && endpoints.size() > 1;
  }
  /// Load-aware routing by finish time, where a batch may wait for a slot at
  /// a faster endpoint and endpoints tell the batchers holding unused slots
  /// when a call ends: under the gradient limiter only (actors/batcher.cpp,
  /// pump, says why).
  bool routes_by_finish_time() const noexcept {
    return reports_load() && limiter == limiter_kind::gradient;
  }

  /// in-process only: simulated service time of a call of b records,
  /// latency + b * latency-per-record (defaults 0: none).
  std::chrono::nanoseconds latency{0};
  std::chrono::nanoseconds latency_per_record{0};
  /// `timeout.attempt` (default 30 s) and `timeout.total` (default 120 s).
  timeout_config timeout;
  /// `retry.max-attempts`: attempts per record, the first included.
  /// Default 3.
  uint32_t retry_max_attempts = 3;
  /// `retry.initial-backoff`, `retry.max-backoff`, `retry.multiplier`,
  /// `retry.jitter` (defaults 50 ms, 10 s, 2, full).
  backoff_config backoff;
  /// `retry.budget-percent` (20) and `retry.min-retry-concurrency` (3).
  retry_budget_config retry_budget;
  /// `retry.seed`: seeds the jitter (per subtask: seed + subtask). Default 1.
  uint64_t retry_seed = 1;
  /// `breaker.subtask.*`: the per-subtask breaker of each endpoint.
  breaker_config subtask_breaker;
  /// `breaker.job.*`: the job-wide breaker of each endpoint.
  breaker_config job_breaker;
  /// `breaker.job.enabled`: false leaves only the subtask breakers.
  /// Default true.
  bool job_breaker_enabled = true;
  /// What happens to a record the model cannot score. Default dead-letter.
  failure_action on_failure = failure_action::dead_letter;
  /// `default-value`: output field -> raw JSON value, for the default-value
  /// failure action.
  std::vector<std::pair<std::string, std::string>> default_value;
  /// `fallback`: the model that scores records this one fails.
  std::string fallback;

  /// Calls in flight allowed at endpoint `i`.
  uint32_t endpoint_concurrency(size_t i) const {
    return endpoints[i].concurrency > 0 ? endpoints[i].concurrency : concurrency_max;
  }
};

struct sink_config {
  sink_kind kind = sink_kind::stdout_lines;
  std::string path;
};

/// `checkpoint.call-log`: which models' results go to the durable call log.
enum class call_log_mode : uint8_t {
  off,    ///< none (every call since the checkpoint is made again after a crash)
  remote, ///< calls to model servers (HTTP providers): the default. In-process
          ///< models cost less to run again than to log.
  all,    ///< every model, in-process ones too
};

/// `checkpoint`: checkpointed fault tolerance (runtime/state_store.hpp,
/// actors/checkpoint_coordinator.hpp). Off unless `checkpoint.dir` is set.
/// With it on, `sink.path` and `dead-letter.path` name directories of
/// parts (PREFIX-EPOCH.jsonl, published when the epoch's checkpoint
/// completes: exactly-once output), and `sinfer run` resumes from the
/// latest completed checkpoint in the directory.
struct checkpoint_config {
  /// `checkpoint.dir`: where the state store lives; empty: off.
  std::string dir;
  /// `checkpoint.interval`: time between checkpoints. Default 1 s.
  std::chrono::milliseconds interval{1000};
  /// `checkpoint.timeout`: a checkpoint not complete by then is abandoned
  /// (counted as failed; the next one covers its output). Default 60 s.
  std::chrono::milliseconds timeout{60000};
  /// `checkpoint.retain`: completed checkpoints kept. Default 3.
  uint32_t retain = 3;
  /// `checkpoint.call-log`: record completed calls' results so a restore
  /// answers from them instead of calling the model again: "remote"
  /// (default), "all", "off" (true and false mean "all" and "off").
  call_log_mode call_log = call_log_mode::remote;
  /// `checkpoint.call-log-sync`: fsync each call-log write (survives a
  /// machine crash, not only a process crash; slower). Default false.
  bool call_log_sync = false;

  bool enabled() const noexcept {
    return !dir.empty();
  }
};

/// `metrics`: the observability endpoint (runtime/metrics_server.hpp).
struct metrics_config {
  /// `metrics.port`: where /metrics, /healthz and /readyz are served; 0:
  /// any free port (logged); -1: off (no `metrics` key).
  int port = -1;
  /// `metrics.host`: the address to listen on. Default "127.0.0.1" (set
  /// "0.0.0.0" for a scraper on another host).
  std::string host = "127.0.0.1";
  /// `metrics.event-log`: a file that gets one JSON line per decision
  /// (runtime/event_log.hpp), appended to; empty: none.
  std::string event_log;
};

struct job_config {
  /// Where the config came from (for messages); empty when built in code.
  std::string file;
  std::string name = "job";
  /// Subtasks (parallel instances of the model stages). Default 1.
  uint32_t parallelism = 1;
  output_mode mode = output_mode::ordered;
  /// Record field whose value picks the subtask; empty means round-robin.
  std::string partition_by;
  /// `job.restart-strategy`: how crashed subtasks restart (Flink's names and
  /// defaults: exponential-delay from 1 s to 60 s).
  restart_config restart;
  source_config source;
  std::map<std::string, model_config> models;
  /// Model names, in the order records pass through them.
  std::vector<std::string> stages;
  /// `stages[i].when`: whether stage i applies to a record (empty, or
  /// shorter than `stages`: every stage applies).
  std::vector<stage_condition> stage_conditions;

  /// The condition of stage `i` (always, when none was given).
  stage_condition condition_of(size_t i) const {
    return i < stage_conditions.size() ? stage_conditions[i] : stage_condition{};
  }
  sink_config sink;
  /// Where records that cannot be scored go. Default "dead-letter.jsonl",
  /// created only when the first dead letter arrives. Empty (only in code:
  /// the simulator): dead letters are counted, not written.
  std::string dead_letter_path = "dead-letter.jsonl";
  /// `sink.buffer`: records the sink buffers per subtask (its credit).
  /// Default 1024.
  uint32_t sink_buffer = 1024;
  checkpoint_config checkpoint;
  metrics_config metrics;
};

} // namespace sinfer
