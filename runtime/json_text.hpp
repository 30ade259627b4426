#pragma once
/// Small helpers for JSON as text: escaping, unescaping, appending members.
/// No CAF, no simdjson in this header.

#include <string>
#include <string_view>

namespace sinfer {

/// Appends `s` to `out` as a quoted JSON string.
void append_json_string(std::string& out, std::string_view s);

/// `s` as a quoted JSON string.
std::string json_quote(std::string_view s);

/// If `raw` is a JSON string token (`"..."`), writes its unescaped value to
/// `out` and returns true; otherwise returns false and leaves `out` alone.
bool json_unquote(std::string_view raw, std::string& out);

/// Appends one member to the JSON object text `obj` (which must end with `}`
/// after optional whitespace). `member` is `"name":value` without comma.
void append_member(std::string& obj, std::string_view member);

/// Trims ASCII whitespace (and a trailing \r) from both ends.
std::string_view trim(std::string_view s) noexcept;

/// At most `max` bytes of `s` with every byte outside printable ASCII
/// written as \xNN, and "..." when cut: safe to put in a reason or a log
/// line whatever `s` holds.
std::string printable_excerpt(std::string_view s, size_t max);

/// For JSON text that a strict parser rejected: the first bare token that
/// is not a JSON value, said plainly with where it is ("at x[2]: NaN is not
/// a JSON number (JSON has no NaN or Infinity)"): NaN and infinities, a
/// number beyond double's range, an integer beyond 64 bits, a misspelt
/// number or atom. Empty when every bare token is valid (the problem is the
/// structure). Only for the error path: it scans the whole text.
std::string json_token_problem(std::string_view json);

/// Levenshtein distance, for did-you-mean suggestions.
size_t edit_distance(std::string_view a, std::string_view b);

} // namespace sinfer
