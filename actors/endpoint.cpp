#include "actors/endpoint.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <thread>
#include <unordered_map>

#include <caf/all.hpp>

namespace sinfer {

namespace {

struct waiter {
  slot_listener listener;
  uint32_t index;
  uint32_t wanted;
};

struct endpoint_state {
  endpoint_settings cfg;
  uint64_t next_id = 0;
  std::unordered_map<uint64_t, caf::typed_response_promise<call_result>> waiting;
  /// Slots granted or in a call.
  uint32_t busy = 0;
  std::deque<waiter> waiters;
  /// Slots granted to each listener and not yet used by a call; returned
  /// when the listener dies (a restarted batcher must not leak slots).
  std::map<caf::actor_addr, uint32_t> granted;
  std::unique_ptr<concurrency_limiter> limiter;
  /// Start time and calls in flight at the start, per call.
  std::unordered_map<uint64_t, std::pair<caf::actor_clock::time_point, uint32_t>> started;
  /// No grants before this time (Retry-After).
  caf::actor_clock::time_point paused_until{};
  bool resume_armed = false;
};

using endpoint_pointer = scheduled_endpoint::stateful_pointer<endpoint_state>;

/// Grants free slots to waiting batchers, oldest request first.
void grant(endpoint_pointer self) {
  auto& st = self->state;
  auto now = self->clock().now();
  if (now < st.paused_until) {
    if (!st.resume_armed && !st.waiters.empty()) {
      st.resume_armed = true;
      self->delayed_send(self, st.paused_until - now, tick_atom::value);
    }
    return;
  }
  auto limit = st.limiter->limit();
  while (st.busy < limit && !st.waiters.empty()) {
    auto& w = st.waiters.front();
    auto k = std::min(w.wanted, limit - st.busy);
    st.busy += k;
    w.wanted -= k;
    st.granted[w.listener.address()] += k;
    self->send(w.listener, slot_atom::value, w.index, k);
    if (w.wanted == 0)
      st.waiters.pop_front();
  }
}

/// Answers call `id` (if still waiting) and frees its slot.
void finish(endpoint_pointer self, uint64_t id, call_result res) {
  auto& st = self->state;
  auto i = st.waiting.find(id);
  if (i == st.waiting.end())
    return; // answered already (timed out, or the late answer of one)
  auto& c = *st.cfg.counters;
  auto now = self->clock().now();
  if (auto s = st.started.find(id); s != st.started.end()) {
    bool overload = res.error.cls == error_class::rate_limited || res.error.timed_out;
    if (res.error.ok())
      st.limiter->on_sample(now, now - s->second.first, s->second.second);
    else if (overload)
      st.limiter->on_drop(now);
    st.started.erase(s);
    c.limit.store(st.limiter->limit(), std::memory_order_relaxed);
  }
  if (res.prompt_tokens + res.completion_tokens > 0) {
    c.prompt_tokens.fetch_add(res.prompt_tokens, std::memory_order_relaxed);
    c.completion_tokens.fetch_add(res.completion_tokens, std::memory_order_relaxed);
  }
  if (res.error.ok() && !res.names.empty()) {
    c.records_ok.fetch_add(res.values.size() / res.names.size(), std::memory_order_relaxed);
  } else if (!res.error.ok()) {
    c.failures.fetch_add(1, std::memory_order_relaxed);
    if (res.error.cls == error_class::rate_limited) {
      c.rate_limited.fetch_add(1, std::memory_order_relaxed);
      auto until = self->clock().now() + res.error.retry_after;
      st.paused_until = std::max(st.paused_until, until);
    }
  }
  i->second.deliver(std::move(res));
  st.waiting.erase(i);
  c.in_flight.fetch_sub(1, std::memory_order_relaxed);
  if (st.busy > 0)
    --st.busy;
  grant(self);
}

/// One granted slot of the current sender is now used or given back.
void take_grant(endpoint_pointer self, uint32_t n) {
  auto& st = self->state;
  auto i = st.granted.find(caf::actor_cast<caf::actor_addr>(self->current_sender()));
  if (i == st.granted.end())
    return;
  i->second -= std::min(i->second, n);
}

scheduled_endpoint::behavior_type endpoint_behavior(endpoint_pointer self, endpoint_settings cfg) {
  self->state.cfg = std::move(cfg);
  auto lc = self->state.cfg.limiter;
  lc.max = self->state.cfg.concurrency;
  if (lc.kind == limiter_kind::fixed)
    lc.initial = lc.max;
  self->state.limiter = std::make_unique<concurrency_limiter>(concurrency_limiter::clamped(lc));
  self->state.cfg.counters->limit.store(self->state.limiter->limit());
  // A listener that dies gives back the slots it held and its place in line.
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& st = self->state;
    auto i = st.granted.find(msg.source);
    if (i != st.granted.end()) {
      st.busy -= std::min(st.busy, i->second);
      st.granted.erase(i);
    }
    st.waiters.erase(std::remove_if(st.waiters.begin(), st.waiters.end(),
                                    [&](const waiter& w) { return w.listener.address() == msg.source; }),
                     st.waiters.end());
    grant(self);
  });
  return {
    [=](want_atom, slot_listener& listener, uint32_t index, uint32_t n) {
      auto& st = self->state;
      if (n == 0)
        return;
      if (st.granted.count(listener.address()) == 0) {
        st.granted.emplace(listener.address(), 0);
        self->monitor(listener);
      }
      // One entry per listener and index: a repeated want adds to it.
      for (auto& w : st.waiters)
        if (w.listener == listener && w.index == index) {
          w.wanted += n;
          grant(self);
          return;
        }
      st.waiters.push_back(waiter{std::move(listener), index, n});
      grant(self);
    },
    [=](release_atom, uint32_t n) {
      auto& st = self->state;
      take_grant(self, n);
      st.busy -= std::min(st.busy, n);
      grant(self);
    },
    [=](infer_atom, call_request& req) -> caf::typed_response_promise<call_result> {
      auto& st = self->state;
      take_grant(self, 1);
      auto now = self->clock().now();
      if (now < st.paused_until) {
        // A slot granted before the pause (or held by a lingering batch)
        // must not reach the server during a Retry-After: answer for it.
        call_result paused;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(st.paused_until - now);
        paused.error = call_error{error_class::rate_limited,
                                  st.cfg.name + ": paused by Retry-After for " + std::to_string(left.count()) + " ms more",
                                  left + std::chrono::milliseconds{1}};
        st.busy -= std::min(st.busy, 1u);
        auto rp = self->make_response_promise<call_result>();
        rp.deliver(std::move(paused));
        grant(self);
        return rp;
      }
      auto rp = self->make_response_promise<call_result>();
      auto id = st.next_id++;
      st.waiting.emplace(id, rp);
      st.started.emplace(id, std::make_pair(now, static_cast<uint32_t>(st.waiting.size())));
      auto& c = *st.cfg.counters;
      c.calls.fetch_add(1, std::memory_order_relaxed);
      raise_to(c.max_in_flight, c.in_flight.fetch_add(1, std::memory_order_relaxed) + 1);
      auto service = st.cfg.latency + st.cfg.latency_per_record * req.rows;
      auto handler_thread = std::this_thread::get_id();
      // Read only on the handler's own thread, so no synchronisation needed.
      auto in_handler = std::make_shared<bool>(true);
      auto immediate = std::make_shared<call_result>();
      auto completed_now = std::make_shared<bool>(false);
      auto handle = caf::actor_cast<scheduled_endpoint>(self);
      st.cfg.backend->infer(req, [=](call_result res) {
        if (std::this_thread::get_id() != handler_thread || !*in_handler) { // completed later
          caf::anon_send(handle, deliver_atom::value, id, std::move(res));
          return;
        }
        *immediate = std::move(res);
        *completed_now = true;
      });
      *in_handler = false;
      if (*completed_now && service.count() <= 0) {
        finish(self, id, std::move(*immediate));
        return rp;
      }
      if (*completed_now)
        self->delayed_send(self, service, deliver_atom::value, id, std::move(*immediate));
      if (st.cfg.attempt_timeout.count() > 0 && st.waiting.count(id) > 0)
        self->delayed_send(self, st.cfg.attempt_timeout, expire_atom::value, id);
      return rp;
    },
    [=](deliver_atom, uint64_t id, call_result& res) {
      finish(self, id, std::move(res));
    },
    [=](expire_atom, uint64_t id) {
      auto& st = self->state;
      if (st.waiting.count(id) == 0)
        return;
      st.cfg.counters->timeouts.fetch_add(1, std::memory_order_relaxed);
      call_result res;
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(st.cfg.attempt_timeout).count();
      res.error = call_error{error_class::retryable,
                             st.cfg.name + ": no answer within timeout.attempt (" + std::to_string(ms) + " ms)",
                             std::chrono::milliseconds{0}, true};
      finish(self, id, std::move(res));
    },
    [=](tick_atom) {
      self->state.resume_armed = false;
      grant(self);
    },
  };
}

} // namespace

scheduled_endpoint spawn_endpoint(caf::actor_system& sys, endpoint_settings settings) {
  return sys.spawn(endpoint_behavior, std::move(settings));
}

} // namespace sinfer
