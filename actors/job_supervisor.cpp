#include "actors/job_supervisor.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/checkpoint_coordinator.hpp"
#include "actors/endpoint.hpp"
#include "actors/load_probe.hpp"
#include "backends/http_backend.hpp"
#include "runtime/http_models.hpp"
#include "actors/inference_operator.hpp"
#include "actors/job_breaker.hpp"
#include "actors/subtask_breaker.hpp"
#include "actors/record_sink.hpp"
#include "actors/record_source.hpp"

namespace sinfer {

namespace {

struct supervisor_state {
  std::shared_ptr<const job_config> cfg;
  std::shared_ptr<const model_registry> models;
  supervisor_options options;
  std::shared_ptr<job_counters> counters;
  std::vector<caf::actor> children;
  /// Everyone who asked (run); all get the same report.
  std::vector<caf::typed_response_promise<job_report>> replies;
  bool started = false;
  bool ended = false;
  caf::actor_clock::time_point start_time;
  /// One restart strategy for the whole job, as in Flink.
  std::unique_ptr<restart_strategy> restarts;
  uint64_t last_out = 0;
  /// The load probes: how to start each again, and which probe each running
  /// one is (a probe's death is a warning and a restart, not the job's end).
  std::vector<load_probe_settings> probes;
  std::map<caf::actor_addr, uint32_t> probe_of;
};

using supervisor_pointer = supervisor_actor::stateful_pointer<supervisor_state>;

/// Starts load probe `i` (again) and watches it.
void start_probe(supervisor_pointer self, uint32_t i) {
  auto& st = self->state;
  auto probe = caf::actor_cast<caf::actor>(spawn_load_probe(self->system(), st.probes[i]));
  self->monitor(probe);
  st.children.push_back(probe);
  st.probe_of[probe.address()] = i;
}

void end_job(supervisor_pointer self, bool ok, std::string reason, sink_figures figures) {
  auto& st = self->state;
  if (st.ended)
    return;
  st.ended = true;
  job_report report;
  report.ok = ok;
  report.reason = std::move(reason);
  report.records_in = st.counters->records_in.load();
  report.records_out = ok ? figures.written : st.counters->records_out.load();
  report.dead_lettered = ok ? figures.dead_lettered : st.counters->dead_lettered.load();
  report.elapsed_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(self->clock().now() - st.start_time).count();
  if (!ok) {
    spdlog::debug("job \"{}\" failed: {}", st.cfg->name, report.reason);
    st.counters->emit(job_event{"job-failed", {}}.text("reason", report.reason));
  }
  for (auto& child : st.children)
    self->send_exit(child, caf::exit_reason::user_shutdown);
  st.children.clear();
  for (auto& reply : st.replies)
    reply.deliver(report);
  st.replies.clear();
  self->quit();
}

void start(supervisor_pointer self) {
  auto& st = self->state;
  auto& cfg = *st.cfg;
  st.started = true;
  st.start_time = self->clock().now();
  auto watch = [&](auto handle) {
    auto a = caf::actor_cast<caf::actor>(handle);
    self->monitor(a);
    st.children.push_back(a);
    return handle;
  };
  auto me = caf::actor_cast<supervisor_actor>(self);
  auto listener = caf::actor_cast<failure_listener>(self);
  // Checkpoints: the restored state, then the coordinator everyone acks to.
  coordinator_actor coordinator;
  if (cfg.checkpoint.enabled()) {
    if (st.options.simulate) {
      end_job(self, false, "checkpoint: checkpoints are not simulated; remove the checkpoint key from the job", {});
      return;
    }
    if (!st.options.checkpoints) {
      std::vector<std::string> notes;
      std::string error;
      st.options.checkpoints = open_checkpoints(cfg, restore_choice{}, notes, error);
      for (auto& n : notes)
        spdlog::info("job \"{}\": {}", cfg.name, n);
      if (!st.options.checkpoints) {
        end_job(self, false, error, {});
        return;
      }
    }
    st.counters->restored_from.store(st.options.checkpoints->restored);
    coordinator = watch(spawn_checkpoint_coordinator(self->system(), st.cfg, st.options.checkpoints, listener,
                                                     st.counters));
  }
  auto ckpt_listener = caf::actor_cast<checkpoint_listener>(coordinator);
  std::shared_ptr<const checkpoint_context> checkpoints = cfg.checkpoint.enabled() ? st.options.checkpoints : nullptr;
  // Every model a stage uses, fallbacks included: its endpoints and their
  // job breakers (job scope).
  struct model_actors {
    std::shared_ptr<const model_config> model;
    std::vector<scheduled_endpoint> endpoints;
    std::vector<job_breaker_actor> job_breakers;
  };
  std::map<std::string, model_actors> used;
  std::vector<std::vector<std::string>> chains; // per stage: model, fallbacks
  for (auto& name : cfg.stages) {
    std::vector<std::string> chain{name};
    for (auto* m = &cfg.models.at(name); m->on_failure == failure_action::fallback && !m->fallback.empty();) {
      chain.push_back(m->fallback);
      m = &cfg.models.at(m->fallback);
    }
    chains.push_back(chain);
    for (auto& model_name : chain) {
      if (used.count(model_name) > 0)
        continue;
      auto& m = cfg.models.at(model_name);
      model_actors ma;
      ma.model = std::make_shared<const model_config>(m);
      auto* factory = st.models->find(m.model);
      for (uint32_t i = 0; i < m.endpoints.size(); ++i) {
        auto& ep = m.endpoints[i];
        std::shared_ptr<inference_backend> backend;
        if (is_http_provider(m)) {
          if (!st.options.simulate)
            backend = std::make_shared<http_backend>(http_connection_of(m, i), make_http_protocol(m));
        } else {
          std::string err;
          auto& options = ep.options_json.empty() ? m.options_json : ep.options_json;
          auto model = factory != nullptr ? (*factory)(options, err) : in_process_model{};
          if (!model.compute) {
            end_job(self, false, "models." + model_name + ": cannot instantiate model \"" + m.model + "\" " + err, {});
            return;
          }
          backend = std::make_shared<in_process_backend>(std::move(model));
        }
        if (st.options.simulate) {
          if (auto simulated = st.options.simulate(model_name + "/" + ep.name, m, i, backend))
            backend = std::move(simulated);
        }
        if (!backend) {
          end_job(self, false, "models." + model_name + ": no backend for endpoint " + ep.name, {});
          return;
        }
        endpoint_settings es;
        es.name = model_name + "/" + ep.name;
        es.backend = std::move(backend);
        es.concurrency = m.endpoint_concurrency(i);
        es.limiter.kind = m.limiter;
        es.limiter.min = m.concurrency_min;
        es.limiter.initial = m.concurrency_initial;
        es.pacing = m.concurrency_pacing;
        es.latency = ep.latency.count() >= 0 ? ep.latency : m.latency;
        es.latency_per_record = ep.latency_per_record.count() >= 0 ? ep.latency_per_record : m.latency_per_record;
        es.attempt_timeout = m.timeout.attempt;
        es.probe = m.probe.kind;
        es.probe_metrics = m.probe.metrics;
        es.probe_metrics.model = m.probe.model_label_value.value_or(m.model);
        es.probe_health = m.probe.health;
        es.load_reports = m.reports_load();
        es.tells_holders = m.routes_by_finish_time();
        // Pacing is off where batchers choose between endpoints by load: a
        // held want answers "no slot now", and the batch goes to a slower
        // endpoint (routing bench, 3 runs each: 0.88-0.91 of capacity paced
        // against 0.90-0.95 unpaced).
        es.pacing = es.pacing && !es.load_reports;
        es.counters = st.counters->endpoint(es.name);
        es.events = st.counters->events;
        auto name = es.name;
        ma.endpoints.push_back(watch(spawn_endpoint(self->system(), std::move(es))));
        if (m.probe.kind == probe_kind::prometheus) {
          load_probe_settings ps;
          ps.name = name;
          ps.endpoint = caf::actor_cast<probe_listener>(ma.endpoints.back());
          ps.interval = m.probe.interval;
          if (st.options.scrape_for) {
            ps.scrape = st.options.scrape_for(name);
            ps.detached = false;
          } else {
            auto conn = http_connection_of(m, i);
            conn.timeout = std::max(std::chrono::milliseconds{1},
                                    std::chrono::duration_cast<std::chrono::milliseconds>(m.probe.timeout));
            ps.target = "GET " + conn.url + m.probe.path;
            ps.scrape = http_scrape(std::move(conn), m.probe.path);
          }
          st.probes.push_back(std::move(ps));
          start_probe(self, static_cast<uint32_t>(st.probes.size() - 1));
        }
        if (m.job_breaker_enabled) {
          job_breaker_settings js;
          js.endpoint = model_name + "/" + ep.name;
          js.index = i;
          js.config = m.job_breaker;
          js.counters = st.counters;
          js.job_start = st.start_time;
          ma.job_breakers.push_back(watch(spawn_job_breaker(self->system(), std::move(js))));
        }
      }
      used.emplace(model_name, std::move(ma));
    }
  }
  sink_settings sink_cfg;
  sink_cfg.cfg = st.cfg;
  sink_cfg.supervisor = me;
  sink_cfg.counters = st.counters;
  sink_cfg.coordinator = ckpt_listener;
  sink_cfg.checkpoints = checkpoints;
  auto sink = watch(spawn_record_sink(self->system(), std::move(sink_cfg)));
  std::vector<record_consumer> first_stages;
  for (uint32_t sub = 0; sub < cfg.parallelism; ++sub) {
    // This subtask's breaker of every endpoint it uses.
    std::map<std::string, std::vector<subtask_breaker_actor>> breakers;
    for (auto& kv : used) {
      auto& m = *kv.second.model;
      for (uint32_t i = 0; i < m.endpoints.size(); ++i) {
        subtask_breaker_settings bs;
        bs.endpoint = kv.first + "/" + m.endpoints[i].name;
        bs.subtask = sub;
        bs.local = m.subtask_breaker;
        bs.job = m.job_breaker;
        if (m.job_breaker_enabled)
          bs.job_breaker = kv.second.job_breakers[i];
        bs.counters = st.counters;
        bs.job_start = st.start_time;
        breakers[kv.first].push_back(watch(spawn_subtask_breaker(self->system(), std::move(bs))));
      }
    }
    record_consumer downstream = sink;
    uint32_t port = sub;
    for (size_t s = cfg.stages.size(); s-- > 0;) {
      operator_settings os;
      os.stage = static_cast<uint32_t>(s);
      os.subtask = sub;
      for (auto& model_name : chains[s]) {
        auto& ma = used.at(model_name);
        os.chain.push_back(model_link{ma.model, ma.endpoints, breakers.at(model_name)});
      }
      os.mode = cfg.mode;
      os.condition = cfg.condition_of(s);
      os.downstream = downstream;
      os.downstream_port = port;
      os.supervisor = listener;
      os.restarts = caf::actor_cast<restart_authority>(self);
      os.counters = st.counters;
      os.coordinator = ckpt_listener;
      os.checkpoints = checkpoints;
      os.call_log = cfg.checkpoint.call_log;
      os.call_log_sync = cfg.checkpoint.call_log_sync;
      downstream = watch(spawn_inference_operator(self->system(), std::move(os)));
      port = 0;
    }
    first_stages.push_back(downstream);
  }
  source_settings src;
  src.cfg = st.cfg;
  src.subtasks = std::move(first_stages);
  src.supervisor = listener;
  src.counters = st.counters;
  src.coordinator = ckpt_listener;
  src.checkpoints = checkpoints;
  auto source = watch(spawn_record_source(self->system(), std::move(src)));
  if (coordinator)
    self->send(coordinator, run_atom::value, source, sink);
  if (st.options.progress)
    self->delayed_send(self, st.options.progress_interval, tick_atom::value);
}

supervisor_actor::behavior_type supervisor_behavior(supervisor_pointer self,
                                                    std::shared_ptr<const job_config> cfg,
                                                    std::shared_ptr<const model_registry> models,
                                                    supervisor_options options,
                                                    std::shared_ptr<job_counters> counters) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.models = std::move(models);
  st.options = options;
  st.counters = std::move(counters);
  st.restarts = std::make_unique<restart_strategy>(st.cfg->restart);
  // A bug that throws in the supervisor ends the job with a report instead
  // of leaving callers waiting for ever (CAF 0.17 has no broken promises).
  self->set_exception_handler([=](std::exception_ptr& ptr) -> caf::error {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ptr);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    end_job(self, false, "internal error in the job supervisor: " + what, {});
    return caf::exit_reason::unhandled_exception;
  });
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& st = self->state;
    if (st.ended)
      return;
    if (auto p = st.probe_of.find(msg.source); p != st.probe_of.end()) {
      // A failing probe is a signal, not a failure: its endpoint keeps
      // serving (suspect once its last answered scrape is stale-after old).
      auto i = p->second;
      st.probe_of.erase(p);
      auto addr = msg.source;
      st.children.erase(std::remove_if(st.children.begin(), st.children.end(),
                                       [&](const caf::actor& a) { return a.address() == addr; }),
                        st.children.end());
      auto& ps = st.probes[i];
      st.counters->endpoint(ps.name)->probe_restarts.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("job \"{}\": the load probe of {} stopped ({}); starting another in {} ms", st.cfg->name, ps.name,
                   self->system().render(msg.reason),
                   std::chrono::duration_cast<std::chrono::milliseconds>(ps.interval).count());
      self->delayed_send(self, ps.interval, restart_atom::value, i);
      return;
    }
    if (msg.reason == caf::exit_reason::normal)
      return;
    end_job(self, false, "an actor of the job died: " + self->system().render(msg.reason), {});
  });
  return {
    [=](run_atom) -> caf::typed_response_promise<job_report> {
      auto& st = self->state;
      auto reply = self->make_response_promise<job_report>();
      st.replies.push_back(reply);
      if (!st.started)
        start(self);
      return reply;
    },
    [=](crashed_atom, uint32_t subtask, uint32_t stage, std::string& reason) -> int64_t {
      auto& st = self->state;
      if (st.ended)
        return -1;
      auto where = "stage " + std::to_string(stage + 1) + " \"" + st.cfg->stages.at(stage) + "\" of subtask "
                   + std::to_string(subtask) + " crashed: " + reason;
      auto decision = st.restarts->on_failure(self->clock().now());
      if (!decision.restart) {
        end_job(self, false, where + "; restart strategy " + to_string(st.cfg->restart.kind) + " gives up: "
                               + decision.reason, {});
        return -1;
      }
      st.counters->restarts.fetch_add(1, std::memory_order_relaxed);
      st.counters->emit(job_event{"subtask-restart", {}}
                          .number("subtask", subtask)
                          .number("stage", stage + 1)
                          .text("reason", reason)
                          .number("delay_ms", static_cast<double>(
                                                std::chrono::duration_cast<std::chrono::milliseconds>(decision.delay).count())));
      spdlog::warn("job \"{}\": {}; restarting it in {} ms (restart {})", st.cfg->name, where,
                   std::chrono::duration_cast<std::chrono::milliseconds>(decision.delay).count(),
                   st.restarts->restarts());
      return decision.delay.count();
    },
    [=](done_atom, sink_figures figures) {
      end_job(self, true, {}, figures);
    },
    [=](fail_atom, std::string reason) {
      end_job(self, false, std::move(reason), {});
    },
    [=](restart_atom, uint32_t probe) {
      if (!self->state.ended && probe < self->state.probes.size())
        start_probe(self, probe);
    },
    [=](tick_atom) {
      auto& st = self->state;
      if (st.ended)
        return;
      auto& c = *st.counters;
      auto out = c.records_out.load() + c.dead_lettered.load();
      auto secs = std::chrono::duration<double>(st.options.progress_interval).count();
      spdlog::info("job \"{}\": in {}, out {}, dead-lettered {}, in flight {}, {:.0f} records/s",
                   st.cfg->name, c.records_in.load(), c.records_out.load(), c.dead_lettered.load(),
                   c.in_flight(), static_cast<double>(out - st.last_out) / secs);
      st.last_out = out;
      self->delayed_send(self, st.options.progress_interval, tick_atom::value);
    },
  };
}

} // namespace

supervisor_actor spawn_job_supervisor(caf::actor_system& sys, std::shared_ptr<const job_config> cfg,
                                      std::shared_ptr<const model_registry> models,
                                      supervisor_options options,
                                      std::shared_ptr<job_counters> counters) {
  return sys.spawn(supervisor_behavior, std::move(cfg), std::move(models), options,
                   std::move(counters));
}

} // namespace sinfer
