#include "runtime/base64.hpp"
#include "sim/reference_server.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <httplib.h>
#include <simdjson.h>

#include "policies/prometheus_text.hpp"
#include "runtime/json_text.hpp"

namespace sinfer {

namespace {

/// cpp-httplib (as Debian builds it) listens with a backlog of 5: a client
/// opening more connections at once than that loses SYNs and waits out
/// TCP's 1 s retransmit, which reads as a 1-3 s stall in any benchmark.
/// Listening again on the same socket only raises the backlog, so find the
/// listening socket on `port` among this process's descriptors and do that.
void deepen_backlog(int port) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr)
    return;
  while (auto* e = ::readdir(dir)) {
    int fd = std::atoi(e->d_name);
    if (fd <= 2)
      continue;
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0
        || ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || listening == 0)
      continue;
    int bound = addr.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port)
              : addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                           : -1;
    if (bound == port)
      ::listen(fd, 1024);
  }
  ::closedir(dir);
}

} // namespace

namespace {

using clock_type = std::chrono::steady_clock;

uint64_t micros_since(clock_type::time_point since) {
  return static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - since).count());
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string error_body(const std::string& msg) {
  std::string out = "{\"error\":";
  append_json_string(out, msg);
  out += "}";
  return out;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/// The whitespace-separated words of `s` (the reference server's tokens).
std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> result;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i]))
      ++i;
    size_t start = i;
    while (i < s.size() && !is_space(s[i]))
      ++i;
    if (i > start)
      result.push_back(s.substr(start, i - start));
  }
  return result;
}

/// Appends `x` as 4 little-endian bytes of an IEEE-754 float32.
void append_float32_le(std::string& out, double x) {
  float f = static_cast<float>(x);
  uint32_t bits = 0;
  std::memcpy(&bits, &f, sizeof bits);
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

/// The OpenAI error type for an HTTP status.
const char* openai_error_type(int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

/// Flattens the strings of a (possibly nested) BYTES data array into JSON
/// string texts; false on an element that is neither.
bool flatten_strings(simdjson::dom::element e, std::vector<std::string>& out) {
  simdjson::dom::array arr;
  if (!e.get(arr)) {
    for (auto x : arr)
      if (!flatten_strings(x, out))
        return false;
    return true;
  }
  std::string_view s;
  if (e.get(s))
    return false;
  out.push_back(json_quote(s));
  return true;
}

/// A JSON value's raw text: a string's content, anything else as it is.
std::string raw_text(const std::string& json) {
  std::string out;
  return json_unquote(json, out) ? out : json;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (auto& n : names)
    out += (out.empty() ? "" : ", ") + n;
  return out;
}

} // namespace

struct reference_server::reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  /// Retry-After in seconds; 0: none.
  int retry_after = 0;
  /// Close the connection without answering.
  bool reset = false;
};

struct reference_server::work {
  /// Records (b) for the service time and the counters.
  uint32_t rows = 0;
  /// Prompt tokens, counted when the request succeeds.
  uint64_t prompt_tokens = 0;
  /// Each row's first input as raw text (a JSON string's content, another
  /// value's JSON text), for the /stats input tallies.
  std::vector<std::string> inputs;
  /// Computes the answer once the slot was held; sets the generated
  /// tokens. An answer other than 200 fails the request.
  std::function<reply(uint64_t& generation_tokens)> compute;
};

reference_server::reference_server(reference_server_options options) : opts_(std::move(options)) {
  if (opts_.slots == 0)
    opts_.slots = 1;
  if (opts_.served_name.empty())
    opts_.served_name = opts_.model;
  legacy_errors_ = opts_.legacy_errors;
  started_unix_ = unix_now();
  auto models = model_registry::with_builtins();
  std::string err;
  std::string embedder_options = "{\"dimensions\":" + std::to_string(opts_.embedding_dim) + "}";
  if (auto* f = models.find(opts_.model))
    model_ = (*f)(opts_.model == "hash-embedder" ? embedder_options : "{}", err);
  if (auto* f = models.find("hash-embedder"))
    embedder_ = (*f)(embedder_options, err);
  if (auto* f = models.find("keyword-classifier"))
    classifier_ = (*f)("{}", err);
  inputs_ = model_.inputs.empty() ? std::vector<std::string>{"text"} : model_.inputs;
  // Output metadata from one probe call on {"text": "probe"}.
  call_request probe;
  probe.names = inputs_;
  probe.values.assign(inputs_.size(), "\"probe\"");
  probe.rows = 1;
  call_result res;
  res.names = model_.outputs;
  try {
    if (model_.compute)
      model_.compute(probe, res);
  } catch (const std::exception&) {
    res.values.clear();
  }
  bool probed = res.error.ok() && res.row_errors.empty() && res.values.size() == model_.outputs.size();
  simdjson::dom::parser parser;
  for (size_t k = 0; k < model_.outputs.size(); ++k) {
    tensor_meta t;
    t.name = model_.outputs[k];
    t.datatype = "BYTES";
    simdjson::dom::element v;
    if (probed && !parser.parse(res.values[k]).get(v)) {
      simdjson::dom::array arr;
      switch (v.type()) {
        case simdjson::dom::element_type::STRING: break;
        case simdjson::dom::element_type::INT64:
        case simdjson::dom::element_type::UINT64: t.datatype = "INT64"; break;
        case simdjson::dom::element_type::DOUBLE: t.datatype = "FP32"; break;
        case simdjson::dom::element_type::BOOL: t.datatype = "BOOL"; break;
        case simdjson::dom::element_type::ARRAY: {
          bool numbers = !v.get(arr) && arr.size() > 0;
          for (auto x : arr)
            numbers = numbers && (x.is_int64() || x.is_uint64() || x.is_double());
          if (numbers) {
            t.datatype = "FP32";
            t.array = true;
            t.width = arr.size();
          } else {
            t.as_text = true;
          }
          break;
        }
        default: t.as_text = true;
      }
    }
    outputs_.push_back(t);
  }
}

reference_server::~reference_server() {
  stop();
}

std::string reference_server::url() const {
  bool tls = !opts_.cert_file.empty() && !opts_.key_file.empty();
  return (tls ? "https://" : "http://") + opts_.host + ":" + std::to_string(port_);
}

void reference_server::inject(fault_plan plan) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (plan.error_shape != fault_plan::keep_shape)
    legacy_errors_ = plan.error_shape == fault_plan::legacy_shape;
  fault_ = plan;
}

fault_plan reference_server::take_fault() {
  std::lock_guard<std::mutex> guard{mutex_};
  if (fault_.kind == fault_plan::unready)
    return fault_plan{};
  auto f = fault_;
  if (fault_.kind != fault_plan::none && fault_.count > 0 && --fault_.count == 0)
    fault_ = fault_plan{};
  return f;
}

bool reference_server::take_unready() {
  std::lock_guard<std::mutex> guard{mutex_};
  if (fault_.kind != fault_plan::unready)
    return false;
  if (fault_.count > 0 && --fault_.count == 0)
    fault_ = fault_plan{};
  return true;
}

bool reference_server::key_ok(const httplib::Request& req) const {
  if (opts_.api_key.empty())
    return true;
  if (req.get_header_value("Authorization") != "Bearer " + opts_.api_key)
    return false;
  ++authorized_;
  return true;
}

void reference_server::note_key(const std::string& key) {
  std::lock_guard<std::mutex> guard{tally_mutex_};
  ++keyed_requests_;
  if (key_counts_[key]++ > 0)
    ++repeated_keys_;
}

void reference_server::note_scored(const std::vector<std::string>& inputs) {
  std::lock_guard<std::mutex> guard{tally_mutex_};
  for (auto& in : inputs)
    if (input_counts_[in]++ > 0)
      ++repeated_inputs_;
}

reference_stats reference_server::stats() const {
  reference_stats s;
  s.requests = requests_.load();
  s.records = records_.load();
  s.in_flight = in_flight_.load();
  s.rejected = rejected_.load();
  s.records_in_flight = records_in_flight_.load();
  {
    std::lock_guard<std::mutex> guard{mutex_};
    s.waiting = waiting_;
  }
  std::lock_guard<std::mutex> guard{tally_mutex_};
  s.keyed_requests = keyed_requests_;
  s.repeated_keys = repeated_keys_;
  s.distinct_inputs = input_counts_.size();
  s.repeated_inputs = repeated_inputs_;
  return s;
}

uint64_t reference_server::key_requests(const std::string& key) const {
  std::lock_guard<std::mutex> guard{tally_mutex_};
  auto it = key_counts_.find(key);
  return it == key_counts_.end() ? 0 : it->second;
}

uint64_t reference_server::input_scored(const std::string& input) const {
  std::lock_guard<std::mutex> guard{tally_mutex_};
  auto it = input_counts_.find(input);
  return it == input_counts_.end() ? 0 : it->second;
}

bool reference_server::known_model(const std::string& name, const std::string& version) const {
  return name == opts_.served_name && (version.empty() || version == "1");
}

reference_server::reply reference_server::error_reply(protocol p, int status, const std::string& message) const {
  reply r;
  r.status = status;
  if (p != protocol::openai) {
    r.body = error_body(message);
    return r;
  }
  bool legacy = false;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    legacy = legacy_errors_;
  }
  std::string fields = "\"message\":" + json_quote(message) + ",\"type\":" + json_quote(openai_error_type(status))
                       + ",\"param\":null,\"code\":" + std::to_string(status);
  r.body = legacy ? "{\"object\":\"error\"," + fields + "}" : "{\"error\":{" + fields + "}}";
  return r;
}

bool reference_server::hold_slot(std::chrono::microseconds service, uint64_t& queue_us, uint64_t& compute_us) {
  std::unique_lock<std::mutex> lock{mutex_};
  if (opts_.max_queue > 0 && busy_ >= opts_.slots && waiting_ >= opts_.max_queue) {
    ++rejected_;
    return false;
  }
  auto queued = clock_type::now();
  ++waiting_;
  slot_free_.wait(lock, [&] { return stopping_ || busy_ < opts_.slots; });
  --waiting_;
  ++busy_;
  ++in_flight_;
  queue_us = micros_since(queued);
  auto held = clock_type::now();
  // Sleep for the service time, but not past a stop. The wait ends early
  // by how late waits have woken (smoothed, 1/8), at most a fifth of it.
  if (service.count() > 0) {
    auto early = std::min<std::chrono::nanoseconds>(wake_lateness_, service / 5);
    auto target = held + service - early;
    bool stopped = stopped_.wait_until(lock, target, [&] { return stopping_; });
    if (!stopped) {
      // One sample counts at most 1 ms: a stall of the whole machine must
      // not make the next services (or a hang fault) end far too early.
      auto late = std::clamp<std::chrono::nanoseconds>(clock_type::now() - target, std::chrono::nanoseconds{0},
                                                       std::chrono::milliseconds{1});
      wake_lateness_ += (late - wake_lateness_) / 8;
    }
  }
  --busy_;
  --in_flight_;
  compute_us = micros_since(held);
  lock.unlock();
  slot_free_.notify_one();
  return true;
}

void reference_server::serve(protocol p, parse_fn parse, const httplib::Request& req, httplib::Response& res) {
  auto started = clock_type::now();
  ++requests_;
  if (req.has_header("Idempotency-Key"))
    note_key(req.get_header_value("Idempotency-Key"));
  reply r;
  work w;
  // The rows of this request in records_in_flight_, until it returns.
  struct rows_held {
    std::atomic<uint64_t>& count;
    uint64_t rows = 0;
    ~rows_held() {
      count -= rows;
    }
  } held{records_in_flight_};
  bool ok = false;
  uint64_t queue_us = 0;
  uint64_t compute_us = 0;
  uint64_t generated = 0;
  if (!key_ok(req)) {
    r = error_reply(p, 401, "missing or wrong API key");
  } else {
    auto fault = take_fault();
    if ((this->*parse)(req, w, r)) {
      records_ += w.rows;
      records_in_flight_ += w.rows;
      held.rows = w.rows;
      auto service = opts_.base + opts_.per_record * w.rows;
      if (fault.kind == fault_plan::slow)
        service = std::chrono::duration_cast<std::chrono::microseconds>(service * fault.slowdown);
      if (fault.kind == fault_plan::hang)
        service += std::chrono::duration_cast<std::chrono::microseconds>(fault.hang_for);
      if (!hold_slot(service, queue_us, compute_us)) {
        r = error_reply(p, p == protocol::openai ? 429 : 503, "queue full");
        r.retry_after = 1;
      } else if (fault.kind == fault_plan::status) {
        r = error_reply(p, fault.status_code,
                        fault.echo_credentials
                          ? "injected fault (got Authorization: " + req.get_header_value("Authorization") + ")"
                          : std::string{"injected fault"});
        if ((fault.status_code == 429 || fault.status_code == 503) && fault.retry_after_s > 0)
          r.retry_after = fault.retry_after_s;
      } else if (fault.kind == fault_plan::reset) {
        r.reset = true;
      } else if (fault.kind == fault_plan::garbage) {
        r.status = 200;
        r.body = "<html>502 Bad Gateway</html>";
      } else {
        note_scored(w.inputs);
        try {
          r = w.compute(generated);
        } catch (const std::exception& e) {
          r = error_reply(p, 500, std::string{"model threw: "} + e.what());
        }
        ok = r.status == 200;
      }
    }
  }
  if (ok) {
    ++success_;
    inference_count_ += w.rows;
    ++exec_count_;
    queue_us_ += queue_us;
    compute_us_ += compute_us;
    request_us_ += micros_since(started);
    prompt_tokens_ += w.prompt_tokens;
    generation_tokens_ += generated;
  } else {
    ++failure_;
  }
  if (r.reset) {
    // Promise a body, send none, drop the connection: the client sees the
    // connection end mid-answer.
    res.set_content_provider(64, "application/json", [](size_t, size_t, httplib::DataSink&) { return false; });
    return;
  }
  res.status = r.status;
  if (r.retry_after > 0)
    res.set_header("Retry-After", std::to_string(r.retry_after));
  res.set_content(r.body, r.content_type);
}

bool reference_server::parse_http_json(const httplib::Request& http, work& w, reply& err) {
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  simdjson::dom::array inputs;
  if (parser.parse(http.body).get(obj) || obj["inputs"].get(inputs)) {
    err = error_reply(protocol::http_json, 400, "expected {\"inputs\": [...]}");
    return false;
  }
  call_request req;
  req.names = model_.inputs;
  for (auto row : inputs) {
    simdjson::dom::object r;
    if (row.get(r)) {
      err = error_reply(protocol::http_json, 400, "each input must be an object");
      return false;
    }
    for (auto& name : req.names) {
      simdjson::dom::element v;
      if (r[name].get(v)) {
        err = error_reply(protocol::http_json, 400, "an input has no \"" + name + "\"");
        return false;
      }
      req.values.push_back(simdjson::minify(v));
    }
    if (!req.names.empty()) {
      w.inputs.push_back(raw_text(req.values[req.rows * req.names.size()]));
    } else {
      std::string first;
      for (auto field : r) {
        first = raw_text(simdjson::minify(field.value));
        break;
      }
      w.inputs.push_back(std::move(first));
    }
    ++req.rows;
  }
  w.rows = req.rows;
  w.compute = [this, req = std::move(req)](uint64_t&) {
    reply r;
    call_result res;
    res.names = model_.outputs;
    if (model_.compute)
      model_.compute(req, res);
    if (!model_.compute || !res.error.ok() || res.values.size() != req.rows * res.names.size()
        || (!res.row_errors.empty() && res.row_errors.size() != req.rows))
      return error_reply(protocol::http_json, 500,
                         model_.compute ? "model failed: " + res.error.message : "no model " + opts_.model);
    r.body = "{\"outputs\":[";
    for (uint32_t row = 0; row < req.rows; ++row) {
      if (row > 0)
        r.body += ",";
      if (!res.row_errors.empty() && !res.row_errors[row].ok()) {
        r.body += error_body(res.row_errors[row].message);
        continue;
      }
      r.body += "{";
      for (size_t k = 0; k < res.names.size(); ++k) {
        if (k > 0)
          r.body += ",";
        append_json_string(r.body, res.names[k]);
        r.body += ":";
        r.body += res.values[row * res.names.size() + k];
      }
      r.body += "}";
    }
    r.body += "]}";
    return r;
  };
  return true;
}

bool reference_server::parse_kserve(const httplib::Request& http, work& w, reply& err) {
  auto fail = [&](int status, const std::string& msg) {
    err = error_reply(protocol::kserve, status, msg);
    return false;
  };
  std::string name = http.matches.size() > 1 ? http.matches[1].str() : "";
  std::string version = http.matches.size() > 2 ? http.matches[2].str() : "";
  if (!known_model(name, version))
    return fail(404, "Request for unknown model: '" + name + "'" + (version.empty() ? "" : " version " + version)
                       + " is not found");
  if (http.has_header("Inference-Header-Content-Length"))
    return fail(400, "binary tensor data is not supported");
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  simdjson::dom::array inputs;
  if (parser.parse(http.body).get(obj))
    return fail(400, "expected a JSON object");
  if (obj["inputs"].get(inputs) || inputs.size() == 0)
    return fail(400, "expected \"inputs\": a non-empty array of tensors");
  std::string id;
  bool has_id = false;
  simdjson::dom::element id_element;
  if (!obj["id"].get(id_element)) {
    std::string_view s;
    if (id_element.get(s))
      return fail(400, "\"id\" must be a string");
    id = std::string{s};
    has_id = true;
  }
  // Input columns, each with one JSON string per row.
  std::vector<std::vector<std::string>> columns(inputs_.size());
  std::vector<bool> seen(inputs_.size(), false);
  int64_t rows = -1;
  for (auto t : inputs) {
    simdjson::dom::object tensor;
    std::string_view tname;
    if (t.get(tensor) || tensor["name"].get(tname))
      return fail(400, "each input must be an object with a \"name\"");
    size_t col = 0;
    while (col < inputs_.size() && inputs_[col] != tname)
      ++col;
    std::string label = "input '" + std::string{tname} + "'";
    if (col == inputs_.size())
      return fail(400, "unknown " + label + " (the model's inputs: " + join_names(inputs_) + ")");
    if (seen[col])
      return fail(400, label + " given twice");
    seen[col] = true;
    std::string_view datatype;
    if (tensor["datatype"].get(datatype))
      return fail(400, label + ": no \"datatype\"");
    if (datatype != "BYTES")
      return fail(400, label + ": datatype must be BYTES, got " + std::string{datatype});
    simdjson::dom::array shape;
    if (tensor["shape"].get(shape) || shape.size() == 0)
      return fail(400, label + ": expected \"shape\": a non-empty array of integers");
    std::vector<int64_t> dims;
    for (auto d : shape) {
      int64_t v = 0;
      if (d.get(v) || v < 0 || v > (int64_t{1} << 31))
        return fail(400, label + ": shape " + simdjson::minify(shape) + " must hold integers in 0..2^31");
      dims.push_back(v);
    }
    if (dims.size() > 8)
      return fail(400, label + ": shape " + simdjson::minify(shape) + " has more than 8 dimensions");
    int64_t per_row = 1;
    for (size_t i = 1; i < dims.size(); ++i)
      per_row *= dims[i];
    simdjson::dom::element data;
    if (tensor["data"].get(data) || !data.is_array())
      return fail(400, label + ": expected \"data\": an array");
    if (!flatten_strings(data, columns[col]))
      return fail(400, label + ": BYTES data must be strings");
    if (static_cast<int64_t>(columns[col].size()) != dims[0] * per_row)
      return fail(400, label + ": shape " + simdjson::minify(shape) + " has " + std::to_string(dims[0] * per_row)
                         + " elements, data has " + std::to_string(columns[col].size()));
    if (per_row != 1)
      return fail(400, label + ": shape " + simdjson::minify(shape) + " must be [b, 1] (or [b])");
    if (dims[0] == 0)
      return fail(400, label + ": the batch (shape[0]) must be at least 1");
    if (rows >= 0 && dims[0] != rows)
      return fail(400, label + ": batch " + std::to_string(dims[0]) + " differs from the other inputs' "
                         + std::to_string(rows));
    rows = dims[0];
  }
  for (size_t col = 0; col < inputs_.size(); ++col)
    if (!seen[col])
      return fail(400, "missing input '" + inputs_[col] + "'");
  // The outputs to answer with, in the order asked for (default: all).
  std::vector<size_t> wanted;
  simdjson::dom::array requested;
  if (!obj["outputs"].get(requested)) {
    for (auto o : requested) {
      simdjson::dom::object out;
      std::string_view oname;
      if (o.get(out) || out["name"].get(oname))
        return fail(400, "each requested output must be an object with a \"name\"");
      size_t k = 0;
      while (k < outputs_.size() && outputs_[k].name != oname)
        ++k;
      std::vector<std::string> names;
      for (auto& t : outputs_)
        names.push_back(t.name);
      if (k == outputs_.size())
        return fail(400, "unknown output '" + std::string{oname} + "' (the model's outputs: " + join_names(names) + ")");
      for (auto x : wanted)
        if (x == k)
          return fail(400, "output '" + std::string{oname} + "' requested twice");
      wanted.push_back(k);
    }
  } else if (obj["outputs"].error() != simdjson::NO_SUCH_FIELD) {
    return fail(400, "\"outputs\" must be an array");
  } else {
    for (size_t k = 0; k < outputs_.size(); ++k)
      wanted.push_back(k);
  }
  call_request req;
  req.names = inputs_;
  req.rows = static_cast<uint32_t>(rows);
  for (int64_t row = 0; row < rows; ++row) {
    w.inputs.push_back(raw_text(columns[0][static_cast<size_t>(row)]));
    for (auto& column : columns)
      req.values.push_back(std::move(column[static_cast<size_t>(row)]));
  }
  w.rows = req.rows;
  w.compute = [this, req = std::move(req), wanted = std::move(wanted), id, has_id](uint64_t&) {
    call_result res;
    res.names = model_.outputs;
    if (model_.compute)
      model_.compute(req, res);
    if (!model_.compute || !res.error.ok() || res.values.size() != req.rows * res.names.size()
        || (!res.row_errors.empty() && res.row_errors.size() != req.rows))
      return error_reply(protocol::kserve, 500,
                         model_.compute ? "model failed: " + res.error.message : "no model " + opts_.model);
    for (uint32_t row = 0; row < req.rows && !res.row_errors.empty(); ++row)
      if (!res.row_errors[row].ok())
        return error_reply(protocol::kserve, 400, "row " + std::to_string(row) + ": " + res.row_errors[row].message);
    reply r;
    r.body = "{\"model_name\":" + json_quote(opts_.served_name) + ",\"model_version\":\"1\"";
    if (has_id)
      r.body += ",\"id\":" + json_quote(id);
    r.body += ",\"outputs\":[";
    simdjson::dom::parser parser;
    for (size_t i = 0; i < wanted.size(); ++i) {
      size_t k = wanted[i];
      const auto& t = outputs_[k];
      r.body += (i > 0 ? ",{\"name\":" : "{\"name\":") + json_quote(t.name) + ",\"datatype\":\"" + t.datatype
                + "\",\"shape\":[" + std::to_string(req.rows) + "," + std::to_string(t.width) + "],\"data\":[";
      for (uint32_t row = 0; row < req.rows; ++row) {
        const std::string& v = res.at(row, k);
        if (row > 0)
          r.body += ",";
        if (t.array) {
          simdjson::dom::array arr;
          if (parser.parse(v).get(arr) || arr.size() != t.width)
            return error_reply(protocol::kserve, 500,
                               "output '" + t.name + "' of row " + std::to_string(row) + " does not have "
                                 + std::to_string(t.width) + " elements: " + v);
          bool first = true;
          for (auto x : arr) {
            r.body += first ? "" : ",";
            r.body += simdjson::minify(x);
            first = false;
          }
        } else if (t.as_text || (t.datatype == "BYTES" && (v.empty() || v.front() != '"'))) {
          r.body += json_quote(v);
        } else {
          r.body += v;
        }
      }
      r.body += "]}";
    }
    r.body += "]}";
    return r;
  };
  return true;
}

bool reference_server::openai_body(simdjson::dom::parser& parser, const httplib::Request& http,
                                   simdjson::dom::object& obj, reply& err) {
  auto fail = [&](int status, const std::string& msg) {
    err = error_reply(protocol::openai, status, msg);
    return false;
  };
  if (parser.parse(http.body).get(obj))
    return fail(400, "expected a JSON object");
  std::string_view model = opts_.served_name;
  simdjson::dom::element m;
  if (!obj["model"].get(m) && m.get(model))
    return fail(400, "\"model\" must be a string");
  if (model != opts_.served_name)
    return fail(404, "The model `" + std::string{model} + "` does not exist.");
  return true;
}

bool reference_server::parse_embeddings(const httplib::Request& http, work& w, reply& err) {
  auto fail = [&](int status, const std::string& msg) {
    err = error_reply(protocol::openai, status, msg);
    return false;
  };
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (!openai_body(parser, http, obj, err))
    return false;
  std::vector<std::string> texts;
  simdjson::dom::element input;
  if (obj["input"].get(input))
    return fail(400, "\"input\" is required: a string or an array of strings");
  std::string_view one;
  simdjson::dom::array many;
  if (!input.get(one)) {
    texts.emplace_back(one);
  } else if (!input.get(many) && many.size() > 0) {
    for (auto x : many) {
      if (x.get(one))
        return fail(400, "\"input\" must be a string or an array of strings (token arrays are not supported)");
      texts.emplace_back(one);
    }
  } else {
    return fail(400, "\"input\" must be a string or a non-empty array of strings");
  }
  std::string_view format = "float";
  simdjson::dom::element f;
  if (!obj["encoding_format"].get(f) && (f.get(format) || (format != "float" && format != "base64")))
    return fail(400, "\"encoding_format\" must be \"float\" or \"base64\", got " + simdjson::minify(f));
  int64_t dims = 0;
  if (!obj["dimensions"].get(f) && (f.get(dims) || dims != static_cast<int64_t>(opts_.embedding_dim)))
    return fail(400, "\"dimensions\" must be " + std::to_string(opts_.embedding_dim) + " (this server's), got "
                       + simdjson::minify(f));
  call_request req;
  req.names = {"text"};
  req.rows = static_cast<uint32_t>(texts.size());
  for (auto& t : texts) {
    w.prompt_tokens += words(t).size();
    req.values.push_back(json_quote(t));
  }
  w.inputs = texts;
  w.rows = req.rows;
  bool b64 = format == "base64";
  w.compute = [this, req = std::move(req), b64, tokens = w.prompt_tokens](uint64_t&) {
    call_result res;
    res.names = embedder_.outputs;
    if (embedder_.compute)
      embedder_.compute(req, res);
    if (!embedder_.compute || !res.error.ok() || res.values.size() != req.rows || !res.row_errors.empty())
      return error_reply(protocol::openai, 500, "the embedder failed");
    reply r;
    r.body = "{\"object\":\"list\",\"model\":" + json_quote(opts_.served_name) + ",\"data\":[";
    simdjson::dom::parser parser;
    for (uint32_t row = 0; row < req.rows; ++row) {
      simdjson::dom::array arr;
      if (parser.parse(res.values[row]).get(arr))
        return error_reply(protocol::openai, 500, "the embedder answered no array");
      r.body += (row > 0 ? "," : "") + std::string{"{\"object\":\"embedding\",\"index\":"} + std::to_string(row)
                + ",\"embedding\":";
      std::string text;
      std::string bytes;
      for (auto x : arr) {
        double d = 0;
        if (x.get(d))
          return error_reply(protocol::openai, 500, "the embedder answered a non-number");
        if (b64) {
          append_float32_le(bytes, d);
        } else {
          text += text.empty() ? "" : ",";
          text += simdjson::minify(x);
        }
      }
      r.body += b64 ? "\"" + base64(bytes) + "\"}" : "[" + text + "]}";
    }
    r.body += "],\"usage\":{\"prompt_tokens\":" + std::to_string(tokens)
              + ",\"total_tokens\":" + std::to_string(tokens) + "}}";
    return r;
  };
  return true;
}

bool reference_server::parse_chat(const httplib::Request& http, work& w, reply& err) {
  auto fail = [&](int status, const std::string& msg) {
    err = error_reply(protocol::openai, status, msg);
    return false;
  };
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (!openai_body(parser, http, obj, err))
    return false;
  simdjson::dom::element e;
  bool stream = false;
  if (!obj["stream"].get(e) && (e.get(stream) || stream))
    return fail(400, "\"stream\": true is not supported by the reference server");
  int64_t n = 1;
  if (!obj["n"].get(e) && (e.get(n) || n != 1))
    return fail(400, "\"n\" must be 1");
  if (!obj["temperature"].get(e) && !e.is_number() && !e.is_null())
    return fail(400, "\"temperature\" must be a number");
  int64_t max_tokens = 0;
  for (const char* key : {"max_tokens", "max_completion_tokens"})
    if (!obj[key].get(e) && !e.is_null() && (e.get(max_tokens) || max_tokens < 1))
      return fail(400, std::string{"\""} + key + "\" must be an integer >= 1, got " + simdjson::minify(e));
  simdjson::dom::array messages;
  if (obj["messages"].get(messages) || messages.size() == 0)
    return fail(400, "\"messages\" must be a non-empty array");
  std::string last_user;
  bool has_user = false;
  uint64_t prompt_tokens = 0;
  for (auto msg : messages) {
    simdjson::dom::object m;
    std::string_view role;
    if (msg.get(m) || m["role"].get(role))
      return fail(400, "each message must be an object with a \"role\"");
    std::string content;
    simdjson::dom::element c;
    std::string_view s;
    simdjson::dom::array parts;
    if (m["content"].get(c) || c.is_null()) {
      // An assistant message with tool calls only: no text.
    } else if (!c.get(s)) {
      content = std::string{s};
    } else if (!c.get(parts)) {
      for (auto part : parts) {
        std::string_view type;
        std::string_view text;
        if (part["type"].get(type) || type != "text" || part["text"].get(text))
          return fail(400, "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported");
        content += (content.empty() ? "" : "\n") + std::string{text};
      }
    } else {
      return fail(400, "a message's \"content\" must be a string or an array of text parts");
    }
    prompt_tokens += words(content).size();
    if (role == "user") {
      last_user = std::move(content);
      has_user = true;
    }
  }
  if (!has_user)
    return fail(400, "\"messages\" has no user message");
  w.rows = 1;
  w.prompt_tokens = prompt_tokens;
  w.inputs = {last_user};
  w.compute = [this, last_user = std::move(last_user), max_tokens, prompt_tokens](uint64_t& generated) {
    call_request req;
    req.names = {"text"};
    req.values = {json_quote(last_user)};
    req.rows = 1;
    call_result res;
    res.names = classifier_.outputs;
    if (classifier_.compute)
      classifier_.compute(req, res);
    std::string label;
    if (!classifier_.compute || !res.error.ok() || !res.row_errors.empty() || res.values.empty()
        || !json_unquote(res.values[0], label))
      return error_reply(protocol::openai, 500, "the classifier failed");
    std::vector<std::string> text{"Summary", "(" + label + "):"};
    auto user_words = words(last_user);
    for (size_t i = 0; i < user_words.size() && i < 12; ++i)
      text.emplace_back(user_words[i]);
    const char* finish = "stop";
    if (max_tokens > 0 && text.size() > static_cast<size_t>(max_tokens)) {
      text.resize(static_cast<size_t>(max_tokens));
      finish = "length";
    }
    std::string content;
    for (auto& word : text)
      content += (content.empty() ? "" : " ") + word;
    generated = text.size();
    reply r;
    r.body = "{\"id\":\"chatcmpl-" + std::to_string(++chat_ids_) + "\",\"object\":\"chat.completion\",\"created\":"
             + std::to_string(unix_now()) + ",\"model\":" + json_quote(opts_.served_name)
             + ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":" + json_quote(content)
             + "},\"finish_reason\":\"" + finish + "\"}],\"usage\":{\"prompt_tokens\":"
             + std::to_string(prompt_tokens) + ",\"completion_tokens\":" + std::to_string(generated)
             + ",\"total_tokens\":" + std::to_string(prompt_tokens + generated) + "}}";
    return r;
  };
  return true;
}

std::string reference_server::model_metadata() const {
  std::string out = "{\"name\":" + json_quote(opts_.served_name)
                    + ",\"versions\":[\"1\"],\"platform\":\"sinfer-reference\",\"inputs\":[";
  for (size_t i = 0; i < inputs_.size(); ++i)
    out += (i > 0 ? "," : "") + std::string{"{\"name\":"} + json_quote(inputs_[i])
           + ",\"datatype\":\"BYTES\",\"shape\":[-1,1]}";
  out += "],\"outputs\":[";
  for (size_t k = 0; k < outputs_.size(); ++k)
    out += (k > 0 ? "," : "") + std::string{"{\"name\":"} + json_quote(outputs_[k].name) + ",\"datatype\":\""
           + outputs_[k].datatype + "\",\"shape\":[-1," + std::to_string(outputs_[k].width) + "]}";
  out += "]}";
  return out;
}

std::string reference_server::metrics_text() {
  uint32_t running = 0;
  uint32_t waiting = 0;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    running = busy_;
    waiting = waiting_;
  }
  std::string out;
  std::string triton = "{model=\"" + prometheus_label_value(opts_.served_name) + "\",version=\"1\"}";
  std::string vllm = "{model_name=\"" + prometheus_label_value(opts_.served_name) + "\"}";
  auto family = [&](const char* name, const char* type, const char* help, const std::string& labels,
                    const std::string& value) {
    out += std::string{"# HELP "} + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + labels + " "
           + value + "\n";
  };
  auto num = [](uint64_t v) { return std::to_string(v); };
  char usage[32];
  std::snprintf(usage, sizeof usage, "%.6g", static_cast<double>(running) / opts_.slots);
  family("nv_inference_request_success", "counter", "Number of successful inference requests, all batch sizes",
         triton, num(success_));
  family("nv_inference_request_failure", "counter", "Number of failed inference requests, all batch sizes", triton,
         num(failure_));
  family("nv_inference_count", "counter", "Number of inferences (records) of successful requests", triton,
         num(inference_count_));
  family("nv_inference_exec_count", "counter", "Number of model executions (batches) of successful requests", triton,
         num(exec_count_));
  family("nv_inference_request_duration_us", "counter",
         "Cumulative duration of successful inference requests in microseconds", triton, num(request_us_));
  family("nv_inference_queue_duration_us", "counter",
         "Cumulative time successful requests waited for a slot in microseconds", triton, num(queue_us_));
  family("nv_inference_compute_infer_duration_us", "counter",
         "Cumulative time successful requests held a slot in microseconds", triton, num(compute_us_));
  family("nv_inference_pending_request_count", "gauge", "Instantaneous number of requests waiting for a slot",
         triton, num(waiting));
  family("vllm:num_requests_running", "gauge", "Number of requests holding a slot", vllm, num(running));
  family("vllm:num_requests_waiting", "gauge", "Number of requests waiting for a slot", vllm, num(waiting));
  family("vllm:kv_cache_usage_perc", "gauge", "Slots in use as a fraction (1 means 100 percent)", vllm, usage);
  family("vllm:gpu_cache_usage_perc", "gauge", "Slots in use as a fraction (1 means 100 percent)", vllm, usage);
  family("vllm:prompt_tokens_total", "counter", "Number of prompt tokens processed", vllm, num(prompt_tokens_));
  family("vllm:generation_tokens_total", "counter", "Number of generation tokens processed", vllm,
         num(generation_tokens_));
  family("vllm:request_success_total", "counter", "Count of successfully processed requests", vllm, num(success_));
  family("sinfer_reference_rejected_total", "counter", "Requests rejected because the queue was full", "",
         num(rejected_));
  return out;
}

int reference_server::start(std::string& error) {
  if (!opts_.cert_file.empty() && !opts_.key_file.empty()) {
    auto tls = std::make_unique<httplib::SSLServer>(opts_.cert_file.c_str(), opts_.key_file.c_str());
    if (!tls->is_valid()) {
      error = "cannot serve HTTPS with " + opts_.cert_file + " and " + opts_.key_file;
      return -1;
    }
    server_ = std::move(tls);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  // A handler thread per request inside the queue model (slots + queue),
  // plus some for probes, metrics and idle keep-alive connections.
  size_t threads = std::min<size_t>(
    1024, std::max<size_t>(16, size_t{opts_.slots} + (opts_.max_queue > 0 ? opts_.max_queue : 64) + 8));
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_tcp_nodelay(true);
  auto json = [](httplib::Response& res, int status, const std::string& body) {
    res.status = status;
    res.set_content(body, "application/json");
  };
  // Infer paths.
  server_->Post("/infer", [this](const httplib::Request& req, httplib::Response& res) {
    serve(protocol::http_json, &reference_server::parse_http_json, req, res);
  });
  server_->Post(R"(/v2/models/([^/]+)(?:/versions/([^/]+))?/infer)",
                [this](const httplib::Request& req, httplib::Response& res) {
                  serve(protocol::kserve, &reference_server::parse_kserve, req, res);
                });
  server_->Post("/v1/embeddings", [this](const httplib::Request& req, httplib::Response& res) {
    serve(protocol::openai, &reference_server::parse_embeddings, req, res);
  });
  server_->Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    serve(protocol::openai, &reference_server::parse_chat, req, res);
  });
  // KServe health and metadata.
  server_->Get("/v2", [json](const httplib::Request&, httplib::Response& res) {
    json(res, 200, R"({"name":"sinfer-reference","version":"1","extensions":[]})");
  });
  server_->Get("/v2/health/live",
               [json](const httplib::Request&, httplib::Response& res) { json(res, 200, R"({"live":true})"); });
  server_->Get("/v2/health/ready", [this, json](const httplib::Request&, httplib::Response& res) {
    bool unready = take_unready();
    json(res, unready ? 503 : 200, unready ? R"({"ready":false})" : R"({"ready":true})");
  });
  auto model_of = [this, json](const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches.size() > 1 ? req.matches[1].str() : "";
    std::string version = req.matches.size() > 2 ? req.matches[2].str() : "";
    if (known_model(name, version))
      return true;
    json(res, 404,
         error_body("Request for unknown model: '" + name + "'" + (version.empty() ? "" : " version " + version)
                    + " is not found"));
    return false;
  };
  server_->Get(R"(/v2/models/([^/]+)(?:/versions/([^/]+))?/ready)",
               [this, json, model_of](const httplib::Request& req, httplib::Response& res) {
                 if (!model_of(req, res))
                   return;
                 bool unready = take_unready();
                 json(res, unready ? 503 : 200,
                      "{\"name\":" + json_quote(opts_.served_name) + ",\"ready\":" + (unready ? "false" : "true") + "}");
               });
  server_->Get(R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)",
               [this, json, model_of](const httplib::Request& req, httplib::Response& res) {
                 if (model_of(req, res))
                   json(res, 200, model_metadata());
               });
  // vLLM's liveness probe (readiness: it is not served before it is ready).
  server_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    res.status = take_unready() ? 503 : 200;
  });
  // OpenAI model list.
  server_->Get("/v1/models", [this, json](const httplib::Request& req, httplib::Response& res) {
    if (!key_ok(req)) {
      auto r = error_reply(protocol::openai, 401, "missing or wrong API key");
      json(res, r.status, r.body);
      return;
    }
    json(res, 200,
         "{\"object\":\"list\",\"data\":[{\"id\":" + json_quote(opts_.served_name)
           + ",\"object\":\"model\",\"created\":" + std::to_string(started_unix_) + ",\"owned_by\":\"sinfer\"}]}");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Post("/control", [this, json](const httplib::Request& req, httplib::Response& res) {
    simdjson::dom::parser parser;
    simdjson::dom::object obj;
    if (parser.parse(req.body).get(obj)) {
      json(res, 400, error_body("expected a JSON object"));
      return;
    }
    fault_plan plan;
    std::string_view kind = "none";
    simdjson::dom::element e;
    if (!obj["fault"].get(e) && e.get(kind)) {
      json(res, 400, error_body("\"fault\" must be a string"));
      return;
    }
    static constexpr std::pair<std::string_view, fault_plan::kind_t> kinds[] = {
      {"none", fault_plan::none},   {"status", fault_plan::status},   {"slow", fault_plan::slow},
      {"hang", fault_plan::hang},   {"reset", fault_plan::reset},     {"garbage", fault_plan::garbage},
      {"unready", fault_plan::unready}};
    bool known = false;
    for (auto& [k, v] : kinds)
      if (k == kind) {
        plan.kind = v;
        known = true;
      }
    if (!known) {
      json(res, 400,
           error_body("unknown fault \"" + std::string{kind}
                      + "\" (known: none, status, slow, hang, reset, garbage, unready)"));
      return;
    }
    std::string_view shape;
    bool has_shape = !obj["error-shape"].get(e);
    if (has_shape) {
      if (e.get(shape) || (shape != "openai" && shape != "legacy")) {
        json(res, 400, error_body("\"error-shape\" must be \"openai\" or \"legacy\", got " + simdjson::minify(e)));
        return;
      }
      plan.error_shape = shape == "legacy" ? fault_plan::legacy_shape : fault_plan::openai_shape;
    }
    int64_t v = 0;
    double d = 0;
    if (!obj["status"].get(v))
      plan.status_code = static_cast<int>(v);
    if (!obj["retry-after"].get(v))
      plan.retry_after_s = static_cast<int>(v);
    if (!obj["slowdown"].get(d))
      plan.slowdown = d;
    if (!obj["hang-ms"].get(v))
      plan.hang_for = std::chrono::milliseconds{v};
    if (!obj["count"].get(v))
      plan.count = v;
    if (has_shape && obj.size() == 1) {
      std::lock_guard<std::mutex> guard{mutex_};
      legacy_errors_ = plan.error_shape == fault_plan::legacy_shape;
    } else {
      inject(plan);
    }
    json(res, 200, "{\"ok\":true}");
  });
  server_->Get("/stats", [this, json](const httplib::Request&, httplib::Response& res) {
    auto s = stats();
    auto field = [](const char* name, uint64_t v) { return std::string{"\""} + name + "\":" + std::to_string(v); };
    json(res, 200,
         "{" + field("requests", s.requests) + "," + field("records", s.records) + ","
           + field("in_flight", s.in_flight) + "," + field("waiting", s.waiting) + ","
           + field("rejected", s.rejected) + "," + field("keyed_requests", s.keyed_requests) + ","
           + field("repeated_keys", s.repeated_keys) + "," + field("distinct_inputs", s.distinct_inputs) + ","
           + field("repeated_inputs", s.repeated_inputs) + "," + field("records_in_flight", s.records_in_flight)
           + "}");
  });
  if (opts_.port == 0)
    port_ = server_->bind_to_any_port(opts_.host);
  else
    port_ = server_->bind_to_port(opts_.host, opts_.port) ? opts_.port : -1;
  if (port_ < 0) {
    error = "cannot listen on " + opts_.host + ":" + std::to_string(opts_.port);
    return -1;
  }
  deepen_backlog(port_);
  thread_ = std::thread{[this] { server_->listen_after_bind(); }};
  return port_;
}

bool reference_server::run(std::string& error) {
  if (start(error) < 0)
    return false;
  thread_.join();
  return true;
}

void reference_server::stop() {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    stopping_ = true;
  }
  stopped_.notify_all();
  slot_free_.notify_all();
  if (server_)
    server_->stop();
  if (thread_.joinable())
    thread_.join();
}

} // namespace sinfer
