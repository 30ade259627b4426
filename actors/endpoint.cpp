#include "actors/endpoint.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <thread>
#include <unordered_map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "policies/call_pacing.hpp"
#include "policies/deadline_queue.hpp"
#include "policies/routing.hpp"

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
  /// Each listener that wanted slots here: the slots granted to it and not
  /// yet used by a call (returned when it dies: a restarted batcher must
  /// not leak slots), and its handle and index for this endpoint, to tell
  /// it the load when a call ends while it holds unused slots
  /// (`endpoint_settings::tells_holders`).
  struct listener_entry {
    uint32_t granted = 0;
    slot_listener handle;
    uint32_t index = 0;
  };
  std::map<caf::actor_addr, listener_entry> listeners;
  std::unique_ptr<concurrency_limiter> limiter;
  /// Start time, calls in flight at the start and batch size, per call.
  struct call_start {
    caf::actor_clock::time_point at;
    uint32_t in_flight;
    uint32_t rows;
  };
  std::unordered_map<uint64_t, call_start> started;
  /// timeout.attempt of the calls in flight, on one timer (armed for the
  /// earliest at `expiry_armed`; max: none). Entries of calls that answered
  /// are dropped when they come due.
  deadline_queue<uint64_t> expiries;
  caf::actor_clock::time_point expiry_armed = caf::actor_clock::time_point::max();
  /// No grants before this time (Retry-After).
  caf::actor_clock::time_point paused_until{};
  bool resume_armed = false;
  /// Pacing (policies/call_pacing.hpp): the last grant, and the time a
  /// tick is armed for (max: none).
  caf::actor_clock::time_point last_grant{};
  caf::actor_clock::time_point pace_armed_at = caf::actor_clock::time_point::max();
  /// Smoothed latency of successful calls (TCP's SRTT, 1/8), fading while
  /// idle for the routers (policies/routing.hpp).
  latency_estimate latency;
  /// The failure shares (endpoint_load::failure_rate and
  /// breaker_failure_rate) at `failure_at`.
  double failure_share = 0.0;
  double breaker_failure_share = 0.0;
  caf::actor_clock::time_point failure_at{};
  /// probe.type in-band: the estimate from this endpoint's calls.
  std::unique_ptr<in_band_probe> in_band;
  /// probe.type prometheus: the reader of its load_probe's scrapes.
  std::unique_ptr<prometheus_probe> scraper;
  /// prometheus: suspect at the last evaluation; a (stale) timer pending;
  /// the last failed scrape's error; a page without any configured metric
  /// was reported.
  bool suspect = false;
  bool stale_armed = false;
  std::string last_scrape_error;
  bool warned_unknown = false;
};

using endpoint_pointer = scheduled_endpoint::stateful_pointer<endpoint_state>;

/// Arms the attempt-timeout timer for the earliest call in flight, unless
/// one is armed for that time or earlier. One timer for all calls: a call
/// that answers in time costs no message.
void arm_expiry(endpoint_pointer self) {
  auto& st = self->state;
  auto next = st.expiries.next();
  if (!next || *next >= st.expiry_armed)
    return;
  st.expiry_armed = *next;
  auto now = self->clock().now();
  self->delayed_send(self, *next > now ? *next - now : caf::timespan{0}, expire_atom::value);
}

/// Publishes a probe reading to the counters (-1 fields: unknown).
void publish_reading(endpoint_counters& c, const probe_reading& r) {
  c.probe_queue_depth.store(r.queue_depth, std::memory_order_relaxed);
  c.probe_running.store(r.running, std::memory_order_relaxed);
  c.probe_mean_queue_ms.store(r.mean_queue_ms, std::memory_order_relaxed);
  c.probe_cache_usage.store(r.cache_usage, std::memory_order_relaxed);
  raise_to(c.max_probe_queue_depth, r.queue_depth);
}

/// A failure share of `st` at `now`: halves every second since the last
/// call.
double faded(const endpoint_state& st, double share, caf::actor_clock::time_point now) {
  if (share <= 0)
    return 0.0;
  auto idle = std::chrono::duration<double>(now - st.failure_at).count();
  return idle > 0 ? share * std::exp2(-idle) : share;
}

/// The endpoint's load now, for its slot messages (`grant` sets each
/// message's `in_flight`, its own slots included).
endpoint_load load_now(endpoint_pointer self) {
  auto& st = self->state;
  auto now = self->clock().now();
  endpoint_load l;
  l.in_flight = st.busy;
  l.calls = static_cast<uint32_t>(st.waiting.size());
  l.limit = st.limiter->limit();
  l.latency_ms = st.latency.current(now, !st.started.empty()); // calls in flight: no fading
  l.failure_rate = faded(st, st.failure_share, now);
  l.breaker_failure_rate = faded(st, st.breaker_failure_share, now);
  l.paused = now < st.paused_until;
  l.servers = st.limiter->server_slots();
  l.unqueued_ms = st.limiter->unqueued_latency_ns() / 1e6;
  if (st.in_band) {
    auto r = st.in_band->reading(now, static_cast<uint32_t>(st.waiting.size()));
    if (r.queue_depth >= 0)
      publish_reading(*st.cfg.counters, r);
    l.queue_depth = routing_queue_depth(r);
  } else if (st.scraper) {
    l.queue_depth = routing_queue_depth(st.scraper->current(now));
  }
  return l;
}

/// prometheus: re-evaluates the suspicion at `now` (counters, a log line
/// when it changes) and keeps a (stale) timer armed for when the last
/// answered scrape gets too old.
void review_probe(endpoint_pointer self) {
  auto& st = self->state;
  auto now = self->clock().now();
  auto& c = *st.cfg.counters;
  auto& health = st.scraper->health();
  bool suspect = health.suspect(now);
  if (suspect != st.suspect) {
    st.suspect = suspect;
    c.probe_suspect.store(suspect, std::memory_order_relaxed);
    if (st.cfg.events)
      st.cfg.events->write(job_event{suspect ? "endpoint-suspect" : "endpoint-healthy", {}}
                             .text("endpoint", st.cfg.name)
                             .text("why", suspect ? st.scraper->current(now).error : "load probe answers again"));
    if (suspect) {
      c.probe_suspect_periods.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("{}: {}{}; it keeps serving, the load-aware router prefers other endpoints", st.cfg.name,
                   st.scraper->current(now).error,
                   st.last_scrape_error.empty() ? std::string{} : " (last: " + st.last_scrape_error + ")");
    } else {
      spdlog::info("{}: load probe answered again; no longer suspect", st.cfg.name);
    }
  }
  if (!suspect && !st.stale_armed && health.stale_at() != policy_time::max()) {
    st.stale_armed = true;
    self->delayed_send(self, health.stale_at() - now, stale_atom::value);
  }
}

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
  if (st.busy >= limit || st.waiters.empty())
    return;
  auto load = load_now(self);
  // Pacing: single partial batches start no sooner than a call's latency
  // over the server's unqueued concurrency after the last grant; a want
  // of several slots (a full batch queued) goes first, at once.
  auto paced_after = [&](caf::actor_clock::time_point grant_time) {
    return st.cfg.pacing ? paced_start(grant_time, load.latency_ms, st.limiter->unqueued_concurrency()) : now;
  };
  auto next_start = paced_after(st.last_grant);
  while (st.busy < limit && !st.waiters.empty()) {
    auto it = st.waiters.begin();
    while (it != st.waiters.end() && pacing_holds(it->wanted, now, next_start))
      ++it;
    if (it == st.waiters.end()) {
      if (next_start < st.pace_armed_at) {
        st.pace_armed_at = next_start;
        self->delayed_send(self, next_start - now, tick_atom::value);
      }
      break;
    }
    auto& w = *it;
    auto k = std::min(w.wanted, limit - st.busy);
    st.busy += k;
    w.wanted -= k;
    st.listeners[w.listener.address()].granted += k;
    load.in_flight = st.busy;
    self->send(w.listener, slot_atom::value, w.index, k, load);
    if (w.wanted == 0)
      st.waiters.erase(it);
    st.last_grant = now;
    next_start = paced_after(now);
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
    // A call whose every record failed (e.g. all rejected before sending)
    // says nothing about the server's latency.
    bool rows_answered = res.row_errors.empty()
                         || std::any_of(res.row_errors.begin(), res.row_errors.end(),
                                        [](const call_error& e) { return e.ok(); });
    if (res.error.ok() && rows_answered) {
      auto latency = now - s->second.at;
      st.limiter->on_sample(now, latency, s->second.in_flight, s->second.rows);
      if (st.in_band)
        st.in_band->on_sample(now, latency);
      double ms = std::chrono::duration<double, std::milli>(latency).count();
      st.latency.observe(ms, now);
      c.latency_ms.store(st.latency.smoothed(), std::memory_order_relaxed);
      c.latency.record(latency);
    } else if (overload)
      st.limiter->on_drop(now);
    if (res.error.cls != error_class::fatal_record) {
      // A bad record says nothing about the endpoint.
      double failed = res.error.ok() ? 0.0 : 1.0;
      // What the breakers count: not rate limiting either.
      double breaker_failed = res.error.cls == error_class::rate_limited ? 0.0 : failed;
      auto share = faded(st, st.failure_share, now);
      auto breaker_share = faded(st, st.breaker_failure_share, now);
      st.failure_share = share + (failed - share) / 8;
      st.breaker_failure_share = breaker_share + (breaker_failed - breaker_share) / 8;
      st.failure_at = now;
    }
    st.started.erase(s);
    c.limit.store(st.limiter->limit(), std::memory_order_relaxed);
    c.server_concurrency.store(st.limiter->server_estimate(), std::memory_order_relaxed);
  }
  if (res.prompt_tokens + res.completion_tokens > 0) {
    c.prompt_tokens.fetch_add(res.prompt_tokens, std::memory_order_relaxed);
    c.completion_tokens.fetch_add(res.completion_tokens, std::memory_order_relaxed);
  }
  if (res.error.ok() && !res.names.empty()) {
    // Records scored: the rows without an error of their own.
    auto rows = res.values.size() / res.names.size();
    for (auto& e : res.row_errors)
      rows -= e.ok() ? 0 : 1;
    c.records_ok.fetch_add(rows, std::memory_order_relaxed);
    if (rows > 0)
      c.scored_calls.fetch_add(1, std::memory_order_relaxed);
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
  // A batcher holding a slot here unused (its router preferred to wait for
  // another endpoint) sees this endpoint's load only in slot messages: tell
  // it, or its view stays at the calls of its grant. Those holding unused
  // slots before the grant below (a batcher granted one now hears the load
  // with it).
  std::vector<std::pair<slot_listener, uint32_t>> holders;
  if (st.cfg.tells_holders)
    for (auto& [addr, l] : st.listeners)
      if (l.granted > 0)
        holders.emplace_back(l.handle, l.index);
  grant(self);
  if (!holders.empty()) {
    auto load = load_now(self);
    for (auto& [handle, index] : holders)
      self->send(handle, slot_atom::value, index, uint32_t{0}, load);
  }
}

/// One granted slot of the current sender is now used or given back.
void take_grant(endpoint_pointer self, uint32_t n) {
  auto& st = self->state;
  auto i = st.listeners.find(caf::actor_cast<caf::actor_addr>(self->current_sender()));
  if (i == st.listeners.end())
    return;
  i->second.granted -= std::min(i->second.granted, n);
}

scheduled_endpoint::behavior_type endpoint_behavior(endpoint_pointer self, endpoint_settings cfg) {
  self->state.cfg = std::move(cfg);
  auto lc = self->state.cfg.limiter;
  lc.max = self->state.cfg.concurrency;
  if (lc.kind == limiter_kind::fixed)
    lc.initial = lc.max;
  self->state.limiter = std::make_unique<concurrency_limiter>(concurrency_limiter::clamped(lc));
  self->state.cfg.counters->limit.store(self->state.limiter->limit());
  auto& probe = self->state.cfg.probe;
  if (probe == probe_kind::in_band) {
    self->state.in_band = std::make_unique<in_band_probe>(in_band_config{});
  } else if (probe == probe_kind::prometheus) {
    self->state.scraper = std::make_unique<prometheus_probe>(self->state.cfg.probe_metrics,
                                                             self->state.cfg.probe_health, self->clock().now());
    review_probe(self); // arms the first staleness check (none answered since start)
  }
  // A listener that dies gives back the slots it held and its place in line.
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& st = self->state;
    auto i = st.listeners.find(msg.source);
    if (i != st.listeners.end()) {
      st.busy -= std::min(st.busy, i->second.granted);
      st.listeners.erase(i);
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
      auto known = st.listeners.find(listener.address());
      if (known == st.listeners.end()) {
        known = st.listeners.emplace(listener.address(), endpoint_state::listener_entry{}).first;
        self->monitor(listener);
      }
      known->second.handle = listener;
      known->second.index = index;
      auto before = known->second.granted;
      // One entry per listener and index: a repeated want adds to it.
      bool added = false;
      for (auto& w : st.waiters)
        if (w.listener == listener && w.index == index) {
          w.wanted += n;
          added = true;
          break;
        }
      if (!added)
        st.waiters.push_back(waiter{listener, index, n});
      grant(self);
      // Nothing granted at once: say so at once, with the load, so the
      // batcher's router does not wait here on a stale view.
      if (st.cfg.load_reports && st.listeners[listener.address()].granted == before)
        self->send(listener, slot_atom::value, index, uint32_t{0}, load_now(self));
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
      st.started.emplace(id, endpoint_state::call_start{now, static_cast<uint32_t>(st.waiting.size()), req.rows});
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
      if (*completed_now)
        service += immediate->delay;
      if (*completed_now && service.count() <= 0) {
        finish(self, id, std::move(*immediate));
        return rp;
      }
      if (*completed_now)
        self->delayed_send(self, service, deliver_atom::value, id, std::move(*immediate));
      if (st.cfg.attempt_timeout.count() > 0 && st.waiting.count(id) > 0) {
        st.expiries.push(now + st.cfg.attempt_timeout, id);
        // Answered calls' entries wait for their time; keep them few.
        if (st.expiries.size() > 2 * st.waiting.size() + 256)
          st.expiries.remove_if([&](policy_time, uint64_t key) { return st.waiting.count(key) == 0; });
        arm_expiry(self);
      }
      return rp;
    },
    [=](deliver_atom, uint64_t id, call_result& res) {
      finish(self, id, std::move(res));
    },
    [=](expire_atom) {
      auto& st = self->state;
      st.expiry_armed = caf::actor_clock::time_point::max();
      for (auto id : st.expiries.pop_due(self->clock().now())) {
        if (st.waiting.count(id) == 0)
          continue; // answered in time
        st.cfg.counters->timeouts.fetch_add(1, std::memory_order_relaxed);
        call_result res;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(st.cfg.attempt_timeout).count();
        res.error = call_error{error_class::retryable,
                               st.cfg.name + ": no answer within timeout.attempt (" + std::to_string(ms) + " ms)",
                               std::chrono::milliseconds{0}, true};
        finish(self, id, std::move(res));
      }
      arm_expiry(self);
    },
    [=](tick_atom) {
      self->state.resume_armed = false;
      if (self->clock().now() >= self->state.pace_armed_at)
        self->state.pace_armed_at = caf::actor_clock::time_point::max();
      grant(self);
    },
    [=](scrape_atom, scrape_outcome& out) {
      auto& st = self->state;
      if (!st.scraper)
        return; // not a prometheus endpoint
      auto now = self->clock().now();
      auto& c = *st.cfg.counters;
      c.probe_scrapes.fetch_add(1, std::memory_order_relaxed);
      auto r = out.answered ? st.scraper->on_scrape(now, out.body)
                            : st.scraper->on_scrape_failed(now, std::move(out.error));
      if (!r.ok) {
        c.probe_failures.fetch_add(1, std::memory_order_relaxed);
        spdlog::debug("{}: load probe: {}", st.cfg.name, r.error);
        st.last_scrape_error = std::move(r.error);
      } else {
        st.last_scrape_error.clear();
        if (!r.known() && !st.warned_unknown) {
          st.warned_unknown = true;
          spdlog::warn("{}: the metrics page has none of the metrics probe.* names for this model (check the "
                       "names and probe.model-label-value)", st.cfg.name);
        }
        publish_reading(c, r);
        if (r.queue_depth >= 0) {
          st.limiter->on_probe(now, r.queue_depth, r.running);
          c.probe_limiter_readings.fetch_add(1, std::memory_order_relaxed);
          c.limit.store(st.limiter->limit(), std::memory_order_relaxed);
          grant(self); // a reading may raise the limit: waiters get the room now
        }
      }
      review_probe(self);
    },
    [=](stale_atom) {
      auto& st = self->state;
      st.stale_armed = false;
      if (st.scraper)
        review_probe(self);
    },
  };
}

} // namespace

scheduled_endpoint spawn_endpoint(caf::actor_system& sys, endpoint_settings settings) {
  return sys.spawn(endpoint_behavior, std::move(settings));
}

} // namespace sinfer
