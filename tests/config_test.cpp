// The config loader: defaults, valid configs, and errors that name the key.
// (The table of bad configs through the `sinfer` command is in cli_test.cpp.)

#include <doctest/doctest.h>

#include <string>

#include "runtime/config_loader.hpp"
#include "runtime/job_builder.hpp"

using namespace sinfer;

namespace {

const char* minimal = R"({
  "source": {"type": "generator", "count": 10},
  "models": {"sentiment": {"model": "keyword-classifier", "input": {"text": "review"}}},
  "stages": ["sentiment"],
  "sink": {"type": "stdout"}
})";

bool has_line(const std::vector<std::string>& lines, const std::string& needle) {
  for (auto& l : lines)
    if (l.find(needle) != std::string::npos)
      return true;
  return false;
}

/// `json` (as job.json) is rejected with an error line holding
/// "job.json: " + `expected`; returns every error, a line each.
std::string check_rejected(const std::string& json, const std::string& expected, const model_registry& models) {
  auto res = parse_job_config(json, "job.json", models);
  CHECK_FALSE(res.config.has_value());
  std::string all;
  for (auto& e : res.errors)
    all += e + "\n";
  CAPTURE(all);
  CHECK(has_line(res.errors, "job.json: " + expected));
  return all;
}

} // namespace

TEST_CASE("a minimal config gets every default") {
  auto models = model_registry::with_builtins();
  auto r = parse_job_config(minimal, "job.json", models);
  REQUIRE(r.errors.empty());
  auto& c = *r.config;
  CHECK(c.name == "job");
  CHECK(c.parallelism == 1);
  CHECK(c.mode == output_mode::ordered);
  CHECK(c.partition_by.empty());
  CHECK(c.source.kind == source_kind::generator);
  CHECK(c.source.count == 10);
  CHECK(c.dead_letter_path == "dead-letter.jsonl");
  CHECK(c.sink_buffer == 1024);
  auto& m = c.models.at("sentiment");
  CHECK(m.provider == "in-process");
  CHECK(m.max_concurrent_operations == 256);
  CHECK(m.batch.max_size == 64);
  CHECK(m.on_failure == failure_action::dead_letter);
  CHECK(m.latency.count() == 0);
  // Outputs default to every model output under its own name.
  REQUIRE(m.output.size() == 2);
  CHECK(m.output[0] == std::make_pair(std::string{"label"}, std::string{"label"}));
  CHECK(m.output[1] == std::make_pair(std::string{"score"}, std::string{"score"}));
  REQUIRE(m.input.size() == 1);
  CHECK(m.input[0] == std::make_pair(std::string{"text"}, std::string{"review"}));
}

TEST_CASE("the shipped quickstart config is valid") {
  auto models = model_registry::with_builtins();
  auto r = load_job_config(SINFER_SOURCE_DIR "/examples/quickstart.json", models);
  for (auto& e : r.errors)
    MESSAGE(e);
  REQUIRE(r.errors.empty());
  CHECK(r.config->stages.size() == 2);
  CHECK(r.config->parallelism == 2);
  CHECK(r.config->source.count >= 100000);
}

TEST_CASE("the shipped resilience example is valid and uses what it shows") {
  auto models = model_registry::with_builtins();
  auto r = load_job_config(SINFER_SOURCE_DIR "/examples/resilience.json", models);
  for (auto& e : r.errors)
    MESSAGE(e);
  REQUIRE(r.errors.empty());
  auto& m = r.config->models.at("sentiment");
  CHECK(m.endpoints.size() == 2);
  CHECK(m.on_failure == failure_action::fallback);
  CHECK(r.config->models.at("length-only").on_failure == failure_action::default_value);
  CHECK(r.config->restart.kind == restart_kind::fixed_delay);
}

TEST_CASE("all errors are reported at once, each with the file and key path") {
  auto models = model_registry::with_builtins();
  auto r = parse_job_config(R"({
    "job": {"parallelism": 0, "output-mode": "sorted", "paralelism": 2},
    "source": {"type": "generator", "count": -1},
    "models": {"m": {"model": "noop", "max-concurrent-operations": "ten", "batch": {"max-size": 0}}},
    "stages": ["m"],
    "sink": {"type": "jsonl"}
  })", "bad.json", models);
  CHECK_FALSE(r.config);
  for (auto& e : r.errors)
    CHECK(e.rfind("bad.json: ", 0) == 0);
  CHECK(has_line(r.errors, "bad.json: job.parallelism: expected an integer in 1..1024, got 0"));
  CHECK(has_line(r.errors, "job.output-mode: expected one of \"ordered\" | \"unordered\", got \"sorted\""));
  CHECK(has_line(r.errors, "job.paralelism: unknown key (did you mean 'parallelism'?)"));
  CHECK(has_line(r.errors, "source.count: expected an integer >= 0, got -1"));
  CHECK(has_line(r.errors, "models.m.max-concurrent-operations: expected an integer in 1..1000000, got \"ten\""));
  CHECK(has_line(r.errors, "models.m.batch.max-size: expected an integer in 1..100000, got 0"));
  CHECK(has_line(r.errors, "sink.path: missing required key"));
  CHECK(r.errors.size() == 7);
}

TEST_CASE("model checks: unknown model, input and output names suggest the closest") {
  auto models = model_registry::with_builtins();
  auto r = parse_job_config(R"({
    "source": {"type": "generator"},
    "models": {
      "a": {"model": "keyword-clasifier"},
      "b": {"model": "keyword-classifier", "input": {"txt": "review"}, "output": {"labels": "x"}},
      "c": {"model": "hash-embedder", "options": {"dimensions": 0}}
    },
    "stages": ["a", "b", "c", "d"],
    "sink": {"type": "stdout"}
  })", "m.json", models);
  CHECK(has_line(r.errors, "models.a.model: no in-process model named \"keyword-clasifier\" (did you mean 'keyword-classifier'?)"));
  CHECK(has_line(r.errors, "models.b.input.txt: model \"keyword-classifier\" has no input named \"txt\" (did you mean 'text'?)"));
  CHECK(has_line(r.errors, "models.b.output.labels: model \"keyword-classifier\" has no output named \"labels\" (did you mean 'label'?)"));
  CHECK(has_line(r.errors, "models.c.options.dimensions: expected an integer in 1..4096, got 0"));
  CHECK(has_line(r.errors, "stages[3]: no model named \"d\" in models"));
}

TEST_CASE("job_builder validates with the same rules as files") {
  auto models = model_registry::with_builtins();
  CHECK_THROWS_AS(job_builder{"x"}.source_generator(5).stage("missing").sink_stdout().build(models), invalid_job);
  try {
    job_builder{"x"}
      .source_generator(5)
      .model(model_spec{"m", "keyword-classifier"}.input("txt", "review"))
      .stage("m")
      .sink_stdout()
      .build(models);
    FAIL("expected invalid_job");
  } catch (const invalid_job& e) {
    CHECK(std::string{e.what()}.find("models.m.input.txt") != std::string::npos);
  }
  auto cfg = job_builder{"ok"}
               .source_generator(5)
               .model(model_spec{"m", "keyword-classifier"}.input("text", "review"))
               .stage("m")
               .sink_stdout()
               .build(models);
  CHECK(cfg.models.at("m").output.size() == 2);
}

TEST_CASE("duplicate keys, duplicate output fields and follow-on errors") {
  auto models = model_registry::with_builtins();
  auto r = parse_job_config(R"({
    "job": {"parallelism": 2, "parallelism": 0},
    "source": {"type": "kafka", "path": "x"},
    "models": {
      "m": {"model": "keyword-classifier", "output": {"label": "x", "score": "x"}},
      "m": {"model": "noop"}
    },
    "stages": ["m"],
    "sink": {"type": "stdout", "buffer": 4}
  })", "d.json", models);
  CHECK(has_line(r.errors, "d.json: job.parallelism: duplicate key"));
  CHECK(has_line(r.errors, "d.json: models.m: duplicate model name"));
  CHECK(has_line(r.errors, "source.type: expected one of"));
  // No "path: only valid when..." noise after a bad type.
  CHECK_FALSE(has_line(r.errors, "source.path"));
  CHECK(r.errors.size() == 3);
  auto o = parse_job_config(R"({
    "source": {"type": "generator", "rate": 1e-300},
    "models": {"m": {"model": "keyword-classifier", "output": {"label": "x", "score": "x"}}},
    "stages": ["m"],
    "sink": {"type": "stdout"}
  })", "o.json", models);
  CHECK(has_line(o.errors, "o.json: source.rate: expected 0 (as fast as credit allows) or at least 0.001 records/s"));
  CHECK(o.errors.size() == 1); // the model checks run only on an otherwise valid file
  auto p = parse_job_config(R"({
    "source": {"type": "generator"},
    "models": {"m": {"model": "keyword-classifier", "output": {"label": "x", "score": "x"}}},
    "stages": ["m"],
    "sink": {"type": "stdout"}
  })", "p.json", models);
  CHECK(has_line(p.errors, "p.json: models.m.output.score: writes field \"x\", which output \"label\" already writes"));
}

TEST_CASE("resilience keys: defaults and values read from a file") {
  auto models = model_registry::with_builtins();
  auto r = parse_job_config(R"({
    "source": {"type": "generator", "count": 10},
    "models": {
      "m": {"model": "keyword-classifier",
            "endpoints": [{"name": "a"}, {"name": "b", "latency": "5ms", "concurrency": 2}],
            "concurrency": {"max": 8, "pacing": false},
            "batch": {"max-size": 32, "max-delay": "2ms", "max-bytes": 4096},
            "timeout": {"attempt": "1s", "total": "10s"},
            "retry": {"max-attempts": 5, "initial-backoff": "100ms", "max-backoff": "2s",
                      "jitter": "decorrelated", "budget-percent": 10, "min-retry-concurrency": 5},
            "breaker": {"subtask": {"failure-rate": 0.3, "minimum-calls": 7, "window": "time",
                                    "window-duration": "30s"},
                        "job": {"half-open-probes": 2, "open-duration": "1s", "enabled": true}},
            "failure-action": "fallback", "fallback": "n"},
      "n": {"model": "text-length", "failure-action": "default-value", "default-value": {"length": -1}}
    },
    "stages": ["m"],
    "sink": {"type": "stdout"}
  })", "job.json", models);
  for (auto& e : r.errors)
    MESSAGE(e);
  REQUIRE(r.errors.empty());
  auto& m = r.config->models.at("m");
  REQUIRE(m.endpoints.size() == 2);
  CHECK(m.endpoints[1].name == "b");
  CHECK(m.endpoint_concurrency(0) == 8);
  CHECK(m.endpoint_concurrency(1) == 2);
  CHECK(m.endpoints[1].latency == std::chrono::milliseconds{5});
  CHECK(m.batch.max_size == 32);
  CHECK(m.batch.max_delay == std::chrono::milliseconds{2});
  CHECK(m.batch.max_bytes == 4096);
  CHECK_FALSE(m.concurrency_pacing);
  CHECK(m.timeout.attempt == std::chrono::seconds{1});
  CHECK(m.timeout.total == std::chrono::seconds{10});
  CHECK(m.retry_max_attempts == 5);
  CHECK(m.backoff.initial == std::chrono::milliseconds{100});
  CHECK(m.backoff.jitter == jitter_mode::decorrelated);
  CHECK(m.retry_budget.budget_percent == 10.0);
  CHECK(m.retry_budget.min_retry_concurrency == 5);
  CHECK(m.subtask_breaker.failure_rate == 0.3);
  CHECK(m.subtask_breaker.minimum_calls == 7);
  CHECK(m.subtask_breaker.window == window_kind::time);
  CHECK(m.job_breaker.half_open_probes == 2);
  CHECK(m.job_breaker_enabled);
  CHECK(m.on_failure == failure_action::fallback);
  CHECK(m.fallback == "n");
  auto& n = r.config->models.at("n");
  CHECK(n.on_failure == failure_action::default_value);
  REQUIRE(n.default_value.size() == 1);
  CHECK(n.default_value[0] == std::make_pair(std::string{"length"}, std::string{"-1"}));
  // Defaults of a model without these keys.
  CHECK(n.endpoints.size() == 1);
  CHECK(n.concurrency_max == 16);
  CHECK(n.concurrency_pacing);
  CHECK(n.timeout.attempt == std::chrono::seconds{30});
  CHECK(n.timeout.total == std::chrono::seconds{120});
  CHECK(n.retry_max_attempts == 3);
  CHECK(n.backoff.jitter == jitter_mode::full);
  CHECK(n.retry_budget.budget_percent == 20.0);
  CHECK(n.job_breaker.half_open_probes == 3);
}

TEST_CASE("resilience keys: bad values name the key path") {
  auto models = model_registry::with_builtins();
  struct row {
    const char* model_json;
    const char* expected;
  };
  std::vector<row> rows = {
    {R"("retry": {"jitter": "random"})", "models.m.retry.jitter: expected one of \"none\" | \"full\""},
    {R"("retry": {"max-attempts": 0})", "models.m.retry.max-attempts: expected an integer in 1..1000, got 0"},
    {R"("retry": {"initial-backoff": "1s", "max-backoff": "10ms"})",
     "models.m.retry.max-backoff: expected at least retry.initial-backoff"},
    {R"("retry": {"budget-percent": 150})", "models.m.retry.budget-percent: expected a number in 0..100"},
    {R"("timeout": {"attempt": "0s"})", "models.m.timeout.attempt: expected a duration > 0"},
    {R"("timeout": {"total": "soon"})", "models.m.timeout.total: expected a duration string"},
    {R"("breaker": {"subtask": {"failure-rate": 2}})", "models.m.breaker.subtask.failure-rate: expected a number in 0.01..1"},
    {R"("breaker": {"job": {"enabled": "yes"}})", "models.m.breaker.job.enabled: expected true or false"},
    {R"("breaker": {"job": {"half-open-probe": 2}})",
     "models.m.breaker.job.half-open-probe: unknown key (did you mean 'half-open-probes'?)"},
    {R"("endpoints": [{"name": "a"}, {"name": "a"}])",
     "models.m.endpoints[1].name: another endpoint of this model is already named \"a\""},
    {R"("endpoints": [])", "models.m.endpoints: expected at least one endpoint"},
    {R"("endpoints": ["http://x"])", "models.m.endpoints[0].url: only valid for HTTP providers"},
    {R"("endpoints": [5])", "models.m.endpoints[0]: expected an endpoint URL or object"},
    // Found by the job_config fuzzer: an empty URL string was read as an
    // (uninitialised) endpoint object.
    {R"("endpoints": [""])", "models.m.endpoints[0]: expected an endpoint URL such as"},
    {R"("api-key": "k")", "models.m.api-key: only valid for HTTP providers"},
    {R"("concurrency": {"limiter": "magic"})",
     "models.m.concurrency.limiter: expected one of \"fixed\" | \"aimd\" | \"gradient\""},
    {R"("concurrency": {"max": 2, "min": 4})", "models.m.concurrency.min: expected at most concurrency.max (2)"},
    {R"("concurrency": {"pacing": "off"})", "models.m.concurrency.pacing: expected true or false, got \"off\""},
    {R"("provider": "http-json", "endpoints": ["http://h:1"], "input": {"t": "t"}, "output": {"l": "l"},
        "api-key-env": "SINFER_SURELY_UNSET_VARIABLE")",
     "models.m.api-key-env: the environment variable SINFER_SURELY_UNSET_VARIABLE is not set"},
    {R"("provider": "http-json", "endpoints": ["http://h:1"], "input": {"t": "t"}, "output": {"l": "l"},
        "api-key": "a", "api-key-env": "HOME")", "models.m.api-key-env: give either api-key or api-key-env, not both"},
    {R"("provider": "http-json", "input": {"text": "t"}, "output": {"label": "l"})",
     "models.m.endpoints: missing required key for provider \"http-json\""},
    {R"("provider": "http-json", "endpoints": ["ftp://x"], "input": {"text": "t"}, "output": {"label": "l"})",
     "models.m.endpoints[0]: expected a URL starting with http:// or https://"},
    {R"("provider": "http-json", "endpoints": ["http://h:1/v1"], "input": {"text": "t"}, "output": {"label": "l"})",
     "models.m.endpoints[0]: expected scheme://host:port with no path (the path is http.path)"},
    {R"("provider": "http-json", "endpoints": [{"url": "https://user:sk-secret@h:1"}], "input": {"t": "t"},
        "output": {"l": "l"})", "models.m.endpoints[0].url: credentials in a URL are not supported"},
    {R"("provider": "http-json", "endpoints": ["http://h:1"], "input": {"t": "t"}, "output": {"l": "l"},
        "api-key": ["sk-secret"])", "models.m.api-key: expected a non-empty string (value not shown)"},
    {R"("provider": "http-json", "endpoints": ["http://h:1"], "input": {"t": "t"}, "output": {"l": "l"},
        "api-key-env": "sk-secret-pasted-here")", "models.m.api-key-env: expected the name of a set environment variable"},
    {R"("provider": "http-json", "endpoints": ["http://127.0.0.1:1"], "output": {"label": "l"})",
     "models.m.input: missing required key for provider \"http-json\""},
    {R"("provider": "http-json", "endpoints": [{"name": "a"}], "input": {"t": "t"}, "output": {"l": "l"})",
     "models.m.endpoints[0].url: missing required key for provider \"http-json\""},
    {R"("provider": "http-json", "endpoints": ["http://h:1"], "input": {"t": "t"}, "output": {"l": "l"},
        "http": {"path": "infer"})", "models.m.http.path: expected a path starting with '/'"},
    {R"("failure-action": "default-value")", "models.m.default-value: missing required key"},
    {R"("failure-action": "default-value", "default-value": {"colour": "red"})",
     "models.m.default-value.colour: not an output field of this model"},
    {R"("default-value": {"label": "x"})", "models.m.default-value: only used when failure-action is \"default-value\""},
    {R"("failure-action": "fallback")", "models.m.fallback: missing required key"},
    {R"("failure-action": "fallback", "fallback": "nope")", "models.m.fallback: no model named \"nope\" in models"},
    {R"("failure-action": "fallback", "fallback": "m")", "models.m.fallback: the fallback chain loops: m -> m"},
    {R"("batch": {"max-delay": 5})", "models.m.batch.max-delay: expected a duration string"},
  };
  for (auto& r : rows) {
    CAPTURE(r.model_json);
    std::string json = R"({"source": {"type": "generator"}, "models": {"m": {"model": "keyword-classifier", )"
                       + std::string{r.model_json} + R"(}}, "stages": ["m"], "sink": {"type": "stdout"}})";
    auto all = check_rejected(json, r.expected, models);
    CHECK(all.find("sk-secret") == std::string::npos);
  }
}

TEST_CASE("job.restart-strategy: Flink's names, keys checked against the type") {
  auto models = model_registry::with_builtins();
  struct row {
    const char* strategy;
    const char* error; // empty: valid
  };
  std::vector<row> rows = {
    {R"({"type": "fixed-delay", "attempts": 5, "delay": "2s"})", ""},
    {R"({"type": "failure-rate", "max-failures-per-interval": 2, "failure-rate-interval": "1m", "delay": "1s"})", ""},
    {R"({"type": "exponential-delay", "initial-backoff": "100ms", "max-backoff": "5s"})", ""},
    {R"({"type": "none"})", ""},
    {R"({"type": "restart-forever"})", "job.restart-strategy.type: expected one of \"none\" | \"fixed-delay\""},
    {R"({"type": "fixed-delay", "max-backoff": "5s"})",
     "job.restart-strategy.max-backoff: only valid when type is \"exponential-delay\""},
    {R"({"type": "exponential-delay", "attempts": 3})",
     "job.restart-strategy.attempts: only valid when type is \"fixed-delay\""},
    {R"({"type": "fixed-delay", "delay": "soon"})", "job.restart-strategy.delay: expected a duration string"},
  };
  for (auto& r : rows) {
    CAPTURE(r.strategy);
    std::string json = R"({"job": {"restart-strategy": )" + std::string{r.strategy}
                       + R"(}, "source": {"type": "generator"}, "models": {"m": {"model": "noop"}},
                          "stages": ["m"], "sink": {"type": "stdout"}})";
    auto res = parse_job_config(json, "job.json", models);
    std::string all;
    for (auto& e : res.errors)
      all += e + "\n";
    CAPTURE(all);
    if (std::string{r.error}.empty())
      CHECK(res.config.has_value());
    else
      CHECK(has_line(res.errors, std::string{"job.json: "} + r.error));
  }
  auto res = parse_job_config(R"({"job": {"restart-strategy": {"type": "fixed-delay", "attempts": 5, "delay": "2s"}},
    "source": {"type": "generator"}, "models": {"m": {"model": "noop"}}, "stages": ["m"], "sink": {"type": "stdout"}})",
                              "job.json", models);
  REQUIRE(res.config.has_value());
  CHECK(res.config->restart.kind == restart_kind::fixed_delay);
  CHECK(res.config->restart.attempts == 5);
  CHECK(res.config->restart.delay == std::chrono::seconds{2});
}

TEST_CASE("probe keys: defaults, and values read from a file") {
  auto models = model_registry::with_builtins();
  auto r = parse_job_config(R"({
    "source": {"type": "generator", "count": 10},
    "models": {
      "m": {"provider": "http-json", "model": "served-m", "endpoints": ["http://127.0.0.1:8000"],
            "input": {"text": "t"}, "output": {"label": "l"},
            "probe": {"type": "prometheus", "interval": "250ms", "path": "/stats/metrics", "timeout": "100ms",
                      "queue-depth": ["my_queue", "other:queue"], "running": "my_running",
                      "queue-time-us": "", "queue-time-requests": "my_requests", "cache-usage": [],
                      "model-label-value": "", "failure-threshold": 5, "stale-after": "0s"}},
      "n": {"model": "keyword-classifier", "input": {"text": "t"}, "probe": {"type": "none"}}
    },
    "stages": ["m", "n"],
    "sink": {"type": "stdout"}
  })", "job.json", models);
  for (auto& e : r.errors)
    MESSAGE(e);
  REQUIRE(r.errors.empty());
  auto& p = r.config->models.at("m").probe;
  CHECK(p.kind == probe_kind::prometheus);
  CHECK(p.interval == std::chrono::milliseconds{250});
  CHECK(p.path == "/stats/metrics");
  CHECK(p.timeout == std::chrono::milliseconds{100});
  CHECK(p.metrics.queue_depth == std::vector<std::string>{"my_queue", "other:queue"});
  CHECK(p.metrics.running == std::vector<std::string>{"my_running"});
  CHECK(p.metrics.queue_time_us.empty());
  CHECK(p.metrics.queue_time_requests == "my_requests");
  CHECK(p.metrics.cache_usage.empty());
  REQUIRE(p.model_label_value.has_value());
  CHECK(p.model_label_value->empty());
  CHECK(p.health.failure_threshold == 5);
  CHECK(p.health.stale_after.count() == 0);
  CHECK(r.config->models.at("n").probe.kind == probe_kind::none);
  // A model without `probe`: in-band, and Triton's and vLLM's names ready.
  auto d = parse_job_config(minimal, "job.json", models);
  REQUIRE(d.errors.empty());
  auto& q = d.config->models.at("sentiment").probe;
  CHECK(q.kind == probe_kind::in_band);
  CHECK(q.interval == std::chrono::seconds{1});
  CHECK(q.path == "/metrics");
  CHECK(q.timeout == std::chrono::milliseconds{500});
  CHECK(q.metrics.queue_depth
        == std::vector<std::string>{"nv_inference_pending_request_count", "vllm:num_requests_waiting"});
  CHECK(q.metrics.running == std::vector<std::string>{"vllm:num_requests_running"});
  CHECK(q.metrics.queue_time_us == "nv_inference_queue_duration_us");
  CHECK(q.metrics.queue_time_requests == "nv_inference_request_success");
  CHECK(q.metrics.cache_usage == std::vector<std::string>{"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"});
  CHECK_FALSE(q.model_label_value.has_value()); // the model's name on the server
  CHECK(q.health.failure_threshold == 3);
  CHECK(q.health.stale_after == std::chrono::seconds{30});
}

TEST_CASE("probe keys: bad values name the key path") {
  auto models = model_registry::with_builtins();
  struct row {
    const char* probe_json;
    bool http;
    const char* expected;
  };
  std::vector<row> rows = {
    {R"({"type": "scrape"})", true, "models.m.probe.type: expected one of \"in-band\" | \"prometheus\" | \"none\""},
    {R"({"type": "prometheus"})", false,
     "models.m.probe.type: \"prometheus\" scrapes the model server's metrics page: only valid for HTTP providers"},
    {R"({"interval": "1s"})", true, "models.m.probe.interval: only valid when probe.type is \"prometheus\""},
    {R"({"type": "none", "queue-depth": ["q"]})", true,
     "models.m.probe.queue-depth: only valid when probe.type is \"prometheus\""},
    {R"({"type": "prometheus", "interval": "often"})", true,
     "models.m.probe.interval: expected a duration string such as"},
    {R"({"type": "prometheus", "interval": "0s"})", true, "models.m.probe.interval: expected a duration >= 1ms"},
    {R"({"type": "prometheus", "timeout": "0ms"})", true, "models.m.probe.timeout: expected a duration >= 1ms"},
    {R"({"type": "prometheus", "path": "metrics"})", true,
     "models.m.probe.path: expected a path starting with '/', got \"metrics\""},
    {R"({"type": "prometheus", "queue-depth": ["ok_name", "bad name"]})", true,
     "models.m.probe.queue-depth[1]: expected a Prometheus metric name"},
    {R"({"type": "prometheus", "running": [3]})", true, "models.m.probe.running[0]: expected a metric name (string), got 3"},
    {R"({"type": "prometheus", "cache-usage": {"a": 1}})", true,
     "models.m.probe.cache-usage: expected an array of metric names"},
    {R"({"type": "prometheus", "queue-time-us": "9lives"})", true,
     "models.m.probe.queue-time-us: expected a Prometheus metric name"},
    {R"({"type": "prometheus", "model-label-value": 7})", true,
     "models.m.probe.model-label-value: expected a string (\"\": every series), got 7"},
    {R"({"type": "prometheus", "failure-threshold": 0})", true,
     "models.m.probe.failure-threshold: expected an integer in 1..1000000, got 0"},
    {R"({"type": "prometheus", "stale-after": -1})", true, "models.m.probe.stale-after: expected a duration string"},
    {R"({"type": "prometheus", "intervall": "1s"})", true,
     "models.m.probe.intervall: unknown key (did you mean 'interval'?)"},
  };
  for (auto& r : rows) {
    CAPTURE(r.probe_json);
    std::string model = r.http ? R"("provider": "http-json", "endpoints": ["http://h:1"], "input": {"text": "t"},
                                    "output": {"label": "l"})"
                               : R"("model": "keyword-classifier")";
    std::string json = R"({"source": {"type": "generator"}, "models": {"m": {)" + model + R"(, "probe": )"
                       + r.probe_json + R"(}}, "stages": ["m"], "sink": {"type": "stdout"}})";
    check_rejected(json, r.expected, models);
  }
}

TEST_CASE("probe keys: job_builder gets the same checks") {
  auto models = model_registry::with_builtins();
  probe_config p;
  p.kind = probe_kind::prometheus;
  p.interval = std::chrono::nanoseconds{0};
  p.metrics.queue_depth = {"fine", ""};
  try {
    job_builder{"j"}
      .source_generator(1)
      .model(model_spec{"m", "keyword-classifier"}.probe(p))
      .stage("m")
      .sink_stdout()
      .build(models);
    FAIL("expected invalid_job");
  } catch (const invalid_job& e) {
    std::string what = e.what();
    CAPTURE(what);
    CHECK(what.find("models.m.probe.type: \"prometheus\" scrapes the model server's metrics page") != std::string::npos);
    CHECK(what.find("models.m.probe.interval: expected a duration >= 1ms") != std::string::npos);
    CHECK(what.find("models.m.probe.queue-depth[1]: expected a Prometheus metric name") != std::string::npos);
  }
}

TEST_CASE("source.profile: segments read from a file; count defaults to the records the profile holds") {
  auto models = model_registry::with_builtins();
  auto job = [](const std::string& source) {
    return R"({"source": )" + source + R"(, "models": {"m": {"model": "noop"}}, "stages": ["m"],
               "sink": {"type": "stdout"}})";
  };
  auto r = parse_job_config(job(R"({"type": "generator", "profile": [
      {"for": "5m", "rate": 1000},
      {"for": "1m", "rate": 1000, "to": 3000},
      {"for": "24h", "rate": 200, "peak": 1000, "period": "24h"},
      {"for": "10m", "rate": 500, "burst-every": "2m", "burst-for": "10s", "burst-rate": 3000},
      {"for": "30s", "rate": 0},
      {"for": "1h", "rate": 5, "peak": 10}]})"),
                            "job.json", models);
  for (auto& e : r.errors)
    MESSAGE(e);
  REQUIRE(r.errors.empty());
  auto& src = r.config->source;
  CHECK(src.rate == 0);
  REQUIRE(src.profile.size() == 6);
  auto& p = src.profile;
  CHECK(p[0].shape == load_shape::constant);
  CHECK(p[0].length == std::chrono::minutes{5});
  CHECK(p[0].rate == 1000);
  CHECK(p[1].shape == load_shape::ramp);
  CHECK(p[1].rate == 1000);
  CHECK(p[1].to == 3000);
  CHECK(p[2].shape == load_shape::diurnal);
  CHECK(p[2].length == std::chrono::hours{24});
  CHECK(p[2].rate == 200);
  CHECK(p[2].peak == 1000);
  CHECK(p[2].period == std::chrono::hours{24});
  CHECK(p[3].shape == load_shape::bursts);
  CHECK(p[3].rate == 500);
  CHECK(p[3].burst_every == std::chrono::minutes{2});
  CHECK(p[3].burst_length == std::chrono::seconds{10});
  CHECK(p[3].burst_rate == 3000);
  CHECK(p[4].shape == load_shape::constant);
  CHECK(p[4].rate == 0);
  CHECK(p[5].shape == load_shape::diurnal);
  CHECK(p[5].period == std::chrono::hours{24}); // the default period
  // 300000 + 120000 + 51840000 + 425000 + 0 + the first hour of a 5..10/s day.
  auto last_hour = load_profile{{p[5]}}.total_count();
  CHECK(last_hour > 5.0 * 3600);
  CHECK(last_hour < 5.1 * 3600);
  CHECK(src.count == 52685000 + static_cast<uint64_t>(std::ceil(last_hour)));
  // An explicit count is kept: the generator ends at whichever comes first.
  auto capped = parse_job_config(job(R"({"type": "generator", "count": 50, "profile": [{"for": "1s", "rate": 10}]})"),
                                 "job.json", models);
  REQUIRE(capped.errors.empty());
  CHECK(capped.config->source.count == 50);
  CHECK(capped.config->source.profile.size() == 1);
  // Without a profile nothing changes.
  auto plain = parse_job_config(job(R"({"type": "generator", "rate": 100})"), "job.json", models);
  REQUIRE(plain.errors.empty());
  CHECK(plain.config->source.profile.empty());
  CHECK(plain.config->source.count == 1000);
  CHECK(plain.config->source.rate == 100);
}

TEST_CASE("source.profile: bad values name the key path") {
  auto models = model_registry::with_builtins();
  // Rows: the source object, an expected error line (after "job.json: ").
  struct row {
    const char* source;
    const char* expected;
  };
  std::vector<row> rows = {
    {R"({"type": "generator", "profile": [{"for": "5m", "rate": 1}, {"for": "1m", "rate": 2},
        {"for": "1m", "rate": -1}]})",
     "source.profile[2].rate: expected a number >= 0 (records per second, at most 1e12), got -1"},
    // Reported with the other errors of the file (here an unknown key).
    {R"({"type": "generator", "profile": [{"for": "1m", "rate": -1}, {"for": "1m", "rate": 1, "peek": 2}]})",
     "source.profile[0].rate: expected a number >= 0 (records per second, at most 1e12), got -1"},
    {R"({"type": "generator", "profile": [{"for": "1m", "rate": "fast"}]})",
     "source.profile[0].rate: expected a number >= 0 (records per second), got \"fast\""},
    {R"({"type": "generator", "profile": [{"for": "1m", "rate": 2e12}]})",
     "source.profile[0].rate: expected a number >= 0 (records per second, at most 1e12), got 2e+12"},
    {R"({"type": "generator", "profile": [{"rate": 1}]})", "source.profile[0].for: missing required key"},
    {R"({"type": "generator", "profile": [{"for": "1m"}]})", "source.profile[0].rate: missing required key"},
    {R"({"type": "generator", "profile": [{"for": "0s", "rate": 1}]})",
     "source.profile[0].for: expected a duration > 0, got 0ms"},
    {R"({"type": "generator", "profile": [{"for": "often", "rate": 1}]})",
     "source.profile[0].for: expected a duration string such as"},
    {R"({"type": "generator", "profile": [{"for": "1m", "rate": 1, "to": -3}]})",
     "source.profile[0].to: expected a number >= 0"},
    {R"({"type": "generator", "profile": [{"for": "1m", "rate": 1, "peek": 3}]})",
     "source.profile[0].peek: unknown key (did you mean 'peak'?)"},
    {R"({"type": "generator", "profile": [{"for": "1m", "rate": 1, "period": "1h"}]})",
     "source.profile[0].peak: missing required key (the rate at the top of the diurnal cycle)"},
    {R"({"type": "generator", "profile": [{"for": "1m", "rate": 1, "peak": 5, "period": "0s"}]})",
     "source.profile[0].period: expected a duration > 0, got 0ms"},
    {R"({"type": "generator", "profile": [{"for": "1m", "rate": 1, "to": 5, "peak": 3}]})",
     "source.profile[0]: a segment is one of constant (\"rate\"), ramp (\"to\"), diurnal (\"peak\", \"period\") or "
     "bursts (\"burst-every\", \"burst-for\", \"burst-rate\"); this one has \"to\" with \"peak\""},
    {R"({"type": "generator", "profile": [{"for": "1m", "rate": 1, "burst-every": "10s"}]})",
     "source.profile[0].burst-for: missing required key"},
    {R"({"type": "generator", "profile": [{"for": "1m", "rate": 1, "burst-every": "10s", "burst-for": "20s",
        "burst-rate": 9}]})",
     "source.profile[0].burst-for: expected a duration <= burst-every (10000ms), got 20000ms"},
    {R"({"type": "generator", "profile": [{"for": "1m", "rate": 1, "burst_every": "10s"}]})",
     "source.profile[0].burst_every: unknown key (did you mean 'burst-every'?)"},
    {R"({"type": "generator", "profile": []})", "source.profile: expected a non-empty array of segments"},
    {R"({"type": "generator", "profile": {"for": "1m", "rate": 1}})",
     "source.profile: expected a non-empty array of segments"},
    {R"({"type": "generator", "profile": [{"for": "1m", "rate": 1}, 5]})",
     "source.profile[1]: expected a segment object such as"},
    {R"({"type": "generator", "rate": 100, "profile": [{"for": "1m", "rate": 1}]})",
     "source.rate: not valid with source.profile"},
    {R"({"type": "generator", "rate": 0, "profile": [{"for": "1m", "rate": 1}]})",
     "source.rate: not valid with source.profile"},
    {R"({"type": "jsonl", "path": "in.jsonl", "profile": [{"for": "1m", "rate": 1}]})",
     "source.profile: only valid when source.type is \"generator\""},
    {R"({"type": "generator", "profile": [{"for": "200000h", "rate": 1}, {"for": "200000h", "rate": 1}]})",
     "source.profile: the segments last 400000 h in all; at most 1e18 ns"},
  };
  for (auto& r : rows) {
    CAPTURE(r.source);
    std::string json = R"({"source": )" + std::string{r.source}
                       + R"(, "models": {"m": {"model": "noop"}}, "stages": ["m"], "sink": {"type": "stdout"}})";
    check_rejected(json, r.expected, models);
  }
}

TEST_CASE("source.profile: job_builder gets the same checks") {
  auto models = model_registry::with_builtins();
  auto cfg = job_builder{"j"}.source_generator(10, {}, 5.0).model(model_spec{"m", "noop"}).stage("m").sink_stdout().build(
    models);
  cfg.source.profile = {load_segment::constant_rate(std::chrono::seconds{1}, -2),
                        load_segment::burst_rates(std::chrono::seconds{1}, 1, std::chrono::seconds{1},
                                                  std::chrono::seconds{2}, 5),
                        load_segment::diurnal_rate(std::chrono::seconds{0}, 1, 2, std::chrono::seconds{1})};
  auto errors = check_job_config(cfg, models);
  std::string all;
  for (auto& e : errors)
    all += e + "\n";
  CAPTURE(all);
  CHECK(has_line(errors, "source.rate: not valid with source.profile"));
  CHECK(has_line(errors, "source.profile[0].rate: expected a number >= 0 (records per second, at most 1e12), got -2"));
  CHECK(has_line(errors, "source.profile[1].burst-for: expected a duration <= burst-every (1000ms), got 2000ms"));
  CHECK(has_line(errors, "source.profile[2].for: expected a duration > 0, got 0ms"));
  CHECK(errors.size() == 4);
}

TEST_CASE("stages with a condition: {\"model\", \"when\"} beside plain names") {
  auto models = model_registry::with_builtins();
  auto job = [](const std::string& stages) {
    return R"({"source": {"type": "generator", "count": 1}, "models": {
      "a": {"model": "keyword-classifier", "input": {"text": "text"}, "output": {"label": "sentiment"}},
      "b": {"model": "text-length", "input": {"text": "text"}, "output": {"length": "n"}}},
      "stages": )" + stages + R"(, "sink": {"type": "discard"}})";
  };
  auto ok = parse_job_config(job(R"(["a", {"model": "b", "when": {"field": "sentiment", "equals": "negative"}}])"),
                             "job.json", models);
  REQUIRE(ok.config);
  CHECK(ok.config->stages == std::vector<std::string>{"a", "b"});
  CHECK(ok.config->condition_of(0).kind == stage_condition::test::always);
  auto b = ok.config->condition_of(1);
  CHECK(b.kind == stage_condition::test::equals);
  CHECK(b.field == "sentiment");
  CHECK(b.values == std::vector<std::string>{R"("negative")"});
  auto in = parse_job_config(job(R"([{"model": "b", "when": {"field": "x", "in": [1, "y"]}}, "a"])"), "job.json", models);
  REQUIRE(in.config);
  CHECK(in.config->condition_of(0).values == std::vector<std::string>{"1", R"("y")"});
  CHECK(in.config->condition_of(1).kind == stage_condition::test::always);
  check_rejected(job(R"([{"model": "b", "when": {"field": "x"}}])"),
                 "stages[0].when.field: expected exactly one test beside it", models);
  check_rejected(job(R"([{"model": "b", "when": {"field": "x", "equals": 1, "in": [1]}}])"),
                 "stages[0].when.field: expected exactly one test beside it", models);
  check_rejected(job(R"([{"model": "b", "when": {"field": "x", "in": []}}])"),
                 "stages[0].when.in: expected a non-empty array of values", models);
  check_rejected(job(R"([{"when": {"field": "x", "exists": true}}])"), "stages[0].model: missing required key", models);
  check_rejected(job(R"([{"model": "b", "if": {}}])"), "stages[0].if: unknown key", models);
  check_rejected(job(R"([5])"), "stages[0]: expected a model name (string) or", models);
}

TEST_CASE("stage conditions from the C++ API equal the config file's (same minified values)") {
  auto models = model_registry::with_builtins();
  // A control character and a non-ASCII letter: the builder's values must be
  // escaped as simdjson minifies the record's field, or they never match.
  const std::string tricky = R"(neg\u0001ativ\u00e9)"; // JSON escapes, as in a config file
  auto parsed = parse_job_config(R"({"source": {"type": "generator", "count": 1}, "models": {
      "b": {"model": "text-length", "input": {"text": "text"}, "output": {"length": "n"}}},
      "stages": [{"model": "b", "when": {"field": "s", "equals": ")" + tricky + R"("}},
                 {"model": "b", "when": {"field": "s", "in": ["x", ")" + tricky + R"("]}}],
      "sink": {"type": "discard"}})",
                                 "job.json", models);
  REQUIRE(parsed.config);
  const std::string raw = "neg\x01" "ativ\xc3\xa9"; // the same text, as bytes
  auto eq = when_equals("s", raw);
  CHECK(eq.kind == stage_condition::test::equals);
  CHECK(eq.field == "s");
  CHECK(eq.values == parsed.config->condition_of(0).values);
  auto in = when_in("s", {"x", raw});
  CHECK(in.kind == stage_condition::test::in);
  CHECK(in.values == parsed.config->condition_of(1).values);
  CHECK(when_not_equals("s", "x").kind == stage_condition::test::not_equals);
  auto ex = when_exists("s");
  CHECK(ex.kind == stage_condition::test::exists);
  CHECK(ex.values.empty());
  CHECK(ex.matches(std::string_view{"1"}));
  CHECK(!ex.matches(std::nullopt));
}
