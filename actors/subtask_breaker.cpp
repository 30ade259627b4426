#include "actors/subtask_breaker.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace sinfer {

namespace {

struct subscriber {
  gate_listener listener;
  uint32_t index;
};

struct subtask_breaker_state {
  subtask_breaker_settings cfg;
  std::unique_ptr<circuit_breaker> local;
  job_gate job;
  /// Probes reserved in the local breaker's current half-open period.
  uint32_t local_probes = 0;
  std::vector<subscriber> subscribers;
  endpoint_gate pushed;
  bool ever_pushed = false;
  call_summary pending;
  caf::actor_clock::time_point armed_at = caf::actor_clock::time_point::max();
};

using breaker_pointer = subtask_breaker_actor::stateful_pointer<subtask_breaker_state>;

bool same(const endpoint_gate& a, const endpoint_gate& b) {
  return a.state == b.state && a.probes == b.probes && a.job_probes == b.job_probes
         && a.subtask_epoch == b.subtask_epoch && a.job_epoch == b.job_epoch;
}

bool job_tier(breaker_pointer self) {
  return static_cast<bool>(self->state.cfg.job_breaker);
}

endpoint_gate current_gate(breaker_pointer self) {
  auto& st = self->state;
  endpoint_gate g;
  g.subtask_epoch = st.local->epoch();
  g.job_epoch = st.job.epoch;
  if (job_tier(self) && st.job.state != breaker_state::closed) {
    g.state = st.job.state;
    g.probes = st.job.state == breaker_state::half_open ? st.job.probes : 0;
    g.job_probes = true;
    // Calls made under the job's decision are the job's: the local breaker
    // does not count them (and its changes do not alter this gate).
    g.subtask_epoch = UINT64_MAX;
    return g;
  }
  g.state = st.local->state();
  g.probes = g.state == breaker_state::half_open ? st.local_probes : 0;
  return g;
}

void push(breaker_pointer self, bool force = false) {
  auto& st = self->state;
  auto g = current_gate(self);
  if (!force && st.ever_pushed && same(g, st.pushed))
    return;
  st.pushed = g;
  st.ever_pushed = true;
  // Probes are split among the batchers (a model that is both a stage and a
  // fallback has two here), so together they never exceed the grant.
  auto n = static_cast<uint32_t>(st.subscribers.size());
  for (uint32_t k = 0; k < n; ++k) {
    auto gk = g;
    if (g.state == breaker_state::half_open)
      gk.probes = g.probes / n + (k < g.probes % n ? 1 : 0);
    self->send(st.subscribers[k].listener, gate_atom::value, st.subscribers[k].index, gk);
  }
}

void arm(breaker_pointer self) {
  auto& st = self->state;
  auto next = st.local->next_deadline();
  if (!next || *next >= st.armed_at)
    return;
  st.armed_at = *next;
  auto now = self->clock().now();
  self->delayed_send(self, *next > now ? *next - now : caf::timespan{0}, tick_atom::value);
}

void note(breaker_pointer self, const breaker_transition& t) {
  auto& st = self->state;
  if (t.to == breaker_state::half_open) {
    // Reserve every probe now: the batcher spends them without asking.
    st.local_probes = 0;
    while (st.local->acquire(t.at).allowed)
      ++st.local_probes;
  }
  breaker_event e;
  e.at = std::chrono::duration_cast<std::chrono::nanoseconds>(t.at - st.cfg.job_start);
  e.endpoint = st.cfg.endpoint;
  e.scope = "subtask " + std::to_string(st.cfg.subtask);
  e.from = to_string(t.from);
  e.to = to_string(t.to);
  e.calls = t.calls;
  e.failures = t.failures;
  st.cfg.counters->add_breaker_event(e);
  spdlog::debug("breaker {} (subtask {}): {} -> {} after {} calls, {} failed", st.cfg.endpoint,
                st.cfg.subtask, e.from, e.to, t.calls, t.failures);
}

void flush_summary(breaker_pointer self) {
  auto& st = self->state;
  if (st.pending.calls == 0)
    return;
  self->send(st.cfg.job_breaker, summary_atom::value, st.pending);
  st.pending.calls = st.pending.failures = st.pending.slow = 0;
}

subtask_breaker_actor::behavior_type breaker_behavior(breaker_pointer self, subtask_breaker_settings cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.local = std::make_unique<circuit_breaker>(st.cfg.local);
  st.pending.subtask = st.cfg.subtask;
  if (job_tier(self))
    self->send(st.cfg.job_breaker, subscribe_atom::value, caf::actor_cast<job_gate_listener>(self),
               st.cfg.subtask);
  return {
    [=](subscribe_atom, gate_listener& listener, uint32_t index) {
      auto& st = self->state;
      st.subscribers.push_back(subscriber{listener, index});
      push(self, true);
    },
    [=](outcome_atom, const call_report& r) {
      auto& st = self->state;
      auto now = self->clock().now();
      if (auto t = st.local->record(now, r.subtask_epoch, call_outcome{r.failed, std::chrono::nanoseconds{r.latency_ns}}))
        note(self, *t);
      if (job_tier(self)) {
        if (st.pending.calls > 0 && st.pending.job_epoch != r.job_epoch)
          flush_summary(self);
        st.pending.job_epoch = r.job_epoch;
        ++st.pending.calls;
        if (r.failed)
          ++st.pending.failures;
        if (std::chrono::nanoseconds{r.latency_ns} >= st.cfg.job.slow_call_duration)
          ++st.pending.slow;
        if (r.failed || r.job_probe || st.pending.calls >= 16)
          flush_summary(self);
      }
      push(self);
      arm(self);
    },
    [=](jobstate_atom, uint32_t, const job_gate& g) {
      auto& st = self->state;
      auto was = st.job.state;
      st.job = g;
      if (g.state == breaker_state::closed && was != breaker_state::closed) {
        if (auto t = st.local->force(self->clock().now(), breaker_state::closed))
          note(self, *t);
      }
      // A new job decision always reaches the batchers, even if it looks
      // the same (fresh probe grants).
      push(self, true);
      arm(self);
    },
    [=](tick_atom) {
      auto& st = self->state;
      st.armed_at = caf::actor_clock::time_point::max();
      if (auto t = st.local->tick(self->clock().now()))
        note(self, *t);
      push(self);
      arm(self);
    },
  };
}

} // namespace

subtask_breaker_actor spawn_subtask_breaker(caf::actor_system& sys, subtask_breaker_settings settings) {
  return sys.spawn(breaker_behavior, std::move(settings));
}

} // namespace sinfer
