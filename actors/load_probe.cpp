#include "actors/load_probe.hpp"

#include <exception>

#include <caf/all.hpp>

namespace sinfer {

namespace {

struct load_probe_state {
  load_probe_settings cfg;
};

using load_probe_pointer = load_probe_actor::stateful_pointer<load_probe_state>;

load_probe_actor::behavior_type load_probe_behavior(load_probe_pointer self, load_probe_settings cfg) {
  self->state.cfg = std::move(cfg);
  if (self->state.cfg.target.empty())
    self->state.cfg.target = self->state.cfg.name;
  self->send(self, tick_atom::value);
  return {
    [=](tick_atom) {
      auto& st = self->state;
      auto began = self->clock().now();
      auto answer = st.cfg.scrape(); // may block (detached) up to probe.timeout
      self->send(st.cfg.endpoint, scrape_atom::value, outcome_of(std::move(answer), st.cfg.target));
      auto next = began + st.cfg.interval;
      auto now = self->clock().now();
      if (next > now)
        self->delayed_send(self, next - now, tick_atom::value);
      else
        self->send(self, tick_atom::value);
    },
  };
}

} // namespace

std::function<http_answer()> http_scrape(http_connection_settings conn, std::string path) {
  return [conn = std::move(conn), path = std::move(path)] {
    try {
      return http_get(conn, path);
    } catch (const std::exception& e) {
      http_answer a;
      a.transport_error = std::string{"GET "} + conn.url + path + ": " + e.what();
      return a;
    }
  };
}

scrape_outcome outcome_of(http_answer answer, const std::string& where) {
  scrape_outcome out;
  if (answer.status == 200) {
    out.answered = true;
    out.body = std::move(answer.body);
  } else if (answer.status == 0) {
    out.error = answer.transport_error.empty() ? where + ": no answer" : answer.transport_error;
  } else {
    out.error = where + ": HTTP " + std::to_string(answer.status);
  }
  return out;
}

load_probe_actor spawn_load_probe(caf::actor_system& sys, load_probe_settings settings) {
  if (settings.detached)
    return sys.spawn<caf::detached>(load_probe_behavior, std::move(settings));
  return sys.spawn(load_probe_behavior, std::move(settings));
}

} // namespace sinfer
