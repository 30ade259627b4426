#pragma once
// Helpers shared by the test files: temp dirs, files as lines, JSON fields.

#include <cstdlib>
#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <simdjson.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "runtime/base64.hpp"

namespace sinfer::test {

/// Everything logged (at debug level and up) while it lives, instead of the
/// usual stderr output: for checking what logs say, or never say.
class log_capture {
public:
  log_capture() : saved_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~log_capture() {
    spdlog::set_default_logger(saved_);
  }
  log_capture(const log_capture&) = delete;
  log_capture& operator=(const log_capture&) = delete;
  std::string text() const {
    spdlog::default_logger()->flush();
    return text_.str();
  }

private:
  std::shared_ptr<spdlog::logger> saved_;
  std::ostringstream text_;
};

/// A fresh directory under /tmp, removed when the object dies.
class temp_dir {
public:
  temp_dir() {
    char tmpl[] = "/tmp/sinfer-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::string cmd = "rm -rf '" + path_ + "'";
    [[maybe_unused]] int rc = std::system(cmd.c_str());
  }
  std::string file(const std::string& name) const {
    return path_ + "/" + name;
  }
  const std::string& path() const {
    return path_;
  }

private:
  std::string path_;
};

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out{path, std::ios::binary};
  out << text;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

/// The value of the Prometheus sample `series` ("name{labels}") on a text
/// exposition page; nullopt when the page has no such line.
inline std::optional<double> prometheus_sample(const std::string& page, const std::string& series) {
  auto at = page.find("\n" + series + " ");
  if (at == std::string::npos)
    return std::nullopt;
  return std::stod(page.substr(at + series.size() + 2));
}

/// The names in directory `dir` (not "." and ".."), sorted; empty when it
/// cannot be read.
inline std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (auto* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..")
        names.push_back(name);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// `text` decoded from base64; text that is not base64 gives a marker that
/// no expected value equals (so a check on it fails, naming it).
inline std::string decoded_base64(const std::string& text) {
  std::string bytes;
  return decode_base64(text, bytes) ? bytes : "<not base64: " + text + ">";
}

inline std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in{path};
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

/// Parses one JSON object line; the returned element lives in `parser`.
inline simdjson::dom::object parse_object(simdjson::dom::parser& parser, const std::string& line) {
  simdjson::dom::object obj;
  if (parser.parse(line).get(obj))
    throw std::runtime_error("not a JSON object: " + line);
  return obj;
}

inline std::string str_field(simdjson::dom::object obj, const char* key) {
  std::string_view v;
  if (obj[key].get(v))
    return "<missing " + std::string{key} + ">";
  return std::string{v};
}

inline int64_t int_field(simdjson::dom::object obj, const char* key) {
  int64_t v = -1;
  if (obj[key].get(v))
    return -1;
  return v;
}

/// Counts the occurrences of `needle` in `hay`.
inline size_t count_of(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (auto i = hay.find(needle); i != std::string::npos; i = hay.find(needle, i + 1))
    ++n;
  return n;
}

} // namespace sinfer::test
