#pragma once
// An endpoint for actor-level tests of the slot protocol, load reports and
// probes: its model answers every call with nothing, so only the endpoint's
// own behaviour is under test.

#include <chrono>
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

/// An endpoint whose model answers every record with "1" after `latency`
/// (successful calls: they measure latency, unlike the silent one's).
inline endpoint_settings answering_endpoint(uint32_t concurrency, std::chrono::milliseconds latency) {
  auto es = silent_endpoint(concurrency);
  es.backend = std::make_shared<in_process_backend>(in_process_model{
    {"text"}, {"label"}, [](const call_request& in, call_result& out) { out.values.assign(in.rows, "1"); }});
  es.latency = latency;
  return es;
}

/// A one-record call of `self` (a slot listener holding a granted slot) to
/// `ep`; the answer is dropped.
template <class Self, class Endpoint>
void call_one(Self* self, const Endpoint& ep) {
  call_request req;
  req.names = {"text"};
  req.values = {"\"x\""};
  req.rows = 1;
  self->request(ep, caf::infinite, infer_atom::value, std::move(req)).then([](call_result&) {});
}

} // namespace sinfer::test
