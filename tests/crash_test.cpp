// Crash test, short form (issue 6, must-show 1): the real `sinfer run`
// against a reference HTTP server, kill -9'd at seeded random moments and
// restarted each time (tests/crash_harness.hpp). The long form is
// `bench/run crash`.
//
// What is asserted holds for any kill timing: every input has exactly one
// line across output and dead letters, no line twice, every run exited 0
// or was killed by us. With the call log on, the rows the server scored a
// second time are at most those in flight at the kills (read just before
// each kill), plus one batch per subtask per kill for calls sent, or
// answered but not yet logged, between that read and the kill. With the
// call log off only exactly-once output is asserted; its repeated inputs
// (everything since the last checkpoint, at every kill) are reported.

#include <doctest/doctest.h>

#include "tests/crash_harness.hpp"

using namespace sinfer::crash;

namespace {

crash_options short_form(bool call_log, uint32_t kills, uint64_t records) {
  crash_options o;
  o.sinfer = SINFER_BIN;
  o.call_log = call_log;
  o.kills = kills;
  o.records = records;
  o.seed = call_log ? 20240601 : 20240602;
  o.max_delay_ms = 600;
  return o;
}

void report_problems(const crash_figures& f) {
  for (auto& p : f.problems)
    MESSAGE(p);
  if (f.dir_kept)
    MESSAGE("work dir kept: " << f.dir);
}

} // namespace

TEST_CASE("crash: kill -9 at random moments, exactly-once output, no completed call repeated") {
  auto on_opts = short_form(true, 20, 15000);
  auto on = run_crash_test(on_opts);
  report_problems(on);
  MESSAGE("call log on:  " << summary(on));
  CHECK(on.problems.empty());
  CHECK(on.kills >= 20);
  CHECK(on.exactly_once());
  CHECK(on.final_exit == 0);
  CHECK(on.output_lines + on.dead_lines == on.inputs);
  CHECK(on.duplicate_lines == 0);
  CHECK(on.duplicate_ids == 0);
  CHECK(on.missing == 0);
  CHECK(on.pending_files == 0);
  CHECK(on.distinct_inputs == on.inputs);
  // No completed call repeated: repeats come only from calls in flight.
  CHECK(on.repeated_inputs <= on.inflight_at_kills + on.slack(on_opts));

  { // contrast: the call log off
    auto off = run_crash_test(short_form(false, 6, 15000));
    report_problems(off);
    MESSAGE("call log off: " << summary(off));
    MESSAGE("repeated inputs: call log on " << on.repeated_inputs << " (in flight at " << on.kills << " kills: "
                                            << on.inflight_at_kills << "), call log off " << off.repeated_inputs
                                            << " (in flight at " << off.kills << " kills: " << off.inflight_at_kills
                                            << ")");
    CHECK(off.problems.empty());
    CHECK(off.kills >= 1);
    CHECK(off.exactly_once());
    CHECK(off.pending_files == 0);
  }
}
