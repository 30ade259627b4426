// Bad input from either side, as tables (issue 8): records that are too
// long, too deep, not UTF-8, not objects, missing fields or holding numbers a
// tensor cannot take; and servers that answer truncated, cut, HTML, empty,
// wrongly counted, mistyped or duplicated results. Every row runs a real job
// (jsonl file -> one HTTP model on loopback -> jsonl sink) and asserts: each
// bad record gets a dead letter whose reason names the problem, the good
// records of the same run are scored, the job ends ok, and records in = out +
// dead-lettered, with exact counts.
//
// Server rows need exact counts although a bad answer fails its whole batch:
// one subtask, one connection and a long batch linger (batch.max-delay) make
// the batches exactly records [0..3], [4..7], ... (a partial batch waits for
// its peers, and the end of input flushes the last one), and one attempt
// per record (retry.max-attempts 1) keeps a failed batch from mixing with
// others. The test server answers a request holding the record "POISON" with
// the row's bad answer and every other request correctly.

#include <doctest/doctest.h>

#include <httplib.h>

#include <sys/resource.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "backends/http_json.hpp"
#include "backends/kserve_v2.hpp"
#include "backends/openai.hpp"
#include "runtime/config_loader.hpp"
#include "runtime/job_builder.hpp"
#include "runtime/job_runner.hpp"
#include "runtime/json_text.hpp"
#include "tests/job_helpers.hpp"
#include "tests/test_util.hpp"
#include "tests/wire.hpp"

using namespace sinfer;
using namespace sinfer::test;
using std::chrono::milliseconds;

namespace {

/// The answer a row's server gives instead of the right one.
struct canned {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  /// Promise `body.size() + 100` bytes (Content-Length), send `body`, then
  /// close the connection.
  bool cut = false;
};

/// What the test server knows of a request it must answer badly: its
/// protocol, its rows, and the right answer's body.
using bad_answer_fn = std::function<canned(wire w, uint32_t rows, const std::string& good_body)>;

/// A model server on loopback speaking every protocol: http-json (POST
/// /infer: label "ok:TEXT", score 0.5), KServe v2 (model "m": inputs text
/// BYTES, x FP32, n INT64 -> label BYTES "ok:TEXT", y FP64 x + n), OpenAI
/// embeddings ([length of the text, 0.25]) and chat ("echo: MESSAGE"). A
/// request whose body holds "POISON" gets `bad` instead, when set.
class test_server {
public:
  explicit test_server(bad_answer_fn bad = {}) : bad_(std::move(bad)) {
    server_.Post("/infer", [this](const httplib::Request& req, httplib::Response& res) {
      answer(wire::http_json, req, res);
    });
    server_.Post("/v2/models/m/infer", [this](const httplib::Request& req, httplib::Response& res) {
      answer(wire::kserve_v2, req, res);
    });
    server_.Post("/v1/embeddings", [this](const httplib::Request& req, httplib::Response& res) {
      answer(wire::openai_embeddings, req, res);
    });
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      answer(wire::openai_chat, req, res);
    });
    server_.Get("/v2/models/m", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"name":"m","versions":["1"],"platform":"test",)"
                      R"("inputs":[{"name":"text","datatype":"BYTES","shape":[-1,1]},)"
                      R"({"name":"x","datatype":"FP32","shape":[-1,1]},{"name":"n","datatype":"INT64","shape":[-1,1]}],)"
                      R"("outputs":[{"name":"label","datatype":"BYTES","shape":[-1,1]},)"
                      R"({"name":"y","datatype":"FP64","shape":[-1,1]}]})",
                      "application/json");
    });
    server_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object":"list","data":[{"id":"m","object":"model","owned_by":"test"}]})",
                      "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    // Bound and listening already: connections wait in the backlog until
    // the thread serves them.
    thread_ = std::thread{[this] { server_.listen_after_bind(); }};
  }

  ~test_server() {
    while (!server_.is_running()) // stop() before the loop starts would not stop it
      std::this_thread::yield();
    server_.stop();
    thread_.join();
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

  /// Requests answered with the row's bad answer.
  uint64_t bad_answers() const {
    return bad_answers_.load();
  }

  /// Infer requests received.
  uint64_t requests() const {
    return requests_.load();
  }

private:
  void answer(wire w, const httplib::Request& req, httplib::Response& res) {
    ++requests_;
    uint32_t rows = 0;
    std::string body;
    if (!good_answer(w, req.body, rows, body)) {
      res.status = 400;
      res.set_content(R"({"error":"the test server cannot read this request"})", "application/json");
      return;
    }
    if (bad_ && req.body.find("POISON") != std::string::npos) {
      ++bad_answers_;
      auto c = bad_(w, rows, body);
      res.status = c.status;
      if (c.cut) {
        auto sent = std::make_shared<std::string>(c.body);
        res.set_content_provider(sent->size() + 100, c.content_type,
                                 [sent](size_t, size_t, httplib::DataSink& sink) {
                                   sink.write(sent->data(), sent->size());
                                   return false; // the connection closes mid-answer
                                 });
        return;
      }
      res.set_content(c.body, c.content_type);
      return;
    }
    res.set_content(body, "application/json");
  }

  /// The right answer to `request`, and its rows; false when it cannot be
  /// read.
  static bool good_answer(wire w, const std::string& request, uint32_t& rows, std::string& out) {
    simdjson::dom::parser parser;
    simdjson::dom::object root;
    if (parser.parse(request).get(root))
      return false;
    if (w == wire::http_json) {
      simdjson::dom::array inputs;
      if (root["inputs"].get(inputs))
        return false;
      out = R"({"outputs":[)";
      for (auto item : inputs) {
        std::string_view text;
        if (item["text"].get(text))
          return false;
        out += (rows++ > 0 ? "," : "") + std::string{R"({"label":)"} + json_quote("ok:" + std::string{text})
               + R"(,"score":0.5})";
      }
      out += "]}";
      return true;
    }
    if (w == wire::kserve_v2) {
      simdjson::dom::array inputs;
      if (root["inputs"].get(inputs))
        return false;
      std::vector<std::string> texts;
      std::vector<double> xs;
      std::vector<int64_t> ns;
      for (auto t : inputs) {
        std::string_view name;
        simdjson::dom::array data;
        if (t["name"].get(name) || t["data"].get(data))
          return false;
        for (auto v : data) {
          std::string_view s;
          double d = 0;
          int64_t i = 0;
          if (name == "text" && !v.get(s))
            texts.emplace_back(s);
          else if (name == "x" && !v.get(d))
            xs.push_back(d);
          else if (name == "n" && !v.get(i))
            ns.push_back(i);
          else
            return false;
        }
      }
      if (texts.size() != xs.size() || xs.size() != ns.size() || texts.empty())
        return false;
      rows = static_cast<uint32_t>(texts.size());
      std::string labels, ys;
      for (uint32_t r = 0; r < rows; ++r) {
        labels += (r > 0 ? "," : "") + json_quote("ok:" + texts[r]);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", xs[r] + static_cast<double>(ns[r]));
        ys += (r > 0 ? "," : "") + std::string{buf};
      }
      auto shape = "[" + std::to_string(rows) + ",1]";
      out = R"({"model_name":"m","model_version":"1","outputs":[{"name":"label","datatype":"BYTES","shape":)" + shape
            + R"(,"data":[)" + labels + R"(]},{"name":"y","datatype":"FP64","shape":)" + shape + R"(,"data":[)" + ys
            + "]}]}";
      return true;
    }
    if (w == wire::openai_embeddings) {
      simdjson::dom::array inputs;
      if (root["input"].get(inputs))
        return false;
      out = R"({"object":"list","model":"m","data":[)";
      for (auto v : inputs) {
        std::string_view s;
        if (v.get(s))
          return false;
        out += (rows > 0 ? "," : "") + std::string{R"({"object":"embedding","index":)"} + std::to_string(rows)
               + R"(,"embedding":[)" + std::to_string(s.size()) + ",0.25]}";
        ++rows;
      }
      out += R"(],"usage":{"prompt_tokens":1,"total_tokens":1}})";
      return true;
    }
    simdjson::dom::array messages;
    if (root["messages"].get(messages) || messages.size() == 0)
      return false;
    std::string_view content;
    if (messages.at(messages.size() - 1)["content"].get(content))
      return false;
    rows = 1;
    out = R"({"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":)"
          R"({"role":"assistant","content":)"
          + json_quote("echo: " + std::string{content})
          + R"(},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})";
    return true;
  }

  bad_answer_fn bad_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = -1;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> bad_answers_{0};
};

/// One job's outcome: its report and figures, its output and dead letters.
struct run_result {
  job_report report;
  uint64_t records_in = 0, records_out = 0, dead_lettered = 0;
  std::vector<std::string> out, dead;
};

/// Runs the records of `input` (the file's bytes as they are) through one
/// model speaking `w` at `url`: one subtask, ordered output, batches of 4
/// with a linger long enough that every batch but the last is full, one
/// attempt per record.
run_result run_input(const std::string& input, wire w, const std::string& url,
                     std::optional<uint64_t> max_record_bytes = std::nullopt) {
  temp_dir dir;
  write_file(dir.file("in.jsonl"), input);
  auto models = model_registry::with_builtins();
  endpoint_config ep;
  ep.url = url;
  ep.name = "test";
  model_spec spec{"m", "m"};
  switch (w) {
    case wire::http_json:
      spec.provider("http-json").input("text", "text").output("label", "label").output("score", "score");
      break;
    case wire::kserve_v2:
      spec.provider("kserve-v2").input("text", "text").input("x", "x").input("n", "n").output("label", "label").output("y", "y");
      break;
    case wire::openai_embeddings:
      spec.provider("openai").openai_embeddings().input("input", "text").output("embedding", "embedding");
      break;
    case wire::openai_chat:
      spec.provider("openai").openai_chat("${text}").output("content", "reply");
      break;
  }
  spec.endpoint(ep)
    .concurrency(1)
    .max_concurrent_operations(64)
    .batch({4, std::chrono::seconds{10}, 0})
    .timeout(std::chrono::seconds{5}, std::chrono::seconds{60})
    .retry(1, quick_backoff(milliseconds{10}))
    .subtask_breaker(never_opens())
    .job_breaker(never_opens());
  auto cfg = job_builder{"bad-input"}
               .parallelism(1)
               .output(output_mode::ordered)
               .source_jsonl(dir.file("in.jsonl"))
               .model(spec)
               .stage("m")
               .sink_jsonl(dir.file("out.jsonl"))
               .dead_letter(dir.file("dead.jsonl"))
               .build(models);
  if (max_record_bytes)
    cfg.source.max_record_bytes = *max_record_bytes;
  run_options opts;
  opts.threads = 2;
  opts.counters = std::make_shared<job_counters>(cfg.stages.size());
  run_result r;
  {
    log_capture quiet; // the job's own log lines stay out of the test output
    r.report = run_job(cfg, models, opts);
  }
  r.records_in = opts.counters->records_in.load();
  r.records_out = opts.counters->records_out.load();
  r.dead_lettered = opts.counters->dead_lettered.load();
  r.out = read_lines(dir.file("out.jsonl"));
  r.dead = read_lines(dir.file("dead.jsonl"));
  return r;
}

/// The accounting every row asserts: the job ended ok, and in = out + dead
/// with exactly the expected figures, in the report, the counters and the
/// files alike.
void check_accounting(const run_result& r, uint64_t in, uint64_t out, uint64_t dead) {
  CHECK_MESSAGE(r.report.ok, r.report.reason);
  CHECK(r.report.records_in == in);
  CHECK(r.report.records_out == out);
  CHECK(r.report.dead_lettered == dead);
  CHECK(r.report.records_in == r.report.records_out + r.report.dead_lettered);
  CHECK(r.records_in == in);
  CHECK(r.records_out == out);
  CHECK(r.dead_lettered == dead);
  CHECK(r.out.size() == out);
  CHECK(r.dead.size() == dead);
}

/// A dead letter, read back (every line must be a JSON object).
struct dead_letter {
  int64_t offset = -1;
  std::string reason, record, record_base64;
};

std::vector<dead_letter> read_dead(const std::vector<std::string>& lines) {
  std::vector<dead_letter> out;
  for (auto& line : lines) {
    simdjson::dom::parser p;
    simdjson::dom::object obj;
    auto err = p.parse(line).get(obj);
    CHECK_MESSAGE(err == simdjson::SUCCESS, "a dead-letter line is not a JSON object: " << line.substr(0, 200));
    if (err)
      continue;
    dead_letter d;
    d.offset = int_field(obj, "offset");
    d.reason = str_field(obj, "reason");
    d.record = str_field(obj, "record");
    std::string_view b64;
    if (!obj["record_base64"].get(b64))
      d.record_base64 = std::string{b64};
    out.push_back(std::move(d));
  }
  return out;
}

// --- Input side -------------------------------------------------------------

/// One line of an input file and what must become of it.
struct line_case {
  std::string text;
  /// nullptr: scored; "": not a record (a blank line); else: dead-lettered
  /// with a reason holding this text.
  const char* expect;
};

const char* const scored = nullptr;
const char* const not_a_record = "";

/// A good record for the KServe model (text, x, n).
std::string good(const std::string& id, double x = 0.5, int64_t n = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return R"({"id":")" + id + R"(","text":"great product","x":)" + buf + R"(,"n":)" + std::to_string(n) + "}";
}

/// A good record of exactly `bytes` bytes.
std::string good_of_size(const std::string& id, size_t bytes) {
  auto head = R"({"id":")" + id + R"(","text":")";
  std::string tail = R"(","x":1,"n":1})";
  REQUIRE(bytes >= head.size() + tail.size());
  return head + std::string(bytes - head.size() - tail.size(), 'a') + tail;
}

struct input_row {
  const char* name;
  std::vector<line_case> lines;
  /// The file ends with a newline after the last line.
  bool final_newline = true;
  std::optional<uint64_t> max_record_bytes;
};

/// Runs `row` against the KServe model and checks every line's fate.
void check_input_row(const input_row& row, const std::string& url) {
  std::string input;
  for (size_t i = 0; i < row.lines.size(); ++i)
    input += row.lines[i].text + (i + 1 < row.lines.size() || row.final_newline ? "\n" : "");
  uint64_t in = 0, out = 0, dead = 0;
  std::map<int64_t, const line_case*> dead_by_line;
  std::vector<std::string> scored_texts;
  for (size_t i = 0; i < row.lines.size(); ++i) {
    auto* e = row.lines[i].expect;
    if (e != nullptr && *e == '\0')
      continue;
    ++in;
    if (e == nullptr) {
      ++out;
      scored_texts.push_back(row.lines[i].text);
    } else {
      ++dead;
      dead_by_line[static_cast<int64_t>(i + 1)] = &row.lines[i];
    }
  }
  auto r = run_input(input, wire::kserve_v2, url, row.max_record_bytes);
  check_accounting(r, in, out, dead);
  // Each dead letter: on the right line, with the right reason, the line's
  // bytes recoverable (a bounded prefix when it was too long).
  for (auto& d : read_dead(r.dead)) {
    CAPTURE(d.offset);
    CAPTURE(d.reason);
    auto it = dead_by_line.find(d.offset);
    REQUIRE_MESSAGE(it != dead_by_line.end(), "a dead letter for a line that should not have one");
    auto& expected = *it->second;
    CHECK_MESSAGE(d.reason.find(expected.expect) != std::string::npos, "expected a reason holding: " << expected.expect);
    auto bytes = d.record_base64.empty() ? d.record : decoded_base64(d.record_base64);
    bool oversized = d.reason.find("over source.max-record-bytes") != std::string::npos;
    if (oversized) {
      CHECK(bytes.size() <= std::min<uint64_t>(1024, row.max_record_bytes.value_or(1024)));
      CHECK(expected.text.compare(0, bytes.size(), bytes) == 0);
      CHECK(d.reason.find("the dead letter holds its first " + std::to_string(bytes.size()) + " bytes")
            != std::string::npos);
    } else {
      // Trimmed as the source trims (a trailing \r).
      auto text = expected.text;
      if (!text.empty() && text.back() == '\r')
        text.pop_back();
      CHECK_MESSAGE(bytes == text, "the dead letter does not hold the line's bytes");
    }
    dead_by_line.erase(it);
  }
  CHECK_MESSAGE(dead_by_line.empty(), dead_by_line.size() << " bad line(s) got no dead letter");
  // The good records, in order, each scored.
  REQUIRE(r.out.size() == scored_texts.size());
  for (size_t i = 0; i < r.out.size(); ++i) {
    simdjson::dom::parser p, q;
    auto obj = parse_object(p, r.out[i]);
    auto expected_obj = parse_object(q, std::string{trim(scored_texts[i])});
    CHECK(str_field(obj, "id") == str_field(expected_obj, "id"));
    CHECK(str_field(obj, "label") == "ok:" + str_field(expected_obj, "text"));
    double x = 0, y = 0;
    int64_t n = 0;
    REQUIRE(expected_obj["x"].get(x) == simdjson::SUCCESS);
    REQUIRE(expected_obj["n"].get(n) == simdjson::SUCCESS);
    REQUIRE(obj["y"].get(y) == simdjson::SUCCESS);
    CHECK(y == doctest::Approx(x + static_cast<double>(n)));
  }
}

} // namespace

TEST_CASE("bad input: a line far over source.max-record-bytes is skipped, not buffered") {
  // Runs first in this file: the process's peak RSS is still low, so its
  // growth is this job's. A 64 MiB line with a 1 MiB limit: the source keeps
  // at most the limit (plus its read buffer) whatever the line's length.
  test_server server;
  temp_dir dir;
  std::string input = good("a") + "\n";
  std::string head = R"({"id":"huge","text":")";
  input += head;
  const size_t huge = size_t{64} << 20;
  std::string chunk(size_t{1} << 20, 'b');
  rusage before{};
  {
    std::ofstream f{dir.file("in.jsonl"), std::ios::binary};
    f << input;
    for (size_t written = head.size(); written < huge; written += chunk.size())
      f.write(chunk.data(), static_cast<std::streamsize>(std::min(chunk.size(), huge - written)));
    f << "\n" << good("b") << "\n";
  }
  std::string().swap(chunk);
  getrusage(RUSAGE_SELF, &before);
  // The file is read by run_input's own copy: hand it over by path instead.
  auto models = model_registry::with_builtins();
  endpoint_config ep;
  ep.url = server.url();
  ep.name = "test";
  auto cfg = job_builder{"huge-line"}
               .parallelism(1)
               .source_jsonl(dir.file("in.jsonl"))
               .model(model_spec{"m", "m"}
                        .provider("kserve-v2")
                        .input("text", "text")
                        .input("x", "x")
                        .input("n", "n")
                        .output("y", "y")
                        .endpoint(ep)
                        .retry(1, quick_backoff(milliseconds{10})))
               .stage("m")
               .sink_jsonl(dir.file("out.jsonl"))
               .dead_letter(dir.file("dead.jsonl"))
               .build(models);
  cfg.source.max_record_bytes = uint64_t{1} << 20;
  job_report report;
  {
    log_capture quiet;
    report = run_job(cfg, models, {});
  }
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  REQUIRE_MESSAGE(report.ok, report.reason);
  CHECK(report.records_in == 3);
  CHECK(report.records_out == 2);
  CHECK(report.dead_lettered == 1);
  auto dead = read_dead(read_lines(dir.file("dead.jsonl")));
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].offset == 2);
  CHECK(dead[0].reason.find("line 2 is " + std::to_string(huge) + " bytes, over source.max-record-bytes (1048576)")
        != std::string::npos);
  CHECK(dead[0].record.size() == 1024);
  CHECK(dead[0].record.rfind(head, 0) == 0);
  // ru_maxrss is in KiB. Buffering the line whole would add 64 MiB or more.
  auto grew_kib = after.ru_maxrss - before.ru_maxrss;
  CHECK_MESSAGE(grew_kib < 24 * 1024, "peak RSS grew by " << grew_kib << " KiB while reading a 64 MiB line");
}

TEST_CASE("bad input: every kind of bad record is dead-lettered with its reason; the good ones are scored") {
  test_server server;
  // A NUL byte inside a line, as the file holds it.
  auto nul = [](std::string s) {
    for (auto& c : s)
      if (c == '@')
        c = '\0';
    return s;
  };
  std::string deep_open(100000, '[');
  std::string deep_balanced = std::string(5000, '[') + std::string(5000, ']');
  std::vector<input_row> rows = {
    {"oversized records (max-record-bytes 256): at the limit read, one byte over and far over dead-lettered",
     {{good("g1"), scored},
      {good_of_size("at-limit", 256), scored},
      {good_of_size("one-over", 257), "line 3 is 257 bytes, over source.max-record-bytes (256)"},
      {good_of_size("far-over", 100000), "line 4 is 100000 bytes, over source.max-record-bytes (256)"},
      {good("g2"), scored},
      {good_of_size("last", 5000), "line 6 is 5000 bytes, over source.max-record-bytes (256)"}},
     false, 256},
    {"an oversized record at the default limit (16 MiB + 1 byte)",
     {{good("g1"), scored},
      {good_of_size("over-default", (size_t{16} << 20) + 1),
       "line 2 is 16777217 bytes, over source.max-record-bytes (16777216)"},
      {good("g2"), scored}}},
    {"deeply nested JSON",
     {{good("g1"), scored},
      {deep_open, "malformed JSON"},
      {R"({"id":"deep","text":"a","x":1,"n":1,"extra":)" + deep_open + "}", "malformed JSON"},
      {R"({"id":"deep2","text":"a","x":1,"n":1,"extra":)" + deep_balanced + "}",
       "malformed JSON: The JSON document was too deep"},
      {good("g2"), scored}}},
    {"invalid UTF-8",
     {{good("g1"), scored},
      {"{\"id\":\"u1\",\"text\":\"caf\xC3\x28\",\"x\":1,\"n\":1}", "not valid UTF-8"},
      {"{\"id\":\"u2\",\"text\":\"\xFF\xFE\",\"x\":1,\"n\":1}", "not valid UTF-8"},
      {"{\"id\":\"u3\",\"text\":\"overlong \xC0\xAF\",\"x\":1,\"n\":1}", "not valid UTF-8"},
      {"{\"id\":\"u4\",\"text\":\"surrogate \xED\xA0\x80\",\"x\":1,\"n\":1}", "not valid UTF-8"},
      {"{\"id\":\"u5\",\"text\":\"caf\xC3\xA9 \xE2\x82\xAC\",\"x\":1,\"n\":1}", scored},
      {good("g2"), scored}}},
    {"NaN, infinities and numbers a tensor cannot hold (FP32 x, INT64 n)",
     {{good("g1"), scored},
      {R"({"id":"nan","text":"a","x":NaN,"n":1})",
       "malformed JSON: at x: NaN is not a JSON number (JSON has no NaN or Infinity)"},
      {R"({"id":"inf","text":"a","x":Infinity,"n":1})",
       "malformed JSON: at x: Infinity is not a JSON number (JSON has no NaN or Infinity)"},
      {R"({"id":"nested-inf","text":"a","x":1,"n":1,"extra":{"v":[1,{"w":2},-Infinity]}})",
       "malformed JSON: at extra.v[2]: -Infinity is not a JSON number"},
      {R"({"id":"e400","text":"a","x":1e400,"n":1})",
       "malformed JSON: at x: the number 1e400 is beyond the range of a double"},
      {R"({"id":"e300","text":"a","x":1e300,"n":1})", "input \"x\": 1e+300 is out of range for a FP32 tensor"},
      {R"({"id":"neg-e38","text":"a","x":-3.5e38,"n":1})", "input \"x\": -3.5e+38 is out of range for a FP32 tensor"},
      {good("fp32-max", 3.4e38, 1), scored},
      {good("int64-max", 0.5, INT64_MAX), scored},
      {good("int64-min", 0.5, INT64_MIN), scored},
      {R"({"id":"int64-over","text":"a","x":1,"n":9223372036854775808})",
       "input \"n\": 9223372036854775808 is out of range for a INT64 tensor"},
      {R"({"id":"huge","text":"a","x":1,"n":123456789012345678901234567890})",
       "malformed JSON: at n: the integer 123456789012345678901234567890 (30 digits) does not fit in 64 bits"},
      {R"({"id":"leading-zero","text":"a","x":01,"n":1})", "malformed JSON: at x: 01 is not a valid JSON number"},
      {R"({"id":"frac","text":"a","x":1,"n":1.5})", "input \"n\": expected an integer for a INT64 tensor, got 1.5"},
      {R"({"id":"str","text":"a","x":"abc","n":1})", "input \"x\": expected a number for a FP32 tensor, got \"abc\""},
      {good("g2"), scored}}},
    {"lines that are not JSON objects",
     {{good("g1"), scored},
      {"[1,2,3]", "not a JSON object"},
      {"\"just a string\"", "not a JSON object"},
      {"42", "not a JSON object"},
      {"null", "not a JSON object"},
      {"not json at all", "malformed JSON: \"not\" is not a JSON value"},
      {good("g2"), scored}}},
    {"blank lines are not records (and do not shift line numbers)",
     {{good("g1"), scored},
      {"", not_a_record},
      {"   ", not_a_record},
      {"\t", not_a_record},
      {"\r", not_a_record},
      {"[]", "not a JSON object"},
      {good("g2"), scored}}},
    {"missing or unusable input fields",
     {{good("g1"), scored},
      {R"({"id":"no-n","text":"a","x":1})", "missing field \"n\" (model input \"n\")"},
      {R"({"id":"no-text","x":1,"n":1})", "missing field \"text\" (model input \"text\")"},
      {"{}", "missing field \"text\""},
      {R"({"id":"null-text","text":null,"x":1,"n":1})", "input \"text\": expected a string for a BYTES tensor, got null"},
      {good("g2"), scored}}},
    {"the last line has no trailing newline (a good record)",
     {{good("g1"), scored}, {"[]", "not a JSON object"}, {good("last"), scored}},
     false},
    {"the last line has no trailing newline (a bad record)",
     {{good("g1"), scored}, {R"({"id":"last","x":1,"n":1})", "missing field \"text\""}},
     false},
    {"NUL bytes",
     {{good("g1"), scored},
      {nul(R"({"id":"nul-in-string","text":"a@b","x":1,"n":1})"), "malformed JSON"},
      {nul(R"({"id":"nul-after","text":"a","x":1,"n":1}@)"), "malformed JSON"},
      {nul("@"), "malformed JSON"},
      {R"({"id":"escaped-nul","text":"a\u0000b","x":1,"n":1})", scored},
      {good("g2"), scored}}},
    {"CRLF line endings",
     {{good("g1") + "\r", scored}, {"[1]\r", "not a JSON object"}, {good("g2") + "\r", scored}}},
  };
  for (auto& row : rows) {
    std::string row_name = row.name;
    CAPTURE(row_name);
    check_input_row(row, server.url());
  }
}

TEST_CASE("bad input: the output of a record whose text holds an escaped NUL keeps it escaped") {
  test_server server;
  auto r = run_input(R"({"id":"z","text":"a\u0000b","x":1,"n":1})" "\n", wire::kserve_v2, server.url());
  check_accounting(r, 1, 1, 0);
  REQUIRE(r.out.size() == 1);
  CHECK(r.out[0].find(std::string{"\0", 1}) == std::string::npos);
  CHECK(r.out[0].find(R"("label":"ok:a\u0000b")") != std::string::npos);
}

// --- Server side ------------------------------------------------------------

namespace {

/// The right answer with its results changed, per protocol.
std::string with_result_count(wire w, uint32_t rows, uint32_t count) {
  std::string out;
  switch (w) {
    case wire::http_json:
      out = R"({"outputs":[)";
      for (uint32_t i = 0; i < count; ++i)
        out += std::string{i > 0 ? "," : ""} + R"({"label":"x","score":0.5})";
      return out + "]}";
    case wire::kserve_v2: {
      std::string labels, ys;
      for (uint32_t i = 0; i < count; ++i) {
        labels += std::string{i > 0 ? "," : ""} + "\"x\"";
        ys += std::string{i > 0 ? "," : ""} + "1";
      }
      auto shape = "[" + std::to_string(count) + ",1]";
      return R"({"outputs":[{"name":"label","datatype":"BYTES","shape":)" + shape + R"(,"data":[)" + labels
             + R"(]},{"name":"y","datatype":"FP64","shape":)" + shape + R"(,"data":[)" + ys + "]}]}";
    }
    case wire::openai_embeddings:
      out = R"({"object":"list","data":[)";
      for (uint32_t i = 0; i < count; ++i)
        out += std::string{i > 0 ? "," : ""} + R"({"object":"embedding","index":)" + std::to_string(i)
               + R"(,"embedding":[1,2]})";
      return out + "]}";
    case wire::openai_chat:
      out = R"({"object":"chat.completion","choices":[)";
      for (uint32_t i = 0; i < count; ++i)
        out += std::string{i > 0 ? "," : ""} + R"({"index":)" + std::to_string(i)
               + R"(,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"})";
      return out + "]}";
  }
  (void)rows;
  return out;
}

/// A KServe answer whose "y" tensor is `y_tensor` (a JSON object's members
/// after the name).
std::string kserve_with_y(uint32_t rows, const std::string& y_members) {
  std::string labels;
  for (uint32_t i = 0; i < rows; ++i)
    labels += std::string{i > 0 ? "," : ""} + "\"x\"";
  return R"({"outputs":[{"name":"label","datatype":"BYTES","shape":[)" + std::to_string(rows) + R"(,1],"data":[)"
         + labels + R"(]},{"name":"y",)" + y_members + "}]}";
}

/// `n` comma-separated copies of `item`.
std::string repeated(const std::string& item, uint32_t n) {
  std::string out;
  for (uint32_t i = 0; i < n; ++i)
    out += (i > 0 ? "," : "") + item;
  return out;
}

/// In `embeddings_with_indices`: an item without an "index" member.
constexpr int no_index = INT32_MIN;

/// An embeddings answer whose data items carry these indices.
std::string embeddings_with_indices(const std::vector<int>& indices) {
  std::string out = R"({"object":"list","data":[)";
  for (size_t i = 0; i < indices.size(); ++i) {
    out += i > 0 ? "," : "";
    out += R"({"object":"embedding",)";
    if (indices[i] != no_index)
      out += R"("index":)" + std::to_string(indices[i]) + ",";
    out += R"("embedding":[1,2]})";
  }
  return out + "]}";
}

struct server_row {
  const char* name;
  /// The protocols the row applies to.
  std::vector<wire> wires;
  bad_answer_fn bad;
  /// Expected in the dead letters' reason (per protocol when it differs:
  /// `reason_for` wins when set).
  std::string reason;
  std::function<std::string(wire)> reason_for;
  /// The bad answer fails only the poisoned record (a 400 on a batch: its
  /// records are sent again one by one), not its whole batch.
  bool only_the_bad_record = false;
};

const std::vector<wire> all_wires = {wire::http_json, wire::kserve_v2, wire::openai_embeddings, wire::openai_chat};
const std::vector<wire> batched_wires = {wire::http_json, wire::kserve_v2, wire::openai_embeddings};

canned json_200(std::string body) {
  canned c;
  c.body = std::move(body);
  return c;
}

/// The right answer with its first output number replaced by `token` (for
/// KServe, an FP64 output of `token` per row): JSON no strict parser reads.
bad_answer_fn number_in_output(std::string token) {
  return [token](wire w, uint32_t rows, const std::string& good) {
    if (w == wire::kserve_v2)
      return json_200(kserve_with_y(rows, R"("datatype":"FP64","shape":[)" + std::to_string(rows) + R"(,1],"data":[)"
                                            + repeated(token, rows) + "]"));
    auto body = good;
    std::string number = w == wire::http_json ? "0.5" : "0.25";
    body.replace(body.find(number), number.size(), token);
    return json_200(body);
  };
}

/// The reason for `number_in_output`: the token's problem, and for KServe
/// where it is.
std::function<std::string(wire)> number_reason(std::string problem) {
  return [problem](wire w) {
    return std::string{w == wire::kserve_v2 ? "\"): at outputs[1].data[0]: " : ""} + problem;
  };
}

} // namespace

TEST_CASE("bad answers: every kind of bad server answer dead-letters its records with the reason; the job goes on") {
  const std::string html = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>";
  const std::string openai_error = R"({"error":{"message":"the model is overloaded","type":"server_error","param":null,"code":500}})";
  const std::string legacy_error = R"({"object":"error","message":"the model is overloaded","type":"server_error","param":null,"code":500})";
  auto status_body = [](int status, std::string body) {
    return [status, body](wire, uint32_t, const std::string&) {
      canned c;
      c.status = status;
      c.body = body;
      return c;
    };
  };
  std::vector<server_row> rows = {
    {"a truncated JSON body", all_wires,
     [](wire, uint32_t, const std::string& good) { return json_200(good.substr(0, good.size() / 2)); },
     "fatal-endpoint: the answer is not JSON (HTTP 200, Content-Type application/json, "},
    {"a body cut mid-answer (Content-Length larger than sent, then close)", all_wires,
     [](wire, uint32_t, const std::string& good) {
       auto c = json_200(good);
       c.cut = true;
       return c;
     },
     "retryable: no answer: POST http://127.0.0.1:"},
    {"an HTML error page with 200", all_wires,
     [html](wire, uint32_t, const std::string&) {
       canned c;
       c.content_type = "text/html";
       c.body = html;
       return c;
     },
     "fatal-endpoint: the answer is not JSON (HTTP 200, Content-Type text/html, " + std::to_string(html.size())
       + " bytes, starting \"<html><head><title>502 Bad Gateway</title></head\"): "},
    {"an empty 200 body", all_wires, [](wire, uint32_t, const std::string&) { return json_200(""); },
     "fatal-endpoint: the answer is empty (HTTP 200"},
    {"fewer results than records", all_wires,
     [](wire w, uint32_t rows, const std::string&) { return json_200(with_result_count(w, rows, rows - 1)); }, "",
     [](wire w) -> std::string {
       switch (w) {
         case wire::http_json: return "the answer has 3 results for 4 records";
         case wire::kserve_v2: return "output \"label\" has shape [3,1] for 4 records";
         case wire::openai_embeddings: return "the answer has 3 embeddings for 4 inputs";
         case wire::openai_chat: return "the answer has no \"choices\"";
       }
       return "?";
     }},
    {"more results than records", batched_wires,
     [](wire w, uint32_t rows, const std::string&) { return json_200(with_result_count(w, rows, rows + 1)); }, "",
     [](wire w) -> std::string {
       switch (w) {
         case wire::http_json: return "the answer has 5 results for 4 records";
         case wire::kserve_v2: return "output \"label\" has shape [5,1] for 4 records";
         default: return "the answer has 5 embeddings for 4 inputs";
       }
     }},
    {"kserve: a shape that does not match the data", {wire::kserve_v2},
     [](wire, uint32_t rows, const std::string&) {
       return json_200(kserve_with_y(rows, R"("datatype":"FP64","shape":[)" + std::to_string(rows) + R"(,2],"data":[)"
                                             + repeated("1", rows) + "]"));
     },
     "output \"y\" has 4 elements for shape [4,2]"},
    {"kserve: data that does not match the datatype", {wire::kserve_v2},
     [](wire, uint32_t rows, const std::string&) {
       return json_200(kserve_with_y(rows, R"("datatype":"FP64","shape":[)" + std::to_string(rows) + R"(,1],"data":[)"
                                             + repeated("\"1.5\"", rows) + "]"));
     },
     "output \"y\" (FP64) element 0: expected numbers, got \"1.5\""},
    {"kserve: an unknown datatype", {wire::kserve_v2},
     [](wire, uint32_t rows, const std::string&) {
       return json_200(kserve_with_y(rows, R"("datatype":"FLOAT","shape":[)" + std::to_string(rows) + R"(,1],"data":[)"
                                             + repeated("1", rows) + "]"));
     },
     "output \"y\" has datatype \"FLOAT\", not a KServe v2 datatype"},
    {"kserve: integers out of their datatype's range", {wire::kserve_v2},
     [](wire, uint32_t rows, const std::string&) {
       return json_200(kserve_with_y(rows, R"("datatype":"INT8","shape":[)" + std::to_string(rows) + R"(,1],"data":[)"
                                             + repeated("300", rows) + "]"));
     },
     "output \"y\" (INT8) element 0: 300 is out of range for a INT8 tensor"},
    {"NaN in an output", {wire::http_json, wire::kserve_v2, wire::openai_embeddings}, number_in_output("NaN"),
     "fatal-endpoint: the answer is not JSON",
     number_reason("NaN is not a JSON number (JSON has no NaN or Infinity)")},
    {"a number beyond double in an output", {wire::http_json, wire::kserve_v2, wire::openai_embeddings},
     number_in_output("1e400"), "the answer is not JSON",
     number_reason("the number 1e400 is beyond the range of a double")},
    {"a value beyond float32 in an FP32 tensor or an embedding", {wire::kserve_v2, wire::openai_embeddings},
     [](wire w, uint32_t rows, const std::string& good) {
       if (w == wire::kserve_v2)
         return json_200(kserve_with_y(rows, R"("datatype":"FP32","shape":[)" + std::to_string(rows)
                                               + R"(,1],"data":[)" + repeated("1e300", rows) + "]"));
       auto body = good;
       body.replace(body.find("0.25"), 4, "1e300");
       return json_200(body);
     },
     "", [](wire w) -> std::string {
       return w == wire::kserve_v2 ? "output \"y\" (FP32) element 0: 1e+300 is out of range"
                                   : "embedding 0 holds 1e+300, beyond the range of float32";
     }},
    {"embeddings: a duplicated index", {wire::openai_embeddings},
     [](wire, uint32_t, const std::string&) { return json_200(embeddings_with_indices({0, 1, 1, 3})); },
     "data[2] has embedding index 1, repeated from data[1] (so another input has no embedding)"},
    {"embeddings: an index out of range", {wire::openai_embeddings},
     [](wire, uint32_t, const std::string&) { return json_200(embeddings_with_indices({0, 1, 7, 3})); },
     "data[2] has embedding index 7, out of range for 4 inputs"},
    {"embeddings: a negative index", {wire::openai_embeddings},
     [](wire, uint32_t, const std::string&) { return json_200(embeddings_with_indices({0, -2, 2, 3})); },
     "data[1] has embedding index -2, out of range for 4 inputs"},
    {"embeddings: an index missing on one item while the others have one", {wire::openai_embeddings},
     [](wire, uint32_t, const std::string&) { return json_200(embeddings_with_indices({1, 0, no_index, 3})); },
     "data[2] has no \"index\" while other items have one"},
    {"the OpenAI error shape with 500", all_wires, status_body(500, openai_error),
     "retryable: HTTP 500: the model is overloaded (after 1 attempt)"},
    {"vLLM's older flat error shape with 500", all_wires, status_body(500, legacy_error),
     "retryable: HTTP 500: the model is overloaded (after 1 attempt)"},
    {"the OpenAI error shape with 200", all_wires, status_body(200, openai_error),
     "fatal-endpoint: the server answered HTTP 200 with an error instead of results: "
     "the model is overloaded"},
    {"vLLM's older flat error shape with 200", all_wires, status_body(200, legacy_error),
     "fatal-endpoint: the server answered HTTP 200 with an error instead of results: "
     "the model is overloaded"},
    // A 400 on a batch is the batch's records' own: they are sent again one
    // by one, and only the record the server refuses alone fails.
    {"the OpenAI error shape with 400", all_wires,
     status_body(400, R"({"error":{"message":"input too long","type":"invalid_request_error","param":null,"code":400}})"),
     "fatal-record: HTTP 400: input too long", {}, true},
    {"vLLM's older flat error shape with 400", all_wires,
     status_body(400, R"({"object":"error","message":"input too long","type":"invalid_request_error","code":400})"),
     "fatal-record: HTTP 400: input too long", {}, true},
  };
  // 24 records: record 9 (line 10) is the poisoned one, in the third batch.
  const uint64_t records = 24;
  const size_t poisoned = 9;
  std::string input;
  for (size_t i = 0; i < records; ++i)
    input += R"({"id":"r)" + std::to_string(i) + R"(","text":")" + (i == poisoned ? "POISON" : "fine review")
             + R"(","x":0.5,"n":)" + std::to_string(i) + "}\n";
  for (auto& row : rows)
    for (auto w : row.wires) {
      std::string row_name = row.name, protocol = name_of(w);
      CAPTURE(row_name);
      CAPTURE(protocol);
      test_server server{row.bad};
      auto r = run_input(input, w, server.url());
      CHECK(server.bad_answers() >= 1); // the row's answer was given (the test can fail)
      uint64_t batch = w == wire::openai_chat ? 1 : 4;
      uint64_t dead = row.only_the_bad_record ? 1 : batch;
      check_accounting(r, records, records - dead, dead);
      // The dead letters: the poisoned record's batch (or the record alone).
      std::set<int64_t> expected_lines;
      auto first = row.only_the_bad_record ? poisoned : poisoned / batch * batch;
      for (size_t i = first; i < first + dead; ++i)
        expected_lines.insert(static_cast<int64_t>(i + 1));
      auto reason = row.reason_for ? row.reason_for(w) : row.reason;
      std::set<int64_t> lines;
      for (auto& d : read_dead(r.dead)) {
        CAPTURE(d.reason);
        lines.insert(d.offset);
        CHECK(d.reason.rfind("stage 1 \"m\": ", 0) == 0);
        CHECK_MESSAGE(d.reason.find(reason) != std::string::npos, "expected a reason holding: " << reason);
        if (!row.reason.empty() && row.reason_for)
          CHECK_MESSAGE(d.reason.find(row.reason) != std::string::npos, "expected a reason holding: " << row.reason);
      }
      CHECK(lines == expected_lines);
      // Every other record scored, in order.
      simdjson::dom::parser p;
      size_t k = 0;
      for (size_t i = 0; i < records && k < r.out.size(); ++i) {
        if (expected_lines.count(static_cast<int64_t>(i + 1)) > 0)
          continue;
        auto obj = parse_object(p, r.out[k++]);
        CHECK(str_field(obj, "id") == "r" + std::to_string(i));
        switch (w) {
          case wire::http_json:
          case wire::kserve_v2: CHECK(str_field(obj, "label") == "ok:fine review"); break;
          case wire::openai_embeddings: {
            simdjson::dom::array emb;
            CHECK(obj["embedding"].get(emb) == simdjson::SUCCESS);
            break;
          }
          case wire::openai_chat: CHECK(str_field(obj, "reply") == "echo: fine review"); break;
        }
      }
    }
}

TEST_CASE("bad answers: the decoders' reasons, one answer at a time") {
  // The same answers straight into each protocol's decoder: no sockets, so
  // every edge is cheap to pin.
  http_answer a;
  a.status = 200;
  a.content_type = "text/html; charset=utf-8";
  a.body = std::string{"<html>\x01\xff"} + std::string(100, 'x');
  auto why = not_json_reason(a, "TAPE_ERROR");
  CHECK(why == "the answer is not JSON (HTTP 200, Content-Type text/html; charset=utf-8, 108 bytes, starting "
               "\"<html>\\x01\\xffxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"): TAPE_ERROR");
  a.body.clear();
  CHECK(not_json_reason(a, "EMPTY") == "the answer is empty (HTTP 200, Content-Type text/html; charset=utf-8, no body)");
  a.content_type = "application/json";
  a.body = R"({"detail":"not here"})";
  CHECK(missing_results_reason(a, "has no \"outputs\" array")
        == "the server answered HTTP 200 with an error instead of results: not here");
  a.body = R"({"results":[]})";
  CHECK(missing_results_reason(a, "has no \"outputs\" array") == "the answer has no \"outputs\" array");

  auto ok = [](std::string body) {
    http_answer x;
    x.status = 200;
    x.body = std::move(body);
    return x;
  };
  // http-json: a row's error in any JSON shape is that row's; null is none.
  http_json_settings hj;
  hj.outputs = {"label"};
  auto res = http_json_protocol{hj}.decode(3, ok(R"({"outputs":[{"label":"a"},{"error":{"code":3,"message":"too long"}},)"
                                                 R"({"label":"c","error":null}]})"));
  REQUIRE(res.error.ok());
  REQUIRE(res.row_errors.size() == 3);
  CHECK(res.row_errors[0].ok());
  CHECK(res.row_errors[1].cls == error_class::fatal_record);
  CHECK(res.row_errors[1].message == R"({"code":3,"message":"too long"})");
  CHECK(res.row_errors[2].ok());
  CHECK(res.values[2] == R"("c")");
  // kserve-v2: each datatype's range, both sides of it; no datatype at all
  // is read as it comes.
  kserve_v2_settings ks;
  ks.model = "m";
  ks.outputs = {"y"};
  kserve_v2_protocol kp{ks};
  struct row {
    const char* datatype;
    const char* value;
    const char* problem; // empty: read
  };
  std::vector<row> rows = {
    {"FP16", "65504", ""},
    {"FP16", "65505", "65505 is out of range"},
    {"FP32", "3.4e38", ""},
    {"FP32", "3.5e38", "3.5e+38 is out of range"},
    {"FP64", "1e308", ""},
    {"INT8", "-128", ""},
    {"INT8", "-129", "-129 is out of range for a INT8 tensor"},
    {"UINT8", "255", ""},
    {"UINT8", "-1", "expected a non-negative integer for a UINT8 tensor, got -1"},
    {"INT64", "9223372036854775807", ""},
    {"INT64", "9223372036854775808", "9223372036854775808 is out of range for a INT64 tensor"},
    {"UINT64", "18446744073709551615", ""},
    {"INT32", "1.0", "expected an integer for a INT32 tensor, got 1.0"},
    {"BOOL", "true", ""},
    {"BOOL", "1", "expected true or false, got 1"},
    {"BYTES", "\"s\"", ""},
    {"BYTES", "7", "expected strings, got 7"},
    {"fp32", "1", "has datatype \"fp32\", not a KServe v2 datatype"},
  };
  for (auto& r : rows) {
    std::string case_name = std::string{r.datatype} + " " + r.value;
    CAPTURE(case_name);
    auto body = std::string{R"({"outputs":[{"name":"y","datatype":")"} + r.datatype + R"(","shape":[1,1],"data":[)"
                + r.value + "]}]}";
    auto got = kp.decode(1, ok(body));
    if (*r.problem == '\0') {
      CHECK_MESSAGE(got.error.ok(), got.error.message);
    } else {
      CHECK(got.error.cls == error_class::fatal_endpoint);
      CHECK_MESSAGE(got.error.message.find(r.problem) != std::string::npos, got.error.message);
    }
  }
  auto untyped = kp.decode(1, ok(R"({"outputs":[{"name":"y","shape":[1],"data":["anything"]}]})"));
  CHECK(untyped.error.ok());
  // openai embeddings: no index anywhere answers the inputs in order.
  openai_settings os;
  os.model = "e";
  auto emb = openai_protocol{os}.decode(2, ok(R"({"data":[{"embedding":[1]},{"embedding":[2]}]})"));
  REQUIRE(emb.error.ok());
  CHECK(emb.values == std::vector<std::string>{"[1]", "[2]"});
  auto empty = openai_protocol{os}.decode(1, ok(R"({"data":[{"index":0,"embedding":[]}]})"));
  CHECK(empty.error.message == "embedding 0 is empty");
}

TEST_CASE("source.max-record-bytes: its default, its range and where it applies, each error naming the key path") {
  auto models = model_registry::with_builtins();
  auto config = [](const std::string& source) {
    return R"({"job": {"name": "j"}, "source": )" + source + R"(,
  "models": {"m": {"provider": "in-process", "model": "keyword-classifier", "input": {"text": "text"}}},
  "stages": ["m"], "sink": {"type": "discard"}})";
  };
  struct row {
    const char* name;
    std::string source;
    /// Empty: valid, with `bytes`; else the expected error line.
    std::string error;
    uint64_t bytes;
  };
  std::vector<row> rows = {
    {"default", R"({"type": "jsonl", "path": "in.jsonl"})", "", uint64_t{16} << 20},
    {"set", R"({"type": "jsonl", "path": "in.jsonl", "max-record-bytes": 4096})", "", 4096},
    {"smallest", R"({"type": "stdin", "max-record-bytes": 1})", "", 1},
    {"largest", R"({"type": "stdin", "max-record-bytes": 1073741824})", "", uint64_t{1} << 30},
    {"zero", R"({"type": "jsonl", "path": "in.jsonl", "max-record-bytes": 0})",
     "job.json: source.max-record-bytes: expected an integer in 1..1073741824, got 0", 0},
    {"over 1 GiB", R"({"type": "jsonl", "path": "in.jsonl", "max-record-bytes": 1073741825})",
     "job.json: source.max-record-bytes: expected an integer in 1..1073741824, got 1073741825", 0},
    {"a string", R"({"type": "jsonl", "path": "in.jsonl", "max-record-bytes": "16MiB"})",
     "job.json: source.max-record-bytes: expected an integer in 1..1073741824, got \"16MiB\"", 0},
    {"a fraction", R"({"type": "jsonl", "path": "in.jsonl", "max-record-bytes": 1.5})",
     "job.json: source.max-record-bytes: expected an integer in 1..1073741824, got 1.5", 0},
    {"a generator", R"({"type": "generator", "count": 1, "max-record-bytes": 4096})",
     "job.json: source.max-record-bytes: only valid when source.type is \"jsonl\" or \"stdin\"", 0},
    {"misspelt", R"({"type": "jsonl", "path": "in.jsonl", "max-record-byte": 4096})",
     "job.json: source.max-record-byte: unknown key (did you mean 'max-record-bytes'?)", 0},
  };
  for (auto& r : rows) {
    std::string row_name = r.name;
    CAPTURE(row_name);
    auto res = parse_job_config(config(r.source), "job.json", models);
    if (r.error.empty()) {
      REQUIRE_MESSAGE(res.config.has_value(), (res.errors.empty() ? std::string{} : res.errors.front()));
      CHECK(res.config->source.max_record_bytes == r.bytes);
    } else {
      CHECK(!res.config.has_value());
      REQUIRE(res.errors.size() == 1);
      CHECK(res.errors.front() == r.error);
    }
  }
  // A config built in code is checked the same way.
  auto cfg = job_builder{"j"}
               .source_stdin()
               .model(model_spec{"m", "keyword-classifier"}.input("text", "text"))
               .stage("m")
               .sink_jsonl("/dev/null")
               .build(models);
  cfg.source.max_record_bytes = 0;
  auto errors = check_job_config(cfg, models);
  REQUIRE(errors.size() == 1);
  CHECK(errors.front() == "source.max-record-bytes: expected an integer in 1..1073741824, got 0");
}

TEST_CASE("bad input: an oversized line keeps a checkpointed source's byte position exact across a restore") {
  // The restored position is a byte offset: it must count an oversized
  // line whole, or the next run would start inside it.
  temp_dir dir;
  auto models = model_registry::with_builtins();
  auto review = [](int i) { return R"({"id":)" + std::to_string(i) + R"(,"text":"great product"})" "\n"; };
  auto oversized = [](int i) { return R"({"id":)" + std::to_string(i) + R"(,"text":")" + std::string(5000, 'x') + "\"}\n"; };
  checkpoint_config ck;
  ck.dir = dir.file("state");
  ck.interval = milliseconds{2};
  auto cfg = job_builder{"ckpt-oversized"}
               .source_jsonl(dir.file("in.jsonl"))
               .model(model_spec{"m", "keyword-classifier"}.input("text", "text").output("label", "label"))
               .stage("m")
               .sink_jsonl(dir.file("out"))
               .dead_letter(dir.file("dead"))
               .checkpoint(ck)
               .build(models);
  cfg.source.max_record_bytes = 256;
  std::string first = review(1) + oversized(2) + review(3) + review(4);
  write_file(dir.file("in.jsonl"), first);
  auto run = [&] {
    log_capture quiet;
    return run_job(cfg, models, {});
  };
  auto report = run();
  REQUIRE_MESSAGE(report.ok, report.reason);
  CHECK(report.records_in == 4);
  CHECK(report.records_out == 3);
  CHECK(report.dead_lettered == 1);
  // More input after the oversized line: the next run reads only it.
  write_file(dir.file("in.jsonl"), first + review(5) + oversized(6) + review(7));
  report = run();
  REQUIRE_MESSAGE(report.ok, report.reason);
  CHECK(report.records_in == 3);
  CHECK(report.records_out == 2);
  CHECK(report.dead_lettered == 1);
  // Every line once, across both runs' parts.
  auto lines_of = [&](const std::string& sub, const std::string& prefix) {
    std::vector<std::string> lines;
    for (auto& name : list_dir(dir.file(sub)))
      if (name.rfind(prefix + "-", 0) == 0)
        for (auto& l : read_lines(dir.file(sub) + "/" + name))
          lines.push_back(l);
    return lines;
  };
  std::multiset<int64_t> out_ids, dead_lines;
  simdjson::dom::parser p;
  for (auto& l : lines_of("out", "part"))
    out_ids.insert(int_field(parse_object(p, l), "id"));
  for (auto& d : read_dead(lines_of("dead", "dead"))) {
    dead_lines.insert(d.offset);
    CHECK(d.reason.find("is 5018 bytes, over source.max-record-bytes (256)") != std::string::npos);
  }
  CHECK(out_ids == std::multiset<int64_t>{1, 3, 4, 5, 7});
  CHECK(dead_lines == std::multiset<int64_t>{2, 6});
}
