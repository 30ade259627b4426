#include "backends/http_backend.hpp"

#include <thread>

#include <httplib.h>

namespace sinfer {

namespace {

/// `text` with every header value of `cfg` (with or without its "Bearer "
/// prefix) replaced by "***"; whether there was one.
bool replace_secrets(const http_connection_settings& cfg, std::string& text) {
  bool found = false;
  for (auto& h : cfg.headers) {
    std::string_view value{h.second};
    for (auto secret : {value, value.substr(value.rfind("Bearer ", 0) == 0 ? 7 : value.size())}) {
      if (secret.size() < 4)
        continue;
      for (auto i = text.find(secret); i != std::string::npos; i = text.find(secret, i)) {
        text.replace(i, secret.size(), "***");
        found = true;
      }
    }
  }
  return found;
}

} // namespace

std::string scrub_secrets(const http_connection_settings& cfg, std::string text) {
  replace_secrets(cfg, text);
  if (text.size() > 300) {
    // Cut at a character boundary (never inside a UTF-8 sequence: the text
    // ends up in JSON lines).
    size_t cut = 297;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
      --cut;
    text = text.substr(0, cut) + "...";
  }
  return text;
}

namespace {

void configure(httplib::Client& client, const http_connection_settings& cfg) {
  client.set_keep_alive(true);
  // Headers and body go out in two writes: without this, Nagle and delayed
  // ACKs add ~40 ms to every call.
  client.set_tcp_nodelay(true);
  client.set_connection_timeout(cfg.timeout);
  client.set_read_timeout(cfg.timeout);
  client.set_write_timeout(cfg.timeout);
  if (!cfg.ca_file.empty())
    client.set_ca_cert_path(cfg.ca_file.c_str());
}

httplib::Headers headers_of(const http_connection_settings& cfg) {
  httplib::Headers headers;
  for (auto& h : cfg.headers)
    headers.emplace(h.first, h.second);
  return headers;
}

/// `base`, or a copy in `scratch` with "Idempotency-Key: key" when `key` is
/// not empty (no copy for jobs without checkpoints).
const httplib::Headers& with_idempotency_key(const httplib::Headers& base, const std::string& key,
                                             httplib::Headers& scratch) {
  if (key.empty())
    return base;
  scratch = base;
  scratch.emplace("Idempotency-Key", key);
  return scratch;
}

http_answer answer_of(const http_connection_settings& cfg, const httplib::Result& r, const char* method,
                      const std::string& path, std::chrono::steady_clock::time_point sent) {
  http_answer a;
  if (!r) {
    a.transport_error = std::string{method} + " " + cfg.url + path + ": " + httplib::to_string(r.error());
    if (r.error() == httplib::Error::Read) // a reset, a close mid-answer (a body shorter than its Content-Length), a timeout
      a.transport_error += " (the connection failed or closed before the whole answer was read)";
    // A read error after (nearly) the whole timeout is the socket timeout,
    // not a reset: tell the limiter.
    a.timed_out = r.error() == httplib::Error::ConnectionTimeout
                  || (r.error() == httplib::Error::Read
                      && std::chrono::steady_clock::now() - sent >= cfg.timeout * 9 / 10);
    return a;
  }
  a.status = r->status;
  a.body = r->body;
  a.retry_after = r->get_header_value("Retry-After");
  a.content_type = r->get_header_value("Content-Type");
  return a;
}

/// `proto.decode` of `answer`. A 2xx it cannot read is decoded again with
/// the body scrubbed of secrets when it holds one: the reason may quote the
/// body (an excerpt that could end inside a key, where scrubbing the
/// message afterwards would not find it whole). Only failed answers pay.
call_result decode_answer(const http_connection_settings& cfg, const http_protocol& proto, uint32_t rows,
                          http_answer& answer) {
  auto res = proto.decode(rows, answer);
  if (!res.error.ok() && answer.status >= 200 && answer.status < 300 && replace_secrets(cfg, answer.body))
    res = proto.decode(rows, answer);
  return res;
}

/// Sends each row of `input` alone (after the server refused the batch as
/// a bad request) and joins the answers.
call_result send_rows_alone(httplib::Client& client, const httplib::Headers& headers,
                            const http_connection_settings& cfg, const http_protocol& proto,
                            const call_request& input, const std::string& batch_key) {
  // The server refused the batch as bad: find the bad records by sending
  // each alone, so they fail and the others are scored.
  call_result res;
  res.names = proto.output_names();
  auto cols = res.names.size();
  res.values.resize(static_cast<size_t>(input.rows) * cols);
  res.row_errors.resize(input.rows);
  httplib::Headers scratch;
  for (uint32_t row = 0; row < input.rows; ++row) {
    call_request one;
    one.names = input.names;
    one.rows = 1;
    for (size_t c = 0; c < input.names.size(); ++c)
      one.values.push_back(input.at(row, c));
    auto request = proto.encode(one);
    call_result r;
    if (request.rows == 0) {
      r.error = request.rejected.at(0);
    } else {
      auto sent = std::chrono::steady_clock::now();
      auto answer = answer_of(cfg,
                              client.Post(proto.path().c_str(),
                                          with_idempotency_key(headers, row_idempotency_key(batch_key, row), scratch),
                                          request.body, "application/json"),
                              "POST", proto.path(), sent);
      r = decode_answer(cfg, proto, 1, answer);
    }
    res.prompt_tokens += r.prompt_tokens;
    res.completion_tokens += r.completion_tokens;
    if (!r.error.ok())
      res.row_errors[row] = r.error;
    else if (!r.row_errors.empty() && !r.row_errors[0].ok())
      res.row_errors[row] = r.row_errors[0];
    else
      for (size_t c = 0; c < cols && c < r.values.size(); ++c)
        res.values[row * cols + c] = std::move(r.values[c]);
  }
  return res;
}

} // namespace

http_answer http_get(const http_connection_settings& cfg, const std::string& path) {
  httplib::Client client{cfg.url};
  configure(client, cfg);
  client.set_keep_alive(false);
  auto sent = std::chrono::steady_clock::now();
  auto r = client.Get(path.c_str(), headers_of(cfg));
  auto a = answer_of(cfg, r, "GET", path, sent);
  a.transport_error = scrub_secrets(cfg, a.transport_error);
  return a;
}

http_backend::http_backend(http_connection_settings settings, std::shared_ptr<const http_protocol> protocol)
  : protocol_(std::move(protocol)), pool_(std::make_shared<pool>()) {
  pool_->cfg = std::move(settings);
  pool_->protocol = protocol_;
  auto n = std::clamp<uint32_t>(pool_->cfg.connections, 1, max_connections);
  for (uint32_t i = 0; i < n; ++i)
    std::thread{work, pool_}.detach();
}

namespace {

/// The pool whose `done` callback this thread is running, if any.
thread_local const void* answering_for = nullptr;

} // namespace

http_backend::~http_backend() {
  std::deque<job> left;
  {
    std::lock_guard<std::mutex> guard{pool_->mutex};
    pool_->stopping = true;
    left.swap(pool_->queue);
  }
  pool_->ready.notify_all();
  {
    // No answer may reach the endpoint after this: wait for callbacks
    // running now (each is one message send), unless this destructor runs
    // inside one of them.
    std::unique_lock<std::mutex> lock{pool_->answer_mutex};
    pool_->closed = true;
    if (answering_for != pool_.get())
      pool_->answered.wait(lock, [&] { return pool_->answering == 0; });
  }
  http_answer stopped;
  stopped.transport_error = "the endpoint stopped before the call was sent";
  for (auto& j : left)
    j.done(http_backend::merge_rejected(j.request, classify_answer(protocol_->output_names(), stopped), j.rows));
}

void http_backend::infer(const call_request& req, completion done) {
  job j{protocol_->encode(req), req.rows, std::move(done),
        std::chrono::steady_clock::now() + pool_->cfg.timeout, {}, req.idempotency_key};
  if (j.request.rows == 0) {
    // Nothing the server could be asked: every row was rejected.
    finish(*pool_, j, call_result{});
    return;
  }
  if (j.request.rows > 1)
    j.input = req; // to send its rows one by one if the server refuses the batch
  {
    std::lock_guard<std::mutex> guard{pool_->mutex};
    pool_->queue.push_back(std::move(j));
  }
  pool_->ready.notify_one();
}

call_result http_backend::merge_rejected(const http_request& sent, call_result answer, uint32_t rows) {
  // A whole-call failure stays one (the endpoint pauses on a 429, breakers
  // count a 5xx); the rows rejected here fail the same way, and alone on
  // their retry.
  if (sent.rejected.empty() || sent.rows == rows || !answer.error.ok())
    return answer;
  call_result res;
  res.names = answer.names;
  res.prompt_tokens = answer.prompt_tokens;
  res.completion_tokens = answer.completion_tokens;
  auto cols = res.names.size();
  res.values.resize(static_cast<size_t>(rows) * cols);
  res.row_errors.resize(rows);
  uint32_t k = 0; // row of the answer
  for (uint32_t row = 0; row < rows; ++row) {
    if (row < sent.rejected.size() && !sent.rejected[row].ok()) {
      res.row_errors[row] = sent.rejected[row];
      continue;
    }
    if (!answer.row_errors.empty() && !answer.row_errors[k].ok())
      res.row_errors[row] = answer.row_errors[k];
    else
      for (size_t c = 0; c < cols; ++c)
        res.values[row * cols + c] = std::move(answer.values[k * cols + c]);
    ++k;
  }
  return res;
}

void http_backend::finish(const pool& p, job& j, call_result res) {
  if (res.names.empty())
    res.names = p.protocol->output_names();
  res = merge_rejected(j.request, std::move(res), j.rows);
  // A server may echo what it was sent: never pass a key on.
  res.error.message = scrub_secrets(p.cfg, std::move(res.error.message));
  for (auto& e : res.row_errors)
    if (!e.ok())
      e.message = scrub_secrets(p.cfg, std::move(e.message));
  auto& gate = const_cast<pool&>(p);
  {
    std::lock_guard<std::mutex> guard{gate.answer_mutex};
    if (gate.closed)
      return; // the endpoint is gone (and maybe its actor system)
    ++gate.answering;
  }
  answering_for = &p;
  j.done(std::move(res));
  answering_for = nullptr;
  {
    std::lock_guard<std::mutex> guard{gate.answer_mutex};
    --gate.answering;
  }
  gate.answered.notify_all();
}

void http_backend::work(std::shared_ptr<pool> p) {
  auto& cfg = p->cfg;
  auto& proto = *p->protocol;
  httplib::Client client{cfg.url};
  configure(client, cfg);
  auto headers = headers_of(cfg);
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
      http_answer late;
      late.transport_error = "not sent: timeout.attempt passed while it waited for a connection";
      finish(*p, j, classify_answer(proto.output_names(), late));
      continue;
    }
    auto sent = std::chrono::steady_clock::now();
    httplib::Headers scratch;
    auto r = client.Post(proto.path().c_str(), with_idempotency_key(headers, j.idempotency_key, scratch), j.request.body,
                         "application/json");
    auto answer = answer_of(cfg, r, "POST", proto.path(), sent);
    auto res = decode_answer(cfg, proto, j.request.rows, answer);
    if (res.error.cls == error_class::fatal_record && j.request.rows > 1 && j.input.rows > 1
        && j.request.rejected.empty())
      res = send_rows_alone(client, headers, cfg, proto, j.input, j.idempotency_key);
    finish(*p, j, std::move(res));
  }
}

} // namespace sinfer
