// Whole jobs on virtual time: ordering, chaining, backpressure, dead letters,
// failure actions. The real actors run on CAF's test coordinator.

#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <optional>
#include <set>

#include <caf/all.hpp>

#include "actors/job_supervisor.hpp"
#include "runtime/job_builder.hpp"
#include "sim/virtual_time.hpp"
#include "tests/virtual_job.hpp"
#include "tests/test_util.hpp"

using namespace sinfer;
using namespace sinfer::test;

namespace {

const std::vector<std::pair<std::string, std::string>> reviews = {
  {"great product, fast delivery", "positive"},
  {"terrible service, never again", "negative"},
  {"it was ok", "neutral"},
  {"love it", "positive"},
  {"broken and late", "negative"},
};

/// `n` records {"id": i, "user": "uK", "review": ...} as JSONL.
std::string review_lines(int n) {
  std::string text;
  for (int i = 0; i < n; ++i)
    text += R"({"id":)" + std::to_string(i) + R"(,"user":"u)" + std::to_string(i % 7) + R"(","review":")"
            + reviews[i % reviews.size()].first + "\"}\n";
  return text;
}

job_config two_stage_job(const temp_dir& dir, output_mode mode, const model_registry& models) {
  return job_builder{"two-stage"}
    .parallelism(2)
    .output(mode)
    .partition_by("user")
    .source_jsonl(dir.file("in.jsonl"))
    .model(model_spec{"sentiment", "keyword-classifier"}
             .input("text", "review")
             .output("label", "sentiment")
             .max_concurrent_operations(32)
             .batch_max_size(8)
             .latency(std::chrono::milliseconds(3)))
    // The second stage reads the first stage's output: chaining.
    .model(model_spec{"label-length", "text-length"}.input("text", "sentiment").output("length", "sentiment_length"))
    .stage("sentiment")
    .stage("label-length")
    .sink_jsonl(dir.file("out.jsonl"))
    .dead_letter(dir.file("dead.jsonl"))
    .build(models);
}

/// One stage reading dir/in.jsonl, writing dir/out.jsonl and dir/dead.jsonl.
job_builder one_stage(const temp_dir& dir, const char* name, const model_spec& spec) {
  job_builder b{name};
  b.source_jsonl(dir.file("in.jsonl"))
    .model(spec)
    .stage(spec.config().name)
    .sink_jsonl(dir.file("out.jsonl"))
    .dead_letter(dir.file("dead.jsonl"));
  return b;
}

/// Checks every output line's content; returns ids per user in output order.
std::map<std::string, std::vector<int64_t>> check_contents(const std::vector<std::string>& lines) {
  std::map<std::string, std::vector<int64_t>> ids_by_user;
  simdjson::dom::parser parser;
  for (auto& line : lines) {
    auto obj = parse_object(parser, line);
    auto id = int_field(obj, "id");
    auto review = str_field(obj, "review");
    auto expected = reviews[static_cast<size_t>(id) % reviews.size()];
    CHECK(review == expected.first);
    CHECK(str_field(obj, "sentiment") == expected.second);
    CHECK(int_field(obj, "sentiment_length") == static_cast<int64_t>(expected.second.size()));
    ids_by_user[str_field(obj, "user")].push_back(id);
  }
  return ids_by_user;
}

} // namespace

TEST_CASE("ordered: two chained stages at P=2, one line per input, input order kept per subtask") {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  write_file(dir.file("in.jsonl"), review_lines(2000));
  auto run = run_virtual(two_stage_job(dir, output_mode::ordered, models), models);
  REQUIRE(run.report.ok);
  CHECK(run.report.records_in == 2000);
  CHECK(run.report.records_out == 2000);
  CHECK(run.report.dead_lettered == 0);
  auto lines = read_lines(dir.file("out.jsonl"));
  REQUIRE(lines.size() == 2000);
  auto by_user = check_contents(lines);
  CHECK(by_user.size() == 7);
  for (auto& kv : by_user) {
    CAPTURE(kv.first);
    CHECK(std::is_sorted(kv.second.begin(), kv.second.end()));
  }
  CHECK(run.counters->stages[0].calls.load() >= 2000 / 8);
}

TEST_CASE("unordered: the same job writes the same records, each exactly once") {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  write_file(dir.file("in.jsonl"), review_lines(2000));
  auto run = run_virtual(two_stage_job(dir, output_mode::unordered, models), models);
  REQUIRE(run.report.ok);
  auto lines = read_lines(dir.file("out.jsonl"));
  REQUIRE(lines.size() == 2000);
  auto by_user = check_contents(lines);
  std::set<int64_t> ids;
  for (auto& kv : by_user)
    ids.insert(kv.second.begin(), kv.second.end());
  CHECK(ids.size() == 2000);
  CHECK(*ids.begin() == 0);
  CHECK(*ids.rbegin() == 1999);
}

TEST_CASE("backpressure: a slow model stops the source at the configured credit") {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  constexpr uint32_t credit = 16;
  constexpr uint32_t parallelism = 2;
  constexpr uint64_t count = 3000;
  auto cfg = job_builder{"slow"}
               .parallelism(parallelism)
               .source_generator(count)
               .model(model_spec{"slow", "keyword-classifier"}
                        .max_concurrent_operations(credit)
                        .batch_max_size(4)
                        .latency(std::chrono::milliseconds(50)))
               .stage("slow")
               .sink_jsonl(dir.file("out.jsonl"))
               .dead_letter(dir.file("dead.jsonl"))
               .build(models);
  uint64_t max_ahead = 0;
  uint64_t violations = 0;
  uint64_t in_before_first_result = 0;
  auto run = run_virtual(cfg, models, [&](const job_counters& c, std::chrono::nanoseconds) {
    auto in = c.records_in.load();
    auto scored = c.stages[0].left.load();
    max_ahead = std::max(max_ahead, in - scored);
    violations += (in - scored > parallelism * credit);
    if (scored == 0)
      in_before_first_result = in;
  });
  REQUIRE(run.report.ok);
  CHECK(run.report.records_out == count);
  CHECK(violations == 0);
  // The bound is reached (the source really was held back by credit)...
  CHECK(max_ahead == parallelism * credit);
  // ...and before the model answered anything, the source had read no more.
  CHECK(in_before_first_result == parallelism * credit);
  CHECK(run.counters->stages[0].max_held.load() == credit);
  // 3000 records, 16 in flight per subtask, 50 ms per call: >= 4.6 s of virtual time.
  CHECK(run.elapsed >= std::chrono::milliseconds(50) * (count / (parallelism * credit)));
}

TEST_CASE("malformed and unscorable lines go to the dead-letter file with their line numbers") {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  write_file(dir.file("in.jsonl"),
             "{\"id\":1,\"review\":\"great\"}\n"  // line 1: ok
             "{\"id\":2,\"review\":\"bad\n"       // line 2: malformed JSON
             "\n"                                 // line 3: blank, skipped
             "[1,2]\r\n"                          // line 4: not an object
             "{\"id\":5}\n"                       // line 5: missing field
             "{\"id\":6,\"review\":42}\n"         // line 6: model rejects a number
             "{\"id\":7,\"review\":\"awful\"}");  // line 7: ok, no final newline
  auto cfg = one_stage(dir, "dead-letters", model_spec{"sentiment", "keyword-classifier"}.input("text", "review"))
               .parallelism(2)
               .build(models);
  auto run = run_virtual(cfg, models);
  REQUIRE(run.report.ok);
  CHECK(run.report.records_in == 6);
  CHECK(run.report.records_out == 2);
  CHECK(run.report.dead_lettered == 4);
  CHECK(run.report.records_in == run.report.records_out + run.report.dead_lettered);
  auto dead = read_lines(dir.file("dead.jsonl"));
  REQUIRE(dead.size() == 4);
  std::map<int64_t, std::string> reason_by_line;
  simdjson::dom::parser parser;
  for (auto& line : dead) {
    auto obj = parse_object(parser, line);
    CHECK(str_field(obj, "source") == dir.file("in.jsonl"));
    CHECK(int_field(obj, "offset") == int_field(obj, "line"));
    reason_by_line[int_field(obj, "line")] = str_field(obj, "reason") + " | " + str_field(obj, "record");
  }
  REQUIRE(reason_by_line.size() == 4);
  CHECK(reason_by_line[2].find("stage 1 \"sentiment\": malformed JSON") == 0);
  CHECK(reason_by_line[2].find("{\"id\":2,\"review\":\"bad") != std::string::npos);
  CHECK(reason_by_line[4].find("not a JSON object | [1,2]") != std::string::npos);
  CHECK(reason_by_line[5].find("missing field \"review\"") != std::string::npos);
  CHECK(reason_by_line[6].find("fatal-record: input 'text' is not a JSON string") != std::string::npos);
  auto out = read_lines(dir.file("out.jsonl"));
  REQUIRE(out.size() == 2);
  CHECK(out[0] == R"({"id":1,"review":"great","label":"positive","score":1.000})");
  CHECK(out[1] == R"({"id":7,"review":"awful","label":"negative","score":1.000})");
}

TEST_CASE("failure-action fail: an unscorable record fails the job with the stage and reason") {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  write_file(dir.file("in.jsonl"), review_lines(50) + "{\"id\":50,\"review\":null}\n" + review_lines(50));
  auto cfg = one_stage(dir, "strict", model_spec{"sentiment", "keyword-classifier"}.input("text", "review").on_failure(
                 failure_action::fail_job))
               .build(models);
  auto run = run_virtual(cfg, models);
  CHECK_FALSE(run.report.ok);
  CHECK(run.report.reason.find("stage 1 \"sentiment\"") != std::string::npos);
  CHECK(run.report.reason.find("record offset 51") != std::string::npos);
  CHECK(run.report.reason.find("failure-action is \"fail-job\"") != std::string::npos);
}

TEST_CASE("an output field replaces an input field of the same name (no duplicate keys)") {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  write_file(dir.file("in.jsonl"), R"({"label":"old","review":"great","n":[1,{"a":"b"}]})" "\n");
  auto cfg = one_stage(dir, "clash", model_spec{"sentiment", "keyword-classifier"}.input("text", "review"))
               .build(models);
  auto run = run_virtual(cfg, models);
  REQUIRE(run.report.ok);
  auto out = read_lines(dir.file("out.jsonl"));
  REQUIRE(out.size() == 1);
  CHECK(out[0] == R"({"review":"great","n":[1,{"a":"b"}],"label":"positive","score":1.000})");
}

TEST_CASE("a source file that cannot be opened fails the job with the path") {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  auto cfg = job_builder{"missing"}
               .source_jsonl(dir.file("nope.jsonl"))
               .model(model_spec{"sentiment", "keyword-classifier"})
               .stage("sentiment")
               .sink_jsonl(dir.file("out.jsonl"))
               .build(models);
  auto run = run_virtual(cfg, models);
  CHECK_FALSE(run.report.ok);
  CHECK(run.report.reason.find("nope.jsonl") != std::string::npos);
  CHECK(run.report.reason.find("No such file") != std::string::npos);
}

TEST_CASE("a generator with a rate paces records on the actor clock") {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  auto cfg = job_builder{"paced"}
               .source_generator(500, {}, 1000.0) // 1000 records/s
               .model(model_spec{"sentiment", "keyword-classifier"})
               .stage("sentiment")
               .sink_jsonl(dir.file("out.jsonl"))
               .build(models);
  auto run = run_virtual(cfg, models);
  REQUIRE(run.report.ok);
  CHECK(run.report.records_out == 500);
  // 500 records at 1000/s: the last is due at 499 ms.
  CHECK(run.elapsed >= std::chrono::milliseconds(499));
  CHECK(run.elapsed < std::chrono::milliseconds(510));
}

TEST_CASE("a model whose result has the wrong shape dead-letters the batch, never reads past it") {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  // Rows: what the broken model returns; every record must be dead-lettered.
  struct row {
    const char* what;
    std::function<void(const call_request&, call_result&)> compute;
    const char* reason;
  };
  std::vector<row> rows = {
    {"one row error for a batch of 4",
     [](const call_request& in, call_result& out) {
       out.values.resize(in.rows);
       out.row_errors.resize(1);
     },
     "row errors for"},
    {"too few values",
     [](const call_request& in, call_result& out) { out.values.resize(in.rows - 1); },
     "values for"},
  };
  for (auto& r : rows) {
    CAPTURE(r.what);
    in_process_model broken;
    broken.outputs = {"y"};
    broken.compute = r.compute;
    models.add("broken", broken);
    write_file(dir.file("in.jsonl"), review_lines(8));
    auto cfg = one_stage(dir, "broken", model_spec{"b", "broken"}.batch_max_size(4).retry(1))
                 .build(models);
    auto run = run_virtual(cfg, models);
    REQUIRE(run.report.ok);
    CHECK(run.report.records_out == 0);
    CHECK(run.report.dead_lettered == 8);
    auto dead = read_file(dir.file("dead.jsonl"));
    CHECK(count_of(dead, "fatal-endpoint: model returned") == 8);
    CHECK(count_of(dead, r.reason) == 8);
  }
}

TEST_CASE("a dead letter holds the record as it arrived, even when an output would replace a field") {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  write_file(dir.file("in.jsonl"), R"({"review":5,"other":1})" "\n");
  auto cfg = one_stage(dir, "keep", model_spec{"s", "keyword-classifier"}.input("text", "review").output("label", "review"))
               .build(models);
  auto run = run_virtual(cfg, models);
  REQUIRE(run.report.ok);
  auto dead = read_lines(dir.file("dead.jsonl"));
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].find(R"("record":"{\"review\":5,\"other\":1}")") != std::string::npos);
}

TEST_CASE("a generator paced by a profile follows it; end-to-end latency is the service time") {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  auto cfg = job_builder{"profiled"}
               .source_generator(1000000) // more than the profile holds: it ends with the profile
               .model(model_spec{"sentiment", "keyword-classifier"}
                        .max_concurrent_operations(256)
                        .concurrency(64)
                        .latency(std::chrono::milliseconds(5)))
               .stage("sentiment")
               .sink_jsonl(dir.file("out.jsonl"))
               .build(models);
  // 1 s at 200/s, 1 s from 200/s up to 1000/s, then a 500 ms pause: 800 records.
  cfg.source.profile = {load_segment::constant_rate(std::chrono::seconds{1}, 200),
                        load_segment::ramp_rate(std::chrono::seconds{1}, 200, 1000),
                        load_segment::constant_rate(std::chrono::milliseconds{500}, 0)};
  uint64_t in_before_1s = 0, in_before_2s = 0;
  auto run = run_virtual(cfg, models, [&](const job_counters& c, std::chrono::nanoseconds t) {
    if (t < std::chrono::seconds{1})
      in_before_1s = c.records_in.load();
    if (t < std::chrono::seconds{2})
      in_before_2s = c.records_in.load();
  });
  REQUIRE(run.report.ok);
  CHECK(run.report.records_out == 800);
  // Records 0..199 are due before 1 s (record i at i / 200 s), all 800
  // before 2 s; the job ends when the pause does.
  CHECK(in_before_1s == 200);
  CHECK(in_before_2s == 800);
  CHECK(run.elapsed >= std::chrono::milliseconds(2500));
  CHECK(run.elapsed < std::chrono::milliseconds(2510));
  // Every record waits only for its 5 ms call: p50 and p99 in the 5 ms
  // bucket (4864..5120 us).
  auto& e2e = run.counters->end_to_end;
  CHECK(e2e.count() == 800);
  CHECK(e2e.quantile(0.5) >= std::chrono::microseconds(4864));
  CHECK(e2e.quantile(0.5) <= std::chrono::microseconds(5120));
  CHECK(e2e.quantile(0.99) <= std::chrono::microseconds(5120));
}

TEST_CASE("end-to-end latency counts source lag: a generator paced faster than the model serves") {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  // 1000 records/s into one slot serving one record per 5 ms (200/s): the
  // source falls behind by 4 ms a record, held back by credit.
  auto cfg = job_builder{"overloaded"}
               .source_generator(1000, {}, 1000.0)
               .model(model_spec{"slow", "keyword-classifier"}
                        .max_concurrent_operations(4)
                        .concurrency(1)
                        .batch_max_size(1)
                        .latency(std::chrono::milliseconds(5)))
               .stage("slow")
               .sink_jsonl(dir.file("out.jsonl"))
               .sink_buffer(4)
               .build(models);
  auto run = run_virtual(cfg, models);
  REQUIRE(run.report.ok);
  CHECK(run.report.records_out == 1000);
  CHECK(run.elapsed >= std::chrono::seconds(5));
  auto& e2e = run.counters->end_to_end;
  CHECK(e2e.count() == 1000);
  // Inside the stage a record waits for at most the 4 ahead of it...
  CHECK(run.counters->stages[0].latency.quantile(0.99) <= std::chrono::milliseconds(30));
  // ...but born is when it was due, so the lag behind the rate counts:
  // record i waits about 4 i ms (the last about 4 s).
  CHECK(e2e.quantile(0.5) >= std::chrono::milliseconds(1800));
  CHECK(e2e.quantile(0.5) <= std::chrono::milliseconds(2200));
  CHECK(e2e.quantile(0.99) >= std::chrono::milliseconds(3700));
  CHECK(e2e.quantile(0.99) > 100 * std::chrono::milliseconds(5));
}
