#pragma once
// An endpoint for actor-level tests of the slot protocol, load reports and
// probes: its model answers every call with nothing, so only the endpoint's
// own behaviour is under test.

#include <memory>
#include <string>

#include "actors/endpoint.hpp"
#include "backends/in_process.hpp"

namespace sinfer::test {

inline endpoint_settings silent_endpoint(uint32_t concurrency, std::string name = "m/e") {
  endpoint_settings es;
  es.name = std::move(name);
  es.backend = std::make_shared<in_process_backend>(
    in_process_model{{"text"}, {"label"}, [](const call_request&, call_result&) {}});
  es.concurrency = concurrency;
  es.counters = std::make_shared<endpoint_counters>();
  return es;
}

} // namespace sinfer::test
