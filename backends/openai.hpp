#pragma once
/// The `openai` protocol: OpenAI-compatible servers (OpenAI, vLLM, TGI,
/// llama.cpp's server...), two APIs:
///
/// - `embeddings`: a batch is one request with many inputs:
///     POST /v1/embeddings {"model": "m", "input": ["great", "awful"], "encoding_format": "float"}
///     200 {"data": [{"index": 0, "embedding": [0.1, ...]}, ...], "usage": {"prompt_tokens": 4, ...}}
///   Results are matched by `index`. With `encoding_format` "base64" the
///   server sends each embedding as base64 of little-endian float32s; it is
///   decoded to the same JSON array (`embedding` output).
/// - `chat`: one request per record (`max_rows` 1), the user message made
///   from a template over the record's inputs (`${name}`; a string value is
///   inserted as its text, anything else as JSON):
///     POST /v1/chat/completions {"model": "m", "messages": [{"role": "system", "content": S},
///       {"role": "user", "content": "Summarise: ..."}], "temperature": 0, "max_tokens": 64}
///     200 {"choices": [{"message": {"content": "..."}, "finish_reason": "stop"}],
///          "usage": {"prompt_tokens": 12, "completion_tokens": 9}}
///   Outputs: `content`, `finish_reason`, `prompt_tokens`, `completion_tokens`.
/// Usage tokens are also reported in `call_result::usage` for metrics.
/// Errors come as {"error": {"message": ...}} or, from older vLLM,
/// {"object": "error", "message": ...}; both are read (http_protocol.hpp).
/// 429, and 503 with Retry-After, are rate-limited (policies/http_status.hpp).
/// Pure: no sockets, no CAF.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/base64.hpp" // decode_base64, for embeddings sent as base64
#include "backends/http_protocol.hpp"

namespace sinfer {

enum class openai_api : uint8_t { embeddings, chat };

struct openai_settings {
  openai_api api = openai_api::embeddings;
  /// The model's name on the server.
  std::string model;
  /// embeddings: "float" (default) or "base64".
  std::string encoding_format = "float";
  /// chat: the user message template, the system prompt (empty: none), and
  /// the sampling settings (unset: the server's defaults).
  std::string prompt;
  std::string system_prompt;
  std::optional<double> temperature;
  uint32_t max_tokens = 0;
  /// The outputs read back, in column order (embeddings: "embedding";
  /// chat: any of "content", "finish_reason", "prompt_tokens",
  /// "completion_tokens").
  std::vector<std::string> outputs;
};

class openai_protocol : public http_protocol {
public:
  explicit openai_protocol(openai_settings settings);

  const std::vector<std::string>& output_names() const override {
    return cfg_.outputs;
  }
  const std::string& path() const override {
    return path_;
  }
  uint32_t max_rows() const override {
    return cfg_.api == openai_api::chat ? 1 : 0;
  }
  http_request encode(const call_request& req) const override;
  call_result decode(uint32_t rows, const http_answer& answer) const override;

  /// The input names a chat template reads (`${name}`), in order of first
  /// use; `error` says what is wrong with a malformed template.
  static std::vector<std::string> template_fields(const std::string& prompt, std::string& error);
  /// The outputs each API can give.
  static const std::vector<std::string>& known_outputs(openai_api api);

private:
  openai_settings cfg_;
  std::string path_;
  /// The template as literal text and input names, alternating (literal
  /// first; a name is at an odd index).
  std::vector<std::string> parts_;
};


} // namespace sinfer
