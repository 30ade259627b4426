// Every HTTP protocol (http-json, kserve-v2, openai embeddings and chat)
// against the reference server on loopback, in real time: the happy path and
// every way a call can fail. Each record must get exactly one outcome: a line
// in the output or in the dead-letter file.

#include <doctest/doctest.h>

#include <cstdlib>
#include <future>
#include <set>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <string>
#include <vector>

#include "backends/http_backend.hpp"
#include "backends/http_json.hpp"
#include "backends/kserve_v2.hpp"
#include "runtime/config_loader.hpp"
#include "runtime/job_builder.hpp"
#include "runtime/job_runner.hpp"
#include "sim/reference_server.hpp"
#include "tests/job_helpers.hpp"
#include "tests/test_util.hpp"
#include "tests/wire.hpp"

using namespace sinfer;
using namespace sinfer::test;
using std::chrono::milliseconds;

namespace {

const std::vector<wire> all_wires = {wire::http_json, wire::kserve_v2, wire::openai_embeddings, wire::openai_chat};

struct http_run {
  job_report report;
  std::vector<std::string> out, dead;
  /// Everything the run wrote: output, dead letters and log lines.
  std::string files;
  /// Records the endpoints counted as scored.
  uint64_t records_ok = 0;
};

/// A job of `records` generator records through one model at `url`
/// speaking `w` (the reference server's keyword classifier, hash embedder
/// or templated chat).
struct http_job {
  std::string url;
  uint64_t records = 20;
  milliseconds attempt_timeout{2000};
  uint32_t attempts = 3;
  std::string key, key_env, ca;
  wire protocol = wire::http_json;
};

http_run run_against(const http_job& j) {
  temp_dir dir;
  auto models = model_registry::with_builtins();
  auto backoff = quick_backoff(milliseconds{10}, milliseconds{50});
  endpoint_config ep;
  ep.url = j.url;
  ep.name = "ref";
  auto lenient = never_opens();
  // The reference server serves its model under the model's registry name.
  auto spec = model_spec{"m", j.protocol == wire::http_json ? "remote" : "keyword-classifier"};
  if (!j.key.empty())
    spec.api_key(j.key);
  if (!j.key_env.empty())
    spec.api_key_env(j.key_env);
  if (!j.ca.empty())
    spec.ca_file(j.ca);
  switch (j.protocol) {
    case wire::http_json:
    case wire::kserve_v2:
      spec.provider(j.protocol == wire::http_json ? "http-json" : "kserve-v2")
        .input("text", "text")
        .output("label", "sentiment")
        .output("score", "score");
      break;
    case wire::openai_embeddings:
      spec.provider("openai").openai_embeddings().input("input", "text").output("embedding", "embedding");
      break;
    case wire::openai_chat:
      spec.provider("openai")
        .openai_chat("${text}", "Summarise the review.", 0.0, 16)
        .output("content", "summary")
        .output("completion_tokens", "tokens");
      break;
  }
  auto cfg = job_builder{"http"}
               .parallelism(2)
               .source_generator(j.records, R"({"id":"r${i}","text":"${pick:great product|terrible service|it was ok}"})")
               .model(spec.endpoint(ep)
                        .concurrency(4)
                        .batch({16, milliseconds{0}, 0})
                        .timeout(j.attempt_timeout, std::chrono::seconds{30})
                        .retry(j.attempts, backoff)
                        .retry_budget({100.0, 100})
                        .subtask_breaker(lenient)
                        .job_breaker(lenient))
               .stage("m")
               .sink_jsonl(dir.file("out.jsonl"))
               .dead_letter(dir.file("dead.jsonl"))
               .build(models);
  run_options opts;
  opts.threads = 2;
  opts.counters = std::make_shared<job_counters>(cfg.stages.size());
  http_run r;
  {
    log_capture logs;
    r.report = run_job(cfg, models, opts);
    r.files = logs.text();
  }
  for (auto& kv : opts.counters->endpoints())
    r.records_ok += kv.second->records_ok.load();
  r.out = read_lines(dir.file("out.jsonl"));
  r.dead = read_lines(dir.file("dead.jsonl"));
  r.files += read_file(dir.file("out.jsonl")) + read_file(dir.file("dead.jsonl"));
  return r;
}

http_run run_against(const std::string& url, uint64_t records, milliseconds attempt_timeout = milliseconds{2000},
                     uint32_t attempts = 3, const std::string& key = {}, const std::string& key_env = {},
                     const std::string& ca = {}, wire protocol = wire::http_json) {
  return run_against(http_job{url, records, attempt_timeout, attempts, key, key_env, ca, protocol});
}

/// The output a record of `text` must get from `w`.
void check_scored(wire w, simdjson::dom::object obj) {
  auto text = str_field(obj, "text");
  switch (w) {
    case wire::http_json:
    case wire::kserve_v2:
      CHECK(str_field(obj, "sentiment")
            == (text == "great product" ? "positive" : text == "terrible service" ? "negative" : "neutral"));
      break;
    case wire::openai_embeddings: {
      simdjson::dom::array emb;
      REQUIRE(obj["embedding"].get(emb) == simdjson::SUCCESS);
      CHECK(emb.size() == 8);
      break;
    }
    case wire::openai_chat:
      CHECK(str_field(obj, "summary").rfind("Summary (", 0) == 0);
      CHECK(int_field(obj, "tokens") > 0);
      break;
  }
}

/// Every record exactly once across output and dead letters.
void check_one_outcome_each(const http_run& r, uint64_t records) {
  REQUIRE(r.report.ok);
  CHECK(r.out.size() + r.dead.size() == records);
  std::set<std::string> ids;
  simdjson::dom::parser p;
  for (auto& line : r.out)
    ids.insert(str_field(parse_object(p, line), "id"));
  for (auto& line : r.dead) {
    simdjson::dom::parser q;
    auto rec = str_field(parse_object(q, line), "record");
    ids.insert(str_field(parse_object(p, rec), "id"));
  }
  CHECK(ids.size() == records);
}

} // namespace

TEST_CASE("every protocol: records go out in batches and come back scored") {
  for (auto w : all_wires) {
    CAPTURE(name_of(w));
    reference_server_options o;
    o.slots = 4;
    o.base = std::chrono::microseconds{2000};
    o.per_record = std::chrono::microseconds{100};
    reference_server server{o};
    std::string err;
    REQUIRE(server.start(err) > 0);
    auto r = run_against(http_job{server.url(), 300, milliseconds{2000}, 3, {}, {}, {}, w});
    check_one_outcome_each(r, 300);
    CHECK(r.out.size() == 300);
    simdjson::dom::parser p;
    for (auto& line : r.out)
      check_scored(w, parse_object(p, line));
    CHECK(server.records() == 300);
    if (w == wire::openai_chat)
      CHECK(server.requests() == 300); // one record per request
    else
      CHECK(server.requests() < 300); // batched
  }
}

TEST_CASE("every protocol: every failure class gives each record exactly one outcome") {
  struct row {
    const char* name;
    fault_plan fault;
    uint64_t dead; // records expected in the dead-letter file
    const char* reason;
  };
  auto plan = [](fault_plan::kind_t kind, int status, int64_t count) {
    fault_plan f;
    f.kind = kind;
    f.status_code = status;
    f.count = count;
    return f;
  };
  auto limited = plan(fault_plan::status, 429, 2);
  limited.retry_after_s = 1;
  auto hang = plan(fault_plan::hang, 0, 1);
  hang.hang_for = milliseconds{1500};
  std::vector<row> rows = {
    {"500 until the attempts run out", plan(fault_plan::status, 500, -1), 40, "HTTP 500: injected fault (after 2 attempts)"},
    {"400: fatal for the record, no retry", plan(fault_plan::status, 400, -1), 40, "fatal-record: HTTP 400"},
    {"401: fatal for the endpoint", plan(fault_plan::status, 401, -1), 40, "fatal-endpoint: HTTP 401"},
    // A batch refused as a bad request is sent again record by record: only
    // records the server refuses alone fail (here none: the fault is over).
    {"one 400 on a batch: its records go alone", plan(fault_plan::status, 400, 1), 0, "fatal-record: HTTP 400"},
    {"two 503s, then fine", plan(fault_plan::status, 503, 2), 0, ""},
    {"two 429s with Retry-After, then fine", limited, 0, ""},
    {"two garbage bodies, then fine", plan(fault_plan::garbage, 0, 2), 0, ""},
    {"two connection resets, then fine", plan(fault_plan::reset, 0, 2), 0, ""},
    {"one call hangs past timeout.attempt", hang, 0, ""},
  };
  for (auto w : all_wires)
  for (auto& r : rows) {
    CAPTURE(name_of(w));
    CAPTURE(r.name);
    reference_server_options o;
    o.slots = 4;
    reference_server server{o};
    std::string err;
    REQUIRE(server.start(err) > 0);
    server.inject(r.fault);
    auto started = std::chrono::steady_clock::now();
    // A fault that stops after n requests can hit one record in each of
    // them (its retry may land in the next faulty request): n + 1 attempts.
    uint32_t attempts = r.fault.count > 0 ? static_cast<uint32_t>(r.fault.count) + 1 : 2;
    auto run = run_against(http_job{server.url(), 40, milliseconds{300}, attempts, {}, {}, {}, w});
    MESSAGE(std::string{name_of(w)} << ", " << std::string(r.name) << ": "
                       << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started).count()
                       << " ms, " << server.requests() << " requests");
    check_one_outcome_each(run, 40);
    // A single-record call's 400 is that record's own: always so for chat,
    // and for the others when the first call happened to carry one record.
    // A batch's 400 must never fail more than one record.
    bool one_400 = r.fault.kind == fault_plan::status && r.fault.status_code == 400 && r.fault.count == 1;
    if (one_400 && w == wire::openai_chat)
      CHECK(run.dead.size() == 1);
    else if (one_400)
      CHECK(run.dead.size() <= 1);
    else
      CHECK(run.dead.size() == r.dead);
    for (auto& line : run.dead)
      CHECK_MESSAGE(line.find(r.reason) != std::string::npos, line);
    // The endpoint counts as scored exactly the records that were.
    CHECK(run.records_ok == run.out.size());
    simdjson::dom::parser p;
    for (auto& line : run.out)
      check_scored(w, parse_object(p, line));
  }
}

TEST_CASE("http-json: no server listening: records are dead-lettered with the reason") {
  // A port that was free a moment ago and that nobody listens on.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  auto r = run_against("http://127.0.0.1:" + std::to_string(port), 10, milliseconds{300}, 2);
  check_one_outcome_each(r, 10);
  CHECK(r.dead.size() == 10);
  for (auto& line : r.dead)
    CHECK_MESSAGE(line.find("retryable: no answer: POST http://127.0.0.1:") != std::string::npos, line);
}

TEST_CASE("http-json: decode turns answers into per-record results") {
  http_json_settings cfg;
  cfg.outputs = {"label"};
  http_json_protocol proto{cfg};
  auto decode = [&](int status, const std::string& body) {
    http_answer a;
    a.status = status;
    a.body = body;
    return proto.decode(2, a);
  };
  struct row {
    const char* name;
    int status;
    const char* body;
    error_class whole;
    int row_errors;
  };
  std::vector<row> rows = {
    {"two results", 200, R"({"outputs":[{"label":"a"},{"label":"b"}]})", error_class::none, 0},
    {"one row error", 200, R"({"outputs":[{"label":"a"},{"error":"too long"}]})", error_class::none, 1},
    {"wrong count", 200, R"({"outputs":[{"label":"a"}]})", error_class::fatal_endpoint, 0},
    {"missing output", 200, R"({"outputs":[{"label":"a"},{"x":1}]})", error_class::fatal_endpoint, 0},
    {"not JSON", 200, "<html>", error_class::fatal_endpoint, 0},
    {"no outputs field", 200, R"({"results":[]})", error_class::fatal_endpoint, 0},
    {"error body", 500, R"({"error":"model crashed"})", error_class::retryable, 0},
    {"truncated", 200, R"({"outputs":[{"label":"a"},)", error_class::fatal_endpoint, 0},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    auto res = decode(r.status, r.body);
    CHECK(res.error.cls == r.whole);
    int errors = 0;
    for (auto& e : res.row_errors)
      errors += e.ok() ? 0 : 1;
    CHECK(errors == r.row_errors);
    if (r.whole == error_class::none)
      CHECK(res.values.size() == 2);
  }
  auto res = decode(500, R"({"error":"model crashed"})");
  CHECK(res.error.message == "HTTP 500: model crashed");
}

TEST_CASE("every protocol: the API key goes in the header and nowhere else, logs included") {
  const std::string key = "sk-test-0123456789abcdef";
  reference_server_options o;
  o.api_key = key;
  reference_server server{o};
  std::string err;
  REQUIRE(server.start(err) > 0);
  ::setenv("SINFER_TEST_API_KEY", key.c_str(), 1);
  // Rows: how the key is given; whether the server accepts it.
  struct row {
    const char* name;
    std::string key, env;
    bool accepted;
  };
  std::vector<row> rows = {
    {"from the environment", "", "SINFER_TEST_API_KEY", true},
    {"in the config", key, "", true},
    {"a wrong key", "sk-wrong-9876543210", "", false},
  };
  for (auto w : all_wires)
  for (auto& r : rows) {
    CAPTURE(name_of(w));
    CAPTURE(r.name);
    auto run = run_against(http_job{server.url(), 20, milliseconds{2000}, 2, r.key, r.env, {}, w});
    bool checked_before_start = !r.accepted && (w == wire::openai_embeddings || w == wire::openai_chat);
    if (checked_before_start) {
      // The model list is read before the job starts: a refused key stops
      // it there, with the key path named.
      CHECK(!run.report.ok);
      CHECK(run.report.reason.find("models.m.api-key: the server at http://127.0.0.1:") != std::string::npos);
      CHECK(run.report.reason.find("refused the API key (HTTP 401)") != std::string::npos);
    } else {
      check_one_outcome_each(run, 20);
      CHECK(run.out.size() == (r.accepted ? 20u : 0u));
      if (!r.accepted)
        for (auto& line : run.dead)
          CHECK_MESSAGE(line.find("fatal-endpoint: HTTP 401: missing or wrong API key") != std::string::npos, line);
    }
    // Neither key appears in anything the run wrote or reported.
    for (auto& secret : {key, std::string{"sk-wrong-9876543210"}}) {
      CHECK(run.files.find(secret) == std::string::npos);
      CHECK(run.report.reason.find(secret) == std::string::npos);
    }
  }
}

TEST_CASE("every protocol over HTTPS: a self-signed server is trusted only with its CA file") {
  temp_dir dir;
  auto cert = dir.file("cert.pem"), key = dir.file("key.pem");
  auto cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
             "-keyout '" + key + "' -out '" + cert + "' >/dev/null 2>&1";
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "openssl is needed to make a test certificate (scripts/install-deps.sh)");
  reference_server_options o;
  o.cert_file = cert;
  o.key_file = key;
  reference_server server{o};
  std::string err;
  REQUIRE(server.start(err) > 0);
  REQUIRE(server.url().rfind("https://", 0) == 0);
  for (auto w : all_wires) {
    CAPTURE(name_of(w));
    // Trusting the server's certificate: every record scored.
    auto ok = run_against(http_job{server.url(), 30, milliseconds{2000}, 2, {}, {}, cert, w});
    check_one_outcome_each(ok, 30);
    CHECK(ok.out.size() == 30);
    // With the system CAs only, verification fails: no call is answered
    // (the check before start can only warn: it cannot reach the server).
    auto untrusted = run_against(http_job{server.url(), 10, milliseconds{2000}, 2, {}, {}, {}, w});
    check_one_outcome_each(untrusted, 10);
    CHECK(untrusted.dead.size() == 10);
    for (auto& line : untrusted.dead)
      CHECK_MESSAGE(line.find("no answer: POST https://127.0.0.1:") != std::string::npos, line);
  }
}

TEST_CASE("examples/remote_models.json: kserve-v2, http-json and openai stages run end to end") {
  reference_server_options eo, co;
  eo.model = "hash-embedder";
  co.model = "keyword-classifier";
  reference_server embedder{eo}, classifier{co};
  std::string err;
  REQUIRE(embedder.start(err) > 0);
  REQUIRE(classifier.start(err) > 0);
  auto text = read_file(std::string{SINFER_SOURCE_DIR} + "/examples/remote_models.json");
  auto swap = [&](const std::string& from, const std::string& to) {
    auto i = text.find(from);
    REQUIRE(i != std::string::npos);
    for (; i != std::string::npos; i = text.find(from, i))
      text.replace(i, from.size(), to);
  };
  temp_dir dir;
  swap("http://127.0.0.1:8000", embedder.url());
  swap("http://127.0.0.1:8001", classifier.url());
  swap("\"remote-out.jsonl\"", "\"" + dir.file("out.jsonl") + "\"");
  swap("\"remote-dead.jsonl\"", "\"" + dir.file("dead.jsonl") + "\"");
  swap("\"count\": 2000, \"rate\": 500", "\"count\": 200, \"rate\": 0");
  auto models = model_registry::with_builtins();
  auto loaded = parse_job_config(text, "remote_models.json", models);
  auto first_error = loaded.errors.empty() ? std::string{} : loaded.errors.front();
  REQUIRE_MESSAGE(loaded.config.has_value(), first_error);
  run_options opts;
  opts.threads = 2;
  opts.counters = std::make_shared<job_counters>(loaded.config->stages.size());
  auto report = run_job(*loaded.config, models, opts);
  REQUIRE_MESSAGE(report.ok, report.reason);
  auto out = read_lines(dir.file("out.jsonl"));
  CHECK(out.size() == 200);
  CHECK(read_lines(dir.file("dead.jsonl")).empty());
  simdjson::dom::parser p;
  for (auto& line : out) {
    auto obj = parse_object(p, line);
    simdjson::dom::array emb;
    CHECK(obj["embedding"].get(emb) == simdjson::SUCCESS);
    CHECK(!str_field(obj, "sentiment").empty());
    CHECK(str_field(obj, "summary").rfind("Summary (", 0) == 0);
  }
  // The chat stage's usage tokens are counted on its endpoint.
  uint64_t completion = 0;
  for (auto& kv : opts.counters->endpoints())
    if (kv.first.rfind("summary/", 0) == 0)
      completion += kv.second->completion_tokens.load();
  CHECK(completion >= 200);
}

TEST_CASE("Idempotency-Key: a batch's call keys combine into one deterministic, order-sensitive key") {
  CHECK(hex64(0) == "0000000000000000");
  CHECK(hex64(0x0123456789abcdefull) == "0123456789abcdef");
  CHECK(hex64(UINT64_MAX) == "ffffffffffffffff");
  // No record has a key: no header.
  CHECK(idempotency_key_of({}).empty());
  CHECK(idempotency_key_of({0}).empty());
  CHECK(idempotency_key_of({0, 0, 0}).empty());
  // A batch of one: exactly that record's key.
  CHECK(combine_call_keys({0xfeedull}) == 0xfeedull);
  CHECK(idempotency_key_of({0xfeedull}) == "000000000000feed");
  CHECK(idempotency_key_of({0x8000000000000001ull}) == "8000000000000001");
  // Several: FNV-1a over the keys' little-endian bytes, in batch order.
  const std::vector<uint64_t> ab = {0x1111ull, 0x2222ull};
  const std::vector<uint64_t> ba = {0x2222ull, 0x1111ull};
  CHECK(combine_call_keys(ab) == combine_call_keys(std::vector<uint64_t>{0x1111ull, 0x2222ull}));
  CHECK(idempotency_key_of(ab) == idempotency_key_of(ab));
  CHECK(idempotency_key_of(ab) != idempotency_key_of(ba));
  CHECK(idempotency_key_of(ab) != idempotency_key_of({0x1111ull}));
  CHECK(idempotency_key_of({0x1111ull, 0}) != idempotency_key_of({0x1111ull}));
  CHECK(idempotency_key_of({0x1111ull, 0x2222ull, 0x3333ull}) != idempotency_key_of(ab));
  // Pinned: FNV-1a 64 of the 16 bytes 01 00.. 00 02 00.. 00.
  uint64_t h = 14695981039346656037ull;
  for (int i = 0; i < 16; ++i) {
    h ^= i == 0 ? 1u : i == 8 ? 2u : 0u;
    h *= 1099511628211ull;
  }
  CHECK(combine_call_keys({1, 2}) == h);
  auto key = idempotency_key_of({1, 2});
  CHECK(key == hex64(h));
  CHECK(key.size() == 16);
  CHECK(key.find_first_not_of("0123456789abcdef") == std::string::npos);
  // A row sent alone gets a key of its own, derived from its batch's.
  CHECK(row_idempotency_key("", 3).empty());
  CHECK(row_idempotency_key(key, 0) == key + "-0");
  CHECK(row_idempotency_key(key, 1) != row_idempotency_key(key, 0));
}

namespace {

/// One call through `backend`, waited for.
call_result call_once(http_backend& backend, const call_request& req) {
  auto done = std::make_shared<std::promise<call_result>>();
  auto answer = done->get_future();
  backend.infer(req, [done](call_result r) { done->set_value(std::move(r)); });
  return answer.get();
}

} // namespace

TEST_CASE("Idempotency-Key: every protocol's POST carries the batch's key, the same when the batch is sent again") {
  reference_server server{reference_server_options{}};
  std::string err;
  REQUIRE_MESSAGE(server.start(err) > 0, err);
  http_connection_settings conn;
  conn.url = server.url();
  conn.connections = 1;
  http_json_settings hj;
  hj.inputs = {"text"};
  hj.outputs = {"label"};
  kserve_v2_settings ks;
  ks.model = "keyword-classifier";
  ks.inputs = {{"text", "BYTES", {1}}};
  ks.outputs = {"label"};
  std::vector<std::pair<const char*, std::shared_ptr<const http_protocol>>> protocols = {
    {"http-json", std::make_shared<http_json_protocol>(hj)},
    {"kserve-v2", std::make_shared<kserve_v2_protocol>(ks)},
  };
  uint64_t keyed = 0;
  uint64_t repeated = 0;
  uint64_t requests = 0;
  uint64_t salt = 0;
  for (auto& protocol : protocols) {
    auto name = protocol.first; // not a structured binding: CAPTURE is a lambda (clang rejects capturing one)
    auto& proto = protocol.second;
    CAPTURE(name);
    http_backend backend{conn, proto};
    call_request req;
    req.names = {"text"};
    req.values = {"\"great\"", "\"awful\""};
    req.rows = 2;
    req.idempotency_key = idempotency_key_of({0x51ull + salt, 0x52ull + salt});
    ++salt;
    REQUIRE(req.idempotency_key.size() == 16);
    CHECK(server.key_requests(req.idempotency_key) == 0);
    // Sent, then sent again (a retry of the same records): one key, twice.
    for (int sent = 1; sent <= 2; ++sent) {
      auto res = call_once(backend, req);
      CHECK_MESSAGE(res.error.ok(), res.error.message);
      CHECK(res.values.size() == 2);
      CHECK(server.key_requests(req.idempotency_key) == static_cast<uint64_t>(sent));
    }
    keyed += 2;
    repeated += 1;
    // A batch without a key sends no header.
    auto unkeyed = req;
    unkeyed.idempotency_key.clear();
    CHECK(call_once(backend, unkeyed).error.ok());
    requests += 3;
    auto s = server.stats();
    CHECK(s.requests == requests);
    CHECK(s.keyed_requests == keyed);
    CHECK(s.repeated_keys == repeated);
    CHECK(s.records_in_flight == 0);
    CHECK(server.key_requests("") == 0);
  }
}
