#pragma once
// The crash harness of issue 6 (must-show 1), shared by the `crash` test
// suite (short form) and bench/crash_bench.cpp (long form).
//
// run_crash_test starts an in-process reference_server (http-json, keyword
// classifier) that counts every row it scores, writes N input records with
// unique text and a checkpointed one-stage job against the server, then
// runs the real `sinfer run JOB -q` as a child process and kill -9s it at
// seeded random moments, restarting it each time (it resumes from its latest
// checkpoint; never --fresh). Just before each kill it reads the server's
// records_in_flight: the rows of calls the killed process can never have
// logged, the only ones a restore may legitimately send again. After the
// kills it runs the job to completion and checks the output parts: every
// input exactly once across output and dead letters, no line twice.
//
// Each run's stdout and stderr go to run-NNN.log in the work directory and
// each kill to kills.tsv; the directory is removed when everything held,
// kept (and named in `problems`) when anything did not. No CAF here.

#include <cstdint>
#include <string>
#include <vector>

namespace sinfer::crash {

struct crash_options {
  /// The sinfer binary.
  std::string sinfer;
  /// Input records.
  uint64_t records = 20000;
  /// Kills to make (fewer only when the job finishes first: `kills` in the
  /// figures says how many were made).
  uint32_t kills = 20;
  uint64_t seed = 1;
  /// `checkpoint.call-log`.
  bool call_log = true;
  /// `job.parallelism` and the stage's `batch.max-size`.
  uint32_t parallelism = 2;
  uint32_t batch = 16;
  uint32_t checkpoint_interval_ms = 150;
  /// The server: `slots` calls at once, a call of b rows takes base + b *
  /// per_record.
  uint32_t slots = 4;
  double base_ms = 4.0;
  double per_record_ms = 0.25;
  /// Kill delays (from spawn to kill) are drawn log-uniformly from
  /// [min_delay_ms, cap], cap at most max_delay_ms and shrunk as the job
  /// nears its end so that the kills land before it finishes.
  uint32_t min_delay_ms = 40;
  uint32_t max_delay_ms = 1200;
  /// A run not done after this long is a hang (killed, reported).
  uint32_t run_timeout_ms = 120000;
  /// Keep the work directory even when everything held.
  bool keep_dir = false;
  /// Print a line per kill to stderr.
  bool verbose = false;
};

/// What the output directories hold (scanned after every run, and at the end).
struct output_counts {
  /// Lines in published part-*.jsonl files, and in dead-*.jsonl.
  uint64_t output_lines = 0;
  uint64_t dead_lines = 0;
  /// Lines whose text an earlier line had; input ids seen more than once
  /// (output and dead letters together); ids never seen; lines without a
  /// known id or with a malformed body.
  uint64_t duplicate_lines = 0;
  uint64_t duplicate_ids = 0;
  uint64_t missing = 0;
  uint64_t unknown = 0;
  /// Output lines without the model's "label".
  uint64_t unlabelled = 0;
  /// Hidden .part-*.pending / .dead-*.pending files left at the end (not
  /// counted as output).
  uint64_t pending_files = 0;
  uint64_t part_files = 0;
};

struct crash_figures : output_counts {
  uint64_t inputs = 0;

  /// Runs started, kills made, runs that ended on their own before their
  /// kill (exit 0: the job was done), runs that failed (exit != 0, not
  /// killed by us).
  uint32_t runs = 0;
  uint32_t kills = 0;
  uint32_t early_exits = 0;
  uint32_t failed_runs = 0;
  /// The final run's exit status (0 expected; -1: not run or hung).
  int final_exit = -1;

  /// The server: rows of valid infer requests, rows scored, distinct inputs
  /// scored, rows scored whose input had been scored before, requests,
  /// requests with an Idempotency-Key, those repeating an earlier key.
  uint64_t server_records = 0;
  uint64_t rows_scored = 0;
  uint64_t distinct_inputs = 0;
  uint64_t repeated_inputs = 0;
  uint64_t requests = 0;
  uint64_t keyed_requests = 0;
  uint64_t repeated_keys = 0;
  /// Sum over kills of records_in_flight read just before the kill, and
  /// the largest single value.
  uint64_t inflight_at_kills = 0;
  uint64_t max_inflight_at_kill = 0;
  /// The first kill after which the published output held a duplicated id
  /// (0: never).
  uint32_t first_duplicate_after_kill = 0;

  double wall_s = 0;
  /// Every check that failed, with where to look; empty when all held.
  std::vector<std::string> problems;
  /// The work directory (removed unless a problem or keep_dir).
  std::string dir;
  bool dir_kept = false;

  /// Every input once, in output or dead letters, no line twice, the final
  /// run exited 0 and no run failed.
  bool exactly_once() const noexcept {
    return duplicate_lines == 0 && duplicate_ids == 0 && missing == 0 && unknown == 0 && final_exit == 0
           && failed_runs == 0 && output_lines + dead_lines == inputs;
  }
  /// The slack the repeated-input bound allows: one batch per subtask per
  /// kill (calls sent, or answered but not yet logged, between the read of
  /// records_in_flight and the kill).
  uint64_t slack(const crash_options& o) const noexcept {
    return uint64_t{kills} * o.batch * o.parallelism;
  }
};

crash_figures run_crash_test(const crash_options& options);

/// One line of figures ("kills 20, inputs 20000, ...") for logs and MESSAGE.
std::string summary(const crash_figures& f);

} // namespace sinfer::crash
