// The reference server's protocols, spoken by a plain HTTP client on
// loopback: KServe v2 (metadata, infer, health), OpenAI (models,
// embeddings, chat completions, both error shapes), the API key, the bounded
// queue and the Prometheus /metrics text. Figures are asserted from answers
// and counters; concurrency is joined threads, never sleeps.

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <algorithm>
#include <climits>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <simdjson.h>

#include "backends/in_process.hpp"
#include "sim/reference_server.hpp"
#include "tests/test_util.hpp"

using namespace sinfer;
using sinfer::test::decoded_base64;

namespace {

/// A started server and a client talking to it.
struct fixture {
  explicit fixture(reference_server_options o) : server(std::move(o)) {
    std::string err;
    port = server.start(err);
    REQUIRE_MESSAGE(port > 0, err);
  }
  httplib::Client client() const {
    httplib::Client c{"127.0.0.1", port};
    c.set_read_timeout(10, 0);
    return c;
  }
  httplib::Result get(const std::string& path, const httplib::Headers& headers = {}) {
    return client().Get(path.c_str(), headers);
  }
  httplib::Result post(const std::string& path, const std::string& body, const httplib::Headers& headers = {}) {
    return client().Post(path.c_str(), headers, body, "application/json");
  }
  reference_server server;
  int port = -1;
};

reference_server_options with_model(const std::string& model) {
  reference_server_options o;
  o.model = model;
  return o;
}

using json_value = simdjson::simdjson_result<simdjson::dom::element>;

/// A parsed JSON answer (the document lives as long as this object).
struct json_doc {
  explicit json_doc(const std::string& text) {
    if (parser.parse(text).get(root))
      FAIL_CHECK("not JSON: " << text);
  }
  json_value operator[](const char* key) const {
    return root[key];
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
};

std::string str(json_value e) {
  std::string_view s;
  return e.get(s) ? "<not a string>" : std::string{s};
}

int64_t integer(json_value e) {
  int64_t v = 0;
  return e.get(v) ? INT64_MIN : v;
}

std::string raw(json_value e) {
  simdjson::dom::element x;
  return e.get(x) ? "<missing>" : simdjson::minify(x);
}

bool missing(json_value e) {
  return e.error() == simdjson::NO_SUCH_FIELD;
}

bool is_null(json_value e) {
  simdjson::dom::element x;
  return !e.get(x) && x.is_null();
}

/// The elements of an array (none when it is not one).
std::vector<simdjson::dom::element> items(json_value e) {
  std::vector<simdjson::dom::element> out;
  simdjson::dom::array arr;
  if (!e.get(arr))
    for (auto x : arr)
      out.push_back(x);
  return out;
}

std::vector<std::string> strings(json_value e) {
  std::vector<std::string> out;
  for (auto x : items(e))
    out.push_back(str(json_value{simdjson::dom::element{x}}));
  return out;
}

std::vector<double> numbers(json_value e) {
  std::vector<double> out;
  for (auto x : items(e)) {
    double v = 0;
    out.push_back(x.get(v) ? std::nan("") : v);
  }
  return out;
}

/// The hash embedder's vector for `text`, computed in process.
std::vector<double> embed(const std::string& text, uint32_t dims) {
  std::string err;
  auto model = (*model_registry::with_builtins().find("hash-embedder"))(
    "{\"dimensions\":" + std::to_string(dims) + "}", err);
  call_request req;
  req.names = {"text"};
  req.values = {"\"" + text + "\""};
  req.rows = 1;
  call_result res;
  model.compute(req, res);
  simdjson::dom::parser p;
  return numbers(p.parse(res.values.at(0)));
}

/// One sample of a Prometheus text exposition.
struct sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

bool metric_name_ok(const std::string& s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9'))
    return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':'))
      return false;
  return true;
}

/// Parses the Prometheus text format (0.0.4); every violation found goes to
/// `problems`: a bad line, a TYPE given twice or after its samples, a family
/// whose samples are not together, a bad escape.
std::vector<sample> parse_exposition(const std::string& text, std::vector<std::string>& problems) {
  std::vector<sample> out;
  std::map<std::string, std::string> types;
  std::map<std::string, int> helps;
  std::vector<std::string> families_seen; // in order of their first sample
  if (text.empty() || text.back() != '\n')
    problems.push_back("does not end with a newline");
  size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string::npos)
      end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty())
      continue;
    if (line[0] == '#') {
      std::istringstream is{line};
      std::string hash, kw, name;
      is >> hash >> kw >> name;
      if (kw == "TYPE") {
        std::string type;
        is >> type;
        if (!metric_name_ok(name))
          problems.push_back("bad name in: " + line);
        if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" && type != "untyped")
          problems.push_back("bad type in: " + line);
        if (types.count(name))
          problems.push_back("second TYPE for " + name);
        for (auto& f : families_seen)
          if (f == name)
            problems.push_back("TYPE after samples for " + name);
        types[name] = type;
      } else if (kw == "HELP") {
        if (++helps[name] > 1)
          problems.push_back("second HELP for " + name);
      }
      continue;
    }
    sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ')
      ++i;
    s.name = line.substr(0, i);
    if (!metric_name_ok(s.name))
      problems.push_back("bad metric name in: " + line);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          problems.push_back("bad label in: " + line);
          break;
        }
        std::string key = line.substr(i, eq - i);
        std::string value;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\') {
            char e = j + 1 < line.size() ? line[++j] : '?';
            if (e == 'n')
              value += '\n';
            else if (e == '\\' || e == '"')
              value += e;
            else
              problems.push_back("bad escape in: " + line);
          } else {
            value += line[j];
          }
        }
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',')
          ++i;
      }
      ++i; // '}'
    }
    if (i >= line.size() || line[i] != ' ') {
      problems.push_back("no value in: " + line);
      continue;
    }
    std::string value = line.substr(i + 1);
    char* rest = nullptr;
    s.value = std::strtod(value.c_str(), &rest);
    if (rest == value.c_str() || (*rest != '\0' && *rest != ' '))
      problems.push_back("bad value in: " + line);
    if (!types.count(s.name))
      problems.push_back("sample without a TYPE: " + line);
    if (families_seen.empty() || families_seen.back() != s.name) {
      for (auto& f : families_seen)
        if (f == s.name)
          problems.push_back("samples of " + s.name + " are not together");
      families_seen.push_back(s.name);
    }
    out.push_back(s);
  }
  return out;
}

/// The value of the only sample named `name` (NaN when absent).
double metric(const std::vector<sample>& samples, const std::string& name) {
  for (auto& s : samples)
    if (s.name == name)
      return s.value;
  return std::nan("");
}

/// The server's /metrics, parsed; the text must be valid.
std::vector<sample> scrape(fixture& f) {
  auto r = f.get("/metrics");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0) == 0);
  std::vector<std::string> problems;
  auto samples = parse_exposition(r->body, problems);
  for (auto& p : problems)
    FAIL_CHECK(p);
  return samples;
}

const std::string three_rows_flat =
  R"({"id":"req-7","inputs":[{"name":"text","datatype":"BYTES","shape":[3,1],"data":["great product","terrible service","it was ok"]}]})";
const std::string three_rows_nested =
  R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[3,1],"data":[["great product"],["terrible service"],["it was ok"]]}]})";

} // namespace

TEST_CASE("kserve: metadata derives output datatypes and shapes from a probe") {
  struct row {
    const char* model;
    uint32_t dims;
    const char* outputs;
  };
  std::vector<row> rows = {
    {"keyword-classifier", 8,
     R"([{"name":"label","datatype":"BYTES","shape":[-1,1]},{"name":"score","datatype":"FP32","shape":[-1,1]}])"},
    {"hash-embedder", 16, R"([{"name":"embedding","datatype":"FP32","shape":[-1,16]}])"},
    {"text-length", 8, R"([{"name":"length","datatype":"INT64","shape":[-1,1]}])"},
    {"noop", 8, R"([{"name":"result","datatype":"BOOL","shape":[-1,1]}])"},
  };
  for (auto& r : rows) {
    CAPTURE(r.model);
    auto o = with_model(r.model);
    o.embedding_dim = r.dims;
    fixture f{o};
    std::string expected = std::string{"{\"name\":\""} + r.model
                           + R"(","versions":["1"],"platform":"sinfer-reference","inputs":[{"name":"text","datatype":"BYTES","shape":[-1,1]}],"outputs":)"
                           + r.outputs + "}";
    for (auto path : {"/v2/models/" + std::string{r.model}, "/v2/models/" + std::string{r.model} + "/versions/1"}) {
      CAPTURE(path);
      auto res = f.get(path);
      REQUIRE(res);
      CHECK(res->status == 200);
      CHECK(res->body == expected);
    }
    for (auto path : {std::string{"/v2/models/other"}, "/v2/models/" + std::string{r.model} + "/versions/2"}) {
      CAPTURE(path);
      auto res = f.get(path);
      REQUIRE(res);
      CHECK(res->status == 404);
      json_doc d{res->body};
      CHECK(str(d["error"]).find("unknown model") != std::string::npos);
    }
  }
  // served_name renames the model on every KServe path.
  auto o = with_model("keyword-classifier");
  o.served_name = "sentiment";
  fixture f{o};
  CHECK(f.get("/v2/models/sentiment")->status == 200);
  CHECK(f.get("/v2/models/keyword-classifier")->status == 404);
  json_doc d{f.get("/v2/models/sentiment")->body};
  CHECK(str(d["name"]) == "sentiment");
}

TEST_CASE("kserve: infer with flat, nested and 1-d data; outputs filtered on request") {
  fixture f{with_model("keyword-classifier")};
  for (auto body : {three_rows_flat, three_rows_nested}) {
    CAPTURE(body);
    auto res = f.post("/v2/models/keyword-classifier/infer", body);
    REQUIRE(res);
    REQUIRE(res->status == 200);
    json_doc d{res->body};
    CHECK(str(d["model_name"]) == "keyword-classifier");
    CHECK(str(d["model_version"]) == "1");
    if (body == three_rows_flat)
      CHECK(str(d["id"]) == "req-7");
    else
      CHECK(missing(d["id"]));
    auto outputs = items(d["outputs"]);
    REQUIRE(outputs.size() == 2);
    auto label = outputs[0];
    auto score = outputs[1];
    CHECK(str(label["name"]) == "label");
    CHECK(str(label["datatype"]) == "BYTES");
    CHECK(raw(label["shape"]) == "[3,1]");
    CHECK(strings(label["data"]) == std::vector<std::string>{"positive", "negative", "neutral"});
    CHECK(str(score["name"]) == "score");
    CHECK(str(score["datatype"]) == "FP32");
    CHECK(raw(score["shape"]) == "[3,1]");
    CHECK(numbers(score["data"]) == std::vector<double>{1.0, 1.0, 0.5});
  }
  // Shape [b] and a single requested output.
  auto res = f.post("/v2/models/keyword-classifier/versions/1/infer",
                    R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[2],"data":["love it","hate it"]}],)"
                    R"("outputs":[{"name":"label"}]})");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  json_doc d{res->body};
  auto outputs = items(d["outputs"]);
  REQUIRE(outputs.size() == 1);
  CHECK(str(outputs[0]["name"]) == "label");
  CHECK(strings(outputs[0]["data"]) == std::vector<std::string>{"positive", "negative"});
  CHECK(f.server.records() == 8);
  CHECK(f.server.requests() == 3);
}

TEST_CASE("kserve: embeddings come back as [b, d] with b * d floats, row-major") {
  auto o = with_model("hash-embedder");
  o.embedding_dim = 16;
  fixture f{o};
  auto res = f.post("/v2/models/hash-embedder/infer",
                    R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[2,1],"data":["great product","slow refund"]}]})");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  json_doc d{res->body};
  auto out = d["outputs"].at(0);
  CHECK(str(out["name"]) == "embedding");
  CHECK(str(out["datatype"]) == "FP32");
  CHECK(raw(out["shape"]) == "[2,16]");
  auto data = numbers(out["data"]);
  REQUIRE(data.size() == 32);
  auto a = embed("great product", 16);
  auto b = embed("slow refund", 16);
  CHECK(std::vector<double>(data.begin(), data.begin() + 16) == a);
  CHECK(std::vector<double>(data.begin() + 16, data.end()) == b);
}

TEST_CASE("kserve: bad requests are 400, unknown models and versions 404, each with an error message") {
  fixture f{with_model("keyword-classifier")};
  const std::string infer = "/v2/models/keyword-classifier/infer";
  struct row {
    const char* name;
    std::string path;
    std::string body;
    int status;
    const char* says;
  };
  auto tensor = [](const std::string& fields) { return R"({"inputs":[{"name":"text",)" + fields + "}]}"; };
  std::vector<row> rows = {
    {"unknown model", "/v2/models/nope/infer", three_rows_flat, 404, "unknown model: 'nope'"},
    {"unknown version", "/v2/models/keyword-classifier/versions/3/infer", three_rows_flat, 404, "version 3"},
    {"not JSON", infer, "{", 400, "JSON object"},
    {"no inputs", infer, R"({"outputs":[]})", 400, "\"inputs\""},
    {"wrong datatype", infer, tensor(R"("datatype":"FP32","shape":[1,1],"data":[1.5])"), 400, "datatype must be BYTES"},
    {"no datatype", infer, tensor(R"("shape":[1,1],"data":["a"])"), 400, "no \"datatype\""},
    {"shape and data disagree", infer, tensor(R"("datatype":"BYTES","shape":[3,1],"data":["a","b"])"), 400,
     "has 3 elements, data has 2"},
    {"nested data disagrees", infer, tensor(R"("datatype":"BYTES","shape":[2,1],"data":[["a"],["b"],["c"]])"), 400,
     "has 2 elements, data has 3"},
    {"two elements a row", infer, tensor(R"("datatype":"BYTES","shape":[1,2],"data":["a","b"])"), 400,
     "must be [b, 1]"},
    {"negative shape", infer, tensor(R"("datatype":"BYTES","shape":[-1,1],"data":["a"])"), 400, "integers in 0..2^31"},
    {"huge shape", infer, tensor(R"("datatype":"BYTES","shape":[4294967296,4294967296],"data":["a"])"), 400,
     "integers in 0..2^31"},
    {"empty batch", infer, tensor(R"("datatype":"BYTES","shape":[0,1],"data":[])"), 400, "at least 1"},
    {"data not strings", infer, tensor(R"("datatype":"BYTES","shape":[1,1],"data":[7])"), 400, "must be strings"},
    {"unknown input", infer, R"({"inputs":[{"name":"txt","datatype":"BYTES","shape":[1,1],"data":["a"]}]})", 400,
     "unknown input 'txt' (the model's inputs: text)"},
    {"unknown output", infer, R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[1,1],"data":["a"]}],)"
                              R"("outputs":[{"name":"colour"}]})",
     400, "unknown output 'colour' (the model's outputs: label, score)"},
    {"id not a string", infer, R"({"id":5,"inputs":[{"name":"text","datatype":"BYTES","shape":[1,1],"data":["a"]}]})",
     400, "\"id\""},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    auto res = f.post(r.path, r.body);
    REQUIRE(res);
    CHECK(res->status == r.status);
    json_doc d{res->body};
    CHECK_MESSAGE(str(d["error"]).find(r.says) != std::string::npos, res->body);
  }
  CHECK(f.server.records() == 0);
}

TEST_CASE("kserve: health and readiness, and the unready fault") {
  fixture f{with_model("keyword-classifier")};
  auto status_of = [&](const std::string& path) { return f.get(path)->status; };
  CHECK(f.get("/v2/health/live")->body == R"({"live":true})");
  CHECK(f.get("/v2/health/ready")->body == R"({"ready":true})");
  CHECK(status_of("/v2/models/keyword-classifier/ready") == 200);
  CHECK(status_of("/v2/models/keyword-classifier/versions/1/ready") == 200);
  CHECK(status_of("/v2/models/other/ready") == 404);
  CHECK(status_of("/v2/models/keyword-classifier/versions/2/ready") == 404);
  CHECK(status_of("/health") == 200);
  // Unready until changed: probes 503, liveness and inference unaffected.
  REQUIRE(f.post("/control", R"({"fault":"unready"})")->status == 200);
  for (int i = 0; i < 3; ++i) {
    CHECK(status_of("/v2/health/ready") == 503);
    CHECK(status_of("/v2/models/keyword-classifier/ready") == 503);
    CHECK(status_of("/health") == 503);
  }
  CHECK(f.get("/v2/health/ready")->body == R"({"ready":false})");
  CHECK(status_of("/v2/health/live") == 200);
  CHECK(f.post("/v2/models/keyword-classifier/infer", three_rows_flat)->status == 200);
  CHECK(status_of("/v2/models/other/ready") == 404);
  REQUIRE(f.post("/control", R"({"fault":"none"})")->status == 200);
  CHECK(status_of("/v2/health/ready") == 200);
  // Unready for two probes: infer requests in between do not count.
  REQUIRE(f.post("/control", R"({"fault":"unready","count":2})")->status == 200);
  CHECK(f.post("/v2/models/keyword-classifier/infer", three_rows_flat)->status == 200);
  CHECK(status_of("/v2/health/ready") == 503);
  CHECK(status_of("/v2/models/keyword-classifier/versions/1/ready") == 503);
  CHECK(status_of("/v2/health/ready") == 200);
  CHECK(status_of("/v2/models/keyword-classifier/ready") == 200);
  // Unknown faults and shapes are refused.
  CHECK(f.post("/control", R"({"fault":"melt"})")->status == 400);
  CHECK(f.post("/control", R"({"error-shape":"xml"})")->status == 400);
}

TEST_CASE("injected faults answer in each protocol's shape, with Retry-After") {
  fixture f{with_model("keyword-classifier")};
  struct row {
    const char* name;
    std::string path;
    std::string body;
  };
  std::vector<row> rows = {
    {"http-json", "/infer", R"({"inputs":[{"text":"great"}]})"},
    {"kserve", "/v2/models/keyword-classifier/infer", three_rows_flat},
    {"openai", "/v1/chat/completions", R"({"model":"keyword-classifier","messages":[{"role":"user","content":"hi"}]})"},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    REQUIRE(f.post("/control", R"({"fault":"status","status":503,"retry-after":2,"count":1})")->status == 200);
    auto res = f.post(r.path, r.body);
    REQUIRE(res);
    CHECK(res->status == 503);
    CHECK(res->get_header_value("Retry-After") == "2");
    json_doc d{res->body};
    if (std::string{r.name} == "openai") {
      CHECK(str(d["error"]["message"]) == "injected fault");
      CHECK(str(d["error"]["type"]) == "server_error");
      CHECK(integer(d["error"]["code"]) == 503);
    } else {
      CHECK(str(d["error"]) == "injected fault");
    }
    CHECK(f.post(r.path, r.body)->status == 200); // count 1: over
    REQUIRE(f.post("/control", R"({"fault":"garbage","count":1})")->status == 200);
    res = f.post(r.path, r.body);
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == "<html>502 Bad Gateway</html>");
  }
}

TEST_CASE("openai: model list and embeddings as floats and as base64 float32") {
  auto o = with_model("keyword-classifier");
  o.served_name = "sinfer-embed";
  o.embedding_dim = 12;
  fixture f{o};
  json_doc models{f.get("/v1/models")->body};
  CHECK(str(models["object"]) == "list");
  auto m = models["data"].at(0);
  CHECK(str(m["id"]) == "sinfer-embed");
  CHECK(str(m["object"]) == "model");
  CHECK(str(m["owned_by"]) == "sinfer");

  auto res = f.post("/v1/embeddings", R"({"model":"sinfer-embed","input":["great product","slow  refund now"]})");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  json_doc d{res->body};
  CHECK(str(d["object"]) == "list");
  CHECK(str(d["model"]) == "sinfer-embed");
  CHECK(integer(d["usage"]["prompt_tokens"]) == 5);
  CHECK(integer(d["usage"]["total_tokens"]) == 5);
  std::vector<std::vector<double>> floats;
  for (auto item : items(d["data"])) {
    CHECK(str(item["object"]) == "embedding");
    CHECK(integer(item["index"]) == static_cast<int64_t>(floats.size()));
    floats.push_back(numbers(item["embedding"]));
  }
  REQUIRE(floats.size() == 2);
  CHECK(floats[0] == embed("great product", 12));
  CHECK(floats[1] == embed("slow  refund now", 12));

  res = f.post("/v1/embeddings", R"({"model":"sinfer-embed","input":["great product","slow  refund now"],)"
                                 R"("encoding_format":"base64"})");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  json_doc b{res->body};
  size_t i = 0;
  for (auto item : items(b["data"])) {
    REQUIRE(i < 2);
    auto bytes = decoded_base64(str(item["embedding"]));
    REQUIRE(bytes.size() == 12 * 4);
    for (size_t k = 0; k < 12; ++k) {
      uint32_t bits = 0;
      for (int j = 3; j >= 0; --j)
        bits = (bits << 8) | static_cast<uint8_t>(bytes[k * 4 + static_cast<size_t>(j)]);
      float x = 0;
      std::memcpy(&x, &bits, sizeof x);
      CHECK(x == static_cast<float>(floats[i][k]));
    }
    ++i;
  }
  CHECK(i == 2);
  // A single string is one input.
  json_doc one{f.post("/v1/embeddings", R"({"model":"sinfer-embed","input":"great product"})")->body};
  CHECK(items(one["data"]).size() == 1);
  CHECK(numbers(one["data"].at(0)["embedding"]) == floats[0]);
  CHECK(f.server.records() == 5);
}

TEST_CASE("openai: chat completions are templated, counted in words and cut at max_tokens") {
  fixture f{with_model("keyword-classifier")};
  auto chat = [&](const std::string& user, const std::string& extra) {
    return f.post("/v1/chat/completions",
                  R"({"model":"keyword-classifier","messages":[{"role":"system","content":"be brief"},)"
                  R"({"role":"user","content":")"
                    + user + "\"}]" + extra + "}");
  };
  auto res = chat("great product, fast delivery", R"(,"temperature":0.2)");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  json_doc d{res->body};
  CHECK(str(d["id"]).rfind("chatcmpl-", 0) == 0);
  CHECK(str(d["object"]) == "chat.completion");
  CHECK(str(d["model"]) == "keyword-classifier");
  CHECK(integer(d["created"]) > 1600000000);
  auto choice = d["choices"].at(0);
  CHECK(integer(choice["index"]) == 0);
  CHECK(str(choice["message"]["role"]) == "assistant");
  CHECK(str(choice["message"]["content"]) == "Summary (positive): great product, fast delivery");
  CHECK(str(choice["finish_reason"]) == "stop");
  CHECK(integer(d["usage"]["prompt_tokens"]) == 6);
  CHECK(integer(d["usage"]["completion_tokens"]) == 6);
  CHECK(integer(d["usage"]["total_tokens"]) == 12);
  // max_tokens on both sides of the answer's length (6 words).
  struct row {
    int max_tokens;
    const char* content;
    const char* finish;
  };
  std::vector<row> rows = {
    {1, "Summary", "length"},
    {5, "Summary (positive): great product, fast", "length"},
    {6, "Summary (positive): great product, fast delivery", "stop"},
    {7, "Summary (positive): great product, fast delivery", "stop"},
  };
  for (auto& r : rows) {
    CAPTURE(r.max_tokens);
    auto x = chat("great product, fast delivery", ",\"max_tokens\":" + std::to_string(r.max_tokens));
    REQUIRE(x);
    REQUIRE(x->status == 200);
    json_doc c{x->body};
    CHECK(str(c["choices"].at(0)["message"]["content"]) == r.content);
    CHECK(str(c["choices"].at(0)["finish_reason"]) == r.finish);
    CHECK(integer(c["usage"]["completion_tokens"]) == std::min(r.max_tokens, 6));
  }
  // At most the first 12 words of the last user message.
  json_doc l{chat("the food was awful and the waiter was rude and slow and we left early", "")->body};
  CHECK(str(l["choices"].at(0)["message"]["content"])
        == "Summary (negative): the food was awful and the waiter was rude and slow and");
  CHECK(str(l["choices"].at(0)["finish_reason"]) == "stop");
  CHECK(integer(l["usage"]["completion_tokens"]) == 14);
  CHECK(integer(l["usage"]["prompt_tokens"]) == 2 + 15);
}

TEST_CASE("openai: errors in the current shape, or vLLM's legacy shape by option or /control") {
  auto check_shape = [](const httplib::Result& res, int status, const char* type, bool legacy, const char* says) {
    REQUIRE(res);
    CHECK(res->status == status);
    json_doc d{res->body};
    json_value e = legacy ? json_value{simdjson::dom::element{d.root}} : d["error"];
    if (legacy)
      CHECK(str(e["object"]) == "error");
    else
      CHECK(missing(d["object"]));
    CHECK_MESSAGE(str(e["message"]).find(says) != std::string::npos, res->body);
    CHECK(str(e["type"]) == type);
    CHECK(is_null(e["param"]));
    CHECK(integer(e["code"]) == status);
  };
  for (bool legacy_option : {false, true}) {
    CAPTURE(legacy_option);
    auto o = with_model("keyword-classifier");
    o.legacy_errors = legacy_option;
    fixture f{o};
    auto wrong_model = [&] { return f.post("/v1/embeddings", R"({"model":"gpt-4","input":"hi"})"); };
    check_shape(wrong_model(), 404, "not_found_error", legacy_option, "`gpt-4` does not exist");
    check_shape(f.post("/v1/embeddings", R"({"model":"keyword-classifier","input":[1,2]})"), 400,
                "invalid_request_error", legacy_option, "\"input\"");
    check_shape(f.post("/v1/embeddings", R"({"input":"hi","encoding_format":"hex"})"), 400, "invalid_request_error",
                legacy_option, "encoding_format");
    check_shape(f.post("/v1/chat/completions", R"({"messages":[]})"), 400, "invalid_request_error", legacy_option,
                "\"messages\"");
    check_shape(f.post("/v1/chat/completions", R"({"messages":[{"role":"system","content":"x"}]})"), 400,
                "invalid_request_error", legacy_option, "no user message");
    check_shape(f.post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})"),
                400, "invalid_request_error", legacy_option, "max_tokens");
    check_shape(f.post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"stream":true})"),
                400, "invalid_request_error", legacy_option, "stream");
    check_shape(f.post("/v1/chat/completions", R"({"model":"x","messages":[{"role":"user","content":"x"}]})"), 404,
                "not_found_error", legacy_option, "`x` does not exist");
    // /control flips the shape; a body with only "error-shape" keeps the fault.
    REQUIRE(f.post("/control", R"({"fault":"status","status":500,"count":-1})")->status == 200);
    REQUIRE(f.post("/control", std::string{R"({"error-shape":")"} + (legacy_option ? "openai" : "legacy") + "\"}")
              ->status
            == 200);
    check_shape(f.post("/v1/embeddings", R"({"input":"hi"})"), 500, "server_error", !legacy_option,
                "injected fault");
    REQUIRE(f.post("/control", R"({"fault":"none"})")->status == 200);
    check_shape(wrong_model(), 404, "not_found_error", !legacy_option, "does not exist");
    CHECK(f.post("/v1/embeddings", R"({"input":"hi"})")->status == 200);
  }
}

TEST_CASE("API key: every infer path and /v1/models answer 401 in their protocol's shape without it") {
  const std::string key = "sk-ref-0123456789";
  auto o = with_model("keyword-classifier");
  o.api_key = key;
  fixture f{o};
  struct row {
    const char* name;
    std::string path;
    std::string body; // empty: GET
    bool openai;
  };
  std::vector<row> rows = {
    {"http-json", "/infer", R"({"inputs":[{"text":"great"}]})", false},
    {"kserve", "/v2/models/keyword-classifier/infer", three_rows_flat, false},
    {"embeddings", "/v1/embeddings", R"({"input":"great"})", true},
    {"chat", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"great"}]})", true},
    {"models", "/v1/models", "", true},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    for (auto& headers : {httplib::Headers{}, httplib::Headers{{"Authorization", "Bearer sk-wrong"}},
                          httplib::Headers{{"Authorization", key}}}) {
      auto res = r.body.empty() ? f.get(r.path, headers) : f.post(r.path, r.body, headers);
      REQUIRE(res);
      CHECK(res->status == 401);
      json_doc d{res->body};
      CHECK(str(r.openai ? d["error"]["message"] : d["error"]) == "missing or wrong API key");
      if (r.openai)
        CHECK(str(d["error"]["type"]) == "authentication_error");
      CHECK(res->body.find(key) == std::string::npos);
    }
    httplib::Headers good{{"Authorization", "Bearer " + key}};
    auto res = r.body.empty() ? f.get(r.path, good) : f.post(r.path, r.body, good);
    REQUIRE(res);
    CHECK(res->status == 200);
  }
  // Health, metadata and metrics need no key.
  CHECK(f.get("/v2/health/ready")->status == 200);
  CHECK(f.get("/v2/models/keyword-classifier")->status == 200);
  CHECK(f.get("/metrics")->status == 200);
}

TEST_CASE("bounded queue: with every slot busy and the queue full, requests are rejected at once") {
  struct row {
    const char* name;
    std::string path;
    std::string body;
    int rejected_status;
  };
  std::vector<row> rows = {
    {"http-json", "/infer", R"({"inputs":[{"text":"great"}]})", 503},
    {"kserve", "/v2/models/keyword-classifier/infer",
     R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[1,1],"data":["great"]}]})", 503},
    {"openai", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"great"}]})", 429},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    auto o = with_model("keyword-classifier");
    o.slots = 1;
    o.max_queue = 1;
    o.base = std::chrono::milliseconds{200};
    fixture f{o};
    constexpr int n = 4;
    std::vector<int> status(n, 0);
    std::vector<std::string> retry_after(n), body(n);
    std::vector<std::thread> threads;
    auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i)
      threads.emplace_back([&, i] {
        if (auto res = f.post(r.path, r.body)) {
          status[static_cast<size_t>(i)] = res->status;
          retry_after[static_cast<size_t>(i)] = res->get_header_value("Retry-After");
          body[static_cast<size_t>(i)] = res->body;
        }
      });
    for (auto& t : threads)
      t.join();
    auto elapsed = std::chrono::steady_clock::now() - started;
    int ok = 0;
    int rejected = 0;
    for (size_t i = 0; i < n; ++i) {
      CAPTURE(body[i]);
      if (status[i] == 200) {
        ++ok;
        continue;
      }
      CHECK(status[i] == r.rejected_status);
      CHECK(retry_after[i] == "1");
      json_doc d{body[i]};
      if (r.rejected_status == 429) {
        CHECK(str(d["error"]["message"]) == "queue full");
        CHECK(str(d["error"]["type"]) == "rate_limit_error");
      } else {
        CHECK(str(d["error"]) == "queue full");
      }
      ++rejected;
    }
    CHECK(ok + rejected == n);
    CHECK(rejected >= 1);
    // One slot serves one request at a time: the served ones took 200 ms each.
    CHECK(elapsed >= std::chrono::milliseconds{200} * ok);
    CHECK(f.server.rejected() == static_cast<uint64_t>(rejected));
    auto m = scrape(f);
    CHECK(metric(m, "sinfer_reference_rejected_total") == rejected);
    CHECK(metric(m, "nv_inference_request_success") == ok);
    CHECK(metric(m, "nv_inference_request_failure") == rejected);
    CHECK(metric(m, "nv_inference_compute_infer_duration_us") >= 200000.0 * ok);
    CHECK(metric(m, "nv_inference_pending_request_count") == 0);
    CHECK(metric(m, "vllm:num_requests_running") == 0);
  }
  // Unbounded (max_queue 0): everyone waits, nobody is rejected.
  auto o = with_model("keyword-classifier");
  o.slots = 1;
  o.base = std::chrono::milliseconds{20};
  fixture f{o};
  std::vector<std::thread> threads;
  std::vector<int> status(4, 0);
  for (size_t i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      if (auto res = f.post("/infer", R"({"inputs":[{"text":"great"}]})"))
        status[i] = res->status;
    });
  for (auto& t : threads)
    t.join();
  CHECK(status == std::vector<int>(4, 200));
  CHECK(f.server.rejected() == 0);
}

TEST_CASE("/metrics: valid exposition whose figures match the requests made") {
  auto o = with_model("keyword-classifier");
  o.slots = 2;
  o.base = std::chrono::milliseconds{2};
  o.per_record = std::chrono::milliseconds{1};
  fixture f{o};
  auto before = scrape(f);
  CHECK(metric(before, "nv_inference_count") == 0);
  CHECK(metric(before, "vllm:kv_cache_usage_perc") == 0);
  // Four successes: 3 + 2 + 2 + 1 records; two failures.
  REQUIRE(f.post("/v2/models/keyword-classifier/infer", three_rows_flat)->status == 200);
  REQUIRE(f.post("/infer", R"({"inputs":[{"text":"great"},{"text":"awful"}]})")->status == 200);
  REQUIRE(f.post("/v1/embeddings", R"({"input":["a b c","d e"]})")->status == 200);
  REQUIRE(f.post("/v1/chat/completions", R"({"messages":[{"role":"system","content":"be brief"},)"
                                         R"({"role":"user","content":"great product, fast delivery"}]})")
            ->status
          == 200);
  REQUIRE(f.post("/v2/models/keyword-classifier/infer",
                 R"({"inputs":[{"name":"text","datatype":"FP32","shape":[1,1],"data":[1]}]})")
            ->status
          == 400);
  REQUIRE(f.post("/v1/chat/completions", R"({"model":"x","messages":[{"role":"user","content":"hi"}]})")->status
          == 404);
  auto m = scrape(f);
  CHECK(metric(m, "nv_inference_request_success") == 4);
  CHECK(metric(m, "nv_inference_request_failure") == 2);
  CHECK(metric(m, "nv_inference_count") == 8);
  CHECK(metric(m, "nv_inference_exec_count") == 4);
  CHECK(metric(m, "vllm:request_success_total") == 4);
  CHECK(metric(m, "vllm:prompt_tokens_total") == 5 + 6);
  CHECK(metric(m, "vllm:generation_tokens_total") == 6);
  CHECK(metric(m, "sinfer_reference_rejected_total") == 0);
  CHECK(metric(m, "nv_inference_pending_request_count") == 0);
  CHECK(metric(m, "vllm:num_requests_running") == 0);
  CHECK(metric(m, "vllm:num_requests_waiting") == 0);
  CHECK(metric(m, "vllm:gpu_cache_usage_perc") == 0);
  // Each success held its slot for base + b * per_record at least.
  double compute = metric(m, "nv_inference_compute_infer_duration_us");
  CHECK(compute >= 4 * 2000 + 8 * 1000);
  CHECK(metric(m, "nv_inference_request_duration_us")
        >= compute + metric(m, "nv_inference_queue_duration_us"));
  // Every family once, with its labels.
  const std::vector<std::string> triton = {
    "nv_inference_request_success", "nv_inference_request_failure",     "nv_inference_count",
    "nv_inference_exec_count",      "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
    "nv_inference_compute_infer_duration_us", "nv_inference_pending_request_count"};
  const std::vector<std::string> vllm = {"vllm:num_requests_running", "vllm:num_requests_waiting",
                                         "vllm:kv_cache_usage_perc",  "vllm:gpu_cache_usage_perc",
                                         "vllm:prompt_tokens_total",  "vllm:generation_tokens_total",
                                         "vllm:request_success_total"};
  std::map<std::string, int> count;
  for (auto& s : m) {
    ++count[s.name];
    bool is_triton = std::find(triton.begin(), triton.end(), s.name) != triton.end();
    bool is_vllm = std::find(vllm.begin(), vllm.end(), s.name) != vllm.end();
    if (is_triton)
      CHECK(s.labels == std::map<std::string, std::string>{{"model", "keyword-classifier"}, {"version", "1"}});
    if (is_vllm)
      CHECK(s.labels == std::map<std::string, std::string>{{"model_name", "keyword-classifier"}});
  }
  for (auto& names : {triton, vllm})
    for (auto& name : names) {
      CAPTURE(name);
      CHECK(count[name] == 1);
    }
  CHECK(count["sinfer_reference_rejected_total"] == 1);
  auto text = f.get("/metrics")->body;
  CHECK(text.find("# TYPE nv_inference_pending_request_count gauge\n") != std::string::npos);
  CHECK(text.find("# TYPE nv_inference_count counter\n") != std::string::npos);
  CHECK(text.find("# TYPE vllm:kv_cache_usage_perc gauge\n") != std::string::npos);
  CHECK(text.find("# TYPE vllm:prompt_tokens_total counter\n") != std::string::npos);
  CHECK(text.find("# HELP nv_inference_request_success ") != std::string::npos);
}

TEST_CASE("/metrics: label values are escaped") {
  auto o = with_model("keyword-classifier");
  o.served_name = "we\"ird\\name\nx";
  fixture f{o};
  auto text = f.get("/metrics")->body;
  CHECK(text.find(R"(nv_inference_count{model="we\"ird\\name\nx",version="1"} 0)") != std::string::npos);
  auto m = scrape(f);
  REQUIRE(!m.empty());
  CHECK(m.front().labels["model"] == o.served_name);
  json_doc d{f.get("/v1/models")->body};
  CHECK(str(d["data"].at(0)["id"]) == o.served_name);
}

TEST_CASE("/stats: Idempotency-Keys and scored inputs are tallied on every protocol") {
  fixture f{with_model("keyword-classifier")};
  auto stats = [&] {
    auto res = f.get("/stats");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    json_doc d{res->body};
    // The JSON says what the accessor says.
    auto s = f.server.stats();
    CHECK(integer(d["requests"]) == static_cast<int64_t>(s.requests));
    CHECK(integer(d["records"]) == static_cast<int64_t>(s.records));
    CHECK(integer(d["in_flight"]) == static_cast<int64_t>(s.in_flight));
    CHECK(integer(d["waiting"]) == static_cast<int64_t>(s.waiting));
    CHECK(integer(d["rejected"]) == static_cast<int64_t>(s.rejected));
    CHECK(integer(d["keyed_requests"]) == static_cast<int64_t>(s.keyed_requests));
    CHECK(integer(d["repeated_keys"]) == static_cast<int64_t>(s.repeated_keys));
    CHECK(integer(d["distinct_inputs"]) == static_cast<int64_t>(s.distinct_inputs));
    CHECK(integer(d["repeated_inputs"]) == static_cast<int64_t>(s.repeated_inputs));
    CHECK(integer(d["records_in_flight"]) == static_cast<int64_t>(s.records_in_flight));
    return s;
  };
  // The tallies after a step; repeated_keys -1: not checked.
  auto expect_stats = [&](uint64_t keyed, int64_t repeated_keys, uint64_t distinct, uint64_t repeated) {
    auto s = stats();
    CHECK(s.keyed_requests == keyed);
    if (repeated_keys >= 0)
      CHECK(s.repeated_keys == static_cast<uint64_t>(repeated_keys));
    CHECK(s.distinct_inputs == distinct);
    CHECK(s.repeated_inputs == repeated);
    return s;
  };
  auto s = expect_stats(0, 0, 0, 0);
  const std::string kserve_path = "/v2/models/keyword-classifier/infer";
  auto kserve_body = [](const std::string& data) {
    return R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[2,1],"data":)" + data + "}]}";
  };
  httplib::Headers k1{{"Idempotency-Key", "k1"}};
  httplib::Headers k2{{"Idempotency-Key", "k2"}};
  // http-json: rows are objects; their "text" is the input.
  REQUIRE(f.post("/infer", R"({"inputs":[{"text":"great"},{"text":"awful"}]})", k1)->status == 200);
  s = expect_stats(1, 0, 2, 0);
  // The same request again (a retry): key and both rows repeat.
  REQUIRE(f.post("/infer", R"({"inputs":[{"text":"great"},{"text":"awful"}]})", k1)->status == 200);
  s = expect_stats(2, 1, 2, 2);
  CHECK(f.server.key_requests("k1") == 2);
  CHECK(f.server.input_scored("great") == 2);
  // KServe: the same texts as BYTES elements, under another key.
  REQUIRE(f.post(kserve_path, kserve_body(R"(["great","fine"])"), k2)->status == 200);
  s = expect_stats(3, 1, 3, 3);
  REQUIRE(f.post(kserve_path, kserve_body(R"([["fine"],["new"]])"))->status == 200);
  s = expect_stats(3, -1, 4, 4);
  CHECK(f.server.input_scored("great") == 3);
  CHECK(f.server.input_scored("fine") == 2);
  CHECK(f.server.input_scored("new") == 1);
  CHECK(f.server.input_scored("\"great\"") == 0);
  // OpenAI: each embedding input, a chat's last user message.
  REQUIRE(f.post("/v1/embeddings", R"({"input":["new","other"]})", k2)->status == 200);
  REQUIRE(f.post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"great"}]})")->status == 200);
  s = expect_stats(4, 2, 5, 6);
  // Rows not scored count as no input: a bad request (its key counts), an
  // injected fault.
  REQUIRE(f.post("/infer", R"({"inputs":[{"txt":"great"}]})", k1)->status == 400);
  f.server.inject(fault_plan{fault_plan::status, 500, 0, 1.0, {}, 1});
  REQUIRE(f.post("/infer", R"({"inputs":[{"text":"great"}]})")->status == 500);
  s = expect_stats(5, 3, 5, 6);
  CHECK(f.server.input_scored("great") == 4);
  CHECK(f.server.key_requests("k1") == 3);
  CHECK(f.server.key_requests("k2") == 2);
  CHECK(s.records_in_flight == 0);
  CHECK(s.requests == 8);
}

TEST_CASE("/stats: records_in_flight counts the rows of requests not answered yet") {
  auto o = with_model("keyword-classifier");
  o.slots = 1;
  fixture f{o};
  // The first request hangs holding the only slot; the second waits for it.
  f.server.inject(fault_plan{fault_plan::hang, 500, 0, 1.0, std::chrono::milliseconds{60000}, 1});
  std::vector<std::thread> threads;
  threads.emplace_back([&] { f.post("/infer", R"({"inputs":[{"text":"a"},{"text":"b"}]})"); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (f.server.stats().in_flight < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  threads.emplace_back([&] { f.post("/infer", R"({"inputs":[{"text":"c"},{"text":"d"},{"text":"e"}]})"); });
  while (f.server.stats().waiting < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  auto s = f.server.stats();
  CHECK(s.in_flight == 1);
  CHECK(s.waiting == 1);
  CHECK(s.records_in_flight == 5);
  CHECK(s.distinct_inputs == 0);
  // Stopping wakes the hang; every handler has returned once stop does.
  f.server.stop();
  for (auto& t : threads)
    t.join();
  CHECK(f.server.stats().records_in_flight == 0);
}
