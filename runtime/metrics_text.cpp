#include "runtime/metrics_text.hpp"

#include <cstdio>
#include <map>
#include <set>

#include "runtime/json_text.hpp"

namespace sinfer {

namespace {

/// Bucket bounds in seconds: 0.5 ms to a minute.
constexpr double latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,   0.5,   1,      2.5,   5,    10,    30,    60};

std::string number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", x); // 0.0005, not 0.00050000000000000001
  return buf;
}

/// Writes families: HELP and TYPE once per family, then its samples.
class exposition {
public:
  void family(const std::string& name, const char* type, const char* help) {
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }

  void sample(const std::string& name, const std::string& labels, double value) {
    out_ += name;
    if (!labels.empty())
      out_ += "{" + labels + "}";
    out_ += " " + number(value) + "\n";
  }

  /// The samples of one histogram series (the family written before).
  void histogram(const std::string& name, const std::string& labels, const latency_histogram& h) {
    auto counts = h.counts();
    std::string sep = labels.empty() ? "" : ",";
    uint64_t total = 0;
    double sum = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      total += counts[i];
      sum += static_cast<double>(counts[i]) * std::chrono::duration<double>(latency_histogram::midpoint(i)).count();
    }
    size_t i = 0;
    uint64_t below = 0;
    for (double le : latency_bounds) {
      while (i < counts.size()
             && std::chrono::duration<double>(latency_histogram::bucket_upper(i)).count() <= le + 1e-12)
        below += counts[i++];
      sample(name + "_bucket", labels + sep + "le=\"" + number(le) + "\"", static_cast<double>(below));
    }
    sample(name + "_bucket", labels + sep + "le=\"+Inf\"", static_cast<double>(total));
    sample(name + "_sum", labels, sum);
    sample(name + "_count", labels, static_cast<double>(total));
  }

  std::string take() {
    return std::move(out_);
  }

private:
  std::string out_;
};

std::string label(const char* name, const std::string& value) {
  return std::string{name} + "=\"" + prometheus_label_value(value) + "\"";
}

double value(const std::atomic<uint64_t>& a) {
  return static_cast<double>(a.load(std::memory_order_relaxed));
}

} // namespace

std::string status_json(const job_config& cfg, const job_counters& c, bool ready) {
  auto u = [](const std::atomic<uint64_t>& a) { return std::to_string(a.load(std::memory_order_relaxed)); };
  std::string out = "{\"job\":";
  append_json_string(out, cfg.name);
  out += ",\"ready\":" + std::string{ready ? "true" : "false"};
  out += ",\"records\":{\"in\":" + u(c.records_in) + ",\"out\":" + u(c.records_out) + ",\"dead_lettered\":"
         + u(c.dead_lettered) + ",\"in_flight\":" + std::to_string(c.in_flight()) + "}";
  out += ",\"restarts\":" + u(c.restarts);
  out += ",\"checkpoints\":{\"completed\":" + u(c.checkpoints_completed) + ",\"failed\":" + u(c.checkpoints_failed)
         + ",\"restored_from\":" + u(c.restored_from) + "}";
  out += ",\"stages\":[";
  for (size_t s = 0; s < cfg.stages.size() && s < c.stage_count; ++s) {
    auto& st = c.stages[s];
    out += (s > 0 ? "," : "") + std::string{"{\"stage\":"} + std::to_string(s + 1) + ",\"model\":";
    append_json_string(out, cfg.stages[s]);
    out += ",\"records_out\":" + u(st.left) + ",\"calls\":" + u(st.calls) + ",\"retries\":" + u(st.retries)
           + ",\"failed\":" + u(st.failed) + "}";
  }
  out += "],\"endpoints\":[";
  // The breakers' state now: the job breaker's, and how many subtask
  // breakers are open.
  std::map<std::pair<std::string, std::string>, std::string> state;
  for (auto& ev : c.breaker_events())
    state[{ev.endpoint, ev.scope}] = ev.to;
  bool first = true;
  for (auto& kv : c.endpoints()) {
    auto& e = *kv.second;
    auto slash = kv.first.find('/');
    out += first ? "{" : ",{";
    first = false;
    out += "\"model\":";
    append_json_string(out, kv.first.substr(0, slash));
    out += ",\"endpoint\":";
    append_json_string(out, slash == std::string::npos ? std::string{} : kv.first.substr(slash + 1));
    out += ",\"limit\":" + u(e.limit) + ",\"in_flight\":" + u(e.in_flight) + ",\"calls\":" + u(e.calls)
           + ",\"failures\":" + u(e.failures) + ",\"rate_limited\":" + u(e.rate_limited) + ",\"latency_ms\":"
           + number(e.latency_ms.load(std::memory_order_relaxed));
    auto q = e.probe_queue_depth.load(std::memory_order_relaxed);
    out += ",\"probe_queue_depth\":" + (q >= 0 ? number(q) : std::string{"null"});
    out += ",\"suspect\":" + std::string{e.probe_suspect.load(std::memory_order_relaxed) ? "true" : "false"};
    std::string job_state = "closed";
    uint64_t open_subtasks = 0;
    for (auto& s : state) {
      if (s.first.first != kv.first)
        continue;
      if (s.first.second == "job")
        job_state = s.second;
      else if (s.second == "open")
        ++open_subtasks;
    }
    out += ",\"breaker\":";
    append_json_string(out, job_state);
    out += ",\"subtask_breakers_open\":" + std::to_string(open_subtasks) + "}";
  }
  out += "]}";
  return out;
}

std::string prometheus_text(const job_config& cfg, const job_counters& c) {
  exposition e;
  auto job = label("job_name", cfg.name);
  auto counter = [&](const char* name, const char* help, double v) {
    e.family(name, "counter", help);
    e.sample(name, job, v);
  };
  counter("sinfer_records_in_total", "Records the source handed to the subtasks (and restored from a checkpoint).",
          value(c.records_in));
  counter("sinfer_records_out_total", "Records written to the output.", value(c.records_out));
  counter("sinfer_records_dead_lettered_total", "Records written to the dead-letter output.", value(c.dead_lettered));
  e.family("sinfer_records_in_flight", "gauge", "Records read and not yet written anywhere.");
  e.sample("sinfer_records_in_flight", job, static_cast<double>(c.in_flight()));
  e.family("sinfer_source_lag_seconds", "gauge",
           "How late a paced source reads: its next record was due this long ago (0 when on time or not paced).");
  e.sample("sinfer_source_lag_seconds", job,
           static_cast<double>(c.source_lag_ns.load(std::memory_order_relaxed)) / 1e9);
  counter("sinfer_subtask_restarts_total", "Restarts of crashed subtask stages.", value(c.restarts));
  counter("sinfer_checkpoints_completed_total", "Checkpoints completed.", value(c.checkpoints_completed));
  counter("sinfer_checkpoints_failed_total", "Checkpoints abandoned or not written.", value(c.checkpoints_failed));
  counter("sinfer_calls_replayed_total", "Records answered from the call log after a restore instead of a model call.",
          value(c.calls_replayed));
  e.family("sinfer_checkpoint_duration_seconds", "histogram", "Time from a checkpoint's trigger to its synced write.");
  e.histogram("sinfer_checkpoint_duration_seconds", job, c.checkpoint_duration);
  e.family("sinfer_end_to_end_latency_seconds", "histogram",
           "Time from a record's birth (read, or due for a paced source) to its output line.");
  e.histogram("sinfer_end_to_end_latency_seconds", job, c.end_to_end);

  // Per stage.
  std::vector<std::string> stage_labels;
  for (size_t s = 0; s < cfg.stages.size() && s < c.stage_count; ++s)
    stage_labels.push_back(job + "," + label("stage", std::to_string(s + 1)) + "," + label("model", cfg.stages[s]));
  auto per_stage = [&](const char* name, const char* help, const std::atomic<uint64_t> stage_counters::*field) {
    e.family(name, "counter", help);
    for (size_t s = 0; s < stage_labels.size(); ++s)
      e.sample(name, stage_labels[s], value(c.stages[s].*field));
  };
  per_stage("sinfer_stage_records_out_total", "Records that left the stage (scored, failed or passed through).",
            &stage_counters::left);
  per_stage("sinfer_stage_calls_total", "Backend calls the stage made (fallback models included).",
            &stage_counters::calls);
  e.family("sinfer_stage_batches_total", "counter", "Batches sent, by why they closed.");
  for (size_t s = 0; s < stage_labels.size(); ++s)
    for (size_t r = 0; r < 4; ++r)
      e.sample("sinfer_stage_batches_total",
               stage_labels[s] + "," + label("reason", to_string(static_cast<batch_close>(r))),
               value(c.stages[s].batches_by_reason[r]));
  per_stage("sinfer_stage_batched_records_total", "Records in the batches sent.", &stage_counters::batched_records);
  e.family("sinfer_stage_retries_total", "counter",
           "Retries sent, by why the attempt before failed (error, timeout, rate-limited).");
  for (size_t s = 0; s < stage_labels.size(); ++s)
    for (size_t r = 0; r < 3; ++r)
      e.sample("sinfer_stage_retries_total",
               stage_labels[s] + "," + label("reason", r == 0 ? "error" : r == 1 ? "timeout" : "rate-limited"),
               value(c.stages[s].retries_by_reason[r]));
  e.family("sinfer_stage_batch_size", "histogram", "Records per batch sent.");
  for (size_t s = 0; s < stage_labels.size(); ++s) {
    uint64_t below = 0;
    auto& st = c.stages[s];
    for (size_t k = 0; k + 1 < stage_counters::batch_size_buckets; ++k) {
      below += st.batch_sizes[k].load(std::memory_order_relaxed);
      e.sample("sinfer_stage_batch_size_bucket", stage_labels[s] + "," + label("le", std::to_string(uint64_t{1} << k)),
               static_cast<double>(below));
    }
    e.sample("sinfer_stage_batch_size_bucket", stage_labels[s] + ",le=\"+Inf\"", value(st.calls));
    e.sample("sinfer_stage_batch_size_sum", stage_labels[s], value(st.batched_records));
    e.sample("sinfer_stage_batch_size_count", stage_labels[s], value(st.calls));
  }
  per_stage("sinfer_stage_retry_budget_refusals_total", "Retries the retry budget refused.",
            &stage_counters::budget_refusals);
  per_stage("sinfer_stage_failed_records_total", "Records the model could not score (before the failure action).",
            &stage_counters::failed);
  per_stage("sinfer_stage_total_timeouts_total", "Records that ran out of timeout.total.",
            &stage_counters::total_timeouts);
  per_stage("sinfer_stage_defaulted_records_total", "Records given the default value.", &stage_counters::defaulted);
  per_stage("sinfer_stage_fallback_records_total", "Records sent to a fallback model.", &stage_counters::fell_back);
  per_stage("sinfer_stage_skipped_records_total", "Records the stage's condition passed through unscored.",
            &stage_counters::skipped);
  e.family("sinfer_stage_latency_seconds", "histogram", "Time from a record entering the stage to leaving it.");
  for (size_t s = 0; s < stage_labels.size(); ++s)
    e.histogram("sinfer_stage_latency_seconds", stage_labels[s], c.stages[s].latency);

  // Per endpoint ("model/endpoint").
  auto endpoints = c.endpoints();
  auto endpoint_labels = [&](const std::string& key) {
    auto slash = key.find('/');
    return job + "," + label("model", key.substr(0, slash)) + ","
           + label("endpoint", slash == std::string::npos ? std::string{} : key.substr(slash + 1));
  };
  auto per_endpoint = [&](const char* name, const char* type, const char* help, auto read) {
    e.family(name, type, help);
    for (auto& kv : endpoints)
      e.sample(name, endpoint_labels(kv.first), read(*kv.second));
  };
  per_endpoint("sinfer_endpoint_calls_total", "counter", "Calls handed to the backend.",
               [](const endpoint_counters& x) { return value(x.calls); });
  per_endpoint("sinfer_endpoint_call_failures_total", "counter", "Calls that failed as a whole (any class).",
               [](const endpoint_counters& x) { return value(x.failures); });
  per_endpoint("sinfer_endpoint_call_timeouts_total", "counter", "Calls that ran out of timeout.attempt.",
               [](const endpoint_counters& x) { return value(x.timeouts); });
  per_endpoint("sinfer_endpoint_rate_limited_total", "counter", "Answers that said rate-limited (429, or 503 with Retry-After).",
               [](const endpoint_counters& x) { return value(x.rate_limited); });
  per_endpoint("sinfer_endpoint_records_scored_total", "counter", "Records in successful calls.",
               [](const endpoint_counters& x) { return value(x.records_ok); });
  per_endpoint("sinfer_endpoint_prompt_tokens_total", "counter", "LLM prompt tokens the server reported.",
               [](const endpoint_counters& x) { return value(x.prompt_tokens); });
  per_endpoint("sinfer_endpoint_completion_tokens_total", "counter", "LLM completion tokens the server reported.",
               [](const endpoint_counters& x) { return value(x.completion_tokens); });
  per_endpoint("sinfer_endpoint_concurrency_limit", "gauge", "Calls the endpoint allows at once now.",
               [](const endpoint_counters& x) { return value(x.limit); });
  e.family("sinfer_endpoint_server_concurrency_estimate", "gauge",
           "The gradient limiter's estimate of the calls the server runs at once; pacing spaces calls by it, "
           "capped at the limit (absent: none yet, or another limiter).");
  for (auto& kv : endpoints)
    if (auto k = kv.second->server_concurrency.load(std::memory_order_relaxed); k > 0)
      e.sample("sinfer_endpoint_server_concurrency_estimate", endpoint_labels(kv.first), k);
  per_endpoint("sinfer_endpoint_calls_in_flight", "gauge", "Calls in flight now.",
               [](const endpoint_counters& x) { return value(x.in_flight); });
  per_endpoint("sinfer_endpoint_probe_scrapes_total", "counter", "Load probe scrapes of the server's metrics.",
               [](const endpoint_counters& x) { return value(x.probe_scrapes); });
  per_endpoint("sinfer_endpoint_probe_failures_total", "counter", "Load probe scrapes that failed.",
               [](const endpoint_counters& x) { return value(x.probe_failures); });
  e.family("sinfer_endpoint_probe_queue_depth", "gauge",
           "Requests waiting at the server, as the load probe last read them (absent: unknown).");
  for (auto& kv : endpoints)
    if (auto q = kv.second->probe_queue_depth.load(std::memory_order_relaxed); q >= 0)
      e.sample("sinfer_endpoint_probe_queue_depth", endpoint_labels(kv.first), q);
  e.family("sinfer_endpoint_call_latency_seconds", "histogram", "Latency of successful calls.");
  for (auto& kv : endpoints)
    e.histogram("sinfer_endpoint_call_latency_seconds", endpoint_labels(kv.first), kv.second->latency);

  // Breakers: the state now (the last transition's target, else closed)
  // and transitions, for every breaker that ever changed state.
  std::map<std::pair<std::string, std::string>, std::string> state;
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> transitions;
  for (auto& ev : c.breaker_events()) {
    state[{ev.endpoint, ev.scope}] = ev.to;
    ++transitions[{ev.endpoint, ev.scope, ev.to}];
  }
  for (auto& kv : endpoints)
    state.emplace(std::make_pair(kv.first, std::string{"job"}), "closed");
  e.family("sinfer_breaker_state", "gauge",
           "Circuit breaker state: 1 for the current state, 0 for the others (scope: job, or subtask N).");
  for (auto& kv : state)
    for (const char* s : {"closed", "open", "half-open"})
      e.sample("sinfer_breaker_state",
               endpoint_labels(kv.first.first) + "," + label("scope", kv.first.second) + "," + label("state", s),
               kv.second == s ? 1 : 0);
  e.family("sinfer_breaker_transitions_total", "counter", "Circuit breaker transitions, by the state entered.");
  for (auto& kv : transitions)
    e.sample("sinfer_breaker_transitions_total",
             endpoint_labels(std::get<0>(kv.first)) + "," + label("scope", std::get<1>(kv.first)) + ","
               + label("to", std::get<2>(kv.first)),
             static_cast<double>(kv.second));
  return e.take();
}

} // namespace sinfer
