#include "runtime/event_log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include "runtime/json_text.hpp"

namespace sinfer {

job_event& job_event::text(std::string name, std::string_view value) {
  std::string raw;
  append_json_string(raw, value);
  return field(std::move(name), std::move(raw));
}

job_event& job_event::number(std::string name, double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", value);
  return field(std::move(name), buf);
}

std::shared_ptr<event_log> event_log::open(const std::string& path, std::string job_name, std::string& error) {
  static std::atomic<int> count{0};
  std::shared_ptr<event_log> log{new event_log};
  log->job_ = std::move(job_name);
  try {
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false);
    log->logger_ = std::make_shared<spdlog::logger>("sinfer-events-" + std::to_string(count++), sink);
    log->logger_->set_pattern("%v");
    log->logger_->set_level(spdlog::level::info);
    log->logger_->flush_on(spdlog::level::info);
  } catch (const std::exception& e) {
    error = "metrics.event-log: cannot write \"" + path + "\": " + e.what();
    return nullptr;
  }
  return log;
}

event_log::~event_log() {
  if (logger_)
    logger_->flush();
}

std::string event_log::line_of(const job_event& e, int64_t unix_ms) const {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char when[40];
  std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
  std::string line = "{\"time\":\"";
  line += when;
  line += "\",\"job\":";
  append_json_string(line, job_);
  line += ",\"event\":";
  append_json_string(line, e.kind);
  for (auto& f : e.fields) {
    line += ',';
    append_json_string(line, f.first);
    line += ':';
    line += f.second;
  }
  line += '}';
  return line;
}

void event_log::write(const job_event& e) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count();
  logger_->info("{}", line_of(e, ms));
}

} // namespace sinfer
