#pragma once
/// The `http-json` protocol: a batch is one POST of a JSON body, records as
/// an array of objects under a configurable field; the answer holds one
/// object per record, in order, under another field:
///
///   POST {url}{path}   {"inputs": [{"text": "great"}, {"text": "awful"}]}
///   200                {"outputs": [{"label": "positive"}, {"label": "negative"}]}
///
/// For servers that cannot batch (`http.batched` false), each call carries
/// one record, as the body itself, and the answer is the result object:
///
///   POST {url}{path}   {"text": "great"}
///   200                {"label": "positive"}
///
/// A row may answer {"error": "..."} (that record fails, fatal for it); a
/// whole-call failure is classified by its status (policies/http_status.hpp)
/// with the message from the error body when there is one. A body that is
/// not JSON or has the wrong number of rows fails the call as fatal for the
/// endpoint (the records retry elsewhere). No CAF, no sockets here: the
/// connections are `http_backend`'s.

#include <string>
#include <vector>

#include "backends/http_protocol.hpp"

namespace sinfer {

struct http_json_settings {
  /// Request path. Default "/infer".
  std::string path = "/infer";
  /// Field holding the records in the request / the results in the answer.
  std::string inputs_field = "inputs";
  std::string outputs_field = "outputs";
  /// False: one record per request, sent and answered as a bare object.
  bool batched = true;
  /// The model's input names (keys of each record object sent) and output
  /// names (keys read from each result object).
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
};

class http_json_protocol : public http_protocol {
public:
  explicit http_json_protocol(http_json_settings settings) : cfg_(std::move(settings)) {
  }

  const std::vector<std::string>& output_names() const override {
    return cfg_.outputs;
  }
  const std::string& path() const override {
    return cfg_.path;
  }
  uint32_t max_rows() const override {
    return cfg_.batched ? 0 : 1;
  }
  http_request encode(const call_request& req) const override;
  call_result decode(uint32_t rows, const http_answer& answer) const override;

private:
  http_json_settings cfg_;
};

} // namespace sinfer
