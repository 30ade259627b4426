#pragma once
/// What a model stage reads from and writes to a record's JSON text: the
/// stage condition's field, the model's input values, and the output members
/// appended after a call. The inference operator (actors/inference_operator.cpp)
/// calls these once per record and model; the record_fields fuzzer
/// (tests/fuzz/record_fields_fuzz.cpp) calls them on hostile records.
///
/// Every function takes the caller's simdjson parser, so its buffers are
/// reused across records (no allocation per parse once warm), and the record
/// as a `const std::string&`: simdjson then parses it in place when the
/// string's capacity leaves room for its padding, instead of copying it.
/// A record is outside input: a text that is not JSON, or not an object,
/// gives a reason string, never an assert.
/// Pure: no CAF, no clock, no I/O, no logging.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <simdjson.h>

#include "policies/stage_condition.hpp"

namespace sinfer {

/// What `read_inputs` learnt besides the values.
struct input_reading {
  /// Bytes of the values read (their JSON text), for `batch.max-bytes`.
  uint32_t bytes = 0;
  /// The record already holds a field one of the outputs writes: writing the
  /// outputs must first drop it (`write_outputs` with `clash`).
  bool clash = false;
};

/// Reads the fields `inputs` names (model input name -> record field) from
/// the record `json` and appends their values to `values`, one per input in
/// `inputs` order, each as JSON text (a string re-escaped by
/// `append_json_string`, anything else minified). Also notes whether any of
/// `output_targets` (record fields the outputs write) is already there.
/// Returns false, with `why` and `values` as they were, when the record is
/// not JSON ("malformed JSON: ..."), not an object ("not a JSON object"), or
/// lacks an input field ("missing field ..."). `reading.clash` is set
/// whenever the record is an object, missing input or not: a record without
/// its input still takes the default-value outputs.
bool read_inputs(simdjson::dom::parser& parser, const std::string& json,
                 const std::vector<std::pair<std::string, std::string>>& inputs,
                 const std::vector<std::string>& output_targets, std::vector<std::string>& values,
                 input_reading& reading, std::string& why);

/// Whether `why` (from `read_inputs`) says the record cannot hold outputs
/// at all (not JSON, or not an object), as opposed to a missing field.
bool record_unusable(const std::string& why) noexcept;

/// Rewrites the object `json` without the top-level members named one of
/// `targets` (keys compared unescaped), every other member minified, in
/// order. Leaves `json` alone when it is not a JSON object.
void drop_fields(simdjson::dom::parser& parser, std::string& json, const std::vector<std::string>& targets);

/// Appends the output members to the object `json`: `member_prefix[k]`
/// (`"field":`) followed by `values[k]` (raw JSON; an empty value is left
/// out: a default-value without that field). With `clash` (from
/// `read_inputs`) the members named `targets` are dropped first, so no key
/// appears twice. `values` holds `member_prefix.size()` entries.
void write_outputs(simdjson::dom::parser& parser, std::string& json, bool clash,
                   const std::vector<std::string>& targets, const std::vector<std::string>& member_prefix,
                   const std::string* values);

/// Whether the stage condition `cond` holds for the record `json`. A record
/// that is not a JSON object is tried (true): the input read then fails it
/// with its reason.
bool condition_applies(simdjson::dom::parser& parser, const std::string& json, const stage_condition& cond);

} // namespace sinfer
