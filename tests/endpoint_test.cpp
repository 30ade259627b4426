// The endpoint's slot protocol on virtual time, message by message.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>

#include <caf/all.hpp>

#include "actors/endpoint.hpp"
#include "backends/in_process.hpp"
#include "sim/virtual_time.hpp"

using namespace sinfer;

TEST_CASE("endpoint: a listener that dies gives back its slots and its place in line") {
  virtual_time_system vt;
  auto& sys = vt.system();
  endpoint_settings es;
  es.name = "m/e";
  es.backend = std::make_shared<in_process_backend>(
    in_process_model{{"text"}, {"label"}, [](const call_request&, call_result&) {}});
  es.concurrency = 1;
  es.counters = std::make_shared<endpoint_counters>();
  auto ep = spawn_endpoint(sys, es);
  auto got = std::make_shared<std::map<std::string, int>>();
  auto listener = [&](std::string name, bool quit_at_once) {
    return sys.spawn([=](slot_listener::pointer self) -> slot_listener::behavior_type {
      self->send(ep, want_atom::value, caf::actor_cast<slot_listener>(self), uint32_t{0}, uint32_t{1});
      if (quit_at_once)
        self->quit();
      return {[=](slot_atom, uint32_t, uint32_t n) { (*got)[name] += n; }};
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
