// Routing and HTTP classification policies as tables.

#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "policies/http_status.hpp"
#include "policies/routing.hpp"

using namespace sinfer;
using std::chrono::milliseconds;

TEST_CASE("http: status codes and failures to answer map to error classes") {
  const int64_t now = 1445412480; // Wed, 21 Oct 2015 07:28:00 GMT
  struct row {
    int status;
    const char* retry_after;
    error_class cls;
    long long wait_ms;
  };
  std::vector<row> rows = {
    {200, "", error_class::none, 0},
    {204, "", error_class::none, 0},
    {0, "", error_class::retryable, 0},        // connect refused, reset, read timeout
    {408, "", error_class::retryable, 0},
    {429, "3", error_class::rate_limited, 3000},
    {429, "", error_class::rate_limited, 1000},        // no Retry-After: 1 s
    {429, "soon", error_class::rate_limited, 1000},    // unreadable: 1 s
    {429, "Wed, 21 Oct 2015 07:28:30 GMT", error_class::rate_limited, 30000},
    {503, "2", error_class::rate_limited, 2000},
    {503, "", error_class::retryable, 0},
    {500, "", error_class::retryable, 0},
    {502, "5", error_class::retryable, 0},             // Retry-After only counts on 429/503
    {504, "", error_class::retryable, 0},
    {401, "", error_class::fatal_endpoint, 0},
    {403, "", error_class::fatal_endpoint, 0},
    {404, "", error_class::fatal_endpoint, 0},
    {400, "", error_class::fatal_record, 0},
    {413, "", error_class::fatal_record, 0},
    {422, "", error_class::fatal_record, 0},
    {301, "", error_class::fatal_endpoint, 0},         // redirects are not followed: the URL is wrong
    {308, "", error_class::fatal_endpoint, 0},
    {100, "", error_class::fatal_endpoint, 0},
    {429, "9999999999", error_class::rate_limited, 600000}, // capped at 10 min
    {503, "Fri, 01 Jan 2100 00:00:00 GMT", error_class::rate_limited, 600000},
  };
  for (auto& r : rows) {
    CAPTURE(r.status);
    CAPTURE(r.retry_after);
    auto e = classify_http(r.status, r.retry_after, now, "detail");
    CHECK(e.cls == r.cls);
    CHECK(e.retry_after == milliseconds{r.wait_ms});
    if (r.status != 0 && r.cls != error_class::none)
      CHECK(e.message == "HTTP " + std::to_string(r.status) + ": detail");
  }
  CHECK(classify_http(0, "", now, "connection refused").message == "no answer: connection refused");
}

TEST_CASE("http: Retry-After as seconds or an HTTP date") {
  const int64_t now = 1445412480; // Wed, 21 Oct 2015 07:28:00 GMT
  struct row {
    const char* value;
    long long ms; // -1: unreadable
  };
  std::vector<row> rows = {
    {"0", 0},
    {" 120 ", 120000},
    {"Wed, 21 Oct 2015 07:29:00 GMT", 60000},
    {"Wed, 21 Oct 2015 07:27:00 GMT", 0}, // in the past
    {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
    {"Sun, 06 Nov 1994 08:49:37 GMT", 0},
    {"Mon, 29 Feb 2016 00:00:00 GMT", (1456704000LL - now) * 1000},
    {"-5", -1},
    {"1.5", -1},
    {"", -1},
    {"Wed, 21 Oct 2015 07:29:00 UTC", -1},
    {"Wed, 21 Foo 2015 07:29:00 GMT", -1},
    {"Wed, 21 Oct 2015 25:29:00 GMT", -1},
  };
  for (auto& r : rows) {
    CAPTURE(r.value);
    auto v = parse_retry_after(r.value, now);
    if (r.ms < 0)
      CHECK_FALSE(v.has_value());
    else {
      REQUIRE(v.has_value());
      CHECK(v->count() == r.ms);
    }
  }
}

namespace {

std::vector<endpoint_view> views(std::initializer_list<endpoint_view> v) {
  return v;
}

} // namespace

TEST_CASE("routing: round-robin, primary-backup and weighted, skipping ineligible endpoints") {
  endpoint_view ok{true, 0, 4, 0, 0, 1};
  endpoint_view open{false, 0, 4, 0, 0, 1};
  endpoint_view full{true, 4, 4, 0, 0, 1};
  struct row {
    const char* name;
    routing_strategy strategy;
    std::vector<endpoint_view> eps;
    std::vector<int> picks;
  };
  std::vector<row> rows = {
    {"round-robin", routing_strategy::round_robin, views({ok, ok, ok}), {0, 1, 2, 0, 1, 2}},
    {"round-robin skips open and full", routing_strategy::round_robin, views({ok, open, full, ok}), {0, 3, 0, 3}},
    {"none eligible", routing_strategy::round_robin, views({open, full}), {-1, -1}},
    {"primary-backup", routing_strategy::primary_backup, views({ok, ok}), {0, 0, 0}},
    {"primary-backup, primary open", routing_strategy::primary_backup, views({open, full, ok}), {2, 2}},
    {"weighted 3:1", routing_strategy::weighted,
     views({{true, 0, 9, 0, 0, 3}, {true, 0, 9, 0, 0, 1}}), {0, 0, 1, 0, 0, 0, 1, 0}},
    {"weighted 5:1:1 (nginx order)", routing_strategy::weighted,
     views({{true, 0, 9, 0, 0, 5}, {true, 0, 9, 0, 0, 1}, {true, 0, 9, 0, 0, 1}}), {0, 0, 1, 0, 2, 0, 0}},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    router rt{r.strategy};
    std::vector<int> got;
    for (size_t i = 0; i < r.picks.size(); ++i)
      got.push_back(rt.pick(r.eps));
    CHECK(got == r.picks);
  }
}

TEST_CASE("routing: load-aware picks the lower expected wait of two, never an ineligible one") {
  // Two endpoints: the fast one (2 ms) must win every pair it is in.
  router rt{routing_strategy::load_aware, 7};
  auto eps = views({{true, 2, 8, 0, 10, 1}, {true, 2, 8, 0, 2, 1}});
  for (int i = 0; i < 100; ++i)
    CHECK(rt.pick(eps) == 1);
  // A deep server queue outweighs a lower latency.
  eps = views({{true, 1, 8, 0, 10, 1}, {true, 1, 8, 50, 2, 1}});
  for (int i = 0; i < 100; ++i)
    CHECK(rt.pick(eps) == 0);
  // Failing calls count against an endpoint: wait / (1 - failure rate).
  eps = views({{true, 3, 8, 0, 2, 1, 0.0}, {true, 0, 8, 0, 2, 1, 0.8}});
  CHECK(router::score(eps[0]) == doctest::Approx(8.0));
  CHECK(router::score(eps[1]) == doctest::Approx(10.0));
  for (int i = 0; i < 100; ++i)
    CHECK(rt.pick(eps) == 0);
  eps[1].failure_rate = 0.5; // 4 ms: now the better one
  for (int i = 0; i < 100; ++i)
    CHECK(rt.pick(eps) == 1);
  eps[1].failure_rate = 1.0; // capped: 100 x, never infinite
  CHECK(router::score(eps[1]) == doctest::Approx(200.0));
  // Open or full endpoints are never picked; one eligible: always it.
  eps = views({{false, 0, 8, 0, 1, 1}, {true, 8, 8, 0, 1, 1}, {true, 7, 8, 0, 50, 1}});
  for (int i = 0; i < 100; ++i)
    CHECK(rt.pick(eps) == 2);
  eps = views({{false, 0, 8, 0, 1, 1}, {true, 8, 8, 0, 1, 1}});
  CHECK(rt.pick(eps) == -1);
}

TEST_CASE("routing: load-aware waits for a faster endpoint rather than queue at a slower one, never leaving a "
          "free server slot idle") {
  // k = 4 slots each; a batch takes 18 ms at "fast" (0), 54 ms at "slow" (1).
  auto ep = [](bool slot, uint32_t in_flight, double unqueued_ms) {
    endpoint_view v;
    v.limit = UINT32_MAX;
    v.slot = slot;
    v.in_flight = in_flight;
    v.servers = 4;
    v.unqueued_ms = unqueued_ms;
    v.latency_ms = 99; // counts only when unqueued_ms is unknown (or higher)
    return v;
  };
  struct row {
    const char* what;
    endpoint_view fast, slow;
    uint32_t batches;
    int pick;
    double fast_score, slow_score;
  };
  const std::vector<row> rows{
    // Both have a free slot where the batch runs at once: the sooner answer.
    {"both free", ep(true, 1, 18), ep(true, 0, 54), 1, 0, 18, 54},
    // Slow's slot would queue the batch behind its 4 calls: wait for fast
    // (its 4 calls: the batch is the 5th, 18 x 5 / 4).
    {"slow would queue", ep(false, 4, 18), ep(true, 4, 54), 1, 0, 22.5, 67.5},
    // ... unless the caller's backlog would wait longer at fast than the
    // batch at slow: 10 batches: 18 x 14 / 4 = 63 < 67.5; 12: 72 > 67.5.
    {"backlog of 10", ep(false, 4, 18), ep(true, 4, 54), 10, 0, 63, 67.5},
    {"backlog of 12", ep(false, 4, 18), ep(true, 4, 54), 12, 1, 72, 67.5},
    // A free slot where the batch runs at once beats waiting, however much
    // sooner the other would answer: no server capacity left idle.
    {"slow free", ep(false, 4, 18), ep(true, 3, 54), 1, 1, 22.5, 54},
    // Unknown unqueued latency: the smoothed latency stands in.
    {"unknown S", ep(false, 4, 0), ep(true, 4, 54), 1, 1, 99 * 1.25, 67.5},
  };
  for (auto& r : rows) {
    CAPTURE(r.what);
    CHECK(router::score(r.fast, r.batches) == doctest::Approx(r.fast_score));
    CHECK(router::score(r.slow, r.batches) == doctest::Approx(r.slow_score));
    router rt{routing_strategy::load_aware, 3};
    for (int i = 0; i < 20; ++i)
      CHECK(rt.pick({r.fast, r.slow}, r.batches) == r.pick);
  }
  // A free slot that runs the batch at once is used even when the drawn
  // pair has no slot: with three endpoints the pair (0, 1) comes up a third
  // of the time, and the batch still goes to 2.
  int pair_drawn = 0;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    router three{routing_strategy::load_aware, seed};
    CHECK(three.pick({ep(false, 4, 18), ep(false, 4, 18), ep(true, 0, 54)}) == 2);
    // The same draw without a free slot anywhere, 2 the best and 0 better
    // than 1: 0 wins only when the pair (0, 1) was drawn, the case where
    // the check above needs the fallback.
    router control{routing_strategy::load_aware, seed};
    pair_drawn += control.pick({ep(false, 4, 20), ep(false, 4, 22), ep(false, 4, 18)}) == 0 ? 1 : 0;
  }
  CHECK(pair_drawn > 0);
  // The latency without queueing does not fade while the endpoint is idle;
  // the smoothed latency does: the lower one counts, so an endpoint that
  // looked slow once gets a batch again (here 10 ms faded from 99).
  auto idle = ep(true, 0, 54);
  idle.latency_ms = 10;
  CHECK(router::score(idle) == doctest::Approx(10.0));
  // Neither has a slot: the pick names the one to wait for.
  router rt{routing_strategy::load_aware, 3};
  CHECK(rt.pick({ep(false, 4, 18), ep(false, 4, 54)}) == 0);
  // Servers unknown (1): every call in flight is ahead, (calls + 1) x latency.
  endpoint_view plain;
  plain.in_flight = 3;
  plain.latency_ms = 2;
  CHECK(router::score(plain) == doctest::Approx(8.0));
  plain.slot = false;
  CHECK(router::score(plain, 5) == doctest::Approx(16.0));
}

TEST_CASE("routing: by finish time, scores within 10% are a tie won by the endpoint with more of its slots free") {
  // Idle or nearly: calls below the server's 4 slots cost nothing by
  // finish time, so only latency noise told these apart before.
  auto ep = [](uint32_t in_flight, double unqueued_ms) {
    endpoint_view v;
    v.limit = UINT32_MAX;
    v.in_flight = in_flight;
    v.servers = 4;
    v.unqueued_ms = unqueued_ms;
    v.latency_ms = 99;
    return v;
  };
  struct row {
    const char* what;
    endpoint_view a, b;
    int pick; // -1: either, by the draw
  };
  const std::vector<row> rows{
    {"5% apart, b emptier", ep(2, 10), ep(0, 10.5), 1},
    {"5% apart, a emptier", ep(0, 10.5), ep(2, 10), 0},
    {"9% apart is still a tie", ep(1, 10), ep(0, 10.9), 1},
    {"20% apart: the sooner answer", ep(2, 10), ep(0, 12), 0},
    {"a tie on both: the draw", ep(1, 10), ep(1, 10.4), -1},
    // Beyond the slots the calls count in the score already: 5 calls
    // ahead at a (12 x 6 / 4 = 18) against 2 at b (18.5): no tie, the
    // sooner answer, though b has more slots free.
    {"a beyond its slots", ep(5, 12), ep(2, 18.5), 0},
    // At the slots (3 calls and this batch: 4 of 4) it is still a tie.
    {"a at its slots", ep(3, 10), ep(0, 10.5), 1},
  };
  for (auto& r : rows) {
    CAPTURE(r.what);
    int picks[2] = {0, 0};
    for (uint64_t seed = 1; seed <= 40; ++seed) {
      router rt{routing_strategy::load_aware, seed};
      auto p = rt.pick({r.a, r.b});
      REQUIRE((p == 0 || p == 1));
      ++picks[p];
    }
    if (r.pick >= 0) {
      CHECK(picks[r.pick] == 40);
    } else {
      CHECK(picks[0] >= 10);
      CHECK(picks[1] >= 10);
    }
  }
  // Different failure shares are no tie: routing steers around failures
  // below the breaker's rate, and a fast-failing endpoint has the fewest
  // calls in flight (10 / 0.95 = 10.5 against 10).
  auto failing = ep(0, 10);
  failing.failure_rate = 0.05;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    router rt{routing_strategy::load_aware, seed};
    CHECK(rt.pick({failing, ep(2, 10)}) == 1);
  }
  // The slot holders' score ((calls + 1) x latency; servers and latency
  // without queueing unknown) has no tie: the lower one, 10 against 10.5.
  endpoint_view held_a, held_b;
  held_a.limit = held_b.limit = UINT32_MAX;
  held_a.latency_ms = 10;
  held_b.latency_ms = 10.5;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    router rt{routing_strategy::load_aware, seed};
    CHECK(rt.pick({held_a, held_b}) == 0);
  }
}

TEST_CASE("routing: failures count against an endpoint unless its breaker is about to rule on them") {
  // The breaker opens at 50% failures over at least 10 calls. `share`: the
  // endpoint's recent failures, rate limiting included; `breaker`: those
  // its breaker counts, smoothed.
  struct row {
    double share, breaker;
    uint64_t window_calls, window_failures;
    double counted;
  };
  for (auto r : std::vector<row>{
         {0.0, 0.0, 100, 0, 0.0},   // healthy
         {0.2, 0.2, 100, 5, 0.2},   // below the breaker's rate: steer around it
         {0.49, 0.49, 0, 0, 0.49},  // below, even with nothing in the window
         {0.9, 0.0, 100, 0, 0.9},   // rate limited: the breaker does not count it, routing does
         {0.6, 0.6, 100, 10, 0.0},  // at the rate, window still full of successes: fed as healthy
         {1.0, 1.0, 100, 49, 0.0},  // one failure short of opening
         {1.0, 1.0, 100, 50, 1.0},  // the window holds the rate: the breaker rules
         {0.8, 0.8, 9, 9, 0.0},     // the rate, but fewer calls than the breaker needs
         {0.8, 0.8, 10, 9, 0.8},    // enough calls
         {0.5, 0.5, 0, 0, 0.0},     // exactly the rate, empty window
       }) {
    CAPTURE(r.share);
    CAPTURE(r.breaker);
    CAPTURE(r.window_calls);
    CAPTURE(r.window_failures);
    CHECK(router::counted_failure_rate(r.share, r.breaker, 0.5, r.window_calls, r.window_failures, 10)
          == doctest::Approx(r.counted));
  }
  // What it changes: an idle healthy endpoint against one failing at the
  // breaker's rate, both running a batch at once. Counted, the failing one
  // never wins; routed as healthy, it gets its share of the pairs (its
  // breaker then sees the calls it needs).
  router rt{routing_strategy::load_aware, 3};
  auto eps = views({{true, 0, 8, 0, 2, 1, 0.0}, {true, 0, 8, 0, 2, 1, 0.9}});
  int failing = 0;
  for (int i = 0; i < 100; ++i)
    failing += rt.pick(eps) == 1 ? 1 : 0;
  CHECK(failing == 0);
  eps[1].failure_rate = router::counted_failure_rate(0.9, 0.9, 0.5, 100, 20, 10);
  for (int i = 0; i < 100; ++i)
    failing += rt.pick(eps) == 1 ? 1 : 0;
  CHECK(failing > 20);
}

TEST_CASE("routing: calls ahead count the probe's queue depth once, whoever's queue it is") {
  endpoint_view v;
  v.servers = 4;
  v.in_flight = 6;
  // The in-band probe reads two of this caller's six calls as queued: six.
  v.queue_depth = 2;
  CHECK(router::calls_ahead(v) == doctest::Approx(6.0));
  // A server queue of 5 (other clients' too) behind its 4 running calls.
  v.queue_depth = 5;
  CHECK(router::calls_ahead(v) == doctest::Approx(9.0));
  // Fewer in flight than slots: those run, the queue is others'.
  v.in_flight = 2;
  CHECK(router::calls_ahead(v) == doctest::Approx(7.0));
  CHECK(router::runs_at_once(v)); // 2 + 1 <= 4: the probe's queue does not count here
  v.in_flight = 4;
  CHECK_FALSE(router::runs_at_once(v));
  // Servers unknown (1): the probe's queue counts on top, as it always did.
  v.servers = 1;
  v.in_flight = 3;
  v.queue_depth = 2;
  CHECK(router::calls_ahead(v) == doctest::Approx(5.0));
  // An estimate of 3.6 slots lets a 4th call go (so it can grow); 3.4 not.
  v.in_flight = 3;
  v.servers = 3.6;
  CHECK(router::runs_at_once(v));
  v.servers = 3.4;
  CHECK_FALSE(router::runs_at_once(v));
}

TEST_CASE("routing: load-aware over equal endpoints spreads evenly, the same way for the same seed") {
  auto eps = views({{true, 0, 8, 0, 5, 1}, {true, 0, 8, 0, 5, 1}, {true, 0, 8, 0, 5, 1}, {true, 0, 8, 0, 5, 1}});
  std::map<int, int> count;
  router a{routing_strategy::load_aware, 42}, b{routing_strategy::load_aware, 42};
  for (int i = 0; i < 4000; ++i) {
    auto p = a.pick(eps);
    CHECK(p == b.pick(eps));
    ++count[p];
  }
  // Ties go to the first of the pair, drawn uniformly: each about 1000.
  for (int i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(count[i] > 850);
    CHECK(count[i] < 1150);
  }
}

TEST_CASE("routing: an endpoint's latency figure fades while idle, so a once-slow endpoint is measured again") {
  using std::chrono::milliseconds;
  struct row {
    const char* name;
    long long at_ms;  // when current() is read
    bool busy;        // calls in flight then
    double expected;  // the figure (ms)
  };
  // One answer of 32 ms at t=0, half-life 2 s.
  latency_estimate est{std::chrono::seconds{2}};
  CHECK(est.current(at_ms(0), false) == 0.0); // none yet
  est.observe(32, at_ms(0));
  std::vector<row> rows = {
    {"just measured", 0, false, 32},
    {"one half-life idle", 2000, false, 16},
    {"two half-lives idle", 4000, false, 8},
    {"half a half-life", 1000, false, 32 / std::sqrt(2.0)},
    {"calls in flight: no fading", 4000, true, 32},
    {"a read before the answer's time", -5, false, 32},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    CHECK(est.current(at_ms(r.at_ms), r.busy) == doctest::Approx(r.expected));
  }
  CHECK(est.smoothed() == 32); // the metric does not fade

  // Answers close together average (1/8); the first answer after an idle of
  // a half-life or more starts afresh.
  est.observe(16, at_ms(100));
  CHECK(est.smoothed() == doctest::Approx(30));
  est.observe(4, at_ms(100 + 1999));
  CHECK(est.smoothed() == doctest::Approx(30 - 26.0 / 8));
  est.observe(4, at_ms(100 + 1999 + 2000));
  CHECK(est.smoothed() == 4);
}

TEST_CASE("routing: at light load a once-slow endpoint gets a batch again once its figure fades, then stays "
          "unused while it is still slow") {
  // A was 30 ms, B is 5 ms; one batch at a time (light load), every 100 ms.
  router rt{routing_strategy::load_aware, 3};
  latency_estimate a, b;
  a.observe(30, at_ms(0));
  b.observe(5, at_ms(0));
  std::vector<long long> picks_of_a;
  for (long long t = 100; t <= 20000; t += 100) {
    auto eps = views({{true, 0, 8, 0, a.current(at_ms(t), false), 1}, {true, 0, 8, 0, b.current(at_ms(t), false), 1}});
    int p = rt.pick(eps);
    REQUIRE(p >= 0);
    // Every call answers within the step: A is still 30 ms, B 5 ms.
    if (p == 0) {
      picks_of_a.push_back(t);
      a.observe(30, at_ms(t));
    } else {
      b.observe(5, at_ms(t));
    }
  }
  // Without fading A would never be picked (30 > 5 at equal load). With it,
  // A is tried once its figure falls under B's (30 / 2^(t/2s) < 5: after
  // log2(6) x 2 s = 5.2 s idle), its answer says it is still slow, and it
  // waits as long again (B's own figure fades 100 ms between its batches,
  // hence 5.3 s): three tries in 20 s, 197 of 200 batches at B.
  CHECK(picks_of_a == std::vector<long long>{5300, 10600, 15900});
}
