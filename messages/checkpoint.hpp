#pragma once
/// The checkpoint protocol (issue 6): barriers flow with the records, acks
/// flow to the checkpoint coordinator, commits flow to the sink.
///
///   coordinator --(checkpoint, E)--> source
///   source --(barrier, port, E)--> first stage --> ... --> sink (in band:
///     after every record read before it, before every record after it)
///   source, each operator --(ack, E, part, bytes)--> coordinator
///   sink --(ack, E, "", "")--> coordinator (every port's barrier E arrived:
///     the pending part of E is sealed)
///   coordinator --(commit, E)--> sink (checkpoint E is in the store: publish
///     the parts up to E)
///   source --(ended, part)--> coordinator (the input ended; its position)
///   sink --(done, F)--> coordinator (every port ended; part F sealed: take
///     the final checkpoint F, then commit it)

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

namespace sinfer {

using barrier_atom = caf::atom_constant<caf::atom("barrier")>;
using checkpoint_atom = caf::atom_constant<caf::atom("ckpt")>;
using ack_atom = caf::atom_constant<caf::atom("ack")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using ended_atom = caf::atom_constant<caf::atom("ended")>;
using final_atom = caf::atom_constant<caf::atom("final")>;

/// The coordinator as its participants see it.
/// - (ack, epoch, part, bytes): a snapshot for checkpoint `epoch` under
///   part name `part` (the sink acks with an empty part).
/// - (ended, part): the source's position at the end of its input.
/// - (final, epoch): the sink has every port's end and sealed part `epoch`.
using checkpoint_listener = caf::typed_actor<caf::reacts_to<ack_atom, uint64_t, std::string, std::string>,
                                             caf::reacts_to<ended_atom, std::string>,
                                             caf::reacts_to<final_atom, uint64_t>>;

} // namespace sinfer
