#include "runtime/demo.hpp"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "runtime/config_loader.hpp"
#include "runtime/job_runner.hpp"
#include "runtime/json_text.hpp"
#include "sim/reference_server.hpp"

namespace sinfer {
namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// Narration: one line on stdout, prefixed with the seconds since `start`.
class narrator {
public:
  narrator(clock_type::time_point start, bool quiet) : start_(start), quiet_(quiet) {
  }
  void say(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (quiet_)
      return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    double t = std::chrono::duration<double>(clock_type::now() - start_).count();
    std::printf("[%6.1fs] %s\n", t, buf);
    std::fflush(stdout);
  }

private:
  clock_type::time_point start_;
  bool quiet_;
};

std::string job_text(const demo_options& o, const std::string& embed_url, const std::string& a_url,
                     const std::string& b_url, const std::string& llm_url, const std::string& out,
                     const std::string& dead, const std::string& events) {
  char rate[32];
  std::snprintf(rate, sizeof rate, "%g", o.rate);
  // @NAME@ marks what is filled in below (the generator's own ${...} stay).
  std::string t = R"({
  "job": {"name": "demo", "parallelism": 2, "output-mode": "unordered"},
  "source": {
    "type": "generator", "count": @COUNT@, "rate": @RATE@, "seed": 7,
    "template": {
      "id": "${i}",
      "user": "u${pick:1|2|3|4|5|6|7|8|9|10|11|12}",
      "review": "${pick:great product, fast delivery|terrible service, never again|it was ok|love it, would recommend|broken on arrival, want a refund|nice but slow shipping|the worst purchase ever|excellent value and friendly support}"
    }
  },
  "models": {
    "embed": {
      "provider": "kserve-v2", "model": "hash-embedder",
      "endpoints": [{"url": @EMBED_URL@, "name": "triton"}],
      "input": {"text": "review"}, "output": {"embedding": "review_embedding"},
      "batch": {"max-size": 32}, "concurrency": {"max": 4},
      "timeout": {"attempt": "2s", "total": "30s"}
    },
    "sentiment": {
      "provider": "http-json",
      "endpoints": [{"url": @A_URL@, "name": "gpu-a"},
                    {"url": @B_URL@, "name": "gpu-b"}],
      "input": {"text": "review"}, "output": {"label": "sentiment", "score": "sentiment_score"},
      "routing": {"strategy": "load-aware"},
      "batch": {"max-size": 32}, "concurrency": {"max": 4},
      "timeout": {"attempt": "2s", "total": "60s"},
      "retry": {"max-attempts": 6, "initial-backoff": "50ms", "max-backoff": "1s", "jitter": "full", "budget-percent": 50},
      "breaker": {"job": {"failure-rate": 0.5, "minimum-calls": 10, "window-size": 20,
                          "open-duration": "@OPEN_MS@ms", "open-growth": 1, "half-open-probes": 3}},
      "failure-action": "dead-letter"
    },
    "summary": {
      "provider": "openai", "model": "summarizer",
      "endpoints": [{"url": @LLM_URL@, "name": "vllm"}],
      "openai": {"api": "chat", "prompt": "Summarise this complaint: ${review}",
                 "system-prompt": "Be brief.", "temperature": 0, "max-tokens": 16},
      "output": {"content": "summary"},
      "concurrency": {"max": 8},
      "timeout": {"attempt": "5s", "total": "60s"}
    }
  },
  "stages": ["embed", "sentiment",
             {"model": "summary", "when": {"field": "sentiment", "equals": "negative"}}],
  "sink": {"type": "jsonl", "path": @OUT@},
  "dead-letter": {"path": @DEAD@},
  "metrics": {"port": 0, "event-log": @EVENTS@}
}
)";
  for (auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
         {"@COUNT@", std::to_string(o.records)},
         {"@RATE@", rate},
         {"@OPEN_MS@", std::to_string(o.open_duration.count())},
         {"@EMBED_URL@", json_quote(embed_url)},
         {"@A_URL@", json_quote(a_url)},
         {"@B_URL@", json_quote(b_url)},
         {"@LLM_URL@", json_quote(llm_url)},
         {"@OUT@", json_quote(out)},
         {"@DEAD@", json_quote(dead)},
         {"@EVENTS@", json_quote(events)}}) {
    auto at = t.find(name);
    t.replace(at, name.size(), value);
  }
  return t;
}

uint64_t calls_of(job_counters& c, const std::string& key) {
  return c.endpoint(key)->calls.load();
}

double ms_of(std::chrono::nanoseconds d) {
  return static_cast<double>(d.count()) / 1e6;
}

} // namespace

demo_result run_demo_detailed(const demo_options& o) {
  namespace fs = std::filesystem;
  demo_result res;
  auto fail = [&](std::string why) {
    res.error = std::move(why);
    res.exit_code = 1;
    std::fprintf(stderr, "sinfer demo: %s\n", res.error.c_str());
    return res;
  };
  if (o.records == 0 || !(o.rate > 0))
    return fail("--records and the rate must be positive");

  std::error_code ec;
  fs::create_directories(o.dir, ec);
  auto dir = fs::absolute(o.dir, ec).lexically_normal();
  if (!fs::is_directory(dir))
    return fail("cannot make directory " + o.dir);
  res.config_path = (dir / "demo-job.json").string();
  res.output_path = (dir / "demo-out.jsonl").string();
  res.dead_letter_path = (dir / "demo-dead.jsonl").string();
  res.event_log_path = (dir / "demo-events.jsonl").string();
  for (auto* p : {&res.output_path, &res.dead_letter_path, &res.event_log_path})
    fs::remove(*p, ec);

  // The model servers: service times of small GPU servers, scaled down.
  reference_server_options eo, ao, llo;
  eo.model = "hash-embedder";
  eo.slots = 4;
  eo.base = std::chrono::microseconds{3000};
  eo.per_record = std::chrono::microseconds{100};
  ao.model = "keyword-classifier";
  ao.slots = 4;
  // Slow enough that one endpoint alone would queue calls at 100 records/s:
  // load-aware routing then spreads the batches over both.
  ao.base = std::chrono::microseconds{20000};
  ao.per_record = std::chrono::microseconds{500};
  llo.model = "keyword-classifier";
  llo.served_name = "summarizer";
  llo.slots = 8;
  llo.base = std::chrono::microseconds{40000};
  reference_server embedder{eo}, gpu_a{ao}, gpu_b{ao}, llm{llo};
  std::string err;
  for (auto* s : {&embedder, &gpu_a, &gpu_b, &llm})
    if (s->start(err) < 0)
      return fail("cannot start a reference server: " + err);

  auto text = job_text(o, embedder.url(), gpu_a.url(), gpu_b.url(), llm.url(), res.output_path,
                       res.dead_letter_path, res.event_log_path);
  {
    std::ofstream f{res.config_path};
    f << text;
    if (!f)
      return fail("cannot write " + res.config_path);
  }
  auto models = model_registry::with_builtins();
  auto loaded = parse_job_config(text, res.config_path, models);
  if (!loaded.config)
    return fail(loaded.errors.empty() ? "invalid demo config" : loaded.errors.front());
  auto cfg = *loaded.config;
  auto pre = preflight_job(cfg);
  if (!pre.empty())
    return fail(pre.front());

  res.failing_endpoint = "sentiment/gpu-a";
  res.healthy_endpoint = "sentiment/gpu-b";
  const std::string& fa = res.failing_endpoint;
  const std::string& hb = res.healthy_endpoint;

  double paced_s = static_cast<double>(o.records) / o.rate;
  auto fault_for = o.fault_for.count() > 0
                     ? o.fault_for
                     : milliseconds{std::min<int64_t>(9000, static_cast<int64_t>(paced_s * 300))};
  uint64_t fault_at = std::max<uint64_t>(1, o.records / 3);

  auto start = clock_type::now();
  narrator say{start, o.quiet};
  say.say("sinfer demo: %" PRIu64 " generated product reviews at %g/s, parallelism 2", o.records, o.rate);
  say.say("  embed     kserve-v2 hash-embedder at %s", embedder.url().c_str());
  say.say("  sentiment http-json keyword-classifier: gpu-a %s, gpu-b %s (load-aware routing, job breaker)",
          gpu_a.url().c_str(), gpu_b.url().c_str());
  say.say("  summary   openai chat \"summarizer\" at %s, only for negative reviews", llm.url().c_str());
  say.say("  config    %s", res.config_path.c_str());
  say.say("plan: after %" PRIu64 " records gpu-a's server answers 503 for %.1f s", fault_at,
          static_cast<double>(fault_for.count()) / 1000.0);

  run_options opts;
  opts.threads = 2;
  opts.counters = std::make_shared<job_counters>(cfg.stages.size());
  res.counters = opts.counters;
  std::atomic<int> metrics_port{-1};
  opts.on_metrics = [&metrics_port](int port) { metrics_port = port; };
  auto& c = *opts.counters;

  // The runtime's own readable lines would repeat the narration on stderr.
  auto saved_level = spdlog::default_logger()->level();
  spdlog::default_logger()->set_level(spdlog::level::err);
  std::atomic<bool> done{false};
  job_report report;
  std::thread job{[&] {
    report = run_job(cfg, models, opts);
    done = true;
  }};

  // Narration from the live counters, every 50 ms.
  bool port_told = false, injected = false, cleared = false;
  clock_type::time_point fault_start{}, last_progress = start, moved_check{}, recovered_check{};
  bool moved_pending = false, recovered_pending = false;
  uint64_t a_at_open = 0, b_at_open = 0, a_at_close = 0, b_at_close = 0;
  uint64_t a_at_fault = 0, b_at_fault = 0;
  size_t events_seen = 0;
  auto tick = [&](bool final_pass) {
    auto now = clock_type::now();
    if (!port_told && metrics_port >= 0) {
      port_told = true;
      say.say("metrics: http://127.0.0.1:%d/metrics and /status (sinfer status --url http://127.0.0.1:%d)",
              metrics_port.load(), metrics_port.load());
    }
    if (!injected && !final_pass && c.records_in.load() >= fault_at) {
      injected = true;
      res.fault_injected = true;
      fault_start = now;
      a_at_fault = calls_of(c, fa);
      b_at_fault = calls_of(c, hb);
      fault_plan p;
      p.kind = fault_plan::status;
      p.status_code = 503;
      p.count = -1;
      gpu_a.inject(p);
      say.say("FAULT: gpu-a's server answers 503 to every call (until now: gpu-a %" PRIu64 " calls, gpu-b %" PRIu64
              ")",
              a_at_fault, b_at_fault);
    }
    if (injected && !cleared && (final_pass || now - fault_start >= fault_for)) {
      cleared = true;
      gpu_a.inject(fault_plan{});
      say.say("fault cleared: gpu-a's server answers normally again (it failed %" PRIu64 " calls)",
              c.endpoint(fa)->failures.load());
    }
    auto events = c.breaker_events();
    for (; events_seen < events.size(); ++events_seen) {
      auto& e = events[events_seen];
      if (e.scope != "job")
        continue;
      if (e.to == "open" && e.from == "closed") {
        a_at_open = calls_of(c, fa);
        b_at_open = calls_of(c, hb);
        moved_pending = true;
        moved_check = now + milliseconds{2000};
        say.say("breaker %s OPEN job-wide: %" PRIu64 " of the last %" PRIu64
                " calls failed; every subtask stops calling it",
                e.endpoint.c_str(), e.failures, e.calls);
      } else if (e.to == "half-open") {
        say.say("breaker %s half-open: probing recovery with a few calls, job-wide", e.endpoint.c_str());
      } else if (e.to == "open") {
        say.say("breaker %s probe failed: open again (%" PRIu64 " of %" PRIu64 " probe calls failed)",
                e.endpoint.c_str(), e.failures, e.calls);
      } else if (e.to == "closed") {
        a_at_close = calls_of(c, fa);
        b_at_close = calls_of(c, hb);
        recovered_pending = true;
        recovered_check = now + milliseconds{2000};
        say.say("breaker %s CLOSED: the probes succeeded, %s takes traffic again", e.endpoint.c_str(),
                e.endpoint.c_str());
        // What a Prometheus server would scrape now (kept for the test).
        if (!final_pass && metrics_port >= 0 && res.metrics_after_recovery.empty()) {
          httplib::Client scrape{"127.0.0.1", metrics_port.load()};
          scrape.set_read_timeout(5, 0);
          if (auto r = scrape.Get("/metrics"); r && r->status == 200)
            res.metrics_after_recovery = r->body;
        }
      }
    }
    if (moved_pending && (now >= moved_check || final_pass)) {
      moved_pending = false;
      say.say("traffic moved: since the breaker opened gpu-b made %" PRIu64 " calls, gpu-a %" PRIu64
              "; records in %" PRIu64 ", out %" PRIu64 ", dead-lettered %" PRIu64,
              calls_of(c, hb) - b_at_open, calls_of(c, fa) - a_at_open, c.records_in.load(), c.records_out.load(),
              c.dead_lettered.load());
    }
    if (recovered_pending && (now >= recovered_check || final_pass)) {
      recovered_pending = false;
      say.say("recovered: since the breaker closed gpu-a made %" PRIu64 " calls, gpu-b %" PRIu64,
              calls_of(c, fa) - a_at_close, calls_of(c, hb) - b_at_close);

    }
    if (!final_pass && now - last_progress >= milliseconds{5000}) {
      last_progress = now;
      say.say("progress: %" PRIu64 " in, %" PRIu64 " out, %" PRIu64 " in flight; calls gpu-a %" PRIu64
              ", gpu-b %" PRIu64 ", summarizer %" PRIu64,
              c.records_in.load(), c.records_out.load(), c.in_flight(), calls_of(c, fa), calls_of(c, hb),
              calls_of(c, "summary/vllm"));
    }
  };
  while (!done) {
    tick(false);
    std::this_thread::sleep_for(milliseconds{50});
  }
  job.join();
  tick(true);
  spdlog::default_logger()->set_level(saved_level);
  for (auto* s : {&embedder, &gpu_a, &gpu_b, &llm})
    s->stop();

  res.report = report;
  if (injected) {
    res.failing_calls_after_fault = calls_of(c, fa) - a_at_fault;
    res.healthy_calls_after_fault = calls_of(c, hb) - b_at_fault;
  }
  double secs = static_cast<double>(report.elapsed_ns) / 1e9;
  bool balanced = report.records_in == report.records_out + report.dead_lettered;
  res.exit_code = report.ok && balanced ? 0 : 1;
  if (!report.ok)
    res.error = report.reason;
  else if (!balanced)
    res.error = "records lost: in != out + dead-lettered";
  say.say("job %s in %.1f s", report.ok ? "finished" : ("FAILED: " + report.reason).c_str(), secs);

  // The final table (printed even with quiet).
  auto row = [](const char* name, const std::string& value) { std::printf("  %-28s %s\n", name, value.c_str()); };
  auto num = [](uint64_t n) { return std::to_string(n); };
  char buf[160];
  std::printf("\nsinfer demo: summary\n");
  row("records in", num(report.records_in));
  row("records out", num(report.records_out));
  row("dead-lettered", num(report.dead_lettered));
  row("lost (in - out - dead)", balanced ? "0" : "NOT 0");
  std::snprintf(buf, sizeof buf, "%.1f records/s over %.1f s", secs > 0 ? report.records_out / secs : 0.0, secs);
  row("goodput", buf);
  std::snprintf(buf, sizeof buf, "p50 %.1f ms, p99 %.1f ms", ms_of(c.end_to_end.quantile(0.5)),
                ms_of(c.end_to_end.quantile(0.99)));
  row("end-to-end latency", buf);
  for (auto& [key, ep] : c.endpoints()) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 " calls, %" PRIu64 " failed, %" PRIu64 " records scored",
                  ep->calls.load(), ep->failures.load(), ep->records_ok.load());
    row(("calls " + key).c_str(), buf);
  }
  for (size_t i = 0; i < cfg.stages.size(); ++i) {
    auto& s = c.stages[i];
    std::snprintf(buf, sizeof buf, "%" PRIu64 " retries, %" PRIu64 " failed, %" PRIu64 " skipped (condition)",
                  s.retries.load(), s.failed.load(), s.skipped.load());
    row(("stage " + cfg.stages[i]).c_str(), buf);
  }
  uint64_t job_tr = 0, sub_tr = 0;
  for (auto& e : c.breaker_events())
    (e.scope == "job" ? job_tr : sub_tr) += 1;
  row("breaker transitions", num(job_tr) + " job-wide, " + num(sub_tr) + " per subtask");
  row("output", res.output_path);
  row("dead letters", report.dead_lettered > 0 ? res.dead_letter_path : "none");
  row("event log", res.event_log_path);
  row("job config", res.config_path);
  std::fflush(stdout);
  return res;
}

int run_demo(const demo_options& options) {
  return run_demo_detailed(options).exit_code;
}

} // namespace sinfer
