#pragma once
/// Which endpoint of a model gets the next batch (`routing.strategy`).
///
/// Call `pick(endpoints)` once per batch with each endpoint's current view;
/// it returns the index to send to, or -1 when none may take a batch now
/// (every endpoint's breaker is open or every one is at its concurrency
/// limit). An endpoint is eligible when `allowed` (its breaker lets calls
/// through) and `in_flight < limit`.
/// - `load_aware` (default): power of two choices: two eligible endpoints
///   drawn at random (seeded), the one with the lower expected wait for a
///   good answer wins: (in_flight + queue_depth + 1) x latency / (1 -
///   failure_rate), latency being the endpoint's smoothed call latency
///   (1 ms when unknown) and failure_rate the share of its recent calls
///   that failed (capped at 0.99: at most 100x; an endpoint whose calls
///   fail loses to a working one before its breaker opens). With one
///   eligible endpoint, that one. Random pairs keep many routers (one per
///   subtask) from herding onto the same "best" endpoint.
/// - `round_robin`: the next eligible endpoint after the last pick.
/// - `weighted`: smooth weighted round robin (nginx's): over any window the
///   picks follow the weights, evenly interleaved.
/// - `primary_backup`: the first eligible endpoint in config order.
/// Pure: no clock reads, no threads, no CAF.

#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

#include "policies/backoff.hpp"
#include "policies/time.hpp"

namespace sinfer {

enum class routing_strategy : uint8_t { load_aware, round_robin, weighted, primary_backup };

inline const char* to_string(routing_strategy s) noexcept {
  switch (s) {
    case routing_strategy::load_aware: return "load-aware";
    case routing_strategy::round_robin: return "round-robin";
    case routing_strategy::weighted: return "weighted";
    case routing_strategy::primary_backup: return "primary-backup";
  }
  return "unknown";
}

/// An endpoint's latency as load-aware routing sees it: TCP's SRTT (1/8)
/// over successful calls that fades while the endpoint is idle.
///
/// Without fading, an endpoint that was slow once keeps its high figure for
/// as long as it gets no calls, and at light load it gets none (a faster
/// one always scores lower): it would never be measured again, even after
/// it recovered. So while nothing is in flight there, the figure halves
/// every `half_life` since the last answer (linkerd's peak-EWMA balancer
/// decays its estimate the same way) until a batch goes there again; and
/// the first answer after an idle of at least one half-life restarts the
/// average from that sample (TCP restarts its estimates after idle too), so
/// that one call tells whether the endpoint is still slow. While calls are
/// in flight the figure does not fade: an endpoint that stopped answering
/// must not look faster for it. Pure.
class latency_estimate {
public:
  explicit latency_estimate(policy_duration half_life = std::chrono::seconds{2}) : half_life_(half_life) {
  }

  /// A successful call answered at `now` after `ms` milliseconds.
  void observe(double ms, policy_time now) noexcept {
    bool stale = srtt_ms_ > 0 && now - last_ >= half_life_;
    srtt_ms_ = srtt_ms_ == 0 || stale ? ms : srtt_ms_ + (ms - srtt_ms_) / 8;
    last_ = now;
  }

  /// The router's figure at `now` (0: none yet); `busy`: calls are in
  /// flight at the endpoint.
  double current(policy_time now, bool busy) const noexcept {
    if (busy || srtt_ms_ == 0 || now <= last_ || half_life_.count() <= 0)
      return srtt_ms_;
    double idle = std::chrono::duration<double>(now - last_).count();
    double half = std::chrono::duration<double>(half_life_).count();
    return srtt_ms_ * std::exp2(-idle / half);
  }

  /// The smoothed latency without fading (a metric), ms; 0: none yet.
  double smoothed() const noexcept {
    return srtt_ms_;
  }

private:
  policy_duration half_life_;
  double srtt_ms_ = 0;
  policy_time last_{};
};

/// What the router knows about one endpoint at the moment of a pick.
struct endpoint_view {
  bool allowed = true;
  uint32_t in_flight = 0;
  uint32_t limit = 1;
  /// The server's queue as its load probe last read it (0: unknown).
  double queue_depth = 0;
  /// Smoothed call latency in ms (0: unknown).
  double latency_ms = 0;
  /// `weighted` only: the endpoint's weight (> 0).
  double weight = 1;
  /// Share of its recent calls that failed, 0..1 (0: none, or unknown).
  double failure_rate = 0;
};

class router {
public:
  explicit router(routing_strategy strategy, uint64_t seed = 1) : strategy_(strategy), rng_(seed) {
  }

  /// The endpoint for the next batch, or -1 when none is eligible.
  int pick(const std::vector<endpoint_view>& eps) {
    auto n = eps.size();
    auto eligible = [&](size_t i) { return eps[i].allowed && eps[i].in_flight < eps[i].limit; };
    switch (strategy_) {
      case routing_strategy::primary_backup:
        for (size_t i = 0; i < n; ++i)
          if (eligible(i))
            return static_cast<int>(i);
        return -1;
      case routing_strategy::round_robin:
        for (size_t k = 0; k < n; ++k) {
          auto i = (next_ + k) % n;
          if (eligible(i)) {
            next_ = i + 1;
            return static_cast<int>(i);
          }
        }
        return -1;
      case routing_strategy::weighted: {
        current_.resize(n, 0.0);
        double total = 0;
        int best = -1;
        for (size_t i = 0; i < n; ++i) {
          if (!eligible(i))
            continue;
          auto w = eps[i].weight > 0 ? eps[i].weight : 1.0;
          current_[i] += w;
          total += w;
          if (best < 0 || current_[i] > current_[static_cast<size_t>(best)])
            best = static_cast<int>(i);
        }
        if (best >= 0)
          current_[static_cast<size_t>(best)] -= total;
        return best;
      }
      case routing_strategy::load_aware: {
        std::vector<size_t> ok;
        for (size_t i = 0; i < n; ++i)
          if (eligible(i))
            ok.push_back(i);
        if (ok.empty())
          return -1;
        if (ok.size() == 1)
          return static_cast<int>(ok[0]);
        // Two distinct eligible endpoints, uniformly.
        auto ia = rng_.next() % ok.size();
        auto ib = rng_.next() % (ok.size() - 1);
        if (ib >= ia)
          ++ib;
        auto a = ok[ia], b = ok[ib];
        return static_cast<int>(score(eps[b]) < score(eps[a]) ? b : a);
      }
    }
    return -1;
  }

  /// The expected wait for a good answer at an endpoint, in ms
  /// (load_aware's score).
  static double score(const endpoint_view& e) {
    double latency = e.latency_ms > 0 ? e.latency_ms : 1.0;
    double failing = e.failure_rate > 0 ? (e.failure_rate < 0.99 ? e.failure_rate : 0.99) : 0.0;
    return (static_cast<double>(e.in_flight) + e.queue_depth + 1.0) * latency / (1.0 - failing);
  }

private:
  routing_strategy strategy_;
  seeded_rng rng_;
  size_t next_ = 0;
  std::vector<double> current_;
};

} // namespace sinfer
