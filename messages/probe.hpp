#pragma once
/// The load-probe protocol: a `load_probe` actor scrapes one endpoint's
/// server and hands each outcome to that endpoint's actor, which reads it
/// with its `prometheus_probe` (policies/load_probe.hpp).
///
///   load_probe --(tick)--> itself         every probe.interval
///   load_probe --(scrape, outcome)--> endpoint
///
/// The probe only fetches; the endpoint parses, keeps the probe's health
/// (suspect or not) and feeds its limiter and its slot grants (their
/// `endpoint_load`, messages/scoring.hpp). So the endpoint's view ages on
/// its own clock even when no outcome comes (a dead or stuck probe makes the
/// endpoint suspect after `stale-after`), and a test can send outcomes to an
/// endpoint directly.

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/flow.hpp"

namespace sinfer {

using scrape_atom = caf::atom_constant<caf::atom("scrape")>;
/// The endpoint's self-sent timer: its probe may have gone stale.
using stale_atom = caf::atom_constant<caf::atom("stale")>;

/// One scrape of a server's metrics page, as the probe saw it.
struct scrape_outcome {
  /// True when the server answered 200: `body` is the page. False for any
  /// other status, a transport error or a timeout: `error` says which.
  bool answered = false;
  std::string body;
  /// Why the scrape failed ("GET http://h:p/metrics: HTTP 404", a
  /// transport error); empty when answered.
  std::string error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scrape_outcome& x) {
  return f(x.answered, x.body, x.error);
}

/// Hears scrape outcomes: an endpoint.
using probe_listener = caf::typed_actor<caf::reacts_to<scrape_atom, scrape_outcome>>;

/// A load probe: (tick) is its self-sent interval timer; each tick scrapes
/// once and re-arms.
using load_probe_actor = caf::typed_actor<caf::reacts_to<tick_atom>>;

} // namespace sinfer
