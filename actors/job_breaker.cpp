#include "actors/job_breaker.hpp"

#include <algorithm>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace sinfer {

namespace {

struct subscriber {
  job_gate_listener listener;
  uint32_t subtask;
  /// When this subtask last reported calls (never: min): probes go to the
  /// subtasks that use the endpoint, not to idle ones.
  caf::actor_clock::time_point last_seen = caf::actor_clock::time_point::min();
};

struct job_breaker_state {
  job_breaker_settings cfg;
  std::unique_ptr<circuit_breaker> breaker;
  std::vector<subscriber> subscribers;
  /// The next subscriber to get a probe.
  size_t next_probe = 0;
  caf::actor_clock::time_point armed_at = caf::actor_clock::time_point::max();
};

using job_breaker_pointer = job_breaker_actor::stateful_pointer<job_breaker_state>;

void arm(job_breaker_pointer self) {
  auto& st = self->state;
  auto next = st.breaker->next_deadline();
  if (!next || *next >= st.armed_at)
    return;
  st.armed_at = *next;
  auto now = self->clock().now();
  self->delayed_send(self, *next > now ? *next - now : caf::timespan{0}, tick_atom::value);
}

/// Pushes the breaker's state; in half-open, hands out the probes, one at a
/// time in turn to the subtasks that have called the endpoint (most recent
/// first; all subtasks when none has).
void push(job_breaker_pointer self, caf::actor_clock::time_point now) {
  auto& st = self->state;
  std::vector<uint32_t> probes(st.subscribers.size(), 0);
  if (st.breaker->state() == breaker_state::half_open && !st.subscribers.empty()) {
    std::vector<size_t> candidates;
    for (size_t i = 0; i < st.subscribers.size(); ++i)
      if (st.subscribers[i].last_seen != caf::actor_clock::time_point::min())
        candidates.push_back(i);
    if (candidates.empty())
      for (size_t i = 0; i < st.subscribers.size(); ++i)
        candidates.push_back(i);
    std::stable_sort(candidates.begin(), candidates.end(), [&](size_t a, size_t b) {
      return st.subscribers[a].last_seen > st.subscribers[b].last_seen;
    });
    // A stuck half-open (probes unused) turns half-open again: the next
    // round starts where this one stopped, so other subtasks get them.
    while (st.breaker->acquire(now).allowed) {
      ++probes[candidates[st.next_probe % candidates.size()]];
      ++st.next_probe;
    }
  }
  for (size_t i = 0; i < st.subscribers.size(); ++i) {
    job_gate g{st.breaker->state(), st.breaker->epoch(), probes[i]};
    self->send(st.subscribers[i].listener, jobstate_atom::value, st.cfg.index, g);
  }
}

void note(job_breaker_pointer self, const breaker_transition& t) {
  auto& st = self->state;
  breaker_event e;
  e.at = std::chrono::duration_cast<std::chrono::nanoseconds>(t.at - st.cfg.job_start);
  e.endpoint = st.cfg.endpoint;
  e.scope = "job";
  e.from = to_string(t.from);
  e.to = to_string(t.to);
  e.calls = t.calls;
  e.failures = t.failures;
  st.cfg.counters->add_breaker_event(e);
  if (t.to == breaker_state::open)
    spdlog::info("breaker {}: open for the whole job for {} ms ({} of {} calls failed)", st.cfg.endpoint,
                 std::chrono::duration_cast<std::chrono::milliseconds>(t.open_for).count(), t.failures, t.calls);
  else
    spdlog::info("breaker {}: {} -> {}", st.cfg.endpoint, e.from, e.to);
  push(self, t.at);
}

job_breaker_actor::behavior_type job_breaker_behavior(job_breaker_pointer self, job_breaker_settings cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.breaker = std::make_unique<circuit_breaker>(st.cfg.config);
  return {
    [=](subscribe_atom, job_gate_listener& listener, uint32_t subtask) {
      auto& st = self->state;
      st.subscribers.push_back(subscriber{listener, subtask});
      self->send(listener, jobstate_atom::value, st.cfg.index,
                 job_gate{st.breaker->state(), st.breaker->epoch(), 0});
    },
    [=](summary_atom, const call_summary& s) {
      auto& st = self->state;
      auto now = self->clock().now();
      for (auto& sub : st.subscribers)
        if (sub.subtask == s.subtask)
          sub.last_seen = now;
      if (auto t = st.breaker->record_summary(now, s.job_epoch, s.calls, s.failures, s.slow))
        note(self, *t);
      arm(self);
    },
    [=](tick_atom) {
      auto& st = self->state;
      st.armed_at = caf::actor_clock::time_point::max();
      if (auto t = st.breaker->tick(self->clock().now()))
        note(self, *t);
      arm(self);
    },
  };
}

} // namespace

job_breaker_actor spawn_job_breaker(caf::actor_system& sys, job_breaker_settings settings) {
  return sys.spawn(job_breaker_behavior, std::move(settings));
}

} // namespace sinfer
