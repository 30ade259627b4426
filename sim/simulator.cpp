#include "sim/simulator.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/job_supervisor.hpp"
#include "policies/partitioning.hpp"
#include "runtime/http_models.hpp"
#include "runtime/job_counters.hpp"
#include "sim/sim_backend.hpp"
#include "sim/virtual_time.hpp"

namespace sinfer {

namespace {

using std::chrono::nanoseconds;

double seconds(nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

double ms(nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

/// The job as simulated: seeds from the run's seed, output counted but not
/// written, and no in-process service time where a simulated server serves.
job_config simulated_job(const scenario_variant& v, uint64_t seed) {
  job_config cfg = v.job;
  cfg.source.seed = seed;
  for (auto& kv : cfg.models) {
    auto& m = kv.second;
    m.retry_seed = seed;
    m.latency = nanoseconds{0};
    m.latency_per_record = nanoseconds{0};
    for (auto& ep : m.endpoints) {
      ep.latency = nanoseconds{0};
      ep.latency_per_record = nanoseconds{0};
    }
  }
  cfg.sink.kind = sink_kind::discard;
  cfg.dead_letter_path.clear(); // counted, not written
  return cfg;
}

/// Counter values at one instant, for differences between samples.
struct counter_snapshot {
  uint64_t in = 0, out = 0, dead = 0, retries = 0;
  std::vector<uint64_t> batches, batched; // per stage
  std::vector<uint64_t> calls, failures;  // per endpoint
  latency_histogram::snapshot latency{};
};

class sampler {
public:
  sampler(const scenario_config& sc, sim_result& result, job_counters& counters,
          std::vector<std::shared_ptr<endpoint_counters>> endpoints,
          std::vector<std::shared_ptr<sim_server>> servers)
    : sc_(sc), result_(result), counters_(counters), endpoints_(std::move(endpoints)),
      servers_(std::move(servers)) {
    prev_ = take();
    phase_latency_.resize(std::max<size_t>(1, sc.phases.size()));
    phase_out_.resize(phase_latency_.size());
    phase_dead_.resize(phase_latency_.size());
    for (auto& h : phase_latency_)
      h.fill(0);
  }

  /// Samples every boundary before `t`.
  void until(nanoseconds t) {
    while (next_ < t)
      sample();
  }

  /// The last, partial interval up to the end of the run: its records
  /// count towards the phases; it is a sample of its own only when it spans
  /// half an interval or more (rates over a sliver would be noise).
  void finish(nanoseconds end) {
    auto start = next_ - sc_.sample_interval;
    if (end > start)
      sample(end, end - start >= sc_.sample_interval / 2);
  }

  size_t phase_count() const {
    return phase_latency_.size();
  }
  const latency_histogram::snapshot& phase_latency(size_t i) const {
    return phase_latency_[i];
  }
  uint64_t phase_out(size_t i) const {
    return phase_out_[i];
  }
  uint64_t phase_dead(size_t i) const {
    return phase_dead_[i];
  }

private:
  counter_snapshot take() const {
    counter_snapshot s;
    s.in = counters_.records_in.load();
    s.out = counters_.records_out.load();
    s.dead = counters_.dead_lettered.load();
    for (size_t i = 0; i < counters_.stage_count; ++i) {
      auto& st = counters_.stages[i];
      s.retries += st.retries.load();
      uint64_t b = 0;
      for (auto& r : st.batches_by_reason)
        b += r.load();
      s.batches.push_back(b);
      s.batched.push_back(st.batched_records.load());
    }
    for (auto& e : endpoints_) {
      s.calls.push_back(e->calls.load());
      s.failures.push_back(e->failures.load());
    }
    s.latency = counters_.end_to_end.counts();
    return s;
  }

  void sample(std::optional<nanoseconds> end = std::nullopt, bool keep = true) {
    auto at = end ? *end : next_;
    auto span = seconds(at - (next_ - sc_.sample_interval));
    auto cur = take();
    sim_sample s;
    s.t = seconds(at);
    auto rate = [&](uint64_t now, uint64_t before) { return span > 0 ? (now - before) / span : 0.0; };
    s.in_per_s = rate(cur.in, prev_.in);
    s.out_per_s = rate(cur.out, prev_.out);
    s.dead_per_s = rate(cur.dead, prev_.dead);
    s.retries_per_s = rate(cur.retries, prev_.retries);
    s.in_flight = static_cast<double>(counters_.in_flight());
    latency_histogram::snapshot diff;
    for (size_t i = 0; i < diff.size(); ++i)
      diff[i] = cur.latency[i] - prev_.latency[i];
    s.p50_ms = ms(latency_histogram::quantile_of(diff, 0.5));
    s.p99_ms = ms(latency_histogram::quantile_of(diff, 0.99));
    s.p999_ms = ms(latency_histogram::quantile_of(diff, 0.999));
    for (size_t i = 0; i < cur.batches.size(); ++i) {
      auto calls = cur.batches[i] - prev_.batches[i];
      s.batch_mean.push_back(calls > 0 ? static_cast<double>(cur.batched[i] - prev_.batched[i]) / calls : 0.0);
    }
    auto now = at;
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      sim_endpoint_sample e;
      e.in_flight = static_cast<double>(endpoints_[i]->in_flight.load());
      e.limit = static_cast<double>(endpoints_[i]->limit.load());
      if (servers_[i]) {
        auto load = servers_[i]->load_at(now);
        e.server_queue = load.waiting;
        e.server_running = load.running;
      }
      e.calls_per_s = rate(cur.calls[i], prev_.calls[i]);
      e.failures_per_s = rate(cur.failures[i], prev_.failures[i]);
      s.endpoints.push_back(e);
    }
    // The interval counts towards the phase its middle falls in.
    auto middle = at - (at - (next_ - sc_.sample_interval)) / 2;
    size_t p = 0;
    while (p + 1 < sc_.phases.size() && middle >= sc_.phases[p].to)
      ++p;
    for (size_t i = 0; i < diff.size(); ++i)
      phase_latency_[p][i] += diff[i];
    phase_out_[p] += cur.out - prev_.out;
    phase_dead_[p] += cur.dead - prev_.dead;
    if (keep)
      result_.samples.push_back(std::move(s));
    prev_ = std::move(cur);
    next_ += sc_.sample_interval;
  }

  const scenario_config& sc_;
  sim_result& result_;
  job_counters& counters_;
  std::vector<std::shared_ptr<endpoint_counters>> endpoints_;
  std::vector<std::shared_ptr<sim_server>> servers_;
  counter_snapshot prev_;
  nanoseconds next_{sc_.sample_interval};
  std::vector<latency_histogram::snapshot> phase_latency_;
  std::vector<uint64_t> phase_out_, phase_dead_;
};

std::string fault_label(const sim_fault& f) {
  char buf[64];
  switch (f.kind) {
    case sim_fault_kind::outage: return f.hang ? "outage (hang)" : "outage (503)";
    case sim_fault_kind::brownout: std::snprintf(buf, sizeof buf, "brownout x%g", f.slowdown); return buf;
    case sim_fault_kind::rate_limit:
      std::snprintf(buf, sizeof buf, "429 storm, Retry-After %llds",
                    static_cast<long long>(f.retry_after.count() / 1000));
      return buf;
    case sim_fault_kind::errors: std::snprintf(buf, sizeof buf, "errors %g%%", f.share * 100); return buf;
    case sim_fault_kind::resets: std::snprintf(buf, sizeof buf, "resets %g%%", f.share * 100); return buf;
    case sim_fault_kind::crash: return "crashes";
  }
  return "fault";
}

/// Breaker transitions, and the open / half-open stretches they bound.
void breaker_history(const std::vector<breaker_event>& events, double end, sim_result& r) {
  std::map<std::pair<std::string, std::string>, std::pair<std::string, double>> state; // -> (state, since)
  for (auto& e : events) {
    r.transitions.push_back(sim_transition{seconds(e.at), e.endpoint, e.scope, e.from, e.to, e.calls, e.failures});
    auto key = std::make_pair(e.endpoint, e.scope);
    auto it = state.find(key);
    if (it != state.end() && it->second.first != "closed")
      r.bands.push_back(sim_breaker_band{e.endpoint, e.scope, it->second.first, it->second.second, seconds(e.at)});
    state[key] = {e.to, seconds(e.at)};
  }
  for (auto& kv : state)
    if (kv.second.first != "closed")
      r.bands.push_back(sim_breaker_band{kv.first.first, kv.first.second, kv.second.first, kv.second.second, end});
}

} // namespace

sim_result run_simulation(const scenario_config& sc, size_t variant, const model_registry& models,
                          const sim_run_options& options) {
  auto& var = sc.variants.at(variant);
  auto cfg = std::make_shared<const job_config>(simulated_job(var, options.seed));
  sim_result result;
  result.scenario = sc.name;
  result.label = var.label;
  result.seed = options.seed;
  result.sample_interval = seconds(sc.sample_interval);
  for (auto& s : cfg->stages)
    result.stages.push_back(s);

  virtual_time_system vt;
  auto now = [&vt] { return vt.elapsed(); };
  std::map<std::string, std::shared_ptr<sim_server>> servers;
  for (auto& kv : var.servers) {
    auto s = kv.second;
    s.seed = (options.seed + 1) * 0x9E3779B97F4A7C15ull ^ fnv1a(kv.first);
    servers.emplace(kv.first, std::make_shared<sim_server>(std::move(s)));
    for (auto& f : kv.second.faults) {
      auto load_end = seconds(sc.load_length);
      auto to = f.to == nanoseconds::max() ? std::max(load_end, seconds(f.from)) : seconds(f.to);
      result.faults.push_back(sim_fault_span{kv.first, to_string(f.kind), fault_label(f), seconds(f.from), to});
    }
  }
  auto counters = std::make_shared<job_counters>(cfg->stages.size());
  supervisor_options opts;
  opts.simulate = [&](const std::string& name, const model_config& m, uint32_t,
                      std::shared_ptr<inference_backend> real) -> std::shared_ptr<inference_backend> {
    auto it = servers.find(name);
    if (it == servers.end())
      return nullptr;
    std::vector<std::string> outputs;
    if (!real)
      outputs = make_http_protocol(m)->output_names();
    return std::make_shared<sim_backend>(it->second, now, std::move(real), std::move(outputs));
  };
  // The model of each endpoint (model names may hold '/' themselves).
  std::map<std::string, std::string> served_model;
  for (auto& kv : cfg->models)
    for (auto& ep : kv.second.endpoints)
      served_model[kv.first + "/" + ep.name] = kv.second.model;
  opts.scrape_for = [&](const std::string& name) -> std::function<http_answer()> {
    auto server = servers.at(name);
    auto model = served_model.at(name);
    return [server, model, now] {
      http_answer a;
      if (!server->up_at(now())) {
        a.transport_error = "connection refused (simulated outage)";
        return a;
      }
      a.status = 200;
      a.body = server->metrics_text(now(), model);
      return a;
    };
  };
  // Endpoints in name order, as the samples list them.
  std::vector<std::shared_ptr<endpoint_counters>> endpoint_figures;
  std::vector<std::shared_ptr<sim_server>> endpoint_servers;
  for (auto& kv : servers) {
    result.endpoints.push_back(kv.first);
    endpoint_figures.push_back(counters->endpoint(kv.first));
    endpoint_servers.push_back(kv.second);
  }
  sampler samples{sc, result, *counters, endpoint_figures, endpoint_servers};

  auto sup = spawn_job_supervisor(vt.system(), cfg, std::make_shared<const model_registry>(models), std::move(opts),
                                  counters);
  auto report = std::make_shared<std::optional<job_report>>();
  vt.system().spawn([sup, report](caf::event_based_actor* self) {
    self->request(sup, caf::infinite, run_atom::value).then([report](job_report& r) { *report = r; });
  });
  auto& sched = vt.scheduler();
  auto& clock = sched.clock();
  auto origin = clock.current_time - vt.elapsed();
  auto stop_at = sc.load_length + sc.drain_limit;
  bool stop_sent = false;
  uint64_t messages = 0;
  while (!report->has_value()) {
    while (sched.try_run_once()) {
      if ((++messages & 0xFFFF) == 0 && options.progress)
        options.progress(seconds(vt.elapsed()), seconds(sc.load_length));
      if (report->has_value())
        break;
    }
    if (report->has_value())
      break;
    if (clock.schedule().empty())
      break; // nothing left to happen: the job stalled
    auto next = clock.schedule().begin()->first - origin;
    if (!stop_sent && next > stop_at) {
      samples.until(stop_at);
      stop_sent = true;
      char limit[32];
      std::snprintf(limit, sizeof limit, "%g", seconds(sc.drain_limit));
      caf::anon_send(sup, fail_atom::value,
                     std::string{"the job had not drained "} + limit + " s (drain-limit) after the load ended");
      continue;
    }
    samples.until(next);
    sched.trigger_timeout();
  }
  // A run stopped at the drain limit ends there, even if nothing happened
  // in its last stretch.
  auto end = stop_sent ? std::max(vt.elapsed(), stop_at) : vt.elapsed();
  samples.finish(end);
  if (!report->has_value()) {
    caf::anon_send(sup, fail_atom::value, std::string{"stalled: nothing left to happen"});
    sched.run();
  }
  // Let the topology shut down (leftover timers fire into dead actors).
  vt.run();
  spdlog::debug("sim: {} messages for {} records", messages, counters->records_in.load());

  result.duration = seconds(end);
  if (report->has_value() && !(*report)->ok)
    result.failure = (*report)->reason;
  else if (!report->has_value())
    result.failure = "stalled: nothing left to happen";
  result.records_in = counters->records_in.load();
  result.records_out = counters->records_out.load();
  result.dead_lettered = counters->dead_lettered.load();
  auto done = result.records_out + result.dead_lettered;
  result.lost = result.records_in > done ? result.records_in - done : 0;
  // A generator's records that were never read (the run stopped first) are
  // lost too.
  if (cfg->source.kind == source_kind::generator && cfg->source.count > result.records_in) {
    result.unread = cfg->source.count - result.records_in;
    result.lost += result.unread;
  }
  result.restarts = counters->restarts.load();
  for (size_t i = 0; i < counters->stage_count; ++i)
    result.retries += counters->stages[i].retries.load();
  for (size_t i = 0; i < endpoint_figures.size(); ++i) {
    auto& c = *endpoint_figures[i];
    sim_endpoint_total t;
    t.name = result.endpoints[i];
    t.calls = c.calls.load();
    t.failures = c.failures.load();
    t.timeouts = c.timeouts.load();
    t.rate_limited = c.rate_limited.load();
    t.records_ok = c.records_ok.load();
    t.max_in_flight = c.max_in_flight.load();
    t.final_limit = c.limit.load();
    t.probe_scrapes = c.probe_scrapes.load();
    t.probe_failures = c.probe_failures.load();
    t.max_probe_queue = t.probe_scrapes > 0 ? c.max_probe_queue_depth.load() : -1.0;
    result.calls += t.calls;
    auto scored = c.scored_calls.load();
    result.wasted_calls += t.calls > scored ? t.calls - scored : 0;
    result.endpoint_totals.push_back(std::move(t));
  }
  result.goodput = end.count() > 0 ? static_cast<double>(result.records_out) / seconds(end) : 0.0;
  auto whole = counters->end_to_end.counts();
  result.p50_ms = ms(latency_histogram::quantile_of(whole, 0.5));
  result.p99_ms = ms(latency_histogram::quantile_of(whole, 0.99));
  result.p999_ms = ms(latency_histogram::quantile_of(whole, 0.999));
  auto phases = sc.phases;
  if (phases.empty())
    phases.push_back(scenario_phase{"whole run", nanoseconds{0}, nanoseconds::max()});
  for (size_t i = 0; i < phases.size(); ++i) {
    sim_phase p;
    p.name = phases[i].name;
    p.from = seconds(phases[i].from);
    p.to = std::min(seconds(end), phases[i].to == nanoseconds::max() ? seconds(end) : seconds(phases[i].to));
    p.to = std::max(p.to, p.from);
    p.records_out = samples.phase_out(i);
    p.dead_lettered = samples.phase_dead(i);
    p.goodput = p.to > p.from ? static_cast<double>(p.records_out) / (p.to - p.from) : 0.0;
    p.p50_ms = ms(latency_histogram::quantile_of(samples.phase_latency(i), 0.5));
    p.p99_ms = ms(latency_histogram::quantile_of(samples.phase_latency(i), 0.99));
    p.p999_ms = ms(latency_histogram::quantile_of(samples.phase_latency(i), 0.999));
    result.phases.push_back(std::move(p));
  }
  breaker_history(counters->breaker_events(), seconds(end), result);
  return result;
}

} // namespace sinfer
