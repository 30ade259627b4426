#pragma once
/// inference_operator: one model stage of one subtask. Holds at most
/// `max-concurrent-operations` records and decides, per record, its attempts,
/// retries, timeouts and failure action; appends the model's outputs to each
/// record; lets records leave in input order (ordered) or as completed
/// (unordered).
///
/// Scope: subtask. Spawned by job_supervisor, last stage first; spawns and
/// links its batchers (one for the stage's model and one per fallback model).
/// Receives: (connect, ...) from its upstream (source or previous stage),
///   (records, 0, chunk) and (eos, 0) from it; (credit, 0, n) from its
///   downstream (next stage or sink); (scored, results) from its batchers;
///   (tick) its own timer (retries, timeout.total).
/// Sends: (credit, port, n) upstream as records leave; (records, port, chunk)
///   and finally (eos, port) downstream; (work, items) and (flush) to its
///   batchers; (fail, reason) to the supervisor when the failure action is
///   `fail-job`.
/// Per record (policies/record_attempts.hpp): exactly one outcome whatever
/// the order of answers, attempt timeouts, retry timers and the total
/// timeout. A failed attempt is retried after a backoff with jitter
/// (policies/backoff.hpp), at least Retry-After later when rate-limited,
/// preferably on another endpoint, while the retry budget allows
/// (policies/retry_budget.hpp). A record that cannot be scored takes the
/// model's failure action: dead-letter (marked failed, keeps its place; later
/// stages pass it through and the sink dead-letters it), fail-job,
/// default-value (the configured outputs are written), or fallback (the next
/// model of the chain scores it, with its own policies).
/// Checkpoints: on (barrier, 0, E) it acks its snapshot to the coordinator
/// (every record it holds: those with an outcome as they are, the others
/// as they arrived, with the model of the chain they are on) and passes the
/// barrier on. Before a model's result moves on it is written to the call
/// log under the record's call key (model, record identity, input hash),
/// and a record whose key the restored log holds is answered from it
/// instead of calling the model (its key goes to the backend as the
/// Idempotency-Key). A restored operator starts with its snapshot's records.
/// Crash: when user code throws (an in-process model: a `crash` answer), the
/// stage of this subtask crashes: its batchers are killed, the supervisor's
/// restart strategy decides (restart after a delay, or the job fails with
/// the reason), and on restart new batchers are spawned and every record
/// the stage holds unscored is issued again (until checkpoints exist, the
/// held records are the state that survives the crash: nothing is lost).

#include <memory>
#include <vector>

#include <caf/fwd.hpp>

#include "messages/flow.hpp"
#include "messages/scoring.hpp"
#include "runtime/checkpointing.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

/// One model a stage can call: its config, endpoints and this subtask's
/// breaker of each endpoint.
struct model_link {
  std::shared_ptr<const model_config> model;
  std::vector<scheduled_endpoint> endpoints;
  std::vector<subtask_breaker_actor> breakers;
};

struct operator_settings {
  /// The stage's position in the job (0-based) and the subtask's index.
  uint32_t stage = 0;
  uint32_t subtask = 0;
  /// The stage's model, then its fallback chain.
  std::vector<model_link> chain;
  output_mode mode = output_mode::ordered;
  /// Whether the stage applies to a record (others pass it untouched).
  stage_condition condition;
  record_consumer downstream;
  /// This subtask's port at the downstream (its index at the sink, else 0).
  uint32_t downstream_port = 0;
  failure_listener supervisor;
  /// Asked whether to restart when the subtask crashes.
  restart_authority restarts;
  std::shared_ptr<job_counters> counters;
  /// Checkpoints on: the coordinator to ack barriers to, and the restored
  /// state (this operator's held records, the call log's answers, the
  /// store the call log goes to). Null when off.
  checkpoint_listener coordinator;
  std::shared_ptr<const checkpoint_context> checkpoints;
  /// checkpoint.call-log and checkpoint.call-log-sync.
  call_log_mode call_log = call_log_mode::off;
  bool call_log_sync = false;
};

operator_actor spawn_inference_operator(caf::actor_system& sys, operator_settings settings);

} // namespace sinfer
