// pipeline_bench: what the actor pipeline costs over a plain loop doing the
// same per-record work.
//
// Two variants process the same records: `--records N` generator records
// rendered from the template below (seed 1), scored by the in-process "noop"
// model (input "text" -> output "result"), written as JSON lines.
//
// - direct: one thread, one loop. Per record: render the template
//   (record_template), parse it with simdjson DOM, take the "text" value as
//   raw JSON (simdjson::minify), check the output field is not present yet
//   (as the operator does); per `--batch` records, one in_process_backend::infer
//   call; then per record append `"result":<value>` (append_member), add '\n'
//   and fwrite it to a FILE* with a 1 MiB buffer (as the sink does). Timed from
//   opening the output to closing it. Record buffers are reused across batches.
// - pipeline: sinfer::run_job on a job built with job_builder: generator
//   source, one "noop" stage at `--parallelism`, batch.max-size `--batch`,
//   max-concurrent-operations `--credit`, jsonl sink, dead letters in a temp
//   dir. Timed by the job's own report (elapsed_ns: supervisor start to the
//   sink's done; the actor system's startup and shutdown are not included).
//   The actor system gets `--threads` scheduler threads (default: one per
//   core, run_job's own default; CAF's would be max(cores, 4)).
//
// Both write to /dev/null. Before timing, both run once on a small count
// writing to temp files, and their outputs are compared (as sorted lines:
// with parallelism > 1 the sink interleaves subtasks), so the baseline is
// known to do the same work. Then the variants alternate `--repeat` times and
// the best run of each is reported, as a table and as one `RESULT` line.
//
//   bench/run_pipeline [--records N] [--parallelism P] [--batch B]
//                      [--credit C] [--repeat R] [--threads T]
//
// `--only direct|pipeline` runs one variant (no check, no ratio), which is
// handy under a profiler: perf record build/pipeline_bench --only pipeline
//
// Exit status: 0 on success, 1 if a run fails or the outputs differ, 2 on
// bad arguments.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include "backends/in_process.hpp"
#include "runtime/job_builder.hpp"
#include "runtime/job_runner.hpp"
#include "runtime/process_tuning.hpp"
#include "runtime/json_text.hpp"
#include "runtime/record_template.hpp"

namespace {

constexpr const char* record_template_json =
  R"({"id":"${i}","text":"${pick:great product|terrible service|it was ok}"})";
constexpr uint64_t seed = 1;
/// Records of the untimed check run that compares both outputs.
constexpr uint64_t check_records = 20000;

struct options {
  uint64_t records = 2'000'000;
  uint32_t parallelism = 2;
  uint32_t batch = 64;
  uint32_t credit = 1024;
  uint32_t repeat = 3;
  /// CAF scheduler threads for the pipeline; 0: CAF's default.
  uint32_t threads = 0;
  bool run_direct = true;
  bool run_pipeline = true;
};

[[noreturn]] void die(const std::string& what, int status = 1) {
  std::fprintf(stderr, "pipeline_bench: %s\n", what.c_str());
  std::exit(status);
}

void usage(std::FILE* to, const char* argv0) {
  std::fprintf(to,
               "usage: %s [--records N] [--parallelism P] [--batch B] [--credit C] [--repeat R]\n"
               "       [--threads T] [--only direct|pipeline]\n"
               "  --records N      generator records per run (default 2000000)\n"
               "  --parallelism P  pipeline subtasks (default 2)\n"
               "  --batch B        records per model call, both variants (default 64)\n"
               "  --credit C       pipeline max-concurrent-operations (default 1024)\n"
               "  --repeat R       runs of each variant, alternating; best is reported (default 3)\n"
               "  --threads T      pipeline scheduler threads (default 0: one per core,\n"
               "                   as sinfer run)\n"
               "  --only V         run one variant only, for profiling (no check, no ratio)\n",
               argv0);
}

uint64_t parse_count(const std::string& flag, const std::string& text, uint64_t max) {
  std::string digits;
  for (char c : text)
    if (c != '_' && c != ',') // allow 1_000_000 and 1,000,000
      digits.push_back(c);
  char* end = nullptr;
  errno = 0;
  auto v = std::strtoull(digits.c_str(), &end, 10);
  if (digits.empty() || digits[0] == '-' || *end != '\0' || errno != 0 || v < 1 || v > max)
    die(flag + ": expected an integer in 1.." + std::to_string(max) + ", got \"" + text + "\"", 2);
  return v;
}

options parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      usage(stdout, argv[0]);
      std::exit(0);
    }
    std::string value;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      usage(stderr, argv[0]);
      die(arg + ": missing value", 2);
    }
    constexpr uint64_t u32 = UINT32_MAX;
    if (arg == "--records")
      o.records = parse_count(arg, value, UINT64_MAX / 2);
    else if (arg == "--parallelism")
      o.parallelism = static_cast<uint32_t>(parse_count(arg, value, u32));
    else if (arg == "--batch")
      o.batch = static_cast<uint32_t>(parse_count(arg, value, u32));
    else if (arg == "--credit")
      o.credit = static_cast<uint32_t>(parse_count(arg, value, u32));
    else if (arg == "--repeat")
      o.repeat = static_cast<uint32_t>(parse_count(arg, value, u32));
    else if (arg == "--threads")
      o.threads = value == "0" ? 0 : static_cast<uint32_t>(parse_count(arg, value, 1024));
    else if (arg == "--only" && (value == "direct" || value == "pipeline")) {
      o.run_direct = value == "direct";
      o.run_pipeline = value == "pipeline";
    } else if (arg == "--only")
      die("--only: expected \"direct\" or \"pipeline\", got \"" + value + "\"", 2);
    else {
      usage(stderr, argv[0]);
      die("unknown option \"" + arg + "\"", 2);
    }
  }
  return o;
}

using bench_clock = std::chrono::steady_clock;

/// The direct loop over `count` records, writing to `out_path`; seconds.
double run_direct(const options& o, uint64_t count, const std::string& out_path) {
  std::string error;
  auto tmpl = sinfer::record_template::parse(record_template_json, error);
  if (!tmpl)
    die("template: " + error);
  auto models = sinfer::model_registry::with_builtins();
  auto* factory = models.find("noop");
  if (factory == nullptr)
    die("no built-in model \"noop\"");
  auto model = (*factory)("{}", error);
  if (!model.compute)
    die("noop: " + error);
  sinfer::in_process_backend backend{std::move(model)};
  const std::string input_field = "text";
  const std::string output_field = "result";
  const std::string member_prefix = sinfer::json_quote(output_field) + ":";
  simdjson::dom::parser parser;
  // One buffer per batch row, reserved like the source's records so simdjson
  // parses in place and append_member does not reallocate.
  std::vector<std::string> rows(o.batch);
  for (auto& r : rows)
    r.reserve(128 + simdjson::SIMDJSON_PADDING + 64);

  auto start = bench_clock::now();
  std::FILE* out = std::fopen(out_path.c_str(), "wb");
  if (out == nullptr)
    die("cannot write \"" + out_path + "\": " + std::strerror(errno));
  std::setvbuf(out, nullptr, _IOFBF, 1 << 20);
  for (uint64_t first = 0; first < count; first += o.batch) {
    auto n = static_cast<uint32_t>(std::min<uint64_t>(o.batch, count - first));
    sinfer::call_request req;
    req.names = {input_field};
    req.values.reserve(n);
    for (uint32_t k = 0; k < n; ++k) {
      auto& rec = rows[k];
      rec.clear();
      tmpl->render(first + k, seed, rec);
      simdjson::dom::object obj;
      simdjson::dom::element v;
      if (parser.parse(rec).get(obj) || obj.at_key(input_field).get(v))
        die("direct: cannot parse record " + std::to_string(first + k) + ": " + rec);
      req.values.push_back(simdjson::minify(v));
      simdjson::dom::element clash;
      if (obj.at_key(output_field).get(clash) == simdjson::SUCCESS)
        die("direct: record already has \"" + output_field + "\"");
    }
    req.rows = n;
    sinfer::call_result res;
    backend.infer(req, [&res](sinfer::call_result r) { res = std::move(r); });
    if (!res.error.ok() || !res.row_errors.empty() || res.values.size() != n)
      die("direct: noop call failed: " + res.error.message);
    for (uint32_t k = 0; k < n; ++k) {
      auto& rec = rows[k];
      std::string member = member_prefix;
      member += res.at(k, 0);
      sinfer::append_member(rec, member);
      rec.push_back('\n');
      std::fwrite(rec.data(), 1, rec.size(), out);
    }
  }
  if (std::fclose(out) != 0)
    die("writing \"" + out_path + "\" failed: " + std::strerror(errno));
  return std::chrono::duration<double>(bench_clock::now() - start).count();
}

/// The actor pipeline over `count` records, writing to `out_path`; seconds
/// as the job reports them.
double run_pipeline(const options& o, uint64_t count, const std::string& out_path,
                    const std::string& dead_letter_path) {
  auto models = sinfer::model_registry::with_builtins();
  sinfer::job_config cfg;
  try {
    cfg = sinfer::job_builder{"pipeline-bench"}
            .parallelism(o.parallelism)
            .source_generator(count, record_template_json, 0, seed)
            .model(sinfer::model_spec{"noop", "noop"}
                     .input("text", "text")
                     .batch_max_size(o.batch)
                     .max_concurrent_operations(o.credit))
            .stage("noop")
            .sink_jsonl(out_path)
            .dead_letter(dead_letter_path)
            .build(models);
  } catch (const sinfer::invalid_job& e) {
    die(std::string{"invalid job:\n"} + e.what(), 2);
  }
  sinfer::run_options run;
  run.threads = o.threads;
  run.counters = std::make_shared<sinfer::job_counters>(1);
  auto report = sinfer::run_job(cfg, models, run);
  auto& sc = run.counters->stages[0];
  auto calls = sc.calls.load();
  spdlog::info("pipeline: {} calls, {:.1f} records per call (max {}), {} closed full, {} slot-free, {} flush",
               calls, calls == 0 ? 0.0 : static_cast<double>(sc.batched_records.load()) / static_cast<double>(calls),
               sc.max_batch.load(), sc.batches_by_reason[0].load(), sc.batches_by_reason[1].load(),
               sc.batches_by_reason[3].load());
  if (!report.ok)
    die("pipeline: job failed: " + report.reason);
  if (report.records_out != count || report.dead_lettered != 0)
    die("pipeline: expected " + std::to_string(count) + " records out, got "
        + std::to_string(report.records_out) + " (" + std::to_string(report.dead_lettered)
        + " dead-lettered)");
  return static_cast<double>(report.elapsed_ns) / 1e9;
}

std::vector<std::string> sorted_lines(const std::string& path) {
  std::ifstream in{path};
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(std::move(line));
  std::sort(lines.begin(), lines.end());
  return lines;
}

/// Runs both variants on a few records into files and compares the outputs.
void check_same_output(const options& o, const std::filesystem::path& dir) {
  auto count = std::min(o.records, check_records);
  auto direct_out = (dir / "direct.jsonl").string();
  auto pipeline_out = (dir / "pipeline.jsonl").string();
  run_direct(o, count, direct_out);
  run_pipeline(o, count, pipeline_out, (dir / "dead-letter.jsonl").string());
  auto a = sorted_lines(direct_out);
  auto b = sorted_lines(pipeline_out);
  if (a.size() != count || a != b)
    die("the direct loop and the pipeline wrote different records (see " + direct_out + " and "
        + pipeline_out + ")");
  std::filesystem::remove(direct_out);
  std::filesystem::remove(pipeline_out);
  std::fprintf(stderr, "check: both variants wrote the same %llu records (e.g. %s)\n",
               static_cast<unsigned long long>(count), a.front().c_str());
}

std::string with_commas(double x) {
  auto digits = std::to_string(static_cast<uint64_t>(x + 0.5));
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0)
      out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

} // namespace

int main(int argc, char** argv) {
  // Both variants run with the same allocator settings as `sinfer run`.
  sinfer::tune_allocator();
  auto o = parse_options(argc, argv);

  std::error_code ec;
  auto tmp_root = std::filesystem::temp_directory_path(ec);
  if (ec)
    tmp_root = "/tmp";
  std::string dir_template = (tmp_root / "pipeline_bench.XXXXXX").string();
  if (::mkdtemp(dir_template.data()) == nullptr)
    die("cannot create a temp dir in " + tmp_root.string() + ": " + std::strerror(errno));
  const std::filesystem::path dir = dir_template;
  const std::string dead_letter = (dir / "dead-letter.jsonl").string();
  const std::string sink = "/dev/null";

  std::printf("pipeline_bench: %llu records, parallelism %u, batch %u, credit %u, repeat %u, "
              "scheduler threads %s, %u hardware threads\n",
              static_cast<unsigned long long>(o.records), o.parallelism, o.batch, o.credit,
              o.repeat, o.threads == 0 ? "default" : std::to_string(o.threads).c_str(),
              std::thread::hardware_concurrency());
  std::fflush(stdout);

  bool both = o.run_direct && o.run_pipeline;
  if (both)
    check_same_output(o, dir);

  double best_direct = 0;
  double best_pipeline = 0;
  for (uint32_t r = 0; r < o.repeat; ++r) {
    std::fprintf(stderr, "run %u/%u:", r + 1, o.repeat);
    if (o.run_direct) {
      double d = run_direct(o, o.records, sink);
      std::fprintf(stderr, " direct %.3f s", d);
      best_direct = r == 0 ? d : std::min(best_direct, d);
    }
    if (o.run_pipeline) {
      double p = run_pipeline(o, o.records, sink, dead_letter);
      std::fprintf(stderr, "%s pipeline %.3f s", o.run_direct ? "," : "", p);
      best_pipeline = r == 0 ? p : std::min(best_pipeline, p);
    }
    std::fprintf(stderr, "\n");
  }
  std::filesystem::remove_all(dir, ec);

  auto n = static_cast<double>(o.records);
  double direct_rps = o.run_direct ? n / best_direct : 0;
  double pipeline_rps = o.run_pipeline ? n / best_pipeline : 0;
  std::printf("\n%-10s %12s %10s %14s\n", "variant", "records", "seconds", "records/s");
  if (o.run_direct)
    std::printf("%-10s %12llu %10.3f %14s\n", "direct", static_cast<unsigned long long>(o.records),
                best_direct, with_commas(direct_rps).c_str());
  if (o.run_pipeline)
    std::printf("%-10s %12llu %10.3f %14s\n", "pipeline",
                static_cast<unsigned long long>(o.records), best_pipeline,
                with_commas(pipeline_rps).c_str());
  double ratio = both ? pipeline_rps / direct_rps : 0;
  if (both)
    std::printf("pipeline/direct: %.3f (best of %u each)\n", ratio, o.repeat);
  std::printf("\nRESULT direct_rps=%.0f pipeline_rps=%.0f ratio=%.4f records=%llu parallelism=%u "
              "batch=%u credit=%u threads=%u\n",
              direct_rps, pipeline_rps, ratio, static_cast<unsigned long long>(o.records),
              o.parallelism, o.batch, o.credit, o.threads);
  return 0;
}
