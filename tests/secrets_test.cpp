// API keys never appear in anything sinfer writes or prints (issue 8). Real
// runs of the `sinfer` binary against the reference server on loopback with
// an OpenAI chat model whose key comes from the config or from an
// environment variable the config names, with calls failing (500, 401: a
// server that quotes the Authorization header it got in its error messages)
// so that errors, retries, dead letters and breaker changes happen. Every
// byte of every output is searched for the key, its first 8 characters and
// its base64 forms: the run's stderr at --log-level debug (log lines and the
// job summary), its stdout, /metrics and /status scraped during the run,
// `sinfer status --url` (tables and --json), the output, the dead letters,
// the event log; `sinfer sim` on a scenario of the same job (summary, --json,
// HTML report); and config validation errors of configs holding the key.
// The reference server counts the requests that carried the key, so the test
// knows the key was in play.

#include <doctest/doctest.h>

#include <httplib.h>

#include <csignal>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <thread>

#include "sim/reference_server.hpp"
#include "tests/test_util.hpp"

using namespace sinfer;
using namespace sinfer::test;

namespace {

const std::string sinfer_bin = SINFER_BIN;

/// The key: its first 8 characters are distinctive too.
const std::string secret_key = "sk-Q7vXw2Lp9RtZ-3e8f1a6b4c0d9e2f7a5b8c1d4e";
const char* const key_variable = "SINFER_SECRETS_TEST_KEY";

/// What must appear nowhere: the key, its start, and its base64 forms (alone
/// and as the Authorization header's value), without padding.
std::vector<std::pair<std::string, std::string>> needles() {
  auto unpadded = [](std::string s) {
    while (!s.empty() && s.back() == '=')
      s.pop_back();
    return s;
  };
  return {{"the key", secret_key},
          {"the key's first 8 characters", secret_key.substr(0, 8)},
          {"the key in base64", unpadded(base64(secret_key))},
          {"\"Bearer KEY\" in base64", unpadded(base64("Bearer " + secret_key))}};
}

/// Checks that no needle is in `text` (named `what` in failures).
void check_clean(const std::string& what, const std::string& text) {
  for (auto& entry : needles()) { // no structured binding: CHECK_MESSAGE captures in a lambda
    auto& name = entry.first;
    auto& needle = entry.second;
    auto at = text.find(needle);
    CHECK_MESSAGE(at == std::string::npos, what << " holds " << name << " at byte " << at << ": ..."
                                                << text.substr(at == std::string::npos ? 0 : at - std::min<size_t>(at, 60), 120)
                                                << "...");
  }
}

struct cmd_result {
  int code = -1;
  std::string out, err;
};

/// Runs `command` through the shell in `dir`, capturing stdout and stderr.
cmd_result run_cmd(const temp_dir& dir, const std::string& command) {
  auto out = dir.file(".cmd-stdout"), err = dir.file(".cmd-stderr");
  int status = std::system(("cd '" + dir.path() + "' && " + command + " >'" + out + "' 2>'" + err + "' </dev/null").c_str());
  cmd_result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

/// `sinfer run` as a child process whose stdin the test writes (a stdin
/// source: the job runs until the test closes it).
class running_job {
public:
  running_job(const temp_dir& dir, const std::vector<std::string>& args) : out_(dir.file("run.stdout")), err_(dir.file("run.stderr")) {
    std::vector<std::string> all{sinfer_bin};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    int out_fd = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err_fd = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(out_fd >= 0);
    REQUIRE(err_fd >= 0);
    auto cwd = dir.path();
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) { // only async-signal-safe calls until exec
      if (::chdir(cwd.c_str()) != 0 || ::dup2(fds[0], 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0)
        ::_exit(126);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[0]);
    ::close(out_fd);
    ::close(err_fd);
    stdin_ = fds[1];
  }

  ~running_job() {
    close_input();
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  void write_lines(const std::string& text) {
    auto n = ::write(stdin_, text.data(), text.size());
    REQUIRE(n == static_cast<ssize_t>(text.size()));
  }

  void close_input() {
    if (stdin_ >= 0)
      ::close(stdin_);
    stdin_ = -1;
  }

  /// Whether the process is still running (reaps it when not).
  bool alive() {
    if (exited_)
      return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    return !exited_;
  }

  /// Waits for the exit (at most `limit`): the exit code, -1 on a timeout.
  int wait(std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (alive() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    return exited_ ? code_ : -1;
  }

  /// The metrics port the job logs at start ("metrics at http://H:P/metrics"),
  /// waited for (at most 30 s); -1 if the process ends or it never comes.
  int metrics_port() {
    static const std::regex line{R"(metrics at http://127\.0\.0\.1:(\d+)/metrics)"};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      auto text = read_file(err_);
      if (std::regex_search(text, m, line))
        return std::stoi(m[1]);
      if (!alive())
        return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    }
    return -1;
  }

  std::string stdout_text() const {
    return read_file(out_);
  }
  std::string stderr_text() const {
    return read_file(err_);
  }

private:
  std::string out_, err_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  bool exited_ = false;
  int code_ = -1;
};

/// The job's /status records, out + dead-lettered, waited for until they
/// reach `done` (at most 60 s); false on a timeout.
bool wait_for_done(httplib::Client& client, uint64_t done, running_job& job) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
  simdjson::dom::parser parser;
  while (std::chrono::steady_clock::now() < deadline && job.alive()) {
    auto res = client.Get("/status");
    if (res && res->status == 200) {
      simdjson::dom::element root;
      uint64_t out = 0, dead = 0;
      if (!parser.parse(res->body).get(root) && !root.at_pointer("/records/out").get(out)
          && !root.at_pointer("/records/dead_lettered").get(dead) && out + dead >= done)
        return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  return false;
}

/// The job: one OpenAI chat model at `url` whose key is `key_json` (the
/// members giving it), stdin in, output, dead letters, metrics and event log
/// in `dir`. Retries and breakers tuned so that 4 failed calls open the
/// breakers and every record gets 2 attempts.
std::string job_config(const temp_dir& dir, const std::string& url, const std::string& key_json) {
  return R"({
  "job": {"name": "secrets", "parallelism": 1},
  "source": {"type": "stdin"},
  "models": {
    "chat": {
      "provider": "openai", "model": "keyword-classifier",
      "endpoints": [")" + url + R"("],
      )" + key_json + R"(,
      "openai": {"api": "chat", "prompt": "Summarise: ${text}", "max-tokens": 8},
      "input": {"text": "text"},
      "output": {"content": "summary"},
      "timeout": {"attempt": "5s", "total": "60s"},
      "retry": {"max-attempts": 2, "initial-backoff": "10ms", "max-backoff": "20ms", "budget-percent": 100,
                "min-retry-concurrency": 10},
      "breaker": {"subtask": {"failure-rate": 0.5, "minimum-calls": 4, "open-duration": "100ms"},
                  "job": {"failure-rate": 0.5, "minimum-calls": 4, "open-duration": "100ms"}},
      "failure-action": "dead-letter"
    }
  },
  "stages": ["chat"],
  "sink": {"type": "jsonl", "path": ")" + dir.file("out.jsonl") + R"("},
  "dead-letter": {"path": ")" + dir.file("dead.jsonl") + R"("},
  "metrics": {"port": 0, "event-log": ")" + dir.file("events.jsonl") + R"("}
})";
}

fault_plan echoing_fault(int status, int64_t count) {
  fault_plan f;
  f.kind = fault_plan::status;
  f.status_code = status;
  f.count = count;
  f.echo_credentials = true;
  return f;
}

std::string records(const std::string& prefix, int n) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out += R"({"id":")" + prefix + std::to_string(i) + R"(","text":")" + (i % 2 == 0 ? "great product" : "terrible service")
           + "\"}\n";
  return out;
}

/// Every output of one `sinfer run` (and what it proves) with the key given
/// by `key_json`; then `sinfer sim` on a scenario of the same job.
void check_run(const std::string& key_json) {
  std::signal(SIGPIPE, SIG_IGN); // a child that died must fail a check, not the test process
  reference_server_options o;
  o.api_key = secret_key;
  reference_server server{o};
  std::string err;
  REQUIRE_MESSAGE(server.start(err) > 0, err);
  temp_dir dir;
  write_file(dir.file("job.json"), job_config(dir, server.url(), key_json));
  std::map<std::string, std::string> outputs; // what each output held

  {
    running_job job{dir, {"run", "job.json", "--log-level", "debug", "--threads", "2"}};
    int port = job.metrics_port();
    REQUIRE_MESSAGE(port > 0, "no metrics port; stderr: " << job.stderr_text());
    httplib::Client client{"127.0.0.1", port};
    client.set_read_timeout(5, 0);
    // 1. Two records, four calls answered 500 (quoting the key): each record
    //    fails twice (a retry each), the breakers open, both dead-lettered.
    server.inject(echoing_fault(500, 4));
    job.write_lines(records("a", 2));
    REQUIRE_MESSAGE(wait_for_done(client, 2, job), job.stderr_text());
    // 2. One record, two calls answered 401 (quoting the key): its probes
    //    fail, it is dead-lettered after its two attempts.
    server.inject(echoing_fault(401, 2));
    job.write_lines(records("b", 1));
    REQUIRE_MESSAGE(wait_for_done(client, 3, job), job.stderr_text());
    // 3. The server is fine again: five records scored once the breakers
    //    close.
    server.inject(fault_plan{});
    job.write_lines(records("c", 5));
    REQUIRE_MESSAGE(wait_for_done(client, 8, job), job.stderr_text());
    // Scraped while the job runs.
    auto metrics = client.Get("/metrics");
    REQUIRE(metrics);
    CHECK(metrics->status == 200);
    outputs["/metrics"] = metrics->body;
    auto status = client.Get("/status");
    REQUIRE(status);
    CHECK(status->status == 200);
    outputs["/status"] = status->body;
    auto url = " --url http://127.0.0.1:" + std::to_string(port);
    auto table = run_cmd(dir, sinfer_bin + " status" + url);
    CHECK_MESSAGE(table.code == 0, table.err);
    CHECK(table.out.find("job \"secrets\": running") != std::string::npos);
    outputs["sinfer status (stdout)"] = table.out;
    outputs["sinfer status (stderr)"] = table.err;
    auto json = run_cmd(dir, sinfer_bin + " status --json" + url);
    CHECK(json.code == 0);
    outputs["sinfer status --json (stdout)"] = json.out;
    outputs["sinfer status --json (stderr)"] = json.err;
    // The end of the input ends the job.
    job.close_input();
    CHECK(job.wait(std::chrono::seconds{60}) == 0);
    outputs["sinfer run (stderr)"] = job.stderr_text();
    outputs["sinfer run (stdout)"] = job.stdout_text();
    // What the figures say: the failures, retries, dead letters and breaker
    // changes did happen, and every record has one outcome.
    auto& summary = outputs["sinfer run (stderr)"];
    CHECK_MESSAGE(summary.find("job \"secrets\" finished: 8 in, 5 out, 3 dead-lettered") != std::string::npos, summary);
    CHECK(prometheus_sample(metrics->body, R"(sinfer_records_dead_lettered_total{job_name="secrets"})").value_or(0) == 3);
    CHECK(metrics->body.find("sinfer_stage_retries_total") != std::string::npos);
  }
  outputs["output"] = read_file(dir.file("out.jsonl"));
  outputs["dead letters"] = read_file(dir.file("dead.jsonl"));
  outputs["event log"] = read_file(dir.file("events.jsonl"));
  CHECK(read_lines(dir.file("out.jsonl")).size() == 5);
  CHECK(read_lines(dir.file("dead.jsonl")).size() == 3);
  // The server quoted the key in its errors: the dead letters say so, scrubbed.
  CHECK(count_of(outputs["dead letters"], "HTTP 500: injected fault (got Authorization: ***)") == 2);
  CHECK(count_of(outputs["dead letters"], "HTTP 401: injected fault (got Authorization: ***)") == 1);
  CHECK(count_of(outputs["event log"], "\"event\":\"dead-letter\"") == 3);
  CHECK(count_of(outputs["event log"], "\"event\":\"breaker\"") >= 1);
  CHECK(outputs["sinfer run (stderr)"].find("breaker") != std::string::npos);
  // The key reached the server (the model list at start and the calls).
  CHECK(server.authorized_requests() >= 8);

  // The same job under `sinfer sim` (virtual time: its load replaces stdin,
  // its servers fail half the calls for a while).
  write_file(dir.file("scenario.json"), R"({
  "name": "secrets-sim",
  "job": "job.json",
  "load": {"profile": [{"for": "20s", "rate": 50}], "template": {"id": "${i}", "text": "${pick:great product|terrible service}"}},
  "servers": {"default": {"slots": 2, "base": "5ms"},
              "chat": {"faults": [{"type": "errors", "at": "5s", "for": "5s", "share": 0.5}]}}
})");
  auto sim = run_cmd(dir, sinfer_bin + " sim scenario.json --report report.html");
  CHECK_MESSAGE(sim.code == 0, sim.err);
  CHECK(sim.out.find("scenario \"secrets-sim\"") != std::string::npos);
  CHECK(sim.out.find("breaker transitions") != std::string::npos); // the faults did fail calls
  outputs["sinfer sim (stdout)"] = sim.out;
  outputs["sinfer sim (stderr)"] = sim.err;
  outputs["sinfer sim --report"] = read_file(dir.file("report.html"));
  CHECK(outputs["sinfer sim --report"].find("<html") != std::string::npos);
  auto sim_json = run_cmd(dir, sinfer_bin + " sim scenario.json --json -v");
  CHECK_MESSAGE(sim_json.code == 0, sim_json.err);
  outputs["sinfer sim --json -v (stdout)"] = sim_json.out;
  outputs["sinfer sim --json -v (stderr)"] = sim_json.err;
  // Searched last, all of it.
  for (auto& output : outputs) { // no structured binding: CAPTURE is a lambda
    auto& what = output.first;
    auto& text = output.second;
    CAPTURE(what);
    bool may_be_empty = what.find("stdout") != std::string::npos || what.find("stderr") != std::string::npos;
    CHECK_MESSAGE((!text.empty() || may_be_empty), what << " is empty: nothing was searched");
    check_clean(what, text);
  }
}

} // namespace

TEST_CASE("secrets: the API key from the config appears in no output of a run, a status or a simulation") {
  check_run(R"("api-key": ")" + secret_key + "\"");
}

TEST_CASE("secrets: the API key from an environment variable appears in no output of a run, a status or a simulation") {
  ::setenv(key_variable, secret_key.c_str(), 1);
  check_run(R"("api-key-env": ")" + std::string{key_variable} + "\"");
  ::unsetenv(key_variable);
}

TEST_CASE("secrets: config errors of a config holding the key never quote it") {
  temp_dir dir;
  const std::string valid_model = R"("provider": "openai", "model": "m", "endpoints": ["http://127.0.0.1:9"],
      "openai": {"api": "chat", "prompt": "${text}"}, "output": {"content": "summary"})";
  auto config = [&](const std::string& model_members, const std::string& extra = "") {
    return R"({"job": {"name": "j"}, "source": {"type": "generator", "count": 1},
  "models": {"chat": {)" + model_members + R"(}},
  "stages": ["chat"], "sink": {"type": "jsonl", "path": "out.jsonl"})" + extra + "}";
  };
  const std::string key = "\"" + secret_key + "\"";
  struct row {
    const char* name;
    std::string text;
    const char* expected;
  };
  std::vector<row> rows = {
    {"an error elsewhere in the config", config(valid_model + R"(, "api-key": )" + key + R"(, "batch": {"max-size": -1})"),
     "models.chat.batch.max-size: expected an integer in 1..100000, got -1"},
    {"an error in a sibling key", config(valid_model + R"(, "api-key": )" + key + R"(, "api-key-header": 5)"),
     "models.chat.api-key-header: expected a non-empty string, got 5"},
    {"both api-key and api-key-env", config(valid_model + R"(, "api-key": )" + key + R"(, "api-key-env": "HOME")"),
     "models.chat.api-key-env: give either api-key or api-key-env, not both"},
    {"the key where a variable name belongs", config(valid_model + R"(, "api-key-env": )" + key),
     "models.chat.api-key-env: expected the name of a set environment variable"},
    {"the key as a wrong type", config(valid_model + R"(, "api-key": [)" + key + "]"),
     "models.chat.api-key: expected a non-empty string (value not shown)"},
    {"the key misspelt as api_key", config(valid_model + R"(, "api_key": )" + key),
     "models.chat.api_key: unknown key (did you mean 'api-key'?)"},
    {"the key in the endpoint URL", config(R"("provider": "openai", "model": "m", "endpoints": ["http://user:)" + secret_key
                                              + R"(@127.0.0.1:9"], "openai": {"api": "chat", "prompt": "${text}"})"),
     "credentials in a URL are not supported (use api-key or api-key-env); URL not shown"},
    {"the key for an in-process model", config(R"("provider": "in-process", "model": "keyword-classifier", "api-key": )" + key),
     "models.chat.api-key: only valid for HTTP providers"},
    {"a top level that is not an object", "[{\"api-key\": " + key + "}]", "expected a JSON object at the top level"},
    {"the key inside a JSON syntax error", config(valid_model + R"(, "api-key": )" + key + ", "),
     "invalid JSON"},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    write_file(dir.file("job.json"), r.text);
    for (auto sub : {"validate", "run"}) {
      CAPTURE(sub);
      auto res = run_cmd(dir, sinfer_bin + " " + sub + " job.json");
      CHECK(res.code == 2);
      CHECK_MESSAGE(res.err.find(r.expected) != std::string::npos, res.err);
      check_clean(std::string{"sinfer "} + sub + " (stderr)", res.err);
      check_clean(std::string{"sinfer "} + sub + " (stdout)", res.out);
    }
  }
  // A scenario whose `set` patch holds the key next to an error.
  write_file(dir.file("job.json"), config(valid_model));
  write_file(dir.file("scenario.json"), R"({"name": "s", "job": "job.json",
  "load": {"profile": [{"for": "1s", "rate": 10}]},
  "set": {"models": {"chat": {"api-key": )" + key + R"(, "batch": {"max-size": 0}}}}})");
  auto sim = run_cmd(dir, sinfer_bin + " sim scenario.json");
  CHECK(sim.code == 2);
  CHECK_MESSAGE(sim.err.find("batch.max-size") != std::string::npos, sim.err);
  check_clean("sinfer sim (stderr)", sim.err);
  check_clean("sinfer sim (stdout)", sim.out);
}
