#include "backends/openai.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <simdjson.h>

#include "runtime/json_text.hpp"

namespace sinfer {

namespace {

using simdjson::dom::element;

void append_number(std::string& out, double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", d);
  out += buf;
}

} // namespace

const std::vector<std::string>& openai_protocol::known_outputs(openai_api api) {
  static const std::vector<std::string> embeddings{"embedding"};
  static const std::vector<std::string> chat{"content", "finish_reason", "prompt_tokens", "completion_tokens"};
  return api == openai_api::chat ? chat : embeddings;
}

std::vector<std::string> openai_protocol::template_fields(const std::string& prompt, std::string& error) {
  std::vector<std::string> names;
  for (size_t i = prompt.find("${"); i != std::string::npos; i = prompt.find("${", i)) {
    auto end = prompt.find('}', i);
    if (end == std::string::npos) {
      error = "an unclosed \"${\" at character " + std::to_string(i);
      return {};
    }
    auto name = prompt.substr(i + 2, end - i - 2);
    if (name.empty()) {
      error = "an empty \"${}\" at character " + std::to_string(i);
      return {};
    }
    if (std::find(names.begin(), names.end(), name) == names.end())
      names.push_back(name);
    i = end + 1;
  }
  return names;
}

openai_protocol::openai_protocol(openai_settings settings) : cfg_(std::move(settings)) {
  path_ = cfg_.api == openai_api::chat ? "/v1/chat/completions" : "/v1/embeddings";
  if (cfg_.outputs.empty())
    cfg_.outputs = {cfg_.api == openai_api::chat ? "content" : "embedding"};
  auto& p = cfg_.prompt;
  size_t at = 0;
  for (size_t i = p.find("${"); i != std::string::npos; i = p.find("${", at)) {
    auto end = p.find('}', i);
    if (end == std::string::npos)
      break;
    parts_.push_back(p.substr(at, i - at));
    parts_.push_back(p.substr(i + 2, end - i - 2));
    at = end + 1;
  }
  parts_.push_back(p.substr(at));
}

http_request openai_protocol::encode(const call_request& req) const {
  http_request out;
  auto reject = [&](uint32_t row, std::string why) {
    if (out.rejected.empty())
      out.rejected.resize(req.rows);
    out.rejected[row] = call_error{error_class::fatal_record, std::move(why), std::chrono::milliseconds{0}};
  };
  auto& body = out.body;
  body = "{\"model\":";
  append_json_string(body, cfg_.model);
  if (cfg_.api == openai_api::embeddings) {
    body += ",\"input\":[";
    for (uint32_t row = 0; row < req.rows; ++row) {
      std::string text;
      if (req.names.empty() || !json_unquote(req.at(row, 0), text)) {
        reject(row, "the embeddings input must be a string");
        continue;
      }
      if (out.rows > 0)
        body += ",";
      append_json_string(body, text);
      ++out.rows;
    }
    body += "],\"encoding_format\":";
    append_json_string(body, cfg_.encoding_format);
    body += "}";
    return out;
  }
  // chat: one record.
  std::string user;
  for (size_t k = 0; k < parts_.size(); ++k) {
    if (k % 2 == 0) {
      user += parts_[k];
      continue;
    }
    auto it = std::find(req.names.begin(), req.names.end(), parts_[k]);
    if (it != req.names.end())
      user += json_text_value(req.at(0, static_cast<size_t>(it - req.names.begin())));
  }
  body += ",\"messages\":[";
  if (!cfg_.system_prompt.empty()) {
    body += "{\"role\":\"system\",\"content\":";
    append_json_string(body, cfg_.system_prompt);
    body += "},";
  }
  body += "{\"role\":\"user\",\"content\":";
  append_json_string(body, user);
  body += "}]";
  if (cfg_.temperature) {
    body += ",\"temperature\":";
    append_number(body, *cfg_.temperature);
  }
  if (cfg_.max_tokens > 0)
    body += ",\"max_tokens\":" + std::to_string(cfg_.max_tokens);
  body += "}";
  out.rows = req.rows > 0 ? 1 : 0;
  for (uint32_t row = 1; row < req.rows; ++row)
    reject(row, "a chat call carries one record");
  return out;
}

call_result openai_protocol::decode(uint32_t rows, const http_answer& answer) const {
  if (answer.status < 200 || answer.status >= 300)
    return classify_answer(cfg_.outputs, answer);
  simdjson::dom::parser parser;
  element root;
  if (auto err = parser.parse(answer.body).get(root))
    return unreadable_answer(cfg_.outputs, not_json_reason(answer, simdjson::error_message(err)));
  call_result res;
  res.names = cfg_.outputs;
  auto cols = cfg_.outputs.size();
  simdjson::dom::object usage;
  if (!root["usage"].get(usage)) {
    uint64_t n = 0;
    if (!usage["prompt_tokens"].get(n))
      res.prompt_tokens = n;
    if (!usage["completion_tokens"].get(n))
      res.completion_tokens = n;
  }
  if (cfg_.api == openai_api::embeddings) {
    simdjson::dom::array data;
    if (root["data"].get(data))
      return unreadable_answer(cfg_.outputs, missing_results_reason(answer, "has no \"data\" array"));
    if (data.size() != rows)
      return unreadable_answer(cfg_.outputs, "the answer has " + std::to_string(data.size()) + " embeddings for "
                                               + std::to_string(rows) + " inputs");
    res.values.resize(static_cast<size_t>(rows) * cols);
    // Which data item answered each input. Items carry an "index" (OpenAI,
    // vLLM) or none does (they answer the inputs in order); a mix is
    // ambiguous.
    size_t indexed = 0;
    for (auto item : data) {
      simdjson::dom::element given;
      indexed += item["index"].get(given) == simdjson::SUCCESS ? 1 : 0;
    }
    std::vector<int64_t> claimed_by(rows, -1);
    int64_t pos = -1;
    for (auto item : data) {
      ++pos;
      int64_t index = pos;
      auto where = "data[" + std::to_string(pos) + "]";
      simdjson::dom::element given;
      bool has_index = item["index"].get(given) == simdjson::SUCCESS;
      if (!has_index && indexed > 0)
        return unreadable_answer(cfg_.outputs, where + " has no \"index\" while other items have one");
      if (has_index && given.get(index))
        return unreadable_answer(cfg_.outputs, where + " has an index that is not an integer: "
                                                 + std::string{simdjson::minify(given)}.substr(0, 32));
      if (index < 0 || index >= rows)
        return unreadable_answer(cfg_.outputs, where + " has embedding index " + std::to_string(index)
                                                 + ", out of range for " + std::to_string(rows) + " inputs");
      auto& claim = claimed_by[static_cast<size_t>(index)];
      if (claim >= 0)
        return unreadable_answer(cfg_.outputs, where + " has embedding index " + std::to_string(index)
                                                 + ", repeated from data[" + std::to_string(claim)
                                                 + "] (so another input has no embedding)");
      claim = pos;
      element emb;
      if (item["embedding"].get(emb))
        return unreadable_answer(cfg_.outputs, "embedding " + std::to_string(index) + " has no \"embedding\"");
      std::string text;
      std::string_view b64;
      simdjson::dom::array arr;
      if (!emb.get(b64)) {
        std::string bytes;
        if (!decode_base64(b64, bytes) || bytes.empty() || bytes.size() % 4 != 0)
          return unreadable_answer(cfg_.outputs, "embedding " + std::to_string(index) + " is not base64 float32");
        text = "[";
        for (size_t k = 0; k < bytes.size(); k += 4) {
          float f = 0;
          std::memcpy(&f, bytes.data() + k, 4); // little-endian hosts only (x86-64, arm64)
          if (k > 0)
            text += ",";
          if (!std::isfinite(f))
            return unreadable_answer(cfg_.outputs, "embedding " + std::to_string(index) + " holds NaN or Inf");
          append_number(text, static_cast<double>(f));
        }
        text += "]";
      } else if (!emb.get(arr)) {
        if (arr.size() == 0)
          return unreadable_answer(cfg_.outputs, "embedding " + std::to_string(index) + " is empty");
        for (auto v : arr) {
          double d = 0;
          if (v.get(d))
            return unreadable_answer(cfg_.outputs, "embedding " + std::to_string(index) + " holds a non-number");
          // Embeddings are float32: a value beyond its range is garbage.
          if (std::fabs(d) > static_cast<double>(std::numeric_limits<float>::max()))
            return unreadable_answer(cfg_.outputs, "embedding " + std::to_string(index) + " holds "
                                                     + std::string{simdjson::minify(v)}
                                                     + ", beyond the range of float32");
        }
        text = std::string{simdjson::minify(emb)};
      } else {
        return unreadable_answer(cfg_.outputs, "embedding " + std::to_string(index)
                                                 + " is neither an array nor base64");
      }
      for (size_t c = 0; c < cols; ++c)
        res.values[static_cast<size_t>(index) * cols + c] = text;
    }
    return res;
  }
  simdjson::dom::array choices;
  element choice;
  if (root["choices"].get(choices) || choices.size() == 0 || choices.at(0).get(choice))
    return unreadable_answer(cfg_.outputs, missing_results_reason(answer, "has no \"choices\""));
  if (rows != 1)
    return unreadable_answer(cfg_.outputs, "a chat call carries one record, got " + std::to_string(rows));
  for (auto& name : cfg_.outputs) {
    std::string v;
    if (name == "content") {
      element content;
      if (choice["message"]["content"].get(content))
        return unreadable_answer(cfg_.outputs, "the answer's choice has no message content");
      v = std::string{simdjson::minify(content)};
    } else if (name == "finish_reason") {
      element reason;
      v = choice["finish_reason"].get(reason) ? "null" : std::string{simdjson::minify(reason)};
    } else if (name == "prompt_tokens") {
      v = std::to_string(res.prompt_tokens);
    } else if (name == "completion_tokens") {
      v = std::to_string(res.completion_tokens);
    } else {
      return unreadable_answer(cfg_.outputs, "unknown chat output \"" + name + "\"");
    }
    res.values.push_back(std::move(v));
  }
  return res;
}

} // namespace sinfer
