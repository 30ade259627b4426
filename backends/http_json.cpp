#include "backends/http_json.hpp"

#include <ctime>
#include <thread>

#include <httplib.h>
#include <simdjson.h>

#include "policies/http_status.hpp"
#include "runtime/json_text.hpp"

namespace sinfer {

http_json_backend::http_json_backend(http_json_settings settings)
  : cfg_(std::move(settings)), pool_(std::make_shared<pool>()) {
  pool_->cfg = cfg_;
  auto n = std::max<uint32_t>(1, cfg_.connections);
  for (uint32_t i = 0; i < n; ++i)
    std::thread{work, pool_}.detach();
}

http_json_backend::~http_json_backend() {
  std::deque<job> left;
  {
    std::lock_guard<std::mutex> guard{pool_->mutex};
    pool_->stopping = true;
    left.swap(pool_->queue);
  }
  pool_->ready.notify_all();
  for (auto& j : left)
    j.done(decode(cfg_, j.rows, 0, {}, {}, "the endpoint stopped before the call was sent"));
}

void http_json_backend::infer(const call_request& req, completion done) {
  job j{encode(cfg_, req), req.rows, std::move(done), std::chrono::steady_clock::now() + cfg_.timeout};
  {
    std::lock_guard<std::mutex> guard{pool_->mutex};
    pool_->queue.push_back(std::move(j));
  }
  pool_->ready.notify_one();
}

std::string http_json_backend::scrub(const http_json_settings& cfg, std::string text) {
  for (auto& h : cfg.headers) {
    for (auto secret : {std::string_view{h.second}, std::string_view{h.second}.substr(
                                                      h.second.rfind("Bearer ", 0) == 0 ? 7 : h.second.size())}) {
      if (secret.size() < 4)
        continue;
      for (auto i = text.find(secret); i != std::string::npos; i = text.find(secret, i))
        text.replace(i, secret.size(), "***");
    }
  }
  if (text.size() > 300)
    text = text.substr(0, 297) + "...";
  return text;
}

std::string http_json_backend::encode(const http_json_settings& cfg, const call_request& req) {
  std::string body = "{";
  append_json_string(body, cfg.inputs_field);
  body += ":[";
  for (uint32_t row = 0; row < req.rows; ++row) {
    if (row > 0)
      body += ",";
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
  body += "]}";
  return body;
}

call_result http_json_backend::decode(const http_json_settings& cfg, uint32_t rows, int status,
                                      const std::string& body, const std::string& retry_after,
                                      const std::string& transport_error) {
  call_result res;
  res.names = cfg.outputs;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  bool json = status != 0 && parser.parse(body).get(root) == simdjson::SUCCESS;
  if (status < 200 || status >= 300) {
    std::string msg = transport_error;
    std::string_view text;
    if (json && root["error"].get(text) == simdjson::SUCCESS)
      msg = std::string{text};
    // A server may echo what it was sent: never pass a key on.
    res.error = classify_http(status, retry_after, static_cast<int64_t>(std::time(nullptr)), scrub(cfg, msg));
    return res;
  }
  auto bad = [&](const std::string& why) {
    res.error = call_error{error_class::fatal_endpoint, why, std::chrono::milliseconds{0}};
    res.values.clear();
    res.row_errors.clear();
    return res;
  };
  simdjson::dom::array outputs;
  if (!json)
    return bad("the answer is not JSON");
  if (root[cfg.outputs_field].get(outputs))
    return bad("the answer has no \"" + cfg.outputs_field + "\" array");
  if (outputs.size() != rows)
    return bad("the answer has " + std::to_string(outputs.size()) + " results for " + std::to_string(rows)
               + " records");
  res.values.reserve(static_cast<size_t>(rows) * cfg.outputs.size());
  uint32_t row = 0;
  for (auto item : outputs) {
    simdjson::dom::object obj;
    std::string_view err;
    if (item.get(obj)) {
      return bad("result " + std::to_string(row) + " is not an object");
    }
    if (obj["error"].get(err) == simdjson::SUCCESS) {
      if (res.row_errors.empty())
        res.row_errors.resize(rows);
      res.row_errors[row] = call_error{error_class::fatal_record, std::string{err}, std::chrono::milliseconds{0}};
      for (size_t k = 0; k < cfg.outputs.size(); ++k)
        res.values.emplace_back();
      ++row;
      continue;
    }
    for (auto& name : cfg.outputs) {
      simdjson::dom::element v;
      if (obj[name].get(v))
        return bad("result " + std::to_string(row) + " has no \"" + name + "\"");
      res.values.push_back(simdjson::minify(v));
    }
    ++row;
  }
  return res;
}

void http_json_backend::work(std::shared_ptr<pool> p) {
  auto& cfg = p->cfg;
  httplib::Client client{cfg.url};
  client.set_keep_alive(true);
  // Headers and body go out in two writes: without this, Nagle and delayed
  // ACKs add ~40 ms to every call.
  client.set_tcp_nodelay(true);
  client.set_connection_timeout(cfg.timeout);
  client.set_read_timeout(cfg.timeout);
  client.set_write_timeout(cfg.timeout);
  if (!cfg.ca_file.empty())
    client.set_ca_cert_path(cfg.ca_file.c_str());
  httplib::Headers headers;
  for (auto& h : cfg.headers)
    headers.emplace(h.first, h.second);
  for (;;) {
    job j;
    {
      std::unique_lock<std::mutex> lock{p->mutex};
      p->ready.wait(lock, [&] { return p->stopping || !p->queue.empty(); });
      if (p->stopping)
        return;
      j = std::move(p->queue.front());
      p->queue.pop_front();
    }
    if (std::chrono::steady_clock::now() >= j.deadline) {
      // The endpoint gave up on this call while it waited here: do not send
      // it (the server would do the work twice once the record retries).
      j.done(decode(cfg, j.rows, 0, {}, {}, "not sent: timeout.attempt passed while it waited for a connection"));
      continue;
    }
    auto sent = std::chrono::steady_clock::now();
    auto answer = client.Post(cfg.path.c_str(), headers, j.body, "application/json");
    if (!answer) {
      auto why = httplib::to_string(answer.error());
      auto res = decode(cfg, j.rows, 0, {}, {}, "POST " + cfg.url + cfg.path + ": " + why);
      // A read error after (nearly) the whole timeout is the socket timeout,
      // not a reset: tell the limiter.
      res.error.timed_out = answer.error() == httplib::Error::ConnectionTimeout
                            || (answer.error() == httplib::Error::Read
                                && std::chrono::steady_clock::now() - sent >= cfg.timeout * 9 / 10);
      j.done(std::move(res));
      continue;
    }
    j.done(decode(cfg, j.rows, answer->status, answer->body, answer->get_header_value("Retry-After"), {}));
  }
}

} // namespace sinfer
