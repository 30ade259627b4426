#pragma once
/// Human-readable lines about what a job's resilience machinery did: per
/// stage calls, batch sizes, retries, timeouts, fallbacks; per endpoint
/// breaker openings; restarts. Printed by `sinfer run` after the summary
/// line. No CAF here.

#include <string>
#include <vector>

#include "runtime/job_config.hpp"
#include "runtime/job_counters.hpp"

namespace sinfer {

/// One line per stage, per endpoint whose breaker changed state, and for
/// restarts (none when nothing happened there).
std::vector<std::string> resilience_summary(const job_config& cfg, const job_counters& counters);

} // namespace sinfer
