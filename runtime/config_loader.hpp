#pragma once
/// Reads a job config from JSON: parse, apply defaults, validate, and return
/// either a `job_config` or every error at once, one per line, each naming
/// the file, the key path, what was expected and what was found.
/// Unknown keys are errors with a did-you-mean suggestion. No CAF here.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/in_process.hpp"
#include "runtime/job_config.hpp"

namespace sinfer {

struct config_result {
  std::optional<job_config> config;
  /// "file: key.path: expected ..., got ..." lines; empty iff `config` is set.
  std::vector<std::string> errors;
};

/// Loads and validates the job config in `path`.
config_result load_job_config(const std::string& path, const model_registry& models);

/// Same, from JSON text; `file` is the name used in messages.
config_result parse_job_config(std::string_view json, const std::string& file,
                               const model_registry& models);

/// The checks that need the model registry, shared by files and configs
/// built in code: stages name models, in-process models exist and accept
/// their options, input/output names match the model. Fills the defaults
/// that depend on the model (identity input/output mappings). Returns the
/// errors (empty when valid), prefixed with `cfg.file` when it is set.
std::vector<std::string> check_job_config(job_config& cfg, const model_registry& models);

/// Parses "250ms", "2s", "1.5m", "100us"; false on anything else.
bool parse_duration(std::string_view text, std::chrono::nanoseconds& out);

} // namespace sinfer
