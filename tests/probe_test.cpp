// Load probes as tables: the Prometheus text parser on real-looking Triton
// and vLLM pages, malformed lines and hostile input; readings from one and
// two scrapes; the probe's health and what a suspect endpoint shows the
// router; the in-band queue estimate on a simulated k-slot server and the
// expiry of its windowed minimum.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "policies/load_probe.hpp"
#include "policies/prometheus_text.hpp"
#include "policies/routing.hpp"

using namespace sinfer;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

/// A Triton /metrics page (prometheus-cpp layout, labels sorted): two
/// versions of resnet50 and one of bert, plus metrics the probe ignores.
std::string triton_page(double pending_v1 = 3, double pending_v2 = 2, double queue_us_v1 = 2400000,
                        double success_v1 = 1200) {
  auto num = [](double v) {
    std::string s = std::to_string(v);
    return s;
  };
  return "# HELP nv_inference_request_success Number of successful inference requests, all batch sizes\n"
         "# TYPE nv_inference_request_success counter\n"
         "nv_inference_request_success{model=\"resnet50\",version=\"1\"} " + num(success_v1) + "\n"
         "nv_inference_request_success{model=\"resnet50\",version=\"2\"} 800\n"
         "nv_inference_request_success{model=\"bert\",version=\"1\"} 50\n"
         "# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes\n"
         "# TYPE nv_inference_request_failure counter\n"
         "nv_inference_request_failure{model=\"resnet50\",reason=\"REJECTED\",version=\"1\"} 0\n"
         "# HELP nv_inference_queue_duration_us Cumulative inference queuing duration in microseconds "
         "(includes cached requests)\n"
         "# TYPE nv_inference_queue_duration_us counter\n"
         "nv_inference_queue_duration_us{model=\"resnet50\",version=\"1\"} " + num(queue_us_v1) + "\n"
         "nv_inference_queue_duration_us{model=\"resnet50\",version=\"2\"} 1600000\n"
         "nv_inference_queue_duration_us{model=\"bert\",version=\"1\"} 100\n"
         "# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting "
         "execution per-model.\n"
         "# TYPE nv_inference_pending_request_count gauge\n"
         "nv_inference_pending_request_count{model=\"resnet50\",version=\"1\"} " + num(pending_v1) + "\n"
         "nv_inference_pending_request_count{model=\"resnet50\",version=\"2\"} " + num(pending_v2) + "\n"
         "nv_inference_pending_request_count{model=\"bert\",version=\"1\"} 0\n"
         "\n"
         "# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)\n"
         "# TYPE nv_gpu_utilization gauge\n"
         "nv_gpu_utilization{gpu_uuid=\"GPU-6d7c3d0e-2f5b-8a7d-1c3e-4a5b6c7d8e9f\"} 0.83\n"
         "# HELP nv_energy_consumption GPU energy consumption in joules since the Triton Server started\n"
         "# TYPE nv_energy_consumption counter\n"
         "nv_energy_consumption{gpu_uuid=\"GPU-6d7c3d0e-2f5b-8a7d-1c3e-4a5b6c7d8e9f\"} 1.5832e+05\n";
}

const char* const llama = "meta-llama/Llama-3.1-8B-Instruct";

/// A recent vLLM /metrics page (prometheus_client layout): two engines of
/// one model, kv_cache_usage_perc, a histogram and process metrics.
std::string vllm_page() {
  std::string m = std::string("model_name=\"") + llama + "\"";
  return "# HELP python_gc_objects_collected_total Objects collected during gc\n"
         "# TYPE python_gc_objects_collected_total counter\n"
         "python_gc_objects_collected_total{generation=\"0\"} 2345.0\n"
         "python_gc_objects_collected_total{generation=\"1\"} 512.0\n"
         "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
         "# TYPE process_start_time_seconds gauge\n"
         "process_start_time_seconds 1.71583264587e+09\n"
         "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
         "# TYPE vllm:num_requests_running gauge\n"
         "vllm:num_requests_running{engine=\"0\"," + m + "} 12.0\n"
         "vllm:num_requests_running{engine=\"1\"," + m + "} 10.0\n"
         "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
         "# TYPE vllm:num_requests_waiting gauge\n"
         "vllm:num_requests_waiting{engine=\"0\"," + m + "} 4.0\n"
         "vllm:num_requests_waiting{engine=\"1\"," + m + "} 1.0\n"
         "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
         "# TYPE vllm:kv_cache_usage_perc gauge\n"
         "vllm:kv_cache_usage_perc{engine=\"0\"," + m + "} 0.62\n"
         "vllm:kv_cache_usage_perc{engine=\"1\"," + m + "} 0.71\n"
         "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n"
         "# TYPE vllm:prompt_tokens_total counter\n"
         "vllm:prompt_tokens_total{engine=\"0\"," + m + "} 1.234567e+06\n"
         "# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.\n"
         "# TYPE vllm:e2e_request_latency_seconds histogram\n"
         "vllm:e2e_request_latency_seconds_bucket{engine=\"0\",le=\"0.3\"," + m + "} 12.0\n"
         "vllm:e2e_request_latency_seconds_bucket{engine=\"0\",le=\"+Inf\"," + m + "} 120.0\n"
         "vllm:e2e_request_latency_seconds_count{engine=\"0\"," + m + "} 120.0\n"
         "vllm:e2e_request_latency_seconds_sum{engine=\"0\"," + m + "} 340.5\n";
}

/// An older vLLM page (0.5-era names): gpu_cache_usage_perc, no engine label.
std::string vllm_old_page() {
  return "# HELP vllm:num_requests_running Number of requests currently running on GPU.\n"
         "# TYPE vllm:num_requests_running gauge\n"
         "vllm:num_requests_running{model_name=\"opt-125m\"} 7.0\n"
         "# HELP vllm:num_requests_swapped Number of requests swapped to CPU.\n"
         "# TYPE vllm:num_requests_swapped gauge\n"
         "vllm:num_requests_swapped{model_name=\"opt-125m\"} 0.0\n"
         "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
         "# TYPE vllm:num_requests_waiting gauge\n"
         "vllm:num_requests_waiting{model_name=\"opt-125m\"} 0.0\n"
         "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.\n"
         "# TYPE vllm:gpu_cache_usage_perc gauge\n"
         "vllm:gpu_cache_usage_perc{model_name=\"opt-125m\"} 0.4\n";
}

prom_parse_result parse_ok(const std::string& text) {
  auto r = parse_prometheus_text(text);
  REQUIRE_MESSAGE(r.ok(), r.error);
  return r;
}

/// A server with `k` slots: a call takes `service` when at most k are in
/// flight, and `service * in_flight / k` beyond (calls queue for a slot).
struct queueing_server {
  uint32_t k = 8;
  policy_duration service = milliseconds{10};

  policy_duration latency(uint32_t in_flight) const {
    return service * std::max(k, in_flight) / k;
  }
};

} // namespace

// ---------------------------------------------------------------- parser

TEST_CASE("probe: the parser reads a Triton page: every sample, labels in order, help and type skipped") {
  auto r = parse_ok(triton_page());
  CHECK(r.error_line == 0);
  CHECK(r.samples.size() == 12);
  auto* s = find_sample(r.samples, "nv_inference_pending_request_count", {{"model", "resnet50"}, {"version", "2"}});
  REQUIRE(s != nullptr);
  CHECK(s->value == 2.0);
  CHECK(s->labels == prom_labels{{"model", "resnet50"}, {"version", "2"}});
  CHECK_FALSE(s->timestamp_ms.has_value());
  // The first series matching a subset; none for an unknown value or name.
  auto* first = find_sample(r.samples, "nv_inference_pending_request_count", {{"model", "resnet50"}});
  REQUIRE(first != nullptr);
  CHECK(first->value == 3.0);
  CHECK(find_sample(r.samples, "nv_inference_pending_request_count", {{"model", "gpt"}}) == nullptr);
  CHECK(find_sample(r.samples, "nv_inference_pending_request", {}) == nullptr);
  auto* reason = find_sample(r.samples, "nv_inference_request_failure", {{"reason", "REJECTED"}});
  REQUIRE(reason != nullptr);
  CHECK(reason->labels.size() == 3);
  auto* energy = find_sample(r.samples, "nv_energy_consumption");
  REQUIRE(energy != nullptr);
  CHECK(energy->value == 158320.0);
}

TEST_CASE("probe: the parser reads a vLLM page: colons in names, exponents, +Inf in a label value") {
  auto r = parse_ok(vllm_page());
  CHECK(r.samples.size() == 14);
  auto* running = find_sample(r.samples, "vllm:num_requests_running", {{"engine", "1"}});
  REQUIRE(running != nullptr);
  CHECK(running->value == 10.0);
  CHECK(running->labels[1] == std::pair<std::string, std::string>{"model_name", llama});
  auto* tokens = find_sample(r.samples, "vllm:prompt_tokens_total");
  REQUIRE(tokens != nullptr);
  CHECK(tokens->value == 1234567.0);
  auto* inf_bucket = find_sample(r.samples, "vllm:e2e_request_latency_seconds_bucket", {{"le", "+Inf"}});
  REQUIRE(inf_bucket != nullptr);
  CHECK(inf_bucket->value == 120.0);
  auto* start = find_sample(r.samples, "process_start_time_seconds");
  REQUIRE(start != nullptr);
  CHECK(start->labels.empty());
  CHECK(start->value == doctest::Approx(1.71583264587e+09));
}

TEST_CASE("probe: the parser's values: decimals, exponents, NaN, infinities; timestamps") {
  struct row {
    std::string token;
    double expected; // NaN: expect NaN
  };
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<row> rows = {
    {"1", 1},           {"-1.5", -1.5},    {"+3", 3},        {"1e3", 1000},     {"1E-3", 0.001},
    {"2.5e+2", 250},    {".5", 0.5},       {"5.", 5},        {"0", 0},          {"-0", 0},
    {"007", 7},         {"NaN", nan},      {"nan", nan},     {"+Inf", inf},     {"-Inf", -inf},
    {"Inf", inf},       {"inf", inf},      {"+Infinity", inf}, {"1e-400", 0},   {"0e99999999999", 0},
    {"1.7976931348623157e308", 1.7976931348623157e308},
  };
  for (auto& r : rows) {
    CAPTURE(r.token);
    auto p = parse_prometheus_text("m " + r.token + "\n");
    REQUIRE_MESSAGE(p.ok(), p.error);
    REQUIRE(p.samples.size() == 1);
    if (std::isnan(r.expected))
      CHECK(std::isnan(p.samples[0].value));
    else
      CHECK(p.samples[0].value == r.expected);
  }
  auto t = parse_ok("m 1 1715832645870\nn{a=\"b\"} 2 -5\n");
  REQUIRE(t.samples.size() == 2);
  CHECK(t.samples[0].timestamp_ms == int64_t{1715832645870});
  CHECK(t.samples[1].timestamp_ms == int64_t{-5});
}

TEST_CASE("probe: the parser's layout: blanks, tabs, CRLF, empty braces, trailing comma, comments") {
  struct row {
    std::string text;
    size_t samples;
  };
  std::vector<row> rows = {
    {"", 0},
    {"\n\n\n", 0},
    {"   \t \n", 0},
    {"#\n# just a comment\n#HELP\n# HELP\n# TYPE\n", 0},
    {"# HELP m text with \\n and \\\\ and \"quotes\" and \\q\n", 0},
    {"# TYPE m untyped\n# TYPE n summary\n# TYPE o histogram\n", 0},
    {"m 1", 1},                                // no final newline
    {"m 1\r\nn 2\r\n", 2},                     // CRLF
    {"# TYPE m gauge\r\nm 1\r\n", 1},
    {"  m 1  \n\tn\t2\t\n", 2},
    {"m{} 1\n", 1},
    {"m{a=\"1\",} 1\n", 1},
    {"m { a = \"1\" , b=\"2\" , } 1\n", 1},
    {"m{a=\"1\"}1\n", 1},                      // no blank needed after '}'
    {"m{a=\"}\"} 1\n", 1},                     // braces and commas inside a value
    {"m{a=\",=#\"} 1\n", 1},
    {"_m:x_1:y 1\n:m 2\n", 2},
    {"m{_a=\"\",a1=\"\"} 1\n", 1},
  };
  for (auto& r : rows) {
    CAPTURE(r.text);
    auto p = parse_prometheus_text(r.text);
    CHECK_MESSAGE(p.ok(), p.error);
    CHECK(p.samples.size() == r.samples);
  }
  auto spaced = parse_ok("m { a = \"1\" , b=\"2\" , } 1\n");
  CHECK(spaced.samples[0].labels == prom_labels{{"a", "1"}, {"b", "2"}});
}

TEST_CASE("probe: the parser unescapes \\\\ \\\" \\n in label values and keeps other escapes as written") {
  struct row {
    std::string written;
    std::string value;
  };
  std::vector<row> rows = {
    {R"(plain)", "plain"},
    {R"(a\\b)", "a\\b"},
    {R"(say \"hi\")", "say \"hi\""},
    {R"(line1\nline2)", "line1\nline2"},
    {R"(ends with \\)", "ends with \\"},
    {R"(tab\there)", "tab\\there"},
    {R"(\\n)", "\\n"},
    {"", ""},
    {"caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac"}, // UTF-8 as is
  };
  for (auto& r : rows) {
    CAPTURE(r.written);
    auto p = parse_prometheus_text("m{path=\"" + r.written + "\",x=\"y\"} 1\n");
    REQUIRE_MESSAGE(p.ok(), p.error);
    REQUIRE(p.samples.size() == 1);
    CHECK(p.samples[0].labels == prom_labels{{"path", r.value}, {"x", "y"}});
  }
}

TEST_CASE("probe: malformed pages name the line, the column and what was expected; no samples are kept") {
  struct row {
    std::string text;
    size_t line;
    std::string error; // the whole message
  };
  std::vector<row> rows = {
    {"a 1\nb{x=\"1\" 2\n", 2, "line 2, column 9: expected ',' or '}' after the value of label \"x\", found '2'"},
    {"a 1\n\n# TYPE b gauge\nb{x=1} 2\n", 4, "line 4, column 5: expected '\"' to open the value of label \"x\", found '1'"},
    {"a\n", 1, "line 1, column 2: expected a value after the metric name \"a\", found end of line"},
    {"a   \n", 1, "line 1, column 5: expected a value after \"a\", found end of line"},
    {"a{x=\"v\"}\n", 1, "line 1, column 9: expected a value after \"a\", found end of line"},
    {"a 1x\n", 1, "line 1, column 3: expected a value (a number, NaN, +Inf or -Inf), found \"1x\""},
    {"a 0x1p3\n", 1, "line 1, column 3: expected a value (a number, NaN, +Inf or -Inf), found \"0x1p3\""},
    {"a 1e\n", 1, "line 1, column 3: expected a value (a number, NaN, +Inf or -Inf), found \"1e\""},
    {"a +NaN\n", 1, "line 1, column 3: expected a value (a number, NaN, +Inf or -Inf), found \"+NaN\""},
    {"a 1e999\n", 1, "line 1, column 3: value \"1e999\" is out of the range of a double"},
    {"a -1e999\n", 1, "line 1, column 3: value \"-1e999\" is out of the range of a double"},
    {"a 1 1.5\n", 1, "line 1, column 5: expected a timestamp (integer milliseconds) or end of line after the "
                     "value, found \"1.5\""},
    {"a 1 99999999999999999999\n", 1, "line 1, column 5: expected a timestamp (integer milliseconds) or end "
                                      "of line after the value, found \"99999999999999999999\""},
    {"a 1 2 3\n", 1, "line 1, column 7: expected end of line after the timestamp, found '3'"},
    {"1a 1\n", 1, "line 1, column 1: expected a metric name, '#' or a blank line, found '1'"},
    {"a-b 1\n", 1, "line 1, column 2: expected '{' or a blank after the metric name \"a\", found '-'"},
    {"a{1x=\"v\"} 1\n", 1, "line 1, column 3: expected a label name or '}', found '1'"},
    {"a{x:y=\"v\"} 1\n", 1, "line 1, column 4: expected '=' after the label name \"x\", found ':'"},
    {"a{x=\"v\",x=\"w\"} 1\n", 1, "line 1, column 9: label \"x\" appears twice"},
    {"a{x=\"unterminated} 1\n", 1, "line 1, column 21: expected '\"' to close the value of label \"x\", found "
                                   "end of line"},
    {"a{x=\"ends in escape\\\"} 1\n", 1, "line 1, column 25: expected '\"' to close the value of label \"x\", "
                                         "found end of line"},
    {"a{x=\"v\"\n} 1\n", 1, "line 1, column 8: expected ',' or '}' after the value of label \"x\", found end of line"},
    {"a{x=\"v\"", 1, "line 1, column 8: expected ',' or '}' after the value of label \"x\", found end of line"},
    {"a{", 1, "line 1, column 3: expected a label name or '}', found end of line"},
    {"# TYPE a gauges\n", 1, "line 1, column 10: expected a metric type (counter, gauge, histogram, summary, "
                             "untyped), found \"gauges\""},
    {"# TYPE a\n", 1, "line 1, column 9: expected a metric type (counter, gauge, histogram, summary, untyped) "
                      "after \"a\", found end of line"},
    {"# TYPE a gauge extra\n", 1, "line 1, column 16: expected end of line after the metric type, found 'e'"},
    {"# TYPE 1a gauge\n", 1, "line 1, column 8: expected a metric name after '# TYPE', found '1'"},
    {"# HELP a{x} text\n", 1, "line 1, column 9: expected a blank after the metric name \"a\", found '{'"},
    {"a 1\r\nb x\r\n", 2, "line 2, column 3: expected a value (a number, NaN, +Inf or -Inf), found \"x\""},
    {"a 1\rb 2\n", 1, "line 1, column 3: expected a value (a number, NaN, +Inf or -Inf), found \"1\\x0db\""},
    {"a \x01\n", 1, "line 1, column 3: expected a value (a number, NaN, +Inf or -Inf), found \"\\x01\""},
    {"\x7f 1\n", 1, "line 1, column 1: expected a metric name, '#' or a blank line, found '\\x7f'"},
    {"a " + std::string(100, '9') + "x\n", 1,
     "line 1, column 3: expected a value (a number, NaN, +Inf or -Inf), found \"" + std::string(32, '9') +
       "...\""},
    {triton_page() + "nv_inference_count{model=\"resnet50\" 4\n", 26,
     "line 26, column 37: expected ',' or '}' after the value of label \"model\", found '4'"},
  };
  for (auto& r : rows) {
    CAPTURE(r.text);
    auto p = parse_prometheus_text(r.text);
    CHECK_FALSE(p.ok());
    CHECK(p.samples.empty());
    CHECK(p.error_line == r.line);
    CHECK(p.error == r.error);
  }
}

TEST_CASE("probe: the parser's bounds: page size, samples, labels; each on both sides") {
  prom_parse_limits lim;
  lim.max_bytes = 16;
  CHECK(parse_prometheus_text("a 1\nb 2\nc 3\nd 4\n", lim).ok());   // exactly 16 bytes
  auto big = parse_prometheus_text("a 1\nb 2\nc 3\nd 45\n", lim); // 17
  CHECK_FALSE(big.ok());
  CHECK(big.error_line == 0);
  CHECK(big.error == "the page is 17 bytes, more than the limit of 16");

  lim.max_bytes = 1000;
  lim.max_samples = 3;
  lim.max_labels = 2;
  CHECK(parse_prometheus_text("a 1\n# c\nb 2\n\nc 3\n", lim).samples.size() == 3);
  auto many = parse_prometheus_text("a 1\n# c\nb 2\n\nc 3\nd 4\n", lim);
  CHECK(many.error == "line 6, column 1: more than 3 samples");
  CHECK(many.samples.empty());

  CHECK(parse_prometheus_text("a{x=\"1\",y=\"2\"} 1\n", lim).ok());
  auto wide = parse_prometheus_text("a{x=\"1\",y=\"2\",z=\"3\"} 1\n", lim);
  CHECK(wide.error == "line 1, column 15: more than 2 labels on one sample");

  // Defaults: 4 MiB.
  CHECK(prom_parse_limits{}.max_bytes == size_t{4} << 20);
  std::string huge((size_t{4} << 20) + 1, '\n');
  auto h = parse_prometheus_text(huge);
  CHECK_FALSE(h.ok());
  CHECK(h.error_line == 0);
  huge.pop_back();
  CHECK(parse_prometheus_text(huge).ok());
}

TEST_CASE("probe: the parser survives mutated pages: every result is samples or an error on a real line") {
  // Deterministic mutations (flips, insertions, cuts) of real pages; a
  // crash, a hang or an error on a line the page does not have fails.
  uint64_t x = 88172645463325252ull;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  const std::string alphabet = "{}\",=\\ \t\r\n#:_aZ09.+-eEInfNa\x00\xff";
  int errors = 0, oks = 0;
  for (const std::string& base : {triton_page(), vllm_page(), vllm_old_page()}) {
    for (int i = 0; i < 400; ++i) {
      std::string t = base;
      int edits = 1 + static_cast<int>(next() % 4);
      for (int e = 0; e < edits && !t.empty(); ++e) {
        size_t at = next() % t.size();
        char c = alphabet[next() % alphabet.size()];
        switch (next() % 3) {
          case 0: t[at] = c; break;
          case 1: t.insert(t.begin() + static_cast<std::ptrdiff_t>(at), c); break;
          default: t.resize(at); break;
        }
      }
      auto p = parse_prometheus_text(t);
      size_t lines = static_cast<size_t>(std::count(t.begin(), t.end(), '\n')) + 1;
      if (p.ok()) {
        ++oks;
      } else {
        ++errors;
        CAPTURE(t);
        CHECK(p.samples.empty());
        CHECK(p.error_line >= 1);
        CHECK(p.error_line <= lines);
        CHECK(p.error.rfind("line " + std::to_string(p.error_line) + ", column ", 0) == 0);
      }
    }
  }
  CHECK(errors > 100);
  CHECK(oks > 100);
}

// ---------------------------------------------------------------- readings

TEST_CASE("probe: a reading from one scrape: which fields each server makes known") {
  struct row {
    std::string name;
    std::string page;
    double queue_depth, running, cache_usage;
  };
  std::vector<row> rows = {
    // Triton: pending 3 + 2 + 0; no running gauge, no cache.
    {"triton", triton_page(), 5, -1, -1},
    // vLLM: waiting 4 + 1, running 12 + 10, cache the fuller engine.
    {"vllm", vllm_page(), 5, 22, 0.71},
    {"vllm old names", vllm_old_page(), 0, 7, 0.4},
    // Both on one page (a gateway in front of both): queues add up.
    {"both", triton_page() + vllm_page(), 10, 22, 0.71},
    {"neither", "# HELP up x\n# TYPE up gauge\nup 1\nprocess_cpu_seconds_total 12.5\n", -1, -1, -1},
    {"empty page", "", -1, -1, -1},
    // kv_cache_usage_perc is preferred when both names are present.
    {"both cache names",
     "vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.9\nvllm:kv_cache_usage_perc{model_name=\"m\"} 0.3\n", -1, -1,
     0.3},
    // Values that cannot be counts are unknown.
    {"NaN gauge", "vllm:num_requests_waiting{engine=\"0\"} NaN\nvllm:num_requests_waiting{engine=\"1\"} 2\n", -1, -1,
     -1},
    {"negative gauge", "nv_inference_pending_request_count{model=\"m\"} -1\n", -1, -1, -1},
    {"infinite gauge", "vllm:num_requests_running +Inf\n", -1, -1, -1},
    {"NaN cache", "vllm:kv_cache_usage_perc{engine=\"0\"} 0.5\nvllm:kv_cache_usage_perc{engine=\"1\"} NaN\n", -1,
     -1, -1},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    probe_counters counters;
    auto reading = read_probe_text(r.page, probe_metric_names{}, counters);
    CHECK(reading.ok);
    CHECK(reading.error.empty());
    CHECK_FALSE(reading.suspect);
    CHECK(reading.queue_depth == doctest::Approx(r.queue_depth));
    CHECK(reading.running == doctest::Approx(r.running));
    CHECK(reading.cache_usage == doctest::Approx(r.cache_usage));
    CHECK(reading.mean_queue_ms == -1.0); // one scrape: no delta yet
    CHECK(reading.known() == (r.queue_depth >= 0 || r.running >= 0 || r.cache_usage >= 0));
  }
}

TEST_CASE("probe: the model filter and label subset choose the series; several versions add up") {
  struct row {
    std::string model;
    prom_labels labels;
    double triton_queue, vllm_queue, vllm_running;
  };
  std::vector<row> rows = {
    {"", {}, 5, 5, 22},
    {"resnet50", {}, 5, -1, -1},        // Triton's "model" label, both versions
    {"bert", {}, 0, -1, -1},
    {llama, {}, -1, 5, 22},             // vLLM's "model_name" label
    {"gpt", {}, -1, -1, -1},            // a typo: nothing matches, all unknown
    {"resnet50", {{"version", "2"}}, 2, -1, -1},
    {"", {{"engine", "1"}}, -1, 1, 10},
    {llama, {{"engine", "0"}}, -1, 4, 12},
  };
  for (auto& r : rows) {
    CAPTURE(r.model);
    CAPTURE(r.labels.size());
    probe_metric_names names;
    names.model = r.model;
    names.labels = r.labels;
    probe_counters c1, c2;
    auto t = read_probe_text(triton_page(), names, c1);
    auto v = read_probe_text(vllm_page(), names, c2);
    CHECK(t.queue_depth == doctest::Approx(r.triton_queue));
    CHECK(v.queue_depth == doctest::Approx(r.vllm_queue));
    CHECK(v.running == doctest::Approx(r.vllm_running));
  }
  // Configured names: Triton's running from a custom gauge; no queue names.
  probe_metric_names custom;
  custom.queue_depth = {};
  custom.running = {"nv_gpu_utilization"};
  probe_counters c;
  auto r = read_probe_text(triton_page(), custom, c);
  CHECK(r.queue_depth == -1.0);
  CHECK(r.running == doctest::Approx(0.83));
  // The model label names are configurable too.
  probe_metric_names by_uuid;
  by_uuid.model = "GPU-6d7c3d0e-2f5b-8a7d-1c3e-4a5b6c7d8e9f";
  by_uuid.model_labels = {"gpu_uuid"};
  by_uuid.running = {"nv_gpu_utilization"};
  CHECK(read_probe_text(triton_page(), by_uuid, c).running == doctest::Approx(0.83));
}

TEST_CASE("probe: mean queue time from two scrapes; a counter that decreases is a restart") {
  // Triton counters (resnet50 v1 varies; v2 1600000 us / 800, bert 100 us /
  // 50 stay): totals queue_us = q1 + 1600100, success = s1 + 850.
  struct scrape {
    double queue_us_v1, success_v1;
    double expected_ms;
  };
  std::vector<scrape> scrapes = {
    {2400000, 1200, -1},   // first: no previous
    {3000000, 1500, 2.0},  // +600000 us / +300 requests = 2000 us
    {3000000, 1500, -1},   // no request in between
    {3050000, 1600, 0.5},  // +50000 / +100
    {100, 10, -1},         // the server restarted: both counters fell
    {400100, 210, 2.0},    // measured from the restart's values: +400000 / +200
    {400100, 200, -1},     // only the request counter fell
    {300000, 300, -1},     // only the queue counter fell
    {330000, 310, 3.0},
  };
  probe_counters counters;
  for (size_t i = 0; i < scrapes.size(); ++i) {
    CAPTURE(i);
    auto& s = scrapes[i];
    auto r = read_probe_text(triton_page(3, 2, s.queue_us_v1, s.success_v1), probe_metric_names{}, counters);
    CHECK(r.ok);
    CHECK(r.mean_queue_ms == doctest::Approx(s.expected_ms));
    CHECK(counters.queue_time_us == doctest::Approx(s.queue_us_v1 + 1600100));
    CHECK(counters.requests == doctest::Approx(s.success_v1 + 850));
  }
  // A page that does not parse leaves the counters as they were.
  auto before = counters;
  auto bad = read_probe_text("nv_inference_request_success{model=\"m\" 3\n", probe_metric_names{}, counters);
  CHECK_FALSE(bad.ok);
  CHECK(bad.error == "metrics page: line 1, column 40: expected ',' or '}' after the value of label \"model\", "
                     "found '3'");
  CHECK(bad.queue_depth == -1.0);
  CHECK(counters.queue_time_us == before.queue_time_us);
  CHECK(counters.requests == before.requests);
  // A page without the counters forgets them: no delta across it.
  read_probe_text(vllm_page(), probe_metric_names{}, counters);
  CHECK(counters.queue_time_us == -1.0);
  CHECK(counters.requests == -1.0);
}

TEST_CASE("probe: mean_queue_ms as a table") {
  struct row {
    probe_counters prev, cur;
    double expected;
  };
  std::vector<row> rows = {
    {{0, 0}, {1000, 1}, 1.0},
    {{1000, 10}, {1000, 20}, 0.0},   // requests that did not queue
    {{1000, 10}, {2000, 10}, -1},    // no request counted
    {{-1, -1}, {1000, 1}, -1},       // no previous
    {{0, 0}, {-1, 1}, -1},           // a counter missing now
    {{0, 5}, {1000, 4}, -1},         // reset
    {{10, 0}, {5, 4}, -1},           // reset
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    CAPTURE(i);
    CHECK(mean_queue_ms(rows[i].prev, rows[i].cur) == doctest::Approx(rows[i].expected));
  }
}

// ---------------------------------------------------------------- health

TEST_CASE("probe: health turns suspect after failure_threshold failures in a row; one success clears it") {
  // 'S' success, 'F' failure, one per second; stale_after off.
  struct row {
    uint32_t threshold;
    std::string events;
    std::string suspect_after; // 'y' / 'n' after each event
  };
  std::vector<row> rows = {
    {3, "FF", "nn"},
    {3, "FFF", "nny"},
    {3, "FFFFS", "nnyyn"},
    {3, "FFSFF", "nnnnn"},
    {3, "FFSFFF", "nnnnny"},
    {3, "SFFFSF", "nnnyn" "n"},
    {1, "SFSF", "nyny"},
    {0, "F", "y"}, // 0 counts as 1
  };
  for (auto& r : rows) {
    CAPTURE(r.threshold);
    CAPTURE(r.events);
    probe_health_config cfg;
    cfg.failure_threshold = r.threshold;
    cfg.stale_after = policy_duration{0};
    probe_health h{cfg, at_ms(0)};
    CHECK_FALSE(h.suspect(at_ms(0)));
    std::string got;
    long long t = 0;
    for (char e : r.events) {
      t += 1000;
      if (e == 'S')
        h.on_success(at_ms(t));
      else
        h.on_failure(at_ms(t));
      got += h.suspect(at_ms(t)) ? 'y' : 'n';
    }
    CHECK(got == r.suspect_after);
    CHECK(h.stale_at() == policy_time::max());
    CHECK(h.suspect(at_ms(t) + std::chrono::hours{24 * 365}) == (got.back() == 'y')); // never by time
  }
}

TEST_CASE("probe: health turns suspect after stale_after without an answer, from start or the last success") {
  probe_health_config cfg;
  cfg.failure_threshold = 100;
  cfg.stale_after = seconds{30};
  probe_health h{cfg, at_ms(5000)};
  CHECK(h.stale_at() == at_ms(35000));
  CHECK_FALSE(h.suspect(at_ms(34999)));
  CHECK(h.suspect(at_ms(35000))); // never answered since start
  CHECK_FALSE(h.succeeded());
  h.on_success(at_ms(36000));
  CHECK(h.succeeded());
  CHECK(h.last_success() == at_ms(36000));
  CHECK(h.stale_at() == at_ms(66000));
  CHECK_FALSE(h.suspect(at_ms(36000)));
  h.on_failure(at_ms(40000)); // failures do not move the deadline
  h.on_failure(at_ms(50000));
  CHECK(h.consecutive_failures() == 2);
  CHECK(h.last_failure() == at_ms(50000));
  CHECK(h.stale_at() == at_ms(66000));
  CHECK_FALSE(h.suspect(at_ms(65999)));
  CHECK(h.suspect(at_ms(66000)));
  h.on_success(at_ms(70000));
  CHECK(h.consecutive_failures() == 0);
  CHECK_FALSE(h.suspect(at_ms(70000)));
  CHECK_FALSE(h.suspect(at_ms(99999)));
  CHECK(h.suspect(at_ms(100000)));
}

TEST_CASE("probe: health config is clamped to its ranges") {
  probe_health_config bad;
  bad.failure_threshold = 0;
  bad.stale_after = seconds{-5};
  bad.suspect_queue_depth = std::numeric_limits<double>::quiet_NaN();
  auto c = probe_health::clamped(bad);
  CHECK(c.failure_threshold == 1);
  CHECK(c.stale_after == policy_duration{0});
  CHECK(c.suspect_queue_depth == 1e9);
  bad.suspect_queue_depth = std::numeric_limits<double>::infinity();
  CHECK(probe_health::clamped(bad).suspect_queue_depth == 1e9);
  bad.suspect_queue_depth = -1;
  CHECK(probe_health::clamped(bad).suspect_queue_depth == 1e9);
  bad.suspect_queue_depth = 500;
  CHECK(probe_health::clamped(bad).suspect_queue_depth == 500);
  probe_health_config d;
  CHECK(d.failure_threshold == 3);
  CHECK(d.stale_after == seconds{30});
}

TEST_CASE("probe: the router sees the last good queue until suspect, then the suspect reading") {
  probe_health_config cfg; // threshold 3, stale after 30 s, suspect depth 1e9
  prometheus_probe probe{probe_metric_names{}, cfg, at_ms(0)};
  auto before = probe.current(at_ms(0));
  CHECK_FALSE(before.ok);
  CHECK_FALSE(before.suspect);
  CHECK(before.error == "no scrape answered yet");
  CHECK(routing_queue_depth(before) == 0.0);

  auto r1 = probe.on_scrape(at_ms(1000), triton_page(3, 2, 2400000, 1200));
  CHECK(r1.ok);
  CHECK(r1.queue_depth == 5.0);
  CHECK(routing_queue_depth(probe.current(at_ms(1000))) == 5.0);

  // Two failures (one without a page, one unparsable): still the last good one.
  auto f1 = probe.on_scrape_failed(at_ms(2000), "connection refused");
  CHECK_FALSE(f1.ok);
  CHECK(f1.error == "connection refused");
  CHECK(f1.queue_depth == -1.0);
  auto f2 = probe.on_scrape(at_ms(3000), "nv_inference_pending_request_count{model=\"m\"} x\n");
  CHECK_FALSE(f2.ok);
  CHECK(f2.error.rfind("metrics page: line 1, column 47: expected a value", 0) == 0);
  auto mid = probe.current(at_ms(3000));
  CHECK(mid.ok);
  CHECK_FALSE(mid.suspect);
  CHECK(mid.queue_depth == 5.0);
  CHECK(probe.health().consecutive_failures() == 2);

  // The third in a row: suspect.
  probe.on_scrape_failed(at_ms(4000), "timeout");
  auto sus = probe.current(at_ms(4000));
  CHECK_FALSE(sus.ok);
  CHECK(sus.suspect);
  CHECK(sus.queue_depth == 1e9);
  CHECK(sus.running == -1.0);
  CHECK(sus.mean_queue_ms == -1.0);
  CHECK(sus.cache_usage == -1.0);
  CHECK(sus.error == "load probe suspect: 3 failed scrapes in a row");
  CHECK(routing_queue_depth(sus) == 1e9);

  // One answer ends it; the mean queue time spans the failures (from r1).
  auto r2 = probe.on_scrape(at_ms(5000), triton_page(1, 0, 3000000, 1500));
  CHECK(r2.ok);
  CHECK(r2.mean_queue_ms == doctest::Approx(2.0));
  auto back = probe.current(at_ms(5000));
  CHECK_FALSE(back.suspect);
  CHECK(routing_queue_depth(back) == 1.0);

  // Then silence: suspect by time, 30 s after the last answer.
  CHECK_FALSE(probe.current(at_ms(34999)).suspect);
  auto stale = probe.current(at_ms(35000));
  CHECK(stale.suspect);
  CHECK(stale.error == "load probe suspect: no answered scrape for 30000 ms");
  CHECK(probe.health().stale_at() == at_ms(35000));

  // Never answered at all.
  prometheus_probe never{probe_metric_names{}, cfg, at_ms(0)};
  CHECK(never.current(at_ms(30000)).error == "load probe suspect: no answered scrape for 30000 ms (none since start)");
}

TEST_CASE("probe: a suspect endpoint is deprioritised by the load-aware router, never excluded") {
  probe_health_config cfg;
  cfg.failure_threshold = 1;
  prometheus_probe healthy{probe_metric_names{}, cfg, at_ms(0)};
  prometheus_probe failing{probe_metric_names{}, cfg, at_ms(0)};
  // The healthy one has a long queue and is slow; the failing one was idle.
  healthy.on_scrape(at_ms(0), triton_page(300, 200, 0, 0));
  failing.on_scrape(at_ms(0), triton_page(0, 0, 0, 0));
  failing.on_scrape_failed(at_ms(1000), "timeout");
  auto view = [](const probe_reading& r, uint32_t in_flight, double latency_ms) {
    endpoint_view v;
    v.in_flight = in_flight;
    v.limit = 64;
    v.queue_depth = routing_queue_depth(r);
    v.latency_ms = latency_ms;
    return v;
  };
  auto h = view(healthy.current(at_ms(1000)), 60, 2000);
  auto f = view(failing.current(at_ms(1000)), 0, 5);
  CHECK(router::score(f) > router::score(h));
  router rt{routing_strategy::load_aware, 7};
  for (int i = 0; i < 100; ++i)
    CHECK(rt.pick({h, f}) == 0);
  // The healthy one at its limit: the suspect one still gets the batch.
  h.in_flight = h.limit;
  CHECK(rt.pick({h, f}) == 1);
  // The same idle server with a probe that answers wins.
  prometheus_probe fresh{probe_metric_names{}, cfg, at_ms(0)};
  fresh.on_scrape(at_ms(0), triton_page(0, 0, 0, 0));
  auto g = view(fresh.current(at_ms(1000)), 0, 5);
  h.in_flight = 60;
  CHECK(rt.pick({h, g}) == 1);
}

// ---------------------------------------------------------------- in-band

TEST_CASE("probe: in_band_queue_depth as a table") {
  struct row {
    double in_flight, no_load, smoothed, expected;
  };
  std::vector<row> rows = {
    {10, 10, 10, 0},   {10, 10, 20, 5},  {16, 10, 20, 8},  {10, 10, 40, 7.5},
    {10, 20, 10, 0},   // faster than the no-load estimate: no queue
    {0, 10, 20, 0},    {10, 0, 20, 0},   {10, 10, 0, 0},   // unknowns
    {10, std::nan(""), 20, 0},
  };
  for (auto& r : rows) {
    CAPTURE(r.in_flight);
    CAPTURE(r.no_load);
    CAPTURE(r.smoothed);
    CHECK(in_band_queue_depth(r.in_flight, r.no_load, r.smoothed) == doctest::Approx(r.expected));
  }
}

TEST_CASE("probe: in-band estimates a k-slot server's queue as in_flight - k beyond k") {
  struct row {
    uint32_t k, in_flight;
    double queue, running;
  };
  std::vector<row> rows = {
    {8, 1, 0, 1},   {8, 4, 0, 4},   {8, 8, 0, 8},   {8, 9, 1, 8},   {8, 12, 4, 8},
    {8, 16, 8, 8},  {8, 32, 24, 8}, {1, 1, 0, 1},   {1, 2, 1, 1},   {4, 40, 36, 4},
  };
  for (auto& r : rows) {
    CAPTURE(r.k);
    CAPTURE(r.in_flight);
    queueing_server srv{r.k, milliseconds{10}};
    in_band_probe p{in_band_config{}};
    auto now = at_ms(0);
    p.on_sample(now, srv.latency(1)); // one call that met no queue
    for (int i = 0; i < 300; ++i) {
      now += milliseconds{10};
      p.on_sample(now, srv.latency(r.in_flight));
    }
    CHECK(p.no_load_latency(now) == milliseconds{10});
    CHECK(p.smoothed_latency().count() == doctest::Approx(srv.latency(r.in_flight).count()).epsilon(1e-6));
    auto reading = p.reading(now, r.in_flight);
    CHECK(reading.ok);
    CHECK(reading.queue_depth == doctest::Approx(r.queue).epsilon(1e-6));
    CHECK(reading.running == doctest::Approx(r.running).epsilon(1e-6));
    double wait_ms = static_cast<double>((srv.latency(r.in_flight) - milliseconds{10}).count()) / 1e6;
    CHECK(reading.mean_queue_ms == doctest::Approx(wait_ms).epsilon(1e-6));
    CHECK(reading.cache_usage == -1.0);
    CHECK(routing_queue_depth(reading) == doctest::Approx(r.queue).epsilon(1e-6));
  }
}

TEST_CASE("probe: in-band's windowed minimum expires, so a server that got slower is re-baselined") {
  in_band_config cfg; // 60 s in 6 buckets of 10 s
  REQUIRE(cfg.min_window == seconds{60});
  REQUIRE(cfg.buckets == 6);
  in_band_probe p{cfg};
  // A 10 ms call at 5 s (bucket [0, 10 s)); then the server is 20 ms for good.
  p.on_sample(at_ms(5000), milliseconds{10});
  for (long long t = 10000; t <= 120000; t += 1000) {
    p.on_sample(at_ms(t), milliseconds{20});
    auto expected = t < 60000 ? milliseconds{10} : milliseconds{20};
    CAPTURE(t);
    CHECK(p.no_load_latency(at_ms(t)) == expected);
  }
  // The boundaries: the 5 s sample counts until its bucket's end + 50 s.
  in_band_probe q{cfg};
  q.on_sample(at_ms(5000), milliseconds{10});
  q.on_sample(at_ms(59000), milliseconds{20});
  CHECK(q.no_load_latency(at_ms(59999)) == milliseconds{10});
  CHECK(q.no_load_latency(at_ms(60000)) == milliseconds{20});
  // In between, a slower server looks queued (16 in flight, 20 vs 10 ms:
  // half of their time waiting); after the window, not.
  in_band_probe r{cfg};
  r.on_sample(at_ms(0), milliseconds{10});
  for (long long t = 1000; t <= 59000; t += 1000)
    r.on_sample(at_ms(t), milliseconds{20});
  CHECK(r.reading(at_ms(59000), 16).queue_depth == doctest::Approx(8.0).epsilon(1e-3));
  r.on_sample(at_ms(60000), milliseconds{20});
  CHECK(r.reading(at_ms(60000), 16).queue_depth == 0.0);
  CHECK(r.reading(at_ms(60000), 16).running == 16.0);
  // Later bucket minima are kept: a faster call at 70 s lowers the baseline.
  r.on_sample(at_ms(70000), milliseconds{15});
  CHECK(r.no_load_latency(at_ms(70000)) == milliseconds{15});
  CHECK(r.no_load_latency(at_ms(129999)) == milliseconds{15});
  CHECK(r.no_load_latency(at_ms(130000)) == milliseconds{0}); // nothing since 70 s: unknown
  auto unknown = r.reading(at_ms(130000), 16);
  CHECK(unknown.ok);
  CHECK(unknown.queue_depth == -1.0);
  CHECK(unknown.running == -1.0);
  CHECK(unknown.mean_queue_ms == -1.0);
  CHECK_FALSE(unknown.known());
  CHECK(routing_queue_depth(unknown) == 0.0);
}

TEST_CASE("probe: in-band before any sample, one bucket, and clamped config") {
  in_band_probe p{in_band_config{}};
  auto r = p.reading(at_ms(0), 5);
  CHECK(r.ok);
  CHECK_FALSE(r.known());
  CHECK(p.smoothed_latency() == policy_duration{0});

  in_band_config one;
  one.min_window = seconds{10};
  one.buckets = 1;
  in_band_probe q{one};
  q.on_sample(at_ms(9999), milliseconds{5});
  CHECK(q.no_load_latency(at_ms(9999)) == milliseconds{5});
  CHECK(q.no_load_latency(at_ms(10000)) == milliseconds{0}); // a new bucket: the old one is gone

  in_band_config bad;
  bad.min_window = seconds{0};
  bad.buckets = 0;
  bad.smoothing = 0;
  auto c = in_band_probe::clamped(bad);
  CHECK(c.min_window == seconds{60});
  CHECK(c.buckets == 1);
  CHECK(c.smoothing == 0.125);
  bad.buckets = 1u << 20;
  bad.smoothing = 1.5;
  c = in_band_probe::clamped(bad);
  CHECK(c.buckets == 1024);
  CHECK(c.smoothing == 0.125);
  // smoothing 1: the smoothed latency is the last sample.
  in_band_config last;
  last.smoothing = 1.0;
  in_band_probe s{last};
  s.on_sample(at_ms(0), milliseconds{10});
  s.on_sample(at_ms(1), milliseconds{30});
  CHECK(s.smoothed_latency() == milliseconds{30});
  CHECK(s.reading(at_ms(1), 3).queue_depth == doctest::Approx(2.0));
}
