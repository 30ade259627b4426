#pragma once
/// When a batch goes out: the batcher's decision, given its queue, whether an
/// endpoint slot is free, and `now`.
///
/// The rule (shared/DESIGN.md): send what is queued as soon as a slot is free
/// (at light load a batch of one goes out at once, no idle wait); while every
/// slot is busy, keep accumulating up to `max_size`. `max_delay` is an
/// optional linger (default 0): how long a partial batch may wait for peers
/// although a slot is free, for backends where each call is costly. A batch
/// waiting for a slot is not waiting on `max_delay`. `max_bytes` caps the
/// summed input size of a batch (an LLM token budget, approximately); a
/// record larger than the cap goes out alone.
///
/// Call `decide_batch` whenever the queue grows, a slot frees, a flush is
/// asked (end of input, checkpoint) or the wake-up time it returned passes.
/// Pure: no clock reads, no threads, no CAF.

#include <algorithm>
#include <cstdint>
#include <optional>

#include "policies/time.hpp"

namespace sinfer {

struct batch_config {
  /// Most records in one call. Default 64.
  uint32_t max_size = 64;
  /// Linger for a partial batch while a slot is free. Default 0.
  policy_duration max_delay{0};
  /// Most summed input bytes in one call; 0 means no cap. Default 0.
  uint64_t max_bytes = 0;
};

/// Why a batch went out (a metric label).
enum class batch_close : uint8_t { full, slot_free, deadline, flush };

inline const char* to_string(batch_close x) noexcept {
  switch (x) {
    case batch_close::full: return "full";
    case batch_close::slot_free: return "slot-free";
    case batch_close::deadline: return "deadline";
    case batch_close::flush: return "flush";
  }
  return "unknown";
}

struct batch_decision {
  /// Send a batch of `size` records now.
  bool dispatch = false;
  uint32_t size = 0;
  batch_close reason = batch_close::slot_free;
  /// When not dispatching with records queued and a slot free: decide again
  /// at this time (the linger ends). Empty: wait for a slot or records.
  std::optional<policy_time> wake_at;
};

/// What the batcher knows about its queue.
struct batch_queue_view {
  /// Records queued.
  uint64_t queued = 0;
  /// How many of the oldest queued records fit in `max_bytes` (at least 1
  /// when queued > 0); equal to `queued` when there is no byte cap.
  uint64_t fit_bytes = 0;
  /// When the oldest queued record arrived.
  policy_time oldest{};
};

inline batch_decision decide_batch(const batch_config& cfg, const batch_queue_view& q, bool slot_free,
                                   bool flushing, policy_time now) {
  batch_decision d;
  if (q.queued == 0 || !slot_free)
    return d;
  uint64_t cap = cfg.max_size == 0 ? 1 : cfg.max_size;
  uint64_t fit = q.fit_bytes == 0 ? 1 : q.fit_bytes;
  uint64_t size = std::min({q.queued, cap, fit});
  d.size = static_cast<uint32_t>(size);
  // Full: the size cap or the byte cap stops the batch short of the queue.
  bool full = size == cap || size < std::min(q.queued, cap);
  if (full) {
    d.dispatch = true;
    d.reason = batch_close::full;
  } else if (flushing) {
    d.dispatch = true;
    d.reason = batch_close::flush;
  } else if (cfg.max_delay.count() <= 0) {
    d.dispatch = true;
    d.reason = batch_close::slot_free;
  } else if (now >= q.oldest + cfg.max_delay) {
    d.dispatch = true;
    d.reason = batch_close::deadline;
  } else {
    d.wake_at = q.oldest + cfg.max_delay;
  }
  return d;
}

} // namespace sinfer
