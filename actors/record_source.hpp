#pragma once
/// record_source: reads the job's input and hands records to the subtasks,
/// never more than each subtask granted.
///
/// Scope: job (one per source). Spawned by job_supervisor after the subtasks.
/// Receives: (credit, subtask, n) from the first stage of each subtask; its
///   own (read) steps.
/// Sends: (connect, self, subtask, 0) and then (records, 0, chunk) and
///   finally (eos, 0) to each subtask's first stage; (fail, reason) to the
///   supervisor if the input cannot be read.
/// Checkpoints: on (checkpoint, E) from the coordinator it sends (barrier,
///   0, E) to every subtask after the records handed out so far, and acks
///   with its position (the record read but not yet handed out is after the
///   barrier); at the end of its input it sends (ended, position).
/// Oversized lines: a line longer than `source.max-record-bytes` is never
///   buffered whole; it goes on in its place as a failed record holding its
///   first bytes (at most 1 KiB, never more than the limit), which the sink
///   dead-letters with a reason naming its size and the limit.
/// Routing: by the hash of `job.partition-by`'s value, else round-robin.
/// Blocking: a file is read in steps of at most `step_records` lines on a
/// scheduler thread (local file reads do not park). A stdin source runs
/// detached (its own thread) and never blocks for long: before a read it
/// polls, sends what it has read when no input is ready, and waits at most
/// 100 ms per step, so records from a slow pipe flow at once and an exit
/// request is seen promptly.

#include <memory>
#include <vector>

#include <caf/fwd.hpp>

#include "messages/flow.hpp"
#include "runtime/checkpointing.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

struct source_settings {
  std::shared_ptr<const job_config> cfg;
  /// `subtasks[i]` is subtask i's first stage.
  std::vector<record_consumer> subtasks;
  failure_listener supervisor;
  std::shared_ptr<job_counters> counters;
  /// Checkpoints on: the coordinator that asks for barriers, and the
  /// restored position (a file is read from its byte offset, a generator
  /// goes on from its count).
  checkpoint_listener coordinator;
  std::shared_ptr<const checkpoint_context> checkpoints;
};

source_actor spawn_record_source(caf::actor_system& sys, source_settings settings);

} // namespace sinfer
