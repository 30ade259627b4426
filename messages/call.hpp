#pragma once
/// One backend call: a batch of model inputs and its per-record results.
///
/// Values are raw JSON texts (`"great"`, `3.5`, `[1,2]`), so the same shapes
/// serve in-process callables and, later, HTTP backends. No CAF header here.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace sinfer {

/// How a failed call (or one record of it) should be treated.
enum class error_class : uint8_t {
  none = 0,        ///< success
  retryable,       ///< transient: connect error, 5xx, timeout
  rate_limited,    ///< 429/503; wait at least `retry_after`
  fatal_record,    ///< this record can never be scored (bad input)
  fatal_endpoint,  ///< the endpoint is unusable (auth, missing model)
  crash,           ///< user code threw: the calling subtask crashes and restarts
};

/// Name of an error class as it appears in dead letters and logs.
inline const char* to_string(error_class x) noexcept {
  switch (x) {
    case error_class::none: return "none";
    case error_class::retryable: return "retryable";
    case error_class::rate_limited: return "rate-limited";
    case error_class::fatal_record: return "fatal-record";
    case error_class::fatal_endpoint: return "fatal-endpoint";
    case error_class::crash: return "crash";
  }
  return "unknown";
}

/// A classified error. `cls == none` means success.
struct call_error {
  error_class cls = error_class::none;
  std::string message;
  /// For rate_limited: the server's Retry-After, else zero.
  std::chrono::milliseconds retry_after{0};
  /// The call got no answer in time (timeout.attempt, or a socket timeout):
  /// an overload signal for the endpoint's concurrency limiter.
  bool timed_out = false;

  bool ok() const noexcept {
    return cls == error_class::none;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, call_error& x) {
  return f(x.cls, x.message, x.retry_after, x.timed_out);
}

/// The inputs of one batch, row-major: `values[row * names.size() + col]`.
struct call_request {
  /// The model's input names, in column order.
  std::vector<std::string> names;
  /// Raw JSON text of each input value.
  std::vector<std::string> values;
  /// Number of records in the batch.
  uint32_t rows = 0;
  /// The batch's Idempotency-Key (HTTP backends send it as that header on
  /// every POST of this batch, retries included): `idempotency_key_of` the
  /// items' call keys in batch order; empty when no item has one.
  std::string idempotency_key;

  /// The raw JSON of input `col` for record `row`.
  const std::string& at(uint32_t row, size_t col) const {
    return values[row * names.size() + col];
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, call_request& x) {
  return f(x.names, x.values, x.rows, x.idempotency_key);
}

/// `x` as 16 lowercase hex digits.
inline std::string hex64(uint64_t x) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, x >>= 4)
    out[static_cast<size_t>(i)] = digits[x & 15];
  return out;
}

/// One 64-bit key for a batch whose records have the call keys `keys` (in
/// batch order; see `work_item::call_key`): a single key is itself; several
/// are combined by 64-bit FNV-1a over each key's 8 little-endian bytes, so
/// the result depends on the keys and their order only.
inline uint64_t combine_call_keys(const std::vector<uint64_t>& keys) {
  if (keys.size() == 1)
    return keys[0];
  uint64_t h = 14695981039346656037ull; // FNV-1a offset basis
  for (auto k : keys)
    for (int i = 0; i < 8; ++i) {
      h ^= (k >> (8 * i)) & 0xff;
      h *= 1099511628211ull; // FNV prime
    }
  return h;
}

/// The Idempotency-Key of a batch with the call keys `keys` (0: the record
/// has none): empty when no record has one, else `combine_call_keys` as 16
/// lowercase hex digits.
inline std::string idempotency_key_of(const std::vector<uint64_t>& keys) {
  for (auto k : keys)
    if (k != 0)
      return hex64(combine_call_keys(keys));
  return {};
}

/// The key of row `row` of a keyed batch sent alone (a server refused the
/// batch as a bad request, so each row goes in its own request): a request
/// with another body must not reuse the batch's key. Empty stays empty.
inline std::string row_idempotency_key(const std::string& batch_key, uint32_t row) {
  return batch_key.empty() ? std::string{} : batch_key + "-" + std::to_string(row);
}

/// The outcome of one call. Either the whole call failed (`error` set), or
/// each row has outputs (`values[row * names.size() + col]`) unless its entry
/// in `row_errors` says otherwise (`row_errors` is empty when all succeeded).
struct call_result {
  call_error error;
  std::vector<std::string> names;
  std::vector<std::string> values;
  std::vector<call_error> row_errors;
  /// LLM usage the server reported for the call (0 when none).
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  /// Simulated backends (sim/): the answer reaches the caller this long
  /// after the call, on the actor clock (so in virtual time too). Real
  /// backends answer when they answer and leave it 0.
  std::chrono::nanoseconds delay{0};

  /// The raw JSON of output `col` for record `row`.
  const std::string& at(uint32_t row, size_t col) const {
    return values[row * names.size() + col];
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, call_result& x) {
  return f(x.error, x.names, x.values, x.row_errors, x.prompt_tokens, x.completion_tokens, x.delay);
}

} // namespace sinfer
