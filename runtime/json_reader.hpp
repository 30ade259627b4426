#pragma once
/// Reading JSON config objects with errors that name the file and key path:
/// shared by the job config loader and the scenario loader (sim/). Each
/// accessor of an `object_reader` marks its key as known; keys nobody asked
/// for are reported with a did-you-mean. No CAF here; include only from .cpp
/// files (it brings simdjson).

#include <chrono>
#include <cstdint>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "runtime/config_loader.hpp"
#include "runtime/json_text.hpp"

namespace sinfer::config_reading {

/// Reads the whole file at `path` into `out`; false (errno set) when it
/// cannot be read.
inline bool read_text_file(const std::string& path, std::string& out) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return false;
  std::ostringstream os;
  os << in.rdbuf();
  out = os.str();
  return true;
}

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

/// Collects errors as "file: path: message".
struct error_log {
  std::string file;
  std::vector<std::string> lines;

  void add(const std::string& path, const std::string& msg) {
    std::string line = file.empty() ? std::string{} : file + ": ";
    if (!path.empty())
      line += path + ": ";
    line += msg;
    lines.push_back(std::move(line));
  }
};

inline std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string{key} : path + "." + std::string{key};
}

/// The value as the user wrote it, shortened, for "got ..." messages.
inline std::string shown(element e) {
  std::string text = simdjson::minify(e);
  if (text.size() > 40)
    text = text.substr(0, 37) + "...";
  return text;
}

/// What kind of JSON value `e` is ("an array", "a string", ...), for "got
/// ..." messages where an object or array was expected: the value itself is
/// not quoted, as a misplaced one could be an API key.
inline std::string kind_of(element e) {
  if (e.is_object())
    return "an object";
  if (e.is_array())
    return "an array";
  if (e.is_string())
    return "a string";
  if (e.is_null())
    return "null";
  if (e.is_bool())
    return "a boolean";
  return "a number";
}

inline std::string did_you_mean(std::string_view key, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (auto& k : known) {
    auto d = edit_distance(key, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  if (!best.empty() && best_d <= std::max<size_t>(2, key.size() / 3))
    return " (did you mean '" + best + "'?)";
  std::string all;
  for (auto& k : known)
    all += (all.empty() ? "" : ", ") + k;
  return " (known keys: " + all + ")";
}

/// Reads one JSON object: each accessor marks its key as known; `finish`
/// reports the keys nobody asked for.
class object_reader {
public:
  object_reader(error_log& log, object obj, std::string path)
    : log_(log), obj_(obj), path_(std::move(path)) {
  }

  ~object_reader() {
    finish();
  }

  /// The element under `key`, if present; marks the key known.
  bool get(std::string_view key, element& out) {
    known_.emplace_back(key);
    return obj_.at_key(key).get(out) == simdjson::SUCCESS;
  }

  bool has(std::string_view key) {
    element e;
    return obj_.at_key(key).get(e) == simdjson::SUCCESS;
  }

  std::string path(std::string_view key) const {
    return join(path_, key);
  }

  void error(std::string_view key, const std::string& msg) {
    log_.add(path(key), msg);
  }

  /// `secret`: the value is never repeated in a message (API keys).
  void string(std::string_view key, std::string& out, bool non_empty = true, bool secret = false) {
    element e;
    if (!get(key, e))
      return;
    std::string_view s;
    if (e.get(s) || (non_empty && s.empty())) {
      error(key, std::string{"expected a "} + (non_empty ? "non-empty " : "") + "string"
                   + (secret ? std::string{" (value not shown)"} : ", got " + shown(e)));
      return;
    }
    out = std::string{s};
  }

  template <class Int>
  void integer(std::string_view key, int64_t min, int64_t max, Int& out) {
    element e;
    if (!get(key, e))
      return;
    int64_t v = 0;
    bool is_int = e.is_int64() || e.is_uint64();
    if (!is_int || e.get(v) || v < min || v > max) {
      error(key, "expected an integer " + range(min, max) + ", got " + shown(e));
      return;
    }
    out = static_cast<Int>(v);
  }

  void number(std::string_view key, double min, double max, double& out) {
    element e;
    if (!get(key, e))
      return;
    double v = 0;
    if (!e.is_number() || e.get(v) || !(v >= min && v <= max)) {
      std::ostringstream os;
      os << "expected a number in " << min << ".." << max << ", got " << shown(e);
      error(key, os.str());
      return;
    }
    out = v;
  }

  void duration(std::string_view key, std::chrono::nanoseconds& out) {
    element e;
    if (!get(key, e))
      return;
    std::string_view s;
    std::chrono::nanoseconds d{0};
    if (e.get(s) || !parse_duration(s, d)) {
      error(key, "expected a duration string such as \"50ms\", \"2s\" or \"1m\", got " + shown(e));
      return;
    }
    out = d;
  }

  void boolean(std::string_view key, bool& out) {
    element e;
    if (!get(key, e))
      return;
    if (e.get(out))
      error(key, "expected true or false, got " + shown(e));
  }

  /// Reads one of `names`; stores its index.
  /// Returns true when the key is present and valid.
  template <class Enum>
  bool choice(std::string_view key, const std::vector<std::string>& names, Enum& out) {
    element e;
    if (!get(key, e))
      return false;
    std::string_view s;
    if (!e.get(s)) {
      for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == s) {
          out = static_cast<Enum>(i);
          return true;
        }
    }
    std::string all;
    for (auto& n : names)
      all += (all.empty() ? "" : " | ") + ("\"" + n + "\"");
    error(key, "expected one of " + all + ", got " + shown(e));
    return false;
  }

  /// The object under `key`, if present and an object (else an error).
  bool sub_object(std::string_view key, object& out) {
    element e;
    if (!get(key, e))
      return false;
    if (e.get(out)) {
      error(key, "expected an object, got " + shown(e));
      return false;
    }
    return true;
  }

  void require(std::string_view key, const std::string& what) {
    known_.emplace_back(key);
    if (!has(key))
      error(key, "missing required key (" + what + ")");
  }

  void finish() {
    if (finished_)
      return;
    finished_ = true;
    std::set<std::string> seen;
    for (auto field : obj_) {
      std::string key{field.key};
      if (!seen.insert(key).second) {
        log_.add(join(path_, key), "duplicate key (each key may appear once)");
        continue;
      }
      bool found = false;
      for (auto& k : known_)
        found = found || k == key;
      if (!found)
        log_.add(join(path_, key), "unknown key" + did_you_mean(key, known_));
    }
  }

private:
  static std::string range(int64_t min, int64_t max) {
    if (max == std::numeric_limits<int64_t>::max())
      return ">= " + std::to_string(min);
    return "in " + std::to_string(min) + ".." + std::to_string(max);
  }

  error_log& log_;
  object obj_;
  std::string path_;
  std::vector<std::string> known_;
  bool finished_ = false;
};

} // namespace sinfer::config_reading
