#pragma once
/// The typed, validated description of a job. Produced by the config loader
/// (from JSON) or by `job_builder` (from C++); immutable once built.
/// Every field's default is written here. No CAF header here.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "policies/inflight_table.hpp"

namespace sinfer {

enum class source_kind : uint8_t { jsonl, stdin_lines, generator };
enum class sink_kind : uint8_t { jsonl, stdout_lines };
enum class failure_action : uint8_t { dead_letter, fail_job };

struct source_config {
  source_kind kind = source_kind::generator;
  /// Name used in record identities and dead letters (default: the path,
  /// "stdin" or "generator").
  std::string name;
  /// jsonl: the file to read.
  std::string path;
  /// generator: how many records (default 1000).
  uint64_t count = 1000;
  /// generator: records per second; 0 means as fast as credit allows.
  double rate = 0;
  /// generator: a JSON object whose strings may hold placeholders:
  /// `${i}` (sequence number; a string that is exactly "${i}" becomes a
  /// number) and `${pick:a|b|c}` (a deterministic choice by i and seed).
  std::string record_template = R"({"id":"${i}","text":"${pick:great product|terrible service|it was ok}"})";
  /// generator: seed for `${pick:...}`.
  uint64_t seed = 1;
};

struct model_config {
  std::string name;
  /// Only "in-process" for now.
  std::string provider = "in-process";
  /// The registered in-process model (default: the model's own name).
  std::string model;
  /// The JSON text of `options`, passed to the model's factory.
  std::string options_json = "{}";
  /// Model input name -> record field it reads (default: same name).
  std::vector<std::pair<std::string, std::string>> input;
  /// Model output name -> record field it writes (default: every output
  /// under its own name).
  std::vector<std::pair<std::string, std::string>> output;
  /// Records in flight in this stage, per subtask (Flink's name). The stage
  /// grants its upstream exactly this much credit. Default 256.
  uint32_t max_concurrent_operations = 256;
  /// Most records in one backend call. Default 64.
  uint32_t batch_max_size = 64;
  /// in-process only: simulated service time added to every call (0: none).
  std::chrono::nanoseconds latency{0};
  /// What happens to a record the model cannot score. Default dead-letter.
  failure_action on_failure = failure_action::dead_letter;
};

struct sink_config {
  sink_kind kind = sink_kind::stdout_lines;
  std::string path;
};

struct job_config {
  /// Where the config came from (for messages); empty when built in code.
  std::string file;
  std::string name = "job";
  /// Subtasks (parallel instances of the model stages). Default 1.
  uint32_t parallelism = 1;
  output_mode mode = output_mode::ordered;
  /// Record field whose value picks the subtask; empty means round-robin.
  std::string partition_by;
  source_config source;
  std::map<std::string, model_config> models;
  /// Model names, in the order records pass through them.
  std::vector<std::string> stages;
  sink_config sink;
  /// Where records that cannot be scored go. Default "dead-letter.jsonl",
  /// created only when the first dead letter arrives.
  std::string dead_letter_path = "dead-letter.jsonl";
  /// `sink.buffer`: records the sink buffers per subtask (its credit).
  /// Default 1024.
  uint32_t sink_buffer = 1024;
};

} // namespace sinfer
