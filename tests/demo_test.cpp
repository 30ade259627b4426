// The `sinfer demo` pipeline (runtime/demo.hpp), small: three HTTP models on
// reference servers, a 503 fault on one classifier endpoint mid-run. Checks
// what the runtime did from the counters, the output and the event log.

#include <doctest/doctest.h>

#include <string>

#include "runtime/demo.hpp"
#include "test_util.hpp"

using namespace sinfer;
using namespace sinfer::test;

TEST_SUITE("demo") {

TEST_CASE("demo: the failing endpoint's job breaker opens, traffic moves, summaries only for negatives, "
          "nothing lost") {
  temp_dir dir;
  demo_options o;
  o.dir = dir.path();
  o.records = 800;  // 8 s at 100/s; the fault at record 266 for 2.4 s
  o.rate = 100;
  o.quiet = true;
  auto r = run_demo_detailed(o);
  REQUIRE_MESSAGE(r.report.ok, r.report.reason);
  REQUIRE_MESSAGE(r.error.empty(), r.error);
  REQUIRE(r.counters);
  auto& c = *r.counters;
  CHECK(r.exit_code == 0);
  CHECK(r.fault_injected);

  // Nothing lost; retries and the breaker kept every record.
  CHECK(r.report.records_in == 800);
  CHECK(r.report.records_in == r.report.records_out + r.report.dead_lettered);
  CHECK(r.report.dead_lettered == 0);
  auto out = read_lines(r.output_path);
  CHECK(out.size() == 800);

  // The failing endpoint's job breaker opened, in the counters and in the
  // event log the demo wrote.
  bool opened = false;
  for (auto& e : c.breaker_events())
    opened |= e.scope == "job" && e.endpoint == r.failing_endpoint && e.to == "open";
  CHECK(opened);
  bool logged_open = false;
  simdjson::dom::parser p;
  auto events = read_lines(r.event_log_path);
  REQUIRE(!events.empty());
  for (auto& line : events) {
    auto obj = parse_object(p, line);
    if (str_field(obj, "event") == "breaker" && str_field(obj, "scope") == "job"
        && str_field(obj, "endpoint") == r.failing_endpoint && str_field(obj, "to") == "open") {
      logged_open = true;
      double calls = 0, failures = 0;
      CHECK(obj["calls"].get(calls) == simdjson::SUCCESS);
      CHECK(obj["failures"].get(failures) == simdjson::SUCCESS);
      CHECK(failures > 0);
      CHECK(calls >= failures);
    }
  }
  CHECK(logged_open);

  // Traffic moved to the healthy endpoint.
  CHECK(c.endpoint(r.failing_endpoint)->failures.load() > 0);
  CHECK(c.endpoint(r.healthy_endpoint)->failures.load() == 0);
  CHECK(r.failing_calls_after_fault < r.healthy_calls_after_fault);
  CHECK(c.endpoint(r.failing_endpoint)->calls.load() < c.endpoint(r.healthy_endpoint)->calls.load());
  CHECK(c.stages[1].retries.load() > 0);
  // The same story on the /metrics page scraped during the run, when the
  // breaker had closed again.
  auto& page = r.metrics_after_recovery;
  REQUIRE_MESSAGE(!page.empty(), "no /metrics scrape during the run");
  auto sample = [&](const std::string& series) -> double {
    auto v = prometheus_sample(page, series);
    REQUIRE_MESSAGE(v, series);
    return *v;
  };
  std::string job = R"(job_name="demo")";
  auto ep = [&](const std::string& e) { return job + R"(,model="sentiment",endpoint=")" + e + "\""; };
  CHECK(sample("sinfer_breaker_transitions_total{" + ep("gpu-a") + R"(,scope="job",to="open"})") >= 1);
  CHECK(sample("sinfer_breaker_transitions_total{" + ep("gpu-a") + R"(,scope="job",to="closed"})") >= 1);
  CHECK(sample("sinfer_breaker_state{" + ep("gpu-a") + R"(,scope="job",state="closed"})") == 1);
  CHECK(sample("sinfer_endpoint_call_failures_total{" + ep("gpu-a") + "}") > 0);
  CHECK(sample("sinfer_endpoint_calls_total{" + ep("gpu-a") + "}")
        < sample("sinfer_endpoint_calls_total{" + ep("gpu-b") + "}"));
  CHECK(sample("sinfer_records_dead_lettered_total{" + job + "}") == 0);

  // The summary stage (index 2) ran only for negative reviews.
  REQUIRE(c.stage_count == 3);
  CHECK(c.stages[0].skipped.load() == 0);
  CHECK(c.stages[1].skipped.load() == 0);
  CHECK(c.stages[2].skipped.load() > 0);
  CHECK(c.stages[2].calls.load() > 0);
  uint64_t negatives = 0, summarised = 0;
  for (auto& line : out) {
    auto obj = parse_object(p, line);
    bool negative = str_field(obj, "sentiment") == "negative";
    std::string_view summary;
    bool has_summary = obj["summary"].get(summary) == simdjson::SUCCESS && !summary.empty();
    CHECK_MESSAGE(negative == has_summary, line);
    negatives += negative;
    summarised += has_summary;
    simdjson::dom::array emb;
    CHECK(obj["review_embedding"].get(emb) == simdjson::SUCCESS);
  }
  CHECK(negatives > 0);
  CHECK(summarised == negatives);
  CHECK(c.stages[2].skipped.load() == 800 - negatives);
  CHECK(c.endpoint("summary/vllm")->calls.load() >= negatives);
}

} // TEST_SUITE
