// Per-record attempts (exactly one outcome under every interleaving),
// batch closing, and the deadline queue, as tables.

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "policies/batching.hpp"
#include "policies/deadline_queue.hpp"
#include "policies/record_attempts.hpp"

using namespace sinfer;
using std::chrono::milliseconds;

namespace {

const call_error ok{};
const call_error timeout_error{error_class::retryable, "timeout.attempt", milliseconds{0}};
const call_error server_error{error_class::retryable, "HTTP 503", milliseconds{0}};

/// One event of a record's life as an operator sees it.
enum class ev { response1, attempt_timeout1, total_timeout, retry_timer, response2 };

const char* name(ev e) {
  switch (e) {
    case ev::response1: return "response(1)";
    case ev::attempt_timeout1: return "attempt-timeout(1)";
    case ev::total_timeout: return "total-timeout";
    case ev::retry_timer: return "retry-timer";
    case ev::response2: return "response(2)";
  }
  return "?";
}

/// Drives the operator's side of attempt_state through `order` and returns
/// the outcomes it emitted ("S" success, "F" failure), plus the attempts sent.
struct drive_result {
  std::string outcomes;
  uint32_t sent = 0;
};

drive_result drive(const std::vector<ev>& order, const call_error& first_response) {
  timeout_config t;
  t.total = milliseconds{1000};
  attempt_state st;
  admit_record(st, at_ms(0), t);
  drive_result r;
  begin_attempt(st);
  r.sent = 1;
  // Virtual time moves forward with each event: 100 ms apart, except that
  // the total timeout happens at the deadline.
  long long now = 0;
  auto outcome = [&](attempt_action a) {
    if (a == attempt_action::success)
      r.outcomes += "S";
    else if (a == attempt_action::fail)
      r.outcomes += "F";
    else if (a == attempt_action::retry) {
      if (!schedule_retry(st, at_ms(now + 10), milliseconds{10}))
        r.outcomes += "F";
    }
  };
  for (auto e : order) {
    now += 100;
    switch (e) {
      case ev::response1: outcome(on_result(st, 3, 1, first_response, at_ms(now))); break;
      case ev::attempt_timeout1: outcome(on_result(st, 3, 1, timeout_error, at_ms(now))); break;
      case ev::total_timeout:
        now = std::max(now, 1000LL);
        if (on_total_timeout(st, at_ms(now)))
          r.outcomes += "F";
        break;
      case ev::retry_timer:
        if (on_retry_timer(st, st.attempt, at_ms(now))) {
          begin_attempt(st);
          ++r.sent;
        }
        break;
      case ev::response2:
        // The second attempt's answer exists only if it was sent.
        if (r.sent >= 2)
          outcome(on_result(st, 3, 2, ok, at_ms(now)));
        break;
    }
  }
  return r;
}

} // namespace

TEST_CASE("attempts: every interleaving of response, timeouts and retry timer has one outcome") {
  // All 120 orders of five events, for a first response that succeeds and
  // one that fails retryably. Exactly one outcome each time; and the outcome
  // is the right one for the first decisive event.
  for (auto first : {ok, server_error}) {
    std::vector<ev> order = {ev::response1, ev::attempt_timeout1, ev::total_timeout, ev::retry_timer,
                             ev::response2};
    std::sort(order.begin(), order.end());
    int permutations = 0;
    do {
      ++permutations;
      std::string trace;
      for (auto e : order)
        trace += std::string{name(e)} + " ";
      CAPTURE(trace);
      CAPTURE(first.ok());
      auto r = drive(order, first);
      REQUIRE(r.outcomes.size() == 1);
      // Expected: success iff a successful answer arrives before the total
      // timeout: response(1) when it succeeds, or response(2) after an error
      // of attempt 1 and the retry timer.
      auto pos = [&](ev e) { return std::find(order.begin(), order.end(), e) - order.begin(); };
      bool first_ok_in_time = first.ok() && pos(ev::response1) < pos(ev::total_timeout);
      auto first_error = first.ok() ? pos(ev::attempt_timeout1)
                                    : std::min(pos(ev::response1), pos(ev::attempt_timeout1));
      bool retry_ok_in_time = pos(ev::retry_timer) > first_error && pos(ev::response2) > pos(ev::retry_timer)
                              && pos(ev::response2) < pos(ev::total_timeout);
      CHECK(r.outcomes == (first_ok_in_time || retry_ok_in_time ? "S" : "F"));
      CHECK(r.sent <= 2);
    } while (std::next_permutation(order.begin(), order.end()));
    CHECK(permutations == 120);
  }
}

TEST_CASE("attempts: retries stop at max attempts, fatal-record never retries") {
  struct row {
    const char* name;
    std::vector<call_error> errors;
    uint32_t max_attempts;
    std::vector<attempt_action> expected;
  };
  call_error fatal{error_class::fatal_record, "bad input", milliseconds{0}};
  call_error limited{error_class::rate_limited, "429", milliseconds{2000}};
  call_error endpoint{error_class::fatal_endpoint, "401", milliseconds{0}};
  std::vector<row> rows = {
    {"success first", {ok}, 3, {attempt_action::success}},
    {"two errors then success", {server_error, server_error, ok}, 3,
     {attempt_action::retry, attempt_action::retry, attempt_action::success}},
    {"three errors", {server_error, server_error, server_error}, 3,
     {attempt_action::retry, attempt_action::retry, attempt_action::fail}},
    {"one attempt only", {server_error}, 1, {attempt_action::fail}},
    {"fatal record", {fatal}, 3, {attempt_action::fail}},
    {"rate limited retries", {limited, ok}, 3, {attempt_action::retry, attempt_action::success}},
    {"endpoint fatal: another endpoint may serve", {endpoint, ok}, 3,
     {attempt_action::retry, attempt_action::success}},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    attempt_state st;
    admit_record(st, at_ms(0), timeout_config{});
    std::vector<attempt_action> got;
    long long now = 0;
    for (auto& e : r.errors) {
      auto a = begin_attempt(st);
      now += 10;
      auto d = on_result(st, r.max_attempts, a, e, at_ms(now));
      got.push_back(d);
      if (d == attempt_action::retry) {
        REQUIRE(schedule_retry(st, at_ms(now + 5), milliseconds{5}));
        CHECK_FALSE(on_retry_timer(st, a, at_ms(now + 4)));
        CHECK(on_retry_timer(st, a, at_ms(now + 5)));
      }
    }
    CHECK(got == r.expected);
  }
}

TEST_CASE("attempts: a retry that would start after the deadline fails now") {
  timeout_config t;
  t.total = milliseconds{500};
  attempt_state st;
  admit_record(st, at_ms(0), t);
  auto a = begin_attempt(st);
  REQUIRE(on_result(st, 5, a, server_error, at_ms(100)) == attempt_action::retry);
  CHECK_FALSE(schedule_retry(st, at_ms(500), milliseconds{400}));
  CHECK(st.phase == record_phase::done);
  CHECK_FALSE(on_total_timeout(st, at_ms(500))); // already decided
}

TEST_CASE("batching: when a batch closes and why") {
  batch_config linger;
  linger.max_size = 8;
  linger.max_delay = milliseconds{5};
  batch_config eager;
  eager.max_size = 8;
  struct row {
    const char* name;
    batch_config cfg;
    batch_queue_view q;
    bool slot_free, flushing;
    long long now;
    bool dispatch;
    uint32_t size;
    batch_close reason;
    long long wake; // -1: none
  };
  std::vector<row> rows = {
    {"empty queue", eager, {0, 0, at_ms(0)}, true, false, 0, false, 0, batch_close::slot_free, -1},
    {"light load: one record, slot free, no wait", eager, {1, 1, at_ms(0)}, true, false, 0, true, 1,
     batch_close::slot_free, -1},
    {"no slot: accumulate", eager, {5, 5, at_ms(0)}, false, false, 100, false, 0, batch_close::slot_free, -1},
    {"slot frees with 5 queued", eager, {5, 5, at_ms(0)}, true, false, 100, true, 5, batch_close::slot_free, -1},
    {"queue over max size", eager, {20, 20, at_ms(0)}, true, false, 100, true, 8, batch_close::full, -1},
    {"exactly max size", eager, {8, 8, at_ms(0)}, true, false, 0, true, 8, batch_close::full, -1},
    {"byte cap stops early", eager, {6, 3, at_ms(0)}, true, false, 0, true, 3, batch_close::full, -1},
    {"oversized record alone", eager, {6, 0, at_ms(0)}, true, false, 0, true, 1, batch_close::full, -1},
    {"linger: wait for peers", linger, {2, 2, at_ms(10)}, true, false, 12, false, 2, batch_close::slot_free, 15},
    {"linger over: deadline", linger, {2, 2, at_ms(10)}, true, false, 15, true, 2, batch_close::deadline, -1},
    {"linger but full", linger, {8, 8, at_ms(10)}, true, false, 10, true, 8, batch_close::full, -1},
    {"linger, flush", linger, {2, 2, at_ms(10)}, true, true, 11, true, 2, batch_close::flush, -1},
    {"flush without slot waits", linger, {2, 2, at_ms(10)}, false, true, 11, false, 0, batch_close::slot_free, -1},
    {"linger does not run without a slot", linger, {2, 2, at_ms(10)}, false, false, 50, false, 0,
     batch_close::slot_free, -1},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    auto d = decide_batch(r.cfg, r.q, r.slot_free, r.flushing, at_ms(r.now));
    CHECK(d.dispatch == r.dispatch);
    if (r.dispatch) {
      CHECK(d.size == r.size);
      CHECK(d.reason == r.reason);
    }
    CHECK(d.wake_at.has_value() == (r.wake >= 0));
    if (r.wake >= 0 && d.wake_at)
      CHECK(*d.wake_at == at_ms(r.wake));
  }
}

TEST_CASE("deadline_queue: pops due entries in time then push order") {
  deadline_queue<int> q;
  q.push(at_ms(30), 1);
  q.push(at_ms(10), 2);
  q.push(at_ms(20), 3);
  q.push(at_ms(10), 4);
  CHECK(q.next() == at_ms(10));
  CHECK(q.pop_due(at_ms(9)).empty());
  CHECK(q.pop_due(at_ms(20)) == std::vector<int>{2, 4, 3});
  CHECK(q.next() == at_ms(30));
  CHECK(q.pop_due(at_ms(100)) == std::vector<int>{1});
  CHECK_FALSE(q.next().has_value());
}

TEST_CASE("attempts: retry timers of other attempts, or early, do nothing") {
  struct row {
    const char* name;
    uint32_t timer_attempt; // the attempt the timer was set for
    long long fires_at;     // ms; the retry is due at 110
    bool resend;
  };
  std::vector<row> rows = {
    {"due, current attempt", 1, 110, true},
    {"late, current attempt", 1, 500, true},
    {"early", 1, 109, false},
    {"timer of an older attempt", 0, 110, false},
    {"timer of a newer attempt", 2, 110, false},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    attempt_state st;
    admit_record(st, at_ms(0), timeout_config{});
    auto a = begin_attempt(st);
    REQUIRE(a == 1);
    REQUIRE(on_result(st, 3, a, server_error, at_ms(100)) == attempt_action::retry);
    REQUIRE(schedule_retry(st, at_ms(110), milliseconds{10}));
    CHECK(on_retry_timer(st, r.timer_attempt, at_ms(r.fires_at)) == r.resend);
  }
  // Once the record is decided, no timer resends it.
  attempt_state st;
  admit_record(st, at_ms(0), timeout_config{});
  auto a = begin_attempt(st);
  on_result(st, 3, a, server_error, at_ms(100));
  schedule_retry(st, at_ms(110), milliseconds{10});
  CHECK(on_result(st, 3, a, ok, at_ms(105)) == attempt_action::success); // a late success of attempt 1
  CHECK_FALSE(on_retry_timer(st, a, at_ms(110)));
}
