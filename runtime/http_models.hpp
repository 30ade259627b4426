#pragma once
/// From a model's config to its HTTP protocol and connections, and the
/// checks made against its servers before a job starts. No CAF here.

#include <memory>
#include <string>
#include <vector>

#include "backends/http_backend.hpp"
#include "runtime/job_config.hpp"

namespace sinfer {

/// True for the providers served over HTTP (http-json, kserve-v2, openai).
bool is_http_provider(const model_config& m);

/// The protocol of an HTTP model (`m.provider`).
std::shared_ptr<const http_protocol> make_http_protocol(const model_config& m);

/// How to reach endpoint `i` of `m`: its URL, `concurrency` connections,
/// timeout.attempt, the CA file and the API key header (read from the
/// environment when `api-key-env` names it).
http_connection_settings http_connection_of(const model_config& m, size_t i);

/// What the servers say before the job starts. For each kserve-v2 model:
/// the model's metadata (GET /v2/models/NAME) from the first endpoint that
/// answers, checked against the config, datatypes and shapes filled in;
/// for each openai model: the model list (GET /v1/models) must hold the
/// model. A server that cannot be reached is a warning (the job starts; its
/// breakers and retries take it from there); a server that answers and
/// contradicts the config is an error naming the key path. Blocking: call
/// it before the actors start.
struct remote_check {
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};
remote_check check_remote_models(job_config& cfg);

} // namespace sinfer
