#pragma once
/// checkpoint_coordinator: triggers a checkpoint every checkpoint.interval,
/// gathers the snapshots, writes each completed checkpoint to the state
/// store in one synced batch and tells the sink to publish its output.
///
/// Scope: job (one per job with checkpoint.dir). Spawned by job_supervisor
/// before the sink and the subtasks (they ack to it); (run, source, sink)
/// starts it once they exist.
/// Receives: (ack, E, part, bytes) from the source, every operator and the
///   sink; (ended, part) from the source at the end of its input; (final, F)
///   from the sink when every subtask ended; its own (tick) timer.
/// Sends: (checkpoint, E) to the source; (commit, E) to the sink when
///   checkpoint E is durable; (fail, reason) to the supervisor when the final
///   checkpoint cannot be written (the output cannot be published).
/// Checkpoint E completes with 1 + P x stages + 1 acks (source, operators,
/// sink). At most one is in progress, as in Flink's default: a tick while
/// one is running does nothing, unless checkpoint.timeout has passed, which
/// abandons it (counted failed; the next checkpoint covers its output). A
/// failed write is counted and logged, and the job goes on. After the
/// source ended no barrier can be injected: the last checkpoint is the
/// final one, F, taken when the sink has every subtask's end.
/// Before writing checkpoint E it fsyncs the sink's sealed parts up to E
/// (the sink seals them without fsync and goes on writing).
/// Blocking: the fsyncs and the store's synced writes run on its own thread
/// (detached).

#include <memory>

#include <caf/fwd.hpp>

#include "messages/checkpoint.hpp"
#include "messages/flow.hpp"
#include "runtime/checkpointing.hpp"
#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

using coordinator_actor = checkpoint_listener::extend<caf::reacts_to<run_atom, source_actor, sink_actor>,
                                                      caf::reacts_to<tick_atom>>;

coordinator_actor spawn_checkpoint_coordinator(caf::actor_system& sys, std::shared_ptr<const job_config> cfg,
                                               std::shared_ptr<checkpoint_context> checkpoints,
                                               failure_listener supervisor, std::shared_ptr<job_counters> counters);

} // namespace sinfer
