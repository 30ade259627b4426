// The HTTP protocols as pure codecs: what a batch becomes on the wire and
// how every shape of answer becomes per-record results. No sockets here
// (tests/backends_test.cpp runs them against the reference server).

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include <simdjson.h>

#include "backends/http_backend.hpp"
#include "backends/http_json.hpp"
#include "backends/kserve_v2.hpp"
#include "backends/openai.hpp"

using namespace sinfer;

namespace {

call_request batch(std::vector<std::string> names, std::vector<std::string> values) {
  call_request req;
  req.names = std::move(names);
  req.values = std::move(values);
  req.rows = static_cast<uint32_t>(req.values.size() / req.names.size());
  return req;
}

http_answer ok(std::string body) {
  http_answer a;
  a.status = 200;
  a.body = std::move(body);
  return a;
}

http_answer failed(int status, std::string body, std::string retry_after = {}) {
  http_answer a;
  a.status = status;
  a.body = std::move(body);
  a.retry_after = std::move(retry_after);
  return a;
}

std::string floats_base64(const std::vector<float>& v) {
  std::string bytes(v.size() * 4, '\0');
  std::memcpy(bytes.data(), v.data(), bytes.size());
  return base64(bytes);
}

kserve_v2_settings classifier() {
  kserve_v2_settings s;
  s.model = "clf";
  s.inputs = {{"text", "", {}}};
  s.outputs = {"label", "score"};
  return s;
}

} // namespace

TEST_CASE("error bodies in every server's shape give their message") {
  struct row {
    const char* name;
    const char* body;
    const char* message;
  };
  std::vector<row> rows = {
    {"kserve / triton", R"({"error":"failed to parse the request"})", "failed to parse the request"},
    {"openai", R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit"}})",
     "Rate limit reached"},
    {"older vllm", R"({"object":"error","message":"model not found","type":"NotFoundError","code":404})",
     "model not found"},
    {"fastapi", R"({"detail":"Not Found"})", "Not Found"},
    {"fastapi validation", R"({"detail":[{"msg":"field required"}]})", R"([{"msg":"field required"}])"},
    {"null error, message beside it", R"({"error":null,"message":"boom"})", "boom"},
    {"error object without message", R"({"error":{"code":7}})", R"({"code":7})"},
    {"not json", "<html>502</html>", ""},
    {"no message", R"({"ok":false})", ""},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    CHECK(error_message_of(r.body) == r.message);
  }
  // Classification keeps the server's message and its Retry-After.
  auto res = classify_answer({"x"}, failed(429, R"({"error":{"message":"slow down"}})", "3"));
  CHECK(res.error.cls == error_class::rate_limited);
  CHECK(res.error.retry_after == std::chrono::milliseconds{3000});
  CHECK(res.error.message.find("slow down") != std::string::npos);
  res = classify_answer({"x"}, failed(503, R"({"object":"error","message":"overloaded"})", "1"));
  CHECK(res.error.cls == error_class::rate_limited);
  CHECK(res.error.message.find("overloaded") != std::string::npos);
  res = classify_answer({"x"}, failed(401, R"({"error":{"message":"bad key"}})"));
  CHECK(res.error.cls == error_class::fatal_endpoint);
  http_answer none;
  none.transport_error = "POST x: Read";
  none.timed_out = true;
  res = classify_answer({"x"}, none);
  CHECK(res.error.cls == error_class::retryable);
  CHECK(res.error.timed_out);
}

TEST_CASE("http-json one record per request: the body is the record, the answer its result") {
  http_json_settings s;
  s.batched = false;
  s.inputs = {"text"};
  s.outputs = {"label"};
  http_json_protocol p{s};
  CHECK(p.max_rows() == 1);
  auto req = p.encode(batch({"text"}, {R"("great")"}));
  CHECK(req.body == R"({"text":"great"})");
  auto res = p.decode(1, ok(R"({"label":"positive"})"));
  REQUIRE(res.error.ok());
  CHECK(res.values == std::vector<std::string>{R"("positive")"});
  res = p.decode(1, ok(R"({"error":"too long"})"));
  REQUIRE(res.row_errors.size() == 1);
  CHECK(res.row_errors[0].cls == error_class::fatal_record);
  CHECK(p.decode(1, ok(R"({"x":1})")).error.cls == error_class::fatal_endpoint);
}

TEST_CASE("kserve-v2: a batch is one tensor per input with the batch first") {
  kserve_v2_protocol p{classifier()};
  CHECK(p.path() == "/v2/models/clf/infer");
  auto s = classifier();
  s.version = "3";
  CHECK(kserve_v2_protocol{s}.path() == "/v2/models/clf/versions/3/infer");
  auto req = p.encode(batch({"text"}, {R"("great")", R"("awful \"x\"")"}));
  CHECK(req.rows == 2);
  CHECK(req.rejected.empty());
  CHECK(req.body == R"({"inputs":[{"name":"text","shape":[2,1],"datatype":"BYTES","data":["great","awful \"x\""]}],)"
                    R"("outputs":[{"name":"label"},{"name":"score"}]})");
  // Numeric vectors: datatype and shape from the first record.
  kserve_v2_settings v;
  v.model = "reg";
  v.inputs = {{"features", "", {}}};
  v.outputs = {"y"};
  req = kserve_v2_protocol{v}.encode(batch({"features"}, {"[1.5,2,3]", "[4,5,6]"}));
  CHECK(req.body.find(R"("shape":[2,3],"datatype":"FP32","data":[1.5,2,3,4,5,6])") != std::string::npos);
}

TEST_CASE("kserve-v2: a record that does not fit its tensor fails alone; the rest go") {
  struct row {
    const char* name;
    kserve_tensor tensor;
    std::vector<std::string> values;
    std::vector<bool> rejected;
    const char* reason;
  };
  std::vector<row> rows = {
    {"number for BYTES", {"x", "BYTES", {1}}, {R"("a")", "3", R"("b")"}, {false, true, false}, "expected a string"},
    {"string for FP32", {"x", "FP32", {2}}, {"[1,2]", R"(["a","b"])"}, {false, true}, "expected a number"},
    {"wrong length", {"x", "FP32", {2}}, {"[1,2]", "[1,2,3]"}, {false, true}, "has shape [3], the model expects [2]"},
    {"ragged", {"x", "FP32", {-1, 2}}, {"[[1,2],[3]]", "[[1,2],[3,4]]"}, {true, false}, "rectangular"},
    {"fraction for INT64", {"x", "INT64", {1}}, {"1", "1.5"}, {false, true}, "expected an integer"},
    {"out of range INT8", {"x", "INT8", {1}}, {"127", "128"}, {false, true}, "out of range"},
    {"negative UINT32", {"x", "UINT32", {1}}, {"0", "-1"}, {false, true}, "non-negative"},
    {"BOOL", {"x", "BOOL", {1}}, {"true", "1"}, {false, true}, "expected true or false"},
    {"open length fixed by the first", {"x", "FP32", {-1}}, {"[1,2]", "[1,2]"}, {false, false}, ""},
    {"all rejected", {"x", "BYTES", {1}}, {"1", "2"}, {true, true}, "expected a string"},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    kserve_v2_settings s;
    s.model = "m";
    s.inputs = {r.tensor};
    s.outputs = {"y"};
    auto req = kserve_v2_protocol{s}.encode(batch({"x"}, r.values));
    uint32_t sent = 0;
    for (size_t i = 0; i < r.rejected.size(); ++i) {
      bool rejected = !req.rejected.empty() && !req.rejected[i].ok();
      CHECK(rejected == r.rejected[i]);
      if (rejected) {
        CHECK(req.rejected[i].cls == error_class::fatal_record);
        CHECK_MESSAGE(req.rejected[i].message.find(r.reason) != std::string::npos, req.rejected[i].message);
      } else {
        ++sent;
      }
    }
    CHECK(req.rows == sent);
    if (sent > 0)
      CHECK(req.body.find("\"shape\":[" + std::to_string(sent) + ",") != std::string::npos);
  }
  // The backend answers rejected rows itself and the rest from the server.
  http_request sent;
  sent.rows = 1;
  sent.rejected.resize(2);
  sent.rejected[0] = call_error{error_class::fatal_record, "bad", std::chrono::milliseconds{0}};
  call_result answer;
  answer.names = {"y"};
  answer.values = {"7"};
  auto merged = http_backend::merge_rejected(sent, answer, 2);
  REQUIRE(merged.row_errors.size() == 2);
  CHECK(merged.row_errors[0].message == "bad");
  CHECK(merged.row_errors[1].ok());
  CHECK(merged.values[1] == "7");
  // A whole-call failure (a 429 here) stays whole: the endpoint must pause
  // and the breakers count it, whatever rows were left out.
  call_result limited;
  limited.names = {"y"};
  limited.error = call_error{error_class::rate_limited, "slow down", std::chrono::milliseconds{3000}};
  merged = http_backend::merge_rejected(sent, limited, 2);
  CHECK(merged.error.cls == error_class::rate_limited);
  CHECK(merged.error.retry_after == std::chrono::milliseconds{3000});
}

TEST_CASE("kserve-v2: outputs are read back per row, flat or nested, or the call fails whole") {
  kserve_v2_protocol p{classifier()};
  auto res = p.decode(2, ok(R"({"model_name":"clf","outputs":[
      {"name":"score","shape":[2,1],"datatype":"FP32","data":[0.9,0.1]},
      {"name":"label","shape":[2,1],"datatype":"BYTES","data":["positive","negative"]}]})"));
  REQUIRE(res.error.ok());
  CHECK(res.values == std::vector<std::string>{R"("positive")", "0.9", R"("negative")", "0.1"});
  kserve_v2_settings e;
  e.model = "emb";
  e.inputs = {{"text", "BYTES", {1}}};
  e.outputs = {"embedding"};
  kserve_v2_protocol pe{e};
  for (auto* data : {"[1,2,3,4,5,6]", "[[1,2,3],[4,5,6]]"}) {
    CAPTURE(data);
    res = pe.decode(2, ok(std::string{R"({"outputs":[{"name":"embedding","shape":[2,3],"datatype":"FP32","data":)"}
                          + data + "}]}"));
    REQUIRE(res.error.ok());
    CHECK(res.values == std::vector<std::string>{"[1,2,3]", "[4,5,6]"});
  }
  res = pe.decode(1, ok(R"({"outputs":[{"name":"embedding","shape":[1,2,2],"datatype":"FP32","data":[1,2,3,4]}]})"));
  REQUIRE(res.error.ok());
  CHECK(res.values[0] == "[[1,2],[3,4]]");
  struct row {
    const char* name;
    int status;
    const char* body;
    error_class cls;
    const char* message;
  };
  std::vector<row> rows = {
    {"missing output", 200, R"({"outputs":[{"name":"label","shape":[2,1],"data":["a","b"]}]})",
     error_class::fatal_endpoint, "no output \"score\""},
    {"wrong batch", 200,
     R"({"outputs":[{"name":"label","shape":[1,1],"data":["a"]},{"name":"score","shape":[1,1],"data":[1]}]})",
     error_class::fatal_endpoint, "shape [1,1] for 2 records"},
    {"data short", 200,
     R"({"outputs":[{"name":"label","shape":[2,1],"data":["a"]},{"name":"score","shape":[2,1],"data":[1,2]}]})",
     error_class::fatal_endpoint, "1 elements for shape [2,1]"},
    {"not json", 200, "<html>", error_class::fatal_endpoint, "not JSON"},
    {"no outputs", 200, R"({"model_name":"clf"})", error_class::fatal_endpoint, "no \"outputs\""},
    {"triton error", 400, R"({"error":"unexpected datatype"})", error_class::fatal_record, "unexpected datatype"},
    {"unknown model", 404, R"({"error":"Request for unknown model: 'clf' is not found"})",
     error_class::fatal_endpoint, "unknown model"},
    {"unavailable", 503, R"({"error":"model not ready"})", error_class::retryable, "model not ready"},
    {"shape overflows", 200,
     R"({"outputs":[{"name":"label","shape":[2,2147483648,2147483648,4],"data":[]},{"name":"score","shape":[2,1],"data":[1,2]}]})",
     error_class::fatal_endpoint, "0 elements"},
    {"shape product overflows to what the data has", 200,
     R"({"outputs":[{"name":"label","shape":[2,4294967296,4294967296,1],"data":["a","b"]},{"name":"score","shape":[2,1],"data":[1,2]}]})",
     error_class::fatal_endpoint, "bad shape"},
    {"huge shape, empty data", 200,
     R"({"outputs":[{"name":"label","shape":[2,1073741824,0],"data":[]},{"name":"score","shape":[2,1],"data":[1,2]}]})",
     error_class::fatal_endpoint, "0 elements"},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    res = p.decode(2, failed(r.status, r.body));
    CHECK(res.error.cls == r.cls);
    CHECK_MESSAGE(res.error.message.find(r.message) != std::string::npos, res.error.message);
  }
}

TEST_CASE("kserve-v2: model metadata fills in datatypes and names what the config gets wrong") {
  const std::string meta = R"({"name":"clf","versions":["1"],"platform":"onnxruntime_onnx",
    "inputs":[{"name":"text","datatype":"BYTES","shape":[-1,1]},{"name":"lang","datatype":"BYTES","shape":[-1,1],"optional":true}],
    "outputs":[{"name":"label","datatype":"BYTES","shape":[-1,1]},{"name":"score","datatype":"FP32","shape":[-1,1]}]})";
  auto s = classifier();
  auto problems = kserve_v2_protocol::apply_metadata(s, meta);
  CHECK(problems.empty());
  CHECK(s.inputs[0].datatype == "BYTES");
  CHECK(s.inputs[0].shape == std::vector<int64_t>{1});
  struct row {
    const char* name;
    std::vector<kserve_tensor> inputs;
    std::vector<std::string> outputs;
    std::vector<std::string> keys;
    const char* message;
  };
  std::vector<row> rows = {
    {"unknown input", {{"text", "", {}}, {"txt", "", {}}}, {"label"}, {"input.txt"}, "has no input \"txt\" (its inputs: lang, text)"},
    {"required input missing", {{"lang", "", {}}}, {"label"}, {"input"}, "requires input \"text\""},
    {"unknown output", {{"text", "", {}}}, {"label", "prob"}, {"output.prob"}, "has no output \"prob\" (its outputs: label, score)"},
    {"datatype conflict", {{"text", "FP32", {}}}, {"label"}, {"input.text"}, "configured datatype FP32, the model expects BYTES"},
    {"shape conflict", {{"text", "", {3}}}, {"label"}, {"input.text"}, "configured shape [3], the model expects [1]"},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    kserve_v2_settings c;
    c.model = "clf";
    c.inputs = r.inputs;
    c.outputs = r.outputs;
    auto found = kserve_v2_protocol::apply_metadata(c, meta);
    REQUIRE(found.size() == r.keys.size());
    for (size_t i = 0; i < found.size(); ++i) {
      CHECK(found[i].key == r.keys[i]);
      CHECK_MESSAGE(found[i].message.find(r.message) != std::string::npos, found[i].message);
    }
  }
  auto c = classifier();
  auto bad = kserve_v2_protocol::apply_metadata(c, R"({"models":[]})");
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].key == "model");
  // A datatype the protocol does not have is the server's problem, named,
  // never sent on.
  c = classifier();
  bad = kserve_v2_protocol::apply_metadata(
    c, R"({"inputs":[{"name":"text","datatype":"STRING","shape":[-1,1]}],"outputs":[{"name":"label","datatype":"BYTES","shape":[-1,1]},{"name":"score","datatype":"FP32","shape":[-1,1]}]})");
  REQUIRE(!bad.empty());
  CHECK_MESSAGE(bad[0].message.find("unknown datatype") != std::string::npos, bad[0].message);
  CHECK(c.inputs[0].datatype.empty());
}

TEST_CASE("openai embeddings: many inputs in one request; float or base64 answers by index") {
  openai_settings s;
  s.model = "e5";
  openai_protocol p{s};
  CHECK(p.path() == "/v1/embeddings");
  CHECK(p.output_names() == std::vector<std::string>{"embedding"});
  auto req = p.encode(batch({"input"}, {R"("great")", "42", R"("awful")"}));
  CHECK(req.body == R"({"model":"e5","input":["great","awful"],"encoding_format":"float"})");
  CHECK(req.rows == 2);
  REQUIRE(req.rejected.size() == 3);
  CHECK(req.rejected[1].cls == error_class::fatal_record);
  // Out of order indices, usage tokens.
  auto res = p.decode(2, ok(R"({"object":"list","data":[{"index":1,"embedding":[0.5,-1]},{"index":0,"embedding":[1,0]}],
                                 "usage":{"prompt_tokens":3,"total_tokens":3}})"));
  REQUIRE(res.error.ok());
  CHECK(res.values == std::vector<std::string>{"[1,0]", "[0.5,-1]"});
  CHECK(res.prompt_tokens == 3);
  // base64 little-endian float32.
  auto b = floats_base64({0.25f, -1.5f, 3.0f});
  res = p.decode(1, ok(R"({"data":[{"index":0,"embedding":")" + b + R"("}]})"));
  REQUIRE(res.error.ok());
  CHECK(res.values[0] == "[0.25,-1.5,3]");
  struct row {
    const char* name;
    const char* body;
    const char* message;
  };
  std::vector<row> rows = {
    {"count", R"({"data":[{"index":0,"embedding":[1]}]})", "1 embeddings for 2 inputs"},
    {"repeated index", R"({"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]})", "repeated"},
    {"bad base64", R"({"data":[{"index":0,"embedding":"@@@@"},{"index":1,"embedding":[2]}]})", "not base64"},
    {"base64 not float32", R"({"data":[{"index":0,"embedding":"AAA="},{"index":1,"embedding":[2]}]})", "not base64"},
    {"strings", R"({"data":[{"index":0,"embedding":["a"]},{"index":1,"embedding":[2]}]})", "non-number"},
    {"no data", R"({"object":"list"})", "no \"data\""},
    {"index not an integer", R"({"data":[{"index":"0","embedding":[1]},{"index":1,"embedding":[2]}]})", "not an integer"},
    {"empty base64", R"({"data":[{"index":0,"embedding":""},{"index":1,"embedding":[2]}]})", "not base64"},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    res = p.decode(2, ok(r.body));
    CHECK(res.error.cls == error_class::fatal_endpoint);
    CHECK_MESSAGE(res.error.message.find(r.message) != std::string::npos, res.error.message);
  }
  std::string out;
  CHECK(decode_base64("aGk=", out));
  CHECK(out == "hi");
  CHECK(!decode_base64("a", out));
}

TEST_CASE("base64: RFC 4648's test vectors both ways, padding optional when decoding, bytes kept whole") {
  struct row {
    const char* bytes;
    const char* text;
  };
  for (auto r : std::vector<row>{{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
                                 {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}}) {
    CAPTURE(r.bytes);
    CHECK(base64(r.bytes) == r.text);
    std::string out;
    CHECK(decode_base64(r.text, out));
    CHECK(out == r.bytes);
    std::string unpadded = r.text;
    while (!unpadded.empty() && unpadded.back() == '=')
      unpadded.pop_back();
    CHECK(decode_base64(unpadded, out));
    CHECK(out == r.bytes);
  }
  std::string all;
  for (int c = 0; c < 256; ++c)
    all.push_back(static_cast<char>(c));
  std::string out;
  CHECK(base64(all).size() == 344);
  CHECK(decode_base64(base64(all), out));
  CHECK(out == all);
  std::string appended = "x:";
  append_base64(appended, "hi");
  CHECK(appended == "x:aGk=");
  CHECK(!decode_base64("aGk*", out));
  CHECK(!decode_base64("aGk=a", out)); // a character after the padding
}

TEST_CASE("openai chat: one record per call, a prompt from a template, usage tokens read") {
  std::string err;
  CHECK(openai_protocol::template_fields("Summarise ${review} for ${lang} (${review})", err)
        == std::vector<std::string>{"review", "lang"});
  CHECK(err.empty());
  openai_protocol::template_fields("oops ${review", err);
  CHECK(err.find("unclosed") != std::string::npos);
  openai_settings s;
  s.api = openai_api::chat;
  s.model = "llama";
  s.prompt = "Summarise: ${review} [${stars}]";
  s.system_prompt = "Be brief.";
  s.temperature = 0.0;
  s.max_tokens = 32;
  s.outputs = {"content", "finish_reason", "prompt_tokens", "completion_tokens"};
  openai_protocol p{s};
  CHECK(p.max_rows() == 1);
  CHECK(p.path() == "/v1/chat/completions");
  auto req = p.encode(batch({"review", "stars"}, {R"("so \"good\"")", "5"}));
  simdjson::dom::parser parser;
  auto doc = parser.parse(req.body);
  REQUIRE(doc.error() == simdjson::SUCCESS);
  CHECK(std::string_view{doc["messages"].at(0)["content"]} == "Be brief.");
  CHECK(std::string_view{doc["messages"].at(1)["content"]} == "Summarise: so \"good\" [5]");
  CHECK(double{doc["temperature"]} == 0.0);
  CHECK(int64_t{doc["max_tokens"]} == 32);
  auto res = p.decode(1, ok(R"({"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":"Nice."},
      "finish_reason":"length"}],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}})"));
  REQUIRE(res.error.ok());
  CHECK(res.values == std::vector<std::string>{R"("Nice.")", R"("length")", "12", "2"});
  CHECK(res.completion_tokens == 2);
  CHECK(p.decode(1, ok(R"({"choices":[]})")).error.cls == error_class::fatal_endpoint);
  CHECK(p.decode(1, ok(R"({"choices":[{"message":{}}]})")).error.cls == error_class::fatal_endpoint);
  auto e = p.decode(1, failed(400, R"({"object":"error","message":"max_tokens too large","code":400})"));
  CHECK(e.error.cls == error_class::fatal_record);
  CHECK(e.error.message.find("max_tokens too large") != std::string::npos);
}
