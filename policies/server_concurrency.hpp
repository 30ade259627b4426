#pragma once
/// How many calls an endpoint's server runs at once, as one client sees it:
/// the concurrency pacing spaces call starts by (policies/call_pacing.hpp),
/// estimated from the client's own calls with Little's law.
///
/// Why not the concurrency limit: the gradient limiter's limit is the
/// server's concurrency plus a queue it keeps on purpose (sqrt(limit) calls,
/// so it notices when the server gets faster), and below saturation its
/// limit is not at its settled value at all (calls with few in flight do not
/// move it). Pacing at the limit there puts more calls in flight than the
/// server has slots, and calls queue at the server at 10% load (the goodput
/// bench: p50 11.5 ms against 5.2 ms of service).
///
/// The estimate, per window of `window_samples` successful calls (every
/// call counts, however few were in flight): the window's mean calls in
/// flight n, mean latency R and mean batch size b, against S, the latency
/// of calls of that size without queueing (below):
/// - queueing (R > (1 + queue_margin) * S): the server runs n * S / R calls
///   at once (Little's law: n calls in flight for R each complete at n / R
///   per unit of time, and a busy server completes one per S / c). The
///   estimate moves `smoothing` of the way there.
/// - no queueing, and n at least the estimate - 0.5 (the client used all
///   the concurrency pacing allowed): the server had room, so the estimate
///   grows by `probe_step`, to find more if there is more.
/// - no queueing with fewer in flight: nothing is learned.
/// The first window sets it: n * S / R when queueing, else n. Always within
/// [1, cap]. Calls in flight include those on the wire: with a round trip
/// o outside the server's service time s (S = s + o), a server of c slots
/// is estimated at c * (s + o) / s, the calls in flight that keep c slots
/// busy, which is what spacing starts by R / estimate needs.
///
/// S of a window is the lowest mean latency of the windows of the last
/// `floor_period` to 2 x `floor_period` whose mean batch was at least as
/// large, by size class (eight per doubling: a class spans 9%): a batch of
/// 64 takes longer than a batch of 2 without any queueing (a + c * b), so
/// comparing it with smaller batches would read batching as queueing, pace
/// slower, batch more and spiral. Within a class the part of the latency
/// that grows with the batch differs by at most 9%, under the margin.
/// Larger batches can only make S too high, which errs towards pacing
/// less. Windows that count towards S without changing the estimate:
/// - `on_baseline_sample`: calls of the limiter's baseline phase (at most
///   its baseline concurrency in flight), the no-load latency under load,
///   where every window queues;
/// - calls sent alone (one in flight: they cannot wait behind this client's
///   own calls). Every `alone_interval` (and after the first window) the
///   estimator asks for calls one at a time (`value()` is 1) until it has
///   `window_samples` of them, or 4 x `window_samples` calls ended with
///   others in flight (a loaded endpoint: full batches are not paced, so
///   this costs nothing there and learns nothing). Without them a server of
///   fewer slots than the baseline concurrency (3) would have only queued
///   windows, and an estimate stuck at about 3.
///
/// Pure: no clocks, no threads, no CAF.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

#include "policies/time.hpp"

namespace sinfer {

/// Parameters of a `server_concurrency` estimate.
struct server_concurrency_config {
  /// Successful calls per window, >= 1. Default 10.
  uint32_t window_samples = 10;
  /// Latency above (1 + queue_margin) x S counts as queueing, >= 0.
  /// Default 0.1.
  double queue_margin = 0.1;
  /// Share of the way to a queueing window's figure moved per window, in
  /// (0, 1]. Default 0.5.
  double smoothing = 0.5;
  /// Added per window without queueing that used the whole estimate, >= 0.
  /// Default 0.1.
  double probe_step = 0.1;
  /// A window's mean counts towards S for this long to twice as long, > 0.
  /// Default 60 s (the limiter's baseline interval).
  policy_duration floor_period = std::chrono::seconds{60};
  /// Calls sent alone are asked for this often, > 0. Default 30 s.
  policy_duration alone_interval = std::chrono::seconds{30};
};

/// The estimate of one endpoint's server concurrency (see the file comment).
class server_concurrency {
public:
  /// Batch size classes: eight per doubling, from 1 to 2^16 records.
  static constexpr size_t size_classes = 128;

  explicit server_concurrency(server_concurrency_config cfg = {}) : cfg_(cfg) {
    cfg_.window_samples = std::max<uint32_t>(1, cfg_.window_samples);
    cfg_.queue_margin = cfg_.queue_margin > 0.0 ? cfg_.queue_margin : 0.0;
    cfg_.smoothing = cfg_.smoothing > 0.0 && cfg_.smoothing <= 1.0 ? cfg_.smoothing : 0.5;
    cfg_.probe_step = cfg_.probe_step > 0.0 ? cfg_.probe_step : 0.0;
    cfg_.floor_period = std::max(policy_duration{1}, cfg_.floor_period);
    cfg_.alone_interval = std::max(policy_duration{1}, cfg_.alone_interval);
    floors_[0].fill(no_floor);
    floors_[1].fill(no_floor);
  }

  /// The size class of a (mean) batch of `rows` records: 0 for 1 or less,
  /// else floor(8 * log2(rows)), at most size_classes - 1.
  static size_t size_class(double rows) noexcept {
    if (!(rows > 1.0))
      return 0;
    return std::min(size_classes - 1, static_cast<size_t>(8.0 * std::log2(rows)));
  }

  /// A call of `rows` records succeeded at `now` after `latency_ns` with
  /// `in_flight` calls in flight when it was sent (itself included). `cap`:
  /// the highest estimate (the concurrency limit's maximum), >= 1. `now`
  /// must not decrease between calls.
  void on_sample(policy_time now, double latency_ns, uint32_t in_flight, uint32_t rows, double cap) noexcept {
    if (!(latency_ns >= 0.0))
      return;
    if (alone_wanted_) {
      take_alone(now, latency_ns, in_flight, rows);
      return;
    }
    if (!window_.add(latency_ns, in_flight, rows, cfg_.window_samples))
      return;
    auto w = window_.take();
    if (first_window_ || now >= next_alone_at_) {
      alone_wanted_ = true;
      next_alone_at_ = now + cfg_.alone_interval;
    }
    first_window_ = false;
    auto cls = size_class(w.rows);
    add_floor(now, cls, w.latency_ns);
    double reference = floor_at_least(cls);
    if (!(reference > 0.0) || reference == no_floor)
      return; // only windows of 0 ns: no S to compare with
    reference_ns_ = reference;
    double ratio = w.latency_ns / reference;
    bool queueing = ratio > 1.0 + cfg_.queue_margin;
    double next = value_;
    if (value_ <= 0.0)
      next = queueing ? w.in_flight / ratio : w.in_flight;
    else if (queueing)
      next = value_ + cfg_.smoothing * (w.in_flight / ratio - value_);
    else if (w.in_flight + 0.5 >= value_)
      next = value_ + cfg_.probe_step;
    value_ = std::clamp(next, 1.0, std::max(1.0, cap));
  }

  /// A call of the limiter's baseline phase (at most its baseline
  /// concurrency in flight) of `rows` records succeeded at `now` after
  /// `latency_ns`: counts towards S only.
  void on_baseline_sample(policy_time now, double latency_ns, uint32_t rows) noexcept {
    if (!(latency_ns >= 0.0) || !baseline_.add(latency_ns, 1, rows, cfg_.window_samples))
      return;
    auto w = baseline_.take();
    add_floor(now, size_class(w.rows), w.latency_ns);
  }

  /// Drops the current windows (their calls ran under other conditions, e.g.
  /// a baseline phase holding the concurrency low); the estimate stays.
  void restart() noexcept {
    window_ = {};
    baseline_ = {};
  }

  /// The concurrency to pace at now: 1 while calls sent alone are wanted,
  /// else the estimate, in [1, cap]; 0 before the first window.
  double value() const noexcept {
    return alone_wanted_ ? 1.0 : value_;
  }

  /// The estimate itself (not 1 while calls sent alone are wanted).
  double estimate() const noexcept {
    return value_;
  }

  /// True while calls sent alone are wanted (`value()` is 1).
  bool wants_alone() const noexcept {
    return alone_wanted_;
  }

  /// S of the last window: the latency it was compared with, ns; 0 before
  /// the first window.
  double reference_ns() const noexcept {
    return reference_ns_;
  }

private:
  static constexpr double no_floor = std::numeric_limits<double>::infinity();

  /// Sums over a window of samples.
  struct sums {
    uint32_t count = 0;
    double latency_ns = 0.0;
    double in_flight = 0.0;
    double rows = 0.0;

    /// Adds a sample; true when the window has `size` samples.
    bool add(double latency, uint32_t flight, uint32_t batch, uint32_t size) noexcept {
      latency_ns += latency;
      in_flight += static_cast<double>(flight);
      rows += static_cast<double>(batch);
      return ++count >= size;
    }
    /// The means, and a fresh window.
    sums take() noexcept {
      double n = static_cast<double>(std::max<uint32_t>(1, count));
      sums means{count, latency_ns / n, in_flight / n, rows / n};
      *this = {};
      return means;
    }
  };

  /// Counts a window mean towards S, in its size class (starting a new
  /// floor period when the current one is over; the one before it is
  /// forgotten too when the current one ended a whole period ago). A mean
  /// of 0 ns (a clock that did not move) is not a latency and does not count.
  void add_floor(policy_time now, size_t cls, double mean_ns) noexcept {
    if (!floor_started_ || now >= floor_since_ + cfg_.floor_period) {
      bool recent = floor_started_ && now < floor_since_ + 2 * cfg_.floor_period;
      floors_[1] = floors_[0];
      if (!recent)
        floors_[1].fill(no_floor);
      floors_[0].fill(no_floor);
      floor_since_ = now;
      floor_started_ = true;
    }
    if (mean_ns > 0.0)
      floors_[0][cls] = std::min(floors_[0][cls], mean_ns);
  }

  /// The lowest floor of class `cls` or larger, in both periods.
  double floor_at_least(size_t cls) const noexcept {
    double m = no_floor;
    for (size_t i = cls; i < size_classes; ++i)
      m = std::min({m, floors_[0][i], floors_[1][i]});
    return m;
  }

  /// A sample while calls sent alone are wanted.
  void take_alone(policy_time now, double latency_ns, uint32_t in_flight, uint32_t rows) noexcept {
    bool done = false;
    if (in_flight <= 1) {
      if (alone_.add(latency_ns, 1, rows, cfg_.window_samples)) {
        auto w = alone_.take();
        add_floor(now, size_class(w.rows), w.latency_ns);
        done = true;
      }
    } else {
      done = ++alone_skipped_ >= 4 * cfg_.window_samples;
    }
    if (done) {
      alone_wanted_ = false;
      alone_ = {};
      alone_skipped_ = 0;
    }
  }

  server_concurrency_config cfg_;
  double value_ = 0.0;
  sums window_;
  sums baseline_;
  /// The lowest window mean per size class since `floor_since_` ([0]) and
  /// in the period before ([1]).
  bool floor_started_ = false;
  policy_time floor_since_{};
  std::array<std::array<double, size_classes>, 2> floors_{};
  /// The S the last window was compared with.
  double reference_ns_ = 0.0;
  /// Calls sent alone: wanted now; when next; the current collection.
  bool first_window_ = true;
  bool alone_wanted_ = false;
  policy_time next_alone_at_{};
  sums alone_;
  uint32_t alone_skipped_ = 0;
};

} // namespace sinfer
