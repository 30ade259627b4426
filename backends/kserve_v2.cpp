#include "backends/kserve_v2.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>

#include <simdjson.h>

#include "runtime/json_text.hpp"

namespace sinfer {

namespace {

using simdjson::dom::element;

const std::vector<std::string> datatypes = {"BOOL",  "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                                            "INT32", "INT64", "FP16",   "FP32",   "FP64",   "BYTES"};

/// Collects the leaves of a (nested) array in row-major order with its
/// dimensions; false when it is ragged, mixes depths or is too deep.
bool flatten_at(element v, std::vector<element>& leaves, std::vector<int64_t>& dims, size_t depth,
                size_t& leaf_depth) {
  simdjson::dom::array arr;
  if (v.get(arr) != simdjson::SUCCESS) {
    if (leaf_depth == SIZE_MAX)
      leaf_depth = depth;
    if (depth != leaf_depth)
      return false;
    leaves.push_back(v);
    return true;
  }
  if (depth >= 8 || depth >= leaf_depth)
    return false;
  auto n = static_cast<int64_t>(arr.size());
  if (depth == dims.size())
    dims.push_back(n);
  else if (dims[depth] != n)
    return false;
  for (auto item : arr)
    if (!flatten_at(item, leaves, dims, depth + 1, leaf_depth))
      return false;
  return true;
}

bool flatten(element v, std::vector<element>& leaves, std::vector<int64_t>& dims) {
  size_t leaf_depth = SIZE_MAX;
  if (!flatten_at(v, leaves, dims, 0, leaf_depth))
    return false;
  return leaf_depth == SIZE_MAX || leaf_depth == dims.size();
}

/// The product of `dims`, or -1 when it would exceed `cap` (or a dim is
/// negative): a server's shape must never make us allocate by its word.
int64_t product(const std::vector<int64_t>& dims, int64_t cap = int64_t{1} << 40) {
  int64_t n = 1;
  for (auto d : dims) {
    if (d < 0)
      return -1;
    if (d != 0 && n > cap / d)
      return -1;
    n *= d;
  }
  return n;
}

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i > 0 ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

/// A value as the user wrote it (minified), shortened, for messages.
std::string shown(element v) {
  std::string text{simdjson::minify(v)};
  if (text.size() > 32)
    text = text.substr(0, 29) + "...";
  return text;
}

/// Whether `d` is within the finite range of a floating-point `datatype`
/// ("FP16", "FP32", "FP64"): a value beyond it would reach the model as
/// infinity (or be refused by the server for the whole batch).
bool fits_float(double d, const std::string& datatype) {
  if (!std::isfinite(d))
    return false;
  if (datatype == "FP16")
    return std::fabs(d) <= 65504.0;
  if (datatype == "FP32")
    return std::fabs(d) <= static_cast<double>(std::numeric_limits<float>::max());
  return true;
}

/// Why `v` is not an integer within the range of `datatype` ("INT8" ...
/// "UINT64"); empty when it is.
std::string integer_problem(element v, const std::string& datatype) {
  bool is_unsigned = datatype[0] == 'U';
  int bits = std::atoi(datatype.c_str() + (is_unsigned ? 4 : 3));
  int64_t i = 0;
  uint64_t u = 0;
  if (v.get(i) == simdjson::SUCCESS) {
    if (is_unsigned && i < 0)
      return "expected a non-negative integer for a " + datatype + " tensor, got " + std::to_string(i);
    if (bits < 64) {
      int64_t lo = is_unsigned ? 0 : -(int64_t{1} << (bits - 1));
      int64_t hi = is_unsigned ? (int64_t{1} << bits) - 1 : (int64_t{1} << (bits - 1)) - 1;
      if (i < lo || i > hi)
        return std::to_string(i) + " is out of range for a " + datatype + " tensor";
    }
    return {};
  }
  if (v.get(u) == simdjson::SUCCESS) { // above INT64's range
    if (is_unsigned && bits == 64)
      return {};
    return std::to_string(u) + " is out of range for a " + datatype + " tensor";
  }
  return "expected an integer for a " + datatype + " tensor, got " + shown(v);
}

/// Appends one leaf as an element of a `datatype` tensor; the reason when
/// it does not fit.
std::string append_leaf(std::string& out, element v, const std::string& datatype) {
  if (datatype == "BYTES") {
    std::string_view s;
    if (v.get(s))
      return "expected a string for a BYTES tensor, got " + shown(v);
    append_json_string(out, s);
    return {};
  }
  if (datatype == "BOOL") {
    bool b = false;
    if (v.get(b))
      return "expected true or false for a BOOL tensor, got " + shown(v);
    out += b ? "true" : "false";
    return {};
  }
  if (datatype.rfind("FP", 0) == 0) {
    double d = 0;
    if (v.get(d))
      return "expected a number for a " + datatype + " tensor, got " + shown(v);
    if (!fits_float(d, datatype))
      return shown(v) + " is out of range for a " + datatype + " tensor";
    out += simdjson::minify(v);
    return {};
  }
  if (!is_kserve_datatype(datatype))
    return "the model's datatype \"" + datatype.substr(0, 16) + "\" is not one sinfer can send";
  auto why = integer_problem(v, datatype);
  if (!why.empty())
    return why;
  out += simdjson::minify(v);
  return {};
}

/// Why `v` is not an element of an output tensor of `datatype` (a KServe
/// datatype); empty when it is.
std::string output_leaf_problem(element v, const std::string& datatype) {
  if (datatype == "BYTES")
    return v.is_string() ? std::string{} : "expected strings, got " + shown(v);
  if (datatype == "BOOL")
    return v.is_bool() ? std::string{} : "expected true or false, got " + shown(v);
  if (datatype.rfind("FP", 0) == 0) {
    double d = 0;
    if (v.get(d))
      return "expected numbers, got " + shown(v);
    return fits_float(d, datatype) ? std::string{} : shown(v) + " is out of range";
  }
  return integer_problem(v, datatype);
}

std::string inferred_datatype(element leaf) {
  switch (leaf.type()) {
    case simdjson::dom::element_type::STRING: return "BYTES";
    case simdjson::dom::element_type::BOOL: return "BOOL";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64: return "INT64";
    default: return "FP32";
  }
}

/// Writes leaves[from, from + count) nested by `dims`.
void append_nested(std::string& out, const std::vector<std::string>& leaves, size_t& at,
                   const std::vector<int64_t>& dims, size_t depth) {
  if (depth == dims.size()) {
    out += leaves[at++];
    return;
  }
  out += "[";
  for (int64_t i = 0; i < dims[depth]; ++i) {
    if (i > 0)
      out += ",";
    append_nested(out, leaves, at, dims, depth + 1);
  }
  out += "]";
}

} // namespace

bool is_kserve_datatype(const std::string& name) {
  return std::find(datatypes.begin(), datatypes.end(), name) != datatypes.end();
}

kserve_v2_protocol::kserve_v2_protocol(kserve_v2_settings settings) : cfg_(std::move(settings)) {
  path_ = metadata_path(cfg_) + "/infer";
}

std::string kserve_v2_protocol::metadata_path(const kserve_v2_settings& cfg) {
  auto p = "/v2/models/" + cfg.model;
  if (!cfg.version.empty())
    p += "/versions/" + cfg.version;
  return p;
}

std::string kserve_v2_protocol::ready_path(const kserve_v2_settings& cfg) {
  return metadata_path(cfg) + "/ready";
}

http_request kserve_v2_protocol::encode(const call_request& req) const {
  http_request out;
  auto cols = req.names.size();
  simdjson::dom::parser parser;
  // Per column: the tensor's datatype and row shape once known, and its
  // data text; per row, whether it was rejected.
  struct column {
    std::string datatype;
    std::vector<int64_t> shape;
    std::vector<std::string> rows; // each row's elements, comma-separated
  };
  std::vector<column> columns(cols);
  for (size_t c = 0; c < cols; ++c) {
    if (c < cfg_.inputs.size()) {
      columns[c].datatype = cfg_.inputs[c].datatype;
      columns[c].shape = cfg_.inputs[c].shape;
    }
    columns[c].rows.resize(req.rows);
  }
  auto reject = [&](uint32_t row, std::string why) {
    if (out.rejected.empty())
      out.rejected.resize(req.rows);
    out.rejected[row] = call_error{error_class::fatal_record, std::move(why), std::chrono::milliseconds{0}};
  };
  for (uint32_t row = 0; row < req.rows; ++row) {
    // A row fixes open datatypes and shapes only once all its inputs fit,
    // so a rejected row cannot make the next one fail.
    struct open_type {
      std::string datatype;
      std::vector<int64_t> shape;
      std::vector<std::string>* rows;
    };
    std::vector<open_type> staged;
    staged.reserve(cols);
    for (auto& col : columns)
      staged.push_back({col.datatype, col.shape, &col.rows});
    bool fits_all = true;
    for (size_t c = 0; c < cols; ++c) {
      auto& col = staged[c];
      auto& name = req.names[c];
      element v;
      if (parser.parse(req.at(row, c)).get(v)) {
        reject(row, "input \"" + name + "\" is not JSON");
        fits_all = false;
        break;
      }
      std::vector<element> leaves;
      std::vector<int64_t> dims;
      if (!flatten(v, leaves, dims) || leaves.empty()) {
        reject(row, "input \"" + name + "\" is not a scalar or a rectangular array");
        fits_all = false;
        break;
      }
      if (col.datatype.empty())
        col.datatype = inferred_datatype(leaves.front());
      if (dims.empty())
        dims = {1};
      if (col.shape.empty()) {
        col.shape = dims;
      } else {
        // The configured shape, -1 matching any length (fixed by this row
        // for the rest of the batch); a scalar fits any shape of 1 element.
        bool fits = dims.size() == col.shape.size();
        for (size_t k = 0; fits && k < dims.size(); ++k)
          fits = col.shape[k] < 0 || col.shape[k] == dims[k];
        if (!fits && product(dims) == 1 && std::all_of(col.shape.begin(), col.shape.end(), [](int64_t d) {
              return d == 1;
            })) {
          fits = true;
          dims = col.shape;
        }
        if (!fits) {
          reject(row, "input \"" + name + "\" has shape " + shape_text(dims) + ", the model expects "
                        + shape_text(col.shape));
          fits_all = false;
          break;
        }
        bool open = std::any_of(col.shape.begin(), col.shape.end(), [](int64_t d) { return d < 0; });
        if (open)
          col.shape = dims;
      }
      std::string text;
      std::string why;
      for (size_t k = 0; k < leaves.size() && why.empty(); ++k) {
        if (k > 0)
          text += ",";
        why = append_leaf(text, leaves[k], col.datatype);
      }
      if (!why.empty()) {
        reject(row, "input \"" + name + "\": " + why);
        fits_all = false;
        break;
      }
      (*col.rows)[row] = std::move(text);
    }
    if (fits_all)
      for (size_t c = 0; c < cols; ++c) {
        columns[c].datatype = std::move(staged[c].datatype);
        columns[c].shape = std::move(staged[c].shape);
      }
  }
  std::vector<uint32_t> sent;
  for (uint32_t row = 0; row < req.rows; ++row)
    if (out.rejected.empty() || out.rejected[row].ok())
      sent.push_back(row);
  out.rows = static_cast<uint32_t>(sent.size());
  if (sent.empty())
    return out;
  auto& body = out.body;
  body = "{\"inputs\":[";
  for (size_t c = 0; c < cols; ++c) {
    auto& col = columns[c];
    if (c > 0)
      body += ",";
    body += "{\"name\":";
    append_json_string(body, req.names[c]);
    std::vector<int64_t> shape{static_cast<int64_t>(sent.size())};
    shape.insert(shape.end(), col.shape.begin(), col.shape.end());
    body += ",\"shape\":" + shape_text(shape) + ",\"datatype\":\"" + col.datatype + "\",\"data\":[";
    bool first = true;
    for (auto row : sent) {
      if (!first)
        body += ",";
      first = false;
      body += col.rows[row];
    }
    body += "]}";
  }
  body += "],\"outputs\":[";
  for (size_t k = 0; k < cfg_.outputs.size(); ++k) {
    if (k > 0)
      body += ",";
    body += "{\"name\":";
    append_json_string(body, cfg_.outputs[k]);
    body += "}";
  }
  body += "]}";
  return out;
}

call_result kserve_v2_protocol::decode(uint32_t rows, const http_answer& answer) const {
  if (answer.status < 200 || answer.status >= 300)
    return classify_answer(cfg_.outputs, answer);
  simdjson::dom::parser parser;
  element root;
  simdjson::dom::array outputs;
  if (auto err = parser.parse(answer.body).get(root))
    return unreadable_answer(cfg_.outputs, not_json_reason(answer, simdjson::error_message(err)));
  if (root["outputs"].get(outputs))
    return unreadable_answer(cfg_.outputs, missing_results_reason(answer, "has no \"outputs\" array"));
  call_result res;
  res.names = cfg_.outputs;
  auto cols = cfg_.outputs.size();
  res.values.resize(static_cast<size_t>(rows) * cols);
  for (size_t c = 0; c < cols; ++c) {
    auto& name = cfg_.outputs[c];
    element tensor;
    bool found = false;
    for (auto t : outputs) {
      std::string_view n;
      if (!t["name"].get(n) && n == name) {
        tensor = t;
        found = true;
        break;
      }
    }
    if (!found)
      return unreadable_answer(cfg_.outputs, "the answer has no output \"" + name + "\"");
    simdjson::dom::array shape_arr;
    element data;
    if (tensor["shape"].get(shape_arr) || tensor["data"].get(data))
      return unreadable_answer(cfg_.outputs, "output \"" + name + "\" has no shape or no data");
    std::vector<int64_t> shape;
    for (auto d : shape_arr) {
      int64_t n = 0;
      if (d.get(n) || n < 0 || n > (int64_t{1} << 31))
        return unreadable_answer(cfg_.outputs, "output \"" + name + "\" has a bad shape");
      shape.push_back(n);
    }
    if (shape.empty() || shape[0] != rows)
      return unreadable_answer(cfg_.outputs, "output \"" + name + "\" has shape " + shape_text(shape) + " for "
                                               + std::to_string(rows) + " records");
    std::vector<element> leaves;
    std::vector<int64_t> dims;
    if (!flatten(data, leaves, dims) || leaves.empty()
        || static_cast<int64_t>(leaves.size()) != product(shape, static_cast<int64_t>(leaves.size())))
      return unreadable_answer(cfg_.outputs, "output \"" + name + "\" has " + std::to_string(leaves.size())
                                               + " elements for shape " + shape_text(shape));
    // The elements must be what the tensor's datatype says (a server that
    // sends "FP32" must send numbers a float can hold).
    element datatype_el;
    if (!tensor["datatype"].get(datatype_el)) {
      std::string_view dt;
      if (datatype_el.get(dt) || !is_kserve_datatype(std::string{dt}))
        return unreadable_answer(cfg_.outputs, "output \"" + name + "\" has datatype " + shown(datatype_el)
                                                 + ", not a KServe v2 datatype");
      std::string datatype{dt};
      for (size_t k = 0; k < leaves.size(); ++k) {
        auto why = output_leaf_problem(leaves[k], datatype);
        if (!why.empty())
          return unreadable_answer(cfg_.outputs, "output \"" + name + "\" (" + datatype + ") element "
                                                   + std::to_string(k) + ": " + why);
      }
    }
    std::vector<int64_t> row_dims(shape.begin() + 1, shape.end());
    auto per_row = static_cast<size_t>(product(row_dims));
    std::vector<std::string> texts;
    texts.reserve(leaves.size());
    for (auto& l : leaves)
      texts.push_back(std::string{simdjson::minify(l)});
    size_t at = 0;
    for (uint32_t row = 0; row < rows; ++row) {
      auto& out = res.values[row * cols + c];
      if (per_row == 1) {
        out = texts[at++];
      } else {
        append_nested(out, texts, at, row_dims, 0);
      }
    }
  }
  return res;
}

std::vector<metadata_problem> kserve_v2_protocol::apply_metadata(kserve_v2_settings& cfg, const std::string& body) {
  std::vector<metadata_problem> problems;
  simdjson::dom::parser parser;
  element root;
  simdjson::dom::array ins, outs;
  if (parser.parse(body).get(root) || root["inputs"].get(ins) || root["outputs"].get(outs)) {
    problems.push_back({"model", "the server's metadata for \"" + cfg.model
                                   + "\" is not KServe v2 model metadata (expected {\"inputs\": [...], "
                                     "\"outputs\": [...]})"});
    return problems;
  }
  struct meta {
    std::string datatype;
    std::vector<int64_t> shape; // without the batch dimension
    bool optional = false;
  };
  auto read = [&](simdjson::dom::array arr, std::map<std::string, meta>& into) {
    for (auto t : arr) {
      std::string_view name, dt;
      simdjson::dom::array shape;
      if (t["name"].get(name) || t["datatype"].get(dt) || t["shape"].get(shape))
        continue;
      meta m;
      m.datatype = std::string{dt};
      if (!is_kserve_datatype(m.datatype)) {
        problems.push_back({"model", "the server's metadata gives tensor \"" + std::string{name}.substr(0, 64)
                                       + "\" an unknown datatype"});
        continue;
      }
      bool first = true;
      for (auto d : shape) {
        int64_t n = 0;
        if (d.get(n) || n < -1 || n == 0 || n > (int64_t{1} << 31))
          n = -1;
        if (!first)
          m.shape.push_back(n);
        first = false;
      }
      bool opt = false;
      if (!t["optional"].get(opt))
        m.optional = opt;
      into[std::string{name}] = m;
    }
  };
  std::map<std::string, meta> min, mout;
  read(ins, min);
  read(outs, mout);
  auto names = [](const std::map<std::string, meta>& m) {
    std::string s;
    for (auto& kv : m)
      s += (s.empty() ? "" : ", ") + kv.first;
    return s.empty() ? std::string{"none"} : s;
  };
  for (auto& in : cfg.inputs) {
    auto it = min.find(in.name);
    if (it == min.end()) {
      problems.push_back({"input." + in.name, "model \"" + cfg.model + "\" has no input \"" + in.name
                                                + "\" (its inputs: " + names(min) + ")"});
      continue;
    }
    auto& m = it->second;
    if (!in.datatype.empty() && in.datatype != m.datatype)
      problems.push_back({"input." + in.name, "configured datatype " + in.datatype + ", the model expects "
                                                + m.datatype});
    if (in.datatype.empty())
      in.datatype = m.datatype;
    if (!in.shape.empty() && !m.shape.empty()) {
      bool fits = in.shape.size() == m.shape.size();
      for (size_t k = 0; fits && k < in.shape.size(); ++k)
        fits = m.shape[k] < 0 || in.shape[k] < 0 || m.shape[k] == in.shape[k];
      if (!fits)
        problems.push_back({"input." + in.name, "configured shape " + shape_text(in.shape)
                                                  + ", the model expects " + shape_text(m.shape)
                                                  + " per record"});
    }
    if (in.shape.empty())
      in.shape = m.shape;
  }
  for (auto& kv : min) {
    bool given = std::any_of(cfg.inputs.begin(), cfg.inputs.end(), [&](auto& i) { return i.name == kv.first; });
    if (!given && !kv.second.optional)
      problems.push_back({"input", "model \"" + cfg.model + "\" requires input \"" + kv.first
                                     + "\" (datatype " + kv.second.datatype + "), which is not configured"});
  }
  for (auto& out : cfg.outputs)
    if (mout.count(out) == 0)
      problems.push_back({"output." + out, "model \"" + cfg.model + "\" has no output \"" + out
                                             + "\" (its outputs: " + names(mout) + ")"});
  return problems;
}

} // namespace sinfer
