// The summary of simulated runs, as text for people and JSON for scripts.
// Fixed number formats, no wall-clock figure: the same run prints the same
// bytes.

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <string>

#include "runtime/json_text.hpp"
#include "sim/simulator.hpp"

namespace sinfer {

namespace {

void appendf(std::string& out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

void appendf(std::string& out, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  va_list again;
  va_copy(again, args);
  int n = std::vsnprintf(nullptr, 0, fmt, args);
  va_end(args);
  if (n > 0) {
    auto at = out.size();
    out.resize(at + static_cast<size_t>(n) + 1);
    std::vsnprintf(&out[at], static_cast<size_t>(n) + 1, fmt, again);
    out.resize(at + static_cast<size_t>(n));
  }
  va_end(again);
}

/// How many breaker transitions the text lists before "... and N more".
constexpr size_t listed_transitions = 40;

void text_of(std::string& out, const sim_result& r) {
  appendf(out, "scenario \"%s\"%s%s%s, seed %llu: ran %.1f s of virtual time\n", r.scenario.c_str(),
          r.label.empty() ? "" : " [", r.label.c_str(), r.label.empty() ? "" : "]",
          static_cast<unsigned long long>(r.seed), r.duration);
  if (!r.failure.empty())
    appendf(out, "  the job FAILED: %s\n", r.failure.c_str());
  appendf(out, "  records: %llu in, %llu out, %llu dead-lettered, %llu lost", static_cast<unsigned long long>(r.records_in),
          static_cast<unsigned long long>(r.records_out), static_cast<unsigned long long>(r.dead_lettered),
          static_cast<unsigned long long>(r.lost));
  if (r.unread > 0)
    appendf(out, " (%llu never read)", static_cast<unsigned long long>(r.unread));
  appendf(out, "; goodput %.1f records/s\n", r.goodput);
  appendf(out, "  latency (due at the source to written): p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms\n", r.p50_ms,
          r.p99_ms, r.p999_ms);
  appendf(out, "  calls: %llu, wasted %llu (scored nothing); retries %llu; subtask restarts %llu\n",
          static_cast<unsigned long long>(r.calls), static_cast<unsigned long long>(r.wasted_calls),
          static_cast<unsigned long long>(r.retries), static_cast<unsigned long long>(r.restarts));
  appendf(out, "  phases:\n    %-20s %9s %9s %10s %9s %10s %10s %10s %9s\n", "name", "from s", "to s", "out",
          "dead", "goodput/s", "p50 ms", "p99 ms", "p99.9 ms");
  for (auto& p : r.phases)
    appendf(out, "    %-20s %9.1f %9.1f %10llu %9llu %10.1f %10.1f %10.1f %9.1f\n", p.name.c_str(), p.from, p.to,
            static_cast<unsigned long long>(p.records_out), static_cast<unsigned long long>(p.dead_lettered),
            p.goodput, p.p50_ms, p.p99_ms, p.p999_ms);
  appendf(out, "  endpoints:\n    %-28s %9s %9s %9s %9s %10s %9s %6s\n", "name", "calls", "failed", "timeouts",
          "429/503", "records", "max busy", "limit");
  for (auto& e : r.endpoint_totals)
    appendf(out, "    %-28s %9llu %9llu %9llu %9llu %10llu %9llu %6llu\n", e.name.c_str(),
            static_cast<unsigned long long>(e.calls), static_cast<unsigned long long>(e.failures),
            static_cast<unsigned long long>(e.timeouts), static_cast<unsigned long long>(e.rate_limited),
            static_cast<unsigned long long>(e.records_ok), static_cast<unsigned long long>(e.max_in_flight),
            static_cast<unsigned long long>(e.final_limit));
  for (auto& e : r.endpoint_totals)
    if (e.probe_scrapes > 0)
      appendf(out, "    %-28s load probe: %llu scrapes, %llu failed, largest queue read %.0f\n", e.name.c_str(),
              static_cast<unsigned long long>(e.probe_scrapes), static_cast<unsigned long long>(e.probe_failures),
              e.max_probe_queue);
  appendf(out, "  breaker transitions: %zu\n", r.transitions.size());
  for (size_t i = 0; i < r.transitions.size() && i < listed_transitions; ++i) {
    auto& t = r.transitions[i];
    appendf(out, "    %10.3f s  %-28s %-12s %s -> %s (window: %llu calls, %llu failed)\n", t.at,
            t.endpoint.c_str(), t.scope.c_str(), t.from.c_str(), t.to.c_str(),
            static_cast<unsigned long long>(t.calls), static_cast<unsigned long long>(t.failures));
  }
  if (r.transitions.size() > listed_transitions)
    appendf(out, "    ... and %zu more (see --json or the report)\n", r.transitions.size() - listed_transitions);
}

void number(std::string& out, const char* key, double v, bool comma = true) {
  appendf(out, "\"%s\":%.6g%s", key, std::isfinite(v) ? v : 0.0, comma ? "," : "");
}

void count(std::string& out, const char* key, uint64_t v, bool comma = true) {
  appendf(out, "\"%s\":%llu%s", key, static_cast<unsigned long long>(v), comma ? "," : "");
}

void text(std::string& out, const char* key, const std::string& v, bool comma = true) {
  appendf(out, "\"%s\":", key);
  append_json_string(out, v);
  if (comma)
    out += ',';
}

void json_of(std::string& out, const sim_result& r) {
  out += '{';
  text(out, "label", r.label);
  text(out, "failure", r.failure);
  number(out, "duration_s", r.duration);
  count(out, "records_in", r.records_in);
  count(out, "records_out", r.records_out);
  count(out, "dead_lettered", r.dead_lettered);
  count(out, "lost", r.lost);
  count(out, "unread", r.unread);
  count(out, "calls", r.calls);
  count(out, "wasted_calls", r.wasted_calls);
  count(out, "retries", r.retries);
  count(out, "restarts", r.restarts);
  number(out, "goodput", r.goodput);
  number(out, "p50_ms", r.p50_ms);
  number(out, "p99_ms", r.p99_ms);
  number(out, "p999_ms", r.p999_ms);
  out += "\"phases\":[";
  for (size_t i = 0; i < r.phases.size(); ++i) {
    auto& p = r.phases[i];
    out += i ? ",{" : "{";
    text(out, "name", p.name);
    number(out, "from_s", p.from);
    number(out, "to_s", p.to);
    count(out, "records_out", p.records_out);
    count(out, "dead_lettered", p.dead_lettered);
    number(out, "goodput", p.goodput);
    number(out, "p50_ms", p.p50_ms);
    number(out, "p99_ms", p.p99_ms);
    number(out, "p999_ms", p.p999_ms, false);
    out += '}';
  }
  out += "],\"endpoints\":[";
  for (size_t i = 0; i < r.endpoint_totals.size(); ++i) {
    auto& e = r.endpoint_totals[i];
    out += i ? ",{" : "{";
    text(out, "name", e.name);
    count(out, "calls", e.calls);
    count(out, "failures", e.failures);
    count(out, "timeouts", e.timeouts);
    count(out, "rate_limited", e.rate_limited);
    count(out, "records_ok", e.records_ok);
    count(out, "max_in_flight", e.max_in_flight);
    count(out, "final_limit", e.final_limit);
    count(out, "probe_scrapes", e.probe_scrapes);
    count(out, "probe_failures", e.probe_failures);
    number(out, "max_probe_queue", e.max_probe_queue, false);
    out += '}';
  }
  out += "],\"breaker_transitions\":[";
  for (size_t i = 0; i < r.transitions.size(); ++i) {
    auto& t = r.transitions[i];
    out += i ? ",{" : "{";
    number(out, "at_s", t.at);
    text(out, "endpoint", t.endpoint);
    text(out, "scope", t.scope);
    text(out, "from", t.from);
    text(out, "to", t.to);
    count(out, "calls", t.calls);
    count(out, "failures", t.failures, false);
    out += '}';
  }
  out += "]}";
}

} // namespace

std::string format_sim_summary(const std::vector<sim_result>& runs) {
  std::string out;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (i > 0)
      out += '\n';
    text_of(out, runs[i]);
  }
  return out;
}

std::string sim_summary_json(const std::vector<sim_result>& runs) {
  std::string out = "{";
  text(out, "scenario", runs.empty() ? std::string{} : runs.front().scenario);
  count(out, "seed", runs.empty() ? 0 : runs.front().seed);
  out += "\"runs\":[";
  for (size_t i = 0; i < runs.size(); ++i) {
    if (i > 0)
      out += ',';
    json_of(out, runs[i]);
  }
  out += "]}\n";
  return out;
}

} // namespace sinfer
