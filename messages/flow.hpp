#pragma once
/// The typed protocol between sinfer's actors: atoms and actor interfaces.
///
/// Data flows downstream in chunks (`records_atom`), credit flows upstream
/// (`credit_atom`). A producer never sends more records to a consumer than the
/// consumer granted: that bound is the only backpressure CAF 0.17 gives us
/// (its mailboxes are unbounded), and it holds by construction.
///
/// Wiring: the upstream sends `connect_atom` with its own handle to the
/// downstream; the downstream answers with its initial credit grant.
/// Ports name the two ends of one link: `out_port` is the downstream's index
/// at the upstream (e.g. the subtask index at the source), `in_port` is the
/// upstream's index at the downstream (e.g. the subtask index at the sink).

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/call.hpp"
#include "messages/checkpoint.hpp"
#include "messages/record.hpp"
#include "messages/report.hpp"

namespace sinfer {

using connect_atom = caf::atom_constant<caf::atom("connect")>;
using records_atom = caf::atom_constant<caf::atom("records")>;
using eos_atom = caf::atom_constant<caf::atom("eos")>;
using credit_atom = caf::atom_constant<caf::atom("credit")>;
using infer_atom = caf::atom_constant<caf::atom("infer")>;
using run_atom = caf::atom_constant<caf::atom("run")>;
using read_atom = caf::atom_constant<caf::atom("read")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using fail_atom = caf::atom_constant<caf::atom("fail")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using crashed_atom = caf::atom_constant<caf::atom("crashed")>;
using restart_atom = caf::atom_constant<caf::atom("restart")>;

/// Receives credit: (credit, out_port, n) grants `n` more records on the link
/// `out_port`.
using record_producer =
  caf::typed_actor<caf::reacts_to<credit_atom, uint32_t, uint64_t>>;

/// Receives records: operators and sinks.
/// - (connect, upstream, out_port, in_port): an upstream announces itself;
///   the consumer answers with credit on `out_port`.
/// - (records, in_port, chunk): at most as many records as granted.
/// - (eos, in_port): the upstream on `in_port` sends nothing more.
/// - (barrier, in_port, epoch): checkpoint `epoch`'s barrier: every record
///   before it on this link belongs to the checkpoint, none after it
///   (messages/checkpoint.hpp).
using record_consumer = caf::typed_actor<
  caf::reacts_to<connect_atom, record_producer, uint32_t, uint32_t>,
  caf::reacts_to<records_atom, uint32_t, record_chunk>,
  caf::reacts_to<eos_atom, uint32_t>,
  caf::reacts_to<barrier_atom, uint32_t, uint64_t>>;

/// A model stage of one subtask: consumes from upstream, produces downstream.
using operator_actor = record_consumer::extend_with<record_producer>;

/// The source: produces records; `read` is its self-sent step; (checkpoint,
/// epoch) from the coordinator injects barrier `epoch`.
using source_actor = record_producer::extend<caf::reacts_to<read_atom>, caf::reacts_to<checkpoint_atom, uint64_t>>;

/// The sink: consumes the last stage of every subtask; (commit, epoch) from
/// the coordinator publishes the output of checkpoints up to `epoch`.
using sink_actor = record_consumer::extend<caf::reacts_to<commit_atom, uint64_t>>;

/// An endpoint of a model: one call per batch, one result per call.
using endpoint_actor = caf::typed_actor<
  caf::replies_to<infer_atom, call_request>::with<call_result>,
  caf::reacts_to<deliver_atom, uint64_t, call_result>>;

/// Who hears that the job cannot go on (any actor may report it).
using failure_listener = caf::typed_actor<caf::reacts_to<fail_atom, std::string>>;

/// Decides whether a crashed subtask restarts: (crashed, subtask, stage,
/// reason) answers with the delay before the restart in ns, or -1 when the
/// restart strategy gives up (the job then fails with the reason).
using restart_authority =
  caf::typed_actor<caf::replies_to<crashed_atom, uint32_t, uint32_t, std::string>::with<int64_t>>;

/// The job supervisor: `run` answers with the report when the job ends;
/// the sink reports `done` with its figures; anyone may report `fail`;
/// crashed subtasks ask it whether to restart; (restart, i) is its own
/// timer to start load probe i again after it died.
using supervisor_actor = caf::typed_actor<
  caf::replies_to<crashed_atom, uint32_t, uint32_t, std::string>::with<int64_t>,
  caf::replies_to<run_atom>::with<job_report>,
  caf::reacts_to<done_atom, sink_figures>,
  caf::reacts_to<fail_atom, std::string>,
  caf::reacts_to<tick_atom>,
  caf::reacts_to<restart_atom, uint32_t>>;

} // namespace sinfer
