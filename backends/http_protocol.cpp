#include "backends/http_protocol.hpp"

#include <ctime>

#include <simdjson.h>

#include "policies/http_status.hpp"
#include "runtime/json_text.hpp"

namespace sinfer {

std::string error_message_of(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body).get(root) != simdjson::SUCCESS)
    return {};
  std::string_view text;
  simdjson::dom::element err;
  if (root["error"].get(err) == simdjson::SUCCESS && !err.is_null()) {
    if (err.get(text) == simdjson::SUCCESS)
      return std::string{text};
    if (err["message"].get(text) == simdjson::SUCCESS)
      return std::string{text};
    return std::string{simdjson::minify(err)};
  }
  if (root["message"].get(text) == simdjson::SUCCESS)
    return std::string{text};
  simdjson::dom::element detail;
  if (root["detail"].get(detail) == simdjson::SUCCESS && !detail.is_null())
    return detail.get(text) == simdjson::SUCCESS ? std::string{text} : std::string{simdjson::minify(detail)};
  return {};
}

call_result classify_answer(const std::vector<std::string>& outputs, const http_answer& answer) {
  call_result res;
  res.names = outputs;
  std::string msg = answer.transport_error;
  if (answer.status != 0) {
    auto server = error_message_of(answer.body);
    if (!server.empty())
      msg = std::move(server);
  }
  res.error = classify_http(answer.status, answer.retry_after, static_cast<int64_t>(std::time(nullptr)), msg);
  res.error.timed_out = answer.timed_out;
  return res;
}

call_result unreadable_answer(const std::vector<std::string>& outputs, std::string why) {
  call_result res;
  res.names = outputs;
  res.error = call_error{error_class::fatal_endpoint, std::move(why), std::chrono::milliseconds{0}};
  return res;
}

std::string json_text_value(const std::string& json) {
  std::string out;
  if (json_unquote(json, out))
    return out;
  return json;
}

} // namespace sinfer
