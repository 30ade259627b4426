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
/// Blocking: buffered writes to a local file run on a scheduler thread; a
/// stdout sink may block on a slow reader, so it is spawned detached.

#include <memory>

#include <caf/fwd.hpp>

#include "messages/flow.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

sink_actor spawn_record_sink(caf::actor_system& sys, std::shared_ptr<const job_config> cfg,
                             supervisor_actor supervisor, std::shared_ptr<job_counters> counters);

} // namespace sinfer
