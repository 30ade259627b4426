#pragma once
/// An actor system on virtual time: CAF's test coordinator runs every actor
/// on the calling thread, one message at a time, and time moves only when no
/// message is left, straight to the next timer. The same actor code that
/// runs in production runs here unchanged (actors read time through
/// `self->clock().now()`); tests and the simulator drive it.
///
/// Verified with CAF 0.17.6 (shared/CAF-NOTES.md): `delayed_send` and request
/// timeouts fire only when virtual time reaches them. Detached actors and real
/// sockets have no place here (a stdin source or stdout sink spawns detached).

#include <chrono>
#include <cstddef>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/scheduler/test_coordinator.hpp>

namespace sinfer {

class virtual_time_system {
public:
  virtual_time_system() {
    cfg_.set("scheduler.policy", caf::atom("testing"));
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    sched_ = &dynamic_cast<caf::scheduler::test_coordinator&>(sys_->scheduler());
    start_ = sched_->clock().current_time;
  }

  caf::actor_system& system() noexcept {
    return *sys_;
  }

  caf::scheduler::test_coordinator& scheduler() noexcept {
    return *sched_;
  }

  /// Virtual time elapsed since the system started.
  std::chrono::nanoseconds elapsed() const {
    return sched_->clock().current_time - start_;
  }

  /// Delivers messages one at a time, calling `observe()` after each one;
  /// when none is pending, jumps to the earliest timer. Stops when nothing
  /// is left or after `max_messages`. Returns the messages delivered.
  template <class Observe>
  size_t run(Observe observe, size_t max_messages = 100'000'000) {
    size_t n = 0;
    while (n < max_messages) {
      if (sched_->try_run_once()) {
        ++n;
        observe();
        continue;
      }
      if (!sched_->trigger_timeout())
        break;
    }
    return n;
  }

  /// `run` without an observer.
  size_t run() {
    return run([] {});
  }

private:
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  caf::scheduler::test_coordinator* sched_ = nullptr;
  caf::actor_clock::time_point start_;
};

} // namespace sinfer
