/// Fuzz target: the `openai` protocol's answer decoder (backends/openai.hpp):
/// embeddings as float arrays and as base64 float32, matched by index;
/// chat completions with every output; both error shapes ({"error":
/// {"message": ...}} and older vLLM's {"object": "error", "message": ...})
/// are bodies of the corpus. Also `decode_base64` (runtime/base64.hpp) on the
/// body.
/// Input and invariants: decode_checks.hpp; besides, a success's usage
/// tokens are what the chat outputs say, and base64 decodes to 3 bytes per
/// 4 characters and round-trips through `base64`.

#include "decode_checks.hpp"

#include "backends/openai.hpp"
#include "runtime/base64.hpp"

namespace {

using namespace sinfer;

std::vector<openai_protocol> make_protocols() {
  std::vector<openai_protocol> out;
  openai_settings embeddings;
  embeddings.api = openai_api::embeddings;
  embeddings.model = "text-embedding-3-small";
  out.emplace_back(embeddings); // 0: float arrays
  auto base64 = embeddings;
  base64.encoding_format = "base64";
  out.emplace_back(base64); // 1: base64 little-endian float32 (the same decoder reads both)
  openai_settings chat;
  chat.api = openai_api::chat;
  chat.model = "llama";
  chat.prompt = "Summarise: ${text}";
  chat.outputs = {"content", "finish_reason", "prompt_tokens", "completion_tokens"};
  out.emplace_back(chat); // 2: every chat output
  auto content = chat;
  content.outputs = {};
  out.emplace_back(content); // 3: the default output, content
  return out;
}

void check_base64(std::string_view text) {
  std::string bytes;
  if (!decode_base64(text, bytes))
    return;
  auto digits = text.size();
  while (digits > 0 && text[digits - 1] == '=')
    --digits;
  FUZZ_CHECK(bytes.size() == digits * 6 / 8);
  // Encoded again: as many digits (trailing bits the decoder ignored may
  // differ), and decoding gives the same bytes.
  auto encoded = base64(bytes);
  auto encoded_digits = encoded.find('=');
  FUZZ_CHECK((encoded_digits == std::string::npos ? encoded.size() : encoded_digits) == digits);
  std::string again;
  FUZZ_CHECK(decode_base64(encoded, again));
  FUZZ_CHECK(again == bytes);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet();
  static const std::vector<openai_protocol> protocols = make_protocols();
  auto c = fuzz::read_decode_case(data, size, protocols.size());
  auto& protocol = protocols[c.config];
  auto res = protocol.decode(c.rows, c.answer);
  fuzz::check_decoded(protocol, c, res);
  if (res.error.ok()) {
    FUZZ_CHECK(res.row_errors.empty());
    auto& names = protocol.output_names();
    for (size_t col = 0; col < names.size(); ++col) {
      if (names[col] == "prompt_tokens")
        FUZZ_CHECK(res.at(0, col) == std::to_string(res.prompt_tokens));
      if (names[col] == "completion_tokens")
        FUZZ_CHECK(res.at(0, col) == std::to_string(res.completion_tokens));
    }
  }
  check_base64(c.answer.body);
  return 0;
}
