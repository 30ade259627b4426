// Load profiles (policies/load_profile.hpp) as tables: records due by t and
// the instant each record is due, per segment kind; their consistency
// (monotonic due, due(count_at(t)) <= t); pauses; the end of a profile.

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <vector>

#include "policies/load_profile.hpp"

using namespace sinfer;
using namespace std::chrono;

namespace {

using ns = nanoseconds;

constexpr double pi = 3.14159265358979323846;

/// The rate of `s` at `x` ns into it, written from the definitions (not
/// from the profile's integrals), for the numeric integration below.
double rate_of(const load_segment& s, double x) {
  switch (s.shape) {
    case load_shape::constant: return s.rate;
    case load_shape::ramp: return s.rate + (s.to - s.rate) * x / static_cast<double>(s.length.count());
    case load_shape::diurnal:
      return s.rate + (s.peak - s.rate) * (1 - std::cos(2 * pi * x / static_cast<double>(s.period.count()))) / 2;
    case load_shape::bursts: {
      auto y = std::fmod(x, static_cast<double>(s.burst_every.count()));
      return y < static_cast<double>(s.burst_length.count()) ? s.burst_rate : s.rate;
    }
  }
  return 0;
}

/// The records due by `t` over `segments`, by the midpoint rule on `step`
/// (exact for constant and ramp, close for diurnal, exact for bursts whose
/// edges fall on whole steps).
double integrate(const std::vector<load_segment>& segments, ns t, ns step_ns = milliseconds{1}) {
  double count = 0;
  int64_t start = 0;
  auto step = static_cast<double>(step_ns.count());
  for (auto& s : segments) {
    auto end = std::min(start + s.length.count(), t.count());
    for (double x = static_cast<double>(start); x < static_cast<double>(end); x += step) {
      auto w = std::min(step, static_cast<double>(end) - x);
      count += rate_of(s, x - static_cast<double>(start) + w / 2) * w / 1e9;
    }
    start += s.length.count();
    if (start >= t.count())
      break;
  }
  return count;
}

/// Every property `due` promises, for record i: it lands on the first
/// nanosecond by which i records are due.
void check_due_is_first_instant(const load_profile& p, uint64_t i) {
  CAPTURE(i);
  auto d = p.due(i);
  REQUIRE(d.has_value());
  CHECK(p.count_at(*d) >= static_cast<double>(i));
  if (d->count() > 0)
    CHECK(p.count_at(*d - ns{1}) < static_cast<double>(i));
}

} // namespace

TEST_CASE("load profile: a constant rate counts and paces like source.rate") {
  load_profile p{{load_segment::constant_rate(seconds{1}, 1000)}};
  CHECK(p.total_length() == seconds{1});
  CHECK(p.total_count() == 1000.0);
  CHECK(p.total_records() == 1000);
  // Rows: t, records due by t.
  struct count_row {
    ns t;
    double count;
  };
  for (auto& r : std::vector<count_row>{{ns{0}, 0},
                                        {milliseconds{1}, 1},
                                        {microseconds{1500}, 1.5},
                                        {milliseconds{500}, 500},
                                        {seconds{1}, 1000},
                                        {seconds{2}, 1000},
                                        {ns{-5}, 0}}) {
    CAPTURE(r.t.count());
    CHECK(p.count_at(r.t) == doctest::Approx(r.count).epsilon(1e-12));
  }
  // Rows: record, when due (empty: after the end).
  struct due_row {
    uint64_t i;
    std::optional<ns> at;
  };
  for (auto& r : std::vector<due_row>{{0, ns{0}},
                                      {1, milliseconds{1}},
                                      {2, milliseconds{2}},
                                      {999, milliseconds{999}},
                                      {1000, std::nullopt},
                                      {5000, std::nullopt}}) {
    CAPTURE(r.i);
    CHECK(p.due(r.i) == r.at);
  }
  // Open-ended (source.rate): record i at ceil(i * 1e9 / rate) ns, as the
  // generator paced before profiles. (Up to days: beyond ~1e15 ns a double
  // no longer resolves the nanosecond, in either formula.)
  for (double rate : {1000.0, 3.0, 7.5, 12345.678, 0.25, 1e6}) {
    CAPTURE(rate);
    auto open = load_profile::constant(rate);
    CHECK(open.total_length() == load_profile::open_end);
    for (uint64_t i : {0ull, 1ull, 2ull, 3ull, 7ull, 1000ull, 123457ull}) {
      CAPTURE(i);
      CHECK(open.due(i) == ns{static_cast<int64_t>(std::ceil(static_cast<double>(i) * 1e9 / rate))});
    }
  }
  // 3 records/s: record 1 at 333333333.3 ns, rounded up.
  CHECK(load_profile::constant(3).due(1) == ns{333333334});
  CHECK(load_profile::constant(3).due(3) == seconds{1});
}

TEST_CASE("load profile: ramps up, down and flat") {
  // Rows: from, to, t, records due by t (rate * t + (to - from) t^2 / 2L).
  struct count_row {
    double from, to;
    ns t;
    double count;
  };
  for (auto& r : std::vector<count_row>{
         {0, 1000, milliseconds{500}, 125},
         {0, 1000, seconds{1}, 500},
         {1000, 0, milliseconds{500}, 375},
         {1000, 0, seconds{1}, 500},
         {1000, 3000, milliseconds{500}, 750},
         {1000, 3000, seconds{1}, 2000},
         {500, 500, milliseconds{250}, 125},
       }) {
    CAPTURE(r.from);
    CAPTURE(r.to);
    CAPTURE(r.t.count());
    load_profile p{{load_segment::ramp_rate(seconds{1}, r.from, r.to)}};
    CHECK(p.count_at(r.t) == doctest::Approx(r.count).epsilon(1e-12));
  }
  // Rows: from, to, record, when due (empty: after the end).
  struct due_row {
    double from, to;
    uint64_t i;
    std::optional<ns> at;
  };
  for (auto& r : std::vector<due_row>{
         {0, 1000, 0, ns{0}},
         {0, 1000, 1, ns{44721360}},           // sqrt(2e15) = 44721359.55 ns
         {0, 1000, 125, milliseconds{500}},
         {0, 1000, 499, ns{998999500}},        // sqrt(499/500) s
         {0, 1000, 500, std::nullopt},
         {1000, 0, 1, ns{1000501}},            // 1 - sqrt(1 - 1/500) s
         {1000, 0, 375, milliseconds{500}},
         {1000, 0, 499, ns{955278641}},        // 1 - sqrt(1/500) s
         {1000, 0, 500, std::nullopt},
         {1000, 3000, 750, milliseconds{500}},
         {1000, 3000, 1999, ns{999666630}},    // root of 1000 x + 1000 x^2 = 1999
         {500, 500, 1, milliseconds{2}},       // to == rate: the constant case
         {500, 500, 499, milliseconds{998}},
       }) {
    CAPTURE(r.from);
    CAPTURE(r.to);
    CAPTURE(r.i);
    load_profile p{{load_segment::ramp_rate(seconds{1}, r.from, r.to)}};
    CHECK(p.due(r.i) == r.at);
    if (r.at)
      check_due_is_first_instant(p, r.i);
  }
}

TEST_CASE("load profile: a diurnal sine integrates to its rate and is solved to the nanosecond") {
  auto day = hours{24};
  std::vector<load_segment> segs{load_segment::diurnal_rate(day, 200, 1000, day)};
  load_profile p{segs};
  // A whole period holds the mean rate times the period, exactly.
  CHECK(p.total_count() == 600.0 * 86400);
  CHECK(p.total_records() == 51840000);
  // Rows: t; expected from numeric integration of the rate function.
  for (auto t : std::vector<ns>{minutes{1}, hours{1}, hours{6}, hours{12}, hours{18}, hours{23} + minutes{59}}) {
    CAPTURE(t.count());
    CHECK(p.count_at(t) == doctest::Approx(integrate(segs, t, milliseconds{100})).epsilon(1e-9));
  }
  // Half a day: the mean rate times 12 h (the sine term vanishes).
  CHECK(p.count_at(hours{12}) == doctest::Approx(600.0 * 43200).epsilon(1e-12));
  // The trough: at the start the rate is 200/s, so record 1 at about 5 ms.
  CHECK(p.due(1).value() >= ns{4999999});
  CHECK(p.due(1).value() <= ns{5000001});
  // The peak: at 12 h the rate is 1000/s; the record due there and the
  // next one are 1 ms apart.
  auto at_noon = static_cast<uint64_t>(std::ceil(p.count_at(hours{12})));
  auto gap = p.due(at_noon + 1).value() - p.due(at_noon).value();
  CHECK(gap >= microseconds{999});
  CHECK(gap <= microseconds{1001});
  for (uint64_t i : {0ull, 1ull, 2ull, 17ull, 1000ull, 4321987ull, 25920000ull, 25920001ull, 40000000ull,
                     51839999ull})
    check_due_is_first_instant(p, i);
  CHECK_FALSE(p.due(51840000).has_value());
  // A trough at 0: Newton meets a zero derivative at the start of each
  // period and must fall back to bisection.
  load_profile zero{{load_segment::diurnal_rate(minutes{10}, 0, 100, minutes{5})}};
  CHECK(zero.total_count() == doctest::Approx(50.0 * 600));
  for (uint64_t i : {0ull, 1ull, 2ull, 14999ull, 15000ull, 15001ull, 29999ull})
    check_due_is_first_instant(zero, i);
  // Record 15000 is due at the end of the first period, a trough where the
  // rate is 0: count_at rounds to 15000 a little before, and due follows
  // count_at.
  CHECK(zero.due(15000) <= minutes{5});
  CHECK(zero.due(15000) >= minutes{5} - milliseconds{5});
  // A partial period: 90 minutes of a 60-minute cycle.
  std::vector<load_segment> partial{load_segment::diurnal_rate(minutes{90}, 10, 30, minutes{60})};
  load_profile q{partial};
  CHECK(q.total_count() == doctest::Approx(integrate(partial, minutes{90})).epsilon(1e-9));
}

TEST_CASE("load profile: bursts overlay a base rate") {
  // 10 min at 500/s with 10 s at 3000/s every 2 min: 85000 records a cycle.
  std::vector<load_segment> segs{load_segment::burst_rates(minutes{10}, 500, minutes{2}, seconds{10}, 3000)};
  load_profile p{segs};
  CHECK(p.total_count() == doctest::Approx(425000.0).epsilon(1e-15));
  CHECK(p.total_records() == 425000);
  // Rows: t, records due by t.
  struct count_row {
    ns t;
    double count;
  };
  for (auto& r : std::vector<count_row>{{seconds{5}, 15000},
                                        {seconds{10}, 30000},
                                        {seconds{20}, 35000},
                                        {minutes{2}, 85000},
                                        {minutes{2} + seconds{5}, 100000},
                                        {minutes{10}, 425000}}) {
    CAPTURE(r.t.count());
    CHECK(p.count_at(r.t) == doctest::Approx(r.count).epsilon(1e-12));
    CHECK(p.count_at(r.t) == doctest::Approx(integrate(segs, r.t)).epsilon(1e-9));
  }
  // Rows: record, when due.
  struct due_row {
    uint64_t i;
    ns at;
  };
  for (auto& r : std::vector<due_row>{{1, ns{333334}},            // 1/3000 s, rounded up
                                      {30000, seconds{10}},       // the last record of the burst
                                      {30001, seconds{10} + milliseconds{2}},  // then 500/s
                                      {85000, minutes{2}},
                                      {85003, minutes{2} + milliseconds{1}},
                                      {424999, minutes{10} - milliseconds{2}}}) {
    CAPTURE(r.i);
    CHECK(p.due(r.i) == r.at);
  }
  CHECK_FALSE(p.due(425000).has_value());
  // A base rate of 0: records only in the bursts. The 100th is due at the
  // end of the first burst, the 101st 1 ms into the second.
  load_profile only{{load_segment::burst_rates(seconds{5}, 0, seconds{1}, milliseconds{100}, 1000)}};
  CHECK(only.total_count() == doctest::Approx(500.0));
  CHECK(only.due(100) == milliseconds{100});
  CHECK(only.due(101) == seconds{1} + milliseconds{1});
  CHECK(only.due(499) == seconds{4} + milliseconds{99});
  // Between bursts nothing more is due.
  CHECK(only.count_at(milliseconds{500}) == doctest::Approx(100.0));
  CHECK(only.count_at(milliseconds{999}) == doctest::Approx(100.0));
}

TEST_CASE("load profile: pauses hold the count, and the next records follow them") {
  load_profile p{{load_segment::constant_rate(seconds{1}, 1000), load_segment::constant_rate(seconds{1}, 0),
                  load_segment::constant_rate(seconds{1}, 1000)}};
  CHECK(p.total_length() == seconds{3});
  CHECK(p.total_records() == 2000);
  CHECK(p.count_at(milliseconds{1500}) == 1000.0);
  CHECK(p.count_at(milliseconds{2000}) == 1000.0);
  CHECK(p.count_at(milliseconds{2500}) == doctest::Approx(1500.0));
  // Rows: record, when due.
  struct due_row {
    uint64_t i;
    ns at;
  };
  for (auto& r : std::vector<due_row>{{999, milliseconds{999}},
                                      {1000, seconds{1}},  // due as the pause begins
                                      {1001, seconds{2} + milliseconds{1}},
                                      {1999, seconds{3} - milliseconds{1}}}) {
    CAPTURE(r.i);
    CHECK(p.due(r.i) == r.at);
  }
  // A profile that opens with a pause: record 0 is due at 0 (record i is
  // due once i records' worth of rate has passed), record 1 after it.
  load_profile late{{load_segment::constant_rate(seconds{1}, 0), load_segment::constant_rate(seconds{1}, 10)}};
  CHECK(late.due(0) == ns{0});
  CHECK(late.due(1) == milliseconds{1100});
  CHECK(late.total_records() == 10);
  // A profile the config loader rejects (a negative rate) is still asked
  // for its count before the rejection is acted on: 0, not a wrapped
  // conversion (UBSan found one in the config suite).
  CHECK(load_profile{{load_segment::constant_rate(seconds{60}, -1)}}.total_records() == 0);
  CHECK(load_profile{{load_segment::constant_rate(seconds{60}, std::nan(""))}}.total_records() == 0);
  // A ramp through 0 and back: 1000 -> 0 then 0 -> 1000, with a pause
  // between (zero-length segments change nothing).
  load_profile vee{{load_segment::ramp_rate(seconds{1}, 1000, 0), load_segment::constant_rate(ns{0}, 50),
                    load_segment::constant_rate(milliseconds{500}, 0), load_segment::ramp_rate(seconds{1}, 0, 1000)}};
  CHECK(vee.total_records() == 1000);
  // The first ramp ends at rate 0: count_at reaches 500 (as rounded) a few
  // nanoseconds before its end.
  CHECK(vee.due(500) <= seconds{1});
  CHECK(vee.due(500) >= seconds{1} - microseconds{1});
  CHECK(vee.due(501) == milliseconds{1500} + ns{44721360});
}

TEST_CASE("load profile: the end of the profile") {
  // Rows: segments, records the profile holds; the last one is due before
  // the end, the next one never.
  struct row {
    const char* what;
    std::vector<load_segment> segments;
    uint64_t records;
  };
  std::vector<row> rows = {
    {"empty", {}, 0},
    {"all pause", {load_segment::constant_rate(seconds{10}, 0)}, 0},
    {"2.5 records: 3 (0, 1, 2)", {load_segment::constant_rate(milliseconds{2500}, 1)}, 3},
    {"exactly 4", {load_segment::constant_rate(seconds{4}, 1)}, 4},
    {"trailing pause", {load_segment::constant_rate(seconds{4}, 1), load_segment::constant_rate(seconds{60}, 0)}, 4},
  };
  for (auto& r : rows) {
    CAPTURE(r.what);
    load_profile p{r.segments};
    CHECK(p.total_records() == r.records);
    if (r.records > 0) {
      auto last = p.due(r.records - 1);
      REQUIRE(last.has_value());
      CHECK(*last <= p.total_length());
    }
    CHECK_FALSE(p.due(r.records).has_value());
    CHECK_FALSE(p.due(r.records + 1).has_value());
  }
  CHECK(load_profile{{}}.total_length() == ns{0});
  CHECK(load_profile{{}}.count_at(seconds{1}) == 0.0);
}

TEST_CASE("load profile: due is monotonic and consistent with count_at over a mixed profile") {
  // The README's example, shortened: constant, ramp, diurnal, bursts, pause.
  std::vector<load_segment> segs{
    load_segment::constant_rate(seconds{30}, 1000),
    load_segment::ramp_rate(seconds{10}, 1000, 3000),
    load_segment::diurnal_rate(minutes{10}, 200, 1000, minutes{4}),
    load_segment::burst_rates(minutes{5}, 500, minutes{2}, seconds{10}, 3000),
    load_segment::constant_rate(seconds{7}, 0),
    load_segment::ramp_rate(seconds{3}, 333.3, 0.7),
  };
  load_profile p{segs};
  CHECK(p.total_length() == seconds{30 + 10 + 600 + 300 + 7 + 3});
  CHECK(p.total_count() == doctest::Approx(integrate(segs, p.total_length())).epsilon(1e-7));
  // Every record (about 640k): due never goes back, and lands on the first
  // nanosecond by which its records are due.
  auto n = p.total_records();
  REQUIRE(n > 600000);
  ns prev{0};
  uint64_t backwards = 0, late = 0, early = 0;
  for (uint64_t i = 0; i < n; ++i) {
    auto d = p.due(i);
    if (!d) {
      FAIL("record " << i << " of " << n << " has no due time");
      break;
    }
    backwards += *d < prev;
    prev = *d;
    late += p.count_at(*d) < static_cast<double>(i);
    early += d->count() > 0 && p.count_at(*d - ns{1}) >= static_cast<double>(i);
  }
  CHECK(backwards == 0);
  CHECK(late == 0);
  CHECK(early == 0);
  CHECK(prev <= p.total_length());
  CHECK_FALSE(p.due(n).has_value());
  // due(floor(count_at(t))) <= t, at every millisecond and at odd instants.
  uint64_t violations = 0;
  for (int64_t t = 0; t <= p.total_length().count(); t += 999999) {
    auto c = p.count_at(ns{t});
    auto i = static_cast<uint64_t>(std::floor(c));
    if (i >= n)
      continue;
    auto d = p.due(i);
    violations += !d || d->count() > t;
  }
  CHECK(violations == 0);
}
