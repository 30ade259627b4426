// Load probes wired into the runtime: readings reach an endpoint's limiter
// and the batchers' router; a failing probe makes its endpoint suspect but
// never fails a record or the job. On virtual time with scripted scrapes
// (probe actors on the scheduler), then in real time against the reference
// server's /metrics on loopback.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/endpoint.hpp"
#include "actors/load_probe.hpp"
#include "backends/in_process.hpp"
#include "runtime/job_builder.hpp"
#include "runtime/job_runner.hpp"
#include "sim/reference_server.hpp"
#include "sim/virtual_time.hpp"
#include "tests/endpoint_helpers.hpp"
#include "tests/job_helpers.hpp"
#include "tests/test_util.hpp"
#include "tests/virtual_job.hpp"

using namespace sinfer;
using namespace sinfer::test;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

namespace {

/// A metrics page as Triton and vLLM write it for model `model`: `pending`
/// waiting, `running` executing; a second model's series with a deep queue
/// that the model filter must leave out.
std::string page(const std::string& model, int pending, int running) {
  return "# TYPE nv_inference_pending_request_count gauge\n"
         "nv_inference_pending_request_count{model=\"" + model + "\",version=\"1\"} " + std::to_string(pending) + "\n"
         "nv_inference_pending_request_count{model=\"other\",version=\"1\"} 100\n"
         "# TYPE vllm:num_requests_running gauge\n"
         "vllm:num_requests_running{model_name=\"" + model + "\"} " + std::to_string(running) + "\n"
         "vllm:num_requests_running{model_name=\"other\"} 100\n";
}

http_answer answered(std::string body) {
  http_answer a;
  a.status = 200;
  a.body = std::move(body);
  return a;
}

http_answer refused() {
  http_answer a;
  a.transport_error = "GET http://10.0.0.1:8002/metrics: Could not establish connection";
  return a;
}

} // namespace

TEST_CASE("probe wiring: readings of a growing queue lower an adaptive limit; failed scrapes and fixed limits do not") {
  // One endpoint (16 slots) and its probe actor scraping every second on
  // virtual time; -1 in `pending` is a failed scrape. Each answered
  // reading with a queue multiplies an aimd limit by
  // 1 - 0.5 * pending / (pending + running), here with 4 running:
  // 16 -> 14.4 (x0.9) -> 12 (x5/6) -> 9 (x0.75) -> 6 (x2/3).
  struct row {
    std::string name;
    limiter_kind kind;
    std::vector<int> pending;
    std::vector<uint64_t> limits; // after each scrape
    bool suspect_at_end;
  };
  std::vector<row> rows = {
    {"aimd, growing queue", limiter_kind::aimd, {0, 1, 2, 4, 8}, {16, 14, 12, 9, 6}, false},
    {"aimd, scrapes failing", limiter_kind::aimd, {-1, -1, -1, -1}, {16, 16, 16, 16}, true},
    {"aimd, a failure between readings", limiter_kind::aimd, {1, -1, 2}, {14, 14, 12}, false},
    {"fixed ignores readings", limiter_kind::fixed, {0, 1, 2, 4, 8}, {16, 16, 16, 16, 16}, false},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    virtual_time_system vt;
    auto& sys = vt.system();
    auto es = silent_endpoint(16);
    es.limiter.kind = r.kind;
    es.limiter.initial = 16;
    es.probe = probe_kind::prometheus;
    es.probe_metrics.model = "m";
    auto ep = vt.stop_at_end(spawn_endpoint(sys, es));
    auto scrapes = std::make_shared<size_t>(0);
    load_probe_settings ps;
    ps.name = es.name;
    ps.endpoint = caf::actor_cast<probe_listener>(ep);
    ps.interval = seconds{1};
    ps.detached = false;
    auto pending = r.pending;
    ps.scrape = [scrapes, pending] {
      auto i = std::min((*scrapes)++, pending.size() - 1);
      return pending[i] < 0 ? refused() : answered(page("m", pending[i], 4));
    };
    auto probe = vt.stop_at_end(spawn_load_probe(sys, ps));
    auto& c = *es.counters;
    for (size_t i = 0; i < r.pending.size(); ++i) {
      CAPTURE(i);
      if (i > 0)
        vt.scheduler().advance_time(seconds{1});
      vt.scheduler().run();
      CHECK(c.probe_scrapes.load() == i + 1);
      CHECK(c.limit.load() == r.limits[i]);
    }
    // The other model's deep queue never counted.
    CHECK(c.max_probe_queue_depth.load() <= 8.0);
    CHECK(c.probe_suspect.load() == r.suspect_at_end);
  }
}

TEST_CASE("probe wiring: an endpoint whose probe stops answering turns suspect after stale-after, and back") {
  // The probe actor is not there at all: the endpoint's own timer notices.
  virtual_time_system vt;
  auto& sys = vt.system();
  auto es = silent_endpoint(16);
  es.probe = probe_kind::prometheus;
  es.probe_metrics.model = "m";
  es.probe_health.stale_after = seconds{30};
  auto ep = vt.stop_at_end(spawn_endpoint(sys, es));
  auto& c = *es.counters;
  vt.scheduler().run();
  vt.scheduler().advance_time(milliseconds{29999});
  vt.scheduler().run();
  CHECK_FALSE(c.probe_suspect.load()); // 1 ms before stale
  vt.scheduler().advance_time(milliseconds{1});
  vt.scheduler().run();
  CHECK(c.probe_suspect.load());
  CHECK(c.probe_suspect_periods.load() == 1);
  // One answered scrape ends it, and the next 30 s count from there.
  caf::anon_send(ep, scrape_atom::value, scrape_outcome{true, page("m", 0, 1), {}});
  vt.scheduler().run();
  CHECK_FALSE(c.probe_suspect.load());
  vt.scheduler().advance_time(seconds{29});
  vt.scheduler().run();
  CHECK_FALSE(c.probe_suspect.load());
  vt.scheduler().advance_time(seconds{1});
  vt.scheduler().run();
  CHECK(c.probe_suspect.load());
  CHECK(c.probe_suspect_periods.load() == 2);
}

namespace {

struct split_run {
  virtual_run run;
  uint64_t calls_a = 0, calls_b = 0;
  std::shared_ptr<endpoint_counters> a, b;
};

/// A job of `records` at `rate` (0: as fast as credit allows) over two
/// in-process endpoints "a" and "b" (4 slots each, 10 ms + 0.25 ms per
/// record) with prometheus probes every 50 ms whose scrapes `scrape_for`
/// scripts. Breakers keep their defaults: nothing here may open them.
split_run run_split(uint64_t records, double rate,
                    std::function<std::function<http_answer()>(const std::string&)> scrape_for) {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  endpoint_config a, b;
  a.name = "a";
  b.name = "b";
  auto cfg = job_builder{"split"}
               .parallelism(2)
               .source_generator(records, R"({"id":"r${i}","text":"${pick:good|bad|fine}"})", rate)
               .model(model_spec{"m", "keyword-classifier"}
                        .endpoint(a)
                        .endpoint(b)
                        .latency(milliseconds{10}, std::chrono::microseconds{250})
                        .concurrency(4)
                        .batch({4, milliseconds{0}, 0}))
               .stage("m")
               .sink_jsonl(dir.file("out.jsonl"))
               .dead_letter(dir.file("dead.jsonl"))
               .build(models);
  // `prometheus` is for HTTP providers; on virtual time the scripted scrape
  // stands in for the server, so the in-process model gets it directly.
  auto& probe = cfg.models.at("m").probe;
  probe.kind = probe_kind::prometheus;
  probe.interval = milliseconds{50};
  probe.model_label_value = "m";
  supervisor_options options;
  options.scrape_for = std::move(scrape_for);
  split_run s;
  s.run = run_virtual(cfg, models, {}, options);
  s.a = s.run.counters->endpoint("m/a");
  s.b = s.run.counters->endpoint("m/b");
  s.calls_a = s.a->calls.load();
  s.calls_b = s.b->calls.load();
  return s;
}

} // namespace

TEST_CASE("probe wiring: a suspect endpoint keeps serving, but the load-aware router prefers the healthy one") {
  // a's metrics port refuses every scrape (suspect after 3, at 100 ms); b's
  // answers an empty queue.
  auto scripted = [](const std::string& endpoint) -> std::function<http_answer()> {
    if (endpoint == "m/a")
      return [] { return refused(); };
    return [] { return answered(page("m", 0, 1)); };
  };
  SUBCASE("light load: b takes nearly every call") {
    auto s = run_split(1000, 200.0, scripted);
    REQUIRE(s.run.report.ok);
    CHECK(s.run.report.records_out == 1000);
    CHECK(s.run.report.dead_lettered == 0);
    MESSAGE("calls a " << s.calls_a << ", b " << s.calls_b);
    CHECK(s.a->probe_suspect.load());
    CHECK_FALSE(s.b->probe_suspect.load());
    CHECK(s.a->probe_failures.load() >= 3);
    CHECK(s.b->probe_failures.load() == 0);
    CHECK(s.calls_a * 10 < s.calls_a + s.calls_b);
    CHECK(s.a->failures.load() == 0);
    CHECK(s.run.counters->breaker_events().empty());
  }
  SUBCASE("saturation: the suspect endpoint takes what b cannot") {
    auto s = run_split(2000, 0.0, scripted);
    REQUIRE(s.run.report.ok);
    CHECK(s.run.report.records_out == 2000);
    MESSAGE("calls a " << s.calls_a << ", b " << s.calls_b);
    CHECK(s.a->probe_suspect.load());
    CHECK(s.calls_a > 0);
    CHECK(s.calls_b > 0);
    CHECK(s.a->failures.load() == 0);
    CHECK(s.run.counters->breaker_events().empty());
  }
  SUBCASE("both healthy: the calls split about evenly") {
    auto s = run_split(1000, 200.0, [](const std::string&) -> std::function<http_answer()> {
      return [] { return answered(page("m", 0, 1)); };
    });
    REQUIRE(s.run.report.ok);
    MESSAGE("calls a " << s.calls_a << ", b " << s.calls_b);
    CHECK(s.calls_a * 4 > s.calls_a + s.calls_b);
    CHECK(s.calls_b * 4 > s.calls_a + s.calls_b);
  }
}

TEST_CASE("probe wiring: a probe that dies is started again and the job goes on") {
  auto calls = std::make_shared<int>(0);
  auto s = run_split(400, 200.0, [calls](const std::string& endpoint) -> std::function<http_answer()> {
    if (endpoint == "m/a")
      return [calls]() -> http_answer {
        if (++*calls == 3)
          throw std::runtime_error("scripted probe crash");
        return answered(page("m", 0, 1));
      };
    return [] { return answered(page("m", 0, 1)); };
  });
  REQUIRE(s.run.report.ok);
  CHECK(s.run.report.records_out == 400);
  CHECK(s.a->probe_restarts.load() == 1);
  CHECK(s.b->probe_restarts.load() == 0);
  CHECK(*calls > 3); // the new probe scrapes again
  CHECK_FALSE(s.a->probe_suspect.load());
}

namespace {

struct http_probe_run {
  job_report report;
  std::shared_ptr<endpoint_counters> endpoint;
  std::chrono::steady_clock::duration wall{};
};

/// `records` one at a time (batch 1) with 8 calls in flight at most against
/// `url`, probed by `probe`.
http_probe_run run_probed(const std::string& url, uint64_t records, probe_config probe) {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  endpoint_config ep;
  ep.url = url;
  ep.name = "ref";
  auto lenient = never_opens();
  auto cfg = job_builder{"probed"}
               .parallelism(2)
               .source_generator(records, R"({"id":"r${i}","text":"${pick:great product|it was ok}"})")
               .model(model_spec{"m", "keyword-classifier"}
                        .provider("http-json")
                        .endpoint(ep)
                        .input("text", "text")
                        .output("label", "sentiment")
                        .concurrency(8)
                        .batch({1, milliseconds{0}, 0})
                        .timeout(seconds{10}, seconds{60})
                        .subtask_breaker(lenient)
                        .job_breaker(lenient)
                        .probe(std::move(probe)))
               .stage("m")
               .sink_jsonl(dir.file("out.jsonl"))
               .dead_letter(dir.file("dead.jsonl"))
               .build(models);
  run_options opts;
  opts.threads = 2;
  opts.counters = std::make_shared<job_counters>(1);
  http_probe_run r;
  auto began = std::chrono::steady_clock::now();
  r.report = run_job(cfg, models, opts);
  r.wall = std::chrono::steady_clock::now() - began;
  r.endpoint = opts.counters->endpoint("m/ref");
  return r;
}

reference_server_options one_slot() {
  reference_server_options o;
  o.slots = 1;
  o.base = milliseconds{20};
  return o;
}

} // namespace

TEST_CASE("probe wiring (http): the prometheus probe reads the server's queue while calls wait for its one slot") {
  // 8 calls in flight, 1 slot: up to 7 wait at the server. Each row reads
  // one family's gauge (the reference server writes both, and the default
  // names would add them up).
  struct row {
    std::string name;
    std::vector<std::string> queue_depth;
  };
  for (auto& r : std::vector<row>{{"Triton's gauge", {"nv_inference_pending_request_count"}},
                                  {"vLLM's gauge", {"vllm:num_requests_waiting"}}}) {
    CAPTURE(r.name);
    reference_server server{one_slot()};
    std::string err;
    REQUIRE(server.start(err) > 0);
    probe_config probe;
    probe.kind = probe_kind::prometheus;
    probe.interval = milliseconds{20};
    probe.metrics.queue_depth = r.queue_depth;
    auto run = run_probed(server.url(), 40, probe);
    REQUIRE(run.report.ok);
    CHECK(run.report.records_out == 40);
    auto& c = *run.endpoint;
    MESSAGE("scrapes " << c.probe_scrapes.load() << ", max queue depth " << c.max_probe_queue_depth.load());
    CHECK(c.probe_scrapes.load() >= 5);
    CHECK(c.probe_failures.load() == 0);
    CHECK_FALSE(c.probe_suspect.load());
    CHECK(c.max_probe_queue_depth.load() > 0.0);
    CHECK(c.max_probe_queue_depth.load() <= 7.0);
  }
}

TEST_CASE("probe wiring (http): a probe on a path the server lacks makes the endpoint suspect, and no record fails") {
  reference_server server{one_slot()};
  std::string err;
  REQUIRE(server.start(err) > 0);
  probe_config probe;
  probe.kind = probe_kind::prometheus;
  probe.interval = milliseconds{20};
  probe.path = "/no-metrics-here";
  auto run = run_probed(server.url(), 40, probe);
  REQUIRE(run.report.ok);
  CHECK(run.report.records_out == 40);
  CHECK(run.report.dead_lettered == 0);
  auto& c = *run.endpoint;
  CHECK(c.probe_failures.load() >= 3);
  CHECK(c.probe_failures.load() == c.probe_scrapes.load());
  CHECK(c.probe_suspect.load());
  CHECK(c.probe_suspect_periods.load() == 1);
  CHECK(c.failures.load() == 0);
  CHECK(c.max_probe_queue_depth.load() < 0); // nothing ever read
}

TEST_CASE("probe wiring (http): the probe does not hold up the job's end (interval 10 s)") {
  reference_server server{one_slot()};
  std::string err;
  REQUIRE(server.start(err) > 0);
  probe_config probe;
  probe.kind = probe_kind::prometheus;
  probe.interval = seconds{10};
  auto run = run_probed(server.url(), 20, probe);
  REQUIRE(run.report.ok);
  auto secs = std::chrono::duration<double>(run.wall).count();
  MESSAGE("job wall time " << secs << " s");
  CHECK(secs < 5.0); // an upper bound: the job itself takes ~0.4 s
  CHECK(run.endpoint->probe_scrapes.load() == 1); // at start, then none before the end
}
