#pragma once
/// Shared by the fuzz targets of tests/fuzz/: the invariant check, the input
/// as text, and logging turned off (a target runs millions of times; spdlog
/// output would dominate the run and flood the terminal).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

/// Aborts (libFuzzer saves the input as a crash; the replay fails) when an
/// invariant does not hold. Not assert(): the fuzz builds are RelWithDebInfo,
/// where NDEBUG is set.
#define FUZZ_CHECK(cond)                                                                             \
  do {                                                                                               \
    if (!(cond)) {                                                                                   \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);             \
      std::abort();                                                                                  \
    }                                                                                                \
  } while (false)

namespace sinfer::fuzz {

/// The fuzzer's bytes as a string_view.
inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// Turns logging off once per process.
inline void quiet() {
  static const bool done = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)done;
}

/// Splits `in` at its first '\n': the header line (without it) and the rest.
/// No newline: all of it is the header and the rest is empty.
inline std::pair<std::string_view, std::string_view> split_header(std::string_view in) {
  auto nl = in.find('\n');
  if (nl == std::string_view::npos)
    return {in, {}};
  return {in.substr(0, nl), in.substr(nl + 1)};
}

/// The next space-separated token of `line` (consumed from it); empty at the
/// end.
inline std::string_view next_token(std::string_view& line) {
  while (!line.empty() && line.front() == ' ')
    line.remove_prefix(1);
  auto end = line.find(' ');
  auto tok = line.substr(0, end);
  line.remove_prefix(end == std::string_view::npos ? line.size() : end);
  return tok;
}

/// `tok` as a decimal number, at most `max`; `fallback` when it is not
/// digits (mutations keep their value bounded instead of being refused).
inline uint64_t number_or(std::string_view tok, uint64_t fallback, uint64_t max) {
  if (tok.empty() || tok.size() > 18)
    return fallback;
  uint64_t v = 0;
  for (char c : tok) {
    if (c < '0' || c > '9')
      return fallback;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v > max ? max : v;
}

} // namespace sinfer::fuzz
