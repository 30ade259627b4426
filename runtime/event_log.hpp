#pragma once
/// The event log: every decision an operator would ask about, one JSON
/// object per line, to the file `metrics.event-log` (through a dedicated
/// spdlog logger, flushed at every line so `tail -f` and a crash see it).
/// Each line: {"time": "2026-11-25T23:59:59.123Z", "job": NAME, "event":
/// KIND, ...fields}. Kinds and their fields:
/// - "breaker": endpoint, scope ("job" or "subtask N"), from, to, calls,
///   failures (the window's figures when it changed).
/// - "endpoint-suspect" / "endpoint-healthy": endpoint (its load probe
///   stopped answering / answers again).
/// - "retry-budget-exhausted": stage, model, offset.
/// - "dead-letter": source, partition, offset, reason.
/// - "subtask-restart": subtask, stage, reason, delay_ms; "job-failed":
///   reason.
/// - "checkpoint": id, duration_ms.
/// The readable counterparts stay the spdlog lines on stderr. No CAF.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spdlog {
class logger;
}

namespace sinfer {

/// One event: its kind and its fields as raw JSON values (json_quote for
/// strings).
struct job_event {
  std::string kind;
  std::vector<std::pair<std::string, std::string>> fields;

  job_event& field(std::string name, std::string raw_json) {
    fields.emplace_back(std::move(name), std::move(raw_json));
    return *this;
  }
  job_event& text(std::string name, std::string_view value);
  job_event& number(std::string name, double value);
};

class event_log {
public:
  /// Appends to `path` (made if missing); nullptr and `error` when it
  /// cannot be opened.
  static std::shared_ptr<event_log> open(const std::string& path, std::string job_name, std::string& error);

  ~event_log();

  void write(const job_event& e);

  /// The JSON line of `e` at `unix_ms` (what `write` logs; for tests).
  std::string line_of(const job_event& e, int64_t unix_ms) const;

private:
  event_log() = default;
  std::shared_ptr<spdlog::logger> logger_;
  std::string job_;
};

} // namespace sinfer
