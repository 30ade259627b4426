#pragma once
// The protocols a model can speak, as a job configures them: the tables of
// the http and bad_input suites run each row once per protocol.

namespace sinfer::test {

enum class wire { http_json, kserve_v2, openai_embeddings, openai_chat };

inline const char* name_of(wire w) {
  switch (w) {
    case wire::http_json: return "http-json";
    case wire::kserve_v2: return "kserve-v2";
    case wire::openai_embeddings: return "openai embeddings";
    case wire::openai_chat: return "openai chat";
  }
  return "?";
}

} // namespace sinfer::test
