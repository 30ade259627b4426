#include "backends/http_json.hpp"

#include <simdjson.h>

#include "runtime/json_text.hpp"

namespace sinfer {

namespace {

void append_row(std::string& body, const call_request& req, uint32_t row) {
  body += "{";
  for (size_t col = 0; col < req.names.size(); ++col) {
    if (col > 0)
      body += ",";
    append_json_string(body, req.names[col]);
    body += ":";
    body += req.at(row, col);
  }
  body += "}";
}

} // namespace

http_request http_json_protocol::encode(const call_request& req) const {
  http_request out;
  out.rows = req.rows;
  if (!cfg_.batched) {
    append_row(out.body, req, 0);
    return out;
  }
  out.body = "{";
  append_json_string(out.body, cfg_.inputs_field);
  out.body += ":[";
  for (uint32_t row = 0; row < req.rows; ++row) {
    if (row > 0)
      out.body += ",";
    append_row(out.body, req, row);
  }
  out.body += "]}";
  return out;
}

call_result http_json_protocol::decode(uint32_t rows, const http_answer& answer) const {
  if (answer.status < 200 || answer.status >= 300)
    return classify_answer(cfg_.outputs, answer);
  call_result res;
  res.names = cfg_.outputs;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(answer.body).get(root))
    return unreadable_answer(cfg_.outputs, not_json_reason(answer, simdjson::error_message(err)));
  auto read_row = [&](simdjson::dom::element item, uint32_t row) -> std::string {
    simdjson::dom::object obj;
    simdjson::dom::element err;
    if (item.get(obj))
      return "result " + std::to_string(row) + " is not an object";
    if (obj["error"].get(err) == simdjson::SUCCESS && !err.is_null()) {
      // The server's reason for this row: a string, or any other JSON as text.
      std::string_view text;
      std::string why = err.get(text) == simdjson::SUCCESS ? std::string{text} : std::string{simdjson::minify(err)};
      if (res.row_errors.empty())
        res.row_errors.resize(rows);
      res.row_errors[row] = call_error{error_class::fatal_record, std::move(why), std::chrono::milliseconds{0}};
      for (size_t k = 0; k < cfg_.outputs.size(); ++k)
        res.values.emplace_back();
      return {};
    }
    for (auto& name : cfg_.outputs) {
      simdjson::dom::element v;
      if (obj[name].get(v))
        return "result " + std::to_string(row) + " has no \"" + name + "\"";
      res.values.push_back(simdjson::minify(v));
    }
    return {};
  };
  if (!cfg_.batched) {
    if (rows != 1)
      return unreadable_answer(cfg_.outputs, "one record per request expected, got " + std::to_string(rows));
    auto why = read_row(root, 0);
    return why.empty() ? res : unreadable_answer(cfg_.outputs, why);
  }
  simdjson::dom::array outputs;
  if (root[cfg_.outputs_field].get(outputs))
    return unreadable_answer(cfg_.outputs,
                             missing_results_reason(answer, "has no \"" + cfg_.outputs_field + "\" array"));
  if (outputs.size() != rows)
    return unreadable_answer(cfg_.outputs, "the answer has " + std::to_string(outputs.size()) + " results for "
                                             + std::to_string(rows) + " records");
  res.values.reserve(static_cast<size_t>(rows) * cfg_.outputs.size());
  uint32_t row = 0;
  for (auto item : outputs) {
    auto why = read_row(item, row++);
    if (!why.empty())
      return unreadable_answer(cfg_.outputs, why);
  }
  return res;
}

} // namespace sinfer
