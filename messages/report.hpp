#pragma once
/// What a finished job reports. No CAF header here.

#include <cstdint>
#include <string>

namespace sinfer {

/// What the sink counted when every upstream had ended.
struct sink_figures {
  uint64_t written = 0;        ///< lines written to the output
  uint64_t dead_lettered = 0;  ///< records written to the dead-letter file
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sink_figures& x) {
  return f(x.written, x.dead_lettered);
}

/// The outcome of a job run.
struct job_report {
  bool ok = false;
  /// Why the job failed (empty when ok).
  std::string reason;
  uint64_t records_in = 0;       ///< records the source handed to subtasks
  uint64_t records_out = 0;      ///< lines written to the sink
  uint64_t dead_lettered = 0;    ///< records written to the dead-letter file
  /// Wall (or virtual) time from start to end, in nanoseconds.
  int64_t elapsed_ns = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_report& x) {
  return f(x.ok, x.reason, x.records_in, x.records_out, x.dead_lettered, x.elapsed_ns);
}

} // namespace sinfer
