#pragma once
// Settings shared by the test files that build jobs: breakers that stay out
// of the way and a short backoff, so a test about calls is not about them.

#include <chrono>

#include "policies/backoff.hpp"
#include "policies/circuit_breaker.hpp"

namespace sinfer::test {

/// A breaker that never opens (its window never fills).
inline breaker_config never_opens() {
  breaker_config b;
  b.minimum_calls = 1000000;
  return b;
}

/// Exponential backoff from `initial` (full jitter unless told otherwise).
inline backoff_config quick_backoff(std::chrono::milliseconds initial,
                                    std::chrono::milliseconds max = std::chrono::seconds{10},
                                    jitter_mode jitter = jitter_mode::full) {
  backoff_config b;
  b.initial = initial;
  b.max = max;
  b.jitter = jitter;
  return b;
}

} // namespace sinfer::test
