#pragma once
/// sim_backend: an InferenceBackend whose calls go to a simulated server
/// (sim/sim_server.hpp) on the actor clock, for `sinfer sim`.
///
/// Each call is answered at once with the result and the `delay` its server
/// takes (the endpoint holds the answer that long on the actor clock, so in
/// virtual time it arrives then); a hung server never answers (the
/// endpoint's timeout.attempt does). Output values come from the real
/// in-process model when there is one, else each output is a deterministic
/// number in [0, 1) from the record's inputs, so later stages and conditions
/// see stable values. No CAF here.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/inference_backend.hpp"
#include "sim/sim_server.hpp"

namespace sinfer {

class sim_backend : public inference_backend {
public:
  /// `now`: time since the job started on the actor clock. `values`: the
  /// in-process model that computes outputs, or nullptr (then `outputs`
  /// names them).
  sim_backend(std::shared_ptr<sim_server> server, std::function<std::chrono::nanoseconds()> now,
              std::shared_ptr<inference_backend> values, std::vector<std::string> outputs);

  const std::vector<std::string>& output_names() const override;

  void infer(const call_request& req, completion done) override;

private:
  std::shared_ptr<sim_server> server_;
  std::function<std::chrono::nanoseconds()> now_;
  std::shared_ptr<inference_backend> values_;
  std::vector<std::string> outputs_;
};

} // namespace sinfer
