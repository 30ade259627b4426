#include "sim/reference_server.hpp"

#include <httplib.h>
#include <simdjson.h>

#include "runtime/json_text.hpp"

namespace sinfer {

reference_server::reference_server(reference_server_options options) : opts_(std::move(options)) {
  auto models = model_registry::with_builtins();
  std::string err;
  if (auto* f = models.find(opts_.model))
    model_ = (*f)("{}", err);
  if (opts_.slots == 0)
    opts_.slots = 1;
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
  fault_ = plan;
}

fault_plan reference_server::take_fault() {
  std::lock_guard<std::mutex> guard{mutex_};
  auto f = fault_;
  if (fault_.kind != fault_plan::none && fault_.count > 0 && --fault_.count == 0)
    fault_ = fault_plan{};
  return f;
}

namespace {

std::string error_body(const std::string& msg) {
  std::string out = "{\"error\":";
  append_json_string(out, msg);
  out += "}";
  return out;
}

} // namespace

void reference_server::handle_infer(const std::string& body, int& status, std::string& out, bool& reset,
                                    int& retry_after) {
  ++requests_;
  auto fault = take_fault();
  retry_after = fault.kind == fault_plan::status ? fault.retry_after_s : 0;
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  simdjson::dom::array inputs;
  if (parser.parse(body).get(obj) || obj["inputs"].get(inputs)) {
    status = 400;
    out = error_body("expected {\"inputs\": [...]}");
    return;
  }
  call_request req;
  req.names = model_.inputs;
  for (auto row : inputs) {
    simdjson::dom::object r;
    if (row.get(r)) {
      status = 400;
      out = error_body("each input must be an object");
      return;
    }
    for (auto& name : req.names) {
      simdjson::dom::element v;
      if (r[name].get(v)) {
        status = 400;
        out = error_body("an input has no \"" + name + "\"");
        return;
      }
      req.values.push_back(simdjson::minify(v));
    }
    ++req.rows;
  }
  records_ += req.rows;
  // Service time: wait for a slot, hold it for base + b * per_record.
  {
    std::unique_lock<std::mutex> lock{mutex_};
    slot_free_.wait(lock, [&] { return stopping_ || busy_ < opts_.slots; });
    ++busy_;
  }
  ++in_flight_;
  auto service = opts_.base + opts_.per_record * req.rows;
  if (fault.kind == fault_plan::slow)
    service = std::chrono::duration_cast<std::chrono::microseconds>(service * fault.slowdown);
  if (fault.kind == fault_plan::hang)
    service += std::chrono::duration_cast<std::chrono::microseconds>(fault.hang_for);
  if (service.count() > 0) {
    // Sleep for the service time, but not past a stop.
    std::unique_lock<std::mutex> lock{mutex_};
    stopped_.wait_for(lock, service, [&] { return stopping_; });
  }
  {
    std::lock_guard<std::mutex> lock{mutex_};
    --busy_;
  }
  --in_flight_;
  slot_free_.notify_one();
  switch (fault.kind) {
    case fault_plan::status:
      status = fault.status_code;
      out = error_body("injected fault");
      return;
    case fault_plan::reset: reset = true; return;
    case fault_plan::garbage:
      status = 200;
      out = "<html>502 Bad Gateway</html>";
      return;
    default: break;
  }
  call_result res;
  res.names = model_.outputs;
  model_.compute(req, res);
  status = 200;
  out = "{\"outputs\":[";
  for (uint32_t row = 0; row < req.rows; ++row) {
    if (row > 0)
      out += ",";
    if (!res.row_errors.empty() && !res.row_errors[row].ok()) {
      out += error_body(res.row_errors[row].message);
      continue;
    }
    out += "{";
    for (size_t k = 0; k < res.names.size(); ++k) {
      if (k > 0)
        out += ",";
      append_json_string(out, res.names[k]);
      out += ":";
      out += res.values[row * res.names.size() + k];
    }
    out += "}";
  }
  out += "]}";
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
  server_->new_task_queue = [] { return new httplib::ThreadPool(16); };
  server_->set_tcp_nodelay(true);
  server_->Post("/infer", [this](const httplib::Request& req, httplib::Response& res) {
    if (!opts_.api_key.empty() && req.get_header_value("Authorization") != "Bearer " + opts_.api_key) {
      ++requests_;
      res.status = 401;
      res.set_content(error_body("missing or wrong API key"), "application/json");
      return;
    }
    int status = 500;
    std::string out;
    bool reset = false;
    int retry_after = 0;
    handle_infer(req.body, status, out, reset, retry_after);
    if (reset) {
      // Promise a body, send none, drop the connection: the client sees
      // the connection end mid-answer.
      res.set_content_provider(
        64, "application/json", [](size_t, size_t, httplib::DataSink&) { return false; });
      return;
    }
    res.status = status;
    if ((status == 429 || status == 503) && retry_after > 0)
      res.set_header("Retry-After", std::to_string(retry_after));
    res.set_content(out, "application/json");
  });
  server_->Post("/control", [this](const httplib::Request& req, httplib::Response& res) {
    simdjson::dom::parser parser;
    simdjson::dom::object obj;
    if (parser.parse(req.body).get(obj)) {
      res.status = 400;
      res.set_content(error_body("expected a JSON object"), "application/json");
      return;
    }
    fault_plan plan;
    std::string_view kind = "none";
    if (obj["fault"].get(kind))
      kind = "none";
    int64_t v = 0;
    double d = 0;
    if (kind == "status")
      plan.kind = fault_plan::status;
    else if (kind == "slow")
      plan.kind = fault_plan::slow;
    else if (kind == "hang")
      plan.kind = fault_plan::hang;
    else if (kind == "reset")
      plan.kind = fault_plan::reset;
    else if (kind == "garbage")
      plan.kind = fault_plan::garbage;
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
    inject(plan);
    res.set_content("{\"ok\":true}", "application/json");
  });
  server_->Get("/stats", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"requests\":" + std::to_string(requests_.load()) + ",\"records\":"
                      + std::to_string(records_.load()) + ",\"in_flight\":" + std::to_string(in_flight_.load()) + "}",
                    "application/json");
  });
  if (opts_.port == 0)
    port_ = server_->bind_to_any_port(opts_.host);
  else
    port_ = server_->bind_to_port(opts_.host, opts_.port) ? opts_.port : -1;
  if (port_ < 0) {
    error = "cannot listen on " + opts_.host + ":" + std::to_string(opts_.port);
    return -1;
  }
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
