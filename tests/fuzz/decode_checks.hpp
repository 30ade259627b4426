#pragma once
/// Shared by the backend decoder fuzz targets (http_json_decode,
/// kserve_v2_decode, openai_decode): the answer read from the input and
/// the invariants every `http_protocol::decode` result keeps, whatever the
/// protocol.
///
/// Input of those targets: one header line, then the answer's body:
///   CONFIG ROWS STATUS [CONTENT-TYPE [RETRY-AFTER [timeout]]]
/// CONFIG picks one of the target's protocol settings (modulo their number),
/// ROWS the records of the call (1..64), STATUS the HTTP status (0: no
/// answer, with a transport error), CONTENT-TYPE and RETRY-AFTER the
/// headers' text ("-": none; no spaces), "timeout" that the call timed out.
/// E.g.
///   0 2 200 application/json
///   {"outputs": [{"label": "positive"}, {"label": "negative"}]}
/// A body is read as JSON whatever its Content-Type (which only goes into
/// messages), so HTML error pages and plain text bodies are in the corpora
/// with their real content types.

#include <string>
#include <vector>

#include <simdjson.h>

#include "fuzz_support.hpp"

#include "backends/http_protocol.hpp"

namespace sinfer::fuzz {

/// The call a decoder fuzz input describes.
struct decode_case {
  size_t config = 0;
  uint32_t rows = 1;
  http_answer answer;
};

inline decode_case read_decode_case(const uint8_t* data, size_t size, size_t configs) {
  decode_case c;
  auto [header, body] = split_header(as_text(data, size));
  c.config = static_cast<size_t>(number_or(next_token(header), 0, 1000)) % configs;
  c.rows = static_cast<uint32_t>(number_or(next_token(header), 1, 64));
  if (c.rows == 0)
    c.rows = 1;
  c.answer.status = static_cast<int>(number_or(next_token(header), 200, 999));
  auto content_type = next_token(header);
  if (!content_type.empty() && content_type != "-")
    c.answer.content_type = std::string{content_type};
  auto retry_after = next_token(header);
  if (!retry_after.empty() && retry_after != "-")
    c.answer.retry_after = std::string{retry_after};
  c.answer.timed_out = next_token(header) == "timeout";
  if (c.answer.status == 0)
    c.answer.transport_error = "POST http://127.0.0.1:1/infer: Connection";
  c.answer.body = std::string{body};
  return c;
}

/// The invariants of a decoded answer to a call of `rows` records.
inline void check_decoded(const http_protocol& protocol, const decode_case& c, const call_result& res) {
  static simdjson::dom::parser checker;
  auto& names = protocol.output_names();
  FUZZ_CHECK(res.names == names);
  bool success_status = c.answer.status >= 200 && c.answer.status < 300;
  if (!success_status)
    FUZZ_CHECK(!res.error.ok()); // no answer, or not 2xx: never a success
  if (!res.error.ok()) {
    FUZZ_CHECK(!res.error.message.empty() || c.answer.status != 0);
    return;
  }
  // Success: exactly one value per record and output, each valid JSON (it
  // goes into the output record as is), unless that record failed alone.
  FUZZ_CHECK(res.values.size() == static_cast<size_t>(c.rows) * names.size());
  FUZZ_CHECK(res.row_errors.empty() || res.row_errors.size() == c.rows);
  for (uint32_t row = 0; row < c.rows; ++row) {
    if (!res.row_errors.empty() && !res.row_errors[row].ok())
      continue;
    for (size_t col = 0; col < names.size(); ++col) {
      auto& v = res.at(row, col);
      simdjson::dom::element e;
      FUZZ_CHECK(!v.empty());
      FUZZ_CHECK(checker.parse(v).get(e) == simdjson::SUCCESS);
    }
  }
}

} // namespace sinfer::fuzz
