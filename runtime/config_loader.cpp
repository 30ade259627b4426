#include "runtime/config_loader.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <simdjson.h>

#include "runtime/json_reader.hpp"
#include "runtime/json_text.hpp"
#include "runtime/record_template.hpp"

namespace sinfer {

namespace {

using namespace config_reading;

/// Reads an object of string values into ordered pairs.
void string_map(object_reader& r, std::string_view key,
                std::vector<std::pair<std::string, std::string>>& out, error_log& log) {
  object obj;
  if (!r.sub_object(key, obj))
    return;
  out.clear();
  std::set<std::string> seen;
  for (auto field : obj) {
    std::string_view s;
    auto path = r.path(key) + "." + std::string{field.key};
    if (!seen.insert(std::string{field.key}).second) {
      log.add(path, "duplicate key (each key may appear once)");
      continue;
    }
    if (field.value.get(s) || s.empty()) {
      log.add(path, "expected a record field name (non-empty string), got " + shown(field.value));
      continue;
    }
    out.emplace_back(std::string{field.key}, std::string{s});
  }
}

const std::vector<std::string> output_mode_names = {"ordered", "unordered"};
const std::vector<std::string> source_kind_names = {"jsonl", "stdin", "generator"};
/// The largest `source.max-record-bytes` (1 GiB): the source may buffer
/// that much for one line.
constexpr int64_t max_record_bytes_limit = int64_t{1} << 30;
const std::vector<std::string> sink_kind_names = {"jsonl", "stdout", "discard"};
const std::vector<std::string> failure_action_names = {"dead-letter", "fail-job", "default-value",
                                                       "fallback"};
const std::vector<std::string> jitter_names = {"none", "full", "equal", "decorrelated"};
const std::vector<std::string> window_names = {"count", "time"};
const std::vector<std::string> limiter_names = {"fixed", "aimd", "gradient"};
const std::vector<std::string> restart_names = {"none", "fixed-delay", "exponential-delay", "failure-rate"};
const std::vector<std::string> known_providers = {"in-process", "http-json", "kserve-v2", "openai"};
const std::vector<std::string> routing_names = {"load-aware", "round-robin", "weighted", "primary-backup"};
const std::vector<std::string> openai_api_names = {"embeddings", "chat"};
const std::vector<std::string> probe_names = {"in-band", "prometheus", "none"};
const std::vector<std::string> openai_format_names = {"float", "base64"};

/// `kserve`: {"version": "1", "inputs": {"NAME": {"datatype": "FP32", "shape": [3]}}}.
void read_kserve(error_log& log, object obj, const std::string& path, model_config& m) {
  object_reader r{log, obj, path};
  r.string("version", m.kserve_version);
  object inputs;
  if (!r.sub_object("inputs", inputs))
    return;
  for (auto field : inputs) {
    auto ipath = path + ".inputs." + std::string{field.key};
    object tobj;
    if (field.value.get(tobj)) {
      log.add(ipath, "expected an object {\"datatype\": ..., \"shape\": [...]}, got " + shown(field.value));
      continue;
    }
    object_reader t{log, tobj, ipath};
    kserve_tensor k;
    k.name = std::string{field.key};
    t.string("datatype", k.datatype);
    if (!k.datatype.empty() && !is_kserve_datatype(k.datatype))
      t.error("datatype", "expected one of BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BYTES, got \""
                            + k.datatype + "\"");
    element shape;
    if (t.get("shape", shape)) {
      simdjson::dom::array arr;
      bool ok = !shape.get(arr) && arr.size() > 0;
      for (auto d : arr) {
        int64_t n = 0;
        ok = ok && !d.get(n) && (n == -1 || n > 0);
        k.shape.push_back(n);
      }
      if (!ok)
        t.error("shape", "expected the per-record shape as a non-empty array of sizes (-1: any), e.g. [3], got "
                           + shown(shape));
    }
    m.kserve_inputs.push_back(std::move(k));
  }
}

/// A list of metric names (an array of strings; one string is a list of
/// one). Names are checked by check_job_config.
void metric_names(object_reader& r, std::string_view key, std::vector<std::string>& out, error_log& log) {
  element e;
  if (!r.get(key, e))
    return;
  std::string_view one;
  if (!e.get(one)) {
    out = {std::string{one}};
    return;
  }
  simdjson::dom::array arr;
  if (e.get(arr)) {
    r.error(key, "expected an array of metric names, got " + shown(e));
    return;
  }
  out.clear();
  size_t i = 0;
  for (auto item : arr) {
    auto at = r.path(key) + "[" + std::to_string(i++) + "]";
    std::string_view s;
    if (item.get(s)) {
      log.add(at, "expected a metric name (string), got " + shown(item));
      continue;
    }
    out.emplace_back(s);
  }
}

/// `probe`: {"type": "prometheus", "interval": "1s", "path": "/metrics", ...}.
void read_probe(error_log& log, object obj, const std::string& path, probe_config& p) {
  object_reader r{log, obj, path};
  bool type_bad = r.has("type") && !r.choice("type", probe_names, p.kind);
  if (!type_bad && p.kind != probe_kind::prometheus)
    for (auto key : {"interval", "path", "timeout", "queue-depth", "running", "queue-time-us", "queue-time-requests",
                     "cache-usage", "model-label-value", "failure-threshold", "stale-after"})
      if (r.has(key))
        r.error(key, "only valid when probe.type is \"prometheus\"");
  r.duration("interval", p.interval);
  r.string("path", p.path);
  r.duration("timeout", p.timeout);
  metric_names(r, "queue-depth", p.metrics.queue_depth, log);
  metric_names(r, "running", p.metrics.running, log);
  r.string("queue-time-us", p.metrics.queue_time_us, false);
  r.string("queue-time-requests", p.metrics.queue_time_requests, false);
  metric_names(r, "cache-usage", p.metrics.cache_usage, log);
  element e;
  if (r.get("model-label-value", e)) {
    std::string_view v;
    if (e.get(v))
      r.error("model-label-value", "expected a string (\"\": every series), got " + shown(e));
    else
      p.model_label_value = std::string{v};
  }
  r.integer("failure-threshold", 1, 1000000, p.health.failure_threshold);
  r.duration("stale-after", p.health.stale_after);
}

/// Whether `name` is a Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.
bool is_metric_name(const std::string& name) {
  if (name.empty())
    return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'
              || (i > 0 && c >= '0' && c <= '9');
    if (!ok)
      return false;
  }
  return true;
}

/// The checks of `probe` both a file and job_builder get.
void check_probe(error_log& log, const model_config& m, const std::string& path) {
  auto& p = m.probe;
  if (p.kind != probe_kind::prometheus)
    return;
  if (m.provider == "in-process")
    log.add(path + ".type", "\"prometheus\" scrapes the model server's metrics page: only valid for HTTP providers "
                            "(this model's provider is \"in-process\"); use \"in-band\" or \"none\"");
  if (p.interval < std::chrono::milliseconds{1})
    log.add(path + ".interval", "expected a duration >= 1ms");
  if (p.timeout < std::chrono::milliseconds{1})
    log.add(path + ".timeout", "expected a duration >= 1ms");
  if (p.path.empty() || p.path[0] != '/')
    log.add(path + ".path", "expected a path starting with '/', got \"" + p.path + "\"");
  if (p.health.failure_threshold < 1)
    log.add(path + ".failure-threshold", "expected an integer >= 1");
  if (p.health.stale_after.count() < 0)
    log.add(path + ".stale-after", "expected a duration >= 0 (0: never by time)");
  auto names = [&](const char* key, const std::vector<std::string>& list) {
    for (size_t i = 0; i < list.size(); ++i)
      if (!is_metric_name(list[i]))
        log.add(path + "." + key + "[" + std::to_string(i) + "]",
                "expected a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got \"" + list[i] + "\"");
  };
  names("queue-depth", p.metrics.queue_depth);
  names("running", p.metrics.running);
  names("cache-usage", p.metrics.cache_usage);
  auto counter = [&](const char* key, const std::string& name) {
    if (!name.empty() && !is_metric_name(name))
      log.add(path + "." + key, "expected a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or \"\" (none), got \""
                                  + name + "\"");
  };
  counter("queue-time-us", p.metrics.queue_time_us);
  counter("queue-time-requests", p.metrics.queue_time_requests);
}

void read_job(error_log& log, object obj, job_config& cfg) {
  object_reader r{log, obj, "job"};
  r.string("name", cfg.name);
  r.integer("parallelism", 1, 1024, cfg.parallelism);
  r.choice("output-mode", output_mode_names, cfg.mode);
  r.string("partition-by", cfg.partition_by);
  object rs;
  if (r.sub_object("restart-strategy", rs)) {
    object_reader q{log, rs, "job.restart-strategy"};
    q.choice("type", restart_names, cfg.restart.kind);
    auto only_for = [&](std::string_view key, restart_kind kind) {
      if (q.has(key) && cfg.restart.kind != kind)
        q.error(key, std::string{"only valid when type is \""} + to_string(kind) + "\"");
    };
    only_for("attempts", restart_kind::fixed_delay);
    q.integer("attempts", 0, 1000000, cfg.restart.attempts);
    if (q.has("delay") && cfg.restart.kind != restart_kind::fixed_delay && cfg.restart.kind != restart_kind::failure_rate)
      q.error("delay", "only valid when type is \"fixed-delay\" or \"failure-rate\"");
    q.duration("delay", cfg.restart.delay);
    for (auto key : {"initial-backoff", "max-backoff", "backoff-multiplier", "reset-backoff-threshold", "max-attempts"})
      only_for(key, restart_kind::exponential_delay);
    q.duration("initial-backoff", cfg.restart.initial_backoff);
    q.duration("max-backoff", cfg.restart.max_backoff);
    q.number("backoff-multiplier", 1.0, 100.0, cfg.restart.backoff_multiplier);
    q.duration("reset-backoff-threshold", cfg.restart.reset_backoff_threshold);
    q.integer("max-attempts", 0, 1000000, cfg.restart.max_attempts);
    for (auto key : {"max-failures-per-interval", "failure-rate-interval"})
      only_for(key, restart_kind::failure_rate);
    q.integer("max-failures-per-interval", 1, 1000000, cfg.restart.max_failures_per_interval);
    q.duration("failure-rate-interval", cfg.restart.failure_rate_interval);
  }
}

std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

/// The values of one `source.profile` segment at `path`.
void check_segment(error_log& log, const std::string& path, const load_segment& seg) {
  auto ms = [](std::chrono::nanoseconds d) { return number_text(static_cast<double>(d.count()) / 1e6) + "ms"; };
  auto rate = [&](const char* key, double v) {
    if (!(v >= 0 && v <= 1e12))
      log.add(path + "." + key, "expected a number >= 0 (records per second, at most 1e12), got " + number_text(v));
  };
  auto positive = [&](const char* key, std::chrono::nanoseconds d) {
    if (d.count() <= 0)
      log.add(path + "." + key, "expected a duration > 0, got " + ms(d));
  };
  positive("for", seg.length);
  rate("rate", seg.rate);
  switch (seg.shape) {
    case load_shape::constant:
      break;
    case load_shape::ramp:
      rate("to", seg.to);
      break;
    case load_shape::diurnal:
      rate("peak", seg.peak);
      positive("period", seg.period);
      break;
    case load_shape::bursts:
      rate("burst-rate", seg.burst_rate);
      positive("burst-every", seg.burst_every);
      positive("burst-for", seg.burst_length);
      if (seg.burst_length > seg.burst_every && seg.burst_every.count() > 0)
        log.add(path + ".burst-for", "expected a duration <= burst-every (" + ms(seg.burst_every) + "), got "
                                       + ms(seg.burst_length));
      break;
  }
}

/// `source.profile`: an array of segments, each `for` (a duration) and
/// `rate`, plus `to` (a ramp), `peak` and `period` (a diurnal sine, period
/// 24 h unless given) or `burst-every`, `burst-for` and `burst-rate`
/// (bursts over the rate). A segment that reads cleanly has its values
/// checked at once (check_segment).
void read_profile(error_log& log, object_reader& r, source_config& src) {
  element e;
  if (!r.get("profile", e))
    return;
  simdjson::dom::array arr;
  if (e.get(arr) || arr.size() == 0) {
    r.error("profile", "expected a non-empty array of segments such as [{\"for\": \"5m\", \"rate\": 1000}], got "
                         + shown(e));
    return;
  }
  src.profile.clear();
  size_t i = 0;
  for (auto item : arr) {
    auto path = r.path("profile") + "[" + std::to_string(i++) + "]";
    object obj;
    if (item.get(obj)) {
      log.add(path, "expected a segment object such as {\"for\": \"5m\", \"rate\": 1000}, got " + shown(item));
      continue;
    }
    auto errors_before = log.lines.size();
    object_reader s{log, obj, path};
    load_segment seg;
    s.require("for", "how long the segment lasts, e.g. \"5m\"");
    s.duration("for", seg.length);
    s.require("rate", "records per second: throughout, at the start of a ramp or at the diurnal trough");
    auto rate = [&](const char* key, double& out) {
      element v;
      if (!s.get(key, v))
        return false;
      if (!v.is_number() || v.get(out))
        s.error(key, "expected a number >= 0 (records per second), got " + shown(v));
      return true;
    };
    rate("rate", seg.rate);
    bool ramp = rate("to", seg.to);
    bool peak = rate("peak", seg.peak);
    bool diurnal = peak || s.has("period");
    seg.period = std::chrono::hours{24};
    s.duration("period", seg.period);
    bool bursts = false;
    for (auto key : {"burst-every", "burst-for", "burst-rate"})
      bursts = bursts || s.has(key);
    s.duration("burst-every", seg.burst_every);
    s.duration("burst-for", seg.burst_length);
    rate("burst-rate", seg.burst_rate);
    if (ramp + diurnal + bursts > 1) {
      std::string mixed = ramp ? "\"to\"" : "";
      if (diurnal)
        mixed += std::string{mixed.empty() ? "" : " with "} + (peak ? "\"peak\"" : "\"period\"");
      if (bursts)
        mixed += " with \"burst-*\"";
      log.add(path, "a segment is one of constant (\"rate\"), ramp (\"to\"), diurnal (\"peak\", \"period\") or "
                    "bursts (\"burst-every\", \"burst-for\", \"burst-rate\"); this one has " + mixed);
    }
    if (diurnal && !peak)
      s.error("peak", "missing required key (the rate at the top of the diurnal cycle)");
    if (bursts)
      for (auto key : {"burst-every", "burst-for", "burst-rate"})
        if (!s.has(key))
          s.error(key, "missing required key (bursts need \"burst-every\", \"burst-for\" and \"burst-rate\")");
    seg.shape = ramp ? load_shape::ramp
                : diurnal ? load_shape::diurnal
                : bursts ? load_shape::bursts : load_shape::constant;
    s.finish();
    if (log.lines.size() == errors_before)
      check_segment(log, path, seg);
    src.profile.push_back(seg);
  }
}

/// The checks of `source.profile` both a file and job_builder get (a file
/// gets the per-segment ones as each segment is read, so they are reported
/// with the other errors of the file).
void check_profile(error_log& log, const source_config& src) {
  if (src.profile.empty())
    return;
  if (src.kind != source_kind::generator) {
    log.add("source.profile", "only valid when source.type is \"generator\"");
    return;
  }
  if (src.rate > 0)
    log.add("source.rate", "not valid with source.profile (the profile sets the rate over time; remove one)");
  double total = 0;
  for (size_t i = 0; i < src.profile.size(); ++i) {
    check_segment(log, "source.profile[" + std::to_string(i) + "]", src.profile[i]);
    total += static_cast<double>(src.profile[i].length.count());
  }
  if (total > 1e18)
    log.add("source.profile", "the segments last " + number_text(total / 3.6e12)
                                + " h in all; at most 1e18 ns (about 31 years)");
}

void read_source(error_log& log, object obj, source_config& src) {
  object_reader r{log, obj, "source"};
  r.require("type", "one of \"jsonl\" | \"stdin\" | \"generator\"");
  bool type_ok = r.choice("type", source_kind_names, src.kind);
  r.string("name", src.name);
  auto only_for = [&](std::string_view key, source_kind kind, const char* kind_name) {
    if (type_ok && r.has(key) && src.kind != kind)
      r.error(key, std::string{"only valid when source.type is \""} + kind_name + "\"");
  };
  if (type_ok && src.kind == source_kind::jsonl)
    r.require("path", "the JSONL file to read");
  only_for("path", source_kind::jsonl, "jsonl");
  r.string("path", src.path);
  if (type_ok && r.has("max-record-bytes") && src.kind == source_kind::generator)
    r.error("max-record-bytes", "only valid when source.type is \"jsonl\" or \"stdin\"");
  r.integer("max-record-bytes", 1, max_record_bytes_limit, src.max_record_bytes);
  for (auto key : {"count", "rate", "template", "seed", "profile"})
    only_for(key, source_kind::generator, "generator");
  r.integer("count", 0, std::numeric_limits<int64_t>::max(), src.count);
  r.number("rate", 0, 1e12, src.rate);
  if (src.rate > 0 && src.rate < 0.001)
    r.error("rate", "expected 0 (as fast as credit allows) or at least 0.001 records/s");
  read_profile(log, r, src);
  if (!src.profile.empty()) {
    if (r.has("rate")) // also "rate": 0
      r.error("rate", "not valid with source.profile (the profile sets the rate over time; remove one)");
    if (!r.has("count")) // the generator ends with the profile
      src.count = load_profile{src.profile}.total_records();
  }
  r.integer("seed", 0, std::numeric_limits<int64_t>::max(), src.seed);
  object tmpl;
  if (r.sub_object("template", tmpl))
    src.record_template = simdjson::minify(tmpl);
  if (src.name.empty())
    src.name = src.kind == source_kind::jsonl ? src.path
               : src.kind == source_kind::stdin_lines ? "stdin" : "generator";
}

void read_breaker(error_log& log, object obj, const std::string& path, breaker_config& b, bool* enabled) {
  object_reader r{log, obj, path};
  if (enabled != nullptr) {
    element e;
    if (r.get("enabled", e) && e.get(*enabled))
      r.error("enabled", "expected true or false, got " + shown(e));
  }
  r.choice("window", window_names, b.window);
  r.integer("window-size", 1, 1000000, b.window_calls);
  r.duration("window-duration", b.window_duration);
  r.number("failure-rate", 0.01, 1.0, b.failure_rate);
  r.number("slow-call-rate", 0.01, 1.0, b.slow_call_rate);
  r.duration("slow-call-duration", b.slow_call_duration);
  r.integer("minimum-calls", 1, 1000000, b.minimum_calls);
  r.duration("open-duration", b.open_duration);
  r.number("open-growth", 1.0, 100.0, b.open_growth);
  r.duration("max-open-duration", b.max_open_duration);
  r.integer("half-open-probes", 1, 10000, b.half_open_probes);
  r.duration("half-open-max-wait", b.half_open_max_wait);
  if (b.window == window_kind::time && b.window_duration.count() <= 0)
    r.error("window-duration", "expected a duration > 0");
  if (b.max_open_duration < b.open_duration)
    r.error("max-open-duration", "expected at least open-duration");
}

/// Why `url` cannot be an endpoint's base URL (empty: it can). The URL is
/// not repeated when it may hold credentials.
std::string url_problem(const std::string& url) {
  auto scheme = url.rfind("http://", 0) == 0 ? 7 : url.rfind("https://", 0) == 0 ? 8 : 0;
  auto authority = url.substr(scheme);
  if (authority.find('@') != std::string::npos)
    return "credentials in a URL are not supported (use api-key or api-key-env); URL not shown";
  if (scheme == 0)
    return "expected a URL starting with http:// or https://, got \"" + url + "\"";
  if (authority.empty() || authority.find_first_of("/?#") != std::string::npos)
    return "expected scheme://host:port with no path (the path is http.path), got \"" + url + "\"";
  return {};
}

void read_endpoints(error_log& log, element e, const std::string& path, model_config& m) {
  simdjson::dom::array arr;
  if (e.get(arr)) {
    log.add(path, "expected an array of endpoint objects, got " + shown(e));
    return;
  }
  std::set<std::string> names;
  size_t i = 0;
  for (auto item : arr) {
    auto at = path + "[" + std::to_string(i) + "]";
    endpoint_config ep;
    object obj;
    std::string_view url;
    if (item.get(url) == simdjson::SUCCESS) {
      if (url.empty()) { // not an object either: nothing below may read it as one
        log.add(at, "expected an endpoint URL such as \"http://127.0.0.1:8000\", got an empty string");
        ++i;
        continue;
      }
      ep.url = std::string{url};
    } else if (item.get(obj)) {
      log.add(at, "expected an endpoint URL or object such as {\"url\": \"http://127.0.0.1:8000\"}, got "
                    + shown(item));
      ++i;
      continue;
    }
    if (!ep.url.empty()) {
      if (auto why = url_problem(ep.url); !why.empty()) {
        log.add(at, why);
        ep.url = "http://invalid";
      }
      ep.name = ep.url.substr(ep.url.find("//") + 2);
      if (!names.insert(ep.name).second)
        log.add(at, "another endpoint of this model is already named \"" + ep.name + "\"");
      m.endpoints.push_back(std::move(ep));
      ++i;
      continue;
    }
    object_reader r{log, obj, at};
    r.string("url", ep.url);
    if (!ep.url.empty()) {
      if (auto why = url_problem(ep.url); !why.empty()) {
        r.error("url", why);
        ep.url = "http://invalid";
      }
    }
    r.string("name", ep.name);
    if (ep.name.empty() && !ep.url.empty())
      ep.name = ep.url.substr(ep.url.find("//") + 2);
    object opts;
    if (r.sub_object("options", opts))
      ep.options_json = simdjson::minify(opts);
    r.duration("latency", ep.latency);
    r.duration("latency-per-record", ep.latency_per_record);
    r.integer("concurrency", 1, 100000, ep.concurrency);
    r.number("weight", 0.001, 1e6, ep.weight);
    if (ep.name.empty())
      ep.name = m.name + "#" + std::to_string(i);
    if (!names.insert(ep.name).second)
      r.error("name", "another endpoint of this model is already named \"" + ep.name + "\"");
    m.endpoints.push_back(std::move(ep));
    ++i;
  }
  if (i == 0)
    log.add(path, "expected at least one endpoint");
}

void read_model(error_log& log, object obj, const std::string& name, model_config& m) {
  auto path = "models." + name;
  object_reader r{log, obj, path};
  m.name = name;
  m.model = name;
  element e;
  if (r.get("provider", e)) {
    std::string_view p;
    bool known = !e.get(p) && std::find(known_providers.begin(), known_providers.end(), p)
                                != known_providers.end();
    if (!known)
      r.error("provider", "expected one of \"in-process\" | \"http-json\" | \"kserve-v2\" | \"openai\", got "
                            + shown(e));
    else
      m.provider = std::string{p};
  }
  r.string("model", m.model);
  r.string("api-key", m.api_key, true, true);
  r.string("api-key-env", m.api_key_env);
  r.string("api-key-header", m.api_key_header);
  r.string("ca-file", m.ca_file);
  if (!m.api_key.empty() && !m.api_key_env.empty())
    r.error("api-key-env", "give either api-key or api-key-env, not both");
  object http;
  if (r.sub_object("http", http)) {
    object_reader h{log, http, path + ".http"};
    h.string("path", m.http_path);
    h.string("inputs-field", m.http_inputs_field);
    h.string("outputs-field", m.http_outputs_field);
    h.boolean("batched", m.http_batched);
    if (!m.http_path.empty() && m.http_path[0] != '/')
      h.error("path", "expected a path starting with '/', got \"" + m.http_path + "\"");
  }
  object kserve;
  if (r.sub_object("kserve", kserve))
    read_kserve(log, kserve, path + ".kserve", m);
  object openai;
  if (r.sub_object("openai", openai)) {
    object_reader o{log, openai, path + ".openai"};
    m.openai_api_set = o.choice("api", openai_api_names, m.openai_kind);
    int format = 0;
    if (o.choice("encoding-format", openai_format_names, format))
      m.openai_encoding_format = openai_format_names[static_cast<size_t>(format)];
    o.string("prompt", m.openai_prompt);
    o.string("system-prompt", m.openai_system_prompt);
    double t = 0;
    if (o.has("temperature")) {
      o.number("temperature", 0.0, 2.0, t);
      m.openai_temperature = t;
    }
    o.integer("max-tokens", 1, 1000000, m.openai_max_tokens);
  }
  object opts;
  if (r.sub_object("options", opts))
    m.options_json = simdjson::minify(opts);
  string_map(r, "input", m.input, log);
  string_map(r, "output", m.output, log);
  r.integer("max-concurrent-operations", 1, 1000000, m.max_concurrent_operations);
  object sub;
  if (r.sub_object("batch", sub)) {
    object_reader b{log, sub, path + ".batch"};
    b.integer("max-size", 1, 100000, m.batch.max_size);
    b.duration("max-delay", m.batch.max_delay);
    b.integer("max-bytes", 0, std::numeric_limits<int64_t>::max(), m.batch.max_bytes);
  }
  if (r.sub_object("concurrency", sub)) {
    object_reader c{log, sub, path + ".concurrency"};
    c.integer("max", 1, 100000, m.concurrency_max);
    c.choice("limiter", limiter_names, m.limiter);
    c.integer("min", 1, 100000, m.concurrency_min);
    c.integer("initial", 1, 100000, m.concurrency_initial);
    c.boolean("pacing", m.concurrency_pacing);
    if (m.concurrency_min > m.concurrency_max)
      c.error("min", "expected at most concurrency.max (" + std::to_string(m.concurrency_max) + ")");
  }
  r.duration("latency", m.latency);
  r.duration("latency-per-record", m.latency_per_record);
  if (r.sub_object("routing", sub)) {
    object_reader q{log, sub, path + ".routing"};
    q.choice("strategy", routing_names, m.routing);
  }
  if (r.sub_object("probe", sub))
    read_probe(log, sub, path + ".probe", m.probe);
  if (r.sub_object("timeout", sub)) {
    object_reader t{log, sub, path + ".timeout"};
    t.duration("attempt", m.timeout.attempt);
    t.duration("total", m.timeout.total);
    if (m.timeout.attempt.count() <= 0)
      t.error("attempt", "expected a duration > 0");
  }
  if (r.sub_object("retry", sub)) {
    object_reader q{log, sub, path + ".retry"};
    q.integer("max-attempts", 1, 1000, m.retry_max_attempts);
    q.duration("initial-backoff", m.backoff.initial);
    q.duration("max-backoff", m.backoff.max);
    q.number("multiplier", 1.0, 100.0, m.backoff.multiplier);
    q.choice("jitter", jitter_names, m.backoff.jitter);
    q.number("budget-percent", 0.0, 100.0, m.retry_budget.budget_percent);
    q.integer("min-retry-concurrency", 0, 1000000, m.retry_budget.min_retry_concurrency);
    q.integer("seed", 0, std::numeric_limits<int64_t>::max(), m.retry_seed);
    if (m.backoff.max < m.backoff.initial)
      q.error("max-backoff", "expected at least retry.initial-backoff");
  }
  if (r.sub_object("breaker", sub)) {
    object_reader b{log, sub, path + ".breaker"};
    object tier;
    if (b.sub_object("subtask", tier))
      read_breaker(log, tier, path + ".breaker.subtask", m.subtask_breaker, nullptr);
    if (b.sub_object("job", tier))
      read_breaker(log, tier, path + ".breaker.job", m.job_breaker, &m.job_breaker_enabled);
  }
  element eps;
  if (r.get("endpoints", eps))
    read_endpoints(log, eps, path + ".endpoints", m);
  r.choice("failure-action", failure_action_names, m.on_failure);
  object defaults;
  if (r.sub_object("default-value", defaults)) {
    for (auto field : defaults)
      m.default_value.emplace_back(std::string{field.key}, simdjson::minify(field.value));
    if (m.on_failure != failure_action::default_value)
      r.error("default-value", "only used when failure-action is \"default-value\"");
  } else if (m.on_failure == failure_action::default_value) {
    r.error("default-value", "missing required key (the output fields to write when the model fails, "
                             "e.g. {\"label\": \"unknown\"})");
  }
  r.string("fallback", m.fallback);
  if (m.on_failure == failure_action::fallback && m.fallback.empty() && !r.has("fallback"))
    r.error("fallback", "missing required key (the model that scores records this one fails)");
  else if (m.on_failure != failure_action::fallback && r.has("fallback"))
    r.error("fallback", "only used when failure-action is \"fallback\"");
}

void read_models(error_log& log, object obj, job_config& cfg) {
  std::set<std::string> seen;
  for (auto field : obj) {
    std::string name{field.key};
    if (!seen.insert(name).second) {
      log.add("models." + name, "duplicate model name (each model may appear once)");
      continue;
    }
    object mobj;
    if (field.value.get(mobj)) {
      log.add("models." + name, "expected an object describing the model, got " + shown(field.value));
      continue;
    }
    if (name.empty()) {
      log.add("models", "a model name must not be empty");
      continue;
    }
    read_model(log, mobj, name, cfg.models[name]);
  }
  if (seen.empty())
    log.add("models", "expected at least one model");
}

void read_stages(error_log& log, element e, job_config& cfg) {
  simdjson::dom::array arr;
  if (e.get(arr)) {
    log.add("stages", "expected an array of model names, got " + shown(e));
    return;
  }
  size_t i = 0;
  for (auto item : arr) {
    std::string_view s;
    auto path = "stages[" + std::to_string(i++) + "]";
    object stage;
    if (item.get(stage) == simdjson::SUCCESS) {
      // {"model": NAME, "when": {"field": F, "equals" | "not-equals": V |
      // "in": [V, ...] | "exists": true | false}}
      object_reader r{log, stage, path};
      std::string model;
      r.require("model", "the stage's model name");
      r.string("model", model);
      stage_condition cond;
      object when;
      if (r.sub_object("when", when)) {
        object_reader w{log, when, path + ".when"};
        w.require("field", "the record field the condition reads");
        w.string("field", cond.field);
        int tests = 0;
        element v;
        for (auto [key, kind] : {std::pair{"equals", stage_condition::test::equals},
                                 std::pair{"not-equals", stage_condition::test::not_equals}})
          if (w.get(key, v)) {
            ++tests;
            cond.kind = kind;
            cond.values = {simdjson::minify(v)};
          }
        if (w.get("in", v)) {
          ++tests;
          simdjson::dom::array values;
          if (v.get(values) || values.size() == 0) {
            w.error("in", "expected a non-empty array of values, got " + shown(v));
          } else {
            cond.kind = stage_condition::test::in;
            for (auto x : values)
              cond.values.push_back(simdjson::minify(x));
          }
        }
        if (w.get("exists", v)) {
          ++tests;
          bool exists = true;
          if (v.get(exists))
            w.error("exists", "expected true or false, got " + shown(v));
          cond.kind = exists ? stage_condition::test::exists : stage_condition::test::missing;
        }
        if (tests != 1)
          w.error("field", "expected exactly one test beside it: equals, not-equals, in or exists");
        w.finish();
      }
      r.finish();
      if (model.empty())
        continue;
      cfg.stage_conditions.resize(cfg.stages.size());
      cfg.stages.push_back(model);
      cfg.stage_conditions.push_back(cond);
      continue;
    }
    if (item.get(s) || s.empty()) {
      log.add(path, "expected a model name (string) or {\"model\": NAME, \"when\": {...}}, got " + shown(item));
      continue;
    }
    cfg.stages.emplace_back(s);
  }
  if (i == 0)
    log.add("stages", "expected at least one stage");
}

void read_sink(error_log& log, object obj, job_config& cfg) {
  auto& sink = cfg.sink;
  object_reader r{log, obj, "sink"};
  r.integer("buffer", 1, 1000000, cfg.sink_buffer);
  r.require("type", "one of \"jsonl\" | \"stdout\"");
  bool type_ok = r.choice("type", sink_kind_names, sink.kind);
  if (type_ok && sink.kind == sink_kind::jsonl)
    r.require("path", "the JSONL file to write");
  else if (type_ok && r.has("path"))
    r.error("path", "only valid when sink.type is \"jsonl\"");
  r.string("path", sink.path);
}

} // namespace

bool parse_duration(std::string_view text, std::chrono::nanoseconds& out) {
  text = trim(text);
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.'))
    ++i;
  if (i == 0)
    return false;
  std::string number{text.substr(0, i)};
  auto unit = trim(text.substr(i));
  char* end = nullptr;
  double v = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !std::isfinite(v) || v < 0)
    return false;
  double ns_per_unit = 0;
  if (unit == "ns")
    ns_per_unit = 1;
  else if (unit == "us")
    ns_per_unit = 1e3;
  else if (unit == "ms")
    ns_per_unit = 1e6;
  else if (unit == "s")
    ns_per_unit = 1e9;
  else if (unit == "m" || unit == "min")
    ns_per_unit = 60e9;
  else if (unit == "h")
    ns_per_unit = 3600e9;
  else
    return false;
  double ns = v * ns_per_unit;
  if (ns > 1e18)
    return false;
  out = std::chrono::nanoseconds{static_cast<int64_t>(ns)};
  return true;
}

config_result parse_job_config(std::string_view json, const std::string& file,
                               const model_registry& models) {
  config_result result;
  error_log log{file, {}};
  simdjson::dom::parser parser;
  simdjson::padded_string text{json};
  element root;
  if (auto err = parser.parse(text).get(root)) {
    log.add("", std::string{"invalid JSON: "} + simdjson::error_message(err));
    result.errors = std::move(log.lines);
    return result;
  }
  object top;
  if (root.get(top)) {
    log.add("", std::string{"expected a JSON object at the top level, got "} + kind_of(root));
    result.errors = std::move(log.lines);
    return result;
  }
  job_config cfg;
  cfg.file = file;
  {
    object_reader r{log, top, ""};
    object obj;
    if (r.sub_object("job", obj))
      read_job(log, obj, cfg);
    r.require("source", "where records come from");
    if (r.sub_object("source", obj))
      read_source(log, obj, cfg.source);
    r.require("models", "the models, by name");
    if (r.sub_object("models", obj))
      read_models(log, obj, cfg);
    r.require("stages", "the model names records pass through, in order");
    element e;
    if (r.get("stages", e))
      read_stages(log, e, cfg);
    r.require("sink", "where results go");
    if (r.sub_object("sink", obj))
      read_sink(log, obj, cfg);
    if (r.sub_object("dead-letter", obj)) {
      object_reader d{log, obj, "dead-letter"};
      d.string("path", cfg.dead_letter_path);
    }
    if (r.sub_object("checkpoint", obj)) {
      object_reader c{log, obj, "checkpoint"};
      auto& ck = cfg.checkpoint;
      c.string("dir", ck.dir);
      std::chrono::nanoseconds d = ck.interval;
      c.duration("interval", d);
      ck.interval = std::chrono::duration_cast<std::chrono::milliseconds>(d);
      if (c.has("interval") && ck.interval.count() < 1)
        c.error("interval", "expected a duration of at least 1ms");
      d = ck.timeout;
      c.duration("timeout", d);
      ck.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(d);
      if (c.has("timeout") && ck.timeout.count() < 1)
        c.error("timeout", "expected a duration of at least 1ms");
      c.integer("retain", 1, 1000, ck.retain);
      if (c.get("call-log", e)) {
        bool on = false;
        if (e.get(on) == simdjson::SUCCESS)
          ck.call_log = on ? call_log_mode::all : call_log_mode::off;
        else
          c.choice("call-log", {"off", "remote", "all"}, ck.call_log);
      }
      c.boolean("call-log-sync", ck.call_log_sync);
      c.require("dir", "the directory of the job's checkpoints and call log");
      c.finish();
    }
    if (r.sub_object("metrics", obj)) {
      object_reader m{log, obj, "metrics"};
      m.integer("port", 0, 65535, cfg.metrics.port);
      m.string("host", cfg.metrics.host);
      m.string("event-log", cfg.metrics.event_log);
      if (!m.has("port") && !m.has("event-log"))
        m.error("port", "missing: give metrics.port (0: any free port) or metrics.event-log, or remove metrics");
      m.finish();
    }
  }
  if (log.lines.empty()) {
    cfg.file.clear(); // check_job_config prefixes with the file itself
    auto more = check_job_config(cfg, models);
    cfg.file = file;
    for (auto& line : more)
      log.lines.push_back(file.empty() ? line : file + ": " + line);
  }
  if (!log.lines.empty()) {
    result.errors = std::move(log.lines);
    return result;
  }
  result.config = std::move(cfg);
  return result;
}

config_result load_job_config(const std::string& path, const model_registry& models) {
  std::string text;
  if (!read_text_file(path, text)) {
    config_result result;
    result.errors.push_back(path + ": cannot read the config file: " + std::strerror(errno));
    return result;
  }
  return parse_job_config(text, path, models);
}

std::vector<std::string> check_job_config(job_config& cfg, const model_registry& models) {
  error_log log{cfg.file, {}};
  if (cfg.parallelism < 1)
    log.add("job.parallelism", "expected an integer >= 1");
  if (cfg.source.kind == source_kind::jsonl && cfg.source.path.empty())
    log.add("source.path", "missing required key (the JSONL file to read)");
  if (cfg.sink.kind == sink_kind::jsonl && cfg.sink.path.empty())
    log.add("sink.path", "missing required key (the JSONL file to write)");
  if (cfg.stages.empty())
    log.add("stages", "expected at least one stage");
  if (cfg.checkpoint.enabled()) {
    if (cfg.source.kind == source_kind::stdin_lines)
      log.add("source.type", "\"stdin\" cannot be read again after a restore, so it cannot be checkpointed; "
                             "use a jsonl file or a generator source, or remove checkpoint");
    if (cfg.sink.kind == sink_kind::stdout_lines)
      log.add("sink.type", "\"stdout\" cannot take back lines a restore writes again, so it cannot be "
                           "checkpointed; use a jsonl sink (its path becomes a directory of parts)");
    if (cfg.sink.kind == sink_kind::jsonl && cfg.dead_letter_path.empty())
      log.add("dead-letter.path", "expected a directory for dead-letter parts (checkpoint is on)");
  }
  if (cfg.sink_buffer < 1)
    log.add("sink.buffer", "expected an integer >= 1");
  if (cfg.source.max_record_bytes < 1 || cfg.source.max_record_bytes > static_cast<uint64_t>(max_record_bytes_limit))
    log.add("source.max-record-bytes", "expected an integer in 1.." + std::to_string(max_record_bytes_limit) + ", got "
                                         + std::to_string(cfg.source.max_record_bytes));
  if (cfg.source.kind == source_kind::generator) {
    std::string err;
    if (!record_template::parse(cfg.source.record_template, err))
      log.add("source.template", "expected placeholders ${i} or ${pick:a|b}: " + err);
  }
  check_profile(log, cfg.source);
  std::vector<std::string> model_names;
  for (auto& kv : cfg.models)
    model_names.push_back(kv.first);
  for (size_t i = 0; i < cfg.stages.size(); ++i)
    if (cfg.models.count(cfg.stages[i]) == 0)
      log.add("stages[" + std::to_string(i) + "]",
              "no model named \"" + cfg.stages[i] + "\" in models" + did_you_mean(cfg.stages[i], model_names));
  // What every provider's outputs must satisfy: default values name output
  // fields, and no two outputs write the same field.
  auto check_outputs = [&](const model_config& m, const std::string& path) {
    for (auto& dv : m.default_value) {
      bool written = false;
      for (auto& out : m.output)
        written = written || out.second == dv.first;
      if (!written) {
        std::vector<std::string> fields;
        for (auto& out : m.output)
          fields.push_back(out.second);
        log.add(path + ".default-value." + dv.first,
                "not an output field of this model" + did_you_mean(dv.first, fields));
      }
    }
    std::map<std::string, std::string> writer_of;
    for (auto& out : m.output) {
      auto [it, fresh] = writer_of.emplace(out.second, out.first);
      if (!fresh)
        log.add(path + ".output." + out.first, "writes field \"" + out.second + "\", which output \""
                                                 + it->second + "\" already writes");
    }
  };
  for (auto& kv : cfg.models) {
    auto& m = kv.second;
    auto path = "models." + kv.first;
    if (m.name.empty())
      m.name = kv.first;
    if (m.model.empty())
      m.model = kv.first;
    if (m.max_concurrent_operations < 1)
      log.add(path + ".max-concurrent-operations", "expected an integer >= 1");
    if (m.batch.max_size < 1)
      log.add(path + ".batch.max-size", "expected an integer >= 1");
    if (m.retry_max_attempts < 1)
      log.add(path + ".retry.max-attempts", "expected an integer >= 1");
    bool no_endpoints = m.endpoints.empty();
    if (m.endpoints.empty() && m.provider != "in-process")
      log.add(path + ".endpoints", "missing required key for provider \"" + m.provider
                                     + "\" (the server URLs, e.g. [\"http://127.0.0.1:8000\"])");
    if (m.endpoints.empty())
      m.endpoints.push_back(endpoint_config{m.name, {}, {}, std::chrono::nanoseconds{-1},
                                            std::chrono::nanoseconds{-1}, 0});
    if (m.on_failure == failure_action::fallback) {
      // The chain must end: follow it and refuse unknown models and cycles.
      std::vector<std::string> chain{m.name};
      for (auto next = m.fallback; !next.empty();) {
        auto it = cfg.models.find(next);
        if (it == cfg.models.end()) {
          log.add(path + ".fallback", "no model named \"" + next + "\" in models" + did_you_mean(next, model_names));
          break;
        }
        if (std::find(chain.begin(), chain.end(), next) != chain.end()) {
          std::string all;
          for (auto& c : chain)
            all += c + " -> ";
          log.add(path + ".fallback", "the fallback chain loops: " + all + next);
          break;
        }
        chain.push_back(next);
        next = it->second.on_failure == failure_action::fallback ? it->second.fallback : std::string{};
      }
    }
    bool http = m.provider != "in-process";
    check_probe(log, m, path + ".probe");
    if (!http && (!m.api_key.empty() || !m.api_key_env.empty()))
      log.add(path + (m.api_key.empty() ? ".api-key-env" : ".api-key"), "only valid for HTTP providers");
    if (http) {
      auto need = "missing required key for provider \"" + m.provider + "\" ";
      if (!m.ca_file.empty() && !std::ifstream{m.ca_file})
        log.add(path + ".ca-file", "cannot read \"" + m.ca_file + "\" (a PEM bundle of CA certificates)");
      if (!m.api_key_env.empty() && std::getenv(m.api_key_env.c_str()) == nullptr) {
        // Echo the name only if it looks like one (never a pasted key).
        bool name_like = m.api_key_env.size() <= 64;
        for (char c : m.api_key_env)
          name_like = name_like && ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
        log.add(path + ".api-key-env", name_like ? "the environment variable " + m.api_key_env + " is not set"
                                                 : std::string{"expected the name of a set environment variable "
                                                               "(upper case, digits, _; value not shown)"});
      }
      for (size_t i = 0; i < m.endpoints.size() && !no_endpoints; ++i)
        if (m.endpoints[i].url.empty())
          log.add(path + ".endpoints[" + std::to_string(i) + "].url", need + "(the server's base URL)");
      if (m.provider == "openai") {
        if (!m.openai_api_set)
          log.add(path + ".openai.api", need + "(\"embeddings\" or \"chat\")");
        auto& known = openai_protocol::known_outputs(m.openai_kind);
        if (m.output.empty())
          m.output.emplace_back(known.front(), known.front());
        for (auto& out : m.output)
          if (std::find(known.begin(), known.end(), out.first) == known.end())
            log.add(path + ".output." + out.first, "not an output of the openai " + openai_api_names[size_t(m.openai_kind)]
                                                     + " API" + did_you_mean(out.first, known));
        if (m.openai_kind == openai_api::embeddings) {
          if (m.input.size() != 1)
            log.add(path + ".input", "expected exactly one input for openai embeddings (the text to embed, "
                                     "e.g. {\"input\": \"review\"})");
          if (!m.openai_prompt.empty() || !m.openai_system_prompt.empty() || m.openai_temperature
              || m.openai_max_tokens > 0)
            log.add(path + ".openai", "prompt, system-prompt, temperature and max-tokens are for openai.api "
                                      "\"chat\"");
        } else {
          std::string err;
          auto fields = openai_protocol::template_fields(m.openai_prompt, err);
          if (m.openai_prompt.empty())
            log.add(path + ".openai.prompt", need + "for api \"chat\" (the user message, with ${field} "
                                             "placeholders, e.g. \"Summarise: ${review}\")");
          else if (!err.empty())
            log.add(path + ".openai.prompt", "expected ${name} placeholders: " + err);
          for (auto& in : m.input)
            if (std::find(fields.begin(), fields.end(), in.first) == fields.end())
              log.add(path + ".input." + in.first, "the prompt has no ${" + in.first + "}" + did_you_mean(in.first, fields));
          // Every placeholder reads the record field of its name unless
          // `input` maps it elsewhere.
          for (auto& f : fields)
            if (std::none_of(m.input.begin(), m.input.end(), [&](auto& in) { return in.first == f; }))
              m.input.emplace_back(f, f);
          m.batch.max_size = 1;
        }
      } else {
        if (m.input.empty())
          log.add(path + ".input", need + "(model input name -> record field, e.g. {\"text\": \"review\"})");
        if (m.output.empty())
          log.add(path + ".output", need + "(model output name -> record field, e.g. {\"label\": \"sentiment\"})");
      }
      if (m.provider == "kserve-v2") {
        for (auto& k : m.kserve_inputs)
          if (std::none_of(m.input.begin(), m.input.end(), [&](auto& in) { return in.first == k.name; }))
            log.add(path + ".kserve.inputs." + k.name, "not an input of this model (see `input`)");
      } else if (!m.kserve_version.empty() || !m.kserve_inputs.empty()) {
        log.add(path + ".kserve", "only valid for provider \"kserve-v2\"");
      }
      if (m.provider != "openai" && m.openai_api_set)
        log.add(path + ".openai", "only valid for provider \"openai\"");
      if (m.provider == "http-json" && !m.http_batched)
        m.batch.max_size = 1;
      check_outputs(m, path);
      continue;
    }
    for (size_t i = 0; i < m.endpoints.size(); ++i)
      if (!m.endpoints[i].url.empty())
        log.add(path + ".endpoints[" + std::to_string(i) + "].url", "only valid for HTTP providers");
    auto* factory = models.find(m.model);
    if (factory == nullptr) {
      log.add(path + ".model", "no in-process model named \"" + m.model + "\""
                                 + did_you_mean(m.model, models.names()));
      continue;
    }
    std::string err;
    auto made = (*factory)(m.options_json, err);
    for (size_t i = 0; made.compute && i < m.endpoints.size(); ++i) {
      if (m.endpoints[i].options_json.empty())
        continue;
      std::string ep_err;
      auto ep_model = (*factory)(m.endpoints[i].options_json, ep_err);
      if (!ep_model.compute)
        log.add(path + ".endpoints[" + std::to_string(i) + "].options",
                "expected " + (ep_err.empty() ? std::string{"valid options"} : ep_err));
    }
    if (!made.compute) {
      // Factories say "key: problem" for one option, or just the problem.
      auto colon = err.find(": ");
      bool keyed = colon != std::string::npos && colon > 0
                   && err.find_first_of(" \"", 0) >= colon;
      if (keyed)
        log.add(path + ".options." + err.substr(0, colon), err.substr(colon + 2));
      else
        log.add(path + ".options", "expected " + (err.empty() ? std::string{"valid options"} : err));
      continue;
    }
    if (!made.inputs.empty()) {
      for (auto& in : m.input)
        if (std::find(made.inputs.begin(), made.inputs.end(), in.first) == made.inputs.end())
          log.add(path + ".input." + in.first,
                  "model \"" + m.model + "\" has no input named \"" + in.first + "\""
                    + did_you_mean(in.first, made.inputs));
      for (auto& name : made.inputs) {
        bool mapped = false;
        for (auto& in : m.input)
          mapped = mapped || in.first == name;
        if (!mapped)
          m.input.emplace_back(name, name);
      }
    }
    for (auto& out : m.output)
      if (std::find(made.outputs.begin(), made.outputs.end(), out.first) == made.outputs.end())
        log.add(path + ".output." + out.first,
                "model \"" + m.model + "\" has no output named \"" + out.first + "\""
                  + did_you_mean(out.first, made.outputs));
    if (m.output.empty())
      for (auto& name : made.outputs)
        m.output.emplace_back(name, name);
    check_outputs(m, path);
  }
  return std::move(log.lines);
}

} // namespace sinfer
