#pragma once
/// The HTML report of one simulated run, or of several runs of the same
/// scenario under different configs (a comparison). Written by
/// `sinfer sim ... --report out.html`. No CAF here.
///
/// The page is one self-contained HTML5 file: inline CSS and inline SVG
/// charts drawn here, no script, font, image or any other network fetch, so
/// it opens offline, attaches to a ticket and prints. It holds:
///  - a header (scenario, seed, virtual duration) and a summary table with
///    one column per run;
///  - charts over virtual time, each an `<svg class="chart" data-chart=...>`:
///    `throughput` (in/out/dead per s), `latency` (p50/p99/p999 ms, log scale
///    when the values span more than two decades), `endpoints` (in flight,
///    concurrency limit and server queue per endpoint; one chart per run),
///    `batch` (mean batch size per stage), `breakers` (open and half-open
///    bands per endpoint and scope; one chart per run) and `faults` (the
///    injected faults per endpoint). Faults and breaker bands are also shaded
///    behind the throughput and latency charts so cause and effect line up.
///    In a comparison the runs share the throughput, latency and batch charts:
///    run 1 solid, run 2 dashed, run 3 dotted;
///  - tables of phases, endpoint totals and breaker transitions.
///
/// Deterministic: the same runs give byte-identical output (no time stamp,
/// numbers formatted without the locale). Every string from the data is
/// HTML-escaped. NaN and infinite figures are drawn as 0. Runs with more than
/// 1500 samples are drawn from 1000 buckets (the mean of rates and gauges,
/// the max of latencies) to keep the file small.

#include <string>
#include <vector>

#include "sim/sim_result.hpp"

namespace sinfer {

/// Renders `runs` (one run, or two or more runs of one scenario for a
/// comparison, each named by its `label`) as a complete HTML document.
/// An empty vector gives a page that says there is nothing to show.
std::string render_sim_report(const std::vector<sim_result>& runs);

} // namespace sinfer
