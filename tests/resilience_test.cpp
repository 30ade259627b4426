// Resilience end to end on virtual time: an endpoint outage at P=8 with
// two-tier vs subtask-only breakers, a 429 storm with Retry-After, attempt
// and total timeouts racing late answers, adaptive batching, and the
// failure actions. Figures are asserted from counters and from what the
// backend itself saw.

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/job_builder.hpp"
#include "tests/job_helpers.hpp"
#include "tests/test_util.hpp"
#include "tests/virtual_job.hpp"

using namespace sinfer;
using namespace sinfer::test;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

namespace {

/// The per-record service time of the simulated accelerator in these tests.
nanoseconds microseconds_per_record() {
  return std::chrono::microseconds{250};
}

/// What an endpoint does during a time window.
enum class fault { none, error, rate_limited };

struct fault_window {
  std::string endpoint;
  nanoseconds from, to;
  fault kind;
  milliseconds retry_after{0};
};

/// One call as the backend saw it.
struct seen_call {
  std::string endpoint;
  nanoseconds at;
  uint32_t rows;
  bool failed;
};

/// A scripted in-process backend: registered as model "scripted", each
/// endpoint names itself in its options ({"endpoint": "a"}); it answers
/// every row with {"label": ...} unless a fault window covers the call.
/// `now` is set by the test's observer after every message (virtual time).
struct script {
  std::vector<fault_window> faults;
  nanoseconds now{0};
  std::vector<seen_call> calls;

  fault active(const std::string& endpoint, milliseconds& retry_after) const {
    for (auto& f : faults)
      if (f.endpoint == endpoint && now >= f.from && now < f.to) {
        retry_after = f.retry_after;
        return f.kind;
      }
    return fault::none;
  }

  uint64_t calls_to(const std::string& endpoint, nanoseconds from = nanoseconds::min(),
                    nanoseconds to = nanoseconds::max(), bool failed_only = false) const {
    uint64_t n = 0;
    for (auto& c : calls)
      if (c.endpoint == endpoint && c.at >= from && c.at < to && (!failed_only || c.failed))
        ++n;
    return n;
  }
};

void register_scripted(model_registry& models, std::shared_ptr<script> s) {
  models.add("scripted", [s](std::string_view options, std::string& err) {
    std::string endpoint = "default";
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    if (p.parse(std::string{options}).get(obj)) {
      err = "options must be an object";
      return in_process_model{};
    }
    std::string_view name;
    if (obj["endpoint"].get(name) == simdjson::SUCCESS)
      endpoint = std::string{name};
    in_process_model m;
    m.inputs = {"text"};
    m.outputs = {"label"};
    m.compute = [s, endpoint](const call_request& in, call_result& out) {
      milliseconds retry_after{0};
      auto f = s->active(endpoint, retry_after);
      s->calls.push_back(seen_call{endpoint, s->now, in.rows, f != fault::none});
      if (f == fault::error) {
        out.error = call_error{error_class::retryable, "connection refused by " + endpoint, milliseconds{0}};
        return;
      }
      if (f == fault::rate_limited) {
        out.error = call_error{error_class::rate_limited, "HTTP 429 from " + endpoint, retry_after};
        return;
      }
      for (uint32_t r = 0; r < in.rows; ++r)
        out.values.push_back("\"ok-" + endpoint + "\"");
    };
    return m;
  });
}

endpoint_config endpoint_named(const std::string& name) {
  endpoint_config ep;
  ep.name = name;
  ep.options_json = "{\"endpoint\":\"" + name + "\"}";
  return ep;
}

/// Runs `cfg` with `s->now` following virtual time.
virtual_run run_scripted(const job_config& cfg, const model_registry& models, std::shared_ptr<script> s) {
  return run_virtual(cfg, models, [s](const job_counters&, nanoseconds t) { s->now = t; });
}

struct outage_figures {
  virtual_run run;
  uint64_t calls_to_dead = 0;
  /// The most calls the dead endpoint got within one job-wide half-open
  /// window (two-tier only).
  uint64_t max_probes_per_window = 0;
  uint64_t half_open_windows = 0;
};

outage_figures run_outage(bool two_tier) {
  temp_dir dir;
  auto s = std::make_shared<script>();
  // Endpoint b is down from 2 s to 6 s (connection refused), then recovers.
  s->faults.push_back({"b", seconds{2}, seconds{6}, fault::error, {}});
  auto models = model_registry::with_builtins();
  register_scripted(models, s);
  breaker_config subtask;
  subtask.minimum_calls = 5;
  subtask.window_calls = 20;
  subtask.failure_rate = 0.5;
  subtask.open_duration = milliseconds{500};
  subtask.half_open_probes = 3;
  breaker_config job = subtask;
  auto backoff = quick_backoff(milliseconds{20}, milliseconds{200});
  auto cfg = job_builder{"outage"}
               .parallelism(8)
               .source_generator(16000, R"({"id":"${i}","text":"${pick:good|bad|fine}"})", 2000.0)
               .model(model_spec{"m", "scripted"}
                        .endpoint(endpoint_named("a"))
                        .endpoint(endpoint_named("b"))
                        .concurrency(8)
                        .batch({8, milliseconds{0}, 0})
                        .latency(milliseconds{4}, microseconds_per_record())
                        .retry(6, backoff)
                        .subtask_breaker(subtask)
                        .job_breaker(job, two_tier))
               .stage("m")
               .sink_jsonl(dir.file("out.jsonl"))
               .dead_letter(dir.file("dead.jsonl"))
               .build(models);
  outage_figures f;
  f.run = run_scripted(cfg, models, s);
  for (auto& line : read_lines(dir.file("dead.jsonl")))
    MESSAGE(line);
  f.calls_to_dead = s->calls_to("b", seconds{2}, seconds{6}, true);
  // Job-wide half-open windows of b: from each half-open to the next change.
  auto events = f.run.counters->breaker_events();
  for (size_t i = 0; i < events.size(); ++i) {
    auto& e = events[i];
    if (e.scope != "job" || e.endpoint != "m/b" || e.to != "half-open")
      continue;
    auto end = nanoseconds::max();
    for (size_t j = i + 1; j < events.size(); ++j)
      if (events[j].scope == "job" && events[j].endpoint == "m/b") {
        end = events[j].at;
        break;
      }
    ++f.half_open_windows;
    f.max_probes_per_window = std::max(f.max_probes_per_window, s->calls_to("b", e.at, end));
  }
  return f;
}

} // namespace

TEST_CASE("outage of one of two endpoints at P=8: nothing lost, two-tier breakers waste far fewer calls") {
  auto two = run_outage(true);
  auto one = run_outage(false);
  MESSAGE("calls to the dead endpoint: two-tier " << two.calls_to_dead << ", subtask-only " << one.calls_to_dead
                                                  << "; job half-open windows " << two.half_open_windows
                                                  << ", most calls in one " << two.max_probes_per_window);
  for (auto* f : {&two, &one}) {
    REQUIRE(f->run.report.ok);
    CHECK(f->run.report.records_in == 16000);
    // Lost = 0: every record is written, and none had to be dead-lettered.
    CHECK(f->run.report.records_out == 16000);
    CHECK(f->run.report.dead_lettered == 0);
  }
  CHECK(two.calls_to_dead > 0);
  CHECK(two.calls_to_dead * 4 <= one.calls_to_dead);
  // The job breaker went half-open at least once during the outage and
  // probed with at most its 3 probes each time.
  CHECK(two.half_open_windows >= 1);
  CHECK(two.max_probes_per_window <= 3);
}

TEST_CASE("429 storm with Retry-After: no call before it expires, attempts within the retry budget") {
  temp_dir dir;
  auto s = std::make_shared<script>();
  s->faults.push_back({"a", seconds{1}, seconds{3}, fault::rate_limited, milliseconds{400}});
  auto models = model_registry::with_builtins();
  register_scripted(models, s);
  auto backoff = quick_backoff(milliseconds{10});
  const uint64_t records = 4000;
  auto cfg = job_builder{"storm"}
               .parallelism(4)
               .source_generator(records, R"({"id":"${i}","text":"x"})", 1000.0)
               .model(model_spec{"m", "scripted"}
                        .endpoint(endpoint_named("a"))
                        .concurrency(4)
                        .batch({8, milliseconds{0}, 0})
                        .retry(10, backoff)
                        .retry_budget({20.0, 3}))
               .stage("m")
               .sink_jsonl(dir.file("out.jsonl"))
               .dead_letter(dir.file("dead.jsonl"))
               .build(models);
  auto run = run_scripted(cfg, models, s);
  REQUIRE(run.report.ok);
  // Nothing lost: every record is written or dead-lettered.
  CHECK(run.report.records_out + run.report.dead_lettered == records);
  // With no service time, a 429 answers at the call's start: no call may
  // start within 400 ms after one.
  uint64_t limited = 0, violations = 0;
  for (auto& c : s->calls) {
    if (!c.failed)
      continue;
    ++limited;
    for (auto& d : s->calls)
      if (d.at > c.at && d.at < c.at + milliseconds{400})
        ++violations;
  }
  CHECK(limited > 0);
  CHECK(violations == 0);
  uint64_t attempts = 0;
  for (auto& c : s->calls)
    attempts += c.rows;
  MESSAGE("429 answers " << limited << ", record attempts " << attempts << " for " << records << " records");
  CHECK(attempts <= records + records / 5);
}

TEST_CASE("timeouts: attempt timeouts and late answers give each record exactly one outcome") {
  // Rows: service time, timeout.attempt, timeout.total, attempts; what
  // every record's outcome must be.
  struct row {
    const char* name;
    milliseconds service, attempt, total;
    uint32_t attempts;
    bool scored;
    const char* reason;
  };
  std::vector<row> rows = {
    {"answers in time", milliseconds{50}, milliseconds{100}, milliseconds{1000}, 3, true, ""},
    {"every attempt times out, answers arrive late", milliseconds{300}, milliseconds{100}, milliseconds{5000}, 2,
     false, "no answer within timeout.attempt (100 ms) (after 2 attempts)"},
    {"total timeout before the attempts run out", milliseconds{300}, milliseconds{250}, milliseconds{400}, 5,
     false, "timeout.total (400 ms) exceeded after 2 attempts; last error: retryable: m/m: no answer within"},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    temp_dir dir;
    auto models = model_registry::with_builtins();
    auto backoff = quick_backoff(milliseconds{10}, std::chrono::seconds{10}, jitter_mode::none);
    // Breakers that never open: each attempt's outcome is the endpoint's.
    auto lenient = never_opens();
    auto cfg = job_builder{"timeouts"}
                 .parallelism(2)
                 .source_generator(40, R"({"id":"r${i}","text":"good"})", 100.0)
                 .model(model_spec{"m", "keyword-classifier"}
                          .latency(r.service)
                          .timeout(r.attempt, r.total)
                          .retry(r.attempts, backoff)
                          .retry_budget({100.0, 100})
                          .subtask_breaker(lenient)
                          .job_breaker(lenient))
                 .stage("m")
                 .sink_jsonl(dir.file("out.jsonl"))
                 .dead_letter(dir.file("dead.jsonl"))
                 .build(models);
    auto run = run_virtual(cfg, models);
    REQUIRE(run.report.ok);
    auto out = read_lines(dir.file("out.jsonl"));
    auto dead = read_lines(dir.file("dead.jsonl"));
    // Exactly one outcome per record: 40 lines in all, no id twice.
    CHECK(out.size() + dead.size() == 40);
    std::map<std::string, int> seen;
    simdjson::dom::parser p;
    for (auto& line : out)
      ++seen[str_field(parse_object(p, line), "id")];
    for (auto& line : dead) {
      auto rec = str_field(parse_object(p, line), "record");
      ++seen[rec];
      CHECK_MESSAGE(line.find(r.reason) != std::string::npos, line);
    }
    CHECK(seen.size() == 40);
    CHECK(out.size() == (r.scored ? 40u : 0u));
  }
}

TEST_CASE("batching: batch of 1 and no wait at light load, full batches at saturation") {
  // A simulated accelerator: a batch of b takes 5 ms + b * 0.25 ms, 2 slots.
  struct row {
    const char* name;
    double rate; // records/s; 0 = as fast as credit allows
    uint64_t records;
  };
  std::vector<row> rows = {{"light load", 20.0, 100}, {"saturation", 0.0, 20000}};
  for (auto& r : rows) {
    CAPTURE(r.name);
    temp_dir dir;
    auto models = model_registry::with_builtins();
    auto cfg = job_builder{"batching"}
                 .parallelism(2)
                 .source_generator(r.records, R"({"id":"${i}","text":"good"})", r.rate)
                 .model(model_spec{"m", "keyword-classifier"}
                          .latency(milliseconds{5}, std::chrono::microseconds{250})
                          .concurrency(2)
                          .batch({32, milliseconds{0}, 0})
                          .max_concurrent_operations(256))
                 .stage("m")
                 .sink_jsonl(dir.file("out.jsonl"))
                 .build(models);
    auto run = run_virtual(cfg, models);
    REQUIRE(run.report.ok);
    CHECK(run.report.records_out == r.records);
    auto& sc = run.counters->stages[0];
    auto calls = sc.calls.load();
    if (r.rate > 0) {
      // Every record went alone, as soon as it arrived: the last record is
      // due at (n-1)/rate and is out one service time (5.25 ms) later.
      CHECK(sc.max_batch.load() == 1);
      CHECK(calls == r.records);
      // Each went out because a slot was free (the last one at end of input).
      CHECK(sc.batches_by_reason[static_cast<size_t>(batch_close::slot_free)].load()
              + sc.batches_by_reason[static_cast<size_t>(batch_close::flush)].load()
            == r.records);
      auto last_due = nanoseconds{static_cast<int64_t>((r.records - 1) * 1e9 / r.rate)};
      CHECK(run.elapsed <= last_due + microseconds_per_record() + milliseconds{5});
    } else {
      CHECK(sc.max_batch.load() == 32);
      auto full = sc.batches_by_reason[static_cast<size_t>(batch_close::full)].load();
      MESSAGE("saturation: " << calls << " calls, " << full << " full");
      CHECK(full * 10 >= calls * 9);
      // Throughput near the accelerator's limit: 2 slots x 32 / 13 ms.
      double capacity = 2.0 * 32 / 0.013;
      double achieved = static_cast<double>(r.records) / (static_cast<double>(run.elapsed.count()) / 1e9);
      MESSAGE("saturation: " << achieved << " records/s of " << capacity);
      CHECK(achieved >= 0.95 * capacity);
    }
  }
}

TEST_CASE("failure actions: default-value writes the configured outputs, fallback scores with the next model") {
  auto s = std::make_shared<script>();
  s->faults.push_back({"dead", seconds{0}, seconds{1000}, fault::error, {}});
  auto models = model_registry::with_builtins();
  register_scripted(models, s);
  auto backoff = quick_backoff(milliseconds{5});
  struct row {
    const char* name;
    bool fallback;
    const char* expected;
  };
  std::vector<row> rows = {{"default-value", false, R"("label":"unknown")"},
                           {"fallback", true, R"("label":"positive")"}};
  for (auto& r : rows) {
    CAPTURE(r.name);
    temp_dir dir;
    auto primary = model_spec{"primary", "scripted"}.endpoint(endpoint_named("dead")).retry(2, backoff);
    if (r.fallback)
      primary.fallback("rules");
    else
      primary.default_value("label", "\"unknown\"");
    auto cfg = job_builder{"actions"}
                 .parallelism(2)
                 .source_generator(50, R"({"id":"${i}","text":"good"})")
                 .model(primary)
                 .model(model_spec{"rules", "keyword-classifier"}.output("label", "label"))
                 .stage("primary")
                 .sink_jsonl(dir.file("out.jsonl"))
                 .dead_letter(dir.file("dead.jsonl"))
                 .build(models);
    auto run = run_virtual(cfg, models);
    REQUIRE(run.report.ok);
    CHECK(run.report.records_out == 50);
    CHECK(run.report.dead_lettered == 0);
    auto out = read_lines(dir.file("out.jsonl"));
    REQUIRE(out.size() == 50);
    for (auto& line : out)
      CHECK(line.find(r.expected) != std::string::npos);
    auto& sc = run.counters->stages[0];
    CHECK((r.fallback ? sc.fell_back.load() : sc.defaulted.load()) == 50);
  }
}

TEST_CASE("supervision: a model that throws crashes its subtask, which restarts and loses nothing") {
  // Rows: calls that throw before the model works, restart strategy, and
  // whether the job must survive.
  struct row {
    const char* name;
    int throwing_calls;
    restart_config strategy;
    bool survives;
    const char* reason;
  };
  restart_config fixed;
  fixed.kind = restart_kind::fixed_delay;
  fixed.attempts = 5;
  fixed.delay = milliseconds{100};
  restart_config none;
  none.kind = restart_kind::none;
  restart_config three = fixed;
  three.attempts = 3;
  std::vector<row> rows = {
    {"two crashes, fixed-delay 5", 2, fixed, true, ""},
    {"poison model, fixed-delay 3", 1000000, three, false, "fixed-delay gives up"},
    {"one crash, restarts disabled", 1, none, false, "restart strategy none gives up"},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    temp_dir dir;
    auto models = model_registry::with_builtins();
    auto calls = std::make_shared<int>(0);
    in_process_model crashy;
    crashy.inputs = {"text"};
    crashy.outputs = {"label"};
    int limit = r.throwing_calls;
    crashy.compute = [calls, limit](const call_request& in, call_result& out) {
      if ((*calls)++ < limit)
        throw std::runtime_error("boom");
      for (uint32_t i = 0; i < in.rows; ++i)
        out.values.push_back("\"fine\"");
    };
    models.add("crashy", crashy);
    auto cfg = job_builder{"crashes"}
                 .parallelism(2)
                 .restart_strategy(r.strategy)
                 .source_generator(200, R"({"id":"r${i}","text":"x"})", 1000.0)
                 .model(model_spec{"m", "crashy"}.latency(milliseconds{2}))
                 .stage("m")
                 .sink_jsonl(dir.file("out.jsonl"))
                 .dead_letter(dir.file("dead.jsonl"))
                 .build(models);
    auto run = run_virtual(cfg, models);
    CHECK(run.report.ok == r.survives);
    if (r.survives) {
      CHECK(run.counters->restarts.load() == static_cast<uint64_t>(r.throwing_calls));
      CHECK(run.report.records_out == 200);
      CHECK(run.report.dead_lettered == 0);
      std::set<std::string> ids;
      simdjson::dom::parser p;
      for (auto& line : read_lines(dir.file("out.jsonl")))
        ids.insert(str_field(parse_object(p, line), "id"));
      CHECK(ids.size() == 200);
    } else {
      CHECK(run.report.reason.find("crashed: model threw: boom") != std::string::npos);
      CHECK(run.report.reason.find(r.reason) != std::string::npos);
      CAPTURE(run.report.reason);
    }
  }
}

// Regression tests from the review of the first resilience commit.

TEST_CASE("fallback: a late answer from the model a record left is not written under the fallback's fields") {
  temp_dir dir;
  auto s = std::make_shared<script>();
  auto models = model_registry::with_builtins();
  register_scripted(models, s);
  // The primary answers after 1.5 s, its timeout.total is 1 s: every record
  // falls back to a model with other outputs, which answers after 3 s.
  auto primary = model_spec{"primary", "scripted"}
                   .endpoint(endpoint_named("p"))
                   .latency(milliseconds{1500})
                   .timeout(seconds{30}, seconds{1})
                   .fallback("rules");
  auto cfg = job_builder{"late"}
               .parallelism(1)
               .source_generator(4, R"({"id":"r${i}","text":"good"})")
               .model(primary)
               .model(model_spec{"rules", "keyword-classifier"}.latency(seconds{3}).timeout(seconds{30}, seconds{10}))
               .stage("primary")
               .sink_jsonl(dir.file("out.jsonl"))
               .dead_letter(dir.file("dead.jsonl"))
               .build(models);
  auto run = run_scripted(cfg, models, s);
  REQUIRE(run.report.ok);
  CHECK(run.counters->stages[0].fell_back.load() == 4);
  auto out = read_lines(dir.file("out.jsonl"));
  REQUIRE(out.size() == 4);
  simdjson::dom::parser p;
  for (auto& line : out) {
    CHECK(line.find("ok-p") == std::string::npos);
    CHECK(str_field(parse_object(p, line), "label") == "positive");
  }
}

TEST_CASE("retry budget out of tokens: records fail at once instead of waiting for ever") {
  // Rows: timeout.total (0: none); the job must end promptly either way.
  for (auto total : {seconds{0}, seconds{120}}) {
    CAPTURE(total.count());
    temp_dir dir;
    auto s = std::make_shared<script>();
    s->faults.push_back({"a", seconds{0}, seconds{1000}, fault::error, {}});
    auto models = model_registry::with_builtins();
    register_scripted(models, s);
    auto backoff = quick_backoff(milliseconds{10});
    auto lenient = never_opens();
    auto cfg = job_builder{"budget"}
                 .parallelism(1)
                 .source_generator(4, R"({"id":"r${i}","text":"x"})")
                 .model(model_spec{"m", "scripted"}
                          .endpoint(endpoint_named("a"))
                          .timeout(seconds{30}, total)
                          .retry(3, backoff)
                          .retry_budget({20.0, 3})
                          .subtask_breaker(lenient)
                          .job_breaker(lenient))
                 .stage("m")
                 .sink_jsonl(dir.file("out.jsonl"))
                 .dead_letter(dir.file("dead.jsonl"))
                 .build(models);
    auto run = run_scripted(cfg, models, s);
    REQUIRE(run.report.ok);
    CHECK(run.report.dead_lettered == 4);
    CHECK(run.elapsed < seconds{1});
    // 4 first attempts earn 0.8 of a token: no retry at all.
    uint64_t attempts = 0;
    for (auto& c : s->calls)
      attempts += c.rows;
    CHECK(attempts == 4);
    for (auto& line : read_lines(dir.file("dead.jsonl")))
      CHECK(line.find("retry budget exhausted") != std::string::npos);
  }
}

TEST_CASE("job breaker: probes go to the subtasks that use the endpoint, and it closes after recovery") {
  temp_dir dir;
  auto s = std::make_shared<script>();
  s->faults.push_back({"b", seconds{2}, seconds{4}, fault::error, {}});
  auto models = model_registry::with_builtins();
  register_scripted(models, s);
  breaker_config subtask;
  subtask.minimum_calls = 5;
  subtask.window_calls = 20;
  subtask.open_duration = milliseconds{500};
  breaker_config job = subtask;
  auto backoff = quick_backoff(milliseconds{20}, milliseconds{200});
  // Every record has the same key: one subtask of 8 does all the work.
  auto cfg = job_builder{"skew"}
               .parallelism(8)
               .partition_by("k")
               .source_generator(1000, R"({"id":"r${i}","k":"same","text":"x"})", 100.0)
               .model(model_spec{"m", "scripted"}
                        .endpoint(endpoint_named("b"))
                        .latency(milliseconds{4})
                        .retry(6, backoff)
                        .subtask_breaker(subtask)
                        .job_breaker(job))
               .stage("m")
               .sink_jsonl(dir.file("out.jsonl"))
               .dead_letter(dir.file("dead.jsonl"))
               .build(models);
  auto run = run_scripted(cfg, models, s);
  REQUIRE(run.report.ok);
  CHECK(run.report.records_out + run.report.dead_lettered == 1000);
  // The source paces 1000 records at 100/s: about 10 s, not minutes.
  CHECK(run.elapsed < seconds{15});
  bool closed_after_recovery = false;
  for (auto& e : run.counters->breaker_events())
    if (e.scope == "job" && e.to == "closed" && e.at >= seconds{4})
      closed_after_recovery = true;
  CHECK(closed_after_recovery);
  MESSAGE("out " << run.report.records_out << ", dead-lettered " << run.report.dead_lettered);
}

TEST_CASE("Retry-After holds for slots granted before it and for lingering batches") {
  temp_dir dir;
  auto s = std::make_shared<script>();
  s->faults.push_back({"a", seconds{1}, seconds{3}, fault::rate_limited, milliseconds{400}});
  auto models = model_registry::with_builtins();
  register_scripted(models, s);
  auto backoff = quick_backoff(milliseconds{10});
  auto service = milliseconds{20};
  auto cfg = job_builder{"storm"}
               .parallelism(2)
               .source_generator(400, R"({"id":"r${i}","text":"x"})", 100.0)
               .model(model_spec{"m", "scripted"}
                        .endpoint(endpoint_named("a"))
                        .latency(service)
                        .concurrency(4)
                        .batch({8, milliseconds{50}, 0})
                        .retry(10, backoff)
                        .retry_budget({100.0, 100}))
               .stage("m")
               .sink_jsonl(dir.file("out.jsonl"))
               .dead_letter(dir.file("dead.jsonl"))
               .build(models);
  auto run = run_scripted(cfg, models, s);
  REQUIRE(run.report.ok);
  CHECK(run.report.records_out + run.report.dead_lettered == 400);
  uint64_t limited = 0, violations = 0;
  for (auto& c : s->calls) {
    if (!c.failed)
      continue;
    ++limited;
    auto answered = c.at + service; // the 429 reaches the endpoint after the service time
    for (auto& d : s->calls)
      if (d.at > answered && d.at < answered + milliseconds{400})
        ++violations;
  }
  CHECK(limited > 0);
  CHECK(violations == 0);
}

TEST_CASE("concurrency limiter: attempt timeouts shrink an endpoint's slots, good answers grow them") {
  struct row {
    const char* name;
    limiter_kind kind;
    milliseconds service;
    uint32_t initial;
    bool shrinks; // else grows
  };
  std::vector<row> rows = {
    {"aimd, every call times out", limiter_kind::aimd, milliseconds{5000}, 8, true},
    {"aimd, fast answers at saturation", limiter_kind::aimd, milliseconds{2}, 2, false},
    {"fixed stays at the max", limiter_kind::fixed, milliseconds{5000}, 8, false},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    temp_dir dir;
    auto models = model_registry::with_builtins();
    auto lenient = never_opens();
    auto backoff = quick_backoff(milliseconds{10});
    auto cfg = job_builder{"limits"}
                 .parallelism(2)
                 .source_generator(r.shrinks ? 200 : 5000, R"({"id":"r${i}","text":"good"})")
                 .model(model_spec{"m", "keyword-classifier"}
                          .latency(r.service)
                          .concurrency(8)
                          .limiter(r.kind, 1, r.initial)
                          .batch({4, milliseconds{0}, 0})
                          .timeout(milliseconds{100}, seconds{0})
                          .retry(1, backoff)
                          .subtask_breaker(lenient)
                          .job_breaker(lenient))
                 .stage("m")
                 .sink_jsonl(dir.file("out.jsonl"))
                 .dead_letter(dir.file("dead.jsonl"))
                 .build(models);
    uint64_t lowest = 1000, highest = 0;
    auto run = run_virtual(cfg, models, [&](const job_counters& c, nanoseconds) {
      for (auto& kv : c.endpoints()) {
        if (kv.second->limit.load() == 0)
          continue; // the endpoint has not started yet
        lowest = std::min<uint64_t>(lowest, kv.second->limit.load());
        highest = std::max<uint64_t>(highest, kv.second->limit.load());
      }
    });
    REQUIRE(run.report.ok);
    MESSAGE("limit between " << lowest << " and " << highest);
    if (r.kind == limiter_kind::fixed) {
      CHECK(lowest == 8);
      CHECK(highest == 8);
    } else if (r.shrinks) {
      CHECK(highest == 8);
      CHECK(lowest < 4);
    } else {
      CHECK(lowest == 2);
      CHECK(highest == 8);
    }
  }
}
