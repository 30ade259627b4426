// The HTML report of a simulated run (sim/sim_report.hpp): every chart once,
// comparisons overlay the runs, strings escaped, byte-identical output, edge
// cases; then a headless Chromium parses the page and renders it.

#include <doctest/doctest.h>

#include <chrono>
#include <clocale>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "sim/sim_report.hpp"
#include "tests/test_util.hpp"

using namespace sinfer;
using namespace sinfer::test;

namespace {

const std::vector<std::string> chart_names = {"throughput", "latency", "endpoints", "batch", "breakers", "faults"};

/// Six one-second samples of a job with one stage on two endpoints; endpoint
/// b has an outage from 2 s to 3.2 s, its job breaker opens at 2.5 s, goes
/// half-open at 3.5 s and closes at 4 s; subtask 1's breaker opens on its own.
sim_result synthetic_run(const std::string& label = "", double out_per_s = 100) {
  sim_result r;
  r.scenario = "outage-on-b";
  r.label = label;
  r.seed = 7;
  r.duration = 6;
  r.records_in = 600;
  r.records_out = 587;
  r.dead_lettered = 13;
  r.calls = 120;
  r.wasted_calls = 9;
  r.retries = 21;
  r.restarts = 1;
  r.goodput = 97.8;
  r.p50_ms = 12.5;
  r.p99_ms = 240;
  r.p999_ms = 1800;
  r.stages = {"sentiment"};
  r.endpoints = {"sentiment/a", "sentiment/b"};
  for (int i = 1; i <= 6; ++i) {
    bool outage = i == 3;
    sim_sample s;
    s.t = i;
    s.in_per_s = 100;
    s.out_per_s = outage ? out_per_s / 2 : out_per_s;
    s.dead_per_s = outage ? 10 : 0;
    s.p50_ms = 12;
    s.p99_ms = outage ? 240 : 30;
    s.p999_ms = outage ? 1800 : 45;
    s.batch_mean = {8};
    s.endpoints = {{double(i), 16, 0, 2, 10, 0},
                   {outage ? 0.0 : 2.0, 8, outage ? 5.0 : 0.0, 1, 10, outage ? 10.0 : 0.0}};
    r.samples.push_back(s);
  }
  r.phases = {{"steady", 0, 2, 200, 0, 100, 12, 30, 45},
              {"outage", 2, 4, 150, 13, 75, 14, 240, 1800},
              {"recovery", 4, 6, 237, 0, 118.5, 12, 30, 45}};
  r.endpoint_totals = {{"sentiment/a", 80, 0, 0, 0, 400, 6, 16}, {"sentiment/b", 40, 9, 3, 0, 187, 2, 4}};
  r.transitions = {{2.5, "sentiment/b", "job", "closed", "open", 20, 9},
                   {3.5, "sentiment/b", "job", "open", "half-open", 0, 0},
                   {4.0, "sentiment/b", "job", "half-open", "closed", 3, 0}};
  r.bands = {{"sentiment/b", "job", "open", 2.5, 3.5},
             {"sentiment/b", "job", "half-open", 3.5, 4.0},
             {"sentiment/b", "subtask 1", "open", 2.2, 3.0}};
  r.faults = {{"sentiment/b", "outage", "outage (hang)", 2, 3.2}};
  return r;
}

std::string svg_tag(const std::string& chart) {
  return "<svg class=\"chart\" data-chart=\"" + chart + "\"";
}

/// The SVG text of the first chart named `chart` ("" when there is none).
std::string chart_svg(const std::string& html, const std::string& chart) {
  auto begin = html.find(svg_tag(chart));
  if (begin == std::string::npos)
    return "";
  auto end = html.find("</svg>", begin);
  return end == std::string::npos ? html.substr(begin) : html.substr(begin, end - begin);
}

/// Every attribute value (the text between `="` and the next `"`).
std::vector<std::string> attribute_values(const std::string& html) {
  std::vector<std::string> values;
  for (auto i = html.find("=\""); i != std::string::npos; i = html.find("=\"", i + 2)) {
    auto end = html.find('"', i + 2);
    if (end == std::string::npos)
      break;
    values.push_back(html.substr(i + 2, end - i - 2));
  }
  return values;
}

bool is_whole_page(const std::string& html) {
  return html.rfind("<!DOCTYPE html>\n", 0) == 0 && html.size() > 8
         && html.compare(html.size() - 8, 8, "</html>\n") == 0;
}

} // namespace

TEST_CASE("report: one run draws every chart once as an svg.chart") {
  auto html = render_sim_report({synthetic_run()});
  CHECK(is_whole_page(html));
  for (const auto& name : chart_names) {
    CAPTURE(name);
    CHECK(count_of(html, "data-chart=\"" + name + "\"") == 1);
    CHECK(count_of(html, svg_tag(name)) == 1);
  }
  // Self-contained: nothing to fetch, nothing to run.
  CHECK(count_of(html, "<script") == 0);
  CHECK(count_of(html, "http") == count_of(html, "xmlns=\"http://www.w3.org/2000/svg\""));
  CHECK(count_of(html, "src=") == 0);
  CHECK(count_of(html, "url(") == 0);
  CHECK(count_of(html, "@import") == 0);
}

TEST_CASE("report: the tables and charts show the run's figures") {
  auto html = render_sim_report({synthetic_run()});
  struct row {
    const char* what;
    std::string expected;
  };
  const std::vector<row> rows = {
      {"header", "<h1>Simulation: outage-on-b</h1>"},
      {"seed and duration", "seed 7 \xC2\xB7 virtual duration 6.0 s"},
      {"records in", "<th>records in</th><td class=\"n\">600</td>"},
      {"dead-lettered", "<th>dead-lettered</th><td class=\"n\">13</td>"},
      {"goodput", "<th>goodput (records/s)</th><td class=\"n\">97.8</td>"},
      {"p999", "<th>latency p999 (ms)</th><td class=\"n\">1800</td>"},
      {"wasted calls", "<th>wasted calls</th><td class=\"n\">9</td>"},
      {"restarts", "<th>restarts</th><td class=\"n\">1</td>"},
      {"phase", "<th>outage</th><td class=\"n\">2.0\xE2\x80\x93" "4.0 s</td><td class=\"n\">150</td>"},
      {"endpoint totals", "<th>sentiment/b</th><td class=\"n\">40</td><td class=\"n\">9</td><td class=\"n\">3</td>"},
      {"transition", "<td>closed \xE2\x86\x92 open</td><td class=\"n\">20</td><td class=\"n\">9</td>"},
      {"job breaker row", ">sentiment/b \xC2\xB7 job</text>"},
      {"subtask breaker row", ">sentiment/b \xC2\xB7 subtask 1</text>"},
      {"fault band text", ">outage (hang)</text>"},
      {"fault band tooltip", "<title>outage (hang) (2.0\xE2\x80\x93" "3.2 s)</title>"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.what);
    CHECK_MESSAGE(html.find(r.expected) != std::string::npos, r.expected);
  }
  // Cause and effect: the fault and the breaker bands are shaded behind
  // throughput and latency.
  for (const char* chart : {"throughput", "latency"}) {
    CAPTURE(chart);
    auto svg = chart_svg(html, chart);
    CHECK(svg.find("<title>fault: sentiment/b outage (hang)") != std::string::npos);
    CHECK(svg.find("<title>breaker open (2.2\xE2\x80\x93" "3.5 s)</title>") != std::string::npos);
    CHECK(svg.find("<title>breaker half-open (3.5\xE2\x80\x93" "4.0 s)</title>") != std::string::npos);
  }
  // Three lines (in, out, dead) on throughput; a second stage colour nowhere.
  CHECK(count_of(chart_svg(html, "throughput"), "<path") == 3);
  CHECK(count_of(chart_svg(html, "batch"), "<path") == 1);
  // Endpoint b's server queued during the outage, a's never.
  auto endpoints = chart_svg(html, "endpoints");
  CHECK(count_of(endpoints, "<title>sentiment/b server queue</title>") == 1);
  CHECK(count_of(endpoints, "<title>sentiment/a server queue</title>") == 0);
}

TEST_CASE("report: a long breaker row label is cut in its endpoint and never in its scope") {
  auto run = synthetic_run();
  const std::string endpoint = "sentiment/gpu-pool-eu-west-1";
  run.endpoints[1] = endpoint;
  run.bands = {{endpoint, "subtask 3", "open", 1, 2}, {endpoint, "subtask 12", "open", 1, 2}};
  auto breakers = chart_svg(render_sim_report({run}), "breakers");
  for (const char* scope : {"subtask 3", "subtask 12"}) {
    CAPTURE(scope);
    // Cut (an ellipsis before the scope), the scope whole, the full label as tooltip.
    CHECK(count_of(breakers, std::string{"\xE2\x80\xA6 \xC2\xB7 "} + scope + "</text>") == 1);
    CHECK(count_of(breakers, "<title>" + endpoint + " \xC2\xB7 " + scope + "</title>") == 1);
  }
}

TEST_CASE("report: a comparison overlays the runs and charts each run's endpoints and breakers") {
  auto html = render_sim_report({synthetic_run("two-tier breaker", 100), synthetic_run("subtask-only", 80)});
  CHECK(is_whole_page(html));
  for (const char* shared : {"throughput", "latency", "batch", "faults"}) {
    CAPTURE(shared);
    CHECK(count_of(html, svg_tag(shared)) == 1);
  }
  for (const char* per_run : {"endpoints", "breakers"}) {
    CAPTURE(per_run);
    CHECK(count_of(html, svg_tag(per_run)) == 2);
    CHECK(count_of(html, svg_tag(per_run) + " data-run=\"1\"") == 1);
    CHECK(count_of(html, svg_tag(per_run) + " data-run=\"2\"") == 1);
  }
  CHECK(html.find("<title>Breakers \xE2\x80\x93 two-tier breaker</title>") != std::string::npos);
  CHECK(html.find("<title>Breakers \xE2\x80\x93 subtask-only</title>") != std::string::npos);
  // The summary has one column per run.
  CHECK(html.find("<tr><th></th><th class=\"n\">two-tier breaker</th><th class=\"n\">subtask-only</th></tr>")
        != std::string::npos);
  for (const char* chart : {"throughput", "latency"}) {
    CAPTURE(chart);
    auto svg = chart_svg(html, chart);
    // Both runs' series: run 1 solid, run 2 dashed, the legend names both.
    CHECK(count_of(svg, "<path") == 6);
    CHECK(count_of(svg, "<path class=\"line\" d=") == 6);
    CHECK(count_of(svg, "stroke-dasharray=\"7 4\"><title>") == 3);
    CHECK(svg.find(">two-tier breaker (solid)</text>") != std::string::npos);
    CHECK(svg.find(">subtask-only (dashed)</text>") != std::string::npos);
  }
  CHECK(chart_svg(html, "throughput").find("<title>out \xC2\xB7 subtask-only</title>") != std::string::npos);
  // The shared fault is drawn once, not once per run.
  CHECK(count_of(chart_svg(html, "faults"), ">outage (hang)</text>") == 1);
}

TEST_CASE("report: every string from the data is escaped") {
  const std::string raw = "a<b>&\"c\"";
  const std::string escaped = "a&lt;b&gt;&amp;&quot;c&quot;";
  auto run = synthetic_run("it's <b>");
  run.scenario = "<script>alert(1)</script>";
  run.endpoints[1] = raw;
  run.endpoint_totals[1].name = raw;
  for (auto& t : run.transitions)
    t.endpoint = raw;
  for (auto& b : run.bands)
    b.endpoint = raw;
  run.faults[0].endpoint = raw;
  run.faults[0].label = "<i>hang</i>";
  run.phases[0].name = "p&q";
  auto html = render_sim_report({run});
  CHECK(count_of(html, raw) == 0);
  CHECK(count_of(html, escaped) > 5);
  CHECK(count_of(html, "<script") == 0);
  CHECK(count_of(html, "&lt;script&gt;alert(1)&lt;/script&gt;") > 0);
  CHECK(count_of(html, "it's") == 0);
  CHECK(count_of(html, "it&#39;s &lt;b&gt;") > 0);
  CHECK(count_of(html, "<i>") == 0);
  CHECK(count_of(html, "&lt;i&gt;hang&lt;/i&gt;") > 0);
  CHECK(count_of(html, ">p&q<") == 0);
  CHECK(count_of(html, ">p&amp;q<") == 1);
}

TEST_CASE("report: the same runs give the same bytes and other runs other bytes") {
  std::vector<sim_result> runs = {synthetic_run("x"), synthetic_run("y", 90)};
  auto first = render_sim_report(runs);
  auto copy = runs;
  CHECK(render_sim_report(copy) == first);
  copy[1].seed = 8;
  CHECK(render_sim_report(copy) != first);
  // No locale in the numbers: under a locale with a decimal comma the page
  // is the same.
  const char* comma_locale = nullptr;
  for (const char* name : {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "de_DE", "fr_FR"})
    if (comma_locale == nullptr && std::setlocale(LC_NUMERIC, name) != nullptr)
      comma_locale = name;
  if (comma_locale != nullptr) {
    CAPTURE(comma_locale);
    CHECK(render_sim_report(runs) == first);
    std::setlocale(LC_NUMERIC, "C");
  } else {
    MESSAGE("no de_DE or fr_FR locale installed: the decimal comma case is not checked");
  }
}

TEST_CASE("report: edge cases render whole pages") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct row {
    const char* what;
    std::function<std::vector<sim_result>()> runs;
  };
  const std::vector<row> rows = {
      {"no run", [] { return std::vector<sim_result>{}; }},
      {"an empty result", [] { return std::vector<sim_result>{sim_result{}}; }},
      {"zero samples",
       [] {
         auto r = synthetic_run();
         r.samples.clear();
         return std::vector<sim_result>{r};
       }},
      {"one sample",
       [] {
         auto r = synthetic_run();
         r.samples.resize(1);
         return std::vector<sim_result>{r};
       }},
      {"zero endpoints",
       [] {
         auto r = synthetic_run();
         r.endpoints.clear();
         r.endpoint_totals.clear();
         r.bands.clear();
         r.faults.clear();
         r.transitions.clear();
         for (auto& s : r.samples)
           s.endpoints.clear();
         return std::vector<sim_result>{r};
       }},
      {"samples listing fewer endpoints and stages than the run",
       [] {
         auto r = synthetic_run();
         for (auto& s : r.samples) {
           s.endpoints.resize(1);
           s.batch_mean.clear();
         }
         return std::vector<sim_result>{r};
       }},
      {"NaN and infinite values",
       [nan, inf] {
         auto r = synthetic_run();
         r.goodput = nan;
         r.p99_ms = inf;
         r.duration = nan;
         r.samples[1].t = nan;
         r.samples[2].out_per_s = inf;
         r.samples[2].p99_ms = nan;
         r.samples[3].p999_ms = -inf;
         r.samples[4].endpoints[0].limit = nan;
         r.samples[4].batch_mean[0] = inf;
         r.bands[0].to = inf;
         r.faults[0].from = nan;
         r.phases[0].goodput = nan;
         return std::vector<sim_result>{r};
       }},
      {"all-zero series",
       [] {
         auto r = synthetic_run();
         for (auto& s : r.samples)
           s = sim_sample{s.t, 0, 0, 0, 0, 0, 0, 0, 0, {0}, {{}, {}}};
         return std::vector<sim_result>{r};
       }},
  };
  for (const auto& r : rows) {
    CAPTURE(r.what);
    auto runs = r.runs();
    std::string html;
    CHECK_NOTHROW(html = render_sim_report(runs));
    CHECK(is_whole_page(html));
    if (!runs.empty())
      for (const auto& name : chart_names) {
        CAPTURE(name);
        CHECK(count_of(html, svg_tag(name)) == 1);
      }
    for (const auto& value : attribute_values(html)) {
      CAPTURE(value);
      CHECK(value.find("nan") == std::string::npos);
      CHECK(value.find("inf") == std::string::npos);
    }
  }
}

TEST_CASE("report: latency uses a log scale only when it spans more than two decades") {
  struct row {
    double low_ms, high_ms;
    bool log;
  };
  const std::vector<row> rows = {{10, 500, false}, {10, 1000, false}, {10, 1001, true}, {1, 5000, true}};
  for (const auto& r : rows) {
    CAPTURE(r.low_ms);
    CAPTURE(r.high_ms);
    auto run = synthetic_run();
    for (auto& s : run.samples) {
      s.p50_ms = r.low_ms;
      s.p99_ms = r.low_ms;
      s.p999_ms = r.low_ms;
    }
    run.samples[2].p999_ms = r.high_ms;
    auto latency = chart_svg(render_sim_report({run}), "latency");
    CHECK((latency.find("ms (log scale)") != std::string::npos) == r.log);
  }
}

TEST_CASE("report: many samples are bucketed and latency spikes survive") {
  // 5000 samples into 1000 buckets of 5. A 5000 ms spike over a 40 ms
  // baseline spans more than two decades only if the bucket keeps its max
  // (the mean would be 1032 ms).
  sim_result run = synthetic_run();
  auto templ = run.samples.front();
  run.samples.clear();
  for (int i = 1; i <= 5000; ++i) {
    auto s = templ;
    s.t = i * 0.1;
    s.p50_ms = s.p99_ms = s.p999_ms = 40;
    if (i == 2500)
      s.p999_ms = 5000;
    run.samples.push_back(s);
  }
  run.duration = 500;
  auto html = render_sim_report({run});
  auto throughput = chart_svg(html, "throughput");
  auto first_path = throughput.substr(throughput.find("<path"));
  first_path = first_path.substr(0, first_path.find("</path>"));
  CHECK(count_of(first_path, "L") + count_of(first_path, "M") == 1000);
  CHECK(chart_svg(html, "latency").find("ms (log scale)") != std::string::npos);
  MESSAGE("report of 5000 samples: " << html.size() << " bytes");
  CHECK(html.size() < 400000);
}

// --- A real browser parses and renders the page ------------------------------

namespace {

/// The first of `names` that is an executable file on PATH, or "".
std::string find_on_path(std::initializer_list<const char*> names) {
  const char* path = std::getenv("PATH");
  if (path == nullptr)
    return "";
  for (const char* name : names) {
    std::istringstream dirs{path};
    for (std::string dir; std::getline(dirs, dir, ':');) {
      auto candidate = (dir.empty() ? "." : dir) + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0)
        return candidate;
    }
  }
  return "";
}

struct browser_run {
  int code = -1;
  std::string err;
  double seconds = 0;
};

/// Runs headless `chromium` on `page` with `action` (--dump-dom, or
/// --screenshot=...), a fresh profile in `profile`, stdout to `out`, at most
/// 60 s.
browser_run run_chromium(const std::string& chromium, const std::string& profile, const std::string& action,
                         const std::string& page, const std::string& out) {
  auto err = out + ".stderr";
  std::string command = "timeout 60 '" + chromium
                        + "' --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking"
                          " --disable-component-update --disable-sync --user-data-dir='"
                        + profile + "' " + action + " 'file://" + page + "' >'" + out + "' 2>'" + err + "' </dev/null";
  auto start = std::chrono::steady_clock::now();
  int status = std::system(command.c_str());
  browser_run r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(err);
  return r;
}

/// For each chart, in page order, how many drawing elements it holds ("12 40 ...").
std::string chart_element_counts(const std::string& html) {
  std::string counts;
  const std::string chart_tag = "<svg class=\"chart\"";
  for (auto i = html.find(chart_tag); i != std::string::npos; i = html.find(chart_tag, i + 1)) {
    auto svg = html.substr(i, html.find("</svg>", i) - i);
    auto elements = count_of(svg, "<path") + count_of(svg, "<rect") + count_of(svg, "<text") + count_of(svg, "<line");
    counts += std::to_string(elements) + " ";
  }
  return counts;
}

uint32_t big_endian_u32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i)
    v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

} // namespace

TEST_CASE("report: headless Chromium parses every chart and renders the page") {
  auto chromium = find_on_path({"chromium", "chromium-browser"});
  if (chromium.empty()) {
    MESSAGE("chromium not installed: report rendering not checked");
    return;
  }
  temp_dir dir;
  auto page = dir.file("report.html");
  auto html = render_sim_report({synthetic_run("two-tier breaker", 100), synthetic_run("subtask-only", 80)});
  write_file(page, html);

  auto dump = run_chromium(chromium, dir.file("profile-dom"), "--dump-dom", page, dir.file("dom.html"));
  MESSAGE("chromium --dump-dom took " << dump.seconds << " s");
  REQUIRE_MESSAGE(dump.code == 0, dump.err);
  auto dom = read_file(dir.file("dom.html"));
  CHECK(dom.find("</html>") != std::string::npos);
  for (const auto& name : chart_names) {
    CAPTURE(name);
    bool per_run = name == "endpoints" || name == "breakers";
    CHECK(count_of(dom, svg_tag(name)) == (per_run ? 2u : 1u));
  }
  // The parser kept every element inside its chart: an HTML tag in the SVG
  // would have closed the chart early and moved the rest out of it.
  for (const char* element : {"<svg", "<path", "<rect", "<text", "<title"}) {
    CAPTURE(element);
    CHECK(count_of(dom, element) == count_of(html, element));
  }
  CHECK(chart_element_counts(dom) == chart_element_counts(html));

  auto shot = dir.file("shot.png");
  auto screenshot = run_chromium(chromium, dir.file("profile-shot"),
                                 "--screenshot='" + shot + "' --window-size=1280,2000", page, dir.file("shot.out"));
  MESSAGE("chromium --screenshot took " << screenshot.seconds << " s");
  REQUIRE_MESSAGE(screenshot.code == 0, screenshot.err);
  auto png = read_file(shot);
  MESSAGE("screenshot: " << png.size() << " bytes");
  REQUIRE(png.size() > 24);
  CHECK(png.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0);
  CHECK(png.compare(12, 4, "IHDR") == 0);
  CHECK(big_endian_u32(png, 16) == 1280);
  CHECK(big_endian_u32(png, 20) == 2000);
}
