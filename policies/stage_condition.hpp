#pragma once
/// Whether a model stage applies to a record: `stages[i].when` in a job
/// config, e.g. {"field": "sentiment", "equals": "negative"}. A record the
/// condition does not match passes the stage untouched (no call, no output
/// fields). Pure: the caller reads the field; values compare as minified
/// JSON text, so "negative" matches the string and 1 matches the number 1.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sinfer {

struct stage_condition {
  enum class test : uint8_t {
    always,     ///< no condition
    equals,     ///< the field is present and equals values[0]
    not_equals, ///< the field is missing or differs from values[0]
    in,         ///< the field is present and equals one of values
    exists,     ///< the field is present (any value but null)
    missing,    ///< the field is absent or null
  };
  test kind = test::always;
  /// The record's top-level field the test reads.
  std::string field;
  /// Minified JSON values (strings with their quotes).
  std::vector<std::string> values;

  /// `value`: the field's minified JSON, nullopt when the record has no
  /// such field.
  bool matches(const std::optional<std::string_view>& value) const noexcept {
    bool present = value.has_value() && *value != "null";
    switch (kind) {
      case test::always: return true;
      case test::equals: return present && !values.empty() && *value == values[0];
      case test::not_equals: return !present || values.empty() || *value != values[0];
      case test::in:
        if (!present)
          return false;
        for (auto& v : values)
          if (*value == v)
            return true;
        return false;
      case test::exists: return present;
      case test::missing: return !present;
    }
    return true;
  }
};

} // namespace sinfer
