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
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

namespace sinfer {

class virtual_time_system {
public:
  virtual_time_system() {
    cfg_.set("scheduler.policy", caf::atom("testing"));
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    sched_ = &dynamic_cast<caf::scheduler::test_coordinator&>(sys_->scheduler());
    start_ = sched_->clock().current_time;
  }

  /// Stops the actors given to `stop_at_end` and delivers what is left
  /// (at most a million messages), then the actor system waits for its
  /// actors as it is destroyed.
  ~virtual_time_system() {
    for (auto& a : at_end_)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    at_end_.clear();
    run([] {}, 1'000'000);
  }

  virtual_time_system(const virtual_time_system&) = delete;
  virtual_time_system& operator=(const virtual_time_system&) = delete;

  /// Stops `a` when this system is destroyed, however the scope ends. The
  /// actor system's destructor waits for every actor, and nothing runs an
  /// actor on virtual time but `run`: a test that left early (a failed
  /// REQUIRE) without stopping its actors would hang there instead of
  /// failing. Returns `a`.
  template <class Handle>
  Handle stop_at_end(Handle a) {
    at_end_.push_back(caf::actor_cast<caf::actor>(a));
    return a;
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
  std::vector<caf::actor> at_end_;
};

} // namespace sinfer
