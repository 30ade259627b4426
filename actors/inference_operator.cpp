#include "actors/inference_operator.hpp"

#include <algorithm>
#include <deque>

#include <caf/all.hpp>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include "actors/batcher.hpp"
#include "policies/backoff.hpp"
#include "policies/credit.hpp"
#include "policies/deadline_queue.hpp"
#include "policies/inflight_table.hpp"
#include "policies/record_attempts.hpp"
#include "policies/retry_budget.hpp"
#include "runtime/http_models.hpp"
#include "runtime/json_text.hpp"
#include "runtime/record_fields.hpp"

namespace sinfer {

namespace {

/// The operator's full interface: the record flow plus its batchers'
/// answers and its own timer.
using stage_actor = operator_actor::extend<caf::reacts_to<scored_atom, scored_batch>,
                                           caf::reacts_to<tick_atom>, caf::reacts_to<restart_atom>>;

/// A record while the stage holds it.
struct held_record {
  record rec;
  /// When the record entered the stage.
  caf::actor_clock::time_point arrived{};
  attempt_state att;
  /// Which model of the chain is scoring it.
  uint8_t link = 0;
  /// The first attempt number of the current model (attempts count across
  /// the chain, so a late answer from an earlier model is never mistaken).
  uint32_t first_attempt = 1;
  /// The record already holds a field an output of the current model writes.
  bool clash = false;
  /// The current attempt is a retry holding a retry-budget slot.
  bool retry_slot = false;
  /// The endpoint that failed the last attempt (-1: none), and its
  /// Retry-After.
  int32_t avoid = -1;
  std::chrono::milliseconds retry_after{0};
  /// Checkpoints on: the durable key of the current model's call.
  std::string call_key;
};

/// A retry timer entry: the record and the attempt that waits.
struct timer_key {
  uint64_t ticket;
  uint32_t attempt;
};

struct link_state {
  std::shared_ptr<const model_config> model;
  batcher_actor batcher;
  std::string label; // stage 1 "sentiment" or stage 1 "sentiment" (fallback "rules")
  /// `"field":` prefixes for each output column, in the model's order.
  std::vector<std::string> member_prefix;
  std::vector<std::string> output_targets;
  /// Default-value members, in the order of `member_prefix` (empty if none).
  std::vector<std::string> default_values;
  std::unique_ptr<retry_budget> budget;
  std::unique_ptr<seeded_rng> rng;
  work_batch outbox;
  /// Records whose retry waits for the retry budget, oldest first (entries
  /// of records decided meanwhile are skipped).
  std::deque<uint64_t> budget_waiting;
  /// timeout.total deadlines of the records started on this model, in
  /// start order: with one timeout per model they are also in time order,
  /// so a FIFO does what a heap would, in O(1). Entries of records decided
  /// meanwhile are skipped.
  std::deque<std::pair<policy_time, uint64_t>> deadlines;
  /// Results of this model go to the call log (checkpoint.call-log); its
  /// records get call keys (for the log and the Idempotency-Key header).
  bool logged = false;
  bool keyed = false;
  /// "name@model": a changed model behind the same name is not answered
  /// from the log.
  std::string call_key_model;
};

struct operator_state {
  operator_settings cfg;
  std::vector<link_state> links;
  record_producer upstream;
  uint32_t upstream_port = 0;
  receive_credit inbound{1};
  send_credit outbound;
  inflight_table<held_record> table{output_mode::ordered};
  deadline_queue<timer_key> timers;
  caf::actor_clock::time_point armed_at = caf::actor_clock::time_point::max();
  bool eos_received = false;
  bool eos_sent = false;
  /// Crashed and waiting for the restart: nothing is sent to batchers.
  bool crashed = false;
  simdjson::dom::parser parser;
  /// Checkpoints: the epoch calls are logged in (the checkpoint whose
  /// barrier comes next), results to log before they move on, and whether
  /// a failed log write was reported.
  uint64_t epoch = 1;
  std::vector<std::pair<std::string, std::string>> log_batch;
  std::unique_ptr<call_log_writer> log_writer;
  bool log_failed = false;
  std::vector<std::string> replayed_values;
};

using operator_pointer = stage_actor::stateful_pointer<operator_state>;

stage_counters& counters(operator_pointer self) {
  return self->state.cfg.counters->stages[self->state.cfg.stage];
}

std::string millis(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

/// Appends `values` (one per output; empty: leave out) under the link's
/// output fields, replacing clashing ones (runtime/record_fields.hpp).
void write_link_outputs(operator_pointer self, held_record& h, const link_state& link, const std::string* values) {
  write_outputs(self->state.parser, h.rec.json, h.clash, link.output_targets, link.member_prefix, values);
}

/// True when the deadline entry no longer belongs to a waiting record.
bool stale_deadline(operator_state& st, const std::pair<policy_time, uint64_t>& e) {
  auto* h = st.table.find_pending(e.second);
  return h == nullptr || h->att.phase == record_phase::done || h->att.deadline != e.first;
}

void arm(operator_pointer self) {
  auto& st = self->state;
  auto next = st.timers.next();
  for (auto& link : st.links) {
    while (!link.deadlines.empty() && stale_deadline(st, link.deadlines.front()))
      link.deadlines.pop_front();
    if (!link.deadlines.empty() && (!next || link.deadlines.front().first < *next))
      next = link.deadlines.front().first;
  }
  if (!next || *next >= st.armed_at)
    return;
  st.armed_at = *next;
  auto now = self->clock().now();
  self->delayed_send(self, *next > now ? *next - now : caf::timespan{0}, tick_atom::value);
}

/// Keeps the timer queues bounded: drops entries of records that are done.
void compact_timers(operator_pointer self) {
  auto& st = self->state;
  auto bound = 2 * st.table.size() + 64;
  if (st.timers.size() >= bound)
    st.timers.remove_if([&](policy_time, const timer_key& k) {
      auto* h = st.table.find_pending(k.ticket);
      return h == nullptr || h->att.phase == record_phase::done || k.attempt != h->att.attempt;
    });
  for (auto& link : st.links)
    if (link.deadlines.size() >= bound)
      link.deadlines.erase(std::remove_if(link.deadlines.begin(), link.deadlines.end(),
                                          [&](const auto& e) { return stale_deadline(st, e); }),
                           link.deadlines.end());
}

/// Reads the current model's inputs from the record into `values` (appended)
/// and their size into the work item; false (with `why`, `values`
/// unchanged) if the record cannot be scored by it.
bool extract_inputs(operator_pointer self, held_record& h, work_item& item, std::vector<std::string>& values,
                    std::string& why) {
  auto& st = self->state;
  auto& link = st.links[h.link];
  auto first = values.size();
  input_reading reading;
  bool ok = read_inputs(st.parser, h.rec.json, link.model->input, link.output_targets, values, reading, why);
  // The record keeps its text until its outputs are written (a dead letter
  // shows the record as it arrived); they then replace clashing fields. Set
  // on a missing input too: default-value outputs are written then.
  h.clash = reading.clash;
  if (!ok)
    return false;
  item.bytes = reading.bytes;
  if (link.keyed) {
    h.call_key = call_log_key(link.call_key_model, h.rec.id, values.data() + first, values.size() - first);
    item.call_key = fnv1a64(h.call_key);
  }
  return true;
}

void take_failure_action(operator_pointer self, uint64_t ticket, held_record& h, const std::string& why,
                         bool input_problem);
void complete(operator_pointer self, uint64_t ticket, held_record& h);

/// A call log entry that says the model's calls for the record failed for
/// good (after its attempts, or timeout.total), with why: replayed as that
/// failure, so a restore does not spend the attempts again.
constexpr char failed_entry = '\x02';

/// The call log answers `h` (its call completed before a crash): true when
/// its outputs are written from it, or its failure is taken again.
bool answer_from_log(operator_pointer self, uint64_t ticket, held_record& h) {
  auto& st = self->state;
  auto& replay = *st.cfg.checkpoints->replay;
  auto found = replay.find(h.call_key);
  if (found == replay.end())
    return false;
  std::string why;
  auto& link = st.links[h.link];
  if (!found->second.empty() && found->second[0] == failed_entry) {
    st.cfg.counters->calls_replayed.fetch_add(1, std::memory_order_relaxed);
    h.att.phase = record_phase::done;
    take_failure_action(self, ticket, h, found->second.substr(1), false);
    return true;
  }
  if (!decode_outputs(found->second, st.replayed_values, why) || st.replayed_values.size() != link.member_prefix.size()) {
    spdlog::warn("{}: the call log's entry for record offset {} is unusable ({}); calling the model", link.label,
                 h.rec.id.offset, why.empty() ? "another number of outputs" : why);
    return false;
  }
  st.cfg.counters->calls_replayed.fetch_add(1, std::memory_order_relaxed);
  write_link_outputs(self, h, link, st.replayed_values.data());
  complete(self, ticket, h);
  return true;
}

/// Starts an attempt of record `ticket` on its current model: the item goes
/// to that model's batcher with the next send.
void start_attempt(operator_pointer self, uint64_t ticket, held_record& h) {
  auto& st = self->state;
  auto& link = st.links[h.link];
  work_item item;
  std::string why;
  auto first = link.outbox.values.size();
  if (!extract_inputs(self, h, item, link.outbox.values, why)) {
    h.att.phase = record_phase::done;
    take_failure_action(self, ticket, h, why, true);
    return;
  }
  if (link.logged && !st.cfg.checkpoints->replay->empty() && answer_from_log(self, ticket, h)) {
    link.outbox.values.resize(first);
    return;
  }
  item.ticket = ticket;
  item.attempt = begin_attempt(h.att);
  item.avoid = h.avoid;
  item.deadline_ns = h.att.deadline == policy_time::max()
                       ? INT64_MAX
                       : std::chrono::duration_cast<std::chrono::nanoseconds>(h.att.deadline.time_since_epoch()).count();
  if (item.attempt == h.first_attempt)
    link.budget->on_first_attempt();
  link.outbox.items.push_back(item);
}

/// Starts record `ticket` on model `link` of the chain (0 at arrival) at
/// `now`.
void start_on_link(operator_pointer self, uint64_t ticket, held_record& h, uint8_t link,
                   caf::actor_clock::time_point now) {
  auto& st = self->state;
  auto attempts_so_far = h.att.attempt;
  auto last = h.att.last_error;
  admit_record(h.att, now, st.links[link].model->timeout);
  h.att.attempt = attempts_so_far;
  h.att.last_error = last;
  h.link = link;
  h.first_attempt = attempts_so_far + 1;
  h.avoid = -1;
  if (h.att.deadline != policy_time::max())
    st.links[link].deadlines.emplace_back(h.att.deadline, ticket);
  start_attempt(self, ticket, h);
}

/// Sends every batcher its pending work.
void send_work(operator_pointer self) {
  if (self->state.crashed)
    return; // the restart issues every held record again
  for (auto& link : self->state.links)
    if (!link.outbox.items.empty()) {
      self->send(link.batcher, work_atom::value, std::move(link.outbox));
      link.outbox = work_batch{};
    }
}

void complete(operator_pointer self, uint64_t ticket, held_record& h) {
  auto& st = self->state;
  if (h.retry_slot) {
    st.links[h.link].budget->release();
    h.retry_slot = false;
  }
  h.att.phase = record_phase::done;
  st.table.complete(ticket);
}

void take_failure_action(operator_pointer self, uint64_t ticket, held_record& h, const std::string& why,
                         bool input_problem) {
  auto& st = self->state;
  auto& link = st.links[h.link];
  auto& model = *link.model;
  counters(self).failed.fetch_add(1, std::memory_order_relaxed);
  if (link.logged && !input_problem && !h.call_key.empty())
    st.log_batch.emplace_back(h.call_key, failed_entry + why);
  // A record that is not a JSON object cannot take outputs: it is a dead
  // letter whatever the action (or fails the job when that is the action).
  bool malformed = input_problem && record_unusable(why);
  auto action = model.on_failure;
  if (action == failure_action::fallback && !malformed && h.link + 1u < st.links.size()) {
    counters(self).fell_back.fetch_add(1, std::memory_order_relaxed);
    if (h.retry_slot) {
      link.budget->release();
      h.retry_slot = false;
    }
    spdlog::debug("{}: record offset {} falls back to \"{}\": {}", link.label, h.rec.id.offset,
                  st.links[h.link + 1].model->name, why);
    start_on_link(self, ticket, h, static_cast<uint8_t>(h.link + 1), self->clock().now());
    return;
  }
  if (action == failure_action::default_value && !malformed) {
    counters(self).defaulted.fetch_add(1, std::memory_order_relaxed);
    write_link_outputs(self, h, link, link.default_values.data());
    complete(self, ticket, h);
    return;
  }
  h.rec.error = link.label + ": " + why;
  if (action == failure_action::fail_job)
    self->send(st.cfg.supervisor, fail_atom::value,
               h.rec.error + " (record offset " + std::to_string(h.rec.id.offset)
                 + "; failure-action is \"fail-job\")");
  complete(self, ticket, h);
}

std::string attempts_text(const held_record& h) {
  auto n = h.att.attempt + 1 - h.first_attempt;
  return std::to_string(n) + (n == 1 ? " attempt" : " attempts");
}

/// The record stops trying: its failure is its last error, with the
/// attempts made and, when given, why no further attempt follows.
void fail_after_attempts(operator_pointer self, uint64_t ticket, held_record& h, const char* reason = nullptr) {
  auto& e = h.att.last_error;
  std::string why = std::string{to_string(e.cls)} + ": " + e.message;
  if (e.cls != error_class::fatal_record)
    why += " (after " + attempts_text(h) + (reason != nullptr ? std::string{"; "} + reason : std::string{}) + ")";
  take_failure_action(self, ticket, h, why, false);
}

/// The retry budget has no tokens for `h`'s retry: it fails now.
void budget_exhausted(operator_pointer self, uint64_t ticket, held_record& h) {
  auto& st = self->state;
  st.cfg.counters->emit(job_event{"retry-budget-exhausted", {}}
                          .number("stage", st.cfg.stage + 1)
                          .text("model", st.links[h.link].model->name)
                          .number("subtask", st.cfg.subtask)
                          .number("offset", static_cast<double>(h.rec.id.offset)));
  fail_after_attempts(self, ticket, h, "retry budget exhausted");
}

/// A retry of `h` was granted by the budget at `now`: backoff with jitter,
/// at least Retry-After, unless timeout.total would pass first.
void schedule_retry_of(operator_pointer self, uint64_t ticket, held_record& h, caf::actor_clock::time_point now) {
  auto& st = self->state;
  auto& link = st.links[h.link];
  auto& model = *link.model;
  h.retry_slot = true;
  auto retry_number = h.att.attempt + 1 - h.first_attempt;
  auto backoff = backoff_delay(model.backoff, retry_number, h.att.last_backoff, *link.rng);
  auto when = earliest_retry(now, backoff, h.retry_after);
  if (!schedule_retry(h.att, when, backoff)) {
    fail_after_attempts(self, ticket, h, "timeout.total would pass before the next retry");
    return;
  }
  st.timers.push(when, timer_key{ticket, h.att.attempt});
}

void crash(operator_pointer self, const std::string& why);

void on_scored(operator_pointer self, item_result& r, const std::string* values) {
  auto& st = self->state;
  auto* h = st.table.find_pending(r.ticket);
  if (h == nullptr)
    return; // the record was decided already
  if (r.attempt < h->first_attempt)
    return; // an answer of a model the record has left (fallback): its outputs are not this model's
  auto& link = st.links[h->link];
  auto& model = *link.model;
  auto now = self->clock().now();
  bool current = r.attempt == h->att.attempt && h->att.phase == record_phase::queued;
  if (r.error.cls == error_class::crash) {
    if (current)
      crash(self, r.error.message);
    return;
  }
  auto limit = h->first_attempt + model.retry_max_attempts - 1;
  auto action = on_result(h->att, limit, r.attempt, r.error, now);
  if (action == attempt_action::ignore)
    return;
  if (current && h->retry_slot) {
    link.budget->release();
    h->retry_slot = false;
  }
  switch (action) {
    case attempt_action::ignore: return;
    case attempt_action::success:
      if (link.logged)
        st.log_batch.emplace_back(h->call_key, encode_outputs(values, link.member_prefix.size()));
      write_link_outputs(self, *h, link, values);
      complete(self, r.ticket, *h);
      return;
    case attempt_action::fail:
      fail_after_attempts(self, r.ticket, *h);
      return;
    case attempt_action::retry: {
      h->avoid = r.endpoint;
      h->retry_after = r.error.retry_after;
      if (!link.budget->try_acquire(st.table.size())) {
        counters(self).budget_refusals.fetch_add(1, std::memory_order_relaxed);
        if (link.budget->retries_in_flight() == 0) {
          // Out of tokens (retries are a fixed share of first attempts):
          // waiting could last for ever, so the record fails now.
          give_up(h->att);
          budget_exhausted(self, r.ticket, *h);
          return;
        }
        // The concurrency cap refuses for now: a retry in flight will end
        // and free it, so the record waits (bounded by timeout.total).
        h->att.phase = record_phase::waiting_retry;
        h->att.retry_at = policy_time::max();
        link.budget_waiting.push_back(r.ticket);
        return;
      }
      schedule_retry_of(self, r.ticket, *h, now);
      return;
    }
  }
}

/// Lets records waiting for the retry budget retry, oldest first, while it
/// allows.
void drain_budget_waiting(operator_pointer self) {
  auto& st = self->state;
  bool any = false;
  for (auto& link : st.links)
    any = any || !link.budget_waiting.empty();
  if (!any)
    return;
  auto now = self->clock().now();
  for (auto& link : st.links) {
    while (!link.budget_waiting.empty()) {
      auto ticket = link.budget_waiting.front();
      auto* h = st.table.find_pending(ticket);
      bool waiting = h != nullptr && h->att.phase == record_phase::waiting_retry
                     && h->att.retry_at == policy_time::max() && &st.links[h->link] == &link;
      if (!waiting) {
        link.budget_waiting.pop_front();
        continue;
      }
      if (!link.budget->try_acquire(st.table.size())) {
        if (link.budget->retries_in_flight() > 0)
          break; // still capped: wait for the next release
        // No retry in flight to wait for: the tokens are short.
        link.budget_waiting.pop_front();
        give_up(h->att);
        budget_exhausted(self, ticket, *h);
        continue;
      }
      link.budget_waiting.pop_front();
      h->att.phase = record_phase::queued; // back to "after a retry decision"
      schedule_retry_of(self, ticket, *h, now);
    }
  }
}

/// Sends every record allowed to leave (by order and downstream credit),
/// then grants the freed credit upstream.
void emit(operator_pointer self) {
  auto& st = self->state;
  record_chunk out;
  out.reserve(std::min<uint64_t>(st.outbound.available(), st.table.size()));
  held_record h;
  auto now = self->clock().now();
  auto& latency = counters(self).latency;
  while (st.outbound.available() > 0 && st.table.pop_ready(h)) {
    st.outbound.take();
    latency.record(now - h.arrived);
    out.push_back(std::move(h.rec));
  }
  if (out.empty())
    return;
  auto n = out.size();
  st.inbound.left(n);
  counters(self).left.fetch_add(n, std::memory_order_relaxed);
  self->send(st.cfg.downstream, records_atom::value, st.cfg.downstream_port, std::move(out));
  if (auto grant = st.inbound.take_grant(); grant > 0 && st.upstream)
    self->send(st.upstream, credit_atom::value, st.upstream_port, grant);
}

void maybe_finish(operator_pointer self) {
  auto& st = self->state;
  if (!st.eos_received || st.eos_sent || !st.table.empty())
    return;
  st.eos_sent = true;
  self->send(st.cfg.downstream, eos_atom::value, st.cfg.downstream_port);
  for (auto& link : st.links)
    self->send_exit(link.batcher, caf::exit_reason::user_shutdown);
  self->quit();
}

/// Writes the results of this turn to the call log, before they can move on.
void write_call_log(operator_pointer self) {
  auto& st = self->state;
  if (st.log_batch.empty())
    return;
  std::string error;
  if (st.log_writer->append(st.epoch, st.log_batch, st.cfg.call_log_sync, error)) {
    st.cfg.counters->calls_logged.fetch_add(st.log_batch.size(), std::memory_order_relaxed);
  } else if (!st.log_failed) {
    st.log_failed = true; // output stays exactly-once; only repeated calls after a crash are at stake
    spdlog::warn("{}: the call log cannot be written ({}); after a crash these calls would be made again",
                 st.links[0].label, error);
  }
  st.log_batch.clear();
}

/// A checkpoint's barrier: snapshot every held record, ack, pass it on.
void on_barrier(operator_pointer self, uint64_t epoch) {
  auto& st = self->state;
  std::vector<held_snapshot> held;
  held.reserve(st.table.size());
  st.table.for_each_held([&](const held_record& h, bool done) {
    held_snapshot s;
    s.rec = h.rec;
    s.done = done || h.att.phase == record_phase::done;
    s.link = h.link;
    held.push_back(std::move(s));
  });
  self->send(st.cfg.coordinator, ack_atom::value, epoch, operator_part_name(st.cfg.stage, st.cfg.subtask),
             encode_held(held));
  st.epoch = epoch + 1;
  self->send(st.cfg.downstream, barrier_atom::value, st.cfg.downstream_port, epoch);
}

/// A restored operator takes its snapshot's records first, in their order.
void restore(operator_pointer self) {
  auto& st = self->state;
  auto& ck = *st.cfg.checkpoints;
  st.epoch = ck.restored + 1;
  auto found = ck.held.find(operator_part_name(st.cfg.stage, st.cfg.subtask));
  if (found == ck.held.end() || found->second.empty())
    return;
  auto now = self->clock().now();
  st.inbound.restored(found->second.size());
  st.cfg.counters->records_in.fetch_add(found->second.size(), std::memory_order_relaxed);
  for (auto& snap : found->second) {
    held_record fresh;
    fresh.rec = snap.rec;
    fresh.arrived = now;
    auto ticket = st.table.admit(std::move(fresh));
    auto* h = st.table.find_pending(ticket);
    if (snap.done || h->rec.failed())
      st.table.complete(ticket);
    else
      start_on_link(self, ticket, *h, snap.link < st.links.size() ? snap.link : 0, now);
  }
  spdlog::debug("{} of subtask {}: restored {} records from checkpoint {}", st.links[0].label, st.cfg.subtask,
                found->second.size(), ck.restored);
}

/// After any change: send work, re-arm the timer, let records out.
void settle(operator_pointer self) {
  write_call_log(self); // before any result can leave
  drain_budget_waiting(self);
  send_work(self);
  compact_timers(self);
  arm(self);
  emit(self);
  maybe_finish(self);
}

/// Whether the stage's condition matches `rec` (a record that is not a JSON
/// object is tried: the model's input extraction dead-letters it).
bool applies(operator_pointer self, const record& rec) {
  auto& st = self->state;
  return condition_applies(st.parser, rec.json, st.cfg.condition);
}

/// Spawns (and links) the batcher of model `i` of the chain.
void spawn_link_batcher(operator_pointer self, size_t i) {
  auto& st = self->state;
  auto& chain = st.cfg.chain[i];
  auto& link = st.links[i];
  batcher_settings bs;
  bs.label = link.label;
  bs.stage = st.cfg.stage;
  bs.model = chain.model;
  bs.endpoints = chain.endpoints;
  bs.breakers = chain.breakers;
  bs.owner = caf::actor_cast<scored_listener>(self);
  bs.counters = st.cfg.counters;
  bs.routing_seed = chain.model->retry_seed * 1000003 + st.cfg.subtask * 7919 + i + 1;
  link.batcher = spawn_batcher(self->system(), std::move(bs));
  self->link_to(link.batcher);
}

void crash(operator_pointer self, const std::string& why) {
  auto& st = self->state;
  if (st.crashed)
    return;
  st.crashed = true;
  for (auto& link : st.links) {
    self->unlink_from(link.batcher);
    self->send_exit(link.batcher, caf::exit_reason::user_shutdown);
    link.outbox = work_batch{};
  }
  self->request(st.cfg.restarts, caf::infinite, crashed_atom::value, st.cfg.subtask, st.cfg.stage, why)
    .then([=](int64_t delay_ns) {
      if (delay_ns >= 0)
        self->delayed_send(self, std::chrono::nanoseconds{delay_ns}, restart_atom::value);
    });
}

/// After a crash: new batchers, a fresh retry budget, and every held record
/// that has no outcome yet starts again on the model it was on.
void restart(operator_pointer self) {
  auto& st = self->state;
  auto now = self->clock().now();
  for (size_t i = 0; i < st.links.size(); ++i) {
    auto& link = st.links[i];
    link.budget = std::make_unique<retry_budget>(link.model->retry_budget);
    link.budget_waiting.clear();
    link.deadlines.clear();
    link.outbox = work_batch{};
    spawn_link_batcher(self, i);
  }
  st.crashed = false;
  st.table.for_each_pending([&](uint64_t ticket, held_record& h) {
    if (h.att.phase == record_phase::done)
      return;
    h.retry_slot = false;
    start_on_link(self, ticket, h, h.link, now);
  });
}

stage_actor::behavior_type operator_behavior(operator_pointer self, operator_settings cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  for (size_t i = 0; i < st.cfg.chain.size(); ++i) {
    auto& chain = st.cfg.chain[i];
    auto& model = *chain.model;
    link_state link;
    link.model = chain.model;
    link.label = "stage " + std::to_string(st.cfg.stage + 1) + " \"" + st.cfg.chain[0].model->name + "\"";
    if (i > 0)
      link.label += " (fallback \"" + model.name + "\")";
    for (auto& out : model.output) {
      link.member_prefix.push_back(json_quote(out.second) + ":");
      link.output_targets.push_back(out.second);
      std::string dv;
      for (auto& d : model.default_value)
        if (d.first == out.second)
          dv = d.second;
      link.default_values.push_back(dv);
    }
    link.budget = std::make_unique<retry_budget>(model.retry_budget);
    link.logged = st.cfg.checkpoints
                  && (st.cfg.call_log == call_log_mode::all
                      || (st.cfg.call_log == call_log_mode::remote && is_http_provider(model)));
    link.keyed = st.cfg.checkpoints && (link.logged || is_http_provider(model));
    link.call_key_model = model.name + "@" + model.model;
    if (link.logged && !st.log_writer)
      st.log_writer = std::make_unique<call_log_writer>(
        st.cfg.checkpoints->call_log_dir, st.cfg.checkpoints->call_log_run, "stage-" + std::to_string(st.cfg.stage) + "-subtask-" + std::to_string(st.cfg.subtask));
    link.rng = std::make_unique<seeded_rng>(model.retry_seed * 1000003 + st.cfg.subtask * 7919 + st.cfg.stage);
    st.links.push_back(std::move(link));
    spawn_link_batcher(self, i);
  }
  // Credit returns in grants of an eighth of the window (fewer messages at
  // light load; the source still holds most of the window).
  st.inbound = receive_credit{st.cfg.chain[0].model->max_concurrent_operations,
                              st.cfg.chain[0].model->max_concurrent_operations / 8u};
  st.table = inflight_table<held_record>{st.cfg.mode};
  if (st.cfg.checkpoints) {
    restore(self);
    settle(self);
  }
  self->send(st.cfg.downstream, connect_atom::value, caf::actor_cast<record_producer>(self), uint32_t{0},
             st.cfg.downstream_port);
  return {
    [=](connect_atom, record_producer up, uint32_t out_port, uint32_t) {
      auto& st = self->state;
      st.upstream = std::move(up);
      st.upstream_port = out_port;
      self->send(st.upstream, credit_atom::value, out_port, st.inbound.initial_grant());
    },
    [=](records_atom, uint32_t, record_chunk& chunk) {
      auto& st = self->state;
      if (!st.inbound.arrived(chunk.size())) {
        self->send(st.cfg.supervisor, fail_atom::value,
                   st.links[0].label + ": upstream sent more records than granted (protocol bug)");
      }
      counters(self).note_held(st.inbound.held());
      auto now = self->clock().now();
      for (auto& rec : chunk) {
        bool scorable = !rec.failed();
        if (scorable && !applies(self, rec)) {
          scorable = false;
          counters(self).skipped.fetch_add(1, std::memory_order_relaxed);
        }
        held_record fresh;
        fresh.rec = std::move(rec);
        fresh.arrived = now;
        auto ticket = st.table.admit(std::move(fresh));
        auto* h = st.table.find_pending(ticket);
        if (scorable)
          start_on_link(self, ticket, *h, 0, now);
        else
          st.table.complete(ticket);
      }
      settle(self);
    },
    [=](scored_atom, scored_batch& scored) {
      auto outputs = scored.items.empty() ? 0 : scored.values.size() / scored.items.size();
      for (size_t i = 0; i < scored.items.size(); ++i)
        on_scored(self, scored.items[i], scored.values.data() + i * outputs);
      settle(self);
    },
    [=](tick_atom) {
      auto& st = self->state;
      st.armed_at = caf::actor_clock::time_point::max();
      auto now = self->clock().now();
      for (auto& k : st.timers.pop_due(now)) {
        auto* h = st.table.find_pending(k.ticket);
        if (h != nullptr && on_retry_timer(h->att, k.attempt, now)) {
          counters(self).retries.fetch_add(1, std::memory_order_relaxed);
          auto& e = h->att.last_error;
          counters(self).retries_by_reason[e.timed_out ? 1 : e.cls == error_class::rate_limited ? 2 : 0].fetch_add(
            1, std::memory_order_relaxed);
          start_attempt(self, k.ticket, *h);
        }
      }
      for (size_t l = 0; l < st.links.size(); ++l) {
        auto& fifo = st.links[l].deadlines;
        while (!fifo.empty() && fifo.front().first <= now) {
          auto ticket = fifo.front().second;
          fifo.pop_front();
          auto* h = st.table.find_pending(ticket);
          if (h == nullptr || !on_total_timeout(h->att, now))
            continue;
          counters(self).total_timeouts.fetch_add(1, std::memory_order_relaxed);
          auto& model = *st.links[h->link].model;
          std::string why = "timeout.total (" + millis(model.timeout.total) + ") exceeded after "
                            + attempts_text(*h);
          if (!h->att.last_error.ok())
            why += "; last error: " + std::string{to_string(h->att.last_error.cls)} + ": "
                   + h->att.last_error.message;
          take_failure_action(self, ticket, *h, why, false);
        }
      }
      settle(self);
    },
    [=](restart_atom) {
      restart(self);
      settle(self);
    },
    [=](credit_atom, uint32_t, uint64_t n) {
      self->state.outbound.grant(n);
      emit(self);
      maybe_finish(self);
    },
    [=](barrier_atom, uint32_t, uint64_t epoch) {
      on_barrier(self, epoch);
    },
    [=](eos_atom, uint32_t) {
      auto& st = self->state;
      st.eos_received = true;
      for (auto& link : st.links)
        self->send(link.batcher, flush_atom::value);
      maybe_finish(self);
    },
  };
}

} // namespace

operator_actor spawn_inference_operator(caf::actor_system& sys, operator_settings settings) {
  return caf::actor_cast<operator_actor>(sys.spawn(operator_behavior, std::move(settings)));
}

} // namespace sinfer
