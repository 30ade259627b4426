#include "actors/batcher.hpp"

#include <algorithm>

#include <deque>
#include <optional>

#include <caf/all.hpp>

#include "policies/batching.hpp"
#include "policies/circuit_breaker.hpp"
#include "policies/routing.hpp"

namespace sinfer {

namespace {

struct queued_item {
  work_item item;
  caf::actor_clock::time_point since;
};

struct endpoint_link {
  endpoint_gate gate;
  /// Slots granted and not used yet; slots asked for and not granted yet.
  uint32_t held = 0;
  uint32_t wanted = 0;
  /// This batcher's calls in flight there, and their smoothed latency (ms):
  /// the router's view until the endpoint reports its own.
  uint32_t outstanding = 0;
  double latency_ms = 0;
  /// The endpoint's job-wide load as of its last slot message, and whether
  /// one came yet.
  endpoint_load load;
  bool reported = false;
  /// Of the slots busy in that report, those not this batcher's (its held
  /// slots and calls then): the rest of the job's load there.
  uint32_t others = 0;
  /// Of the calls in flight there in that report, those not this
  /// batcher's: slots granted and not used (other batchers waiting for a
  /// batch, or holding one for a faster endpoint) carry no work.
  uint32_t others_calls = 0;
  /// A want went out and no slot message came since: with load reports its
  /// answer (slots, or a 0-slot report) is one message away.
  bool asked = false;
  /// The outcomes this batcher reported to the endpoint's subtask breaker
  /// and that breaker counts (those of its current epoch, `breaker_epoch`),
  /// in a window like its own (a new epoch clears it, as closing clears the
  /// breaker's): whether the breaker's window shows the endpoint's
  /// failures yet, before routing counts them against it
  /// (router::counted_failure_rate). A model that is also a fallback shares
  /// its breakers with the fallback's batcher: each sees its own calls.
  std::optional<outcome_window> reported_outcomes;
  uint64_t breaker_epoch = 0;

  bool allowed() const noexcept {
    return gate.state == breaker_state::closed
           || (gate.state == breaker_state::half_open && gate.probes > 0);
  }
};

struct batcher_state {
  batcher_settings cfg;
  std::vector<std::string> input_names;
  std::deque<queued_item> queue;
  /// The queued items' input values, `inputs` per item, in queue order.
  std::deque<std::string> values;
  size_t inputs = 0;
  std::vector<endpoint_link> links;
  bool flushing = false;
  /// Endpoints answer every want at once (load-aware over several
  /// endpoints: see endpoint_settings::load_reports).
  bool load_reports = false;
  /// Load-aware routing by finish time, with waiting for a faster endpoint:
  /// under the gradient limiter only (see pump).
  bool finish_time = false;
  /// The failure rate at which the model's breakers open (the lower of
  /// the subtask's and, when on, the job's).
  double breaker_rate = 0.5;
  /// `routing.strategy` picks; for every strategy but load-aware, the
  /// endpoint the next batch goes to (-1: not chosen yet).
  std::unique_ptr<router> routes;
  int target = -1;
  caf::actor_clock::time_point armed_at = caf::actor_clock::time_point::max();
};

using batcher_pointer = batcher_actor::stateful_pointer<batcher_state>;

int64_t ns_since_epoch(caf::actor_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

/// Per-record results of one call, outputs in the model's output order.
scored_batch split_result(const model_config& model, const std::vector<work_item>& items, int32_t endpoint,
                          call_result& res, bool& endpoint_failed) {
  scored_batch out;
  out.items.resize(items.size());
  auto outputs = model.output.size();
  out.values.resize(items.size() * outputs);
  std::vector<int> column_of(outputs, -1);
  for (size_t k = 0; k < outputs; ++k)
    for (size_t c = 0; c < res.names.size(); ++c)
      if (res.names[c] == model.output[k].first)
        column_of[k] = static_cast<int>(c);
  call_error problem = res.error;
  if (problem.ok()) {
    for (size_t k = 0; k < outputs; ++k)
      if (column_of[k] < 0)
        problem = call_error{error_class::fatal_endpoint,
                             "the result has no output \"" + model.output[k].first + "\"",
                             std::chrono::milliseconds{0}};
    bool bad_rows = !res.row_errors.empty() && res.row_errors.size() != items.size();
    if (bad_rows || res.values.size() != items.size() * res.names.size())
      problem = call_error{error_class::fatal_endpoint,
                           "the result does not have one entry per record of the batch ("
                             + std::to_string(items.size()) + " records)",
                           std::chrono::milliseconds{0}};
  }
  endpoint_failed = !problem.ok() && problem.cls != error_class::rate_limited
                    && problem.cls != error_class::fatal_record;
  for (size_t row = 0; row < items.size(); ++row) {
    auto& r = out.items[row];
    r.ticket = items[row].ticket;
    r.attempt = items[row].attempt;
    r.endpoint = endpoint;
    if (!problem.ok()) {
      r.error = problem;
      continue;
    }
    if (!res.row_errors.empty() && !res.row_errors[row].ok()) {
      r.error = res.row_errors[row];
      continue;
    }
    for (size_t k = 0; k < outputs; ++k)
      out.values[row * outputs + k] =
        std::move(res.values[row * res.names.size() + static_cast<size_t>(column_of[k])]);
  }
  return out;
}

void pump(batcher_pointer self);

/// Sends `items` as one call to endpoint `index`.
void send_batch(batcher_pointer self, uint32_t index, std::vector<work_item> items, call_request req,
                batch_close why) {
  auto& st = self->state;
  auto& link = st.links[index];
  auto& sc = st.cfg.counters->stages[st.cfg.stage];
  sc.calls.fetch_add(1, std::memory_order_relaxed);
  sc.batches_by_reason[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
  sc.batched_records.fetch_add(items.size(), std::memory_order_relaxed);
  raise_to(sc.max_batch, items.size());
  sc.note_batch(items.size());
  call_report report;
  report.endpoint = index;
  report.subtask_epoch = link.gate.subtask_epoch;
  report.job_epoch = link.gate.job_epoch;
  if (link.gate.state == breaker_state::half_open) {
    --link.gate.probes;
    report.probe = true;
    report.job_probe = link.gate.job_probes;
  }
  req.names = st.input_names;
  req.rows = static_cast<uint32_t>(items.size());
  if (std::any_of(items.begin(), items.end(), [](const work_item& it) { return it.call_key != 0; })) {
    std::vector<uint64_t> keys; // checkpointed jobs only: no allocation otherwise
    keys.reserve(items.size());
    for (auto& it : items)
      keys.push_back(it.call_key);
    req.idempotency_key = idempotency_key_of(keys);
  }
  auto sent = std::make_shared<std::vector<work_item>>(std::move(items));
  auto started = self->clock().now();
  ++link.outstanding;
  auto answer = [=](call_result& res) {
    auto& st = self->state;
    auto r = report;
    r.latency_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(self->clock().now() - started).count();
    auto& l = st.links[index];
    l.outstanding -= std::min<uint32_t>(l.outstanding, 1);
    if (res.error.ok()) {
      // TCP's SRTT smoothing (1/8): the router's latency estimate.
      double ms = static_cast<double>(r.latency_ns) / 1e6;
      l.latency_ms = l.latency_ms == 0 ? ms : l.latency_ms + (ms - l.latency_ms) / 8;
    }
    bool failed = false;
    auto results = split_result(*st.cfg.model, *sent, static_cast<int32_t>(index), res, failed);
    r.failed = failed;
    // Read only by load-aware routing with load reports; the breaker
    // ignores outcomes of another epoch too.
    if (st.load_reports && r.subtask_epoch == l.breaker_epoch)
      l.reported_outcomes->add(self->clock().now(), 1, failed ? 1 : 0, 0);
    self->send(st.cfg.breakers[index], outcome_atom::value, r);
    self->send(st.cfg.owner, scored_atom::value, std::move(results));
    if (st.finish_time && !st.queue.empty())
      pump(self); // one call fewer there: a slot held there may now run a batch at once
  };
  self->request(st.cfg.endpoints[index], caf::infinite, infer_atom::value, std::move(req))
    .then(answer, [=](caf::error& err) {
      call_result res;
      res.error = call_error{error_class::retryable, "endpoint unavailable: " + self->system().render(err),
                             std::chrono::milliseconds{0}};
      answer(res);
    });
}

/// Takes up to `n` items for endpoint `index` from the queue, their inputs
/// into `req`: skips (keeps) retries that avoid this endpoint when another
/// may serve them; drops items past their deadline.
std::vector<work_item> take_items(batcher_pointer self, uint32_t index, uint32_t n, bool others_allowed,
                                  call_request& req) {
  auto& st = self->state;
  auto now_ns = ns_since_epoch(self->clock().now());
  std::vector<work_item> batch;
  batch.reserve(n);
  req.values.reserve(static_cast<size_t>(n) * st.inputs);
  std::vector<queued_item> kept;
  std::vector<std::string> kept_values;
  while (!st.queue.empty() && batch.size() < n) {
    auto& q = st.queue.front();
    bool expired = q.item.deadline_ns <= now_ns;
    bool avoided = !expired && others_allowed && q.item.avoid == static_cast<int32_t>(index);
    for (size_t k = 0; k < st.inputs; ++k) {
      if (avoided)
        kept_values.push_back(std::move(st.values.front()));
      else if (!expired)
        req.values.push_back(std::move(st.values.front()));
      st.values.pop_front();
    }
    if (avoided)
      kept.push_back(std::move(q));
    else if (!expired)
      batch.push_back(std::move(q.item));
    st.queue.pop_front();
  }
  for (size_t i = kept.size(); i-- > 0;)
    st.queue.push_front(std::move(kept[i]));
  for (size_t i = kept_values.size(); i-- > 0;)
    st.values.push_front(std::move(kept_values[i]));
  return batch;
}

/// Asks the allowed endpoints for the slots the queue needs: each allowed
/// endpoint is asked for its share (at least one), so the fastest to grant
/// gets the batch and a slow one cannot starve the queue. An endpoint that
/// every queued item avoids (retries of its failures, while another
/// endpoint is allowed) is not asked: it would grant a slot nobody uses.
void want_slots(batcher_pointer self, size_t allowed) {
  auto& st = self->state;
  uint64_t max_size = std::max<uint32_t>(1, st.cfg.model->batch.max_size);
  uint64_t demand = (st.queue.size() + max_size - 1) / max_size;
  uint64_t share = std::max<uint64_t>(1, (demand + allowed - 1) / allowed);
  if (st.target >= 0)
    share = demand; // a pinned strategy: only the target is asked
  for (uint32_t i = 0; i < st.links.size(); ++i) {
    auto& link = st.links[i];
    if (!link.allowed() || (st.target >= 0 && st.target != static_cast<int>(i)))
      continue;
    if (allowed > 1 && st.target < 0) {
      bool useful = false;
      for (auto& q : st.queue)
        if (q.item.avoid != static_cast<int32_t>(i)) {
          useful = true;
          break;
        }
      if (!useful)
        continue;
    }
    uint64_t cap = link.gate.state == breaker_state::half_open ? link.gate.probes : share;
    uint64_t have = link.wanted + link.held;
    if (have < std::min(share, cap)) {
      auto n = static_cast<uint32_t>(std::min(share, cap) - have);
      link.wanted += n;
      link.asked = true;
      self->send(st.cfg.endpoints[i], want_atom::value, caf::actor_cast<slot_listener>(self), i, n);
    }
  }
}

void release_unused(batcher_pointer self) {
  auto& st = self->state;
  for (uint32_t i = 0; i < st.links.size(); ++i) {
    auto& link = st.links[i];
    bool keep = link.allowed() && !st.queue.empty() && (st.target < 0 || st.target == static_cast<int>(i));
    if (link.held > 0 && !keep) {
      self->send(st.cfg.endpoints[i], release_atom::value, link.held);
      link.held = 0;
    }
  }
}

void pump(batcher_pointer self) {
  auto& st = self->state;
  auto& bcfg = st.cfg.model->batch;
  for (;;) {
    release_unused(self);
    if (st.queue.empty())
      return;
    size_t allowed = 0;
    int chosen = -1;
    auto n = static_cast<uint32_t>(st.links.size());
    auto strategy = st.cfg.model->routing;
    if (strategy == routing_strategy::load_aware) {
      // Every allowed endpoint is asked for slots and they come wherever
      // capacity frees, so a batch lands where the queue is shortest (join
      // the idle queue). The router's power of two choices picks where the
      // batch would be answered sooner, from each endpoint's job-wide load
      // (its last slot message: calls in flight, probe queue depth,
      // latency with and without queueing, server slots), among the
      // endpoints that hold a slot for this batcher or, with load reports,
      // owe an answer to a want: when it picks one of those, the batch
      // waits for that answer (slots, or at once a report that it has
      // none), so a loaded or suspect endpoint that happens to answer first
      // does not get the batch. An endpoint without a slot for this batcher
      // and no answer on the way (not paused) is in the pick too, as one
      // the batch would wait at behind this batcher's other queued batches:
      // when it still wins, the batch waits for its slot instead of taking
      // a slot where it would finish later (a slower server, or one whose
      // limit lets calls queue), so records do not sit in a slow server's
      // queue while a faster one runs short of them. Half-open endpoints
      // first: their few probes decide recovery and would otherwise go
      // unused.
      //
      // Waiting for a faster endpoint, and the score by finish time, are
      // for the gradient limiter only (`finish_time`): its limits let calls
      // queue at the server (sqrt of the limit), which is what they avoid
      // (bench/run routing --limiter gradient: 0.63-0.67 of capacity
      // without, 0.92-0.97 with). With fixed or aimd concurrency the limit
      // is taken as the server's slots and a granted slot never queues:
      // waiting gained nothing measurable (fixed k 0.904-0.945 with it,
      // 0.908-0.928 without), and the finish-time score, which counts no
      // calls below the server's slots, split two idle endpoints of the
      // same speed by noise (the demo: 246 : 756 calls, against 463 : 539;
      // that was before router::beats' tie, not tried with fixed since).
      // There the router picks among the endpoints holding or owing a slot
      // by (calls + probe queue + 1) x latency. In both, an endpoint's
      // failures count against it only below its breaker's failure rate, or
      // once its breaker's window shows that rate
      // (router::counted_failure_rate): an endpoint failing at the
      // breaker's rate must get the calls its breaker needs to open.
      std::vector<endpoint_view> views(n);
      bool probe_held = false;
      for (uint32_t i = 0; i < n; ++i) {
        auto& l = st.links[i];
        bool pending = l.held == 0 && l.asked && st.load_reports;
        // Waiting is only for an endpoint that want_slots will ask: one
        // that some queued record does not avoid.
        bool waitable = st.finish_time && l.held == 0 && !pending && st.load_reports && l.reported && !l.load.paused
                        && std::any_of(st.queue.begin(), st.queue.end(),
                                       [&](const queued_item& q) { return q.item.avoid != static_cast<int32_t>(i); });
        views[i].allowed = l.allowed() && (l.held > 0 || pending || waitable);
        // An answer on the way (or one a want would get) is a slot unless
        // the last report left no room: then it is most likely none.
        bool room = !st.finish_time || !l.reported || l.others + l.outstanding < l.load.limit;
        views[i].slot = l.held > 0 || ((pending || waitable) && room);
        views[i].limit = UINT32_MAX;
        if (l.reported) {
          // The others' calls (finish_time: not their unused slots, which
          // carry no work) or slots as last reported, plus this batcher's
          // calls there now (the slot this batch takes is the score's + 1).
          views[i].in_flight = (st.finish_time ? l.others_calls : l.others) + l.outstanding;
          views[i].queue_depth = l.load.queue_depth;
          views[i].latency_ms = l.load.latency_ms > 0 ? l.load.latency_ms : l.latency_ms;
          auto window = l.reported_outcomes->at(self->clock().now());
          views[i].failure_rate =
            router::counted_failure_rate(l.load.failure_rate, l.load.breaker_failure_rate, st.breaker_rate, window.calls,
                                         window.failures, st.cfg.model->subtask_breaker.minimum_calls);
          if (st.finish_time) {
            views[i].servers = l.load.servers;
            views[i].unqueued_ms = l.load.unqueued_ms;
          }
        } else {
          views[i].in_flight = l.outstanding;
          views[i].latency_ms = l.latency_ms;
        }
        if (l.allowed())
          ++allowed;
        if (l.allowed() && l.held > 0 && l.gate.state == breaker_state::half_open)
          probe_held = true;
      }
      if (probe_held)
        for (uint32_t i = 0; i < n; ++i)
          views[i].allowed = views[i].allowed && st.links[i].gate.state == breaker_state::half_open;
      uint64_t max_size = std::max<uint32_t>(1, bcfg.max_size);
      auto batches = static_cast<uint32_t>(std::min<uint64_t>(UINT32_MAX, (st.queue.size() + max_size - 1) / max_size));
      chosen = st.routes->pick(views, batches);
      if (chosen >= 0 && st.links[static_cast<size_t>(chosen)].held == 0)
        chosen = -1; // its answer is on the way, or a slot (wanted below) will free there
    } else {
      // A pinned strategy: the router names the endpoint of the next batch,
      // and the batch waits for a slot there.
      std::vector<endpoint_view> views(n);
      for (uint32_t i = 0; i < n; ++i) {
        views[i].allowed = st.links[i].allowed();
        views[i].limit = UINT32_MAX;
        views[i].weight = st.cfg.model->endpoints[i].weight;
        allowed += views[i].allowed ? 1 : 0;
      }
      if (st.target >= 0 && !views[static_cast<size_t>(st.target)].allowed)
        st.target = -1;
      if (st.target < 0)
        st.target = st.routes->pick(views);
      if (st.target >= 0 && st.links[static_cast<size_t>(st.target)].held > 0)
        chosen = st.target;
    }
    if (allowed == 0)
      return; // every endpoint open: records wait (bounded by credit and timeout.total)
    if (chosen < 0) {
      want_slots(self, allowed);
      return;
    }
    batch_queue_view view;
    view.queued = st.queue.size();
    view.oldest = st.queue.front().since;
    view.fit_bytes = view.queued;
    if (bcfg.max_bytes > 0) {
      uint64_t bytes = 0;
      view.fit_bytes = 0;
      for (auto& q : st.queue) {
        if (view.fit_bytes >= bcfg.max_size || (view.fit_bytes > 0 && bytes + q.item.bytes > bcfg.max_bytes))
          break;
        bytes += q.item.bytes;
        ++view.fit_bytes;
      }
    }
    auto now = self->clock().now();
    auto d = decide_batch(bcfg, view, true, st.flushing, now);
    if (!d.dispatch) {
      if (d.wake_at && *d.wake_at < st.armed_at) {
        st.armed_at = *d.wake_at;
        self->delayed_send(self, *d.wake_at - now, tick_atom::value);
      }
      return;
    }
    auto index = static_cast<uint32_t>(chosen);
    call_request req;
    auto items = take_items(self, index, d.size, allowed > 1, req);
    if (items.empty()) {
      // Everything left avoids this endpoint (or expired): let it go.
      if (!st.queue.empty() && allowed > 1) {
        self->send(st.cfg.endpoints[index], release_atom::value, st.links[index].held);
        st.links[index].held = 0;
        if (strategy != routing_strategy::load_aware) {
          // Every queued record avoids the pinned endpoint: the next allowed
          // one takes them.
          for (uint32_t k = 1; k < n; ++k)
            if (st.links[(index + k) % n].allowed()) {
              st.target = static_cast<int>((index + k) % n);
              break;
            }
        }
        want_slots(self, allowed);
        return;
      }
      continue;
    }
    --st.links[index].held;
    if (strategy != routing_strategy::load_aware)
      st.target = -1; // the router picks the next one
    send_batch(self, index, std::move(items), std::move(req), d.reason);
  }
}

batcher_actor::behavior_type batcher_behavior(batcher_pointer self, batcher_settings cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  for (auto& in : st.cfg.model->input)
    st.input_names.push_back(in.first);
  st.inputs = st.input_names.size();
  st.links.resize(st.cfg.endpoints.size());
  for (auto& l : st.links)
    l.reported_outcomes.emplace(st.cfg.model->subtask_breaker);
  // The lower of the two tiers' rates: either breaker must get its calls.
  st.breaker_rate = st.cfg.model->subtask_breaker.failure_rate;
  if (st.cfg.model->job_breaker_enabled)
    st.breaker_rate = std::min(st.breaker_rate, st.cfg.model->job_breaker.failure_rate);
  st.routes = std::make_unique<router>(st.cfg.model->routing, st.cfg.routing_seed);
  st.load_reports = st.cfg.model->reports_load();
  st.finish_time = st.cfg.model->routes_by_finish_time();
  for (uint32_t i = 0; i < st.cfg.breakers.size(); ++i)
    self->send(st.cfg.breakers[i], subscribe_atom::value, caf::actor_cast<gate_listener>(self), i);
  return {
    [=](work_atom, work_batch& work) {
      auto& st = self->state;
      auto now = self->clock().now();
      for (auto& it : work.items)
        st.queue.push_back(queued_item{it, now});
      for (auto& v : work.values)
        st.values.push_back(std::move(v));
      pump(self);
    },
    [=](flush_atom) {
      self->state.flushing = true;
      pump(self);
    },
    [=](tick_atom) {
      self->state.armed_at = caf::actor_clock::time_point::max();
      pump(self);
    },
    [=](slot_atom, uint32_t index, uint32_t n, endpoint_load& load) {
      auto& link = self->state.links.at(index);
      link.wanted -= std::min(link.wanted, n);
      link.held += n;
      link.load = load;
      link.reported = true;
      link.asked = false;
      auto mine = link.outstanding + link.held;
      link.others = load.in_flight > mine ? load.in_flight - mine : 0;
      link.others_calls = load.calls > link.outstanding ? load.calls - link.outstanding : 0;
      pump(self);
    },
    [=](gate_atom, uint32_t index, endpoint_gate& gate) {
      auto& link = self->state.links.at(index);
      // UINT64_MAX: calls under the job tier's decision, which the subtask
      // breaker does not count (its epoch is unchanged meanwhile).
      if (gate.subtask_epoch != UINT64_MAX && gate.subtask_epoch != link.breaker_epoch) {
        link.reported_outcomes->clear();
        link.breaker_epoch = gate.subtask_epoch;
      }
      link.gate = gate;
      pump(self);
    },
  };
}

} // namespace

batcher_actor spawn_batcher(caf::actor_system& sys, batcher_settings settings) {
  return sys.spawn(batcher_behavior, std::move(settings));
}

} // namespace sinfer
