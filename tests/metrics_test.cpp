// The observability endpoint: the Prometheus text of a job's counters (pure,
// as tables), and /metrics, /healthz, /readyz of a running job, checked by
// `promtool check metrics` (Debian package prometheus; the check is skipped
// with a message only when promtool is not installed: CI installs it).

#include <doctest/doctest.h>

#include <httplib.h>

#include <sys/wait.h>

#include <future>
#include <map>
#include <optional>
#include <thread>

#include "runtime/config_loader.hpp"
#include "runtime/job_builder.hpp"
#include "runtime/job_runner.hpp"
#include "runtime/metrics_text.hpp"
#include "runtime/status_table.hpp"
#include "tests/test_util.hpp"

using namespace sinfer;
using namespace sinfer::test;

namespace {

job_config small_job(const model_registry& models) {
  return job_builder{"metrics-job"}
    .parallelism(2)
    .source_generator(400)
    .model(model_spec{"sentiment", "keyword-classifier"}.input("text", "text").output("label", "label").batch_max_size(8))
    .stage("sentiment")
    .sink_jsonl("/dev/null")
    .dead_letter("/dev/null")
    .build(models);
}

/// Runs `promtool check metrics` on `text`: its exit code (-1: no promtool).
int promtool_check(const temp_dir& dir, const std::string& text, std::string& output) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0)
    return -1;
  write_file(dir.file("metrics.txt"), text);
  int status = std::system(("promtool check metrics <'" + dir.file("metrics.txt") + "' >'" + dir.file("promtool.out")
                            + "' 2>&1")
                             .c_str());
  output = read_file(dir.file("promtool.out"));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace

TEST_CASE("prometheus text: counters, gauges, histograms and breakers from a job's figures") {
  auto models = model_registry::with_builtins();
  auto cfg = small_job(models);
  cfg.name = "a \"quoted\"\nname";
  job_counters c{1};
  c.records_in = 10;
  c.records_out = 7;
  c.dead_lettered = 2;
  c.stages[0].batches_by_reason[1] = 3;
  c.stages[0].latency.record(std::chrono::microseconds{700}); // <= 1 ms
  c.stages[0].latency.record(std::chrono::milliseconds{20});  // <= 25 ms
  c.stages[0].latency.record(std::chrono::seconds{100});      // beyond 60 s
  c.stages[0].note_batch(3);
  c.stages[0].note_batch(64);
  c.stages[0].batched_records = 67;
  c.stages[0].calls = 2;
  c.stages[0].retries_by_reason[2] = 5;
  c.source_lag_ns = 1500000000;
  auto ep = c.endpoint("sentiment/sentiment");
  ep->calls = 3;
  ep->limit = 4;
  ep->probe_queue_depth = 2.5;
  breaker_event open;
  open.endpoint = "sentiment/sentiment";
  open.scope = "job";
  open.from = "closed";
  open.to = "open";
  c.add_breaker_event(open);
  auto text = prometheus_text(cfg, c);
  auto job = std::string{R"(job_name="a \"quoted\"\nname")"};
  auto stage = job + R"(,stage="1",model="sentiment")";
  auto endpoint = job + R"(,model="sentiment",endpoint="sentiment")";
  struct row {
    std::string series;
    double value;
  };
  std::vector<row> rows = {
    {"sinfer_records_in_total{" + job + "}", 10},
    {"sinfer_records_out_total{" + job + "}", 7},
    {"sinfer_records_dead_lettered_total{" + job + "}", 2},
    {"sinfer_records_in_flight{" + job + "}", 1},
    {"sinfer_stage_calls_total{" + stage + "}", 2},
    {"sinfer_source_lag_seconds{" + job + "}", 1.5},
    {"sinfer_stage_retries_total{" + stage + R"(,reason="rate-limited"})", 5},
    {"sinfer_stage_retries_total{" + stage + R"(,reason="timeout"})", 0},
    {"sinfer_stage_batch_size_bucket{" + stage + R"(,le="2"})", 0},
    {"sinfer_stage_batch_size_bucket{" + stage + R"(,le="4"})", 1},
    {"sinfer_stage_batch_size_bucket{" + stage + R"(,le="64"})", 2},
    {"sinfer_stage_batch_size_bucket{" + stage + R"(,le="+Inf"})", 2},
    {"sinfer_stage_batch_size_sum{" + stage + "}", 67},
    {"sinfer_stage_batches_total{" + stage + R"(,reason="slot-free"})", 3},
    {"sinfer_stage_batches_total{" + stage + R"(,reason="full"})", 0},
    {"sinfer_stage_latency_seconds_bucket{" + stage + R"(,le="0.0005"})", 0},
    {"sinfer_stage_latency_seconds_bucket{" + stage + R"(,le="0.001"})", 1},
    {"sinfer_stage_latency_seconds_bucket{" + stage + R"(,le="0.025"})", 2},
    {"sinfer_stage_latency_seconds_bucket{" + stage + R"(,le="60"})", 2},
    {"sinfer_stage_latency_seconds_bucket{" + stage + R"(,le="+Inf"})", 3},
    {"sinfer_stage_latency_seconds_count{" + stage + "}", 3},
    {"sinfer_endpoint_calls_total{" + endpoint + "}", 3},
    {"sinfer_endpoint_concurrency_limit{" + endpoint + "}", 4},
    {"sinfer_endpoint_probe_queue_depth{" + endpoint + "}", 2.5},
    {"sinfer_breaker_state{" + endpoint + R"(,scope="job",state="open"})", 1},
    {"sinfer_breaker_state{" + endpoint + R"(,scope="job",state="closed"})", 0},
    {"sinfer_breaker_transitions_total{" + endpoint + R"(,scope="job",to="open"})", 1},
  };
  for (auto& r : rows) {
    CAPTURE(r.series);
    auto v = prometheus_sample(text, r.series);
    REQUIRE(v);
    CHECK(*v == doctest::Approx(r.value));
  }
  // The sum counts each latency as its bucket's midpoint: within 5%.
  auto sum = prometheus_sample(text, "sinfer_stage_latency_seconds_sum{" + stage + "}");
  REQUIRE(sum);
  CHECK(*sum == doctest::Approx(100.0207).epsilon(0.05));
  // Every family has HELP and TYPE; counters end in _total.
  for (auto& line : {"# TYPE sinfer_records_in_total counter", "# TYPE sinfer_stage_latency_seconds histogram",
                     "# TYPE sinfer_endpoint_calls_in_flight gauge", "# HELP sinfer_breaker_state "})
    CHECK(text.find(line) != std::string::npos);
  temp_dir dir;
  std::string out;
  int code = promtool_check(dir, text, out);
  if (code < 0)
    MESSAGE("promtool not installed: the exposition was not checked by it (apt-get install prometheus)");
  else
    CHECK_MESSAGE(code == 0, out);
}

TEST_CASE("sinfer status: a page that is not /status is a clear error; a missing field shows as -") {
  std::string error;
  CHECK(format_status_table("<html>", error).empty());
  CHECK(error == "not a /status page (not a JSON object)");
  auto text = format_status_table(R"({"job":"j","ready":false,"endpoints":[{"model":"m","endpoint":"e","probe_queue_depth":null}]})",
                                  error);
  CHECK(text.find("job \"j\": not ready; records - in") == 0);
  CHECK(text.find("m/e       -") != std::string::npos);
}

TEST_CASE("metrics config: metrics.port and metrics.host") {
  auto models = model_registry::with_builtins();
  auto base = [](const std::string& metrics) {
    return R"({"source": {"type": "generator", "count": 1}, "models": {"m": {"model": "keyword-classifier",
      "input": {"text": "text"}}}, "stages": ["m"], "sink": {"type": "discard"}, "metrics": )"
           + metrics + "}";
  };
  auto ok = parse_job_config(base(R"({"port": 9464, "host": "0.0.0.0"})"), "job.json", models);
  REQUIRE(ok.config);
  CHECK(ok.config->metrics.port == 9464);
  CHECK(ok.config->metrics.host == "0.0.0.0");
  auto off = parse_job_config(R"({"source": {"type": "generator", "count": 1}, "models": {"m": {"model":
    "keyword-classifier", "input": {"text": "text"}}}, "stages": ["m"], "sink": {"type": "discard"}})",
                              "job.json", models);
  REQUIRE(off.config);
  CHECK(off.config->metrics.port == -1);
  for (auto [json, error] : {std::pair{R"({})", "metrics.port: missing: give metrics.port"},
                             {R"({"port": 70000})", "metrics.port: expected an integer in 0..65535"},
                             {R"({"port": 1, "hots": "x"})", "metrics.hots: unknown key (did you mean 'host'?)"}}) {
    auto res = parse_job_config(base(json), "job.json", models);
    CHECK_FALSE(res.config);
    std::string all;
    for (auto& e : res.errors)
      all += e + "\n";
    CAPTURE(all);
    CHECK(all.find(error) != std::string::npos);
  }
}

TEST_CASE("metrics.port: a running job serves /metrics (valid for promtool), /healthz and /readyz") {
  auto models = model_registry::with_builtins();
  auto cfg = small_job(models);
  cfg.source.count = 100000000;
  cfg.source.rate = 2000; // runs until told to stop
  cfg.metrics.port = 0;
  run_options opts;
  opts.threads = 2;
  opts.counters = std::make_shared<job_counters>(cfg.stages.size());
  std::promise<int> port_promise;
  opts.on_metrics = [&](int port) { port_promise.set_value(port); };
  job_report report;
  std::thread job{[&] { report = run_job(cfg, models, opts); }};
  int port = port_promise.get_future().get();
  httplib::Client client{"127.0.0.1", port};
  client.set_read_timeout(5, 0);
  // Scrape once the job has written records (a bounded wait on the job's
  // own figures).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (opts.counters->records_out.load() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  auto res = client.Get("/metrics");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  CHECK(res->get_header_value("Content-Type").find("text/plain; version=0.0.4") == 0);
  std::string text = res->body;
  CHECK(*prometheus_sample(text, R"(sinfer_records_out_total{job_name="metrics-job"})") > 0);
  CHECK(text.find(R"(sinfer_endpoint_calls_total{job_name="metrics-job",model="sentiment",endpoint="sentiment"})")
        != std::string::npos);
  auto health = client.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  auto ready = client.Get("/readyz");
  REQUIRE(ready);
  CHECK(ready->status == 200);
  // /status as JSON, and as `sinfer status` prints it.
  auto status = client.Get("/status");
  REQUIRE(status);
  CHECK(status->status == 200);
  simdjson::dom::parser parser;
  auto obj = parse_object(parser, status->body);
  CHECK(str_field(obj, "job") == "metrics-job");
  simdjson::dom::element endpoint;
  REQUIRE(obj.at_pointer("/endpoints/0/breaker").get(endpoint) == simdjson::SUCCESS);
  CHECK(std::string{endpoint.get_string().value()} == "closed");
  temp_dir out_dir;
  auto cmd = std::string{SINFER_BIN} + " status --url http://127.0.0.1:" + std::to_string(port) + " >'"
             + out_dir.file("status.txt") + "' 2>&1";
  CHECK(std::system(cmd.c_str()) == 0);
  auto table = read_file(out_dir.file("status.txt"));
  CAPTURE(table);
  CHECK(table.find("job \"metrics-job\": running") != std::string::npos);
  CHECK(table.find("sentiment/sentiment  closed") != std::string::npos);
  CHECK(table.find("stage  model") != std::string::npos);
  opts.counters->stop_requested = true;
  job.join();
  CHECK_MESSAGE(report.ok, report.reason);
  temp_dir dir;
  std::string out;
  int code = promtool_check(dir, text, out);
  if (code < 0)
    MESSAGE("promtool not installed: the scraped page was not checked by it (apt-get install prometheus)");
  else
    CHECK_MESSAGE(code == 0, out);
}

TEST_CASE("event log: one JSON line per decision, from the counters and from a running job") {
  temp_dir dir;
  std::string error;
  {
    job_counters c{1};
    c.events = event_log::open(dir.file("events.jsonl"), "j", error);
    REQUIRE_MESSAGE(c.events, error);
    breaker_event b;
    b.endpoint = "m/gpu-a";
    b.scope = "job";
    b.from = "closed";
    b.to = "open";
    b.calls = 20;
    b.failures = 11;
    c.add_breaker_event(b);
    c.emit(job_event{"subtask-restart", {}}.number("subtask", 1).text("reason", "boom \"x\""));
    // The line's shape, at a fixed time.
    CHECK(c.events->line_of(job_event{"checkpoint", {}}.number("id", 3), 1764115199123)
          == R"({"time":"2025-11-25T23:59:59.123Z","job":"j","event":"checkpoint","id":3})");
  }
  auto lines = read_lines(dir.file("events.jsonl"));
  REQUIRE(lines.size() == 2);
  simdjson::dom::parser parser;
  auto first = parse_object(parser, lines[0]);
  CHECK(str_field(first, "event") == "breaker");
  CHECK(str_field(first, "endpoint") == "m/gpu-a");
  CHECK(str_field(first, "to") == "open");
  CHECK(int_field(first, "failures") == 11);
  CHECK(str_field(first, "job") == "j");
  auto second = parse_object(parser, lines[1]);
  CHECK(str_field(second, "reason") == "boom \"x\"");

  // A checkpointed job with a record the model cannot read: its dead
  // letter and the checkpoints are events.
  auto models = model_registry::with_builtins();
  write_file(dir.file("in.jsonl"), R"({"text":"great"})" "\n" R"({"no_text":1})" "\n" R"({"text":"bad"})" "\n");
  checkpoint_config ck;
  ck.dir = dir.file("ckpt");
  auto cfg = job_builder{"events-job"}
               .source_jsonl(dir.file("in.jsonl"))
               .model(model_spec{"m", "keyword-classifier"}.input("text", "text").output("label", "label"))
               .stage("m")
               .sink_jsonl(dir.file("out"))
               .dead_letter(dir.file("dead"))
               .checkpoint(ck)
               .build(models);
  cfg.metrics.event_log = dir.file("job-events.jsonl");
  auto report = run_job(cfg, models, {});
  REQUIRE_MESSAGE(report.ok, report.reason);
  std::map<std::string, int> kinds;
  std::string dead_reason;
  for (auto& line : read_lines(dir.file("job-events.jsonl"))) {
    auto obj = parse_object(parser, line);
    auto kind = str_field(obj, "event");
    ++kinds[kind];
    if (kind == "dead-letter") {
      CHECK(int_field(obj, "offset") == 2);
      dead_reason = str_field(obj, "reason");
    }
  }
  CHECK(kinds["dead-letter"] == 1);
  CHECK(dead_reason.find("missing field \"text\"") != std::string::npos);
  CHECK(kinds["checkpoint"] >= 1); // the final one at least
}

TEST_CASE("a conditional stage scores only the records its condition matches; the others pass untouched") {
  auto models = model_registry::with_builtins();
  temp_dir dir;
  write_file(dir.file("in.jsonl"), R"({"id":1,"text":"great product"})" "\n" R"({"id":2,"text":"terrible service"})"
                                   "\n" R"({"id":3,"text":"it was ok"})" "\n" R"({"id":4,"text":"awful, broken"})" "\n");
  stage_condition negative;
  negative.kind = stage_condition::test::equals;
  negative.field = "sentiment";
  negative.values = {R"("negative")"};
  auto cfg = job_builder{"conditional"}
               .source_jsonl(dir.file("in.jsonl"))
               .model(model_spec{"sentiment", "keyword-classifier"}.input("text", "text").output("label", "sentiment"))
               .model(model_spec{"length", "text-length"}.input("text", "text").output("length", "n"))
               .stage("sentiment")
               .stage("length", negative)
               .sink_jsonl(dir.file("out.jsonl"))
               .dead_letter(dir.file("dead.jsonl"))
               .build(models);
  cfg.metrics.event_log = dir.file("events.jsonl");
  run_options opts;
  opts.counters = std::make_shared<job_counters>(cfg.stages.size());
  auto report = run_job(cfg, models, opts);
  REQUIRE_MESSAGE(report.ok, report.reason);
  auto lines = read_lines(dir.file("out.jsonl"));
  REQUIRE(lines.size() == 4);
  size_t scored = 0;
  for (auto& l : lines) {
    bool negative_line = l.find(R"("sentiment":"negative")") != std::string::npos;
    bool has_length = l.find(R"("n":)") != std::string::npos;
    CAPTURE(l);
    CHECK(negative_line == has_length);
    scored += has_length ? 1 : 0;
  }
  CHECK(scored >= 1);
  CHECK(opts.counters->stages[1].skipped.load() == 4 - scored);
}
