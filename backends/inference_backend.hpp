#pragma once
/// The InferenceBackend SPI: send one batch, get per-record results or a
/// classified error, asynchronously.
///
/// An `endpoint` actor owns one backend instance and is the only caller of
/// `infer`. Implementations must not block the caller: an in-process model
/// computes in place (it is CPU work, like any handler), a network backend
/// hands the call to its own connection workers and calls `done` from there.
/// No CAF header here.

#include <functional>
#include <string>
#include <vector>

#include "messages/call.hpp"

namespace sinfer {

class inference_backend {
public:
  /// Called with the call's outcome, exactly once, from any thread.
  using completion = std::function<void(call_result)>;

  virtual ~inference_backend() = default;

  /// The output names every successful call returns, in column order.
  /// Known before the first call, so configs are validated at load time.
  virtual const std::vector<std::string>& output_names() const = 0;

  /// Starts one call for the batch `req` (`req.rows >= 1`). `done` may run
  /// before `infer` returns.
  virtual void infer(const call_request& req, completion done) = 0;
};

} // namespace sinfer
