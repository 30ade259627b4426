// The circuit breaker policy as tables: opening thresholds, windows, open
// periods, half-open probes, late answers and stuck probes.

#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

#include "policies/circuit_breaker.hpp"

using namespace sinfer;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

breaker_config small_breaker() {
  breaker_config c;
  c.window_calls = 10;
  c.minimum_calls = 4;
  c.failure_rate = 0.5;
  c.open_duration = seconds{1};
  c.open_growth = 2.0;
  c.max_open_duration = seconds{5};
  c.half_open_probes = 2;
  c.half_open_max_wait = seconds{3};
  return c;
}

/// Feeds outcomes ('F' failed, 'S' succeeded, 'W' slow success) at 1 ms
/// steps from `start`; returns the state after each one.
std::string feed(circuit_breaker& b, const std::string& outcomes, long long start_ms = 0) {
  std::string states;
  long long t = start_ms;
  for (char c : outcomes) {
    auto p = b.acquire(at_ms(t));
    if (p.allowed) {
      call_outcome o{c == 'F', c == 'W' ? seconds{60} : milliseconds{1}};
      b.record(at_ms(t), p.epoch, o);
    }
    states.push_back(b.state() == breaker_state::closed ? 'c' : b.state() == breaker_state::open ? 'o' : 'h');
    ++t;
  }
  return states;
}

} // namespace

TEST_CASE("breaker: opens at the failure rate once minimum calls are in the window") {
  struct row {
    std::string outcomes;
    std::string states;
  };
  std::vector<row> rows = {
    {"FFF", "ccc"},               // below minimum calls
    {"FFFF", "ccco"},             // 4/4 failed
    {"SSFF", "ccco"},             // 2/4 = 0.5 >= 0.5
    {"SSSF", "cccc"},             // 1/4
    {"SSSFF", "ccccc"},           // 2/5 < 0.5
    {"SSSFFF", "ccccco"},         // 3/6
    {"SSSSSSSSSSFFFFF", "ccccccccccccccc"}, // window of 10: 5/10 at the last
  };
  rows.back().states.back() = 'o';
  for (auto& r : rows) {
    CAPTURE(r.outcomes);
    circuit_breaker b{small_breaker()};
    CHECK(feed(b, r.outcomes) == r.states);
  }
}

TEST_CASE("breaker: the count window forgets the oldest outcomes") {
  // 10 failures would open; with successes pushing them out of the window
  // of 10, a failure rate under 0.5 keeps it closed.
  auto cfg = small_breaker();
  cfg.minimum_calls = 10;
  circuit_breaker b{cfg};
  CHECK(feed(b, "FFFFSSSSSSSSSSFFFF") == std::string(18, 'c'));
  CHECK(feed(b, "F", 100) == "o"); // window: SSSSSSFFFF + F -> 5/10
}

TEST_CASE("breaker: slow calls open it at the slow-call rate") {
  auto cfg = small_breaker();
  cfg.slow_call_rate = 0.75;
  cfg.slow_call_duration = seconds{10};
  circuit_breaker b{cfg};
  CHECK(feed(b, "WWSW") == "ccco");
}

TEST_CASE("breaker: the time window counts the last window_duration only") {
  auto cfg = small_breaker();
  cfg.window = window_kind::time;
  cfg.window_duration = seconds{10};
  cfg.minimum_calls = 4;
  // Rows: outcomes at the given ms, expected state at the end.
  struct row {
    std::vector<std::pair<long long, char>> events;
    breaker_state end;
  };
  std::vector<row> rows = {
    {{{0, 'F'}, {1, 'F'}, {2, 'F'}, {3, 'F'}}, breaker_state::open},
    // The first two failures age out (buckets of 1 s, window 10 s).
    {{{0, 'F'}, {1, 'F'}, {11'000, 'F'}, {11'001, 'S'}, {11'002, 'S'}}, breaker_state::closed},
    {{{0, 'F'}, {1, 'F'}, {9'000, 'F'}, {9'001, 'S'}}, breaker_state::open},
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    CAPTURE(i);
    circuit_breaker b{cfg};
    for (auto [t, c] : rows[i].events) {
      auto p = b.acquire(at_ms(t));
      if (p.allowed)
        b.record(at_ms(t), p.epoch, call_outcome{c == 'F', milliseconds{1}});
    }
    CHECK(b.state() == rows[i].end);
  }
}

TEST_CASE("breaker: open period grows on each reopening and resets on close") {
  circuit_breaker b{small_breaker()};
  // Rows: what happens, expected state and open_until after it.
  feed(b, "FFFF");
  REQUIRE(b.state() == breaker_state::open);
  CHECK(b.open_until() == at_ms(3) + seconds{1});
  CHECK_FALSE(b.acquire(at_ms(1002)).allowed);
  // Half-open at 1003; a failed probe reopens for 2 s.
  auto p = b.acquire(at_ms(1003));
  CHECK(p.allowed);
  CHECK(p.probe);
  b.record(at_ms(1010), p.epoch, call_outcome{true, {}});
  CHECK(b.state() == breaker_state::open);
  CHECK(b.open_until() == at_ms(1010) + seconds{2});
  // Again: 4 s, then capped at 5 s.
  p = b.acquire(at_ms(3010));
  b.record(at_ms(3010), p.epoch, call_outcome{true, {}});
  CHECK(b.open_until() == at_ms(3010) + seconds{4});
  p = b.acquire(at_ms(7010));
  b.record(at_ms(7010), p.epoch, call_outcome{true, {}});
  CHECK(b.open_until() == at_ms(7010) + seconds{5});
  // Two good probes close it; the next opening is 1 s again.
  auto p1 = b.acquire(at_ms(12010));
  auto p2 = b.acquire(at_ms(12010));
  auto p3 = b.acquire(at_ms(12010));
  CHECK(p1.allowed);
  CHECK(p2.allowed);
  CHECK_FALSE(p3.allowed); // only two probes
  b.record(at_ms(12020), p1.epoch, call_outcome{false, {}});
  CHECK(b.state() == breaker_state::half_open);
  b.record(at_ms(12021), p2.epoch, call_outcome{false, {}});
  CHECK(b.state() == breaker_state::closed);
  CHECK(b.openings() == 0);
  feed(b, "FFFF", 20'000);
  CHECK(b.open_until() == at_ms(20'003) + seconds{1});
}

TEST_CASE("breaker: late answers from an earlier epoch do not count") {
  struct row {
    const char* name;
    bool late_failed;
    breaker_state expected;
  };
  // Calls started while closed answer after the breaker opened and turned
  // half-open: neither a late failure nor a late success is a probe result.
  std::vector<row> rows = {
    {"late success in half-open", false, breaker_state::half_open},
    {"late failure in half-open", true, breaker_state::half_open},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    circuit_breaker b{small_breaker()};
    auto early = b.acquire(at_ms(0));
    feed(b, "FFFF", 1);
    REQUIRE(b.state() == breaker_state::open);
    b.tick(at_ms(5000));
    REQUIRE(b.state() == breaker_state::half_open);
    CHECK_FALSE(b.record(at_ms(5001), early.epoch, call_outcome{r.late_failed, {}}).has_value());
    CHECK(b.state() == r.expected);
    CHECK(b.probes_left() == 2);
  }
}

TEST_CASE("breaker: half-open races: probes answering in any order decide once") {
  // Two probes; orders of their answers (S ok, F failed).
  struct row {
    std::string answers;
    breaker_state end;
    int transitions;
  };
  std::vector<row> rows = {
    {"SS", breaker_state::closed, 1},
    {"SF", breaker_state::open, 1},
    {"FS", breaker_state::open, 1}, // the success after reopening is stale
    {"FF", breaker_state::open, 1}, // the second failure is stale
  };
  for (auto& r : rows) {
    CAPTURE(r.answers);
    circuit_breaker b{small_breaker()};
    feed(b, "FFFF");
    b.tick(at_ms(2000));
    auto p1 = b.acquire(at_ms(2000));
    auto p2 = b.acquire(at_ms(2000));
    int transitions = 0;
    if (b.record(at_ms(2001), p1.epoch, call_outcome{r.answers[0] == 'F', {}}))
      ++transitions;
    if (b.record(at_ms(2002), p2.epoch, call_outcome{r.answers[1] == 'F', {}}))
      ++transitions;
    CHECK(b.state() == r.end);
    CHECK(transitions == r.transitions);
  }
}

TEST_CASE("breaker: stuck half-open probes again after half_open_max_wait, without a penalty") {
  circuit_breaker b{small_breaker()};
  feed(b, "FFFF");
  b.tick(at_ms(1003));
  REQUIRE(b.state() == breaker_state::half_open);
  // No probe started: nothing is stuck, no deadline.
  CHECK_FALSE(b.next_deadline().has_value());
  CHECK_FALSE(b.tick(at_ms(100'000)).has_value());
  auto p = b.acquire(at_ms(100'000));
  REQUIRE(p.allowed);
  CHECK(b.next_deadline() == at_ms(103'000));
  CHECK_FALSE(b.tick(at_ms(102'999)).has_value());
  auto t = b.tick(at_ms(103'000));
  REQUIRE(t.has_value());
  CHECK(t->from == breaker_state::half_open);
  CHECK(t->to == breaker_state::half_open);
  CHECK(t->epoch == p.epoch + 1);
  // Fresh probes; the openings count did not grow.
  CHECK(b.probes_left() == 2);
  CHECK(b.openings() == 1);
  // The silent probe's answer, when it finally comes, is stale.
  CHECK_FALSE(b.record(at_ms(103'500), p.epoch, call_outcome{false, {}}).has_value());
  CHECK(b.probes_left() == 2);
  // The new probes decide: two good ones close it.
  auto q1 = b.acquire(at_ms(104'000));
  auto q2 = b.acquire(at_ms(104'000));
  b.record(at_ms(104'001), q1.epoch, call_outcome{false, {}});
  b.record(at_ms(104'002), q2.epoch, call_outcome{false, {}});
  CHECK(b.state() == breaker_state::closed);
}

TEST_CASE("breaker: summaries from many subtasks open it like single outcomes") {
  struct row {
    std::vector<std::array<uint64_t, 3>> summaries; // calls, failures, slow
    breaker_state end;
  };
  std::vector<row> rows = {
    {{{2, 2, 0}, {1, 1, 0}}, breaker_state::closed},          // 3 calls < minimum
    {{{2, 2, 0}, {2, 0, 0}}, breaker_state::open},            // 2/4
    {{{3, 1, 0}, {3, 1, 0}}, breaker_state::closed},          // 2/6
    {{{10, 0, 0}, {6, 6, 0}}, breaker_state::open},           // window 10 keeps 4 ok + 6 failed
    {{{10, 0, 0}, {4, 4, 0}}, breaker_state::closed},         // 4 of 10 in the window
    {{{13, 1, 0}}, breaker_state::closed},                    // 1 of 10 < 0.5
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    CAPTURE(i);
    circuit_breaker b{small_breaker()};
    for (auto& s : rows[i].summaries)
      b.record_summary(at_ms(1), b.epoch(), s[0], s[1], s[2]);
    CHECK(b.state() == rows[i].end);
  }
}

TEST_CASE("breaker: a summary's failures are its newest calls (not evicted by its own successes)") {
  auto cfg = small_breaker();
  cfg.failure_rate = 0.1;
  circuit_breaker b{cfg};
  // 13 calls, 1 failure, window of 10: the failure must stay in the window.
  CHECK(b.record_summary(at_ms(1), b.epoch(), 13, 1, 0).has_value());
  CHECK(b.state() == breaker_state::open);
}

TEST_CASE("breaker: force follows the job tier's decisions") {
  circuit_breaker b{small_breaker()};
  auto t = b.force(at_ms(0), breaker_state::open, at_ms(7000));
  REQUIRE(t.has_value());
  CHECK(t->open_for == seconds{7});
  CHECK_FALSE(b.acquire(at_ms(6999)).allowed);
  CHECK(b.force(at_ms(10), breaker_state::half_open).has_value());
  CHECK(b.probes_left() == 2);
  CHECK(b.force(at_ms(20), breaker_state::closed).has_value());
  CHECK(b.acquire(at_ms(21)).allowed);
  CHECK_FALSE(b.force(at_ms(22), breaker_state::closed).has_value());
}
