#include "actors/job_supervisor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/endpoint.hpp"
#include "actors/inference_operator.hpp"
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
  uint64_t last_out = 0;
};

using supervisor_pointer = supervisor_actor::stateful_pointer<supervisor_state>;

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
  if (!ok)
    spdlog::debug("job \"{}\" failed: {}", st.cfg->name, report.reason);
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
  // One endpoint per model used by a stage.
  std::map<std::string, endpoint_actor> endpoints;
  for (auto& name : cfg.stages) {
    if (endpoints.count(name) > 0)
      continue;
    auto& m = cfg.models.at(name);
    std::string err;
    auto* factory = st.models->find(m.model);
    auto model = factory != nullptr ? (*factory)(m.options_json, err) : in_process_model{};
    if (!model.compute) {
      end_job(self, false, "models." + name + ": cannot instantiate model \"" + m.model + "\" " + err, {});
      return;
    }
    endpoints[name] = watch(spawn_endpoint(self->system(), std::make_shared<in_process_backend>(std::move(model)),
                                           m.latency));
  }
  auto sink = watch(spawn_record_sink(self->system(), st.cfg, me, st.counters));
  std::vector<record_consumer> first_stages;
  for (uint32_t sub = 0; sub < cfg.parallelism; ++sub) {
    record_consumer downstream = sink;
    uint32_t port = sub;
    for (size_t s = cfg.stages.size(); s-- > 0;) {
      operator_settings os;
      os.stage = static_cast<uint32_t>(s);
      os.model = std::make_shared<const model_config>(cfg.models.at(cfg.stages[s]));
      os.mode = cfg.mode;
      os.endpoint = endpoints.at(cfg.stages[s]);
      os.downstream = downstream;
      os.downstream_port = port;
      os.supervisor = listener;
      os.counters = st.counters;
      downstream = watch(spawn_inference_operator(self->system(), std::move(os)));
      port = 0;
    }
    first_stages.push_back(downstream);
  }
  watch(spawn_record_source(self->system(), st.cfg, std::move(first_stages), listener, st.counters));
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
    if (st.ended || msg.reason == caf::exit_reason::normal)
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
    [=](done_atom, sink_figures figures) {
      end_job(self, true, {}, figures);
    },
    [=](fail_atom, std::string reason) {
      end_job(self, false, std::move(reason), {});
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
