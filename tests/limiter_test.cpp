// The concurrency limiter policy as tables and simulated servers: fixed,
// aimd steps, the gradient's math, its baseline phases, convergence on a
// queueing server, backoff when the server slows, probes and idle samples.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "policies/call_pacing.hpp"
#include "policies/concurrency_limiter.hpp"
#include "policies/server_concurrency.hpp"

using namespace sinfer;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

namespace {

/// A server with `k` slots: a call takes `service` when at most k are in
/// flight, and `service * in_flight / k` beyond (calls queue for a slot).
struct queueing_server {
  uint32_t k = 8;
  policy_duration service = milliseconds{10};

  policy_duration latency(uint32_t in_flight) const {
    return service * std::max(k, in_flight) / k;
  }
};

/// Drives `lim` with `n` samples from `srv`, every call sent with
/// in_flight = the current limit; simulated time advances by latency /
/// in_flight per completion (the server's throughput). Appends the limit
/// after each sample to `history`.
void drive(concurrency_limiter& lim, const queueing_server& srv, policy_time& now, size_t n,
           std::vector<uint32_t>& history) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t in_flight = lim.limit();
    auto lat = srv.latency(in_flight);
    now += lat / in_flight;
    lim.on_sample(now, lat, in_flight);
    history.push_back(lim.limit());
  }
}

/// Smallest and largest of the last `n` entries.
std::pair<uint32_t, uint32_t> tail_range(const std::vector<uint32_t>& h, size_t n) {
  auto first = h.end() - static_cast<std::ptrdiff_t>(std::min(n, h.size()));
  auto [lo, hi] = std::minmax_element(first, h.end());
  return {*lo, *hi};
}

/// Index after which every entry of `h` is within [lo, hi] (h.size() if the
/// last one is not).
size_t settled_at(const std::vector<uint32_t>& h, double lo, double hi) {
  size_t i = h.size();
  while (i > 0 && h[i - 1] >= lo && h[i - 1] <= hi)
    --i;
  return i;
}

/// A gradient limiter whose first baseline phase measured `rtt` (20
/// samples, in_flight 1), at time 0.
concurrency_limiter measured_gradient(limiter_config cfg, policy_duration rtt) {
  cfg.kind = limiter_kind::gradient;
  concurrency_limiter lim{cfg};
  for (uint32_t i = 0; i < lim.config().baseline_samples; ++i)
    lim.on_sample(at_ms(0), rtt, 1);
  REQUIRE_FALSE(lim.measuring());
  REQUIRE(lim.no_load_rtt() == rtt);
  return lim;
}

} // namespace

TEST_CASE("limiter: kind names round-trip and unknown names are refused") {
  for (auto k : {limiter_kind::fixed, limiter_kind::aimd, limiter_kind::gradient}) {
    CAPTURE(to_string(k));
    limiter_kind out = k == limiter_kind::fixed ? limiter_kind::aimd : limiter_kind::fixed;
    CHECK(parse_limiter_kind(to_string(k), out));
    CHECK(out == k);
  }
  for (std::string bad : {"", "Fixed", "gradient2", "aimd ", "vegas"}) {
    CAPTURE(bad);
    limiter_kind out = limiter_kind::aimd;
    CHECK_FALSE(parse_limiter_kind(bad, out));
    CHECK(out == limiter_kind::aimd);
  }
}

TEST_CASE("limiter: fixed keeps initial clamped to [min, max] whatever it is told") {
  struct row {
    uint32_t min, max, initial, expected;
  };
  std::vector<row> rows = {
    {1, 64, 4, 4},   {1, 64, 64, 64}, {1, 64, 100, 64}, {2, 64, 0, 2},
    {0, 64, 0, 1},   // min 0 counts as 1
    {10, 3, 5, 10},  // max below min counts as min
  };
  for (auto& r : rows) {
    CAPTURE(r.min);
    CAPTURE(r.max);
    CAPTURE(r.initial);
    limiter_config cfg;
    cfg.kind = limiter_kind::fixed;
    cfg.min = r.min;
    cfg.max = r.max;
    cfg.initial = r.initial;
    concurrency_limiter lim{cfg};
    CHECK(lim.limit() == r.expected);
    for (int i = 0; i < 100; ++i) {
      lim.on_sample(at_ms(i), milliseconds{1}, r.expected);
      lim.on_sample(at_ms(i), seconds{10}, r.expected);
      lim.on_drop(at_ms(i));
      lim.on_probe(at_ms(i), 100.0, 1.0);
    }
    CHECK(lim.limit() == r.expected);
    CHECK_FALSE(lim.measuring());
  }
}

TEST_CASE("limiter: aimd adds per window of loaded successes and multiplies on overload") {
  // min 2, max 10, +1 per 2 loaded successes, *0.5 per overload signal,
  // latency over 20 ms is an overload signal. Events 100 ms apart (more than
  // the 10 ms smoothed RTT) except 'd', at the instant of the event before:
  // 'S' success of 10 ms, 'T' success of exactly 20 ms, 'L' success of
  // 20 ms + 1 ns, 'l' the same with in_flight 0 (idle), 'D' / 'd' drop.
  struct row {
    uint32_t initial;
    std::string events;
    std::vector<uint32_t> limits;
  };
  std::vector<row> rows = {
    {4, "SS", {4, 5}},
    {4, "SSSSSS", {4, 5, 5, 6, 6, 7}},
    {4, "SSSSSSSSSSSSSSSS", {4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 10, 10, 10}}, // max
    {4, "D", {2}},
    {4, "DD", {2, 2}},                   // min
    {4, "SSD", {4, 5, 2}},               // 5 * 0.5 = 2.5
    {4, "SDSS", {4, 2, 2, 3}},           // a drop restarts the window
    {8, "Dd", {4, 4}},                   // same overload event
    {8, "DdD", {4, 4, 2}},
    {8, "TT", {8, 9}},                   // at the threshold: no overload
    {8, "L", {4}},
    {8, "l", {4}},                       // slow even when idle
    {8, "SLS", {8, 4, 4}},
    {10, "SSSS", {10, 10, 10, 10}},
  };
  for (auto& r : rows) {
    CAPTURE(r.initial);
    CAPTURE(r.events);
    limiter_config cfg;
    cfg.kind = limiter_kind::aimd;
    cfg.min = 2;
    cfg.max = 10;
    cfg.initial = r.initial;
    cfg.window_samples = 2;
    cfg.aimd_increase = 1.0;
    cfg.backoff_ratio = 0.5;
    cfg.aimd_latency_threshold = milliseconds{20};
    concurrency_limiter lim{cfg};
    // Sets the smoothed RTT to 10 ms without counting (idle).
    lim.on_sample(at_ms(0), milliseconds{10}, 0);
    REQUIRE(lim.limit() == r.initial);
    long long t = 0;
    std::vector<uint32_t> limits;
    for (char c : r.events) {
      if (c != 'd')
        t += 100;
      auto now = at_ms(t);
      switch (c) {
        case 'S': lim.on_sample(now, milliseconds{10}, lim.limit()); break;
        case 'T': lim.on_sample(now, milliseconds{20}, lim.limit()); break;
        case 'L': lim.on_sample(now, milliseconds{20} + nanoseconds{1}, lim.limit()); break;
        case 'l': lim.on_sample(now, milliseconds{20} + nanoseconds{1}, 0); break;
        default: lim.on_drop(now); break;
      }
      limits.push_back(lim.limit());
    }
    CHECK(limits == r.limits);
  }
}

TEST_CASE("limiter: overload signals within one smoothed RTT of a backoff are one event") {
  limiter_config cfg;
  cfg.kind = limiter_kind::aimd;
  cfg.initial = 64;
  cfg.backoff_ratio = 0.5;
  concurrency_limiter lim{cfg};
  lim.on_drop(at_ms(0)); // no RTT yet: every signal counts
  lim.on_drop(at_ms(0));
  CHECK(lim.limit() == 16);
  lim.on_sample(at_ms(1), milliseconds{10}, 0); // SRTT 10 ms
  REQUIRE(lim.srtt() == milliseconds{10});
  auto t0 = at_ms(1000);
  lim.on_drop(t0);
  CHECK(lim.limit() == 8);
  lim.on_drop(t0 + milliseconds{10} - nanoseconds{1});
  CHECK(lim.limit() == 8);
  lim.on_drop(t0 + milliseconds{10});
  CHECK(lim.limit() == 4);
}

TEST_CASE("limiter: the gradient's math") {
  struct grad_row {
    double no_load, short_rtt, tolerance, expected;
  };
  std::vector<grad_row> grads = {
    {10, 10, 1, 1.0},   {10, 8, 1, 1.0},     // no queueing
    {10, 16, 1, 0.625}, {10, 20, 1, 0.5},    // queueing
    {10, 40, 1, 0.5},                        // capped cut
    {10, 16, 1.5, 0.9375}, {10, 15, 1.5, 1.0}, // tolerance
    {10, 0, 1, 1.0},                         // no evidence
  };
  for (auto& r : grads) {
    CAPTURE(r.no_load);
    CAPTURE(r.short_rtt);
    CAPTURE(r.tolerance);
    CHECK(rtt_gradient(r.no_load, r.short_rtt, r.tolerance) == r.expected);
  }
  struct step_row {
    double limit, gradient, queue_size, smoothing, expected;
  };
  std::vector<step_row> steps = {
    {16, 0.5, 0, 0.25, 15.0},  // 16 * 0.75 + (8 + sqrt 16) * 0.25
    {16, 1.0, 0, 0.25, 17.0},  // 12 + (16 + 4) * 0.25
    {16, 1.0, 2, 0.5, 17.0},   // fixed queue: 8 + 18 * 0.5
    {9, 1.0, 0, 1.0, 12.0},    // no smoothing
    {4, 0.5, 0, 0.0, 4.0},     // all smoothing
  };
  for (auto& r : steps) {
    CAPTURE(r.limit);
    CAPTURE(r.gradient);
    CAPTURE(r.queue_size);
    CAPTURE(r.smoothing);
    CHECK(next_limit(r.limit, r.gradient, r.queue_size, r.smoothing) == r.expected);
  }
}

TEST_CASE("limiter: gradient measures the no-load RTT at baseline_concurrency, then steps per window") {
  limiter_config cfg;
  cfg.kind = limiter_kind::gradient;
  cfg.initial = 16;
  cfg.smoothing = 0.25;
  cfg.baseline_interval = seconds{10};
  concurrency_limiter lim{cfg};
  CHECK(lim.measuring());
  CHECK(lim.limit() == 3);
  // Calls sent above the phase's limit do not count.
  for (int i = 0; i < 50; ++i)
    lim.on_sample(at_ms(1), milliseconds{50}, 4);
  CHECK(lim.measuring());
  for (int i = 0; i < 18; ++i)
    lim.on_sample(at_ms(2), i % 2 == 0 ? milliseconds{8} : milliseconds{12}, 3);
  lim.on_sample(at_ms(2), milliseconds{10}, 1);
  CHECK(lim.measuring());
  lim.on_sample(at_ms(3), milliseconds{10}, 3); // 20th: mean of 9 x 8, 9 x 12, 2 x 10 = 10 ms
  CHECK_FALSE(lim.measuring());
  CHECK(lim.no_load_rtt() == milliseconds{10});
  CHECK(lim.limit() == 16);
  // Window of 10 loaded samples at twice the no-load RTT: gradient 0.5.
  for (int i = 0; i < 9; ++i)
    lim.on_sample(at_ms(4), milliseconds{20}, 16);
  CHECK(lim.estimate() == 16.0);
  lim.on_sample(at_ms(4), milliseconds{20}, 16);
  CHECK(lim.estimate() == 15.0);
  // The next phase starts at the first sample 10 s after the last one ended.
  lim.on_sample(at_ms(3) + seconds{10} - nanoseconds{1}, milliseconds{20}, 15);
  CHECK_FALSE(lim.measuring());
  lim.on_sample(at_ms(3) + seconds{10}, milliseconds{20}, 15);
  CHECK(lim.measuring());
  CHECK(lim.limit() == 3);
  for (int i = 0; i < 20; ++i)
    lim.on_sample(at_ms(10'004), milliseconds{30}, 2);
  CHECK_FALSE(lim.measuring());
  CHECK(lim.no_load_rtt() == milliseconds{30});
  CHECK(lim.estimate() == 15.0); // the phase does not move the limit
}

TEST_CASE("limiter: gradient converges near the capacity of a queueing server") {
  // Settles where limit = k + sqrt(limit): 6.6, 11.4, 20.5, 38.2.
  struct row {
    uint32_t k;
    uint32_t settle_lo, settle_hi;
  };
  std::vector<row> rows = {{4, 6, 7}, {8, 11, 12}, {16, 20, 21}, {32, 38, 39}};
  for (auto& r : rows) {
    CAPTURE(r.k);
    concurrency_limiter lim{limiter_config{}};
    queueing_server srv{r.k, milliseconds{10}};
    auto now = at_ms(0);
    std::vector<uint32_t> h;
    drive(lim, srv, now, 3000, h);
    CHECK(lim.no_load_rtt() == milliseconds{10});
    CHECK(now < at_ms(60'000)); // no second baseline phase in the run
    CHECK(h.back() >= r.k * 0.75);
    CHECK(h.back() <= r.k * 2);
    auto [lo, hi] = tail_range(h, 200);
    CHECK(hi - lo <= 1);
    CHECK(lo >= r.settle_lo);
    CHECK(hi <= r.settle_hi);
    auto settled = settled_at(h, r.k * 0.75, r.k * 2.0);
    CAPTURE(settled);
    CHECK(settled <= 1000);
  }
}

TEST_CASE("limiter: gradient backs off when the server slows, and re-learns at the next phase") {
  limiter_config cfg;
  cfg.baseline_interval = seconds{10};
  concurrency_limiter lim{cfg};
  queueing_server srv{8, milliseconds{10}};
  auto now = at_ms(0);
  std::vector<uint32_t> h;
  drive(lim, srv, now, 3000, h);
  auto before = h.back();
  REQUIRE(before >= 11);
  REQUIRE(now < at_ms(10'000));
  // Service time doubles: latency is >= twice the no-load RTT, gradient 0.5.
  srv.service = milliseconds{20};
  std::vector<uint32_t> slow;
  drive(lim, srv, now, 500, slow);
  CHECK(*std::max_element(slow.begin(), slow.end()) <= before);
  CHECK(slow[9] < before);        // one window
  CHECK(slow[99] <= before - 2);
  CHECK(slow.back() <= 5); // towards 4 = limit * 0.5 + sqrt(limit)
  CHECK(slow.back() >= 4);
  CHECK(lim.no_load_rtt() == milliseconds{10});
  // Run past the next baseline phase (10 s after the first one ended).
  std::vector<uint32_t> after;
  bool measured = false;
  while (now < at_ms(10'500) || after.size() < 3000) {
    drive(lim, srv, now, 1, after);
    measured = measured || lim.measuring();
  }
  CHECK(measured);
  CHECK(lim.no_load_rtt() == milliseconds{20});
  auto [lo, hi] = tail_range(after, 200);
  CHECK(hi - lo <= 1);
  CHECK(lo >= 11);
  CHECK(hi <= 12);
}

TEST_CASE("limiter: a probe reporting a queue backs off in proportion to its share") {
  struct factor_row {
    double queue, running, weight, expected;
  };
  std::vector<factor_row> factors = {
    {0, 8, 0.5, 1.0},     {-1, 8, 0.5, 1.0},    {8, 8, 0.5, 0.75},
    {24, 8, 0.5, 0.625},  {56, 8, 0.5, 0.5625}, {8, 0, 0.5, 0.5},
    {8, -3, 0.5, 0.5},    {8, 8, 0.0, 1.0},     {8, 8, 1.0, 0.5},
  };
  for (auto& r : factors) {
    CAPTURE(r.queue);
    CAPTURE(r.running);
    CAPTURE(r.weight);
    CHECK(probe_backoff_factor(r.queue, r.running, r.weight) == r.expected);
  }
  // A growing queue, readings 100 ms apart (SRTT 10 ms), except where noted.
  struct step {
    long long at_ms;
    double queue;
    uint32_t limit;
  };
  std::vector<step> steps = {
    {100, 0, 32},  // no queue: no change
    {200, 8, 24},  // * 0.75
    {300, 24, 15}, // * 0.625
    {400, 56, 8},  // * 0.5625 = 8.4375
    {405, 120, 8}, // within one SRTT of the last backoff: ignored
    {410, 120, 4}, // one SRTT later: 8.4375 * (1 - 0.5 * 120/128) = 4.48...
  };
  for (auto kind : {limiter_kind::aimd, limiter_kind::gradient}) {
    CAPTURE(to_string(kind));
    limiter_config cfg;
    cfg.kind = kind;
    cfg.initial = 32;
    concurrency_limiter lim = kind == limiter_kind::gradient
                                ? measured_gradient(cfg, milliseconds{10})
                                : concurrency_limiter{cfg};
    if (kind == limiter_kind::aimd)
      lim.on_sample(at_ms(0), milliseconds{10}, 0);
    REQUIRE(lim.srtt() == milliseconds{10});
    REQUIRE(lim.limit() == 32);
    for (auto& s : steps) {
      CAPTURE(s.at_ms);
      lim.on_probe(at_ms(s.at_ms), s.queue, 8.0);
      CHECK(lim.limit() == s.limit);
    }
    // The floor holds.
    for (int i = 0; i < 50; ++i)
      lim.on_probe(at_ms(1000 + 100 * i), 1000.0, 0.0);
    CHECK(lim.limit() == 1);
  }
  // Weight 0: probes are ignored.
  limiter_config cfg;
  cfg.kind = limiter_kind::aimd;
  cfg.initial = 32;
  cfg.probe_queue_weight = 0.0;
  concurrency_limiter lim{cfg};
  lim.on_probe(at_ms(0), 1000.0, 1.0);
  CHECK(lim.limit() == 32);
}

TEST_CASE("limiter: samples far below the limit neither raise nor lower it") {
  // aimd, +1 per loaded success: in_flight * 2 < limit is idle.
  struct row {
    uint32_t in_flight;
    uint32_t expected;
  };
  std::vector<row> rows = {{0, 8}, {3, 8}, {4, 9}, {8, 9}, {20, 9}};
  for (auto& r : rows) {
    CAPTURE(r.in_flight);
    limiter_config cfg;
    cfg.kind = limiter_kind::aimd;
    cfg.initial = 8;
    cfg.window_samples = 1;
    concurrency_limiter lim{cfg};
    lim.on_sample(at_ms(0), milliseconds{10}, r.in_flight);
    CHECK(lim.limit() == r.expected);
  }
  // gradient at limit 16: fast idle samples (which would raise it when
  // loaded) and slow ones (which would lower it) change nothing.
  limiter_config cfg;
  cfg.initial = 16;
  auto lim = measured_gradient(cfg, milliseconds{10});
  for (int i = 0; i < 1000; ++i) {
    lim.on_sample(at_ms(i), milliseconds{5}, 7);
    lim.on_sample(at_ms(i), milliseconds{100}, 7);
  }
  CHECK(lim.estimate() == 16.0);
  for (int i = 0; i < 10; ++i)
    lim.on_sample(at_ms(2000), milliseconds{5}, 8); // exactly half: loaded
  CHECK(lim.estimate() > 16.0);
  CHECK(lim.limit() == 16); // 16 * 0.8 + 20 * 0.2 = 16.8
}

TEST_CASE("server concurrency: Little's law per window against batches at least as large") {
  using namespace std::chrono_literals;
  // One window of 10 samples, all with the same latency, in flight and
  // batch size; first, when the estimate wants calls sent alone, 10 of
  // them taking `alone_ms` (same batch size).
  auto window = [](server_concurrency& e, policy_time t, double latency_ms, uint32_t in_flight, uint32_t rows,
                   double alone_ms, double cap = 64) {
    if (e.wants_alone()) {
      CHECK(e.value() == 1.0);
      for (int i = 0; i < 10; ++i)
        e.on_sample(t, alone_ms * 1e6, 1, rows, cap);
      CHECK(!e.wants_alone());
    }
    for (int i = 0; i < 10; ++i)
      e.on_sample(t, latency_ms * 1e6, in_flight, rows, cap);
  };
  struct step {
    double latency_ms;
    uint32_t in_flight;
    uint32_t rows;
    double expected; // the estimate after the window
  };
  struct row {
    const char* what;
    double baseline_ms; // a baseline-phase window first (0: none)
    uint32_t baseline_rows;
    double alone_ms; // the latency of calls sent alone
    std::vector<step> steps;
  };
  const double slow = 1000; // calls sent alone that lower no S
  std::vector<row> rows = {
    {"first window, nothing lower: n", 0, 0, slow, {{20, 8, 2, 8}}},
    {"a baseline of the same batches is S: n * S / R", 10, 2, slow, {{20, 8, 2, 4}}},
    {"queueing moves half way to n * S / R", 10, 2, slow, {{20, 8, 2, 4}, {20, 12, 2, 5}}},
    {"no queueing with the estimate used: + 0.1", 10, 2, slow, {{20, 8, 2, 4}, {10, 4, 2, 4.1}, {10, 5, 2, 4.2}}},
    {"no queueing with fewer in flight: nothing learned", 10, 2, slow, {{20, 8, 2, 4}, {10, 3, 2, 4}, {10, 1, 2, 4}}},
    {"within the 10% margin is no queueing", 10, 2, slow, {{20, 8, 2, 4}, {10.9, 4, 2, 4.1}}},
    {"just beyond the margin is queueing", 10, 2, slow, {{20, 8, 2, 4}, {11.2, 6, 2, 4 + 0.5 * (6 / 1.12 - 4)}}},
    // A batch of 16 takes longer than a batch of 2 without queueing.
    {"larger batches are not compared with smaller ones", 10, 2, slow, {{20, 8, 16, 8}}},
    {"smaller batches are compared with larger ones", 10, 16, slow, {{20, 8, 2, 4}}},
    {"within a size class (9%) batches compare", 10, 16, slow, {{20, 8, 17, 4}}},
    // k = 1 behind a baseline concurrency of 3: the baseline is queued
    // (3x), every window too; the calls sent alone show S = 10.
    {"a queued baseline: calls sent alone give S", 30, 1, 10, {{30, 3, 1, 3}, {30, 3, 1, 2}, {30, 3, 1, 1.5}, {30, 3, 1, 1.25}}},
    {"at least 1", 10, 1, slow, {{100, 1, 1, 1}}},
  };
  SUBCASE("the table") {
    for (auto& r : rows) {
      CAPTURE(r.what);
      server_concurrency e;
      CHECK(e.value() == 0.0);
      CHECK(!e.wants_alone());
      auto t = at_ms(0);
      if (r.baseline_ms > 0)
        for (int i = 0; i < 10; ++i)
          e.on_baseline_sample(t, r.baseline_ms * 1e6, r.baseline_rows);
      CHECK(e.value() == 0.0); // baseline windows set S only
      for (size_t i = 0; i < r.steps.size(); ++i) {
        CAPTURE(i);
        window(e, t, r.steps[i].latency_ms, r.steps[i].in_flight, r.steps[i].rows, r.alone_ms);
        CHECK(e.estimate() == doctest::Approx(r.steps[i].expected));
        t += 100ms;
      }
    }
  }
  SUBCASE("size classes: eight per doubling") {
    CHECK(server_concurrency::size_class(0) == 0);
    CHECK(server_concurrency::size_class(1) == 0);
    CHECK(server_concurrency::size_class(1.09) == 0);
    CHECK(server_concurrency::size_class(2) == 8);
    CHECK(server_concurrency::size_class(3) == 12);
    CHECK(server_concurrency::size_class(64) == 48);
    CHECK(server_concurrency::size_class(1e30) == server_concurrency::size_classes - 1);
  }
  SUBCASE("capped by the limit's maximum") {
    server_concurrency e;
    window(e, at_ms(0), 10, 40, 1, slow, 16);
    CHECK(e.estimate() == 16.0);
  }
  SUBCASE("calls sent alone are asked for after the first window and every 30 s") {
    server_concurrency e;
    window(e, at_ms(0), 20, 8, 1, slow);
    CHECK(e.wants_alone());
    CHECK(e.value() == 1.0);
    CHECK(e.estimate() == doctest::Approx(8.0));
    window(e, at_ms(5'000), 20, 8, 1, slow);
    CHECK(!e.wants_alone());
    CHECK(e.value() == doctest::Approx(8.1));
    window(e, at_ms(29'000), 20, 8, 1, slow);
    CHECK(!e.wants_alone());
    window(e, at_ms(30'000), 20, 8, 1, slow);
    CHECK(e.wants_alone());
  }
  SUBCASE("a loaded endpoint gives up on calls sent alone after 40 others") {
    server_concurrency e;
    window(e, at_ms(0), 20, 8, 1, slow);
    REQUIRE(e.wants_alone());
    for (int i = 0; i < 39; ++i)
      e.on_sample(at_ms(1), 5e6, 8, 1, 64);
    CHECK(e.wants_alone());
    e.on_sample(at_ms(1), 5e6, 8, 1, 64);
    CHECK(!e.wants_alone());
    CHECK(e.estimate() == doctest::Approx(8.0)); // unchanged by those
    // And no S from them: the next 20 ms window shows no queueing (against
    // 5 ms it would read 4x queueing and fall towards 2).
    window(e, at_ms(2), 20, 8, 1, slow);
    CHECK(e.reference_ns() == doctest::Approx(20e6));
    CHECK(e.estimate() == doctest::Approx(8.1));
  }
  SUBCASE("after an idle gap of two floor periods no old S is left") {
    server_concurrency e;
    window(e, at_ms(0), 20, 8, 2, slow); // S = 20 from t = 0
    CHECK(e.estimate() == doctest::Approx(8.0));
    window(e, at_ms(130'000), 40, 8, 2, slow); // 130 s later: only this window's 40
    CHECK(e.reference_ns() == doctest::Approx(40e6));
    CHECK(e.estimate() == doctest::Approx(8.1)); // against 20 it would fall to 6
  }
  SUBCASE("windows of 0 ns set no S") {
    server_concurrency e;
    window(e, at_ms(0), 0, 8, 1, slow);
    CHECK(e.estimate() == 0.0);
    window(e, at_ms(1), 20, 8, 1, slow);
    CHECK(e.reference_ns() == doctest::Approx(20e6));
    CHECK(e.estimate() == doctest::Approx(8.0));
  }
  SUBCASE("a window mean counts towards S for one to two floor periods (60 s)") {
    server_concurrency e;
    for (int i = 0; i < 10; ++i)
      e.on_baseline_sample(at_ms(0), 10e6, 2); // S = 10 from t = 0
    window(e, at_ms(70'000), 20, 8, 2, slow);  // a new period; S still 10 from the previous
    CHECK(e.estimate() == doctest::Approx(4.0));
    CHECK(e.reference_ns() == doctest::Approx(10e6));
    window(e, at_ms(140'000), 20, 8, 2, slow); // the 10 ms window expired: S = 20, no queueing
    CHECK(e.reference_ns() == doctest::Approx(20e6));
    CHECK(e.estimate() == doctest::Approx(4.1)); // 8 in flight used the whole estimate: probe up
  }
  SUBCASE("restart drops partial windows") {
    server_concurrency e;
    for (int i = 0; i < 9; ++i)
      e.on_baseline_sample(at_ms(0), 10e6, 1);
    for (int i = 0; i < 9; ++i)
      e.on_sample(at_ms(0), 20e6, 8, 1, 64);
    e.restart();
    e.on_baseline_sample(at_ms(0), 10e6, 1);
    e.on_sample(at_ms(0), 20e6, 8, 1, 64);
    CHECK(e.estimate() == 0.0);
    for (int i = 0; i < 9; ++i)
      e.on_sample(at_ms(0), 20e6, 8, 1, 64);
    CHECK(e.estimate() == doctest::Approx(8.0)); // no baseline S: the partial one was dropped
  }
}

TEST_CASE("limiter: unqueued concurrency, what pacing spaces calls by") {
  using namespace std::chrono_literals;
  limiter_config fixed;
  fixed.kind = limiter_kind::fixed;
  fixed.initial = 4;
  CHECK(concurrency_limiter{fixed}.unqueued_concurrency() == 4.0);
  limiter_config aimd = fixed;
  aimd.kind = limiter_kind::aimd;
  CHECK(concurrency_limiter{aimd}.unqueued_concurrency() == 4.0);
  // gradient: limit() while measuring the no-load RTT and before the first
  // window of the server-concurrency estimate; then that estimate, within
  // [1, limit()].
  limiter_config g;
  g.kind = limiter_kind::gradient;
  g.initial = 16;
  g.max = 16;
  concurrency_limiter lim{g};
  CHECK(lim.unqueued_concurrency() == static_cast<double>(lim.limit())); // measuring: 3
  CHECK(lim.limit() == 3);
  auto t = at_ms(0);
  for (uint32_t i = 0; i < g.baseline_samples; ++i) {
    t += 10ms;
    lim.on_sample(t, 10ms, 1);
  }
  REQUIRE(lim.limit() == 16); // the phase ended: back to its limit
  CHECK(lim.server_estimate() == 0.0);
  CHECK(lim.unqueued_concurrency() == 16.0);
  // A window of 10 calls sent with 4 in flight, taking twice the no-load
  // RTT: the server runs 2 at once. Idle samples for the limit (4 * 2 <
  // 16), which stays; pacing uses 2.
  for (int i = 0; i < 10; ++i) {
    t += 1ms;
    lim.on_sample(t, 20ms, 4); // 4 in flight: idle for the limit of 16
  }
  CHECK(lim.limit() == 16);
  CHECK(lim.server_estimate() == doctest::Approx(2.0)); // 4 * 10 / 20
  CHECK(lim.unqueued_concurrency() == 1.0);              // next: calls sent alone, for S
  for (int i = 0; i < 10; ++i) {
    t += 1ms;
    lim.on_sample(t, 10ms, 1);
  }
  CHECK(lim.unqueued_concurrency() == doctest::Approx(2.0));
  // The next baseline phase drops the partial window and holds the limit.
  for (int i = 0; i < 5; ++i)
    lim.on_sample(t, 20ms, 4);
  t += 61s;
  lim.on_sample(t, 10ms, 1); // starts a phase (and counts in it)
  REQUIRE(lim.measuring());
  CHECK(lim.unqueued_concurrency() == 3.0);
  for (uint32_t i = 1; i < g.baseline_samples; ++i) {
    t += 10ms;
    lim.on_sample(t, 10ms, 1);
  }
  REQUIRE(!lim.measuring());
  // The 5 samples before the phase were dropped: 5 more make no window
  // (with them, 15 ms against 10 would read queueing and move the estimate).
  for (int i = 0; i < 5; ++i) {
    t += 1ms;
    lim.on_sample(t, 10ms, 4);
  }
  CHECK(lim.server_estimate() == doctest::Approx(2.0));
  CHECK(lim.unqueued_concurrency() == doctest::Approx(2.0));
}

TEST_CASE("limiter: the gradient kind's server estimate converges near k when pacing follows it") {
  // Pacing at the estimate puts about that many calls in flight (the
  // load offered is more than k can serve unbatched, as at 10% of the
  // goodput bench's batched limit). The server queues what is beyond k.
  for (uint32_t k : {1u, 2u, 4u, 8u, 16u}) {
    for (uint32_t initial : {1u, 16u, 64u}) {
      CAPTURE(k);
      CAPTURE(initial);
      limiter_config cfg;
      cfg.kind = limiter_kind::gradient;
      cfg.initial = initial;
      cfg.max = 64;
      queueing_server srv{k, milliseconds{10}};
      concurrency_limiter lim{cfg};
      auto now = at_ms(0);
      double sum = 0;
      int counted = 0;
      for (int i = 0; i < 20000; ++i) {
        double target = lim.unqueued_concurrency();
        // In flight alternates between floor and ceiling of the target in
        // proportion, as evenly spaced starts give.
        auto lo = static_cast<uint32_t>(target);
        uint32_t n = (static_cast<double>(i % 100) / 100.0 < target - lo) ? lo + 1 : lo;
        n = std::max(1u, n);
        auto latency = srv.latency(n);
        now += latency / n;
        lim.on_sample(now, latency, n);
        if (i >= 15000 && !lim.measuring()) {
          sum += lim.unqueued_concurrency();
          ++counted;
        }
      }
      REQUIRE(counted > 0);
      double mean = sum / counted;
      CHECK(mean >= 0.9 * k);
      CHECK(mean <= 1.2 * k + 0.3);
    }
  }
}

TEST_CASE("call pacing: the next start and when a want is held") {
  using namespace std::chrono_literals;
  struct row {
    double latency_ms;
    double concurrency;
    policy_duration gap;
  };
  std::vector<row> rows = {
    {8, 4, 2ms},
    {5.4, 3.55, std::chrono::duration_cast<policy_duration>(std::chrono::duration<double, std::milli>(5.4 / 3.55))},
    {8, 0.5, 8ms},          // concurrency below 1 counts as 1
    {0, 4, 0ms},            // no latency measured: no pacing
    {-1, 4, 0ms},
    {std::nan(""), 4, 0ms},
    {8, 0, 0ms},            // no concurrency known: no pacing
    {8, std::nan(""), 0ms},
    {600000, 1, 1000ms},    // a stale minute-long figure holds at most 1 s
  };
  auto last = at_ms(100);
  for (auto& r : rows) {
    CAPTURE(r.latency_ms);
    CAPTURE(r.concurrency);
    auto next = paced_start(last, r.latency_ms, r.concurrency);
    CHECK((next - last).count() == doctest::Approx(static_cast<double>(r.gap.count())).epsilon(1e-9));
  }
  auto next = at_ms(102);
  CHECK(pacing_holds(1, at_ms(101), next));
  CHECK_FALSE(pacing_holds(1, at_ms(102), next)); // due
  CHECK_FALSE(pacing_holds(1, at_ms(103), next));
  CHECK_FALSE(pacing_holds(2, at_ms(101), next)); // a full batch queued: never held
  CHECK_FALSE(pacing_holds(64, at_ms(101), next));
}
