/// Fuzz target: the Prometheus text parser of the load probes,
/// `parse_prometheus_text` (policies/prometheus_text.hpp), and
/// `read_probe_text` (policies/load_probe.hpp) with Triton's and vLLM's
/// metric names, with and without a model/label filter.
///
/// Input: a metrics page, as a server's /metrics answers.
/// Invariants: samples or an error naming a line, never both; an error
/// echoes a bounded amount of the page; names, label names and label counts
/// keep the grammar and the limits; tighter limits refuse only what crosses
/// them; the samples written back as text parse to the same samples; a probe
/// reading is ok exactly when the page parses, its fields are unknown (-1)
/// or finite and >= 0, a failed page leaves the counters alone, and reading
/// the same page twice gives no mean queue time (no requests in between).

#include <cmath>
#include <cstdio>
#include <limits>

#include "fuzz_support.hpp"

#include "policies/load_probe.hpp"
#include "policies/prometheus_text.hpp"

namespace {

using namespace sinfer;

bool name_ok(const std::string& s, bool colons) {
  if (s.empty())
    return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colons && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
      return false;
  }
  return true;
}

/// The samples as a page (labels escaped, values exact), to parse again.
std::string write_page(const std::vector<prom_sample>& samples) {
  std::string page;
  char buf[64];
  for (auto& s : samples) {
    page += s.name;
    if (!s.labels.empty()) {
      page += '{';
      for (size_t i = 0; i < s.labels.size(); ++i) {
        page += (i > 0 ? "," : "") + s.labels[i].first + "=\"" + prometheus_label_value(s.labels[i].second) + "\"";
      }
      page += '}';
    }
    page += ' ';
    if (std::isnan(s.value))
      page += "NaN";
    else if (std::isinf(s.value))
      page += s.value > 0 ? "+Inf" : "-Inf";
    else {
      std::snprintf(buf, sizeof buf, "%.17g", s.value);
      page += buf;
    }
    if (s.timestamp_ms)
      page += " " + std::to_string(*s.timestamp_ms);
    page += '\n';
  }
  return page;
}

bool same_value(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return std::isnan(a) && std::isnan(b);
  // Subnormals may print to a decimal the parser reads as 0 ("too small is 0").
  if (std::fabs(a) < std::numeric_limits<double>::min() && std::fabs(b) < std::numeric_limits<double>::min())
    return true;
  return a == b;
}

void check_reading(const probe_reading& r) {
  for (double v : {r.queue_depth, r.running, r.mean_queue_ms, r.cache_usage})
    FUZZ_CHECK(v == -1.0 || (std::isfinite(v) && v >= 0.0));
}

void probe(std::string_view page, bool parsed, const probe_metric_names& names) {
  probe_counters counters;
  auto first = read_probe_text(page, names, counters);
  FUZZ_CHECK(first.ok == parsed);
  FUZZ_CHECK(first.ok == first.error.empty());
  check_reading(first);
  if (!parsed) {
    FUZZ_CHECK(counters.queue_time_us == -1.0 && counters.requests == -1.0);
    return;
  }
  auto second = read_probe_text(page, names, counters);
  FUZZ_CHECK(second.ok);
  check_reading(second);
  FUZZ_CHECK(second.mean_queue_ms == -1.0);
  FUZZ_CHECK(same_value(first.queue_depth, second.queue_depth) && same_value(first.running, second.running));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto page = fuzz::as_text(data, size);
  auto parsed = parse_prometheus_text(page);
  FUZZ_CHECK(parsed.ok() == (parsed.error_line == 0));
  FUZZ_CHECK(parsed.ok() || parsed.samples.empty());
  FUZZ_CHECK(parsed.error.size() < 512);
  size_t lines = 1;
  for (char c : page)
    lines += c == '\n';
  FUZZ_CHECK(parsed.error_line <= lines);

  prom_parse_limits tight;
  tight.max_bytes = 4096;
  tight.max_samples = 8;
  tight.max_labels = 3;
  auto bounded = parse_prometheus_text(page, tight);
  if (bounded.ok())
    FUZZ_CHECK(parsed.ok() && parsed.samples.size() == bounded.samples.size());
  if (parsed.ok()) {
    bool within = page.size() <= tight.max_bytes && parsed.samples.size() <= tight.max_samples;
    for (auto& s : parsed.samples) {
      FUZZ_CHECK(name_ok(s.name, true));
      within = within && s.labels.size() <= tight.max_labels;
      for (size_t i = 0; i < s.labels.size(); ++i) {
        FUZZ_CHECK(name_ok(s.labels[i].first, false));
        for (size_t j = 0; j < i; ++j)
          FUZZ_CHECK(s.labels[i].first != s.labels[j].first);
      }
    }
    FUZZ_CHECK(bounded.ok() == within);

    auto again = parse_prometheus_text(write_page(parsed.samples));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again.samples.size() == parsed.samples.size());
    for (size_t i = 0; i < parsed.samples.size(); ++i) {
      auto& a = parsed.samples[i];
      auto& b = again.samples[i];
      FUZZ_CHECK(a.name == b.name && a.labels == b.labels && a.timestamp_ms == b.timestamp_ms);
      FUZZ_CHECK(same_value(a.value, b.value));
    }
  }

  probe(page, parsed.ok(), probe_metric_names{}); // Triton's and vLLM's names, every series
  static const probe_metric_names filtered = [] {
    probe_metric_names n;
    n.model = "llama";
    n.labels = {{"version", "1"}};
    return n;
  }();
  probe(page, parsed.ok(), filtered);
  return 0;
}
