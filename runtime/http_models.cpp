#include "runtime/http_models.hpp"

#include <cstdlib>

#include <simdjson.h>

#include "backends/http_json.hpp"
#include "backends/kserve_v2.hpp"
#include "backends/openai.hpp"

namespace sinfer {

namespace {

kserve_v2_settings kserve_settings_of(const model_config& m) {
  kserve_v2_settings ks;
  ks.model = m.model;
  ks.version = m.kserve_version;
  for (auto& in : m.input) {
    kserve_tensor t;
    t.name = in.first;
    for (auto& k : m.kserve_inputs)
      if (k.name == in.first)
        t = k;
    ks.inputs.push_back(std::move(t));
  }
  for (auto& out : m.output)
    ks.outputs.push_back(out.first);
  return ks;
}

} // namespace

bool is_http_provider(const model_config& m) {
  return m.provider == "http-json" || m.provider == "kserve-v2" || m.provider == "openai";
}

std::shared_ptr<const http_protocol> make_http_protocol(const model_config& m) {
  if (m.provider == "kserve-v2")
    return std::make_shared<kserve_v2_protocol>(kserve_settings_of(m));
  if (m.provider == "openai") {
    openai_settings os;
    os.api = m.openai_kind;
    os.model = m.model;
    os.encoding_format = m.openai_encoding_format;
    os.prompt = m.openai_prompt;
    os.system_prompt = m.openai_system_prompt;
    os.temperature = m.openai_temperature;
    os.max_tokens = m.openai_max_tokens;
    for (auto& out : m.output)
      os.outputs.push_back(out.first);
    return std::make_shared<openai_protocol>(std::move(os));
  }
  http_json_settings hs;
  hs.path = m.http_path;
  hs.inputs_field = m.http_inputs_field;
  hs.outputs_field = m.http_outputs_field;
  hs.batched = m.http_batched;
  for (auto& in : m.input)
    hs.inputs.push_back(in.first);
  for (auto& out : m.output)
    hs.outputs.push_back(out.first);
  return std::make_shared<http_json_protocol>(std::move(hs));
}

http_connection_settings http_connection_of(const model_config& m, size_t i) {
  http_connection_settings cs;
  cs.url = m.endpoints.at(i).url;
  cs.connections = m.endpoint_concurrency(static_cast<uint32_t>(i));
  // Rounded up: a sub-millisecond timeout.attempt must not become 0 ms (every
  // call would count as late before it is sent).
  cs.timeout = std::max(std::chrono::milliseconds{1}, std::chrono::ceil<std::chrono::milliseconds>(m.timeout.attempt));
  cs.ca_file = m.ca_file;
  auto key = m.api_key;
  if (!m.api_key_env.empty())
    if (auto* v = std::getenv(m.api_key_env.c_str()))
      key = v;
  if (!key.empty())
    cs.headers.emplace_back(m.api_key_header, m.api_key_header == "Authorization" ? "Bearer " + key : key);
  return cs;
}

remote_check check_remote_models(job_config& cfg) {
  remote_check out;
  auto prefix = cfg.file.empty() ? std::string{} : cfg.file + ": ";
  for (auto& kv : cfg.models) {
    auto& m = kv.second;
    auto path = prefix + "models." + kv.first;
    if (m.provider != "kserve-v2" && m.provider != "openai")
      continue;
    bool checked = false;
    for (size_t i = 0; i < m.endpoints.size() && !checked; ++i) {
      auto conn = http_connection_of(m, i);
      conn.timeout = std::min(conn.timeout, std::chrono::milliseconds{5000});
      auto where = path + ".endpoints[" + std::to_string(i) + "]";
      if (m.provider == "kserve-v2") {
        auto ks = kserve_settings_of(m);
        auto meta_path = kserve_v2_protocol::metadata_path(ks);
        auto a = http_get(conn, meta_path);
        if (a.status == 0 || a.status >= 500) {
          // A transport error names the request itself ("GET URL: ...").
          out.warnings.push_back(where + ": cannot read the model metadata ("
                                 + (a.status == 0 ? a.transport_error
                                                  : "GET " + conn.url + meta_path + ": HTTP " + std::to_string(a.status))
                                 + "); the datatypes it would give are taken from the records");
          continue;
        }
        checked = true;
        if (a.status != 200) {
          auto msg = error_message_of(a.body);
          out.errors.push_back(path + ".model: the server at " + conn.url + " has no model \"" + m.model + "\""
                               + (m.kserve_version.empty() ? "" : " version " + m.kserve_version) + " (GET "
                               + meta_path + ": HTTP " + std::to_string(a.status)
                               + (msg.empty() ? "" : ": " + scrub_secrets(conn, msg)) + ")");
          continue;
        }
        for (auto& p : kserve_v2_protocol::apply_metadata(ks, a.body))
          out.errors.push_back(path + "." + p.key + ": " + p.message);
        // Keep what the metadata told, for every endpoint's encoder.
        m.kserve_inputs = ks.inputs;
      } else {
        auto a = http_get(conn, "/v1/models");
        if (a.status == 0 || a.status >= 500) {
          out.warnings.push_back(where + ": cannot list the server's models ("
                                 + (a.status == 0 ? a.transport_error
                                                  : "GET " + conn.url + "/v1/models: HTTP " + std::to_string(a.status))
                                 + ")");
          continue;
        }
        checked = true;
        if (a.status == 401 || a.status == 403) {
          out.errors.push_back(path + ".api-key: the server at " + conn.url + " refused the API key (HTTP "
                               + std::to_string(a.status) + ")");
          continue;
        }
        if (a.status != 200)
          continue; // servers without /v1/models: nothing to check
        simdjson::dom::parser parser;
        simdjson::dom::array data;
        if (parser.parse(a.body)["data"].get(data))
          continue;
        std::string served;
        bool found = false;
        for (auto item : data) {
          std::string_view id;
          if (item["id"].get(id))
            continue;
          found = found || id == m.model;
          served += (served.empty() ? "" : ", ") + std::string{id};
        }
        if (!found)
          out.errors.push_back(path + ".model: the server at " + conn.url + " serves no model \"" + m.model
                               + "\" (it serves: " + (served.empty() ? "none" : served) + ")");
      }
    }
  }
  return out;
}

} // namespace sinfer
