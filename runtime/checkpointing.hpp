#pragma once
/// What a job with `checkpoint.dir` needs before its actors start: the open
/// state store, the checkpoint it resumes from (decoded and checked against
/// the job's shape), the output parts settled, and the calls the log can
/// answer. `sinfer run` and tests call `open_checkpoints`; the supervisor
/// hands the result to the coordinator, source, operators and sink. No CAF.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/call_log.hpp"
#include "runtime/job_config.hpp"
#include "runtime/snapshot_codec.hpp"
#include "runtime/state_store.hpp"

namespace sinfer {

/// Where the output parts of a checkpointed job go: `sink.path` holds
/// "part-EPOCH.jsonl", `dead-letter.path` holds "dead-EPOCH.jsonl".
inline const char* output_part_prefix() noexcept {
  return "part";
}
inline const char* dead_letter_part_prefix() noexcept {
  return "dead";
}

struct checkpoint_context {
  std::shared_ptr<state_store> store;
  /// Where the call log's files go (checkpoint.dir/calls), and this run's
  /// name in them (new_call_log_run).
  std::string call_log_dir;
  std::string call_log_run;
  /// The job's shape (job_fingerprint), written into every checkpoint.
  std::string fingerprint;
  /// The checkpoint this run resumes from; 0: a fresh start. New
  /// checkpoints (and output parts) are numbered from `restored + 1`.
  uint64_t restored = 0;
  /// The restored checkpoint was taken at the end of the input.
  bool restored_finished = false;
  source_position source;
  /// Records each operator held, by part name (operator_part_name).
  std::map<std::string, std::vector<held_snapshot>> held;
  /// Calls completed after the restored checkpoint: call key -> encoded
  /// outputs (encode_outputs). Operators answer records from it.
  std::shared_ptr<const std::unordered_map<std::string, std::string>> replay;
};

struct restore_choice {
  /// `--fresh`: forget every checkpoint, the call log and the output parts.
  bool fresh = false;
  /// `--from-checkpoint ID`: this one instead of the latest.
  std::optional<uint64_t> from;
};

/// The parts of a job's config a checkpoint depends on, one "key = value"
/// line each: parallelism, partitioning, output mode, the source, and the
/// stages with their fallback chains.
std::string job_fingerprint(const job_config& cfg);

/// Empty when a checkpoint taken with `then` can be restored into a job
/// with `now`; else what changed, key by key.
std::string fingerprint_mismatch(const std::string& then, const std::string& now);

/// Opens `cfg.checkpoint.dir`, picks the checkpoint to resume from, settles
/// the output parts and loads the call log. nullptr and `error` (naming the
/// directory and what is wrong) when the job must not start; `notes` gets a
/// line per thing done that a user should hear of (checkpoint restored,
/// torn ones skipped, parts published or deleted).
std::shared_ptr<checkpoint_context> open_checkpoints(const job_config& cfg, const restore_choice& choice,
                                                     std::vector<std::string>& notes, std::string& error);

} // namespace sinfer
