// The endpoint's slot protocol on virtual time, message by message.

#include <doctest/doctest.h>

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
  auto ep = spawn_endpoint(sys, es);
  auto got = std::make_shared<std::map<std::string, int>>();
  auto listener = [&](std::string name, bool quit_at_once) {
    return sys.spawn([=](slot_listener::pointer self) -> slot_listener::behavior_type {
      self->send(ep, want_atom::value, caf::actor_cast<slot_listener>(self), uint32_t{0}, uint32_t{1});
      if (quit_at_once)
        self->quit();
      return {[=](slot_atom, uint32_t, uint32_t n, const endpoint_load&) { (*got)[name] += n; }};
    });
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
  for (auto& a : {caf::actor_cast<caf::actor>(ep), caf::actor_cast<caf::actor>(y), caf::actor_cast<caf::actor>(w)})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  vt.run();
}

TEST_CASE("endpoint: slot messages carry its load; with load reports a want that must queue hears at once") {
  for (bool reports : {false, true}) {
    CAPTURE(reports);
    virtual_time_system vt;
    auto& sys = vt.system();
    auto es = test::silent_endpoint(2);
    es.load_reports = reports;
    auto ep = spawn_endpoint(sys, es);
    struct heard {
      uint32_t n;
      endpoint_load load;
    };
    auto log = std::make_shared<std::vector<heard>>();
    auto listener = sys.spawn([=](slot_listener::pointer self) -> slot_listener::behavior_type {
      self->send(ep, want_atom::value, caf::actor_cast<slot_listener>(self), uint32_t{0}, uint32_t{3});
      return {[=](slot_atom, uint32_t, uint32_t n, const endpoint_load& load) { log->push_back({n, load}); }};
    });
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
    for (auto& a : {caf::actor_cast<caf::actor>(ep), caf::actor_cast<caf::actor>(listener)})
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    vt.run();
  }
}
