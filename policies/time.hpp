#pragma once
/// Time as policies see it: values handed in by the caller, never read here.
///
/// `policy_time` is the same type as CAF's actor clock time point
/// (std::chrono::steady_clock::time_point), so an actor passes
/// `self->clock().now()` straight in, and a table test builds instants with
/// `at(ms)`. A policy never calls `now()` itself.

#include <chrono>

namespace sinfer {

using policy_time = std::chrono::steady_clock::time_point;
using policy_duration = std::chrono::nanoseconds;

/// The instant `ms` milliseconds after an arbitrary epoch (for tests and
/// for policies that start "at zero").
inline policy_time at_ms(long long ms) {
  return policy_time{} + std::chrono::milliseconds{ms};
}

} // namespace sinfer
