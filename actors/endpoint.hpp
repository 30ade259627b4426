#pragma once
/// endpoint: one backend endpoint of a model. Owns an `inference_backend`
/// and answers each (infer, batch) request with the call's result.
///
/// Scope: job (one per model endpoint; an in-process model has one).
/// Spawned by job_supervisor before the subtasks. Receives (infer, batch)
/// from the inference operators of every subtask; replies with call_result.
/// Completion: when the backend completes inside `infer` (in-process), the
/// reply goes out in the same handler, or after `latency` when that is set
/// (a simulated service time, driven by the actor clock so it runs in
/// virtual time too). A backend that completes later, on another thread,
/// posts (deliver, id, result) back to the endpoint.
/// The concurrency limit and connection workers arrive with HTTP backends.

#include <chrono>
#include <memory>

#include <caf/fwd.hpp>

#include "backends/inference_backend.hpp"
#include "messages/flow.hpp"

namespace sinfer {

endpoint_actor spawn_endpoint(caf::actor_system& sys, std::shared_ptr<inference_backend> backend,
                              std::chrono::nanoseconds latency);

} // namespace sinfer
