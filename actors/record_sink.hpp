#pragma once
/// record_sink: writes scored records to the output (JSONL file or stdout)
/// and failed records to the dead-letter file, one JSON object per line.
///
/// Scope: job (one sink, one input port per subtask). Spawned first by
/// job_supervisor. Receives (connect, ...), (records, subtask, chunk) and
/// (eos, subtask) from each subtask's last stage. Sends (credit, 0, n) back as
/// lines are written (`sink.buffer` records per subtask), (done, figures) to
/// the supervisor when every subtask has ended, or (fail, reason) if a file
/// cannot be written.
/// Dead-letter lines: {"source", "partition", "offset", "line" (line
/// sources), "reason", "record" (the record's text as a JSON string)}. The
/// dead-letter file is created when the first dead letter arrives.
/// Checkpoints on (exactly-once): `sink.path` and `dead-letter.path` are
/// directories of parts (runtime/part_files.hpp). Lines go to the pending
/// part of the current epoch; when every subtask's barrier E has arrived
/// (a subtask whose barrier came first waits, its records queued and its
/// credit held) the part is sealed, the sink acks E, and the next part
/// begins; (commit, E) publishes the sealed parts up to E. When every
/// subtask ended, the last part is sealed and the sink asks the coordinator
/// for the final checkpoint; its commit ends the sink.
/// Blocking: buffered writes to a local file run on a scheduler thread; a
/// stdout sink may block on a slow reader, so it is spawned detached.

#include <memory>

#include <caf/fwd.hpp>

#include "messages/flow.hpp"
#include "runtime/checkpointing.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

struct sink_settings {
  std::shared_ptr<const job_config> cfg;
  supervisor_actor supervisor;
  std::shared_ptr<job_counters> counters;
  /// Checkpoints on: the coordinator to ack and the restored checkpoint
  /// (the first part is numbered after it).
  checkpoint_listener coordinator;
  std::shared_ptr<const checkpoint_context> checkpoints;
};

sink_actor spawn_record_sink(caf::actor_system& sys, sink_settings settings);

} // namespace sinfer
