#pragma once
/// What a checkpoint holds, as bytes: the source's position, each operator's
/// held records, the call log's keys and values, and the job's shape (so a
/// checkpoint of another job shape is refused). Pure: no CAF, no clock, no
/// I/O; decoding checks every length against the bytes left, so damaged or
/// hostile bytes give an error, never a crash.
///
/// Encoding: unsigned LEB128 varints and length-prefixed strings, each
/// snapshot led by a one-byte format version.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "messages/record.hpp"

namespace sinfer {

/// Where the source goes on after a restore: the state before the first
/// record it had not handed to a subtask when the barrier left.
struct source_position {
  /// Line sources: bytes of the file consumed before that record and its
  /// line number - 1 (lines read before it).
  uint64_t bytes = 0;
  uint64_t lines = 0;
  /// Generator: records generated before it.
  uint64_t generated = 0;
  /// Records routed to subtasks before it (round-robin routing goes on from
  /// here).
  uint64_t routed = 0;
};

/// A record an operator held when the barrier passed it.
struct held_snapshot {
  record rec;
  /// Its outcome is in (outputs written, or failed): it leaves as it is.
  bool done = false;
  /// Which model of the stage's chain it was on (fallbacks).
  uint8_t link = 0;
};

std::string encode_source_position(const source_position& p);
bool decode_source_position(std::string_view bytes, source_position& out, std::string& error);

std::string encode_held(const std::vector<held_snapshot>& records);
bool decode_held(std::string_view bytes, std::vector<held_snapshot>& out, std::string& error);

/// A call log value: the model's output values for one record (raw JSON
/// text each, in the model's output order).
std::string encode_outputs(const std::vector<std::string>& values);
std::string encode_outputs(const std::string* values, size_t n);
bool decode_outputs(std::string_view bytes, std::vector<std::string>& out, std::string& error);

/// FNV-1a, 64 bits: stable across runs and builds (std::hash is not).
inline uint64_t fnv1a64(std::string_view s, uint64_t h = 14695981039346656037ull) noexcept {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

/// The durable key of a record's call: model, record identity and the hash
/// of the model's input values (`inputs` raw JSON each, in input order).
std::string call_log_key(std::string_view model, const record_id& id, const std::string* inputs, size_t n);

/// The part names inside a checkpoint.
std::string operator_part_name(uint32_t stage, uint32_t subtask);
inline const char* source_part_name() noexcept {
  return "source";
}

} // namespace sinfer
