/// Fuzz target: what a model stage reads from and writes to each record
/// (runtime/record_fields.hpp), in the order the inference operator uses it:
/// the stage condition, the model's inputs, then the outputs written (after
/// a successful call, or the default-value outputs of a record missing an
/// input).
///
/// Input: one header line, then the record's JSON text:
///   INPUTS OUTPUTS CONDITION FIELD VALUE...
/// INPUTS and OUTPUTS are comma-separated record field names ("-": none);
/// CONDITION is a digit, the `stage_condition::test` (0 always, 1 equals,
/// 2 not-equals, 3 in, 4 exists, 5 missing) reading FIELD, against the
/// VALUEs (minified JSON). E.g.
///   text,lang sentiment 1 lang "en"
///   {"text":"great","lang":"en","sentiment":"old"}
/// Invariants: an input read that succeeds appends one value per input, each
/// valid JSON, and counts their bytes; one that fails leaves the values as
/// they were and says why. After the outputs are written the record is
/// still a JSON object, every output written appears exactly once with its
/// value, an output left out does not appear, and every other member is kept.

#include <algorithm>
#include <vector>

#include "fuzz_support.hpp"

#include "runtime/json_text.hpp"
#include "runtime/record_fields.hpp"

namespace {

using namespace sinfer;

std::vector<std::string> names_of(std::string_view tok) {
  std::vector<std::string> out;
  if (tok.empty() || tok == "-")
    return out;
  size_t at = 0;
  while (at <= tok.size()) {
    auto comma = tok.find(',', at);
    auto name = tok.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at);
    // As a config can name fields: valid UTF-8 (they come from JSON
    // strings), and distinct (two outputs cannot write one field).
    if (simdjson::validate_utf8(name.data(), name.size()) && std::find(out.begin(), out.end(), name) == out.end())
      out.emplace_back(name);
    if (comma == std::string_view::npos)
      break;
    at = comma + 1;
  }
  return out;
}

/// The minified form of JSON `text` (the parser's own), for comparing values
/// whatever their escaping; empty when it does not parse.
std::string canonical(simdjson::dom::parser& parser, const std::string& text) {
  simdjson::dom::element e;
  if (parser.parse(text).get(e))
    return {};
  return simdjson::minify(e);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet();
  // One parser for the code under test (as the operator has), one for the
  // checks: checking must not disturb the state the code relies on.
  static simdjson::dom::parser parser;
  static simdjson::dom::parser checker;
  auto [header, body] = fuzz::split_header(fuzz::as_text(data, size));
  std::vector<std::pair<std::string, std::string>> inputs;
  for (auto& name : names_of(fuzz::next_token(header)))
    inputs.emplace_back("in_" + name, name);
  auto targets = names_of(fuzz::next_token(header));
  stage_condition cond;
  cond.kind = static_cast<stage_condition::test>(fuzz::number_or(fuzz::next_token(header), 0, 5));
  cond.field = std::string{fuzz::next_token(header)};
  for (auto v = fuzz::next_token(header); !v.empty(); v = fuzz::next_token(header))
    cond.values.emplace_back(v);
  std::string json{body};

  bool applies = condition_applies(parser, json, cond);
  if (cond.kind == stage_condition::test::always)
    FUZZ_CHECK(applies);

  // The operator appends to a batch's values: start with one already there.
  std::vector<std::string> values{"\"earlier record\""};
  input_reading reading;
  std::string why;
  bool ok = read_inputs(parser, json, inputs, targets, values, reading, why);
  if (!ok) {
    FUZZ_CHECK(values.size() == 1);
    FUZZ_CHECK(!why.empty());
    if (record_unusable(why))
      return 0; // a dead letter whatever the failure action: no outputs
  } else {
    FUZZ_CHECK(values.size() == 1 + inputs.size());
    uint64_t bytes = 0;
    for (size_t k = 1; k < values.size(); ++k) {
      FUZZ_CHECK(!canonical(checker, values[k]).empty());
      bytes += values[k].size();
    }
    FUZZ_CHECK(bytes == reading.bytes || bytes > UINT32_MAX);
  }

  // The outputs: on success a model's values (here the inputs read, else a
  // fixed array); on a missing input the default values, where an output
  // without a default is left out (empty).
  std::vector<std::string> prefixes, outputs;
  for (size_t k = 0; k < targets.size(); ++k) {
    prefixes.push_back(json_quote(targets[k]) + ":");
    if (ok)
      outputs.push_back(k + 1 < values.size() ? values[k + 1] : "[1,\"x\"]");
    else
      outputs.push_back(k % 2 == 0 ? "\"default\"" : "");
  }
  size_t others_before = 0;
  {
    simdjson::dom::object obj;
    FUZZ_CHECK(checker.parse(json).get(obj) == simdjson::SUCCESS);
    for (auto field : obj)
      if (std::find(targets.begin(), targets.end(), field.key) == targets.end())
        ++others_before;
  }
  write_outputs(parser, json, reading.clash, targets, prefixes, outputs.data());

  simdjson::dom::object obj;
  FUZZ_CHECK(checker.parse(json).get(obj) == simdjson::SUCCESS);
  std::vector<size_t> seen(targets.size(), 0);
  std::vector<std::string> found(targets.size());
  size_t others_after = 0;
  for (auto field : obj) {
    auto at = std::find(targets.begin(), targets.end(), field.key);
    if (at == targets.end()) {
      ++others_after;
      continue;
    }
    auto k = static_cast<size_t>(at - targets.begin());
    ++seen[k];
    found[k] = simdjson::minify(field.value);
  }
  FUZZ_CHECK(others_after == others_before);
  for (size_t k = 0; k < targets.size(); ++k) {
    if (outputs[k].empty()) {
      FUZZ_CHECK(seen[k] == 0);
    } else {
      FUZZ_CHECK(seen[k] == 1);
      FUZZ_CHECK(found[k] == canonical(checker, outputs[k]));
    }
  }
  return 0;
}
