#pragma once
/// The protocol inside a model stage: the inference operator hands records'
/// inputs to its batcher, the batcher asks endpoints for call slots and
/// sends batches, endpoints answer, breakers push their state.
///
///   inference_operator --(work)--> batcher --(want)--> endpoint
///   inference_operator <-(scored)-- batcher <-(slot)-- endpoint
///                                   batcher --(infer)--> endpoint -> call_result
///                                   batcher --(outcome)--> subtask_breaker
///                                   batcher <-(gate)-- subtask_breaker
///                      subtask_breaker --(summary)--> job_breaker
///                      subtask_breaker <-(jobstate)-- job_breaker
///
/// A slot is the right to one call at an endpoint: the endpoint grants slots
/// to the batchers that want them, in the order they asked, never more than
/// its concurrency limit job-wide, and none while a Retry-After holds. A
/// batcher forms its batch when a slot arrives, so batches grow while every
/// slot is busy (adaptive batching) and a lone record goes out at once.
/// Every slot message carries the endpoint's load (`endpoint_load`) for the
/// batcher's load-aware router; with load reports on (a model with several
/// endpoints routed load-aware) an endpoint that cannot grant a wanted slot
/// at once says so at once with a grant of 0 slots and its load.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/call.hpp"
#include "messages/flow.hpp"
#include "messages/probe.hpp"
#include "policies/circuit_breaker.hpp"

namespace sinfer {

using work_atom = caf::atom_constant<caf::atom("work")>;
using scored_atom = caf::atom_constant<caf::atom("scored")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using want_atom = caf::atom_constant<caf::atom("want")>;
using slot_atom = caf::atom_constant<caf::atom("slot")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using outcome_atom = caf::atom_constant<caf::atom("outcome")>;
using gate_atom = caf::atom_constant<caf::atom("gate")>;
using summary_atom = caf::atom_constant<caf::atom("summary")>;
using jobstate_atom = caf::atom_constant<caf::atom("jobstate")>;
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;

/// One record's attempt (its input values travel in the enclosing
/// `work_batch`).
struct work_item {
  /// The record's ticket at the operator and the attempt's number.
  uint64_t ticket = 0;
  uint32_t attempt = 0;
  /// Index of the endpoint whose failure caused this retry (-1: none); the
  /// batcher prefers another endpoint when one can take it.
  int32_t avoid = -1;
  /// Summed size of the item's input values (for batch.max-bytes).
  uint32_t bytes = 0;
  /// The record's deadline (timeout.total) on the actor clock, in ns since
  /// the clock's epoch; the batcher does not send an item past it.
  int64_t deadline_ns = INT64_MAX;
  /// A 64-bit hash of the record's durable call-log key (record identity +
  /// model + input hash), set by the inference operator; the same on every
  /// attempt. The batcher turns a batch's keys into its Idempotency-Key
  /// (`idempotency_key_of`, messages/call.hpp). 0: none.
  uint64_t call_key = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, work_item& x) {
  return f(x.ticket, x.attempt, x.avoid, x.bytes, x.deadline_ns, x.call_key);
}

/// Work for a batcher: items and their inputs, row-major (`values[i * inputs
/// + k]` is input k of item i): one allocation per batch, not per record.
struct work_batch {
  std::vector<work_item> items;
  std::vector<std::string> values;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, work_batch& x) {
  return f(x.items, x.values);
}

/// The end of one attempt for one record.
struct item_result {
  uint64_t ticket = 0;
  uint32_t attempt = 0;
  /// Which endpoint answered (index in the model's endpoints).
  int32_t endpoint = -1;
  call_error error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item_result& x) {
  return f(x.ticket, x.attempt, x.endpoint, x.error);
}

/// Answers for an operator: items and, row-major, each item's outputs in the
/// model's output (config) order (empty strings for failed items).
struct scored_batch {
  std::vector<item_result> items;
  std::vector<std::string> values;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scored_batch& x) {
  return f(x.items, x.values);
}

/// What a batcher may do with an endpoint, pushed by its subtask breaker.
struct endpoint_gate {
  breaker_state state = breaker_state::closed;
  /// Half-open: calls the batcher may start as probes.
  uint32_t probes = 0;
  /// Probes granted by the job tier (their outcomes count job-wide).
  bool job_probes = false;
  /// Epochs of the subtask and job breakers when this gate was pushed; the
  /// batcher returns them with each call's outcome.
  uint64_t subtask_epoch = 0;
  uint64_t job_epoch = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, endpoint_gate& x) {
  return f(x.state, x.probes, x.job_probes, x.subtask_epoch, x.job_epoch);
}

/// An endpoint's load when it sent a slot message: what the batchers'
/// load-aware router reads into `endpoint_view` (policies/routing.hpp).
struct endpoint_load {
  /// Slots granted or in a call at the endpoint, job-wide (the slots of
  /// this message included).
  uint32_t in_flight = 0;
  /// Calls in flight at the endpoint, job-wide (sent, not yet answered):
  /// unlike `in_flight`, not the slots granted and not yet used.
  uint32_t calls = 0;
  /// Its concurrency limit now.
  uint32_t limit = 1;
  /// The server's queue as the endpoint's load probe reads it now:
  /// `routing_queue_depth` of the probe's current reading (0: unknown or
  /// probe "none"; a suspect prometheus probe: 1e9).
  double queue_depth = 0;
  /// Smoothed latency of the endpoint's successful calls (TCP's SRTT,
  /// 1/8), ms; 0: none yet.
  double latency_ms = 0;
  /// Share of its recent calls that failed, 0..1: an EWMA (1/8 per call)
  /// of failures (every class but fatal-record) that halves every second,
  /// so it fades once calls stop (a breaker opened) or succeed again.
  double failure_rate = 0;
  /// The same over the failures circuit breakers count (not rate limiting
  /// either): routing leaves `failure_rate` out while the breaker is about
  /// to rule on these (router::counted_failure_rate).
  double breaker_failure_rate = 0;
  /// A Retry-After pause holds: no grants until it passes.
  bool paused = false;
  /// The calls the server runs at once, as the endpoint's limiter knows it
  /// (concurrency_limiter::server_slots), >= 1.
  double servers = 1;
  /// A call's latency without queueing at the server, ms
  /// (concurrency_limiter::unqueued_latency_ns); 0: unknown.
  double unqueued_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, endpoint_load& x) {
  return f(x.in_flight, x.calls, x.limit, x.queue_depth, x.latency_ms, x.failure_rate, x.breaker_failure_rate,
           x.paused, x.servers, x.unqueued_ms);
}

/// The end of one call, as a batcher reports it to its subtask breaker.
struct call_report {
  uint32_t endpoint = 0;
  bool failed = false;
  /// Latency in ns.
  int64_t latency_ns = 0;
  bool probe = false;
  bool job_probe = false;
  uint64_t subtask_epoch = 0;
  uint64_t job_epoch = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, call_report& x) {
  return f(x.endpoint, x.failed, x.latency_ns, x.probe, x.job_probe, x.subtask_epoch, x.job_epoch);
}

/// Outcomes of calls that one subtask made in one job-breaker epoch.
struct call_summary {
  uint32_t subtask = 0;
  uint64_t job_epoch = 0;
  uint64_t calls = 0;
  uint64_t failures = 0;
  uint64_t slow = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, call_summary& x) {
  return f(x.subtask, x.job_epoch, x.calls, x.failures, x.slow);
}

/// The job breaker's decision, pushed to every subtask breaker.
struct job_gate {
  breaker_state state = breaker_state::closed;
  uint64_t epoch = 0;
  /// Half-open: probes this subtask may start.
  uint32_t probes = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_gate& x) {
  return f(x.state, x.epoch, x.probes);
}

/// Hears that an endpoint granted slots: (slot, endpoint index, count,
/// load). A count of 0 only reports the load (a want that must queue).
using slot_listener = caf::typed_actor<caf::reacts_to<slot_atom, uint32_t, uint32_t, endpoint_load>>;

/// Hears its subtask breaker: (gate, endpoint index, gate).
using gate_listener = caf::typed_actor<caf::reacts_to<gate_atom, uint32_t, endpoint_gate>>;

/// Receives the scored items of its batcher.
using scored_listener = caf::typed_actor<caf::reacts_to<scored_atom, scored_batch>>;

/// Batcher: forms batches from work, sends them when endpoints grant slots.
/// - (work, items): records' inputs to score.
/// - (flush): send partial batches without lingering (end of input).
/// - (tick): self-sent linger timer.
using batcher_actor = caf::typed_actor<
  caf::reacts_to<work_atom, work_batch>,
  caf::reacts_to<flush_atom>,
  caf::reacts_to<tick_atom>,
  caf::reacts_to<slot_atom, uint32_t, uint32_t, endpoint_load>,
  caf::reacts_to<gate_atom, uint32_t, endpoint_gate>>;

/// A slot-granting endpoint, on top of `endpoint_actor`'s (infer) request:
/// - (want, listener, index, n): the listener wants `n` more slots; each is
///   granted by (slot, index, k, load) when free, in arrival order.
/// - (release, n): `n` granted slots go back unused.
/// - (expire): self-sent; calls in flight may have passed timeout.attempt.
/// - (tick): self-sent end of a Retry-After pause.
/// - (scrape, outcome): its load probe scraped the server
///   (messages/probe.hpp).
/// - (stale): self-sent; the probe's last answered scrape may be too old.
using scheduled_endpoint = endpoint_actor::extend<
  caf::reacts_to<want_atom, slot_listener, uint32_t, uint32_t>,
  caf::reacts_to<release_atom, uint32_t>,
  caf::reacts_to<expire_atom>,
  caf::reacts_to<tick_atom>,
  caf::reacts_to<scrape_atom, scrape_outcome>,
  caf::reacts_to<stale_atom>>;

/// Hears the job breaker: (jobstate, endpoint index, gate).
using job_gate_listener = caf::typed_actor<caf::reacts_to<jobstate_atom, uint32_t, job_gate>>;

/// Job-scope breaker of one endpoint.
/// - (subscribe, subtask breaker, subtask): pushes its gate there.
/// - (summary, s): outcomes from a subtask.
/// - (tick): self-sent time-driven transitions.
using job_breaker_actor = caf::typed_actor<
  caf::reacts_to<subscribe_atom, job_gate_listener, uint32_t>,
  caf::reacts_to<summary_atom, call_summary>,
  caf::reacts_to<tick_atom>>;

/// Subtask-scope breaker of one endpoint.
/// - (subscribe, batcher, endpoint index): pushes gates to that batcher.
/// - (outcome, report): one call ended.
/// - (jobstate, index, gate): the job breaker's decision.
/// - (tick): self-sent time-driven transitions.
using subtask_breaker_actor = caf::typed_actor<
  caf::reacts_to<subscribe_atom, gate_listener, uint32_t>,
  caf::reacts_to<outcome_atom, call_report>,
  caf::reacts_to<jobstate_atom, uint32_t, job_gate>,
  caf::reacts_to<tick_atom>>;

} // namespace sinfer
