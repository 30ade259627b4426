#pragma once
/// Live figures of a running job, shared by its actors (each adds its own)
/// and read by progress output, tests and benchmarks. Relaxed atomics,
/// updated once per chunk, not per record. No CAF here.

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/event_log.hpp"

namespace sinfer {

/// Raises `target` to `n` if `n` is larger.
inline void raise_to(std::atomic<uint64_t>& target, uint64_t n) noexcept {
  auto cur = target.load(std::memory_order_relaxed);
  while (n > cur && !target.compare_exchange_weak(cur, n, std::memory_order_relaxed)) {
  }
}

/// Latencies in a log-linear histogram: 32 buckets per power of two from
/// 1 us (buckets at most 3.2% wide: 128 us from 4 to 8 ms), lock-free, for
/// percentiles in reports and benchmarks. Recording is one relaxed atomic
/// add.
class latency_histogram {
public:
  static constexpr int sub_bits = 5;
  static constexpr size_t bucket_count = 40 << sub_bits;

  void record(std::chrono::nanoseconds d) noexcept {
    buckets_[index_of(static_cast<uint64_t>(std::max<int64_t>(0, d.count())) / 1000)].fetch_add(
      1, std::memory_order_relaxed);
  }

  uint64_t count() const noexcept {
    uint64_t n = 0;
    for (auto& b : buckets_)
      n += b.load(std::memory_order_relaxed);
    return n;
  }

  /// The latency below which a share `q` (0..1) of the recorded ones fall
  /// (interpolated within its bucket); zero when nothing was recorded.
  std::chrono::nanoseconds quantile(double q) const noexcept {
    return quantile_of(counts(), q);
  }

  void clear() noexcept {
    for (auto& b : buckets_)
      b.store(0, std::memory_order_relaxed);
  }

  /// The bucket counts now: subtracting two snapshots gives the latencies
  /// recorded in between (the simulator's per-interval percentiles).
  using snapshot = std::array<uint64_t, bucket_count>;

  snapshot counts() const noexcept {
    snapshot out;
    for (size_t i = 0; i < bucket_count; ++i)
      out[i] = buckets_[i].load(std::memory_order_relaxed);
    return out;
  }

  /// `quantile` over the counts of a snapshot (or a difference of two).
  static std::chrono::nanoseconds quantile_of(const snapshot& counts, double q) noexcept {
    uint64_t n = 0;
    for (auto c : counts)
      n += c;
    if (n == 0)
      return std::chrono::nanoseconds{0};
    auto rank = static_cast<uint64_t>(q * static_cast<double>(n - 1)) + 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < bucket_count; ++i) {
      if (seen + counts[i] >= rank) {
        // The rank-th of the bucket's latencies, taking them as spread
        // evenly over it (the midpoint when the bucket holds one): a
        // bucket is up to 3% wide, coarse for reading a 1-ms target at 6 ms
        // from its midpoint alone.
        auto share = (static_cast<double>(rank - seen) - 0.5) / static_cast<double>(counts[i]);
        auto lo = static_cast<double>(lower_us(i)), hi = static_cast<double>(lower_us(i + 1));
        return std::chrono::nanoseconds{static_cast<int64_t>((lo + (hi - lo) * share) * 1000)};
      }
      seen += counts[i];
    }
    return std::chrono::nanoseconds{static_cast<int64_t>(lower_us(bucket_count) * 1000)};
  }

  /// Latencies recorded in bucket `i` are below this bound (Prometheus's
  /// "le" of the bucket); the last bucket also holds everything above.
  static std::chrono::nanoseconds bucket_upper(size_t i) noexcept {
    return std::chrono::nanoseconds{static_cast<int64_t>(lower_us(i + 1) * 1000)};
  }

  /// The bucket's midpoint (what a sum over buckets counts each latency as).
  static std::chrono::nanoseconds midpoint(size_t i) noexcept {
    return std::chrono::nanoseconds{static_cast<int64_t>((lower_us(i) + lower_us(i + 1)) * 500)};
  }

private:
  static size_t index_of(uint64_t us) noexcept {
    if (us < (1u << sub_bits))
      return static_cast<size_t>(us);
    int log = 63 - __builtin_clzll(us);
    auto sub = (us >> (log - sub_bits)) & ((1u << sub_bits) - 1);
    auto i = static_cast<size_t>((log - sub_bits + 1) << sub_bits) + sub;
    return std::min(i, bucket_count - 1);
  }
  static uint64_t lower_us(size_t i) noexcept {
    if (i < (1u << sub_bits))
      return i;
    auto log = static_cast<int>(i >> sub_bits) + sub_bits - 1;
    auto sub = i & ((1u << sub_bits) - 1);
    return (uint64_t{1} << log) + (sub << (log - sub_bits));
  }

  std::array<std::atomic<uint64_t>, bucket_count> buckets_{};
};

struct stage_counters {
  /// Records that left the stage (scored, failed or passed through).
  std::atomic<uint64_t> left{0};
  /// Backend calls made (by every model of the stage, fallbacks included).
  std::atomic<uint64_t> calls{0};
  /// Batches sent, by why they closed (batch_close order: full, slot-free,
  /// deadline, flush), and the records in them.
  std::array<std::atomic<uint64_t>, 4> batches_by_reason{};
  std::atomic<uint64_t> batched_records{0};
  std::atomic<uint64_t> max_batch{0};
  /// Batch sizes: bucket k counts batches of at most 2^k records (the last
  /// also holds the larger ones).
  static constexpr size_t batch_size_buckets = 12;
  std::array<std::atomic<uint64_t>, batch_size_buckets> batch_sizes{};

  void note_batch(uint64_t size) noexcept {
    size_t k = 0;
    while (k + 1 < batch_size_buckets && (uint64_t{1} << k) < size)
      ++k;
    batch_sizes[k].fetch_add(1, std::memory_order_relaxed);
  }
  /// Retries sent; retries the budget refused; records that failed
  /// (before the failure action), by timeout.total among them.
  std::atomic<uint64_t> retries{0};
  /// Retries by why the attempt before failed: retryable (errors, 5xx),
  /// timeout (timeout.attempt), rate-limited.
  std::array<std::atomic<uint64_t>, 3> retries_by_reason{};
  std::atomic<uint64_t> budget_refusals{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> total_timeouts{0};
  /// Records given the default value; records sent to a fallback model.
  std::atomic<uint64_t> defaulted{0};
  std::atomic<uint64_t> fell_back{0};
  /// Records the stage's condition (stages[i].when) passed through unscored.
  std::atomic<uint64_t> skipped{0};
  /// Time from a record entering the stage to leaving it (scored, failed
  /// or passed through).
  latency_histogram latency;
  /// The most records one subtask's stage held at once.
  std::atomic<uint64_t> max_held{0};

  void note_held(uint64_t n) noexcept {
    raise_to(max_held, n);
  }
};

/// Raises `target` to `x` if `x` is larger (NaN never raises).
inline void raise_to(std::atomic<double>& target, double x) noexcept {
  auto cur = target.load(std::memory_order_relaxed);
  while (x > cur && !target.compare_exchange_weak(cur, x, std::memory_order_relaxed)) {
  }
}

/// Figures of one endpoint (job-wide).
struct endpoint_counters {
  /// Calls handed to the backend.
  std::atomic<uint64_t> calls{0};
  /// Calls that failed as a whole (any class), and attempt timeouts among
  /// them; rate-limited answers.
  std::atomic<uint64_t> failures{0};
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> rate_limited{0};
  /// Records in successful calls.
  std::atomic<uint64_t> records_ok{0};
  /// Calls that scored at least one record (the others were wasted).
  std::atomic<uint64_t> scored_calls{0};
  /// LLM usage the server reported (openai).
  std::atomic<uint64_t> prompt_tokens{0};
  std::atomic<uint64_t> completion_tokens{0};
  /// The concurrency limit now (the endpoint's slots).
  std::atomic<uint64_t> limit{0};
  /// gradient limiter: its estimate of the calls the server runs at once;
  /// pacing spaces call starts by it, capped at the limit (1 while the
  /// estimator asks for calls sent alone). 0: none yet, or another limiter.
  std::atomic<double> server_concurrency{0.0};
  /// Calls in flight now, and the most at once.
  std::atomic<uint64_t> in_flight{0};
  std::atomic<uint64_t> max_in_flight{0};
  /// Smoothed latency of successful calls, ms (what the router reads), and
  /// every successful call's latency (from sending to the answer).
  std::atomic<double> latency_ms{0.0};
  latency_histogram latency;
  /// The load probe's last reading (probe.type in-band: the estimate at the
  /// last slot grant; prometheus: the last answered scrape), -1 unknown:
  /// requests waiting at the server, executing, their mean queue time (ms)
  /// and KV cache usage (0..1).
  std::atomic<double> probe_queue_depth{-1.0};
  std::atomic<double> probe_running{-1.0};
  std::atomic<double> probe_mean_queue_ms{-1.0};
  std::atomic<double> probe_cache_usage{-1.0};
  /// The largest queue depth any reading showed (-1: none known).
  std::atomic<double> max_probe_queue_depth{-1.0};
  /// prometheus: scrapes made, failed ones among them (no answer, a status
  /// other than 200, a page that does not parse), readings fed to the
  /// concurrency limiter.
  std::atomic<uint64_t> probe_scrapes{0};
  std::atomic<uint64_t> probe_failures{0};
  std::atomic<uint64_t> probe_limiter_readings{0};
  /// prometheus: whether the endpoint is suspect now (the router then sees
  /// it loaded), and how often it turned suspect.
  std::atomic<bool> probe_suspect{false};
  std::atomic<uint64_t> probe_suspect_periods{0};
  /// prometheus: times its load probe died (each time the supervisor starts
  /// another one probe.interval later).
  std::atomic<uint64_t> probe_restarts{0};
};

/// A breaker changed state (kept for reports, tests and the event log).
struct breaker_event {
  /// Virtual or wall time since the job started.
  std::chrono::nanoseconds at{0};
  std::string endpoint;  ///< "model/endpoint"
  /// "job" or "subtask N".
  std::string scope;
  std::string from, to;
  uint64_t calls = 0, failures = 0;
};

struct job_counters {
  explicit job_counters(size_t stage_count)
    : stages(new stage_counters[stage_count]), stage_count(stage_count) {
  }

  /// Set to end the input early: the source stops reading at its next
  /// record, the job drains what it holds and ends as if the input ended.
  std::atomic<bool> stop_requested{false};
  /// Records the source handed to subtasks.
  std::atomic<uint64_t> records_in{0};
  /// How late a paced source reads (its next record was due this long
  /// ago), ns; 0 for sources read as fast as credit allows.
  std::atomic<int64_t> source_lag_ns{0};
  /// Lines the sink wrote to the output.
  std::atomic<uint64_t> records_out{0};
  /// Records the sink wrote to the dead-letter file.
  std::atomic<uint64_t> dead_lettered{0};
  /// Subtask restarts after crashes.
  std::atomic<uint64_t> restarts{0};
  /// Checkpoints (checkpoint.dir set): completed, and abandoned or failed to
  /// write; the duration of completed ones, from trigger to the store's
  /// synced write.
  std::atomic<uint64_t> checkpoints_completed{0};
  std::atomic<uint64_t> checkpoints_failed{0};
  latency_histogram checkpoint_duration;
  /// The checkpoint this run restored (0: none, a fresh start).
  std::atomic<uint64_t> restored_from{0};
  /// Model results written to the call log, and records answered from it
  /// after a restore instead of calling the model again.
  std::atomic<uint64_t> calls_logged{0};
  std::atomic<uint64_t> calls_replayed{0};
  /// End-to-end latency of the records written to the output: from the
  /// record's birth (`record::born_ns`: its due instant for a paced
  /// generator, else when the source read it) to the sink writing it.
  latency_histogram end_to_end;
  std::unique_ptr<stage_counters[]> stages;
  size_t stage_count;

  /// The counters of endpoint `key` ("model/endpoint"), made on first use.
  std::shared_ptr<endpoint_counters> endpoint(const std::string& key) {
    std::lock_guard<std::mutex> guard{mutex_};
    auto& slot = endpoints_[key];
    if (!slot)
      slot = std::make_shared<endpoint_counters>();
    return slot;
  }

  /// Every endpoint's counters, by key.
  std::map<std::string, std::shared_ptr<endpoint_counters>> endpoints() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return endpoints_;
  }

  /// The event log (metrics.event-log), or null.
  std::shared_ptr<event_log> events;

  /// Writes `e` to the event log, if there is one.
  void emit(const job_event& e) const {
    if (events)
      events->write(e);
  }

  void add_breaker_event(breaker_event e) {
    if (events)
      events->write(job_event{"breaker", {}}
                      .text("endpoint", e.endpoint)
                      .text("scope", e.scope)
                      .text("from", e.from)
                      .text("to", e.to)
                      .number("calls", static_cast<double>(e.calls))
                      .number("failures", static_cast<double>(e.failures)));
    std::lock_guard<std::mutex> guard{mutex_};
    breaker_events_.push_back(std::move(e));
  }

  std::vector<breaker_event> breaker_events() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return breaker_events_;
  }

  /// Records inside the job (read, not yet written anywhere).
  uint64_t in_flight() const noexcept {
    auto in = records_in.load(std::memory_order_relaxed);
    auto done = records_out.load(std::memory_order_relaxed)
                + dead_lettered.load(std::memory_order_relaxed);
    return in > done ? in - done : 0;
  }

private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<endpoint_counters>> endpoints_;
  std::vector<breaker_event> breaker_events_;
};

} // namespace sinfer
