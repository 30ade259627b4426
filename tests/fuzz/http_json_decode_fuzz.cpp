/// Fuzz target: the `http-json` protocol's answer decoder
/// (backends/http_json.hpp), batched and one-record-per-call, under several
/// field names. Input and invariants: decode_checks.hpp.

#include "decode_checks.hpp"

#include "backends/http_json.hpp"

namespace {

using namespace sinfer;

std::vector<http_json_protocol> make_protocols() {
  std::vector<http_json_protocol> out;
  http_json_settings batched;
  batched.inputs = {"text"};
  batched.outputs = {"label", "score"};
  out.emplace_back(batched); // 0: {"outputs": [{"label": ..., "score": ...}, ...]}
  http_json_settings single = batched;
  single.batched = false;
  single.outputs = {"label"};
  out.emplace_back(single); // 1: {"label": ...}
  http_json_settings renamed = batched;
  renamed.inputs_field = "instances";
  renamed.outputs_field = "predictions";
  renamed.outputs = {"embedding"};
  out.emplace_back(renamed); // 2: {"predictions": [{"embedding": [...]}, ...]}
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet();
  static const std::vector<http_json_protocol> protocols = make_protocols();
  auto c = fuzz::read_decode_case(data, size, protocols.size());
  auto& protocol = protocols[c.config];
  auto res = protocol.decode(c.rows, c.answer);
  fuzz::check_decoded(protocol, c, res);
  // Row errors come only from a readable success, as fatal for that record.
  for (auto& e : res.row_errors)
    FUZZ_CHECK(e.ok() || e.cls == error_class::fatal_record);
  return 0;
}
