#pragma once
/// Load profiles: the rate at which a paced source emits records, as a
/// piecewise function of the time since the source started.
///
/// A profile is a sequence of segments, each `length` long: constant (a
/// rate, 0 being a pause), ramp (linear from `rate` to `to`), diurnal (a
/// sine from the trough `rate` up to `peak` and back every `period`:
/// rate(t) = rate + (peak - rate) * (1 - cos(2 pi t / period)) / 2, t from
/// the segment start) and bursts (a constant base `rate`, with `burst_rate`
/// instead during [k * every, k * every + burst_length) of the segment).
///
/// Record numbering: `count_at(t)` is the integral of the rate, the records
/// due by t. Record i (0-based) is due at `due(i)`: the smallest whole
/// nanosecond t with count_at(t) >= i, so record 0 is due at 0 (also when
/// the profile opens with a pause) and record i at i / rate for a constant
/// rate (today's pacing of `source.rate`). The profile holds the records i
/// with i < total_count(), ceil(total_count()) of them
/// (`total_records()`); `due` is empty for the others.
///
/// Consistency: `due` solves in closed form (constant, ramp, bursts) or by
/// Newton's method with a bisection fallback (diurnal), rounds up to the
/// nanosecond, then searches from there for the nanosecond where
/// count_at(due(i)) >= i > count_at(due(i) - 1) holds as count_at evaluates
/// it (usually the estimate itself). So due(floor(count_at(t))) <= t (up
/// to count_at's rounding, which is non-decreasing in practice), and a
/// caller that compares its clock with due(i) and arms a timer for due(i)
/// never wakes to find record i not due. Beyond about 1e15 ns (11 days) a
/// double no longer resolves single nanoseconds of count_at, so due may be
/// a nanosecond off the exact solution there (consistently with count_at).
///
/// Cost: `due` and `count_at` binary-search the segment (O(log segments))
/// and allocate nothing; `due` is meant to be called once per record.
/// Measured (-O2): constant ~10 ns, ramp ~17 ns, bursts ~35 ns, diurnal
/// ~0.2-0.3 us (about 5 Newton steps, each a sin and a cos).
/// Pure: no clock reads, no threads, no CAF. Times are nanoseconds since the
/// source started, rates records per second.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

namespace sinfer {

/// The shape of one load-profile segment.
enum class load_shape : uint8_t {
  constant,  ///< `rate` throughout (0: a pause)
  ramp,      ///< linear from `rate` to `to`
  diurnal,   ///< sine from `rate` (at the segment start) to `peak` and back every `period`
  bursts,    ///< `rate`, but `burst_rate` during [k * burst_every, k * burst_every + burst_length)
};

/// One segment of a load profile. Preconditions (the config loader checks
/// them): rates finite and >= 0; length >= 0; diurnal: period > 0; bursts:
/// 0 < burst_length <= burst_every.
struct load_segment {
  load_shape shape = load_shape::constant;
  /// How long the segment lasts.
  std::chrono::nanoseconds length{0};
  /// Records/s: constant and bursts: the (base) rate; ramp: at the start;
  /// diurnal: the trough, at the segment start.
  double rate = 0;
  /// ramp: records/s at the end.
  double to = 0;
  /// diurnal: records/s at half a period.
  double peak = 0;
  /// diurnal: the length of one cycle.
  std::chrono::nanoseconds period{0};
  /// bursts: one burst starts every `burst_every` from the segment start,
  /// lasts `burst_length`, at `burst_rate` records/s.
  std::chrono::nanoseconds burst_every{0};
  std::chrono::nanoseconds burst_length{0};
  double burst_rate = 0;

  static load_segment constant_rate(std::chrono::nanoseconds length, double rate) {
    load_segment s;
    s.length = length;
    s.rate = rate;
    return s;
  }
  static load_segment ramp_rate(std::chrono::nanoseconds length, double from, double to) {
    load_segment s;
    s.shape = load_shape::ramp;
    s.length = length;
    s.rate = from;
    s.to = to;
    return s;
  }
  static load_segment diurnal_rate(std::chrono::nanoseconds length, double trough, double peak,
                                   std::chrono::nanoseconds period) {
    load_segment s;
    s.shape = load_shape::diurnal;
    s.length = length;
    s.rate = trough;
    s.peak = peak;
    s.period = period;
    return s;
  }
  static load_segment burst_rates(std::chrono::nanoseconds length, double base, std::chrono::nanoseconds every,
                                  std::chrono::nanoseconds burst_length, double burst_rate) {
    load_segment s;
    s.shape = load_shape::bursts;
    s.length = length;
    s.rate = base;
    s.burst_every = every;
    s.burst_length = burst_length;
    s.burst_rate = burst_rate;
    return s;
  }
};

/// A piecewise rate function over the time since the source started.
class load_profile {
public:
  using ns = std::chrono::nanoseconds;

  /// The length of an open-ended profile (`constant`): about 146 years, far
  /// from overflowing a time point on the actor clock.
  static constexpr ns open_end{std::numeric_limits<int64_t>::max() / 2};

  /// The segments, in order. Allocates; the queries below do not.
  explicit load_profile(std::vector<load_segment> segments) : segments_(std::move(segments)) {
    start_.reserve(segments_.size());
    cum_start_.reserve(segments_.size());
    cum_end_.reserve(segments_.size());
    int64_t t = 0;
    double c = 0;
    for (auto& s : segments_) {
      start_.push_back(t);
      cum_start_.push_back(c);
      c += segment_count(s, static_cast<double>(s.length.count()));
      cum_end_.push_back(c);
      t += s.length.count();
    }
    length_ = ns{t};
  }

  /// `rate` records/s without end: `source.rate` as a profile.
  static load_profile constant(double rate) {
    return load_profile{{load_segment::constant_rate(open_end, rate)}};
  }

  /// The records due by `t` (the integral of the rate from 0 to t).
  double count_at(ns t) const noexcept {
    if (t.count() <= 0 || segments_.empty())
      return 0;
    if (t >= length_)
      return total_count();
    auto k = static_cast<size_t>(std::upper_bound(start_.begin(), start_.end(), t.count()) - start_.begin()) - 1;
    return count_in(k, t.count());
  }

  /// When record `i` (0-based) is due: the smallest whole nanosecond t with
  /// count_at(t) >= i; empty when the profile ends before (i >= total_count()).
  std::optional<ns> due(uint64_t i) const noexcept {
    auto n = static_cast<double>(i);
    if (segments_.empty() || !(n < total_count()))
      return std::nullopt;
    // The first segment by whose end i records are due.
    auto k = static_cast<size_t>(std::lower_bound(cum_end_.begin(), cum_end_.end(), n) - cum_end_.begin());
    auto& s = segments_[k];
    auto len = s.length.count();
    auto x = std::min(solve(s, std::max(0.0, n - cum_start_[k])), static_cast<double>(len));
    auto t = start_[k] + static_cast<int64_t>(std::ceil(std::max(0.0, x)));
    return ns{first_reaching(k, n, t)};
  }

  /// The sum of the segments' lengths.
  ns total_length() const noexcept {
    return length_;
  }

  /// The records the whole profile holds, as a real number (count_at at
  /// its end).
  double total_count() const noexcept {
    return cum_end_.empty() ? 0.0 : cum_end_.back();
  }

  /// ceil(total_count()): how many records `due` places, saturating; 0
  /// for a profile whose count is not a positive number (one rejected as
  /// too long, read before the rejection is acted on: UBSan caught the
  /// conversion of -60).
  uint64_t total_records() const noexcept {
    auto c = std::ceil(total_count());
    if (!(c > 0.0))
      return 0;
    return c >= 1.8e19 ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(c);
  }

  const std::vector<load_segment>& segments() const noexcept {
    return segments_;
  }

private:
  /// The smallest t in segment k with count_in(k, t) >= n, as count_in
  /// evaluates it, searched from the estimate `t`: usually two
  /// evaluations (t reaches n, t - 1 does not); else galloping then
  /// bisection, so a flat stretch (a rate near 0, where rounding leaves
  /// count_at level for many nanoseconds) costs O(log) evaluations.
  /// Requires count_in(k, start) < n or n == 0 at k == 0, and
  /// count_in(k, end) >= n: both hold for the segment `due` picks.
  int64_t first_reaching(size_t k, double n, int64_t t) const noexcept {
    auto start = start_[k];
    auto end = start + segments_[k].length.count();
    t = std::min(std::max(t, start), end);
    int64_t lo = 0; // count_in(k, lo) < n
    int64_t hi = 0; // count_in(k, hi) >= n
    int64_t step = 1;
    if (count_in(k, t) >= n) {
      hi = t;
      for (;;) {
        if (hi == start)
          return start;
        lo = std::max(start, hi - step);
        if (count_in(k, lo) < n)
          break;
        hi = lo;
        step *= 2;
      }
    } else {
      lo = t;
      for (;;) {
        if (lo >= end)
          return end;
        hi = std::min(end, lo + step);
        if (count_in(k, hi) >= n)
          break;
        lo = hi;
        step *= 2;
      }
    }
    while (hi - lo > 1) {
      auto mid = lo + (hi - lo) / 2;
      if (count_in(k, mid) >= n)
        hi = mid;
      else
        lo = mid;
    }
    return hi;
  }

  /// count_at(t) for t within segment k (t in [start, end]).
  double count_in(size_t k, int64_t t) const noexcept {
    return cum_start_[k] + segment_count(segments_[k], static_cast<double>(t - start_[k]));
  }

  /// Records due in the first `x` nanoseconds of `s` (0 <= x <= length);
  /// exactly 0 at x = 0.
  static double segment_count(const load_segment& s, double x) noexcept {
    switch (s.shape) {
      case load_shape::constant:
        return x * s.rate / 1e9;
      case load_shape::ramp: {
        auto len = static_cast<double>(s.length.count());
        if (len <= 0)
          return 0;
        return (s.rate * x + (s.to - s.rate) / (2 * len) * x * x) / 1e9;
      }
      case load_shape::diurnal: {
        auto p = static_cast<double>(s.period.count());
        auto mean = (s.rate + s.peak) / 2;
        auto amp = (s.peak - s.rate) * p / (4 * pi);
        // The phase from x mod period, so whole periods are exact.
        return (mean * x - amp * std::sin(2 * pi * std::fmod(x, p) / p)) / 1e9;
      }
      case load_shape::bursts: {
        auto every = static_cast<double>(s.burst_every.count());
        auto blen = static_cast<double>(s.burst_length.count());
        auto cycles = std::floor(x / every);
        auto y = std::min(std::max(0.0, x - cycles * every), every);
        auto per_cycle = s.burst_rate * blen + s.rate * (every - blen);
        auto in_cycle = s.burst_rate * std::min(y, blen) + s.rate * std::max(0.0, y - blen);
        return (cycles * per_cycle + in_cycle) / 1e9;
      }
    }
    return 0;
  }

  /// The x (ns into segment `s`) at which `n` of its records are due:
  /// approximately the smallest x with segment_count(s, x) >= n, for
  /// 0 <= n <= segment_count(s, length). `due` corrects the last
  /// nanosecond.
  static double solve(const load_segment& s, double n) noexcept {
    if (n <= 0)
      return 0;
    auto len = static_cast<double>(s.length.count());
    switch (s.shape) {
      case load_shape::constant:
        return s.rate > 0 ? n * 1e9 / s.rate : 0;
      case load_shape::ramp: {
        // rate * x + a * x^2 = n * 1e9, a = (to - rate) / (2 len); the root
        // in the stable form 2c / (b + sqrt(b^2 + 4ac)) (no cancellation,
        // no division by a, so to == rate is the constant case).
        auto a = len > 0 ? (s.to - s.rate) / (2 * len) : 0.0;
        auto c = n * 1e9;
        auto disc = std::max(0.0, s.rate * s.rate + 4 * a * c);
        auto den = s.rate + std::sqrt(disc);
        return den > 0 ? 2 * c / den : len;
      }
      case load_shape::diurnal:
        return solve_diurnal(s, n, len);
      case load_shape::bursts: {
        auto every = static_cast<double>(s.burst_every.count());
        auto blen = static_cast<double>(s.burst_length.count());
        auto per_cycle = (s.burst_rate * blen + s.rate * (every - blen)) / 1e9;
        if (!(per_cycle > 0))
          return 0;
        auto cycles = std::floor(n / per_cycle);
        auto rem = n - cycles * per_cycle;
        if (rem <= 0 && cycles > 0) { // reached at the end of the previous cycle's records
          cycles -= 1;
          rem += per_cycle;
        }
        rem = std::min(std::max(rem, 0.0), per_cycle);
        auto in_burst = s.burst_rate * blen / 1e9;
        double y;
        if (rem <= in_burst)
          y = s.burst_rate > 0 ? rem * 1e9 / s.burst_rate : 0;
        else
          y = s.rate > 0 ? blen + (rem - in_burst) * 1e9 / s.rate : every;
        return cycles * every + y;
      }
    }
    return 0;
  }

  /// Newton's method within one period: whole periods first (each holds
  /// mean * period records), then g(y) = (mean * y - amp * sin(w y)) / 1e9
  /// - rest on [0, period], whose derivative is the rate (>= 0). Kept
  /// inside a bracket; bisects when a step leaves it or the rate is 0 (a
  /// trough at 0).
  static double solve_diurnal(const load_segment& s, double n, double len) noexcept {
    auto p = static_cast<double>(s.period.count());
    auto mean = (s.rate + s.peak) / 2;
    if (!(mean > 0) || !(p > 0))
      return 0;
    auto per_period = mean * p / 1e9;
    auto k = std::floor(n / per_period);
    auto rest = std::min(std::max(0.0, n - k * per_period), per_period);
    auto amp = (s.peak - s.rate) * p / (4 * pi);
    auto w = 2 * pi / p;
    double lo = 0, hi = p;
    auto y = rest * 1e9 / mean;
    for (int iter = 0; iter < 100 && hi - lo > 0.25; ++iter) {
      auto sn = std::sin(w * y);
      auto cs = std::cos(w * y);
      auto g = (mean * y - amp * sn) / 1e9 - rest;
      if (g == 0)
        break;
      if (g < 0)
        lo = y;
      else
        hi = y;
      auto rate = mean - (s.peak - s.rate) / 2 * cs; // records/s at y
      auto next = rate > 0 ? y - g * 1e9 / rate : lo - 1;
      if (!(next > lo && next < hi))
        next = lo + (hi - lo) / 2;
      // Half a nanosecond is as close as rounding lets g tell (due
      // settles the last nanosecond against count_at).
      auto done = std::abs(next - y) < 0.5;
      y = next;
      if (done)
        break;
    }
    return std::min(k * p + y, len);
  }

  static constexpr double pi = 3.14159265358979323846;

  std::vector<load_segment> segments_;
  /// Per segment: its start (ns), the records due by its start and by its end.
  std::vector<int64_t> start_;
  std::vector<double> cum_start_;
  std::vector<double> cum_end_;
  ns length_{0};
};

} // namespace sinfer
