#pragma once
/// The C++ API for describing a job: the same job a config file describes,
/// built in code and validated by the same rules. No CAF header here.
///
///   auto models = sinfer::model_registry::with_builtins();
///   auto cfg = sinfer::job_builder{"reviews"}
///                .parallelism(2)
///                .source_jsonl("reviews.jsonl")
///                .model(sinfer::model_spec{"sentiment", "keyword-classifier"}
///                         .input("text", "review").output("label", "sentiment"))
///                .stage("sentiment")
///                .sink_jsonl("out.jsonl")
///                .build(models);
///   auto report = sinfer::run_job(cfg, models);

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "backends/in_process.hpp"
#include "runtime/job_config.hpp"

namespace sinfer {

/// One model, as `models.NAME` in a config file.
class model_spec {
public:
  /// A model named `name` served by the in-process model `in_process_model`.
  model_spec(std::string name, std::string in_process_model);

  /// The provider: "in-process" (default), "http-json", "kserve-v2" or
  /// "openai". For HTTP providers the constructor's second argument is the
  /// model's name on the server.
  model_spec& provider(std::string name);
  /// kserve-v2: the model version (empty: the server's) and input tensor
  /// datatypes/shapes (`kserve.*`; the rest come from the metadata).
  model_spec& kserve(std::string version, std::vector<kserve_tensor> inputs = {});
  /// openai: the embeddings API (`encoding_format` "float" or "base64").
  model_spec& openai_embeddings(std::string encoding_format = "float");
  /// openai: the chat API, the user message from `prompt` (${field}
  /// placeholders), an optional system prompt, temperature and max tokens.
  model_spec& openai_chat(std::string prompt, std::string system_prompt = {},
                          std::optional<double> temperature = {}, uint32_t max_tokens = 0);
  /// HTTP providers: the API key, or the environment variable holding it.
  model_spec& api_key(std::string key);
  model_spec& api_key_env(std::string variable);
  /// HTTPS: trust this CA bundle (PEM) instead of the system's.
  model_spec& ca_file(std::string path);
  /// Reads record field `field` as model input `model_input`.
  model_spec& input(std::string model_input, std::string field);
  /// Writes model output `model_output` to record field `field`.
  model_spec& output(std::string model_output, std::string field);
  /// The model's options object, as JSON text.
  model_spec& options(std::string json);
  model_spec& max_concurrent_operations(uint32_t n);
  model_spec& batch_max_size(uint32_t n);
  /// `batch.*` (max-size, max-delay, max-bytes).
  model_spec& batch(batch_config b);
  /// Simulated service time of a call of b records: `fixed + b * per_record`
  /// (in-process only).
  model_spec& latency(std::chrono::nanoseconds fixed, std::chrono::nanoseconds per_record = {});
  /// Adds an endpoint (`endpoints[i]`); without any, the model has one.
  model_spec& endpoint(endpoint_config ep);
  /// `concurrency.max`: calls in flight per endpoint.
  model_spec& concurrency(uint32_t max_calls);
  /// `concurrency.limiter`, `concurrency.min` and `concurrency.initial`.
  model_spec& limiter(limiter_kind kind, uint32_t min_calls = 1, uint32_t initial = 4);
  /// `concurrency.pacing` (default on): space the starts of calls of one
  /// partial batch (policies/call_pacing.hpp).
  model_spec& pacing(bool on);
  /// `routing.strategy` (endpoint weights: `endpoint_config::weight`).
  model_spec& routing(routing_strategy strategy);
  /// `probe.*`: how each endpoint reads its server's load (`prometheus`
  /// for HTTP providers only).
  model_spec& probe(probe_config p);
  /// `timeout.attempt` and `timeout.total` (0: none).
  model_spec& timeout(std::chrono::nanoseconds attempt, std::chrono::nanoseconds total);
  /// `retry.max-attempts` and the backoff (`retry.initial-backoff`, ...).
  model_spec& retry(uint32_t max_attempts, backoff_config backoff = {});
  /// `retry.budget-percent` and `retry.min-retry-concurrency`.
  model_spec& retry_budget(retry_budget_config budget);
  /// `breaker.subtask.*`.
  model_spec& subtask_breaker(breaker_config b);
  /// `breaker.job.*`; `enabled` false leaves subtask breakers only.
  model_spec& job_breaker(breaker_config b, bool enabled = true);
  /// The failure action; `default_value` and `fallback` set theirs.
  model_spec& on_failure(failure_action action);
  /// failure-action default-value, writing `json` (raw JSON) to `field`.
  model_spec& default_value(std::string field, std::string json);
  /// failure-action fallback to the model named `model_name`.
  model_spec& fallback(std::string model_name);

  const model_config& config() const noexcept {
    return cfg_;
  }

private:
  model_config cfg_;
};

/// Stage conditions (`stages[i].when`) for `job_builder::stage(name, when)`,
/// comparing a record's top-level field with string values. For other JSON
/// values, fill a stage_condition with minified JSON text yourself.
stage_condition when_equals(std::string field, std::string_view value);
stage_condition when_not_equals(std::string field, std::string_view value);
stage_condition when_in(std::string field, const std::vector<std::string>& values);
stage_condition when_exists(std::string field);

/// Thrown by `job_builder::build` with every validation error, one per line.
class invalid_job : public std::invalid_argument {
public:
  using std::invalid_argument::invalid_argument;
};

class job_builder {
public:
  explicit job_builder(std::string name);

  job_builder& parallelism(uint32_t p);
  job_builder& output(output_mode mode);
  job_builder& partition_by(std::string field);
  /// `job.restart-strategy`.
  job_builder& restart_strategy(restart_config cfg);
  job_builder& source_jsonl(std::string path);
  job_builder& source_stdin();
  /// `source.max-record-bytes`: the longest line a jsonl or stdin source
  /// reads as a record (default 16 MiB); a longer line is dead-lettered.
  job_builder& source_max_record_bytes(uint64_t bytes);
  /// `count` records from `record_template` (see source_config), at `rate`
  /// records/s (0: as fast as credit allows).
  job_builder& source_generator(uint64_t count, std::string record_template = {}, double rate = 0,
                                uint64_t seed = 1);
  job_builder& model(const model_spec& spec);
  job_builder& stage(std::string model_name);
  /// A stage that applies only to records `when` matches (others pass it
  /// untouched).
  job_builder& stage(std::string model_name, stage_condition when);
  job_builder& sink_jsonl(std::string path);
  job_builder& sink_stdout();
  job_builder& sink_buffer(uint32_t records);
  job_builder& dead_letter(std::string path);
  /// Checkpointed fault tolerance (job_config::checkpoint): the sink and
  /// dead-letter paths become directories of parts.
  job_builder& checkpoint(checkpoint_config cfg);
  /// `metrics.*`: /metrics, /healthz, /readyz and /status on `port` (0:
  /// any free port, reported through run_options::on_metrics) and the
  /// event log file.
  job_builder& metrics(metrics_config cfg);

  /// Validates against `models` and returns the config; throws invalid_job.
  job_config build(const model_registry& models) const;

private:
  job_config cfg_;
};

} // namespace sinfer
