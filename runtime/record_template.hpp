#pragma once
/// The generator source's record template: a JSON object whose strings may
/// hold placeholders, rendered for record i.
///
/// - `${i}`: the record's 0-based sequence number. A string that is exactly
///   "${i}" renders as a JSON number; inside a longer string, as digits.
/// - `${pick:a|b|c}`: one of the options, chosen by a hash of (i, seed), so
///   the same seed gives the same stream. Options are taken as written
///   (already JSON-escaped, as they sit inside a JSON string).
/// Pure: no clocks, no CAF.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sinfer {

class record_template {
public:
  /// Parses `json` (a minified JSON object). On an unknown or unclosed
  /// placeholder returns nothing and sets `error`.
  static std::optional<record_template> parse(std::string_view json, std::string& error);

  /// Appends record `i` to `out`.
  void render(uint64_t i, uint64_t seed, std::string& out) const;

private:
  enum class kind : uint8_t { literal, index, index_number, pick };
  struct part {
    kind k;
    std::string text;                 // literal
    std::vector<std::string> options; // pick
  };
  std::vector<part> parts_;
};

/// SplitMix64: a well-mixed 64-bit hash of `x`.
constexpr uint64_t splitmix64(uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

} // namespace sinfer
