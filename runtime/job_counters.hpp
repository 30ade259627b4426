#pragma once
/// Live figures of a running job, shared by its actors (each adds its own)
/// and read by progress output, tests and benchmarks. Relaxed atomics,
/// updated once per chunk, not per record. No CAF here.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

namespace sinfer {

struct stage_counters {
  /// Records that left the stage (scored, failed or passed through).
  std::atomic<uint64_t> left{0};
  /// Backend calls made.
  std::atomic<uint64_t> calls{0};
  /// The most records one subtask's stage held at once.
  std::atomic<uint64_t> max_held{0};

  void note_held(uint64_t n) noexcept {
    auto cur = max_held.load(std::memory_order_relaxed);
    while (n > cur && !max_held.compare_exchange_weak(cur, n, std::memory_order_relaxed)) {
    }
  }
};

struct job_counters {
  explicit job_counters(size_t stage_count)
    : stages(new stage_counters[stage_count]), stage_count(stage_count) {
  }

  /// Records the source handed to subtasks.
  std::atomic<uint64_t> records_in{0};
  /// Lines the sink wrote to the output.
  std::atomic<uint64_t> records_out{0};
  /// Records the sink wrote to the dead-letter file.
  std::atomic<uint64_t> dead_lettered{0};
  std::unique_ptr<stage_counters[]> stages;
  size_t stage_count;

  /// Records inside the job (read, not yet written anywhere).
  uint64_t in_flight() const noexcept {
    auto in = records_in.load(std::memory_order_relaxed);
    auto done = records_out.load(std::memory_order_relaxed)
                + dead_lettered.load(std::memory_order_relaxed);
    return in > done ? in - done : 0;
  }
};

} // namespace sinfer
