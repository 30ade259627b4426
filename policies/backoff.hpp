#pragma once
/// Retry delays: exponential backoff with jitter, and a seeded generator.
///
/// Algorithm (AWS Architecture Blog, "Exponential Backoff And Jitter"): the
/// wait before retry number n (1 = first retry) starts from
///   base(n) = min(max, initial * multiplier^(n-1))
/// and a jitter mode spreads retries of many records apart so they do not
/// hit a recovering backend in lock step:
///   none:         base(n)
///   full:         uniform(0, base(n))
///   equal:        base(n)/2 + uniform(0, base(n)/2)
///   decorrelated: min(max, uniform(initial, max(initial, 3 * previous)))
/// Randomness is injected like time: callers own a `seeded_rng` (one per
/// actor, seeded from config or the subtask index), so a run with a given
/// seed is reproducible and tests assert exact values. Pure: no clocks, no
/// threads, no CAF. All durations are `policy_duration` (nanoseconds).

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string_view>

#include "policies/time.hpp"

namespace sinfer {

/// Deterministic 64-bit generator: splitmix64 (Steele, Lea, Flood 2014;
/// Vigna's reference code). Same seed, same sequence on every platform and
/// compiler, unlike std:: distributions whose output is implementation-defined.
/// Not cryptographic.
class seeded_rng {
public:
  /// `seed`: any value, 0 included.
  explicit seeded_rng(uint64_t seed) noexcept : state_(seed) {
  }

  /// The next 64 uniformly distributed bits.
  uint64_t next() noexcept {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  /// A double in [0, 1) built from the top 53 bits of `next()` (every value
  /// is a multiple of 2^-53). Consumes one value.
  double uniform01() noexcept {
    return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);
  }

  /// A duration uniformly distributed over [lo, hi], both ends included, at
  /// nanosecond resolution and without modulo bias (rejection sampling, so
  /// it may consume more than one value, with probability < 2^-32 for spans
  /// under 2^32 ns). Returns `lo` without drawing when hi <= lo.
  policy_duration uniform(policy_duration lo, policy_duration hi) noexcept {
    if (hi <= lo)
      return lo;
    auto lo_bits = static_cast<uint64_t>(lo.count());
    uint64_t span = static_cast<uint64_t>(hi.count()) - lo_bits; // hi - lo, >= 1
    uint64_t n = span + 1; // values in [lo, hi]; 0 means all 2^64 values
    uint64_t offset;
    if (n == 0) {
      offset = next();
    } else {
      // Reject the low `2^64 mod n` values so every residue is equally likely.
      uint64_t threshold = (0 - n) % n;
      uint64_t r;
      do
        r = next();
      while (r < threshold);
      offset = r % n;
    }
    return policy_duration{static_cast<int64_t>(lo_bits + offset)};
  }

private:
  uint64_t state_;
};

/// How `backoff_delay` randomises the exponential base (see the file comment).
enum class jitter_mode : uint8_t { none, full, equal, decorrelated };

/// The config name of `m`: "none", "full", "equal" or "decorrelated".
inline const char* to_string(jitter_mode m) noexcept {
  switch (m) {
    case jitter_mode::none:
      return "none";
    case jitter_mode::full:
      return "full";
    case jitter_mode::equal:
      return "equal";
    case jitter_mode::decorrelated:
      return "decorrelated";
  }
  return "?";
}

/// Parses a config name (exact, lower case). Returns false and leaves `out`
/// unchanged when `name` is not one of the four names.
inline bool parse_jitter_mode(std::string_view name, jitter_mode& out) noexcept {
  for (auto m : {jitter_mode::none, jitter_mode::full, jitter_mode::equal,
                 jitter_mode::decorrelated}) {
    if (name == to_string(m)) {
      out = m;
      return true;
    }
  }
  return false;
}

/// Parameters of `backoff_delay`. Config validation is expected to enforce
/// 0 <= initial <= max and multiplier >= 1; the policy itself clamps
/// (negative durations count as zero, a multiplier below 1 or NaN as 1) so
/// that it never returns a negative delay or one above `max`.
struct backoff_config {
  /// Base delay of the first retry; also the lower bound of decorrelated draws.
  policy_duration initial = std::chrono::milliseconds{50};
  /// No delay returned is longer than this.
  policy_duration max = std::chrono::seconds{10};
  /// Growth of the base per retry (unused by decorrelated jitter).
  double multiplier = 2.0;
  /// How the base is randomised.
  jitter_mode jitter = jitter_mode::full;
};

/// The un-jittered delay of retry `retry`: min(max, initial *
/// multiplier^(retry-1)), saturating at `max` instead of overflowing (retry
/// 0 counts as 1). The power is computed by repeated squaring in double, so
/// it is exact for power-of-two multipliers and the same on every IEEE-754
/// platform. Exposed for tests and metrics; callers want `backoff_delay`.
inline policy_duration backoff_base(const backoff_config& cfg, uint32_t retry) noexcept {
  policy_duration zero{0};
  policy_duration max = std::max(cfg.max, zero);
  policy_duration initial = std::clamp(cfg.initial, zero, max);
  double m = cfg.multiplier >= 1.0 ? cfg.multiplier : 1.0; // also maps NaN to 1
  uint32_t exponent = retry > 1 ? retry - 1 : 0;
  double factor = 1.0;
  for (double b = m; exponent != 0; exponent >>= 1, b *= b) // may reach +inf
    if (exponent & 1u)
      factor *= b;
  double limit = static_cast<double>(max.count());
  double base = static_cast<double>(initial.count()) * factor;
  if (!(base < limit)) // also catches inf (and NaN from 0 * inf)
    return initial.count() == 0 ? zero : max;
  return policy_duration{static_cast<int64_t>(base)};
}

/// The wait before retry number `retry` of one record (1 = first retry; 0 is
/// treated as 1).
///
/// Called once per retry, when an attempt has failed with a retryable error.
/// `previous` is the value this function returned for the same record's
/// previous retry; only decorrelated jitter reads it, and for the first retry
/// callers pass `cfg.initial` or zero (zero is treated as `initial`). So
/// callers keep `previous` per record (next to its retry count), not per
/// actor. `rng` supplies the jitter; `none` never draws from it.
///
/// Returns a delay in [0, cfg.max] (for decorrelated: in
/// [min(initial, max), max]). Combine with a server's Retry-After through
/// `earliest_retry`.
inline policy_duration backoff_delay(const backoff_config& cfg, uint32_t retry,
                                     policy_duration previous, seeded_rng& rng) noexcept {
  policy_duration zero{0};
  switch (cfg.jitter) {
    case jitter_mode::none:
      return backoff_base(cfg, retry);
    case jitter_mode::full:
      return rng.uniform(zero, backoff_base(cfg, retry));
    case jitter_mode::equal: {
      policy_duration half = backoff_base(cfg, retry) / 2;
      return half + rng.uniform(zero, half);
    }
    case jitter_mode::decorrelated: {
      policy_duration max = std::max(cfg.max, zero);
      policy_duration initial = std::max(cfg.initial, zero);
      if (previous <= zero)
        previous = initial;
      constexpr auto top = std::numeric_limits<policy_duration::rep>::max();
      policy_duration tripled{previous.count() > top / 3 ? top : previous.count() * 3};
      return std::min(max, rng.uniform(initial, std::max(initial, tripled)));
    }
  }
  return backoff_base(cfg, retry);
}

/// The earliest instant a record may be retried: now + max(backoff,
/// retry_after).
///
/// Called when scheduling a retry. `now` is the time the failure was seen;
/// `backoff` is `backoff_delay(...)`; `retry_after` is the server's
/// Retry-After for a rate-limited error (429/503), or zero when it sent
/// none, so a rate-limited record waits at least as long as the server
/// asked. The actor arms a timer for the returned instant.
inline policy_time earliest_retry(policy_time now, policy_duration backoff,
                                  policy_duration retry_after) noexcept {
  return now + std::max(backoff, retry_after);
}

} // namespace sinfer
