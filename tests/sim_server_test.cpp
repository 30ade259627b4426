// The simulated server (sim/sim_server.hpp) as tables: slots, queueing,
// service time, jitter and every fault kind. No actors.

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "sim/sim_server.hpp"

using namespace sinfer;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using outcome = sim_answer::outcome;

namespace {

sim_server_config two_slots() {
  sim_server_config c;
  c.slots = 2;
  c.base = milliseconds{10};
  c.per_record = milliseconds{1};
  c.refusal_time = microseconds{100};
  return c;
}

sim_fault fault(sim_fault_kind kind, nanoseconds from, nanoseconds to) {
  sim_fault f;
  f.kind = kind;
  f.from = from;
  f.to = to;
  return f;
}

} // namespace

TEST_CASE("sim server: k slots, FIFO queue, a + c*b per batch") {
  sim_server s{two_slots()};
  struct row {
    long at_ms;
    uint32_t rows;
    long delay_us; // arrival to answer
    uint32_t waiting_after, running_after;
  };
  // Two slots: the third call waits for the first to end (at 12 ms), the
  // fourth for the second (at 1 + 15 = 16 ms).
  std::vector<row> rows = {
    {0, 2, 12000, 0, 1},
    {1, 5, 15000, 0, 2},
    {2, 1, 21000, 1, 2},  // starts at 12, ends at 23
    {3, 10, 33000, 2, 2}, // starts at 16, ends at 36
  };
  for (auto& r : rows) {
    CAPTURE(r.at_ms);
    auto a = s.admit(milliseconds{r.at_ms}, r.rows);
    CHECK(a.how == outcome::ok);
    CHECK(a.delay == microseconds{r.delay_us});
    auto l = s.load_at(milliseconds{r.at_ms});
    CHECK(l.waiting == r.waiting_after);
    CHECK(l.running == r.running_after);
  }
  CHECK(s.load_at(milliseconds{13}).running == 2); // call 3 took call 1's slot
  CHECK(s.load_at(milliseconds{13}).waiting == 1);
  CHECK(s.load_at(milliseconds{40}).running == 0);
  CHECK(s.totals().served == 4);
  CHECK(s.totals().queue_us == (12 - 2 + 16 - 3) * 1000);
}

TEST_CASE("sim server: a bounded queue refuses at once with 503") {
  auto c = two_slots();
  c.max_queue = 1;
  sim_server s{c};
  CHECK(s.admit(milliseconds{0}, 1).how == outcome::ok);
  CHECK(s.admit(milliseconds{0}, 1).how == outcome::ok);
  CHECK(s.admit(milliseconds{0}, 1).how == outcome::ok); // queued
  auto refused = s.admit(milliseconds{0}, 1);
  CHECK(refused.how == outcome::overloaded);
  CHECK(refused.delay == microseconds{100});
  CHECK(s.admit(milliseconds{11}, 1).how == outcome::ok); // the queued one started at 11
  CHECK(s.totals().refused == 1);
}

TEST_CASE("sim server: faults over time") {
  using k = sim_fault_kind;
  struct row {
    const char* name;
    sim_fault f;
    long at_ms;
    outcome how;
    long delay_us;
  };
  auto brown = fault(k::brownout, seconds{1}, seconds{2});
  brown.slowdown = 4;
  auto storm = fault(k::rate_limit, seconds{1}, seconds{2});
  storm.retry_after = milliseconds{2500};
  auto hang = fault(k::outage, seconds{1}, seconds{2});
  hang.hang = true;
  std::vector<row> rows = {
    {"outage: 503 at once", fault(k::outage, seconds{1}, seconds{2}), 1000, outcome::error, 100},
    {"outage over: served", fault(k::outage, seconds{1}, seconds{2}), 2000, outcome::ok, 11000},
    {"before the outage", fault(k::outage, seconds{1}, seconds{2}), 999, outcome::ok, 11000},
    {"hang: never answered", hang, 1500, outcome::hang, 0},
    {"brownout: 4x slower", brown, 1500, outcome::ok, 44000},
    {"brownout over", brown, 2500, outcome::ok, 11000},
    {"429 storm", storm, 1000, outcome::rate_limited, 100},
    {"errors after the service time", fault(k::errors, seconds{0}, seconds{9}), 5, outcome::error, 11000},
    {"resets", fault(k::resets, seconds{0}, seconds{9}), 5, outcome::reset, 100},
    {"crash", fault(k::crash, seconds{0}, seconds{9}), 5, outcome::crash, 100},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    auto c = two_slots();
    c.faults = {r.f};
    sim_server s{c};
    auto a = s.admit(milliseconds{r.at_ms}, 1);
    CHECK(a.how == r.how);
    if (r.how != outcome::hang)
      CHECK(a.delay == microseconds{r.delay_us});
    if (r.how == outcome::rate_limited)
      CHECK(a.retry_after == milliseconds{2500});
  }
}

TEST_CASE("sim server: an outage fails queued calls when they would start; a hung server is down meanwhile") {
  auto c = two_slots();
  c.faults = {fault(sim_fault_kind::outage, milliseconds{20}, milliseconds{50})};
  sim_server s{c};
  CHECK(s.admit(milliseconds{0}, 10).how == outcome::ok); // 0..20
  CHECK(s.admit(milliseconds{0}, 10).how == outcome::ok); // 0..20
  auto queued = s.admit(milliseconds{1}, 1);              // would start at 20
  CHECK(queued.how == outcome::error);
  CHECK(queued.delay == milliseconds{19} + microseconds{100});
  CHECK(s.up_at(milliseconds{20})); // a 503 outage: the model fails, the server is up

  auto hung = two_slots();
  hung.faults = {fault(sim_fault_kind::outage, milliseconds{20}, milliseconds{50})};
  hung.faults[0].hang = true;
  sim_server h{hung};
  CHECK(h.admit(milliseconds{0}, 10).how == outcome::ok);
  CHECK(h.admit(milliseconds{0}, 10).how == outcome::ok);
  CHECK(h.admit(milliseconds{1}, 1).how == outcome::hang); // would start at 20
  CHECK(h.admit(milliseconds{25}, 1).how == outcome::hang);
  CHECK(h.totals().hung == 2);
  CHECK(h.totals().refused == 0);
  CHECK(h.up_at(milliseconds{19}));
  CHECK_FALSE(h.up_at(milliseconds{20})); // hung: its metrics page does not answer either
  CHECK(h.up_at(milliseconds{50}));
}

TEST_CASE("sim server: shares, crash limits and jitter are drawn from the seed") {
  auto draws = [](uint64_t seed, sim_fault f) {
    auto c = two_slots();
    c.seed = seed;
    c.faults = {f};
    sim_server s{c};
    std::vector<int> out;
    for (int i = 0; i < 200; ++i)
      out.push_back(static_cast<int>(s.admit(seconds{i}, 1).how));
    return out;
  };
  auto errors = fault(sim_fault_kind::errors, seconds{0}, seconds{1000});
  errors.share = 0.25;
  auto a = draws(7, errors);
  CHECK(a == draws(7, errors)); // same seed, same draws
  CHECK(a != draws(8, errors));
  auto failed = std::count(a.begin(), a.end(), static_cast<int>(outcome::error));
  CHECK(failed > 30);
  CHECK(failed < 70);
  auto crash = fault(sim_fault_kind::crash, seconds{0}, seconds{1000});
  crash.max_calls = 3;
  auto c = draws(1, crash);
  CHECK(std::count(c.begin(), c.end(), static_cast<int>(outcome::crash)) == 3);

  auto cfg = two_slots();
  cfg.jitter = 0.5;
  sim_server s{cfg};
  double sum = 0, sum2 = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    auto d = std::chrono::duration<double, std::milli>(s.admit(seconds{i}, 0).delay).count();
    sum += d;
    sum2 += d * d;
  }
  double mean = sum / n, cv = std::sqrt(sum2 / n - mean * mean) / mean;
  CHECK(mean == doctest::Approx(10.0).epsilon(0.05));
  CHECK(cv == doctest::Approx(0.5).epsilon(0.15));
}

TEST_CASE("sim server: Triton-named metrics a prometheus probe reads") {
  sim_server s{two_slots()};
  s.admit(milliseconds{0}, 1);
  s.admit(milliseconds{0}, 1);
  s.admit(milliseconds{0}, 1);
  auto text = s.metrics_text(milliseconds{1}, "clf");
  CHECK(text.find("nv_inference_pending_request_count{model=\"clf\",version=\"1\"} 1\n") != std::string::npos);
  CHECK(text.find("nv_inference_request_success{model=\"clf\",version=\"1\"} 3\n") != std::string::npos);
}
