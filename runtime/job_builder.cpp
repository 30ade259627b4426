#include "runtime/job_builder.hpp"

#include "runtime/config_loader.hpp"
#include "runtime/json_text.hpp"

namespace sinfer {

namespace {
stage_condition string_condition(stage_condition::test kind, std::string field,
                                 const std::vector<std::string>& values) {
  stage_condition c;
  c.kind = kind;
  c.field = std::move(field);
  for (auto& v : values)
    c.values.push_back(json_quote(v)); // escaped as simdjson minifies the record's value
  return c;
}
} // namespace

stage_condition when_equals(std::string field, std::string_view value) {
  return string_condition(stage_condition::test::equals, std::move(field), {std::string{value}});
}

stage_condition when_not_equals(std::string field, std::string_view value) {
  return string_condition(stage_condition::test::not_equals, std::move(field), {std::string{value}});
}

stage_condition when_in(std::string field, const std::vector<std::string>& values) {
  return string_condition(stage_condition::test::in, std::move(field), values);
}

stage_condition when_exists(std::string field) {
  return string_condition(stage_condition::test::exists, std::move(field), {});
}

model_spec::model_spec(std::string name, std::string in_process_model) {
  cfg_.name = std::move(name);
  cfg_.model = std::move(in_process_model);
}

model_spec& model_spec::provider(std::string name) {
  cfg_.provider = std::move(name);
  return *this;
}

model_spec& model_spec::api_key(std::string key) {
  cfg_.api_key = std::move(key);
  return *this;
}

model_spec& model_spec::api_key_env(std::string variable) {
  cfg_.api_key_env = std::move(variable);
  return *this;
}

model_spec& model_spec::ca_file(std::string path) {
  cfg_.ca_file = std::move(path);
  return *this;
}

model_spec& model_spec::input(std::string model_input, std::string field) {
  cfg_.input.emplace_back(std::move(model_input), std::move(field));
  return *this;
}

model_spec& model_spec::output(std::string model_output, std::string field) {
  cfg_.output.emplace_back(std::move(model_output), std::move(field));
  return *this;
}

model_spec& model_spec::options(std::string json) {
  cfg_.options_json = std::move(json);
  return *this;
}

model_spec& model_spec::max_concurrent_operations(uint32_t n) {
  cfg_.max_concurrent_operations = n;
  return *this;
}

model_spec& model_spec::batch_max_size(uint32_t n) {
  cfg_.batch.max_size = n;
  return *this;
}

model_spec& model_spec::batch(batch_config b) {
  cfg_.batch = b;
  return *this;
}

model_spec& model_spec::latency(std::chrono::nanoseconds fixed, std::chrono::nanoseconds per_record) {
  cfg_.latency = fixed;
  cfg_.latency_per_record = per_record;
  return *this;
}

model_spec& model_spec::endpoint(endpoint_config ep) {
  if (ep.name.empty() && !ep.url.empty())
    ep.name = ep.url.substr(ep.url.find("//") == std::string::npos ? 0 : ep.url.find("//") + 2);
  if (ep.name.empty())
    ep.name = cfg_.name + "#" + std::to_string(cfg_.endpoints.size());
  cfg_.endpoints.push_back(std::move(ep));
  return *this;
}

model_spec& model_spec::concurrency(uint32_t max_calls) {
  cfg_.concurrency_max = max_calls;
  return *this;
}

model_spec& model_spec::routing(routing_strategy strategy) {
  cfg_.routing = strategy;
  return *this;
}

model_spec& model_spec::probe(probe_config p) {
  cfg_.probe = std::move(p);
  return *this;
}

model_spec& model_spec::kserve(std::string version, std::vector<kserve_tensor> inputs) {
  cfg_.kserve_version = std::move(version);
  cfg_.kserve_inputs = std::move(inputs);
  return *this;
}

model_spec& model_spec::openai_embeddings(std::string encoding_format) {
  cfg_.openai_kind = openai_api::embeddings;
  cfg_.openai_api_set = true;
  cfg_.openai_encoding_format = std::move(encoding_format);
  return *this;
}

model_spec& model_spec::openai_chat(std::string prompt, std::string system_prompt, std::optional<double> temperature,
                                    uint32_t max_tokens) {
  cfg_.openai_kind = openai_api::chat;
  cfg_.openai_api_set = true;
  cfg_.openai_prompt = std::move(prompt);
  cfg_.openai_system_prompt = std::move(system_prompt);
  cfg_.openai_temperature = temperature;
  cfg_.openai_max_tokens = max_tokens;
  return *this;
}

model_spec& model_spec::limiter(limiter_kind kind, uint32_t min_calls, uint32_t initial) {
  cfg_.limiter = kind;
  cfg_.concurrency_min = min_calls;
  cfg_.concurrency_initial = initial;
  return *this;
}

model_spec& model_spec::pacing(bool on) {
  cfg_.concurrency_pacing = on;
  return *this;
}

model_spec& model_spec::timeout(std::chrono::nanoseconds attempt, std::chrono::nanoseconds total) {
  cfg_.timeout.attempt = attempt;
  cfg_.timeout.total = total;
  return *this;
}

model_spec& model_spec::retry(uint32_t max_attempts, backoff_config backoff) {
  cfg_.retry_max_attempts = max_attempts;
  cfg_.backoff = backoff;
  return *this;
}

model_spec& model_spec::retry_budget(retry_budget_config budget) {
  cfg_.retry_budget = budget;
  return *this;
}

model_spec& model_spec::subtask_breaker(breaker_config b) {
  cfg_.subtask_breaker = b;
  return *this;
}

model_spec& model_spec::job_breaker(breaker_config b, bool enabled) {
  cfg_.job_breaker = b;
  cfg_.job_breaker_enabled = enabled;
  return *this;
}

model_spec& model_spec::default_value(std::string field, std::string json) {
  cfg_.on_failure = failure_action::default_value;
  cfg_.default_value.emplace_back(std::move(field), std::move(json));
  return *this;
}

model_spec& model_spec::fallback(std::string model_name) {
  cfg_.on_failure = failure_action::fallback;
  cfg_.fallback = std::move(model_name);
  return *this;
}

model_spec& model_spec::on_failure(failure_action action) {
  cfg_.on_failure = action;
  return *this;
}

job_builder::job_builder(std::string name) {
  cfg_.name = std::move(name);
}

job_builder& job_builder::parallelism(uint32_t p) {
  cfg_.parallelism = p;
  return *this;
}

job_builder& job_builder::output(output_mode mode) {
  cfg_.mode = mode;
  return *this;
}

job_builder& job_builder::partition_by(std::string field) {
  cfg_.partition_by = std::move(field);
  return *this;
}

job_builder& job_builder::restart_strategy(restart_config cfg) {
  cfg_.restart = cfg;
  return *this;
}

job_builder& job_builder::source_jsonl(std::string path) {
  cfg_.source.kind = source_kind::jsonl;
  cfg_.source.name = path;
  cfg_.source.path = std::move(path);
  return *this;
}

job_builder& job_builder::source_stdin() {
  cfg_.source.kind = source_kind::stdin_lines;
  cfg_.source.name = "stdin";
  return *this;
}

job_builder& job_builder::source_generator(uint64_t count, std::string record_template, double rate,
                                           uint64_t seed) {
  cfg_.source.kind = source_kind::generator;
  cfg_.source.name = "generator";
  cfg_.source.count = count;
  if (!record_template.empty())
    cfg_.source.record_template = std::move(record_template);
  cfg_.source.rate = rate;
  cfg_.source.seed = seed;
  return *this;
}

job_builder& job_builder::model(const model_spec& spec) {
  cfg_.models[spec.config().name] = spec.config();
  return *this;
}

job_builder& job_builder::stage(std::string model_name, stage_condition when) {
  cfg_.stage_conditions.resize(cfg_.stages.size());
  cfg_.stage_conditions.push_back(std::move(when));
  cfg_.stages.push_back(std::move(model_name));
  return *this;
}

job_builder& job_builder::stage(std::string model_name) {
  cfg_.stages.push_back(std::move(model_name));
  return *this;
}

job_builder& job_builder::sink_jsonl(std::string path) {
  cfg_.sink.kind = sink_kind::jsonl;
  cfg_.sink.path = std::move(path);
  return *this;
}

job_builder& job_builder::sink_stdout() {
  cfg_.sink.kind = sink_kind::stdout_lines;
  cfg_.sink.path.clear();
  return *this;
}

job_builder& job_builder::sink_buffer(uint32_t records) {
  cfg_.sink_buffer = records;
  return *this;
}

job_builder& job_builder::checkpoint(checkpoint_config cfg) {
  cfg_.checkpoint = std::move(cfg);
  return *this;
}

job_builder& job_builder::source_max_record_bytes(uint64_t bytes) {
  cfg_.source.max_record_bytes = bytes;
  return *this;
}

job_builder& job_builder::metrics(metrics_config cfg) {
  cfg_.metrics = std::move(cfg);
  return *this;
}

job_builder& job_builder::dead_letter(std::string path) {
  cfg_.dead_letter_path = std::move(path);
  return *this;
}

job_config job_builder::build(const model_registry& models) const {
  auto cfg = cfg_;
  auto errors = check_job_config(cfg, models);
  if (!errors.empty()) {
    std::string all;
    for (auto& e : errors)
      all += (all.empty() ? "" : "\n") + e;
    throw invalid_job{all};
  }
  return cfg;
}

} // namespace sinfer
