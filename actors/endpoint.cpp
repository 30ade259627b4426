#include "actors/endpoint.hpp"

#include <thread>
#include <unordered_map>

#include <caf/all.hpp>

namespace sinfer {

namespace {

struct endpoint_state {
  std::shared_ptr<inference_backend> backend;
  caf::timespan latency{0};
  uint64_t next_id = 0;
  std::unordered_map<uint64_t, caf::typed_response_promise<call_result>> waiting;
};

using endpoint_pointer = endpoint_actor::stateful_pointer<endpoint_state>;

endpoint_actor::behavior_type endpoint_behavior(endpoint_pointer self,
                                                std::shared_ptr<inference_backend> backend,
                                                std::chrono::nanoseconds latency) {
  self->state.backend = std::move(backend);
  self->state.latency = std::chrono::duration_cast<caf::timespan>(latency);
  return {
    [=](infer_atom, call_request& req) -> caf::typed_response_promise<call_result> {
      auto& st = self->state;
      auto rp = self->make_response_promise<call_result>();
      auto id = st.next_id++;
      st.waiting.emplace(id, rp);
      auto handler_thread = std::this_thread::get_id();
      // Read only on the handler's own thread, so no synchronisation needed.
      auto in_handler = std::make_shared<bool>(true);
      auto handle = caf::actor_cast<endpoint_actor>(self);
      st.backend->infer(req, [self, handle, id, handler_thread, in_handler](call_result res) {
        if (std::this_thread::get_id() != handler_thread || !*in_handler) { // completed later
          caf::anon_send(handle, deliver_atom::value, id, std::move(res));
          return;
        }
        auto delay = self->state.latency;
        if (delay.count() > 0) {
          self->delayed_send(self, delay, deliver_atom::value, id, std::move(res));
          return;
        }
        auto i = self->state.waiting.find(id);
        i->second.deliver(std::move(res));
        self->state.waiting.erase(i);
      });
      *in_handler = false;
      return rp;
    },
    [=](deliver_atom, uint64_t id, call_result& res) {
      auto& waiting = self->state.waiting;
      auto i = waiting.find(id);
      if (i == waiting.end())
        return;
      i->second.deliver(std::move(res));
      waiting.erase(i);
    },
  };
}

} // namespace

endpoint_actor spawn_endpoint(caf::actor_system& sys, std::shared_ptr<inference_backend> backend,
                              std::chrono::nanoseconds latency) {
  return sys.spawn(endpoint_behavior, std::move(backend), latency);
}

} // namespace sinfer
