#pragma once
/// load_probe: scrapes one endpoint's server every `probe.interval` and
/// hands each outcome to the endpoint's actor (messages/probe.hpp). It only
/// fetches: the endpoint reads the page (policies/load_probe.hpp), so a probe
/// that fails, hangs or dies is a signal there (suspect after
/// `probe.failure-threshold` failures or `probe.stale-after`), never a crash
/// of the job.
///
/// Scope: job (one per endpoint of a model with probe.type prometheus).
/// Spawned and monitored by job_supervisor right after its endpoint; when
/// one dies the supervisor starts a new one after an interval.
/// Receives: (tick), its own timer. The first tick is sent at spawn, so the
///   first scrape is at once; each tick scrapes once and arms the next
///   `interval` after the scrape began (at once when the scrape took longer).
/// Sends: (scrape, outcome) to its endpoint.
/// Blocking: the scrape is a blocking HTTP GET bounded by `probe.timeout`,
/// so the actor is spawned `caf::detached` (its own thread, never a
/// scheduler worker). Between scrapes it waits on a delayed message, not a
/// sleep: an exit (the job ended) ends it at once, or after the scrape in
/// progress (at most `probe.timeout`).
/// Tests give a `scrape` that does not block and `detached` false, so the
/// probe runs on virtual time like any other actor.

#include <chrono>
#include <functional>
#include <string>

#include <caf/fwd.hpp>

#include "backends/http_backend.hpp"
#include "messages/probe.hpp"

namespace sinfer {

struct load_probe_settings {
  /// "model/endpoint", for messages.
  std::string name;
  /// What a failed scrape's error names, e.g. "GET http://h:p/metrics";
  /// empty: `name`.
  std::string target;
  /// Where outcomes go: the endpoint's actor.
  probe_listener endpoint;
  /// Time from one scrape's start to the next's.
  std::chrono::nanoseconds interval = std::chrono::seconds{1};
  /// One scrape. An answer with status 200 is a page; anything else (a
  /// status, a transport error) a failed scrape. An exception kills the
  /// probe (its supervisor starts another).
  std::function<http_answer()> scrape;
  /// Spawn on its own thread (required when `scrape` blocks).
  bool detached = true;
};

/// The scrape of a `prometheus` probe: GET `path` on `conn` (its URL, CA
/// file and API key header; `conn.timeout` bounds connect and read).
/// Blocking; never throws.
std::function<http_answer()> http_scrape(http_connection_settings conn, std::string path);

/// The outcome an answer gives: answered with the body for status 200, else
/// failed with why ("GET URL/path: HTTP 404", the transport error).
scrape_outcome outcome_of(http_answer answer, const std::string& where);

load_probe_actor spawn_load_probe(caf::actor_system& sys, load_probe_settings settings);

} // namespace sinfer
