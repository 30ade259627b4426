#include "sim/sim_backend.hpp"

#include <cstdio>
#include <utility>

#include "policies/partitioning.hpp"

namespace sinfer {

sim_backend::sim_backend(std::shared_ptr<sim_server> server, std::function<std::chrono::nanoseconds()> now,
                         std::shared_ptr<inference_backend> values, std::vector<std::string> outputs)
  : server_(std::move(server)), now_(std::move(now)), values_(std::move(values)), outputs_(std::move(outputs)) {
  if (values_)
    outputs_ = values_->output_names();
}

const std::vector<std::string>& sim_backend::output_names() const {
  return outputs_;
}

namespace {

call_result failed(error_class cls, std::string message) {
  call_result r;
  r.error = call_error{cls, std::move(message), std::chrono::milliseconds{0}};
  return r;
}

/// A stable number in [0, 1) for output `col` of row `row`.
std::string stand_in_value(const call_request& req, uint32_t row, size_t col) {
  uint64_t h = fnv1a("sim") ^ col;
  for (size_t c = 0; c < req.names.size(); ++c)
    h = (h ^ fnv1a(req.at(row, c))) * 0x100000001B3ull;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", static_cast<double>(h >> 11) * 0x1.0p-53);
  return buf;
}

} // namespace

void sim_backend::infer(const call_request& req, completion done) {
  auto ans = server_->admit(now_(), req.rows);
  call_result r;
  using how = sim_answer::outcome;
  switch (ans.how) {
    case how::hang:
      return; // never answered: the endpoint's timeout.attempt ends the call
    case how::error:
      r = failed(error_class::retryable, "simulated server: 5xx error");
      break;
    case how::overloaded:
      r = failed(error_class::retryable, "simulated server: 503 queue full");
      break;
    case how::reset:
      r = failed(error_class::retryable, "simulated server: connection reset");
      break;
    case how::rate_limited:
      r = failed(error_class::rate_limited, "simulated server: 429 Too Many Requests");
      r.error.retry_after = ans.retry_after;
      break;
    case how::crash:
      r = failed(error_class::crash, "simulated crash in the model's code");
      break;
    case how::ok:
      if (values_) {
        values_->infer(req, [&](call_result computed) { r = std::move(computed); });
      } else {
        r.names = outputs_;
        r.values.reserve(static_cast<size_t>(req.rows) * outputs_.size());
        for (uint32_t row = 0; row < req.rows; ++row)
          for (size_t col = 0; col < outputs_.size(); ++col)
            r.values.push_back(stand_in_value(req, row, col));
      }
      break;
  }
  r.delay = ans.delay;
  done(std::move(r));
}

} // namespace sinfer
