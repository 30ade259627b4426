#pragma once
/// The adaptive concurrency limit of one backend endpoint: how many calls
/// may be in flight to it at once, learned from the latencies and overload
/// signals its calls see and from load probes of the server, always within
/// [`min`, `max`] (config `concurrency.limiter`, `concurrency.min`,
/// `concurrency.max`).
///
/// Who calls it: the actor that grants call slots for the endpoint, one
/// `concurrency_limiter` per endpoint. It grants a slot while its calls in
/// flight are fewer than `limit()`, and reports every call's end:
/// - `on_sample(now, latency, in_flight, rows)` when a call succeeded;
/// - `on_drop(now)` when a call failed with an overload signal (timeout,
///   rate-limited / 429, 503); other failures are not reported (they say
///   nothing about capacity);
/// - `on_probe(now, queue_depth, running)` when a load probe of the server
///   answered.
/// `now` is the caller's clock when the event was observed (never read
/// here) and must not decrease between calls. Durations are
/// `policy_duration` (nanoseconds). A lowered limit takes calls already in
/// flight back only as they end; none is cancelled.
///
/// Kinds:
///   fixed:    `limit()` is `initial` clamped to [min, max]; every report is
///             ignored.
///   aimd:     additive increase, multiplicative decrease (TCP congestion
///             avoidance; Netflix concurrency-limits' AIMDLimit): +`aimd_increase`
///             after every `window_samples` loaded successes in a row,
///             *`backoff_ratio` on an overload signal. A success slower than
///             `aimd_latency_threshold` (when set) is an overload signal.
///   gradient: after Netflix concurrency-limits' Gradient2Limit and Envoy's
///             adaptive concurrency GradientController. Each window of
///             `window_samples` loaded successes gives a short-term RTT
///             (their mean latency), compared with the no-load RTT:
///               gradient  = clamp(rtt_tolerance * no_load_rtt / short_rtt, 0.5, 1)
///               queue     = queue_size, or sqrt(limit) when queue_size is 0
///               new_limit = limit * gradient + queue
///               limit     = limit * (1 - smoothing) + new_limit * smoothing
///             then clamped to [min, max] (`rtt_gradient`, `next_limit`).
///             With a server of k slots whose latency grows as in_flight/k
///             beyond k, this settles where limit = rtt_tolerance * k +
///             sqrt(limit) (k = 8: 11.4); the sqrt(limit) calls queued at the
///             server are the price of noticing when it gets faster.
///
/// The no-load RTT (Envoy's minRTT): Gradient2 compares with a long-term
/// exponential average of all latencies. That reference follows any steady
/// latency, queueing included, so under steady load the gradient returns to
/// 1 and the queue term grows the limit without end (simulated with
/// Gradient2's per-sample update, long window 600, tolerance 1, in the
/// k = 8 model: past 16 after 312 samples, `max` = 64 after 2578; Gradient2
/// relies on noisy latencies to bring it back). So, as Envoy does, the
/// gradient kind measures the no-load RTT itself: a baseline phase holds
/// `limit()` at min(baseline_concurrency, current limit) (within [min, max])
/// until `baseline_samples` successes of calls started within that limit
/// have ended, and takes their mean latency. The first phase starts at
/// construction; the next one at the first `on_sample` at or after
/// `baseline_interval` past the end of the previous one (0: never again).
/// After a phase the limit returns to its value before it (drops and probes
/// during the phase still lower it). A server that got slower is thus
/// treated as overloaded (twice as slow, with the defaults: the limit falls
/// towards 4, where limit * 0.5 + sqrt(limit) = limit) until the next phase
/// re-measures; one that got faster lets the limit grow by `queue` per
/// window until latency shows queueing.
///
/// Idle samples: a success whose in_flight is below half the limit
/// (in_flight * 2 < limit()) says nothing about capacity. It neither raises
/// nor lowers the limit: aimd does not count it towards an increase, the
/// gradient kind leaves it out of its windows (as Gradient2 does); only an
/// aimd latency overload still backs off.
///
/// One reaction per round trip: an overload signal (drop, or aimd latency
/// overload) less than one smoothed RTT after the last one that backed off
/// belongs to the same overload event and is ignored (as TCP halves its
/// window once per round trip); likewise for probe readings. The smoothed
/// RTT is TCP's SRTT over all successes (alpha 1/8); before the first
/// success it is 0, so every signal counts. A backoff restarts the current
/// window.
///
/// Probes: a reading with queue_depth > 0 multiplies the limit by
///   probe_backoff_factor = 1 - probe_queue_weight * queue_depth / (queue_depth + running)
/// i.e. by the share of the server's requests that wait, weighted: with the
/// default weight 0.5 a server where half the requests wait gives *0.75;
/// the factor is never below 1 - probe_queue_weight. A reading without a
/// queue changes nothing (probes only lower the limit; samples raise it).
///
/// Simplifications: no jitter on `baseline_interval` (Envoy draws one), so
/// limiters built at the same instant re-measure together; the gradient's
/// RTTs are means, not Envoy's percentile; `in_flight` counts this client's
/// calls only, so other clients' load shows only through latency and probes.
/// Pure: no clocks, no threads, no CAF.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "policies/server_concurrency.hpp"
#include "policies/time.hpp"

namespace sinfer {

/// The algorithm of a `concurrency_limiter` (config `concurrency.limiter`).
enum class limiter_kind : uint8_t { fixed, aimd, gradient };

/// The config name of `k`: "fixed", "aimd" or "gradient".
inline const char* to_string(limiter_kind k) noexcept {
  switch (k) {
    case limiter_kind::fixed:
      return "fixed";
    case limiter_kind::aimd:
      return "aimd";
    case limiter_kind::gradient:
      return "gradient";
  }
  return "?";
}

/// Parses a config name (exact, lower case). Returns false and leaves `out`
/// unchanged when `name` is not one of the three names.
inline bool parse_limiter_kind(std::string_view name, limiter_kind& out) noexcept {
  for (auto k : {limiter_kind::fixed, limiter_kind::aimd, limiter_kind::gradient}) {
    if (name == to_string(k)) {
      out = k;
      return true;
    }
  }
  return false;
}

/// Parameters of a `concurrency_limiter`; each field is read by the kinds
/// named in its comment. Config validation is expected to enforce the
/// stated ranges; the limiter clamps to them (NaN counts as the value in
/// brackets) and `config()` returns the clamped values.
struct limiter_config {
  /// fixed, aimd or gradient. Default gradient.
  limiter_kind kind = limiter_kind::gradient;
  /// All kinds: the lowest limit, >= 1. Default 1.
  uint32_t min = 1;
  /// All kinds: the highest limit, >= min. Default 64.
  uint32_t max = 64;
  /// All kinds: the limit before any report (fixed: always), clamped to
  /// [min, max]. Default 4.
  uint32_t initial = 4;
  /// aimd: loaded successes in a row per increase; gradient: loaded
  /// successes per short-term RTT window. >= 1. Default 10.
  uint32_t window_samples = 10;
  /// aimd: added to the limit per window without an overload signal, >= 0
  /// [0]. Default 1.
  double aimd_increase = 1.0;
  /// aimd and gradient: the limit is multiplied by this on an overload
  /// signal, in [0, 1] [1]. Default 0.9.
  double backoff_ratio = 0.9;
  /// aimd: a success slower than this is an overload signal; 0 = off.
  /// Default 0.
  policy_duration aimd_latency_threshold{0};
  /// gradient: weight of each new limit, in [0, 1] [0.2]. Default 0.2
  /// (Gradient2's).
  double smoothing = 0.2;
  /// gradient: latency up to rtt_tolerance * no-load RTT counts as no
  /// queueing, >= 1 [1]. Default 1 (Gradient2 uses 1.5, Envoy a 25 %
  /// buffer); the settled limit grows with it (see the file comment).
  double rtt_tolerance = 1.0;
  /// gradient: calls allowed to queue at the server per step; 0 =
  /// sqrt(limit). >= 0 [0]. Default 0.
  double queue_size = 0.0;
  /// gradient: the limit while measuring the no-load RTT (Envoy's
  /// min_concurrency), >= 1. Default 3.
  uint32_t baseline_concurrency = 3;
  /// gradient: successes averaged into the no-load RTT, >= 1. Default 20.
  uint32_t baseline_samples = 20;
  /// gradient: time from the end of one baseline phase to the next; 0 =
  /// measure once. >= 0. Default 60 s.
  policy_duration baseline_interval = std::chrono::seconds{60};
  /// aimd and gradient: weight of a probe's queue share, in [0, 1] [0];
  /// 0 = probes ignored. Default 0.5.
  double probe_queue_weight = 0.5;
};

/// The gradient of one window: `rtt_tolerance * no_load_rtt / short_rtt`
/// clamped to [0.5, 1] (both RTTs in the same unit). 1 means no queueing;
/// 0.5 caps the cut of one step (Gradient2's outlier guard). A `short_rtt`
/// that is not positive (or NaN) gives 1: no evidence of queueing.
inline double rtt_gradient(double no_load_rtt, double short_rtt, double rtt_tolerance) noexcept {
  if (!(short_rtt > 0.0))
    return 1.0;
  double g = rtt_tolerance * no_load_rtt / short_rtt;
  if (!(g < 1.0))
    return 1.0;
  return std::max(0.5, g);
}

/// One gradient step from `limit` (unclamped): `limit * (1 - smoothing) +
/// (limit * gradient + queue) * smoothing`, where queue is `queue_size`, or
/// sqrt(limit) when `queue_size` is 0.
inline double next_limit(double limit, double gradient, double queue_size, double smoothing) noexcept {
  double queue = queue_size > 0.0 ? queue_size : std::sqrt(std::max(0.0, limit));
  double target = limit * gradient + queue;
  return limit * (1.0 - smoothing) + target * smoothing;
}

/// The factor a probe reading applies to the limit: 1 when `queue_depth` is
/// not positive (or NaN), else `1 - weight * queue_depth / (queue_depth +
/// running)`, in [1 - weight, 1). `running` below 0 (or NaN) counts as 0;
/// `weight` is expected in [0, 1].
inline double probe_backoff_factor(double queue_depth, double running, double weight) noexcept {
  if (!(queue_depth > 0.0))
    return 1.0;
  double r = running > 0.0 ? running : 0.0;
  return 1.0 - weight * queue_depth / (queue_depth + r);
}

/// The concurrency limit of one endpoint (see the file comment).
class concurrency_limiter {
public:
  explicit concurrency_limiter(limiter_config cfg) : cfg_(clamped(cfg)) {
    estimate_ = static_cast<double>(std::clamp(cfg_.initial, cfg_.min, cfg_.max));
    measuring_ = cfg_.kind == limiter_kind::gradient;
  }

  /// Calls that may be in flight to the endpoint now, in [min, max]. Read it
  /// whenever a slot is wanted; it changes only through the `on_*` calls.
  uint32_t limit() const noexcept {
    auto current = static_cast<uint32_t>(estimate_);
    if (measuring_)
      return std::min(std::clamp(cfg_.baseline_concurrency, cfg_.min, cfg_.max), current);
    return current;
  }

  /// The calls the server runs at once without queueing, as this limiter
  /// sees it (for pacing call starts: policies/call_pacing.hpp). gradient:
  /// once there is a Little's-law estimate (`server_estimate()`), that
  /// estimate, or 1 while the estimator asks for calls sent alone
  /// (`server_concurrency::value()`), within [1, limit()]; while measuring
  /// the no-load RTT, before the first estimate, and for fixed and aimd,
  /// it is limit().
  double unqueued_concurrency() const noexcept {
    double current = static_cast<double>(limit());
    if (cfg_.kind != limiter_kind::gradient || measuring_ || server_.value() <= 0.0)
      return current;
    return std::clamp(server_.value(), 1.0, std::max(1.0, current));
  }

  /// The calls the server runs at once as far as this limiter knows (for
  /// load-aware routing: policies/routing.hpp): gradient, its server
  /// estimate within [1, limit()] once there is one; else limit() (fixed
  /// and aimd: the configured concurrency is taken as the server's).
  double server_slots() const noexcept {
    double current = std::max(1.0, static_cast<double>(limit()));
    if (cfg_.kind != limiter_kind::gradient || server_.estimate() <= 0.0)
      return current;
    return std::clamp(server_.estimate(), 1.0, current);
  }

  /// gradient: a call's latency without queueing at the server, ns, at the
  /// batch size of the last window of its server estimate (its S); 0 before
  /// one, and for fixed and aimd.
  double unqueued_latency_ns() const noexcept {
    return cfg_.kind == limiter_kind::gradient ? server_.reference_ns() : 0.0;
  }

  /// gradient: the estimate of the calls the server runs at once, from
  /// every success's latency, batch size and calls in flight
  /// (policies/server_concurrency.hpp); 0 before the first estimate.
  double server_estimate() const noexcept {
    return server_.estimate();
  }

  /// A call ended successfully at `now` after `latency` (from sending it to
  /// its answer; negative counts as 0). `in_flight`: this endpoint's calls
  /// in flight when it was sent, itself included; `rows`: its batch size
  /// (0: unknown; for the gradient kind's server estimate). May raise the limit
  /// (aimd, gradient), lower it (gradient; aimd when slower than
  /// `aimd_latency_threshold`), or start or end a baseline phase (gradient).
  void on_sample(policy_time now, policy_duration latency, uint32_t in_flight, uint32_t rows = 0) {
    if (cfg_.kind == limiter_kind::fixed)
      return;
    double ns = static_cast<double>(std::max<int64_t>(0, latency.count()));
    srtt_ns_ = has_srtt_ ? srtt_ns_ + (ns - srtt_ns_) / 8.0 : ns;
    has_srtt_ = true;
    if (cfg_.kind == limiter_kind::aimd) {
      if (cfg_.aimd_latency_threshold.count() > 0 && latency > cfg_.aimd_latency_threshold) {
        back_off(now);
        return;
      }
      if (idle(in_flight))
        return;
      if (++good_ >= cfg_.window_samples) {
        good_ = 0;
        set(estimate_ + cfg_.aimd_increase);
      }
      return;
    }
    // gradient
    if (!measuring_ && cfg_.baseline_interval.count() > 0 && now >= next_baseline_at_) {
      measuring_ = true;
      restart_window();
      server_.restart();
    }
    if (measuring_) {
      if (in_flight <= limit()) {
        server_.on_baseline_sample(now, ns, rows);
        phase_sum_ns_ += ns;
        if (++phase_count_ >= cfg_.baseline_samples) {
          no_load_rtt_ns_ = phase_sum_ns_ / static_cast<double>(phase_count_);
          measuring_ = false;
          next_baseline_at_ = now + cfg_.baseline_interval;
          phase_sum_ns_ = 0.0;
          phase_count_ = 0;
          restart_window();
        }
      }
      return;
    }
    server_.on_sample(now, ns, in_flight, rows, static_cast<double>(cfg_.max));
    if (idle(in_flight))
      return;
    window_sum_ns_ += ns;
    if (++window_count_ >= cfg_.window_samples) {
      double short_rtt = window_sum_ns_ / static_cast<double>(window_count_);
      restart_window();
      double g = rtt_gradient(no_load_rtt_ns_, short_rtt, cfg_.rtt_tolerance);
      set(next_limit(estimate_, g, cfg_.queue_size, cfg_.smoothing));
    }
  }

  /// A call failed at `now` with an overload signal (timeout, rate-limited,
  /// 503). aimd and gradient multiply the limit by `backoff_ratio`, at most
  /// once per smoothed RTT (see the file comment).
  void on_drop(policy_time now) {
    if (cfg_.kind == limiter_kind::fixed)
      return;
    back_off(now);
  }

  /// A load probe of the server answered at `now`: `queue_depth` requests
  /// waiting and `running` executing, over all its clients. With
  /// queue_depth > 0, aimd and gradient multiply the limit by
  /// `probe_backoff_factor(queue_depth, running, probe_queue_weight)`, at
  /// most once per smoothed RTT; otherwise nothing changes.
  void on_probe(policy_time now, double queue_depth, double running) {
    if (cfg_.kind == limiter_kind::fixed || !(queue_depth > 0.0) || cfg_.probe_queue_weight <= 0.0)
      return;
    if (probed_ && now < last_probe_ + srtt())
      return;
    probed_ = true;
    last_probe_ = now;
    set(estimate_ * probe_backoff_factor(queue_depth, running, cfg_.probe_queue_weight));
    restart_window();
  }

  /// The limit as a real number in [min, max] (outside a baseline phase,
  /// `limit()` is its floor).
  double estimate() const noexcept {
    return estimate_;
  }
  /// gradient: true while a baseline phase holds the limit low.
  bool measuring() const noexcept {
    return measuring_;
  }
  /// gradient: the last measured no-load RTT; 0 before the first phase ends.
  policy_duration no_load_rtt() const noexcept {
    return policy_duration{static_cast<int64_t>(no_load_rtt_ns_)};
  }
  /// The smoothed RTT of all successes (alpha 1/8); 0 before the first.
  policy_duration srtt() const noexcept {
    return policy_duration{static_cast<int64_t>(srtt_ns_)};
  }
  /// The configuration with every field clamped to its range.
  const limiter_config& config() const noexcept {
    return cfg_;
  }

  /// `c` with every field clamped to the range its comment states.
  static limiter_config clamped(limiter_config c) noexcept {
    auto in01 = [](double x, double nan_value) {
      return std::isnan(x) ? nan_value : std::clamp(x, 0.0, 1.0);
    };
    c.min = std::max<uint32_t>(1, c.min);
    c.max = std::max(c.min, c.max);
    c.initial = std::clamp(c.initial, c.min, c.max);
    c.window_samples = std::max<uint32_t>(1, c.window_samples);
    c.aimd_increase = c.aimd_increase > 0.0 ? c.aimd_increase : 0.0;
    c.backoff_ratio = in01(c.backoff_ratio, 1.0);
    c.aimd_latency_threshold = std::max(policy_duration{0}, c.aimd_latency_threshold);
    c.smoothing = in01(c.smoothing, 0.2);
    c.rtt_tolerance = c.rtt_tolerance > 1.0 ? c.rtt_tolerance : 1.0;
    c.queue_size = c.queue_size > 0.0 ? c.queue_size : 0.0;
    c.baseline_concurrency = std::max<uint32_t>(1, c.baseline_concurrency);
    c.baseline_samples = std::max<uint32_t>(1, c.baseline_samples);
    c.baseline_interval = std::max(policy_duration{0}, c.baseline_interval);
    c.probe_queue_weight = in01(c.probe_queue_weight, 0.0);
    return c;
  }

private:
  /// Below half the limit: learns nothing about capacity.
  bool idle(uint32_t in_flight) const noexcept {
    return uint64_t{in_flight} * 2 < uint64_t{limit()};
  }

  void set(double x) noexcept {
    double lo = static_cast<double>(cfg_.min);
    double hi = static_cast<double>(cfg_.max);
    estimate_ = std::isnan(x) ? lo : std::clamp(x, lo, hi);
  }

  void restart_window() noexcept {
    good_ = 0;
    window_count_ = 0;
    window_sum_ns_ = 0.0;
  }

  void back_off(policy_time now) {
    if (backed_off_ && now < last_backoff_ + srtt())
      return;
    backed_off_ = true;
    last_backoff_ = now;
    set(estimate_ * cfg_.backoff_ratio);
    restart_window();
  }

  limiter_config cfg_;
  /// The limit as a real number, always in [min, max].
  double estimate_ = 1.0;
  /// Smoothed RTT in ns (TCP's SRTT, alpha 1/8) and whether any sample set it.
  double srtt_ns_ = 0.0;
  bool has_srtt_ = false;
  /// The last overload signal that backed off, and whether there was one.
  bool backed_off_ = false;
  policy_time last_backoff_{};
  /// The last probe reading that backed off, and whether there was one.
  bool probed_ = false;
  policy_time last_probe_{};
  /// aimd: loaded successes since the last increase or backoff.
  uint32_t good_ = 0;
  /// gradient: the current window of loaded successes.
  uint32_t window_count_ = 0;
  double window_sum_ns_ = 0.0;
  /// gradient: baseline phase state, and the no-load RTT in ns it measured.
  bool measuring_ = false;
  uint32_t phase_count_ = 0;
  double phase_sum_ns_ = 0.0;
  double no_load_rtt_ns_ = 0.0;
  /// gradient: the earliest start of the next baseline phase.
  policy_time next_baseline_at_{};
  /// gradient: the server's concurrency, for pacing.
  server_concurrency server_{server_concurrency_config{cfg_.window_samples}};
};

} // namespace sinfer
