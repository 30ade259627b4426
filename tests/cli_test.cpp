// The `sinfer` command as a user runs it: exit codes, messages, the
// quickstart job in both output modes, and the C++ API example.

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sys/wait.h>

#include "tests/test_util.hpp"

using namespace sinfer::test;

namespace {

struct cmd_result {
  int code = -1;
  std::string out;
  std::string err;
};

/// Runs `command` in `cwd` through the shell, capturing stdout and stderr.
cmd_result run_in(const temp_dir& cwd, const std::string& command, const std::string& input = "/dev/null") {
  auto out = cwd.file(".stdout");
  auto err = cwd.file(".stderr");
  std::string line = "cd '" + cwd.path() + "' && " + command + " >'" + out + "' 2>'" + err + "' <'" + input + "'";
  int status = std::system(line.c_str());
  cmd_result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

const std::string sinfer_bin = SINFER_BIN;

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto i = s.find(from); i != std::string::npos; i = s.find(from, i + to.size()))
    s.replace(i, from.size(), to);
  return s;
}

/// A valid config to break one key at a time.
const std::string base_config = R"({
  "job": {"name": "t", "parallelism": 2, "output-mode": "ordered"},
  "source": {"type": "generator", "count": 10},
  "models": {
    "sentiment": {"provider": "in-process", "model": "keyword-classifier", "input": {"text": "text"},
                  "max-concurrent-operations": 8, "batch": {"max-size": 4}, "failure-action": "dead-letter"}
  },
  "stages": ["sentiment"],
  "sink": {"type": "jsonl", "path": "out.jsonl"}
})";

struct bad_case {
  const char* what;
  std::string config; // empty: no file at all
  const char* expected;
};

std::vector<bad_case> bad_cases() {
  auto b = base_config;
  auto with = [&](const std::string& from, const std::string& to) { return replace_all(b, from, to); };
  return {
    {"wrong type (string for integer)", with("\"max-concurrent-operations\": 8", "\"max-concurrent-operations\": \"ten\""),
     "models.sentiment.max-concurrent-operations: expected an integer in 1..1000000, got \"ten\""},
    {"wrong type (number for string)", with("\"name\": \"t\"", "\"name\": 5"), "job.name: expected a non-empty string, got 5"},
    {"wrong type (object for array)", with("\"stages\": [\"sentiment\"]", "\"stages\": {}"), "stages: expected an array of model names"},
    {"negative size", with("\"max-size\": 4", "\"max-size\": -4"), "models.sentiment.batch.max-size: expected an integer in 1..100000, got -4"},
    {"zero parallelism", with("\"parallelism\": 2", "\"parallelism\": 0"), "job.parallelism: expected an integer in 1..1024, got 0"},
    {"negative count", with("\"count\": 10", "\"count\": -10"), "source.count: expected an integer >= 0, got -10"},
    {"unknown top-level key", with("\"stages\":", "\"stage\": 1, \"stages\":"), "stage: unknown key (did you mean 'stages'?)"},
    {"unknown nested key", with("\"output-mode\"", "\"paralelism\": 2, \"output-mode\""), "job.paralelism: unknown key (did you mean 'parallelism'?)"},
    {"unknown model key", with("\"failure-action\"", "\"max-concurent-operations\": 3, \"failure-action\""),
     "models.sentiment.max-concurent-operations: unknown key (did you mean 'max-concurrent-operations'?)"},
    {"missing required source", with("\"source\": {\"type\": \"generator\", \"count\": 10},", ""), "source: missing required key"},
    {"missing required stages", with("\"stages\": [\"sentiment\"],", ""), "stages: missing required key"},
    {"missing required source.path", with("\"type\": \"generator\", \"count\": 10", "\"type\": \"jsonl\""), "source.path: missing required key"},
    {"bad enum output-mode", with("\"output-mode\": \"ordered\"", "\"output-mode\": \"sorted\""),
     "job.output-mode: expected one of \"ordered\" | \"unordered\", got \"sorted\""},
    {"bad enum failure-action", with("\"failure-action\": \"dead-letter\"", "\"failure-action\": \"ignore\""),
     "models.sentiment.failure-action: expected one of \"dead-letter\" | \"fail-job\" | \"default-value\" | \"fallback\", got \"ignore\""},
    {"bad enum source.type", with("\"type\": \"generator\"", "\"type\": \"kafka\""), "source.type: expected one of"},
    {"bad duration", with("\"failure-action\"", "\"latency\": \"fast\", \"failure-action\""), "models.sentiment.latency: expected a duration"},
    {"stage names no model", with("[\"sentiment\"]", "[\"sentimnet\"]"), "stages[0]: no model named \"sentimnet\" in models (did you mean 'sentiment'?)"},
    {"unknown in-process model", with("\"keyword-classifier\"", "\"keyword-clasifier\""),
     "models.sentiment.model: no in-process model named \"keyword-clasifier\" (did you mean 'keyword-classifier'?)"},
    {"openai without its api", with("\"in-process\"", "\"openai\""), "models.sentiment.openai.api: missing required key"},
    {"invalid JSON", "{\"job\": ", "invalid JSON"},
    {"top level not an object", "[1, 2]", "expected a JSON object at the top level"},
    {"unreadable file", "", "cannot read the config file"},
  };
}

} // namespace

TEST_CASE("bad configs: exit 2 and a message naming the file and key path, for run and validate") {
  auto cases = bad_cases();
  REQUIRE(cases.size() >= 15);
  for (auto& c : cases) {
    CAPTURE(c.what);
    temp_dir dir;
    if (!c.config.empty())
      write_file(dir.file("job.json"), c.config);
    for (auto sub : {"validate", "run"}) {
      CAPTURE(sub);
      auto r = run_in(dir, sinfer_bin + " " + sub + " job.json");
      CHECK(r.code == 2);
      CHECK(r.err.find("job.json: ") == 0);
      CHECK(r.err.find(c.expected) != std::string::npos);
      if (r.err.find(c.expected) == std::string::npos)
        MESSAGE(r.err);
    }
  }
}

TEST_CASE("the base config of the bad-config table is itself valid") {
  temp_dir dir;
  write_file(dir.file("job.json"), base_config);
  auto r = run_in(dir, sinfer_bin + " validate job.json");
  CHECK(r.code == 0);
  r = run_in(dir, sinfer_bin + " run job.json");
  CHECK(r.code == 0);
  CHECK(read_lines(dir.file("out.jsonl")).size() == 10);
}

TEST_CASE("run: an unreadable source file is a config error (exit 2) naming source.path") {
  temp_dir dir;
  write_file(dir.file("job.json"),
             replace_all(base_config, "\"type\": \"generator\", \"count\": 10", "\"type\": \"jsonl\", \"path\": \"missing.jsonl\""));
  auto r = run_in(dir, sinfer_bin + " run job.json");
  CHECK(r.code == 2);
  CHECK(r.err.find("job.json: source.path: cannot read \"missing.jsonl\"") != std::string::npos);
}

TEST_CASE("usage: --help exits 0 on every subcommand, bad usage exits 2") {
  temp_dir dir;
  for (auto args : {"--help", "run --help", "validate --help", "serve-sim --help"}) {
    CAPTURE(args);
    auto r = run_in(dir, sinfer_bin + " " + args);
    CHECK(r.code == 0);
    CHECK(r.out.find("Usage") != std::string::npos);
  }
  for (auto args : {"", "run", "frobnicate x.json", "run a.json --no-such-flag"}) {
    CAPTURE(args);
    CHECK(run_in(dir, sinfer_bin + " " + args).code == 2);
  }
}

TEST_CASE("a job that fails exits 1 with a one-line reason") {
  temp_dir dir;
  write_file(dir.file("in.jsonl"), "{\"text\":\"fine\"}\n{\"text\":3}\n");
  auto cfg = replace_all(base_config, "\"type\": \"generator\", \"count\": 10", "\"type\": \"jsonl\", \"path\": \"in.jsonl\"");
  write_file(dir.file("job.json"), replace_all(cfg, "\"dead-letter\"}", "\"fail-job\"}"));
  auto r = run_in(dir, sinfer_bin + " run -q job.json");
  CHECK(r.code == 1);
  CHECK(r.err.find("sinfer: job \"t\" failed: stage 1 \"sentiment\": fatal-record") != std::string::npos);
}

namespace {

/// Runs the shipped quickstart with `mode`; checks counts and contents.
/// Returns the ids in output order, per user.
std::map<std::string, std::vector<int64_t>> run_quickstart(const std::string& mode) {
  temp_dir dir;
  auto cfg = read_file(SINFER_SOURCE_DIR "/examples/quickstart.json");
  REQUIRE(cfg.find("\"output-mode\": \"ordered\"") != std::string::npos);
  write_file(dir.file("job.json"), replace_all(cfg, "\"output-mode\": \"ordered\"", "\"output-mode\": \"" + mode + "\""));
  auto r = run_in(dir, sinfer_bin + " run job.json");
  REQUIRE(r.code == 0);
  CHECK(r.err.find("sinfer: job \"quickstart\" finished: 100000 in, 100000 out, 0 dead-lettered") != std::string::npos);
  auto lines = read_lines(dir.file("quickstart-out.jsonl"));
  REQUIRE(lines.size() == 100000);
  std::map<std::string, std::vector<int64_t>> ids_by_user;
  std::set<int64_t> ids;
  simdjson::dom::parser parser;
  std::map<std::string, std::string> label_of = {
    {"great product, fast delivery", "positive"}, {"terrible service, never again", "negative"},
    {"it was ok", "neutral"},                      {"love it, would recommend", "positive"},
    {"broken on arrival, want a refund", "negative"}, {"nice but slow shipping", "neutral"},
    {"the worst purchase ever", "negative"},       {"excellent value and friendly support", "positive"}};
  size_t bad = 0;
  for (auto& line : lines) {
    auto obj = parse_object(parser, line);
    auto id = int_field(obj, "id");
    ids.insert(id);
    ids_by_user[str_field(obj, "user")].push_back(id);
    auto review = str_field(obj, "review");
    bad += label_of.count(review) == 0 || label_of[review] != str_field(obj, "sentiment");
    simdjson::dom::array emb;
    bad += obj["review_embedding"].get(emb) || emb.size() != 8;
  }
  CHECK(bad == 0);
  CHECK(ids.size() == 100000);
  CHECK(*ids.rbegin() == 99999);
  return ids_by_user;
}

} // namespace

TEST_CASE("quickstart, ordered: 100k records through 2 stages at P=2, input order kept per key") {
  auto by_user = run_quickstart("ordered");
  CHECK(by_user.size() == 12);
  for (auto& kv : by_user) {
    CAPTURE(kv.first);
    CHECK(std::is_sorted(kv.second.begin(), kv.second.end()));
  }
}

TEST_CASE("quickstart, unordered: every record exactly once") {
  auto by_user = run_quickstart("unordered");
  CHECK(by_user.size() == 12);
}

TEST_CASE("the C++ API example builds and runs the same kind of job") {
  temp_dir dir;
  auto r = run_in(dir, std::string{SINFER_PROGRAMMATIC_BIN} + " out.jsonl 5000");
  CHECK(r.code == 0);
  auto lines = read_lines(dir.file("out.jsonl"));
  REQUIRE(lines.size() == 5000);
  CHECK(lines[0].find("\"sentiment\":") != std::string::npos);
  CHECK(lines[0].find("\"shout\":\"") != std::string::npos);
}

TEST_CASE("examples/review_demo: the demo pipeline from the C++ API survives its endpoint fault") {
  // 600 reviews at 150/s (4 s); gpu-a answers 503 from record 200 for 2 s.
  temp_dir dir;
  auto r = run_in(dir, std::string{SINFER_REVIEW_DEMO_BIN} +
                         " --dir demo --records 600 --rate 150 --fault-seconds 2");
  INFO(r.out);
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("FAULT: gpu-a answers 503") != std::string::npos);
  CHECK(r.out.find("job breaker sentiment/gpu-a: closed -> open") != std::string::npos);
  CHECK(r.out.find("600 in, 600 out, 0 dead-lettered, none lost") != std::string::npos);
  // Every review scored by all three models; a summary exactly for the
  // negative ones (the stage condition).
  auto lines = read_lines(dir.file("demo/out.jsonl"));
  REQUIRE(lines.size() == 600);
  size_t negative = 0;
  for (auto& line : lines) {
    CHECK(line.find("\"review_embedding\":[") != std::string::npos);
    bool neg = line.find("\"sentiment\":\"negative\"") != std::string::npos;
    negative += neg;
    CHECK_MESSAGE(neg == (line.find("\"summary\":") != std::string::npos), line);
  }
  CHECK(negative > 0);
  CHECK(negative < 600);
  // The event log has the job breaker's opening.
  auto events = read_file(dir.file("demo/events.jsonl"));
  CHECK(events.find("\"endpoint\":\"sentiment/gpu-a\"") != std::string::npos);
  CHECK(events.find("\"to\":\"open\"") != std::string::npos);
}

TEST_CASE("stdin to stdout: a pipe in, a pipe out, dead letters still go to their file") {
  temp_dir dir;
  write_file(dir.file("in.jsonl"), "{\"text\":\"great\"}\nnot json\n{\"text\":\"awful\"}\n");
  write_file(dir.file("job.json"), R"({
    "source": {"type": "stdin"},
    "models": {"m": {"model": "keyword-classifier", "output": {"label": "label"}}},
    "stages": ["m"],
    "sink": {"type": "stdout"},
    "dead-letter": {"path": "dead.jsonl"}
  })");
  auto r = run_in(dir, sinfer_bin + " run job.json", dir.file("in.jsonl"));
  CHECK(r.code == 0);
  CHECK(r.out == "{\"text\":\"great\",\"label\":\"positive\"}\n{\"text\":\"awful\",\"label\":\"negative\"}\n");
  auto dead = read_lines(dir.file("dead.jsonl"));
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].find("\"source\":\"stdin\",\"partition\":0,\"offset\":2,\"line\":2") != std::string::npos);
  CHECK(r.err.find("2 out, 1 dead-lettered (see dead.jsonl)") != std::string::npos);
}

TEST_CASE("sinfer run: SIGTERM (or SIGINT) stops the source, drains what is in flight and ends with exit 0") {
  temp_dir dir;
  write_file(dir.file("job.json"), R"({
    "job": {"name": "endless"},
    "source": {"type": "generator", "count": 100000000, "rate": 500},
    "models": {"m": {"model": "keyword-classifier", "input": {"text": "text"}, "output": {"label": "label"}}},
    "stages": ["m"],
    "sink": {"type": "jsonl", "path": "out.jsonl"}
  })");
  // Waits (bounded) for the first output line, then stops the job; a
  // watchdog kills it if it does not stop (the test then fails, not hangs).
  // SIGTERM: a shell's background job ignores SIGINT.
  auto r = run_in(dir, "( " + sinfer_bin + " run -q job.json & pid=$!; "
                       "for i in $(seq 200); do [ -s out.jsonl ] && break; sleep 0.05; done; "
                       "( sleep 30; kill -KILL $pid ) 2>/dev/null & dog=$!; "
                       "kill -TERM $pid; wait $pid; echo \"exit $?\"; kill $dog 2>/dev/null )");
  auto all = r.out + r.err;
  CHECK_MESSAGE(r.out.find("exit 0") != std::string::npos, all);
  CHECK(r.err.find("stopping: draining records in flight") != std::string::npos);
  CHECK(r.err.find("finished") != std::string::npos);
  // Everything read was written: nothing lost on the way out.
  auto lines = read_lines(dir.file("out.jsonl"));
  CHECK(!lines.empty());
  CHECK(lines.size() < 100000000);
  CHECK(r.err.find(std::to_string(lines.size()) + " in, " + std::to_string(lines.size()) + " out")
        != std::string::npos);
}

TEST_CASE("sinfer run with checkpoints: parts, resume, --fresh, and flags without checkpoints") {
  temp_dir dir;
  write_file(dir.file("job.json"), R"({
    "job": {"name": "ck", "parallelism": 2},
    "source": {"type": "generator", "count": 300},
    "models": {"m": {"model": "keyword-classifier", "input": {"text": "text"}, "output": {"label": "label"}}},
    "stages": ["m"],
    "sink": {"type": "jsonl", "path": "out"},
    "dead-letter": {"path": "dead"},
    "checkpoint": {"dir": "ckpt", "interval": "10ms"}
  })");
  auto count_lines = [&] {
    size_t n = 0;
    for (auto& name : list_dir(dir.file("out")))
      if (name.rfind("part-", 0) == 0)
        n += read_lines(dir.file("out") + "/" + name).size();
    return n;
  };
  auto r = run_in(dir, sinfer_bin + " run job.json");
  CHECK_MESSAGE(r.code == 0, r.err);
  CHECK(r.err.find("300 in, 300 out") != std::string::npos);
  CHECK(r.err.find("checkpoints: ") != std::string::npos);
  CHECK(count_lines() == 300u);
  // Again: it resumes after the end and reads nothing.
  r = run_in(dir, sinfer_bin + " run job.json");
  CHECK_MESSAGE(r.code == 0, r.err);
  CHECK(r.err.find("resuming from checkpoint") != std::string::npos);
  CHECK(r.err.find("0 in, 0 out") != std::string::npos);
  CHECK(count_lines() == 300u);
  // --fresh: over again, the output replaced, not appended to.
  r = run_in(dir, sinfer_bin + " run --fresh job.json");
  CHECK_MESSAGE(r.code == 0, r.err);
  CHECK(r.err.find("300 in, 300 out") != std::string::npos);
  CHECK(count_lines() == 300u);
  // Usage and meaning errors.
  r = run_in(dir, sinfer_bin + " run --fresh --from-checkpoint 1 job.json");
  CHECK(r.code == 2);
  write_file(dir.file("plain.json"), replace_all(read_file(dir.file("job.json")), R"(,
    "checkpoint": {"dir": "ckpt", "interval": "10ms"})", ""));
  r = run_in(dir, sinfer_bin + " run --fresh plain.json");
  CHECK(r.code == 1);
  CHECK(r.err.find("--fresh needs checkpoints: the job has no checkpoint.dir") != std::string::npos);
}
