#pragma once
/// Records and chunks of records: what flows from source to sink.
///
/// Plain structs with `inspect` overloads so CAF can put them in messages; no
/// CAF header is needed here (policies and backends include this file).

#include <cstdint>
#include <string>
#include <vector>

namespace sinfer {

/// Where a record came from. Together the three fields identify it in the job.
struct record_id {
  /// Index of the source in the job (jobs have one source today).
  uint32_t source = 0;
  /// Partition of that source (a file or stdin is partition 0).
  uint32_t partition = 0;
  /// Position in the partition: the 1-based line number for line sources,
  /// the 0-based sequence number for the generator.
  uint64_t offset = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, record_id& x) {
  return f(x.source, x.partition, x.offset);
}

/// One record: a JSON object (as text) plus its identity.
///
/// Model stages append their output fields to `json`. A record that cannot be
/// scored keeps its text and carries the reason in `error`; later stages pass
/// it through untouched and the sink writes it to the dead-letter file.
struct record {
  record_id id;
  /// The JSON object, one line, no trailing newline.
  std::string json;
  /// Empty while the record is healthy; otherwise why it failed and where.
  std::string error;
  /// When the record was born, in nanoseconds since the actor clock's
  /// epoch (`clock().now().time_since_epoch()`): for a paced generator
  /// (rate or profile) the instant it was due, even when backpressure made
  /// the source read it later (so source lag counts as latency); otherwise
  /// the instant the source read it. The sink measures end-to-end latency
  /// from it.
  int64_t born_ns = 0;

  bool failed() const noexcept {
    return !error.empty();
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, record& x) {
  return f(x.id, x.json, x.error, x.born_ns);
}

/// Records travel between actors in chunks: one message per chunk, credit per
/// record.
using record_chunk = std::vector<record>;

} // namespace sinfer
