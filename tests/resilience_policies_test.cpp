// Resilience policies, tested as tables with injected time and randomness:
// backoff with jitter, retry budget, restart strategies.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "policies/backoff.hpp"
#include "policies/restart_strategy.hpp"
#include "policies/retry_budget.hpp"

using namespace sinfer;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

// ---------------------------------------------------------------- seeded_rng

TEST_CASE("seeded_rng: splitmix64 reference outputs") {
  // Rows: seed, first outputs (Vigna's splitmix64.c; seed 1234567 is the
  // commonly published test vector).
  struct row {
    uint64_t seed;
    std::vector<uint64_t> outputs;
  };
  std::vector<row> rows = {
    {0, {0xE220A8397B1DCDAFull}},
    {1234567,
     {6457827717110365317ull, 3203168211198807973ull, 9817491932198370423ull,
      4593380528125082431ull, 16408922859458223821ull}},
  };
  for (auto& r : rows) {
    CAPTURE(r.seed);
    seeded_rng rng{r.seed};
    for (size_t i = 0; i < r.outputs.size(); ++i) {
      CAPTURE(i);
      CHECK(rng.next() == r.outputs[i]);
    }
  }
  seeded_rng rng{42};
  CHECK(rng.uniform01() == 0.74156487877182331);
}

TEST_CASE("seeded_rng: uniform rejects the biased low values (golden values)") {
  // [0, 3 * 2^61]: n = 3 * 2^61 + 1 values, so raw draws below 2^64 mod n =
  // 2^62 - 2 (a quarter of them) are rejected: here the 2nd, 5th and 7th.
  // Plain `next() % n` would give 2949826092126892291 second.
  const int64_t hi = int64_t{3} << 61;
  seeded_rng rng{42};
  std::vector<int64_t> got;
  for (int i = 0; i < 6; ++i)
    got.push_back(rng.uniform(nanoseconds{0}, nanoseconds{hi}).count());
  std::vector<int64_t> golden = {6761928505114193556, 5139283748462763858, 6349198060258255764,
                                  2180923070380825348, 933993271705612194,  6270620877612482005};
  CHECK(got == golden);
}

TEST_CASE("seeded_rng: uniform covers [lo, hi] and nothing else") {
  // Rows: lo, hi (ns), draws; every value in [lo, hi] must appear.
  struct row {
    int64_t lo, hi;
  };
  std::vector<row> rows = {{5, 7}, {0, 0}, {-3, 3}, {1'000'000, 1'000'009}};
  for (auto& r : rows) {
    CAPTURE(r.lo);
    CAPTURE(r.hi);
    seeded_rng rng{7};
    std::vector<int> seen(static_cast<size_t>(r.hi - r.lo + 1), 0);
    for (int i = 0; i < 2000; ++i) {
      auto v = rng.uniform(nanoseconds{r.lo}, nanoseconds{r.hi}).count();
      REQUIRE(v >= r.lo);
      REQUIRE(v <= r.hi);
      ++seen[static_cast<size_t>(v - r.lo)];
    }
    CHECK(std::count(seen.begin(), seen.end(), 0) == 0);
  }
  seeded_rng rng{7};
  CHECK(rng.uniform(nanoseconds{9}, nanoseconds{3}) == nanoseconds{9}); // hi < lo -> lo
  auto full_range = rng.uniform(nanoseconds{std::numeric_limits<int64_t>::min()},
                                nanoseconds{std::numeric_limits<int64_t>::max()});
  // 2^64 values: lo + next(), modulo 2^64.
  auto lo_bits = static_cast<uint64_t>(std::numeric_limits<int64_t>::min());
  CHECK(full_range == nanoseconds{static_cast<int64_t>(lo_bits + seeded_rng{7}.next())});
  double lowest = 1.0, highest = 0.0;
  for (int i = 0; i < 10'000; ++i) {
    double u = rng.uniform01();
    lowest = std::min(lowest, u);
    highest = std::max(highest, u);
  }
  CHECK(lowest >= 0.0);
  CHECK(lowest < 0.001);
  CHECK(highest < 1.0);
  CHECK(highest > 0.999);
}

// ------------------------------------------------------------------- backoff

TEST_CASE("jitter_mode: names round-trip, unknown names are rejected") {
  struct row {
    const char* name;
    bool ok;
    jitter_mode expected;
  };
  std::vector<row> rows = {
    {"none", true, jitter_mode::none},
    {"full", true, jitter_mode::full},
    {"equal", true, jitter_mode::equal},
    {"decorrelated", true, jitter_mode::decorrelated},
    {"Full", false, jitter_mode::equal},
    {"", false, jitter_mode::equal},
    {"decorrelated ", false, jitter_mode::equal},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    jitter_mode m = jitter_mode::equal; // left unchanged on failure
    CHECK(parse_jitter_mode(r.name, m) == r.ok);
    CHECK(m == r.expected);
    if (r.ok)
      CHECK(std::string{to_string(m)} == r.name);
  }
}

TEST_CASE("backoff_delay: seed 42, first five delays per jitter mode (golden values)") {
  // initial 100ms, max 2s, multiplier 2; `previous` chains the returned
  // delays. Golden values computed once; a change in splitmix64, uniform()
  // or a formula changes them.
  struct row {
    jitter_mode mode;
    std::vector<int64_t> ns;
  };
  std::vector<row> rows = {
    {jitter_mode::none, {100000000, 200000000, 400000000, 800000000, 1600000000}},
    {jitter_mode::full, {60701454, 177761905, 14554519, 321758199, 103505259}},
    {jitter_mode::equal, {66130230, 128631665, 366345245, 785260654, 1265047269}},
    {jitter_mode::decorrelated, {257988092, 277326833, 391006858, 531563089, 149778446}},
  };
  for (auto& r : rows) {
    CAPTURE(to_string(r.mode));
    backoff_config cfg{milliseconds{100}, seconds{2}, 2.0, r.mode};
    seeded_rng rng{42};
    policy_duration previous{0};
    for (uint32_t retry = 1; retry <= r.ns.size(); ++retry) {
      CAPTURE(retry);
      previous = backoff_delay(cfg, retry, previous, rng);
      CHECK(previous.count() == r.ns[retry - 1]);
    }
  }
}

TEST_CASE("backoff_delay: none is the capped exponential, saturating without overflow") {
  // Rows: initial, max, multiplier, retry -> delay (all ms).
  struct row {
    int64_t initial_ms, max_ms;
    double multiplier;
    uint32_t retry;
    int64_t expected_ms;
  };
  std::vector<row> rows = {
    {100, 2000, 2.0, 1, 100},   {100, 2000, 2.0, 2, 200},     {100, 2000, 2.0, 3, 400},
    {100, 2000, 2.0, 4, 800},   {100, 2000, 2.0, 5, 1600},    {100, 2000, 2.0, 6, 2000},
    {100, 2000, 2.0, 7, 2000},  {100, 2000, 2.0, 0, 100},     // retry 0 counts as 1
    {100, 2000, 2.0, 200, 2000},                             // 2^199: saturates
    {100, 2000, 2.0, std::numeric_limits<uint32_t>::max(), 2000},
    {100, 2000, 1e300, 3, 2000},                             // 1e600 = inf: saturates
    {100, 2000, 1.0, 1000, 100},                             // no growth
    {100, 2000, 0.5, 5, 100},                                // multiplier < 1 counts as 1
    {100, 2000, 3.0, 3, 900},   {100, 2000, 3.0, 4, 2000},   // 2700 capped
    {5000, 2000, 2.0, 1, 2000},                              // initial above max
    {0, 2000, 2.0, 200, 0},                                  // 0 * 2^199 is 0, not max
    {0, 2000, 2.0, std::numeric_limits<uint32_t>::max(), 0}, // 0 * inf is NaN: still 0
  };
  for (auto& r : rows) {
    CAPTURE(r.initial_ms);
    CAPTURE(r.multiplier);
    CAPTURE(r.retry);
    backoff_config cfg{milliseconds{r.initial_ms}, milliseconds{r.max_ms}, r.multiplier,
                       jitter_mode::none};
    seeded_rng rng{1};
    CHECK(backoff_delay(cfg, r.retry, policy_duration{0}, rng) == milliseconds{r.expected_ms});
    CHECK(backoff_base(cfg, r.retry) == milliseconds{r.expected_ms});
  }
  // none never draws: the generator is untouched.
  backoff_config cfg{milliseconds{100}, seconds{2}, 2.0, jitter_mode::none};
  seeded_rng used{9}, fresh{9};
  backoff_delay(cfg, 3, policy_duration{0}, used);
  CHECK(used.next() == fresh.next());
}

TEST_CASE("backoff_delay: every draw stays within its mode's bounds") {
  // Rows: mode, seed. 10'000 draws each, retries cycling 1..10, `previous`
  // chained. Also checks both ends of each range are approached, so a
  // generator stuck at one end fails.
  struct row {
    jitter_mode mode;
    uint64_t seed;
  };
  std::vector<row> rows;
  for (auto mode : {jitter_mode::full, jitter_mode::equal, jitter_mode::decorrelated})
    for (uint64_t seed : {uint64_t{1}, uint64_t{42}, uint64_t{2024},
                          std::numeric_limits<uint64_t>::max()})
      rows.push_back({mode, seed});
  const auto initial = milliseconds{100};
  const auto max = seconds{2};
  for (auto& r : rows) {
    CAPTURE(to_string(r.mode));
    CAPTURE(r.seed);
    backoff_config cfg{initial, max, 2.0, r.mode};
    seeded_rng rng{r.seed};
    policy_duration previous{0};
    double lowest = 1.0, highest = 0.0; // position within [lo, hi]
    int out_of_bounds = 0;
    for (int i = 0; i < 10'000; ++i) {
      uint32_t retry = static_cast<uint32_t>(i % 10) + 1;
      auto base = backoff_base(cfg, retry);
      policy_duration lo, hi;
      switch (r.mode) {
        case jitter_mode::full:
          lo = policy_duration{0}, hi = base;
          break;
        case jitter_mode::equal:
          lo = base / 2, hi = base / 2 * 2;
          break;
        default: // decorrelated
          lo = initial;
          hi = std::min<policy_duration>(max, (previous.count() == 0 ? initial : previous) * 3);
          break;
      }
      auto d = backoff_delay(cfg, retry, previous, rng);
      if (d < lo || d > hi)
        ++out_of_bounds;
      double pos = double((d - lo).count()) / double((hi - lo).count());
      lowest = std::min(lowest, pos);
      highest = std::max(highest, pos);
      previous = d;
    }
    CHECK(out_of_bounds == 0);
    CHECK(lowest < 0.01);
    CHECK(highest > 0.99);
  }
}

TEST_CASE("backoff_delay: same seed, same sequence; different seed, different sequence") {
  auto sequence = [](jitter_mode mode, uint64_t seed) {
    backoff_config cfg{milliseconds{100}, seconds{2}, 2.0, mode};
    seeded_rng rng{seed};
    std::vector<int64_t> out;
    policy_duration previous{0};
    for (uint32_t retry = 1; retry <= 20; ++retry) {
      previous = backoff_delay(cfg, retry, previous, rng);
      out.push_back(previous.count());
    }
    return out;
  };
  // Rows: mode, seed a, seed b, same sequence expected?
  struct row {
    jitter_mode mode;
    uint64_t a, b;
    bool same;
  };
  std::vector<row> rows = {
    {jitter_mode::full, 42, 42, true},          {jitter_mode::full, 42, 43, false},
    {jitter_mode::equal, 7, 7, true},           {jitter_mode::equal, 7, 8, false},
    {jitter_mode::decorrelated, 0, 0, true},    {jitter_mode::decorrelated, 0, 1, false},
    {jitter_mode::none, 1, 2, true}, // no randomness at all
  };
  for (auto& r : rows) {
    CAPTURE(to_string(r.mode));
    CAPTURE(r.a);
    CAPTURE(r.b);
    CHECK((sequence(r.mode, r.a) == sequence(r.mode, r.b)) == r.same);
  }
}

TEST_CASE("backoff_delay: decorrelated treats previous 0 as initial and never overflows") {
  // Rows: previous, max (ns) -> the draw is uniform(initial, hi) with
  // hi = max(initial, 3 * previous) saturated, then capped at max; with a
  // fixed seed, compare against that draw made directly.
  constexpr auto top = std::numeric_limits<int64_t>::max();
  const int64_t initial = 100'000'000;
  struct row {
    int64_t previous_ns, max_ns;
    int64_t hi_ns; // upper end of the draw
  };
  std::vector<row> rows = {
    {0, 2'000'000'000, 3 * initial},       {-5, 2'000'000'000, 3 * initial},
    {initial, 2'000'000'000, 3 * initial}, {10, 2'000'000'000, initial}, // draw is initial
    {top, top, top},                       // 3 * previous saturates, no wrap
    {top / 3 + 1, top, top},               {top / 3, top, top / 3 * 3},
  };
  for (auto& r : rows) {
    CAPTURE(r.previous_ns);
    CAPTURE(r.max_ns);
    backoff_config cfg{nanoseconds{initial}, nanoseconds{r.max_ns}, 2.0, jitter_mode::decorrelated};
    seeded_rng a{5}, b{5};
    auto got = backoff_delay(cfg, 1, nanoseconds{r.previous_ns}, a);
    auto want = std::min(nanoseconds{r.max_ns}, b.uniform(nanoseconds{initial}, nanoseconds{r.hi_ns}));
    CHECK(got == want);
    CHECK(got >= nanoseconds{initial});
    CHECK(got <= nanoseconds{r.max_ns});
  }
}

TEST_CASE("earliest_retry: waits for the longer of backoff and Retry-After") {
  // Rows: now, backoff, retry_after -> earliest (ms).
  struct row {
    long long now, backoff, retry_after, expected;
  };
  std::vector<row> rows = {
    {1000, 200, 0, 1200},    // no Retry-After
    {1000, 200, 5000, 6000}, // rate limited: the server's wait wins
    {1000, 200, 200, 1200},  // equal
    {1000, 200, 199, 1200},  // just shorter
    {1000, 0, 0, 1000},      // immediate
    {0, 50, 51, 51},
  };
  for (auto& r : rows) {
    CAPTURE(r.now);
    CAPTURE(r.backoff);
    CAPTURE(r.retry_after);
    CHECK(earliest_retry(at_ms(r.now), milliseconds{r.backoff}, milliseconds{r.retry_after})
          == at_ms(r.expected));
  }
}

// -------------------------------------------------------------- retry_budget

namespace {

/// One step of a retry_budget table.
struct budget_op {
  enum kind_t { first, acquire, release } kind;
  uint64_t arg = 0;    // first: how many first attempts; acquire: active requests
  bool expect = false; // acquire: expected result
};

budget_op firsts(uint64_t n) {
  return {budget_op::first, n, false};
}
budget_op acq(uint64_t active, bool expect) {
  return {budget_op::acquire, active, expect};
}
budget_op rel() {
  return {budget_op::release, 0, false};
}

} // namespace

TEST_CASE("retry_budget: sequences of first attempts, acquires and releases") {
  // Rows: name, config, steps, then expected counters at the end.
  struct row {
    const char* name;
    retry_budget_config cfg;
    std::vector<budget_op> ops;
    uint64_t in_flight, granted, rejected;
    double tokens;
  };
  std::vector<row> rows = {
    {"concurrency cap is budget percent of active requests",
     {20.0, 1},
     {firsts(100), // 20 tokens: not the limit here
      acq(20, true), acq(20, true), acq(20, true), acq(20, true), // cap floor(0.2*20) = 4
      acq(20, false), rel(), acq(20, true),                       // 4 in flight: full; one back
      acq(10, false),                                             // cap 2 < 4 in flight
      acq(25, true), acq(25, false)},                             // cap 5
     5, 6, 3, 14.0},
    {"min_retry_concurrency is a floor for the cap",
     {20.0, 3},
     {firsts(100),
      acq(1, true), acq(1, true), acq(1, true), acq(1, false), // floor(0.2) = 0 -> 3
      acq(19, false),                                          // floor(3.8) = 3
      acq(20, true), acq(20, false)},                          // floor(4) = 4
     4, 4, 3, 16.0},
    {"tokens: one per 1/percent first attempts, spent one per retry",
     {20.0, 3},
     {firsts(4), acq(100, false), // 0.8 tokens
      firsts(1), acq(100, true),  // 1.0: exactly enough
      rel(), acq(100, false),     // concurrency free, but no token
      firsts(4), acq(100, false), firsts(1), acq(100, true)},
     1, 2, 3, 0.0},
    {"ten first attempts at 10 % make exactly one token",
     {10.0, 3},
     {firsts(9), acq(5, false), firsts(1), acq(5, true), acq(5, false)},
     1, 1, 2, 0.0},
    {"6000 first attempts at 33.3 % make exactly 1998 tokens (no float drift)",
     {33.3, 0},
     {firsts(6000), acq(100'000, true)},
     1, 1, 0, 1997.0},
    {"a whole token is needed: 3 x 33.3333 % is 0.999999 of one",
     {33.3333, 0},
     {firsts(3), acq(100, false), firsts(1), acq(100, true)},
     1, 1, 1, 0.333332},
    {"budget 0 never retries, whatever the concurrency floor",
     {0.0, 3},
     {firsts(1000), acq(1, false), acq(1000, false), firsts(1'000'000), acq(1'000'000, false)},
     0, 0, 3, 0.0},
    {"budget 100 allows one retry per first attempt",
     {100.0, 0},
     {firsts(3), acq(3, true), acq(3, true), acq(3, true), acq(100, false), // tokens gone
      rel(), rel(), rel(), acq(3, false), firsts(1), acq(3, true)},
     1, 4, 2, 0.0},
    {"budget 100 with cap below tokens",
     {100.0, 0},
     {firsts(10), acq(2, true), acq(2, true), acq(2, false), acq(3, true)},
     3, 3, 1, 7.0},
    {"budget above 100 is clamped to 100",
     {250.0, 3},
     {firsts(2), acq(10, true), acq(10, true), acq(10, false)},
     2, 2, 1, 0.0},
    {"negative budget is clamped to 0",
     {-5.0, 3},
     {firsts(100), acq(10, false)},
     0, 0, 1, 0.0},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    retry_budget b{r.cfg};
    for (size_t i = 0; i < r.ops.size(); ++i) {
      CAPTURE(i);
      auto& op = r.ops[i];
      switch (op.kind) {
        case budget_op::first:
          for (uint64_t k = 0; k < op.arg; ++k)
            b.on_first_attempt();
          break;
        case budget_op::acquire:
          CHECK(b.try_acquire(op.arg) == op.expect);
          break;
        case budget_op::release:
          b.release();
          break;
      }
    }
    CHECK(b.retries_in_flight() == r.in_flight);
    CHECK(b.granted() == r.granted);
    CHECK(b.rejected() == r.rejected);
    CHECK(b.tokens() == doctest::Approx(r.tokens));
  }
}

TEST_CASE("retry_budget: releasing more than acquired is a logic error") {
  retry_budget b{retry_budget_config{}};
  CHECK_THROWS_AS(b.release(), std::logic_error);
  for (int i = 0; i < 5; ++i)
    b.on_first_attempt();
  CHECK(b.try_acquire(10));
  CHECK_NOTHROW(b.release());
  CHECK_THROWS_AS(b.release(), std::logic_error);
  CHECK(b.retries_in_flight() == 0);
}

TEST_CASE("retry_budget: invariants hold over long random sequences") {
  // Rows: budget percent, min concurrency, seed. 100'000 random steps: a new
  // record (first attempt), a retry request, or a retry finishing.
  struct row {
    double percent;
    uint32_t min_concurrency;
    uint64_t seed;
  };
  std::vector<row> rows = {{20.0, 3, 1}, {20.0, 0, 2},  {10.0, 3, 3},
                           {33.3, 5, 4}, {100.0, 3, 5}, {0.0, 3, 6}};
  for (auto& r : rows) {
    CAPTURE(r.percent);
    CAPTURE(r.seed);
    retry_budget b{{r.percent, r.min_concurrency}};
    seeded_rng rng{r.seed};
    uint64_t active = 0, granted = 0, rejected = 0, violations = 0;
    for (int step = 0; step < 100'000; ++step) {
      auto dice = rng.next() % 10;
      if (dice < 3) { // a new record starts
        b.on_first_attempt();
        ++active;
      } else if (dice < 6) { // a record finishes
        if (active > 0)
          --active;
      } else if (dice < 8) { // a record wants a retry
        uint64_t before = b.retries_in_flight();
        bool ok = b.try_acquire(active);
        double cap = std::max<double>(r.min_concurrency,
                                      std::floor(r.percent * double(active) / 100.0 + 1e-9));
        bool expected = double(before) < cap && b.tokens() + (ok ? 1.0 : 0.0) >= 1.0 - 1e-9;
        if (ok != expected)
          ++violations;
        ok ? ++granted : ++rejected;
      } else if (b.retries_in_flight() > 0) { // a retry finishes
        b.release();
      }
      // The invariant, in exact integers (percent has at most 4 decimals here):
      // granted <= percent/100 * first attempts, always.
      auto ppm = static_cast<uint64_t>(std::llround(r.percent * 1e4));
      if (b.granted() * 1'000'000 > ppm * b.first_attempts())
        ++violations;
      if (b.tokens() < 0)
        ++violations;
    }
    CHECK(violations == 0);
    CHECK(b.granted() == granted);
    CHECK(b.rejected() == rejected);
    if (r.percent > 0)
      CHECK(granted > 0);
    else
      CHECK(granted == 0);
    CHECK(rejected > 0);
  }
}

// ---------------------------------------------------------- restart_strategy

TEST_CASE("restart_kind: names round-trip, unknown names are rejected") {
  struct row {
    const char* name;
    bool ok;
    restart_kind expected;
  };
  std::vector<row> rows = {
    {"none", true, restart_kind::none},
    {"fixed-delay", true, restart_kind::fixed_delay},
    {"exponential-delay", true, restart_kind::exponential_delay},
    {"failure-rate", true, restart_kind::failure_rate},
    {"fixed_delay", false, restart_kind::failure_rate},
    {"fixeddelay", false, restart_kind::failure_rate},
    {"None", false, restart_kind::failure_rate},
    {"", false, restart_kind::failure_rate},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    restart_kind k = restart_kind::failure_rate; // left unchanged on failure
    CHECK(parse_restart_kind(r.name, k) == r.ok);
    CHECK(k == r.expected);
    if (r.ok)
      CHECK(std::string{to_string(k)} == r.name);
  }
}

namespace {

/// One failure of a restart table: when, and the expected decision.
struct failure_step {
  long long at;      // ms
  bool restart;      // expected
  long long delay;   // ms, expected
};

restart_config kind_config(restart_kind kind) {
  restart_config cfg;
  cfg.kind = kind;
  return cfg;
}

} // namespace

TEST_CASE("restart_strategy: failure times -> decisions, per kind") {
  auto expo = [](uint32_t max_attempts, long long max_backoff_ms, long long threshold_ms) {
    restart_config cfg = kind_config(restart_kind::exponential_delay);
    cfg.initial_backoff = seconds{1};
    cfg.max_backoff = milliseconds{max_backoff_ms};
    cfg.backoff_multiplier = 2.0;
    cfg.reset_backoff_threshold = milliseconds{threshold_ms};
    cfg.max_attempts = max_attempts;
    return cfg;
  };
  auto fixed = [](uint32_t attempts) {
    restart_config cfg = kind_config(restart_kind::fixed_delay);
    cfg.attempts = attempts;
    cfg.delay = milliseconds{1500};
    return cfg;
  };
  auto rate = [](uint32_t max_failures) {
    restart_config cfg = kind_config(restart_kind::failure_rate);
    cfg.max_failures_per_interval = max_failures;
    cfg.failure_rate_interval = seconds{60};
    cfg.delay = milliseconds{500};
    return cfg;
  };
  // Rows: name, config, failures (time -> restart?, delay), restarts() at
  // the end, reason of the last decision.
  struct row {
    const char* name;
    restart_config cfg;
    std::vector<failure_step> steps;
    uint32_t restarts;
    std::string reason;
  };
  std::vector<row> rows = {
    {"none never restarts", kind_config(restart_kind::none),
     {{0, false, 0}, {100000, false, 0}}, 0, "none: restarts are disabled"},
    {"fixed-delay: `attempts` restarts, then gives up for good", fixed(3),
     {{0, true, 1500}, {10, true, 1500}, {20, true, 1500}, {30, false, 0}, {999999, false, 0}},
     3, "fixed-delay: 3 restart attempts used"},
    {"fixed-delay: 0 attempts", fixed(0), {{0, false, 0}}, 0,
     "fixed-delay: 0 restart attempts used"},
    {"fixed-delay: defaults (3 x 1s)", kind_config(restart_kind::fixed_delay),
     {{0, true, 1000}, {5000, true, 1000}, {10000, true, 1000}, {15000, false, 0}}, 3,
     "fixed-delay: 3 restart attempts used"},
    // Crash loop: each failure right after its restart (previous + delay).
    {"exponential-delay: doubles, caps, gives up after max_attempts", expo(10, 10000, 60000),
     {{0, true, 1000}, {1000, true, 2000}, {3000, true, 4000}, {7000, true, 8000},
      {15000, true, 10000}, {25000, true, 10000}, {35000, true, 10000}, {45000, true, 10000},
      {55000, true, 10000}, {65000, true, 10000}, {75000, false, 0}},
     10, "exponential-delay: 10 restart attempts without a reset (no run of 60000ms)"},
    // With the defaults (max_backoff == threshold == 60s) a crash loop still
    // gives up: the reset counts time since the restart, not since the failure.
    {"exponential-delay: defaults, crash loop", kind_config(restart_kind::exponential_delay),
     {{0, true, 1000}, {1000, true, 2000}, {3000, true, 4000}, {7000, true, 8000},
      {15000, true, 16000}, {31000, true, 32000}, {63000, true, 60000}, {123000, true, 60000},
      {183000, true, 60000}, {243000, true, 60000}, {303000, false, 0}},
     10, "exponential-delay: 10 restart attempts without a reset (no run of 60000ms)"},
    // Restarted at 1s + 2s = 3s; healthy from 3s + 60s = 63s on.
    {"exponential-delay: reset exactly at the threshold", expo(10, 60000, 60000),
     {{0, true, 1000}, {1000, true, 2000}, {63000, true, 1000}, {64000, true, 2000}},
     4, ""},
    {"exponential-delay: 1ms before the threshold, no reset", expo(10, 60000, 60000),
     {{0, true, 1000}, {1000, true, 2000}, {62999, true, 4000}, {67000, true, 8000}},
     4, ""},
    {"exponential-delay: a reset also resets the attempt count", expo(2, 60000, 10000),
     {{0, true, 1000}, {1000, true, 2000}, {13000, true, 1000}, {14000, true, 2000},
      {16000, false, 0}, {999999, false, 0}},
     4, "exponential-delay: 2 restart attempts without a reset (no run of 10000ms)"},
    {"exponential-delay: max_attempts 0", expo(0, 60000, 60000), {{0, false, 0}}, 0,
     "exponential-delay: 0 restart attempts without a reset (no run of 60000ms)"},
    {"failure-rate: a 4th failure within the interval gives up", rate(3),
     {{0, true, 500}, {10000, true, 500}, {20000, true, 500}, {30000, false, 0}},
     3, "failure-rate: 4 failures within 60000ms (at most 3 allowed)"},
    // Window [now - 60s, now]: the failure at 0 is exactly 60s old at 60s.
    {"failure-rate: a failure exactly one interval old still counts", rate(3),
     {{0, true, 500}, {10000, true, 500}, {20000, true, 500}, {60000, false, 0}},
     3, "failure-rate: 4 failures within 60000ms (at most 3 allowed)"},
    {"failure-rate: 1ms later it has slid out", rate(3),
     {{0, true, 500}, {10000, true, 500}, {20000, true, 500}, {60001, true, 500},
      {70000, false, 0}},
     4, "failure-rate: 4 failures within 60000ms (at most 3 allowed)"},
    {"failure-rate: steady failures under the rate restart forever", rate(3),
     {{0, true, 500}, {30000, true, 500}, {60000, true, 500}, {90000, true, 500},
      {120000, true, 500}, {150000, true, 500}, {180000, true, 500}},
     7, ""},
    {"failure-rate: 0 tolerated", rate(0), {{0, false, 0}}, 0,
     "failure-rate: 1 failures within 60000ms (at most 0 allowed)"},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    restart_strategy s{r.cfg};
    restart_decision last;
    for (size_t i = 0; i < r.steps.size(); ++i) {
      auto& st = r.steps[i];
      CAPTURE(i);
      CAPTURE(st.at);
      last = s.on_failure(at_ms(st.at));
      CHECK(last.restart == st.restart);
      CHECK(last.delay == milliseconds{st.delay});
      CHECK(last.reason.empty() == st.restart);
    }
    CHECK(s.restarts() == r.restarts);
    CHECK(last.reason == r.reason);
  }
}

TEST_CASE("restart_config: defaults as documented") {
  restart_config cfg;
  CHECK(cfg.kind == restart_kind::exponential_delay);
  CHECK(cfg.attempts == 3);
  CHECK(cfg.delay == seconds{1});
  CHECK(cfg.initial_backoff == seconds{1});
  CHECK(cfg.max_backoff == seconds{60});
  CHECK(cfg.backoff_multiplier == 2.0);
  CHECK(cfg.reset_backoff_threshold == seconds{60});
  CHECK(cfg.max_attempts == 10);
  CHECK(cfg.max_failures_per_interval == 3);
  CHECK(cfg.failure_rate_interval == seconds{60});
  backoff_config b;
  CHECK(b.initial == milliseconds{50});
  CHECK(b.max == seconds{10});
  CHECK(b.multiplier == 2.0);
  CHECK(b.jitter == jitter_mode::full);
  retry_budget_config rb;
  CHECK(rb.budget_percent == 20.0);
  CHECK(rb.min_retry_concurrency == 3);
}
