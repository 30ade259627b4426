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
  CHECK(m.batch_max_size == 64);
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
