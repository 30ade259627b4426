#include "tests/crash_harness.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_set>

#include <fcntl.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <simdjson.h>

#include "sim/reference_server.hpp"

extern char** environ;

namespace sinfer::crash {

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::string make_temp_dir() {
  char tmpl[] = "/tmp/sinfer-crash-XXXXXX";
  const char* p = ::mkdtemp(tmpl);
  return p != nullptr ? std::string{p} : std::string{};
}

const char* review_words[] = {"great product, fast delivery", "terrible service, never again", "it was ok",
                              "love it, would recommend", "broken on arrival, want a refund",
                              "nice but slow shipping"};

/// N records, each with a text no other record has.
void write_inputs(const std::string& path, uint64_t n) {
  std::ofstream out{path, std::ios::binary};
  for (uint64_t i = 0; i < n; ++i)
    out << "{\"id\": " << i << ", \"text\": \"review number " << i << ": " << review_words[i % 6] << "\"}\n";
}

void write_job(const std::string& path, const crash_options& o, const std::string& dir, int port) {
  std::ostringstream j;
  j << "{\n"
    << "  \"job\": {\"name\": \"crash\", \"parallelism\": " << o.parallelism << "},\n"
    << "  \"source\": {\"type\": \"jsonl\", \"path\": \"" << dir << "/input.jsonl\"},\n"
    << "  \"models\": {\n"
    << "    \"sentiment\": {\n"
    << "      \"provider\": \"http-json\",\n"
    << "      \"endpoints\": [\"http://127.0.0.1:" << port << "\"],\n"
    << "      \"input\": {\"text\": \"text\"},\n"
    << "      \"output\": {\"label\": \"label\"},\n"
    << "      \"batch\": {\"max-size\": " << o.batch << "},\n"
    << "      \"concurrency\": {\"max\": " << o.slots << "},\n"
    << "      \"timeout\": {\"attempt\": \"30s\", \"total\": \"600s\"},\n"
    << "      \"retry\": {\"max-attempts\": 20, \"initial-backoff\": \"10ms\", \"max-backoff\": \"200ms\"},\n"
    << "      \"failure-action\": \"dead-letter\"\n"
    << "    }\n"
    << "  },\n"
    << "  \"stages\": [\"sentiment\"],\n"
    << "  \"sink\": {\"type\": \"jsonl\", \"path\": \"" << dir << "/out\"},\n"
    << "  \"dead-letter\": {\"path\": \"" << dir << "/dead\"},\n"
    << "  \"checkpoint\": {\"dir\": \"" << dir << "/checkpoints\", \"interval\": \"" << o.checkpoint_interval_ms
    << "ms\", \"call-log\": " << (o.call_log ? "true" : "false") << "}\n"
    << "}\n";
  std::ofstream out{path, std::ios::binary};
  out << j.str();
}

/// Starts `sinfer run JOB -q`, stdout and stderr to `log`; -1 when it cannot.
pid_t spawn_run(const std::string& sinfer, const std::string& job, const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::string a0 = sinfer, a1 = "run", a2 = job, a3 = "-q";
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, sinfer.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

/// A child process and its exit: a thread blocks in waitpid, so waiting
/// for the exit with a deadline is a timed wait on the exit itself.
struct child {
  pid_t pid = -1;
  std::future<int> exit;

  explicit child(pid_t p) : pid(p) {
    exit = std::async(std::launch::async, [p] {
      int status = 0;
      return ::waitpid(p, &status, 0) == p ? status : 0x7f00; // not our child: treat as failed
    });
  }

  /// Its wait status if it exits within `timeout`, else -1 (still running).
  int wait_for(milliseconds timeout) {
    return exit.wait_for(timeout) == std::future_status::ready ? exit.get() : -1;
  }

  /// kill -9 and its wait status.
  int kill() {
    ::kill(pid, SIGKILL);
    return exit.get();
  }
};


std::string status_text(int status) {
  if (WIFEXITED(status))
    return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string{"signal "} + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "status " + std::to_string(status);
}

bool has_prefix(const std::string& s, const char* p) {
  return s.rfind(p, 0) == 0;
}
bool has_suffix(const std::string& s, const std::string& x) {
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

/// A published part: PREFIX-<12 digits>.jsonl.
bool published_part(const std::string& name, const std::string& prefix) {
  auto want = prefix + "-";
  if (!has_prefix(name, want.c_str()) || !has_suffix(name, ".jsonl"))
    return false;
  auto digits = name.substr(want.size(), name.size() - want.size() - 6);
  return digits.size() == 12 && std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct scan_result : output_counts {
  /// A few examples of what went wrong, for the report.
  std::vector<std::string> examples;
};

/// The sorted names of a directory's regular files (none when it is absent).
std::vector<std::string> file_names(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it{dir, ec}, end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

/// Reads every published part of `dir`/out and `dir`/dead against inputs
/// 0..n-1.
scan_result scan_output(const std::string& dir, uint64_t n) {
  scan_result r;
  std::vector<uint32_t> seen(n, 0);
  std::unordered_set<std::string> lines;
  simdjson::dom::parser parser;
  auto note = [&](std::string what) {
    if (r.examples.size() < 8)
      r.examples.push_back(std::move(what));
  };
  auto count_id = [&](int64_t id, const std::string& where) {
    if (id < 0 || static_cast<uint64_t>(id) >= n) {
      ++r.unknown;
      note("unknown id " + std::to_string(id) + " in " + where);
      return;
    }
    if (++seen[id] == 2) {
      ++r.duplicate_ids;
      note("id " + std::to_string(id) + " again in " + where);
    }
  };
  for (int kind = 0; kind < 2; ++kind) {
    bool dead = kind == 1;
    auto sub = dir + (dead ? "/dead" : "/out");
    const std::string prefix = dead ? "dead" : "part";
    for (auto& name : file_names(sub)) {
      if (has_suffix(name, ".pending")) {
        ++r.pending_files;
        continue;
      }
      if (!published_part(name, prefix))
        continue;
      ++r.part_files;
      std::ifstream in{sub + "/" + name, std::ios::binary};
      uint64_t lineno = 0;
      for (std::string line; std::getline(in, line);) {
        ++lineno;
        auto where = (dead ? "dead/" : "out/") + name + ":" + std::to_string(lineno);
        (dead ? r.dead_lines : r.output_lines) += 1;
        if (!lines.insert(line).second) {
          ++r.duplicate_lines;
          note("line repeated at " + where);
        }
        simdjson::dom::element doc;
        if (parser.parse(line).get(doc)) {
          ++r.unknown;
          note("not JSON at " + where);
          continue;
        }
        int64_t id = -1;
        if (dead) {
          std::string_view rec;
          if (doc["record"].get(rec)) {
            ++r.unknown;
            note("dead letter without record at " + where);
            continue;
          }
          simdjson::dom::parser inner;
          simdjson::dom::element rdoc;
          if (inner.parse(std::string{rec}).get(rdoc) || rdoc["id"].get(id)) {
            ++r.unknown;
            note("dead letter record without id at " + where);
            continue;
          }
        } else {
          if (doc["id"].get(id)) {
            ++r.unknown;
            note("line without id at " + where);
            continue;
          }
          std::string_view label;
          if (doc["label"].get(label))
            ++r.unlabelled;
        }
        count_id(id, where);
      }
    }
  }
  for (uint64_t i = 0; i < n; ++i)
    if (seen[i] == 0) {
      if (r.missing == 0)
        note("id " + std::to_string(i) + " missing (first of the missing)");
      ++r.missing;
    }
  return r;
}

/// Log-uniform in [lo, hi].
uint32_t draw_delay(std::mt19937_64& rng, double lo, double hi) {
  if (hi <= lo)
    return static_cast<uint32_t>(lo);
  std::uniform_real_distribution<double> u{std::log(lo), std::log(hi)};
  return static_cast<uint32_t>(std::exp(u(rng)));
}

/// Waits (bounded) until the server holds no rows of a killed run's calls,
/// so the next in-flight read counts only the next run's calls.
void drain_server(const reference_server& server) {
  auto deadline = clock_type::now() + std::chrono::seconds{5};
  while (server.stats().records_in_flight > 0 && clock_type::now() < deadline)
    std::this_thread::yield(); // the server's handlers end within a service time
}

} // namespace

crash_figures run_crash_test(const crash_options& o) {
  crash_figures f;
  f.inputs = o.records;
  auto t0 = clock_type::now();
  auto problem = [&](std::string what) { f.problems.push_back(std::move(what)); };
  auto tag = [&] {
    return std::string{"[seed "} + std::to_string(o.seed) + ", call log " + (o.call_log ? "on" : "off") + "] ";
  };

  f.dir = make_temp_dir();
  if (f.dir.empty()) {
    problem("cannot create a temp dir");
    return f;
  }
  reference_server_options so;
  so.model = "keyword-classifier";
  so.slots = o.slots;
  so.base = std::chrono::microseconds{static_cast<int64_t>(o.base_ms * 1000)};
  so.per_record = std::chrono::microseconds{static_cast<int64_t>(o.per_record_ms * 1000)};
  reference_server server{so};
  std::string err;
  int port = server.start(err);
  if (port < 0) {
    problem("reference server: " + err);
    return f;
  }
  write_inputs(f.dir + "/input.jsonl", o.records);
  auto job = f.dir + "/job.json";
  write_job(job, o, f.dir, port);
  std::ofstream kill_log{f.dir + "/kills.tsv"};
  kill_log << "run\tdelay_ms\trecords_in_flight\toutcome\tcommitted_lines\n";

  std::mt19937_64 rng{o.seed};
  // Progress per second of sinfer's life, to keep the kills landing before
  // the job ends.
  double run_time_s = 0;
  uint64_t committed = 0;
  bool finished = false;
  while (f.kills < o.kills && !finished && f.failed_runs == 0) {
    double cap = o.max_delay_ms;
    // Work done: committed lines, or with the call log the distinct
    // inputs scored (a restore answers those from the log).
    uint64_t done = std::max<uint64_t>(committed, o.call_log ? server.stats().distinct_inputs : 0);
    if (done > 0 && run_time_s > 0) {
      double rate = static_cast<double>(done) / run_time_s; // records per second of sinfer's life
      double left_s = static_cast<double>(o.records - std::min<uint64_t>(done, o.records)) / rate;
      double kills_left = o.kills - f.kills;
      cap = std::min(cap, 1000.0 * left_s / (kills_left + 1));
    }
    auto delay = draw_delay(rng, o.min_delay_ms, std::max<double>(cap, o.min_delay_ms));
    auto log = f.dir + "/run-" + std::to_string(f.runs) + ".log";
    auto started = clock_type::now();
    pid_t pid = spawn_run(o.sinfer, job, log);
    if (pid < 0) {
      problem(tag() + "cannot start " + o.sinfer);
      break;
    }
    uint32_t run = f.runs++;
    // The kill moment: `delay` after the start, unless the run ends first.
    child running{pid};
    uint64_t inflight = 0;
    int status = running.wait_for(milliseconds{delay});
    if (status == -1) {
      inflight = server.stats().records_in_flight;
      status = running.kill();
    }
    run_time_s += seconds_since(started);
    std::string outcome;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
      ++f.kills;
      f.inflight_at_kills += inflight;
      f.max_inflight_at_kill = std::max(f.max_inflight_at_kill, inflight);
      outcome = "killed";
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      ++f.early_exits;
      finished = true;
      outcome = "finished";
    } else {
      ++f.failed_runs;
      outcome = status_text(status);
      problem(tag() + "run " + std::to_string(run) + " (after " + std::to_string(f.kills) + " kills) ended with "
              + outcome + " before its kill; see " + log);
    }
    drain_server(server);
    auto scan = scan_output(f.dir, o.records);
    committed = scan.output_lines;
    kill_log << run << '\t' << delay << '\t' << inflight << '\t' << outcome << '\t' << scan.output_lines << '\n';
    kill_log.flush();
    if (o.verbose)
      std::fprintf(stderr, "crash: run %u: %u ms, %llu rows in flight, %s, %llu lines committed\n", run, delay,
                   static_cast<unsigned long long>(inflight), outcome.c_str(),
                   static_cast<unsigned long long>(scan.output_lines));
    if ((scan.duplicate_ids > 0 || scan.duplicate_lines > 0) && f.first_duplicate_after_kill == 0) {
      f.first_duplicate_after_kill = f.kills;
      problem(tag() + "published output holds a duplicate after run " + std::to_string(run) + " (kill "
              + std::to_string(f.kills) + "): " + (scan.examples.empty() ? "" : scan.examples.front()) + "; see "
              + log);
    }
  }

  // The run to completion (a finished job's rerun resumes from the final
  // checkpoint and does nothing).
  if (f.failed_runs == 0) {
    auto log = f.dir + "/run-" + std::to_string(f.runs) + ".log";
    pid_t pid = spawn_run(o.sinfer, job, log);
    if (pid < 0) {
      problem(tag() + "cannot start " + o.sinfer);
    } else {
      ++f.runs;
      child final_run{pid};
      int status = final_run.wait_for(milliseconds{o.run_timeout_ms});
      if (status == -1) {
        final_run.kill();
        problem(tag() + "final run hung (not done after " + std::to_string(o.run_timeout_ms) + " ms); see " + log);
      } else if (WIFEXITED(status)) {
        f.final_exit = WEXITSTATUS(status);
        if (f.final_exit != 0)
          problem(tag() + "final run ended with " + status_text(status) + "; see " + log);
      } else {
        problem(tag() + "final run ended with " + status_text(status) + "; see " + log);
      }
    }
  }
  drain_server(server);

  auto scan = scan_output(f.dir, o.records);
  static_cast<output_counts&>(f) = scan;
  auto st = server.stats();
  server.stop();
  f.server_records = st.records;
  f.distinct_inputs = st.distinct_inputs;
  f.repeated_inputs = st.repeated_inputs;
  f.rows_scored = st.distinct_inputs + st.repeated_inputs;
  f.requests = st.requests;
  f.keyed_requests = st.keyed_requests;
  f.repeated_keys = st.repeated_keys;
  f.wall_s = seconds_since(t0);

  if (f.duplicate_lines + f.duplicate_ids + f.missing + f.unknown > 0 || f.output_lines + f.dead_lines != f.inputs) {
    std::string what = tag() + "output not exactly once: " + std::to_string(f.output_lines) + " lines + "
                       + std::to_string(f.dead_lines) + " dead for " + std::to_string(f.inputs) + " inputs, "
                       + std::to_string(f.duplicate_lines) + " duplicate lines, " + std::to_string(f.duplicate_ids)
                       + " duplicate ids, " + std::to_string(f.missing) + " missing, " + std::to_string(f.unknown)
                       + " unknown";
    for (auto& e : scan.examples)
      what += "; " + e;
    problem(what);
  }
  if (f.distinct_inputs + f.dead_lines < f.inputs)
    problem(tag() + "the server scored only " + std::to_string(f.distinct_inputs) + " distinct inputs of "
            + std::to_string(f.inputs));
  if (f.problems.empty() && !o.keep_dir) {
    std::error_code ec;
    fs::remove_all(f.dir, ec);
  } else {
    f.dir_kept = true;
  }
  return f;
}

std::string summary(const crash_figures& f) {
  char buf[640];
  std::snprintf(buf, sizeof buf,
                "kills %u (runs %u, finished early %u, failed %u), inputs %llu, output lines %llu, dead %llu, "
                "duplicates %llu, missing %llu, rows scored %llu, repeated inputs %llu, in flight at kills %llu "
                "(max %llu), repeated keys %llu, wall %.1f s",
                f.kills, f.runs, f.early_exits, f.failed_runs, static_cast<unsigned long long>(f.inputs),
                static_cast<unsigned long long>(f.output_lines), static_cast<unsigned long long>(f.dead_lines),
                static_cast<unsigned long long>(f.duplicate_ids + f.duplicate_lines),
                static_cast<unsigned long long>(f.missing), static_cast<unsigned long long>(f.rows_scored),
                static_cast<unsigned long long>(f.repeated_inputs),
                static_cast<unsigned long long>(f.inflight_at_kills),
                static_cast<unsigned long long>(f.max_inflight_at_kill),
                static_cast<unsigned long long>(f.repeated_keys), f.wall_s);
  return buf;
}

} // namespace sinfer::crash
