#pragma once
/// Load probes: what an endpoint's server says (or its answers show) about
/// its load, as readings for the router (`endpoint_view::queue_depth`,
/// policies/routing.hpp) and the concurrency limiter
/// (`concurrency_limiter::on_probe`).
///
/// Two kinds, both giving a `probe_reading` (config `models.NAME.probe`;
/// actors/endpoint.hpp and actors/load_probe.hpp wire them):
/// - `prometheus`: the endpoint's actor scrapes the server's /metrics every
///   probe interval and hands each outcome to a `prometheus_probe`:
///   `on_scrape(now, body)` when the server answered 200 with a page,
///   `on_scrape_failed(now, error)` when it did not (connection error,
///   timeout, another status). The page is parsed (policies/prometheus_text.hpp)
///   and read by `read_probe` with the configured `probe_metric_names`;
///   Triton's and vLLM's names are the defaults.
/// - `in-band`: no request to the server; an `in_band_probe` estimates its
///   queue from this client's own calls: `on_sample(now, latency)` for every
///   successful call, `reading(now, in_flight)` when the router wants a view.
///
/// Fields of a reading (-1: unknown):
///   queue_depth    requests waiting at the server (all its clients);
///   running        requests executing;
///   mean_queue_ms  mean time a request waited, ms, since the previous
///                  good scrape (prometheus: from two counters) or now
///                  (in-band: smoothed latency - no-load latency);
///   cache_usage    KV cache usage, 0..1 (vLLM).
///
/// A failing probe is a signal, never a crash and never a stop (breakers
/// decide that). Semantics, exactly:
/// - The limiter is fed only readings of scrapes that answered:
///   `on_probe(now, r.queue_depth, r.running)` with the reading `on_scrape`
///   returned when `r.ok` and `r.queue_depth >= 0`. A failed scrape, or a
///   suspect endpoint, tells the limiter nothing: a metrics port that does
///   not answer says nothing about the inference port's capacity, and the
///   limiter keeps learning from the calls' own latencies and drops.
///   In-band readings are not fed to the limiter either: they are made of
///   the latencies the limiter already sees.
/// - The router reads `routing_queue_depth(probe.current(now))` into
///   `endpoint_view::queue_depth` at each pick. While the endpoint is not
///   suspect that is the last answered scrape's queue depth (0 when
///   unknown), through up to `failure_threshold - 1` failed scrapes in a
///   row. Once it is suspect (`probe_health`: `failure_threshold`
///   consecutive failed scrapes, or no answered scrape for `stale_after`
///   since the last one or since start), `current` is the suspect reading:
///   ok false, suspect true, queue_depth `suspect_queue_depth` (default
///   1e9), every other field unknown. The load-aware router counts
///   queue_depth among the calls ahead of a batch, so a suspect endpoint
///   loses every pairing scored against one that is not suspect (unless
///   that one's score exceeds about 1e9 / its slots x the suspect's
///   latency), yet still gets calls when it is the only eligible endpoint,
///   both drawn endpoints are suspect, or it holds a free slot where a
///   batch runs at once while the other has none (a free slot is not left
///   idle while batches wait). The round-robin, weighted and primary-backup strategies do not
///   read queue_depth: there a suspect probe changes nothing. One answered
///   scrape ends the suspicion.
///
/// Time: `now` is the caller's clock (never read here) and must not
/// decrease between calls; durations are `policy_duration` (ns).
/// Pure: no clocks, no threads, no I/O, no CAF.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policies/prometheus_text.hpp"
#include "policies/time.hpp"

namespace sinfer {

/// What one probe says about the server (see the file comment).
struct probe_reading {
  /// True when this reading comes from an answered scrape (prometheus) or an
  /// estimate (in-band). False for a failed scrape, before any, or suspect.
  bool ok = false;
  /// Requests waiting at the server; -1 unknown.
  double queue_depth = -1.0;
  /// Requests executing at the server; -1 unknown.
  double running = -1.0;
  /// Mean time a request waited in the server's queue, ms; -1 unknown.
  double mean_queue_ms = -1.0;
  /// KV cache usage in [0, 1] (vLLM reports a fraction); -1 unknown.
  double cache_usage = -1.0;
  /// Why `ok` is false (the scrape's error, or why the endpoint is
  /// suspect); empty when ok.
  std::string error;
  /// True for the pessimistic reading of a suspect endpoint.
  bool suspect = false;

  /// Whether any field is known (an ok reading of a page with none of the
  /// configured metrics knows nothing: check the names and model filter).
  bool known() const noexcept {
    return queue_depth >= 0 || running >= 0 || mean_queue_ms >= 0 || cache_usage >= 0;
  }
};

/// The metric names the `prometheus` probe reads and which series count.
/// Defaults: Triton's and vLLM's names, so one config reads either server.
/// A name absent from the page leaves its field unknown; an empty list or
/// name reads nothing.
struct probe_metric_names {
  /// Gauges of requests waiting: queue_depth is the sum over every name
  /// present and every matching series. Default Triton's
  /// nv_inference_pending_request_count and vLLM's vllm:num_requests_waiting.
  std::vector<std::string> queue_depth = {"nv_inference_pending_request_count", "vllm:num_requests_waiting"};
  /// Gauges of requests executing, summed likewise. Default vLLM's
  /// vllm:num_requests_running (Triton has no such gauge: unknown there
  /// unless one is configured).
  std::vector<std::string> running = {"vllm:num_requests_running"};
  /// Counter of the time requests spent queued, in microseconds (summed
  /// over matching series). Default Triton's nv_inference_queue_duration_us.
  std::string queue_time_us = "nv_inference_queue_duration_us";
  /// Counter of the requests `queue_time_us` divides by (summed over
  /// matching series). Default nv_inference_request_success.
  std::string queue_time_requests = "nv_inference_request_success";
  /// Gauges of KV cache usage, a fraction in [0, 1]: the first name present
  /// is read, as the maximum over its matching series (the fullest engine;
  /// fractions do not add). Default vllm:kv_cache_usage_perc, then the
  /// older vllm:gpu_cache_usage_perc.
  std::vector<std::string> cache_usage = {"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"};
  /// When not empty, only series with a label named one of `model_labels`
  /// whose value is `model` count. Default empty: every series.
  std::string model;
  /// The label names `model` is looked up in. Default Triton's "model" and
  /// vLLM's "model_name".
  std::vector<std::string> model_labels = {"model", "model_name"};
  /// Further labels every counted series must carry, e.g. {{"version",
  /// "2"}}. Default none.
  prom_labels labels;
};

/// The counters of the last answered scrape, kept between scrapes for the
/// mean queue time; -1 unknown. Start with a default-constructed one.
struct probe_counters {
  /// Sum of `queue_time_us` over the matching series.
  double queue_time_us = -1.0;
  /// Sum of `queue_time_requests` over the matching series.
  double requests = -1.0;
};

/// Whether sample `s` is one of the series `names` selects (model filter and
/// labels; not its name).
inline bool probe_series_matches(const prom_sample& s, const probe_metric_names& names) noexcept {
  if (!has_labels(s, names.labels))
    return false;
  if (names.model.empty())
    return true;
  for (auto& kv : s.labels)
    for (auto& l : names.model_labels)
      if (kv.first == l && kv.second == names.model)
        return true;
  return false;
}

namespace detail {

/// A sum or max over matching series: `found` when any matched; `value` is
/// NaN when any matching value was NaN.
struct probe_fold {
  bool found = false;
  double value = 0.0;
};

inline probe_fold probe_sum(const std::vector<prom_sample>& samples, std::string_view name,
                            const probe_metric_names& names) noexcept {
  probe_fold f;
  if (name.empty())
    return f;
  for (auto& s : samples)
    if (s.name == name && probe_series_matches(s, names)) {
      f.found = true;
      f.value += s.value;
    }
  return f;
}

inline probe_fold probe_max(const std::vector<prom_sample>& samples, std::string_view name,
                            const probe_metric_names& names) noexcept {
  probe_fold f;
  if (name.empty())
    return f;
  bool nan = false;
  double top = -std::numeric_limits<double>::infinity();
  for (auto& s : samples)
    if (s.name == name && probe_series_matches(s, names)) {
      f.found = true;
      nan = nan || std::isnan(s.value);
      top = std::max(top, s.value);
    }
  f.value = nan ? std::numeric_limits<double>::quiet_NaN() : top;
  return f;
}

/// `v` when it is a finite number >= 0, else -1 (unknown).
inline double probe_known(double v) noexcept {
  return std::isfinite(v) && v >= 0.0 ? v : -1.0;
}

} // namespace detail

/// The mean queue time in ms between two scrapes of the counters: (queue_us
/// - prev_queue_us) / (requests - prev_requests) / 1000. -1 (unknown) when
/// any of the four is unknown (< 0), when no request was counted in between,
/// or when either counter decreased (the server restarted: no delta).
inline double mean_queue_ms(const probe_counters& prev, const probe_counters& cur) noexcept {
  if (!(prev.queue_time_us >= 0 && prev.requests >= 0 && cur.queue_time_us >= 0 && cur.requests >= 0))
    return -1.0;
  double dq = cur.queue_time_us - prev.queue_time_us;
  double dn = cur.requests - prev.requests;
  if (dq < 0 || !(dn > 0))
    return -1.0;
  return dq / dn / 1000.0;
}

/// Reads one answered scrape's samples into a reading (ok true, error
/// empty). `counters`: on entry the previous answered scrape's (default
/// -1s before the first), on return this scrape's, for the next call; the
/// mean queue time is their delta (`mean_queue_ms`). A field whose metrics
/// are absent, or whose value is NaN, infinite or negative, is unknown (-1).
inline probe_reading read_probe(const std::vector<prom_sample>& samples, const probe_metric_names& names,
                                probe_counters& counters) {
  probe_reading r;
  r.ok = true;
  auto sum_of = [&](const std::vector<std::string>& list) {
    detail::probe_fold total;
    for (auto& n : list) {
      auto f = detail::probe_sum(samples, n, names);
      if (f.found) {
        total.found = true;
        total.value += f.value;
      }
    }
    return total.found ? detail::probe_known(total.value) : -1.0;
  };
  r.queue_depth = sum_of(names.queue_depth);
  r.running = sum_of(names.running);
  for (auto& n : names.cache_usage) {
    auto f = detail::probe_max(samples, n, names);
    if (f.found) {
      r.cache_usage = detail::probe_known(f.value);
      break;
    }
  }
  probe_counters cur;
  auto q = detail::probe_sum(samples, names.queue_time_us, names);
  auto c = detail::probe_sum(samples, names.queue_time_requests, names);
  cur.queue_time_us = q.found ? detail::probe_known(q.value) : -1.0;
  cur.requests = c.found ? detail::probe_known(c.value) : -1.0;
  r.mean_queue_ms = mean_queue_ms(counters, cur);
  counters = cur;
  return r;
}

/// Parses `body` (one scrape's page) and reads it as `read_probe` does. A
/// page that does not parse gives ok false, the parser's error prefixed by
/// "metrics page: ", and leaves `counters` as they were (the next answered
/// scrape then measures from the last good one).
inline probe_reading read_probe_text(std::string_view body, const probe_metric_names& names,
                                     probe_counters& counters, const prom_parse_limits& limits = {}) {
  auto parsed = parse_prometheus_text(body, limits);
  if (!parsed.ok()) {
    probe_reading r;
    r.error = "metrics page: " + parsed.error;
    return r;
  }
  return read_probe(parsed.samples, names, counters);
}

/// The value for `endpoint_view::queue_depth` from a reading: its
/// queue_depth when known (a suspect reading's is `suspect_queue_depth`),
/// else 0 (routing.hpp's "unknown").
inline double routing_queue_depth(const probe_reading& r) noexcept {
  return std::isfinite(r.queue_depth) && r.queue_depth > 0 ? r.queue_depth : 0.0;
}

/// Parameters of `probe_health`; `clamped` enforces the stated ranges.
struct probe_health_config {
  /// Consecutive failed scrapes that make the endpoint suspect, >= 1.
  /// Default 3.
  uint32_t failure_threshold = 3;
  /// Time without an answered scrape (since the last one, or since start)
  /// that makes it suspect; 0 = never by time. >= 0. Default 30 s.
  policy_duration stale_after = std::chrono::seconds{30};
  /// The queue depth a suspect endpoint shows the router; finite and >= 0
  /// (otherwise the default). Default 1e9.
  double suspect_queue_depth = 1e9;
};

/// Whether a prometheus probe's endpoint is suspect: a failure tracker
/// (see the file comment for what suspect means to the router and limiter).
///
/// Call `on_success(now)` for every answered scrape whose page parsed and
/// `on_failure(now)` for every other one. Suspect at `now` when
///   consecutive_failures() >= failure_threshold, or
///   stale_after > 0 and now >= stale_at()  (stale_at = last success, or
///   start when none, + stale_after).
/// `stale_at()` is the deadline to re-evaluate at when no scrape comes
/// (arm a timer for it). One success ends both conditions.
class probe_health {
public:
  /// `start`: when the probe began (staleness counts from here until the
  /// first success).
  probe_health(probe_health_config cfg, policy_time start)
    : cfg_(clamped(cfg)), last_success_(start), last_failure_(start) {
  }

  /// A scrape answered and its page parsed at `now`.
  void on_success(policy_time now) noexcept {
    failures_ = 0;
    succeeded_ = true;
    last_success_ = now;
  }

  /// A scrape failed at `now` (no answer, timeout, status, unparsable page).
  void on_failure(policy_time now) noexcept {
    if (failures_ < std::numeric_limits<uint32_t>::max())
      ++failures_;
    last_failure_ = now;
  }

  /// Whether the endpoint is suspect at `now`.
  bool suspect(policy_time now) const noexcept {
    return failures_ >= cfg_.failure_threshold || (cfg_.stale_after.count() > 0 && now >= stale_at());
  }

  /// When the endpoint turns suspect by time if no scrape answers:
  /// last success (or start) + stale_after; policy_time::max() when
  /// stale_after is 0.
  policy_time stale_at() const noexcept {
    if (cfg_.stale_after.count() <= 0 || last_success_ > policy_time::max() - cfg_.stale_after)
      return policy_time::max();
    return last_success_ + cfg_.stale_after;
  }

  /// Failed scrapes since the last success (or start).
  uint32_t consecutive_failures() const noexcept {
    return failures_;
  }
  /// Whether any scrape answered yet.
  bool succeeded() const noexcept {
    return succeeded_;
  }
  /// The last answered scrape, or start when none.
  policy_time last_success() const noexcept {
    return last_success_;
  }
  /// The last failed scrape, or start when none.
  policy_time last_failure() const noexcept {
    return last_failure_;
  }

  /// The reading to show the router at `now`: `last_good` (the last
  /// answered scrape's reading, or a default one before any) when not
  /// suspect; when suspect, ok false, suspect true, queue_depth
  /// `suspect_queue_depth`, other fields unknown, and `error` saying why.
  probe_reading effective(policy_time now, const probe_reading& last_good) const {
    if (!suspect(now))
      return last_good;
    probe_reading r;
    r.suspect = true;
    r.queue_depth = cfg_.suspect_queue_depth;
    if (failures_ >= cfg_.failure_threshold) {
      r.error = "load probe suspect: " + std::to_string(failures_) + " failed scrapes in a row";
    } else {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - last_success_).count();
      r.error = std::string("load probe suspect: no answered scrape for ") + std::to_string(ms) + " ms" +
                (succeeded_ ? "" : " (none since start)");
    }
    return r;
  }

  /// The configuration with every field clamped to its range.
  const probe_health_config& config() const noexcept {
    return cfg_;
  }

  /// `c` with every field clamped to the range its comment states.
  static probe_health_config clamped(probe_health_config c) noexcept {
    c.failure_threshold = std::max<uint32_t>(1, c.failure_threshold);
    c.stale_after = std::max(policy_duration{0}, c.stale_after);
    if (!(std::isfinite(c.suspect_queue_depth) && c.suspect_queue_depth >= 0.0))
      c.suspect_queue_depth = probe_health_config{}.suspect_queue_depth;
    return c;
  }

private:
  probe_health_config cfg_;
  /// Failed scrapes since the last success.
  uint32_t failures_ = 0;
  /// Whether any scrape answered.
  bool succeeded_ = false;
  /// The last answered scrape (start until one answers).
  policy_time last_success_;
  /// The last failed scrape (start until one fails).
  policy_time last_failure_;
};

/// The `prometheus` probe of one endpoint: metric names, the counters
/// between scrapes, the last good reading and the health, fed by the actor
/// that scrapes (see the file comment).
class prometheus_probe {
public:
  /// `start`: when probing began (see `probe_health`).
  prometheus_probe(probe_metric_names names, probe_health_config health, policy_time start,
                   prom_parse_limits limits = {})
    : names_(std::move(names)), limits_(limits), health_(health, start) {
    last_good_.error = "no scrape answered yet";
  }

  /// The server answered a scrape at `now` with `body`. Returns this
  /// scrape's reading: ok (feed it to the limiter when queue_depth >= 0),
  /// or not ok when the page does not parse (then counted as a failure).
  probe_reading on_scrape(policy_time now, std::string_view body) {
    auto r = read_probe_text(body, names_, counters_, limits_);
    if (r.ok) {
      health_.on_success(now);
      last_good_ = r;
    } else {
      health_.on_failure(now);
    }
    return r;
  }

  /// A scrape failed at `now` without a page to read (`error`: why, for the
  /// log). Returns the failed reading (ok false, every field unknown).
  probe_reading on_scrape_failed(policy_time now, std::string error) {
    health_.on_failure(now);
    probe_reading r;
    r.error = std::move(error);
    return r;
  }

  /// The reading the router uses at `now`: `probe_health::effective` of
  /// the last good reading.
  probe_reading current(policy_time now) const {
    return health_.effective(now, last_good_);
  }

  /// The failure tracker (suspect, stale_at for a timer, counts for logs).
  const probe_health& health() const noexcept {
    return health_;
  }
  /// The names and filters in use.
  const probe_metric_names& names() const noexcept {
    return names_;
  }

private:
  probe_metric_names names_;
  prom_parse_limits limits_;
  probe_health health_;
  probe_counters counters_;
  probe_reading last_good_;
};

/// The in-band queue estimate (Little's law): of `in_flight` calls, the
/// share 1 - no_load_latency / smoothed_latency of their time is spent
/// waiting, so queue = in_flight * max(0, 1 - no_load / smoothed). Both
/// latencies in the same unit. 0 when either latency is not positive (or
/// NaN): no evidence of a queue.
inline double in_band_queue_depth(double in_flight, double no_load_latency, double smoothed_latency) noexcept {
  if (!(smoothed_latency > 0.0) || !(no_load_latency > 0.0) || !(in_flight > 0.0))
    return 0.0;
  double share = 1.0 - no_load_latency / smoothed_latency;
  return share > 0.0 ? in_flight * share : 0.0;
}

/// Parameters of an `in_band_probe`; `clamped` enforces the stated ranges.
struct in_band_config {
  /// The no-load latency is the minimum latency over about this long
  /// (see `in_band_probe`), > 0. Default 60 s.
  policy_duration min_window = std::chrono::seconds{60};
  /// Buckets the window is kept in, in [1, 1024]. Default 6.
  uint32_t buckets = 6;
  /// Weight of each latency in the smoothed latency (EWMA), in (0, 1]
  /// (otherwise the default). Default 1/8 (TCP's SRTT).
  double smoothing = 0.125;
};

/// The `in-band` probe of one endpoint: estimates the server's queue from
/// this client's calls (`in_band_queue_depth`).
///
/// Call `on_sample(now, latency)` when a call to the endpoint succeeds
/// (latency from sending to its answer), and `reading(now, in_flight)` for
/// a view. It keeps:
/// - the smoothed latency: an EWMA of all samples (weight `smoothing`);
/// - the no-load latency: the minimum over a sliding window kept in
///   `buckets` buckets of min_window / buckets each (aligned to multiples of
///   the bucket width since the clock's epoch). A sample counts until the
///   end of the bucket it fell in plus min_window - width, i.e. for between
///   min_window - width and min_window; the minimum is the least of the
///   buckets not yet expired. O(1) per sample, O(buckets) per reading.
///   Expiry is the re-baselining: a server that got permanently slower is
///   taken as queueing for at most one window, then its new latency is the
///   no-load latency; with no sample in the window the queue is unknown.
///
/// Simplifications: the minimum is the no-load latency only if some call in
/// the window met no queue; a server queued for a whole window is taken as
/// unloaded and slow (the estimate falls to 0). The EWMA lags a change of
/// load by about 1/smoothing samples. Only this client's calls are seen.
class in_band_probe {
public:
  explicit in_band_probe(in_band_config cfg) : cfg_(clamped(cfg)) {
    width_ns_ = std::max<int64_t>(1, cfg_.min_window.count() / static_cast<int64_t>(cfg_.buckets));
    buckets_.resize(cfg_.buckets);
  }

  /// A call succeeded at `now` after `latency` (negative counts as 0).
  void on_sample(policy_time now, policy_duration latency) {
    double ns = static_cast<double>(std::max<int64_t>(0, latency.count()));
    smoothed_ns_ = has_sample_ ? smoothed_ns_ + cfg_.smoothing * (ns - smoothed_ns_) : ns;
    has_sample_ = true;
    int64_t n = bucket_of(now);
    auto& b = buckets_[slot_of(n)];
    if (!b.used || b.index < n) {
      b = bucket{true, n, ns};
    } else if (b.index == n) {
      b.min_ns = std::min(b.min_ns, ns);
    } // b.index > n: `now` went back; the sample only feeds the EWMA
  }

  /// The no-load latency at `now`: the least sample of the unexpired
  /// buckets; 0 when none.
  policy_duration no_load_latency(policy_time now) const noexcept {
    double m = min_ns(now);
    return policy_duration{static_cast<int64_t>(m > 0 ? m : 0)};
  }

  /// The smoothed latency; 0 before the first sample.
  policy_duration smoothed_latency() const noexcept {
    return policy_duration{static_cast<int64_t>(smoothed_ns_)};
  }

  /// The estimate at `now` with `in_flight` calls to the endpoint in flight:
  /// ok true; queue_depth = in_band_queue_depth(in_flight, no-load,
  /// smoothed), running = in_flight - queue_depth, mean_queue_ms =
  /// max(0, smoothed - no-load) in ms. All unknown (-1) while the window
  /// holds no sample; cache_usage is always unknown.
  probe_reading reading(policy_time now, uint32_t in_flight) const {
    probe_reading r;
    r.ok = true;
    double m = min_ns(now);
    if (!has_sample_ || m < 0)
      return r;
    double f = static_cast<double>(in_flight);
    r.queue_depth = in_band_queue_depth(f, m, smoothed_ns_);
    r.running = f - r.queue_depth;
    r.mean_queue_ms = std::max(0.0, smoothed_ns_ - m) / 1e6;
    return r;
  }

  /// The configuration with every field clamped to its range.
  const in_band_config& config() const noexcept {
    return cfg_;
  }

  /// `c` with every field clamped to the range its comment states.
  static in_band_config clamped(in_band_config c) noexcept {
    if (c.min_window.count() <= 0)
      c.min_window = in_band_config{}.min_window;
    c.buckets = std::clamp<uint32_t>(c.buckets, 1, 1024);
    if (!(c.smoothing > 0.0 && c.smoothing <= 1.0))
      c.smoothing = in_band_config{}.smoothing;
    return c;
  }

private:
  struct bucket {
    bool used = false;
    /// Which bucket of the clock (time since epoch / width) it holds.
    int64_t index = 0;
    double min_ns = 0.0;
  };

  int64_t bucket_of(policy_time t) const noexcept {
    int64_t ns = std::chrono::duration_cast<policy_duration>(t.time_since_epoch()).count();
    int64_t q = ns / width_ns_;
    if (ns % width_ns_ < 0)
      --q; // floor for times before the epoch
    return q;
  }

  size_t slot_of(int64_t index) const noexcept {
    int64_t b = static_cast<int64_t>(buckets_.size());
    int64_t m = index % b;
    return static_cast<size_t>(m < 0 ? m + b : m);
  }

  /// The least sample of the buckets within the window at `now`; -1 when none.
  double min_ns(policy_time now) const noexcept {
    int64_t n = bucket_of(now);
    int64_t oldest = n - static_cast<int64_t>(buckets_.size()) + 1;
    double m = -1.0;
    for (auto& b : buckets_)
      if (b.used && b.index >= oldest && b.index <= n && (m < 0 || b.min_ns < m))
        m = b.min_ns;
    return m;
  }

  in_band_config cfg_;
  int64_t width_ns_ = 1;
  std::vector<bucket> buckets_;
  bool has_sample_ = false;
  double smoothed_ns_ = 0.0;
};

} // namespace sinfer
