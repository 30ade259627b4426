#include "runtime/record_fields.hpp"

#include "runtime/json_text.hpp"

namespace sinfer {

bool read_inputs(simdjson::dom::parser& parser, const std::string& json,
                 const std::vector<std::pair<std::string, std::string>>& inputs,
                 const std::vector<std::string>& output_targets, std::vector<std::string>& values,
                 input_reading& reading, std::string& why) {
  simdjson::dom::element root;
  if (auto err = parser.parse(json).get(root)) {
    // simdjson says "Problem while parsing a number" or "improper
    // structure" for NaN, 1e999 or a 30-digit integer; say which token.
    auto token = json_token_problem(json);
    why = std::string{"malformed JSON: "} + (token.empty() ? simdjson::error_message(err) : token);
    return false;
  }
  simdjson::dom::object obj;
  if (root.get(obj)) {
    why = "not a JSON object";
    return false;
  }
  // Output fields replace input fields of the same name (no duplicate keys).
  // Known before the inputs are read: a record that lacks an input can still
  // take outputs (failure-action default-value), and must not get a key twice.
  reading.clash = false;
  for (auto& target : output_targets) {
    simdjson::dom::element v;
    if (obj.at_key(target).get(v) == simdjson::SUCCESS) {
      reading.clash = true;
      break;
    }
  }
  auto first = values.size();
  uint32_t bytes = 0;
  for (auto& in : inputs) {
    simdjson::dom::element v;
    if (obj.at_key(in.second).get(v)) {
      values.resize(first);
      why = "missing field \"" + in.second + "\" (model input \"" + in.first + "\")";
      return false;
    }
    std::string_view sv;
    if (v.get(sv) == simdjson::SUCCESS) {
      auto& out = values.emplace_back();
      out.reserve(sv.size() + 2);
      append_json_string(out, sv);
    } else {
      values.push_back(simdjson::minify(v));
    }
    bytes += static_cast<uint32_t>(values.back().size());
  }
  reading.bytes = bytes;
  return true;
}

bool record_unusable(const std::string& why) noexcept {
  return why.rfind("malformed JSON", 0) == 0 || why == "not a JSON object";
}

void drop_fields(simdjson::dom::parser& parser, std::string& json, const std::vector<std::string>& targets) {
  simdjson::dom::object obj;
  if (parser.parse(json).get(obj))
    return;
  std::string rebuilt = "{";
  for (auto field : obj) {
    bool replaced = false;
    for (auto& target : targets)
      replaced = replaced || field.key == target;
    if (replaced)
      continue;
    if (rebuilt.size() > 1)
      rebuilt.push_back(',');
    append_json_string(rebuilt, field.key);
    rebuilt.push_back(':');
    rebuilt += simdjson::minify(field.value);
  }
  rebuilt.push_back('}');
  json = std::move(rebuilt);
}

void write_outputs(simdjson::dom::parser& parser, std::string& json, bool clash,
                   const std::vector<std::string>& targets, const std::vector<std::string>& member_prefix,
                   const std::string* values) {
  if (clash)
    drop_fields(parser, json, targets);
  // Close the object once: drop '}', append every member, re-add '}'.
  auto& j = json;
  while (!j.empty() && j.back() != '}')
    j.pop_back();
  if (j.empty())
    return;
  j.pop_back();
  auto last = j.find_last_not_of(" \t\r\n");
  bool empty_object = last != std::string::npos && j[last] == '{';
  for (size_t k = 0; k < member_prefix.size(); ++k) {
    if (values[k].empty())
      continue; // a default-value without this field
    if (!empty_object)
      j.push_back(',');
    empty_object = false;
    j += member_prefix[k];
    j += values[k];
  }
  j.push_back('}');
}

bool condition_applies(simdjson::dom::parser& parser, const std::string& json, const stage_condition& cond) {
  if (cond.kind == stage_condition::test::always)
    return true;
  simdjson::dom::object obj;
  if (parser.parse(json).get(obj))
    return true;
  simdjson::dom::element v;
  if (obj.at_key(cond.field).get(v))
    return cond.matches(std::nullopt);
  auto text = simdjson::minify(v); // as the config's values were made: same escaping
  return cond.matches(std::string_view{text});
}

} // namespace sinfer
