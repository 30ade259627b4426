#include "backends/in_process.hpp"

#include <cmath>
#include <cstdio>
#include <exception>

#include <simdjson.h>

#include "policies/partitioning.hpp"
#include "runtime/json_text.hpp"

namespace sinfer {

namespace {

bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '\'';
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Calls `f(word)` for each lower-cased word of `text`.
template <class F>
void for_each_word(std::string_view text, F f) {
  std::string word;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && is_word_char(text[i])) {
      word.push_back(lower(text[i]));
    } else if (!word.empty()) {
      f(std::string_view{word});
      word.clear();
    }
  }
}

/// Unquotes input `col` of `row`; on a non-string sets a row error.
bool text_input(const call_request& in, uint32_t row, std::string& text, call_result& out) {
  if (json_unquote(in.at(row, 0), text))
    return true;
  if (out.row_errors.empty())
    out.row_errors.resize(in.rows);
  out.row_errors[row] = call_error{error_class::fatal_record,
                                   "input '" + in.names[0] + "' is not a JSON string",
                                   std::chrono::milliseconds{0}};
  return false;
}

in_process_model keyword_classifier() {
  in_process_model m;
  m.inputs = {"text"};
  m.outputs = {"label", "score"};
  m.compute = [](const call_request& in, call_result& out) {
    static constexpr std::string_view positive[] = {
      "good", "great", "excellent", "love", "loved", "amazing", "fantastic", "happy",
      "perfect", "best", "nice", "wonderful", "recommend", "fast", "friendly"};
    static constexpr std::string_view negative[] = {
      "bad", "terrible", "awful", "hate", "hated", "poor", "worst", "broken", "slow",
      "refund", "disappointed", "rude", "never", "late", "useless"};
    out.values.resize(in.rows * 2);
    std::string text;
    for (uint32_t row = 0; row < in.rows; ++row) {
      if (!text_input(in, row, text, out))
        continue;
      int pos = 0;
      int neg = 0;
      for_each_word(text, [&](std::string_view w) {
        for (auto p : positive)
          pos += (w == p);
        for (auto n : negative)
          neg += (w == n);
      });
      const char* label = pos > neg ? "\"positive\"" : (neg > pos ? "\"negative\"" : "\"neutral\"");
      double score = (pos == neg) ? 0.5 : static_cast<double>(std::max(pos, neg)) / (pos + neg);
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.3f", score);
      out.values[row * 2] = label;
      out.values[row * 2 + 1] = buf;
    }
  };
  return m;
}

in_process_model hash_embedder(size_t dims) {
  in_process_model m;
  m.inputs = {"text"};
  m.outputs = {"embedding"};
  m.compute = [dims](const call_request& in, call_result& out) {
    out.values.resize(in.rows);
    std::string text;
    std::vector<double> v(dims);
    for (uint32_t row = 0; row < in.rows; ++row) {
      if (!text_input(in, row, text, out))
        continue;
      std::fill(v.begin(), v.end(), 0.0);
      for_each_word(text, [&](std::string_view w) {
        auto h = fnv1a(w);
        v[h % dims] += (h >> 63) ? -1.0 : 1.0;
      });
      double norm = 0;
      for (double x : v)
        norm += x * x;
      norm = norm > 0 ? std::sqrt(norm) : 1.0;
      std::string& s = out.values[row];
      s.push_back('[');
      char buf[32];
      for (size_t i = 0; i < dims; ++i) {
        if (i > 0)
          s.push_back(',');
        std::snprintf(buf, sizeof(buf), "%.4f", v[i] / norm);
        s += buf;
      }
      s.push_back(']');
    }
  };
  return m;
}

in_process_model text_length() {
  in_process_model m;
  m.inputs = {"text"};
  m.outputs = {"length"};
  m.compute = [](const call_request& in, call_result& out) {
    out.values.resize(in.rows);
    std::string text;
    for (uint32_t row = 0; row < in.rows; ++row)
      if (text_input(in, row, text, out))
        out.values[row] = std::to_string(text.size());
  };
  return m;
}

in_process_model noop() {
  in_process_model m;
  m.outputs = {"result"};
  m.compute = [](const call_request& in, call_result& out) {
    out.values.assign(in.rows, "true");
  };
  return m;
}

in_process_factory no_options(in_process_model (*make)()) {
  return [make](std::string_view options, std::string& error) {
    if (trim(options) != "{}") {
      error = "no options (this model takes none)";
      return in_process_model{};
    }
    return make();
  };
}

} // namespace

model_registry model_registry::with_builtins() {
  model_registry r;
  r.add("keyword-classifier", no_options(keyword_classifier));
  r.add("text-length", no_options(text_length));
  r.add("noop", no_options(noop));
  r.add("hash-embedder", [](std::string_view options, std::string& error) {
    simdjson::dom::parser parser;
    simdjson::padded_string text{options};
    simdjson::dom::object obj;
    if (parser.parse(text).get(obj)) {
      error = "an object";
      return in_process_model{};
    }
    int64_t dims = 8;
    for (auto field : obj) {
      if (field.key == "dimensions") {
        if (field.value.get(dims) || dims < 1 || dims > 4096) {
          error = "dimensions: expected an integer in 1..4096, got " + simdjson::minify(field.value);
          return in_process_model{};
        }
      } else {
        error = std::string{field.key} + ": unknown option (known: dimensions)";
        return in_process_model{};
      }
    }
    return hash_embedder(static_cast<size_t>(dims));
  });
  return r;
}

void model_registry::add(std::string name, in_process_factory factory) {
  factories_[std::move(name)] = std::move(factory);
}

void model_registry::add(std::string name, in_process_model model) {
  factories_[std::move(name)] = [model](std::string_view options, std::string& error) {
    if (trim(options) != "{}") {
      error = "no options (this model takes none)";
      return in_process_model{};
    }
    return model;
  };
}

const in_process_factory* model_registry::find(std::string_view name) const {
  auto i = factories_.find(name);
  return i == factories_.end() ? nullptr : &i->second;
}

std::vector<std::string> model_registry::names() const {
  std::vector<std::string> result;
  for (auto& kv : factories_)
    result.push_back(kv.first);
  return result;
}

in_process_backend::in_process_backend(in_process_model model) : model_(std::move(model)) {
}

const std::vector<std::string>& in_process_backend::output_names() const {
  return model_.outputs;
}

void in_process_backend::infer(const call_request& req, completion done) {
  call_result result;
  result.names = model_.outputs;
  try {
    model_.compute(req, result);
    if (result.error.ok() && !result.row_errors.empty() && result.row_errors.size() != req.rows)
      result.error = call_error{error_class::fatal_endpoint,
                                "model returned " + std::to_string(result.row_errors.size())
                                  + " row errors for " + std::to_string(req.rows) + " rows",
                                std::chrono::milliseconds{0}};
    if (result.error.ok() && result.values.size() != req.rows * model_.outputs.size())
      result.error = call_error{error_class::fatal_endpoint,
                                "model returned " + std::to_string(result.values.size())
                                  + " values for " + std::to_string(req.rows) + " rows",
                                std::chrono::milliseconds{0}};
    // A value must be JSON text: an empty one would write invalid JSON.
    for (uint32_t row = 0; result.error.ok() && row < req.rows; ++row) {
      if (!result.row_errors.empty() && !result.row_errors[row].ok())
        continue;
      for (size_t col = 0; col < model_.outputs.size(); ++col)
        if (result.values[row * model_.outputs.size() + col].empty()) {
          if (result.row_errors.empty())
            result.row_errors.resize(req.rows);
          result.row_errors[row] = call_error{error_class::fatal_endpoint,
                                              "model returned no value for output \"" + model_.outputs[col] + "\"",
                                              std::chrono::milliseconds{0}};
          break;
        }
    }
  } catch (const std::exception& e) {
    // User code failing is a crash of the subtask that called it (restarted
    // under the job's restart strategy), never of the process.
    result = call_result{};
    result.names = model_.outputs;
    result.error = call_error{error_class::crash, std::string{"model threw: "} + e.what(),
                              std::chrono::milliseconds{0}};
  }
  done(std::move(result));
}

} // namespace sinfer
