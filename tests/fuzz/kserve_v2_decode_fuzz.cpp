/// Fuzz target: the `kserve-v2` protocol's answer decoder
/// (backends/kserve_v2.hpp): output tensors found by name, shapes checked
/// against the batch, flat or nested data, scalars and nested arrays per
/// row. Input and invariants: decode_checks.hpp; also, KServe has no
/// per-record errors, so a success has none.

#include "decode_checks.hpp"

#include "backends/kserve_v2.hpp"

namespace {

using namespace sinfer;

std::vector<kserve_v2_protocol> make_protocols() {
  std::vector<kserve_v2_protocol> out;
  kserve_v2_settings sentiment;
  sentiment.model = "sentiment";
  sentiment.inputs = {{"text", "BYTES", {1}}};
  sentiment.outputs = {"label", "score"};
  out.emplace_back(sentiment); // 0: a BYTES and an FP32 output, one element per row
  kserve_v2_settings embedder;
  embedder.model = "hash-embedder";
  embedder.version = "2";
  embedder.inputs = {{"text", "BYTES", {1}}};
  embedder.outputs = {"embedding"};
  out.emplace_back(embedder); // 1: [rows, n] (or deeper) per output
  kserve_v2_settings none;
  none.model = "side-effect";
  out.emplace_back(none); // 2: no outputs asked for
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet();
  static const std::vector<kserve_v2_protocol> protocols = make_protocols();
  auto c = fuzz::read_decode_case(data, size, protocols.size());
  auto& protocol = protocols[c.config];
  auto res = protocol.decode(c.rows, c.answer);
  fuzz::check_decoded(protocol, c, res);
  if (res.error.ok())
    FUZZ_CHECK(res.row_errors.empty());
  return 0;
}
