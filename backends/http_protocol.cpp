#include "backends/http_protocol.hpp"

#include <algorithm>
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

namespace {

/// "HTTP 200, Content-Type text/html, 1234 bytes": what came, for messages.
std::string answer_facts(const http_answer& a) {
  std::string out = "HTTP " + std::to_string(a.status);
  if (!a.content_type.empty()) {
    out += ", Content-Type ";
    for (char c : a.content_type.substr(0, 64))
      out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

} // namespace

std::string not_json_reason(const http_answer& a, const std::string& parse_error) {
  if (a.body.empty())
    return "the answer is empty (" + answer_facts(a) + ", no body)";
  // JSON with a bad token (NaN, 1e999) says which and where; other text
  // (HTML, garbage) keeps the parser's word.
  auto first = trim(a.body);
  bool json_like = !first.empty() && (first.front() == '{' || first.front() == '[');
  auto token = json_like ? json_token_problem(a.body) : std::string{};
  return "the answer is not JSON (" + answer_facts(a) + ", " + std::to_string(a.body.size()) + " bytes, "
         + (a.body.size() > 48 ? "starting \"" : "\"") + printable_excerpt(std::string_view{a.body}.substr(0, 48), 48)
         + "\"): " + (token.empty() ? parse_error : token);
}

std::string missing_results_reason(const http_answer& a, const std::string& what) {
  auto server = error_message_of(a.body);
  if (!server.empty())
    return "the server answered HTTP " + std::to_string(a.status) + " with an error instead of results: " + server;
  return "the answer " + what;
}

std::string json_text_value(const std::string& json) {
  std::string out;
  if (json_unquote(json, out))
    return out;
  return json;
}

} // namespace sinfer
