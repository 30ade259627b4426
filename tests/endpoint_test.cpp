// The endpoint's slot protocol on virtual time, message by message.

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/endpoint.hpp"
#include "backends/in_process.hpp"
#include "sim/virtual_time.hpp"
#include "tests/endpoint_helpers.hpp"

using namespace sinfer;

TEST_CASE("endpoint: a listener that dies gives back its slots and its place in line") {
  virtual_time_system vt;
  auto& sys = vt.system();
  auto es = test::silent_endpoint(1);
  auto ep = vt.stop_at_end(spawn_endpoint(sys, es));
  auto got = std::make_shared<std::map<std::string, int>>();
  auto listener = [&](std::string name, bool quit_at_once) {
    return vt.stop_at_end(sys.spawn([=](slot_listener::pointer self) -> slot_listener::behavior_type {
      self->send(ep, want_atom::value, caf::actor_cast<slot_listener>(self), uint32_t{0}, uint32_t{1});
      if (quit_at_once)
        self->quit();
      return {[=](slot_atom, uint32_t, uint32_t n, const endpoint_load&) { (*got)[name] += n; }};
    }));
  };
  auto y = listener("y", false);
  vt.run();
  REQUIRE((*got)["y"] == 1); // y holds the only slot
  auto x = listener("x", true); // x asks, then dies before its turn
  vt.run();
  caf::anon_send(ep, release_atom::value, uint32_t{1}); // y gives its slot back
  vt.run();
  auto z = listener("z", false);
  vt.run();
  CHECK((*got)["z"] == 1); // the slot did not go to dead x for good
  // y dies holding a slot it was granted again: that slot comes back too.
  auto w = listener("w", false);
  vt.run();
  CHECK((*got)["w"] == 0);
  caf::anon_send_exit(z, caf::exit_reason::user_shutdown);
  vt.run();
  CHECK((*got)["w"] == 1);
}

TEST_CASE("endpoint: slot messages carry its load; with load reports a want that must queue hears at once") {
  for (bool reports : {false, true}) {
    CAPTURE(reports);
    virtual_time_system vt;
    auto& sys = vt.system();
    auto es = test::silent_endpoint(2);
    es.load_reports = reports;
    auto ep = vt.stop_at_end(spawn_endpoint(sys, es));
    struct heard {
      uint32_t n;
      endpoint_load load;
    };
    auto log = std::make_shared<std::vector<heard>>();
    auto listener = vt.stop_at_end(sys.spawn([=](slot_listener::pointer self) -> slot_listener::behavior_type {
      self->send(ep, want_atom::value, caf::actor_cast<slot_listener>(self), uint32_t{0}, uint32_t{3});
      return {[=](slot_atom, uint32_t, uint32_t n, const endpoint_load& load) { log->push_back({n, load}); }};
    }));
    vt.run();
    // Two of three granted at once; the grant says both slots are busy.
    REQUIRE_FALSE(log->empty());
    CHECK(log->front().n == 2);
    CHECK(log->front().load.in_flight == 2);
    CHECK(log->front().load.limit == 2);
    CHECK_FALSE(log->front().load.paused);
    CHECK(log->size() == 1);
    // A further want cannot be granted: with reports, a 0-slot answer at once.
    caf::anon_send(ep, want_atom::value, caf::actor_cast<slot_listener>(listener), uint32_t{0}, uint32_t{1});
    vt.run();
    if (reports) {
      REQUIRE(log->size() == 2);
      CHECK(log->back().n == 0);
      CHECK(log->back().load.in_flight == 2);
    } else {
      CHECK(log->size() == 1);
    }
  }
}

TEST_CASE("endpoint: with load reports, a call's end tells the listeners holding unused slots the load") {
  for (bool reports : {true, false}) {
    CAPTURE(reports);
    virtual_time_system vt;
    auto& sys = vt.system();
    auto es = test::answering_endpoint(2, std::chrono::milliseconds{8});
    es.load_reports = reports;
    // Batchers wait for a faster endpoint only under the gradient limiter
    // (model_config::routes_by_finish_time): only then are holders told.
    es.tells_holders = reports;
    es.limiter.kind = limiter_kind::gradient;
    es.limiter.min = 2;
    es.limiter.initial = 2;
    es.pacing = false;
    auto ep = vt.stop_at_end(spawn_endpoint(sys, es));
    struct heard {
      uint32_t n;
      endpoint_load load;
    };
    auto held_log = std::make_shared<std::vector<heard>>();
    auto caller_log = std::make_shared<std::vector<heard>>();
    // The holder takes one slot and keeps it unused (a batcher waiting for
    // a faster endpoint) until it hears of a call's end: then it gives the
    // slot back.
    auto holder = vt.stop_at_end(sys.spawn([=](slot_listener::pointer self) -> slot_listener::behavior_type {
      self->send(ep, want_atom::value, caf::actor_cast<slot_listener>(self), uint32_t{0}, uint32_t{1});
      return {[=](slot_atom, uint32_t, uint32_t n, const endpoint_load& load) {
        held_log->push_back({n, load});
        if (n == 0)
          self->send(ep, release_atom::value, uint32_t{1});
      }};
    }));
    vt.run();
    REQUIRE(held_log->size() == 1);
    CHECK(held_log->front().n == 1);
    CHECK(held_log->front().load.calls == 0);
    // The caller takes the other slot and makes one call with it (twice).
    auto caller = vt.stop_at_end(sys.spawn([=](slot_listener::pointer self) -> slot_listener::behavior_type {
      self->send(ep, want_atom::value, caf::actor_cast<slot_listener>(self), uint32_t{0}, uint32_t{1});
      return {[=](slot_atom, uint32_t, uint32_t n, const endpoint_load& load) {
        caller_log->push_back({n, load});
        for (uint32_t i = 0; i < n; ++i)
          test::call_one(self, ep);
      }};
    }));
    vt.run();
    REQUIRE(caller_log->size() == 1);
    CHECK(caller_log->front().n == 1);
    if (reports) {
      // The call ended: the holder hears that nothing is in flight now; the
      // caller, holding no unused slot, hears nothing.
      REQUIRE(held_log->size() == 2);
      CHECK(held_log->back().n == 0);
      CHECK(held_log->back().load.calls == 0);
      CHECK(held_log->back().load.in_flight == 1); // the holder's slot
      CHECK(caller_log->size() == 1);
    } else {
      CHECK(held_log->size() == 1);
    }
    // With reports the holder gave its slot back: later call ends tell it
    // nothing.
    caf::anon_send(ep, want_atom::value, caf::actor_cast<slot_listener>(caller), uint32_t{0}, uint32_t{1});
    vt.run();
    CHECK(caller_log->size() == 2);
    CHECK(held_log->size() == (reports ? 2u : 1u));
  }
}

TEST_CASE("endpoint: pacing spaces single partial batches by latency / concurrency; a full batch is never held") {
  // A listener that always has one partial batch queued: it wants one
  // slot, calls as soon as it gets it, and wants the next. Calls take 8 ms
  // on 4 slots: once the first call has answered, paced grants come every
  // 8 / 4 = 2 ms; unpaced, they come in fours as the slots free together.
  struct grant {
    double ms;
    uint32_t index;
    uint32_t slots;
  };
  for (bool pacing : {true, false}) {
    CAPTURE(pacing);
    virtual_time_system vt;
    auto& sys = vt.system();
    auto es = test::answering_endpoint(4, std::chrono::milliseconds{8});
    es.pacing = pacing;
    auto ep = vt.stop_at_end(spawn_endpoint(sys, es));
    auto grants = std::make_shared<std::vector<grant>>();
    auto steady = std::make_shared<bool>(true); // always one batch queued
    auto listener = vt.stop_at_end(sys.spawn([=, &vt](slot_listener::pointer self) -> slot_listener::behavior_type {
      // One want outstanding at a time, as a batcher with one partial
      // batch queued has (wants of one listener and index add up).
      self->send(ep, want_atom::value, caf::actor_cast<slot_listener>(self), uint32_t{0}, uint32_t{1});
      return {[=, &vt](slot_atom, uint32_t index, uint32_t n, const endpoint_load&) {
        grants->push_back({std::chrono::duration<double, std::milli>(vt.elapsed()).count(), index, n});
        for (uint32_t i = 0; i < n; ++i)
          test::call_one(self, ep);
        if (*steady && grants->size() < 40)
          self->send(ep, want_atom::value, caf::actor_cast<slot_listener>(self), uint32_t{0}, uint32_t{1});
      }};
    }));
    vt.run();
    REQUIRE(grants->size() == 40);
    // The first four go at once (no latency known yet).
    for (size_t i = 0; i < 4; ++i)
      CHECK((*grants)[i].ms == doctest::Approx(0.0));
    // From 8 ms on: the gaps between grants.
    std::vector<double> gaps;
    for (size_t i = 5; i < 40; ++i)
      gaps.push_back((*grants)[i].ms - (*grants)[i - 1].ms);
    auto smallest = *std::min_element(gaps.begin(), gaps.end());
    auto largest = *std::max_element(gaps.begin(), gaps.end());
    if (pacing) {
      CHECK(smallest == doctest::Approx(2.0).epsilon(0.01));
      CHECK(largest == doctest::Approx(2.0).epsilon(0.01));
    } else {
      CHECK(smallest == doctest::Approx(0.0)); // slots taken together...
      CHECK(largest == doctest::Approx(8.0).epsilon(0.01)); // ...as they free together
    }
    // Idle now. Two single partial batches and a want of two slots (a full
    // batch queued): the first single goes at once; paced, the second
    // waits its 2 ms while the full batch is granted at once.
    grants->clear();
    *steady = false;
    auto t0 = std::chrono::duration<double, std::milli>(vt.elapsed()).count();
    auto as_listener = caf::actor_cast<slot_listener>(listener);
    caf::anon_send(ep, want_atom::value, as_listener, uint32_t{1}, uint32_t{1});
    caf::anon_send(ep, want_atom::value, as_listener, uint32_t{2}, uint32_t{1});
    caf::anon_send(ep, want_atom::value, as_listener, uint32_t{3}, uint32_t{2});
    vt.run();
    REQUIRE(grants->size() == 3);
    CHECK((*grants)[0].index == 1);
    CHECK((*grants)[0].ms == doctest::Approx(t0));
    if (pacing) {
      CHECK((*grants)[1].index == 3);
      CHECK((*grants)[1].slots == 2);
      CHECK((*grants)[1].ms == doctest::Approx(t0));
      CHECK((*grants)[2].index == 2);
      CHECK((*grants)[2].ms - t0 == doctest::Approx(2.0).epsilon(0.02)); // the latency faded a little while idle
    } else {
      CHECK((*grants)[1].index == 2);
      CHECK((*grants)[2].index == 3);
      CHECK((*grants)[2].ms == doctest::Approx(t0));
    }
  }
}
