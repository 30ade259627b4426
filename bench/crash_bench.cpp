// crash_bench: the crash test's long form (issue 6, must-show 1). The real
// `sinfer run` against a reference HTTP server that counts every row it
// scores, kill -9'd at seeded random moments and restarted each time
// (resuming from its latest checkpoint), then run to completion; the same
// with the call log off, for contrast. See tests/crash_harness.hpp (the
// short form is the `crash` ctest suite).
//
//   bench/run crash [--kills 100] [--records 100000] [--seed 1] [--max-delay 1000]
//                   [--only on|off] [--verbose]
//
// Prints a table (kills, inputs, output lines, duplicates, missing, rows
// scored, repeated inputs, rows in flight at the kills, wall time) and one
// RESULT line per mode. Exits 1 when output was not exactly once, or when,
// with the call log on, more rows were scored again than were in flight at
// the kills (plus one batch per subtask per kill).

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tests/crash_harness.hpp"

using namespace sinfer::crash;

int main(int argc, char** argv) {
  CLI::App app{"crash_bench: kill -9 a checkpointed job at random moments; exactly-once output, calls repeated"};
  crash_options base;
  base.sinfer = SINFER_BIN;
  base.kills = 100;
  base.records = 100000;
  base.max_delay_ms = 1000;
  std::string only;
  app.add_option("--kills", base.kills, "kills per mode");
  app.add_option("--records", base.records, "input records");
  app.add_option("--seed", base.seed, "seed of the kill delays");
  app.add_option("--max-delay", base.max_delay_ms, "longest delay from start to kill, ms");
  app.add_option("--sinfer", base.sinfer, "the sinfer binary");
  app.add_option("--only", only, "one mode: on or off (call log)")->check(CLI::IsMember({"on", "off"}));
  app.add_flag("--keep", base.keep_dir, "keep the work directories");
  app.add_flag("--verbose", base.verbose, "a line per run on stderr");
  CLI11_PARSE(app, argc, argv);

  struct row {
    const char* mode;
    crash_options opts;
    crash_figures f;
  };
  std::vector<row> rows;
  for (bool log : {true, false}) {
    if (!only.empty() && (only == "on") != log)
      continue;
    auto o = base;
    o.call_log = log;
    std::fprintf(stderr, "crash_bench: call log %s: %u kills, %llu records, seed %llu...\n", log ? "on" : "off",
                 o.kills, static_cast<unsigned long long>(o.records), static_cast<unsigned long long>(o.seed));
    rows.push_back({log ? "on" : "off", o, run_crash_test(o)});
  }

  std::printf("%-9s %6s %8s %8s %6s %7s %8s %11s %9s %9s %8s\n", "call-log", "kills", "inputs", "output",
              "dupes", "missing", "dead", "rows-scored", "repeated", "inflight", "wall-s");
  int rc = 0;
  for (auto& r : rows) {
    auto& f = r.f;
    std::printf("%-9s %6u %8llu %8llu %6llu %7llu %8llu %11llu %9llu %9llu %8.1f\n", r.mode, f.kills,
                static_cast<unsigned long long>(f.inputs), static_cast<unsigned long long>(f.output_lines),
                static_cast<unsigned long long>(f.duplicate_lines + f.duplicate_ids),
                static_cast<unsigned long long>(f.missing), static_cast<unsigned long long>(f.dead_lines),
                static_cast<unsigned long long>(f.rows_scored), static_cast<unsigned long long>(f.repeated_inputs),
                static_cast<unsigned long long>(f.inflight_at_kills), f.wall_s);
  }
  for (auto& r : rows) {
    auto& f = r.f;
    bool bound = f.repeated_inputs <= f.inflight_at_kills + f.slack(r.opts);
    std::printf("RESULT call_log=%s kills=%u runs=%u inputs=%llu output=%llu dead=%llu duplicates=%llu "
                "missing=%llu rows_scored=%llu repeated_inputs=%llu inflight_at_kills=%llu slack=%llu "
                "repeated_keys=%llu exactly_once=%d within_inflight=%d wall_s=%.1f\n",
                r.mode, f.kills, f.runs, static_cast<unsigned long long>(f.inputs),
                static_cast<unsigned long long>(f.output_lines), static_cast<unsigned long long>(f.dead_lines),
                static_cast<unsigned long long>(f.duplicate_lines + f.duplicate_ids),
                static_cast<unsigned long long>(f.missing), static_cast<unsigned long long>(f.rows_scored),
                static_cast<unsigned long long>(f.repeated_inputs),
                static_cast<unsigned long long>(f.inflight_at_kills),
                static_cast<unsigned long long>(f.slack(r.opts)), static_cast<unsigned long long>(f.repeated_keys),
                f.exactly_once() ? 1 : 0, bound ? 1 : 0, f.wall_s);
    for (auto& p : f.problems)
      std::printf("PROBLEM %s\n", p.c_str());
    if (f.dir_kept)
      std::printf("work dir kept: %s\n", f.dir.c_str());
    if (!f.exactly_once() || !f.problems.empty() || (r.opts.call_log && !bound))
      rc = 1;
    if (f.kills < r.opts.kills && f.failed_runs == 0 && f.final_exit == 0)
      std::printf("note: call log %s: the job finished after %u of %u kills (more --records)\n", r.mode, f.kills,
                  r.opts.kills);
  }
  return rc;
}
