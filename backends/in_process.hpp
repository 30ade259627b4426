#pragma once
/// The `in-process` provider: models that are C++ callables, registered by
/// name in a `model_registry`, plus built-ins for demos, tests and benchmarks.
///
/// Built-ins (each takes the input `text`, a JSON string):
/// - `keyword-classifier`: outputs `label` ("positive" | "negative" |
///   "neutral") and `score` (0..1) from a fixed word list. A non-string input
///   is a fatal-record error.
/// - `hash-embedder`: outputs `embedding`, an L2-normalised feature-hashing
///   vector; option `dimensions` (integer 1..4096, default 8).
/// - `text-length`: outputs `length`, the input's length in bytes.
/// - `noop`: accepts any inputs, outputs `result` = true (benchmarks).
/// No CAF header here.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/inference_backend.hpp"

namespace sinfer {

/// Computes one batch in place: fill `out.values` with exactly `rows *
/// outputs` values (raw JSON; failed rows may leave theirs empty), and either
/// leave `out.row_errors` empty or give it exactly `rows` entries; or set
/// `out.error` for the whole batch. Any other shape fails the batch.
using in_process_fn = std::function<void(const call_request& in, call_result& out)>;

/// A model as a C++ callable.
struct in_process_model {
  /// Input names the model reads; empty means it accepts any.
  std::vector<std::string> inputs;
  /// Output names it produces, in column order.
  std::vector<std::string> outputs;
  in_process_fn compute;
};

/// Makes a model from the JSON text of its config's `options` object ("{}"
/// when absent). On bad options, returns a model with no `compute` and sets
/// `error` to what was expected (the caller adds the key path).
using in_process_factory =
  std::function<in_process_model(std::string_view options_json, std::string& error)>;

/// In-process models by name.
class model_registry {
public:
  /// A registry with the built-ins above.
  static model_registry with_builtins();

  /// Registers (or replaces) a model factory under `name`.
  void add(std::string name, in_process_factory factory);

  /// Registers a model that has no options.
  void add(std::string name, in_process_model model);

  /// The factory for `name`, or nullptr.
  const in_process_factory* find(std::string_view name) const;

  /// All registered names, sorted.
  std::vector<std::string> names() const;

private:
  std::map<std::string, in_process_factory, std::less<>> factories_;
};

/// The backend that calls an in-process model.
class in_process_backend : public inference_backend {
public:
  explicit in_process_backend(in_process_model model);

  const std::vector<std::string>& output_names() const override;

  /// Computes in place and calls `done` before returning. An exception from
  /// the model becomes a `crash` error: the calling subtask restarts.
  void infer(const call_request& req, completion done) override;

private:
  in_process_model model_;
};

} // namespace sinfer
