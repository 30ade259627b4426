#pragma once
/// The `kserve-v2` protocol: the Open Inference Protocol's REST API as
/// Triton and KServe serve it. A batch is one request whose tensors have the
/// batch as their first dimension; outputs are read back per row:
///
///   POST /v2/models/{name}[/versions/{v}]/infer
///     {"inputs": [{"name": "text", "shape": [2, 1], "datatype": "BYTES",
///                  "data": ["great", "awful"]}],
///      "outputs": [{"name": "label"}, {"name": "score"}]}
///   200 {"model_name": "m", "outputs": [
///         {"name": "label", "shape": [2, 1], "datatype": "BYTES", "data": ["positive", "negative"]},
///         {"name": "score", "shape": [2, 1], "datatype": "FP32", "data": [0.9, 0.1]}]}
///   4xx/5xx {"error": "message"}
///
/// Each input's datatype and per-row shape come from the config
/// (`kserve.inputs`), else from the model's metadata (GET /v2/models/{name},
/// read once before the job starts: `apply_metadata`), else from the first
/// record's value (string: BYTES [1]; bool: BOOL [1]; integer: INT64 [1];
/// number: FP32 [1]; array of numbers: FP32 [n]). A record whose value does
/// not fit (a string for an FP32 tensor, an array of the wrong length) is
/// rejected alone, fatal for that record; the rest of the batch goes.
/// An output with one element per row becomes a scalar (a JSON string for
/// BYTES, a number otherwise); more elements become an array nested by the
/// output's shape. Data may come flat (row-major) or nested: both are read.
/// KServe has no per-row errors: a request fails or succeeds whole.
/// Pure: no sockets, no CAF.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backends/http_protocol.hpp"

namespace sinfer {

/// One input tensor: its name, datatype ("BYTES", "FP32", ...; empty:
/// inferred) and per-row shape (empty: inferred; -1: any length, the same
/// for every row of a batch).
struct kserve_tensor {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
};

struct kserve_v2_settings {
  /// The model's name and version on the server (version empty: the
  /// server's choice).
  std::string model;
  std::string version;
  /// The input tensors, in the order of the batch's input columns.
  std::vector<kserve_tensor> inputs;
  /// The outputs asked for and read back, in column order.
  std::vector<std::string> outputs;
};

/// A problem with the config found in the server's metadata: the key path
/// under `models.NAME` it concerns ("input.text", "output.label", "model")
/// and what is wrong.
struct metadata_problem {
  std::string key;
  std::string message;
};

class kserve_v2_protocol : public http_protocol {
public:
  explicit kserve_v2_protocol(kserve_v2_settings settings);

  const std::vector<std::string>& output_names() const override {
    return cfg_.outputs;
  }
  const std::string& path() const override {
    return path_;
  }
  http_request encode(const call_request& req) const override;
  call_result decode(uint32_t rows, const http_answer& answer) const override;

  /// The metadata path: /v2/models/{name}[/versions/{v}].
  static std::string metadata_path(const kserve_v2_settings& cfg);
  /// The readiness path: /v2/models/{name}[/versions/{v}]/ready.
  static std::string ready_path(const kserve_v2_settings& cfg);

  /// Checks `cfg` against the model metadata JSON `body` and fills in the
  /// datatypes and shapes the config left open. Returns every problem
  /// (unknown input or output names, required inputs not given, datatype
  /// or shape conflicts, metadata that is not the protocol's).
  static std::vector<metadata_problem> apply_metadata(kserve_v2_settings& cfg, const std::string& body);

private:
  kserve_v2_settings cfg_;
  std::string path_;
};

/// The datatypes of the protocol ("BOOL", "UINT8" ... "FP64", "BYTES").
bool is_kserve_datatype(const std::string& name);

} // namespace sinfer
