#pragma once
/// A simulated model server for `sinfer sim`: k slots, a FIFO queue with an
/// optional bound, a service time of a + c*b per batch of b with seeded
/// jitter, and a timeline of faults. Pure: it takes `now` (time since the
/// job started) and answers when and how a call ends, so it is table-tested
/// without actors and runs unchanged in the simulator.
///
/// Why a call's fate is known when it arrives: the server is FIFO and
/// non-preemptive, so a call starts when the earliest of the k slots frees
/// (or at once), and its service time is drawn then. Faults are read at the
/// instant they matter: an outage or rate-limit storm refuses calls that
/// arrive during it and fails queued calls that would start during it; a
/// brownout slows calls that start during it. A call the client gave up on
/// (timeout.attempt) keeps its slot to the end, as on a real server.
/// No CAF here.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <queue>
#include <string>
#include <vector>

#include "policies/backoff.hpp"

namespace sinfer {

enum class sim_fault_kind : uint8_t {
  outage,      ///< the server answers every call with 503 (or, `hang`, never)
  brownout,    ///< calls that start take `slowdown` times longer
  rate_limit,  ///< 429 with Retry-After for every call
  errors,      ///< a share of calls fail with 500 after their service time
  resets,      ///< a share of calls lose their connection (no answer body)
  crash,       ///< a share of calls crash the calling subtask (user code threw)
};

inline const char* to_string(sim_fault_kind k) noexcept;

struct sim_fault {
  sim_fault_kind kind = sim_fault_kind::outage;
  std::chrono::nanoseconds from{0};
  std::chrono::nanoseconds to{std::chrono::nanoseconds::max()};
  /// outage: the server accepts connections but never answers.
  bool hang = false;
  /// brownout: the service-time factor.
  double slowdown = 1.0;
  /// rate-limit: the Retry-After sent.
  std::chrono::milliseconds retry_after{1000};
  /// errors, resets, crash: the share of calls hit (drawn from the seed).
  double share = 1.0;
  /// crash: at most this many calls crash (0: no limit).
  uint32_t max_calls = 0;

  bool active(std::chrono::nanoseconds t) const noexcept {
    return t >= from && t < to;
  }
};

struct sim_server_config {
  uint32_t slots = 4;
  std::chrono::nanoseconds base{std::chrono::milliseconds{5}};
  std::chrono::nanoseconds per_record{std::chrono::microseconds{200}};
  /// Coefficient of variation of the service time (lognormal, mean kept);
  /// 0: every call takes exactly a + c*b.
  double jitter = 0.0;
  /// Calls waiting beyond which the server answers 503 at once (0: no bound).
  uint32_t max_queue = 0;
  /// How long a refusal (503, 429, reset) takes to reach the client.
  std::chrono::nanoseconds refusal_time{std::chrono::microseconds{200}};
  uint64_t seed = 1;
  std::vector<sim_fault> faults;
};

/// How one call ends.
struct sim_answer {
  enum class outcome : uint8_t { ok, error, overloaded, rate_limited, reset, hang, crash };
  outcome how = outcome::ok;
  /// From the call's arrival to its answer (unused for `hang`).
  std::chrono::nanoseconds delay{0};
  /// rate_limited: the server's Retry-After.
  std::chrono::milliseconds retry_after{0};
};

/// What a load probe would read now.
struct sim_server_load {
  uint32_t waiting = 0;
  uint32_t running = 0;
};

/// Running totals, for the summary and Prometheus counters.
struct sim_server_totals {
  uint64_t arrived = 0;
  uint64_t served = 0;  ///< calls that ran to completion (ok or errors)
  uint64_t refused = 0; ///< overloaded, outage, rate-limited, resets, crashes
  uint64_t hung = 0;
  /// Sum of time calls spent queued, us (Triton's queue-duration counter).
  uint64_t queue_us = 0;
};

class sim_server {
public:
  explicit sim_server(sim_server_config cfg) : cfg_(std::move(cfg)), rng_(cfg_.seed) {
    for (uint32_t i = 0; i < std::max(1u, cfg_.slots); ++i)
      free_at_.push(std::chrono::nanoseconds{0});
    crashes_left_.resize(cfg_.faults.size());
    for (size_t i = 0; i < cfg_.faults.size(); ++i)
      crashes_left_[i] = cfg_.faults[i].max_calls == 0 ? std::numeric_limits<uint32_t>::max()
                                                       : cfg_.faults[i].max_calls;
  }

  const sim_server_config& config() const noexcept {
    return cfg_;
  }

  /// A call of `rows` records arrives at `now` (calls arrive in time order).
  sim_answer admit(std::chrono::nanoseconds now, uint32_t rows) {
    ++totals_.arrived;
    forget_done(now);
    sim_answer a;
    // Faults that refuse a call as it arrives.
    for (size_t i = 0; i < cfg_.faults.size(); ++i) {
      auto& f = cfg_.faults[i];
      if (!f.active(now))
        continue;
      switch (f.kind) {
        case sim_fault_kind::outage:
          if (f.hang) {
            ++totals_.hung;
            a.how = sim_answer::outcome::hang;
            return a;
          }
          return refuse(sim_answer::outcome::error);
        case sim_fault_kind::rate_limit: {
          auto r = refuse(sim_answer::outcome::rate_limited);
          r.retry_after = f.retry_after;
          return r;
        }
        case sim_fault_kind::resets:
          if (draw() < f.share)
            return refuse(sim_answer::outcome::reset);
          break;
        case sim_fault_kind::crash:
          if (crashes_left_[i] > 0 && draw() < f.share) {
            --crashes_left_[i];
            return refuse(sim_answer::outcome::crash);
          }
          break;
        default: break;
      }
    }
    if (cfg_.max_queue > 0 && waiting_at(now) >= cfg_.max_queue)
      return refuse(sim_answer::outcome::overloaded);
    auto start = std::max(now, free_at_.top());
    // An outage that begins while the call waits fails it when it would start.
    for (auto& f : cfg_.faults) {
      if (f.kind == sim_fault_kind::outage && f.active(start)) {
        if (f.hang) {
          ++totals_.hung;
          a.how = sim_answer::outcome::hang;
          return a;
        }
        ++totals_.refused;
        a.how = sim_answer::outcome::error;
        a.delay = start - now + cfg_.refusal_time;
        return a;
      }
    }
    double factor = jitter_factor();
    for (auto& f : cfg_.faults)
      if (f.kind == sim_fault_kind::brownout && f.active(start))
        factor *= std::max(0.0, f.slowdown);
    auto service = std::chrono::nanoseconds{static_cast<int64_t>(
      std::llround(static_cast<double>((cfg_.base + cfg_.per_record * rows).count()) * factor))};
    auto done = start + service;
    free_at_.pop();
    free_at_.push(done);
    calls_.push_back(call{now, start, done});
    ++totals_.served;
    totals_.queue_us += static_cast<uint64_t>((start - now).count() / 1000);
    a.delay = done - now;
    for (auto& f : cfg_.faults)
      if (f.kind == sim_fault_kind::errors && f.active(start) && draw() < f.share)
        a.how = sim_answer::outcome::error;
    return a;
  }

  /// Calls waiting and running at `now`.
  sim_server_load load_at(std::chrono::nanoseconds now) {
    forget_done(now);
    sim_server_load l;
    for (auto& c : calls_) {
      if (c.start > now)
        ++l.waiting;
      else
        ++l.running;
    }
    return l;
  }

  /// Whether the server answers anything (its metrics page, health) at `now`:
  /// not during a hang outage (a 503 outage is a model failing on a server
  /// that is up).
  bool up_at(std::chrono::nanoseconds now) const noexcept {
    for (auto& f : cfg_.faults)
      if (f.kind == sim_fault_kind::outage && f.hang && f.active(now))
        return false;
    return true;
  }

  const sim_server_totals& totals() const noexcept {
    return totals_;
  }

  /// Triton-named Prometheus metrics at `now` for `model` (what a
  /// `prometheus` load probe scrapes).
  std::string metrics_text(std::chrono::nanoseconds now, const std::string& model) {
    auto l = load_at(now);
    std::string label = "{model=\"" + model + "\",version=\"1\"}";
    std::string s;
    s += "# TYPE nv_inference_pending_request_count gauge\n";
    s += "nv_inference_pending_request_count" + label + " " + std::to_string(l.waiting) + "\n";
    s += "# TYPE nv_inference_exec_count gauge\n";
    s += "nv_inference_exec_count" + label + " " + std::to_string(l.running) + "\n";
    s += "# TYPE nv_inference_request_success counter\n";
    s += "nv_inference_request_success" + label + " " + std::to_string(totals_.served) + "\n";
    s += "# TYPE nv_inference_queue_duration_us counter\n";
    s += "nv_inference_queue_duration_us" + label + " " + std::to_string(totals_.queue_us) + "\n";
    return s;
  }

private:
  struct call {
    std::chrono::nanoseconds arrived, start, done;
  };

  sim_answer refuse(sim_answer::outcome how) {
    ++totals_.refused;
    sim_answer a;
    a.how = how;
    a.delay = cfg_.refusal_time;
    return a;
  }

  uint32_t waiting_at(std::chrono::nanoseconds now) const noexcept {
    uint32_t n = 0;
    for (auto& c : calls_)
      if (c.start > now)
        ++n;
    return n;
  }

  void forget_done(std::chrono::nanoseconds now) {
    calls_.erase(std::remove_if(calls_.begin(), calls_.end(), [&](const call& c) { return c.done <= now; }),
                 calls_.end());
  }

  /// Uniform in [0, 1), the same on every platform (unlike std's
  /// distributions).
  double draw() noexcept {
    return rng_.uniform01();
  }

  /// Lognormal with mean 1 and coefficient of variation `jitter`.
  double jitter_factor() noexcept {
    if (cfg_.jitter <= 0)
      return 1.0;
    double sigma2 = std::log1p(cfg_.jitter * cfg_.jitter);
    double u1 = std::max(draw(), 1e-300), u2 = draw();
    double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    return std::exp(std::sqrt(sigma2) * z - sigma2 / 2);
  }

  sim_server_config cfg_;
  seeded_rng rng_;
  std::priority_queue<std::chrono::nanoseconds, std::vector<std::chrono::nanoseconds>,
                      std::greater<std::chrono::nanoseconds>>
    free_at_;
  std::vector<call> calls_;
  std::vector<uint32_t> crashes_left_;
  sim_server_totals totals_;
};

inline const char* to_string(sim_fault_kind k) noexcept {
  switch (k) {
    case sim_fault_kind::outage: return "outage";
    case sim_fault_kind::brownout: return "brownout";
    case sim_fault_kind::rate_limit: return "rate-limit";
    case sim_fault_kind::errors: return "errors";
    case sim_fault_kind::resets: return "resets";
    case sim_fault_kind::crash: return "crash";
  }
  return "unknown";
}

} // namespace sinfer
