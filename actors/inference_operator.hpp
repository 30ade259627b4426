#pragma once
/// inference_operator: one model stage of one subtask. Holds at most
/// `max-concurrent-operations` records, calls the model's endpoint in batches
/// of at most `batch.max-size`, appends the model's outputs to each record,
/// and lets records leave in input order (ordered) or as completed
/// (unordered).
///
/// Scope: subtask. Spawned by job_supervisor, last stage first.
/// Receives: (connect, ...) from its upstream (source or previous stage),
///   (records, 0, chunk) and (eos, 0) from it; (credit, 0, n) from its
///   downstream (next stage or sink); call results from the endpoint.
/// Sends: (credit, port, n) upstream as records leave; (records, port, chunk)
///   and finally (eos, port) downstream; (infer, batch) requests to the
///   endpoint; (fail, reason) to the supervisor when the failure action is
///   `fail`.
/// A record that cannot be parsed or scored is marked failed (its `error`
/// names the stage and the reason) and keeps its place; later stages pass it
/// through and the sink dead-letters it.
/// Batching here is the skeleton's: a batch holds what arrived in one chunk
/// (up to the max size) and goes out at once; the `batcher` actor replaces it.

#include <memory>

#include <caf/fwd.hpp>

#include "messages/flow.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

struct operator_settings {
  /// The stage's position in the job (0-based) and its model.
  uint32_t stage = 0;
  std::shared_ptr<const model_config> model;
  output_mode mode = output_mode::ordered;
  endpoint_actor endpoint;
  record_consumer downstream;
  /// This subtask's port at the downstream (its index at the sink, else 0).
  uint32_t downstream_port = 0;
  failure_listener supervisor;
  std::shared_ptr<job_counters> counters;
};

operator_actor spawn_inference_operator(caf::actor_system& sys, operator_settings settings);

} // namespace sinfer
