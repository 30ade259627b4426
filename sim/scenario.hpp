#pragma once
/// A failure scenario for `sinfer sim`: the job (the very config file that is
/// deployed, or one inline), the load it sees, the simulated servers behind
/// its endpoints with their fault timelines, named phases, and optionally
/// other configs of the same job to compare. `set` and each comparison's
/// `set` are JSON merge patches over the job (RFC 7386). The load replaces
/// the job's source with a generator. No CAF here.
///
/// ```json
/// {
///   "name": "outage-and-recovery",
///   "job": "reviews-job.json",
///   "set": {"job": {"parallelism": 8}},
///   "load": {"profile": [{"for": "10m", "rate": 1000}], "parallelism": 4},
///   "servers": {
///     "default": {"slots": 4, "base": "5ms", "per-record": "0.2ms", "jitter": 0.1},
///     "classifier/a": {"faults": [{"type": "outage", "at": "2m", "for": "3m"}]}
///   },
///   "phases": [{"name": "before", "until": "2m"}, {"name": "outage", "until": "5m"}, {"name": "after"}],
///   "compare": [{"label": "two-tier"},
///               {"label": "subtask-only", "set": {"models": {"classifier": {"breaker": {"job": {"enabled": false}}}}}}]
/// }
/// ```

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backends/in_process.hpp"
#include "runtime/job_config.hpp"
#include "sim/sim_server.hpp"

namespace sinfer {

struct scenario_phase {
  std::string name;
  std::chrono::nanoseconds from{0};
  std::chrono::nanoseconds to{0};
};

/// One config of the job to run (a scenario without `compare` has one).
struct scenario_variant {
  std::string label;
  job_config job;
  /// The simulated server behind each endpoint, by "model/endpoint".
  std::map<std::string, sim_server_config> servers;
};

struct scenario_config {
  std::string file;
  std::string name;
  std::string description;
  uint64_t seed = 1;
  /// Length of the load profile (the run goes on until the job has drained).
  std::chrono::nanoseconds load_length{0};
  /// How long the job may take to drain after the load ends before the run
  /// stops and counts what is left as lost.
  std::chrono::nanoseconds drain_limit{std::chrono::minutes{10}};
  std::chrono::nanoseconds sample_interval{std::chrono::seconds{1}};
  std::vector<scenario_phase> phases;
  std::vector<scenario_variant> variants;
};

struct scenario_result {
  std::optional<scenario_config> scenario;
  /// "file: key.path: expected ..." lines; empty iff `scenario` is set.
  std::vector<std::string> errors;
};

/// Loads and validates the scenario in `path`; a `job` file is read relative
/// to the scenario's directory.
scenario_result load_scenario(const std::string& path, const model_registry& models);

/// Same, from JSON text; `file` names it in messages, `dir` resolves `job`.
scenario_result parse_scenario(std::string_view json, const std::string& file, const std::string& dir,
                               const model_registry& models);

/// RFC 7386 JSON merge patch of two JSON texts: objects merge key by key,
/// `null` removes a key, anything else replaces. Returns minified JSON, or
/// an empty string when either text is not valid JSON.
std::string json_merge_patch(std::string_view target, std::string_view patch);

} // namespace sinfer
