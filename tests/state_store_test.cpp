// The state store (runtime/state_store.hpp): checkpoints written atomically
// and verified on read, torn or damaged ones skipped, retention, and the
// call log's epochs.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "runtime/call_log.hpp"
#include "runtime/state_store.hpp"
#include "test_util.hpp"

using namespace sinfer;

namespace {

checkpoint_data checkpoint(uint64_t id, std::string tag = "x") {
  checkpoint_data c;
  c.id = id;
  c.job_fingerprint = "stages=a,b";
  c.parts["source"] = "offset=" + std::to_string(id * 100);
  c.parts["subtask-0/stage-0"] = std::string(1000, 'r') + tag;
  c.parts["sink/pending"] = "";
  return c;
}

std::unique_ptr<state_store> open_store(const std::string& dir) {
  std::string error;
  auto s = state_store::open(dir, error);
  INFO(error);
  REQUIRE(s);
  return s;
}

} // namespace

TEST_CASE("state store: a checkpoint reads back whole, after the store is reopened too") {
  test::temp_dir dir;
  {
    auto store = open_store(dir.file("state"));
    std::string error;
    REQUIRE(store->write_checkpoint(checkpoint(1), error));
    REQUIRE(store->write_checkpoint(checkpoint(2), error));
    CHECK(store->checkpoint_ids() == std::vector<uint64_t>{1, 2});
  }
  auto store = open_store(dir.file("state"));
  auto latest = store->latest_checkpoint();
  REQUIRE(latest);
  CHECK(latest->id == 2);
  CHECK(latest->job_fingerprint == "stages=a,b");
  CHECK(latest->parts == checkpoint(2).parts);
  std::string problem;
  CHECK(store->read_checkpoint(1, problem)->parts.at("source") == "offset=100");
  CHECK_FALSE(store->read_checkpoint(3, problem));
  CHECK(problem == "checkpoint 3: no manifest (never completed)");
}

TEST_CASE("state store: a checkpoint interrupted mid-write or damaged is never used") {
  struct row {
    const char* name;
    bool damage;
    const char* problem;
  };
  std::vector<row> rows = {
    {"parts written, manifest not (a crash mid-write)", false, ""},
    {"a part overwritten after the manifest", true,
     "checkpoint 3: part \"sink/pending\" does not match its checksum"},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    test::temp_dir dir;
    auto store = open_store(dir.file("state"));
    std::string error;
    REQUIRE(store->write_checkpoint(checkpoint(2), error));
    store->write_torn_checkpoint_for_test(checkpoint(3, "new"), r.damage);
    std::vector<std::string> skipped;
    auto latest = store->latest_checkpoint(&skipped);
    REQUIRE(latest);
    CHECK(latest->id == 2); // the one before
    CHECK(latest->parts == checkpoint(2).parts);
    if (*r.problem) {
      REQUIRE(skipped.size() == 1);
      CHECK(skipped[0] == r.problem);
    } else {
      CHECK(skipped.empty()); // no manifest: not even listed
      CHECK(store->checkpoint_ids() == std::vector<uint64_t>{2});
    }
  }
}

TEST_CASE("state store: retain keeps the newest checkpoints and drops torn leftovers") {
  test::temp_dir dir;
  auto store = open_store(dir.file("state"));
  std::string error;
  store->write_torn_checkpoint_for_test(checkpoint(1), false);
  for (uint64_t id = 2; id <= 6; ++id)
    REQUIRE(store->write_checkpoint(checkpoint(id), error));
  store->retain(2);
  CHECK(store->checkpoint_ids() == std::vector<uint64_t>{5, 6});
  std::string problem;
  CHECK_FALSE(store->read_checkpoint(1, problem));
  CHECK(store->latest_checkpoint()->id == 6);
  store->retain(0); // at least one is always kept
  CHECK(store->checkpoint_ids() == std::vector<uint64_t>{6});
}

TEST_CASE("call log: every run's files read back, torn tails dropped, a run prunes only its own epochs") {
  test::temp_dir dir;
  std::string error;
  const std::string run1 = "r100p1", run2 = "r200p2";
  {
    call_log_writer a{dir.path(), run1, "stage-0-subtask-0"}, b{dir.path(), run1, "stage-0-subtask-1"};
    REQUIRE(a.append(1, {{"m/0/0/1/h", "one"}}, false, error));
    REQUIRE(a.append(2, {{"m/0/0/2/h", "two"}, {"m/0/0/3/h", ""}}, false, error));
    REQUIRE(b.append(2, {{"m/0/0/4/h", "four"}}, true, error));
    REQUIRE(b.append(3, {{"m/0/0/2/h", "two again"}}, false, error));
  }
  std::unordered_map<std::string, std::string> calls;
  std::vector<std::string> notes;
  REQUIRE(read_call_log(dir.path(), calls, notes, error));
  CHECK(calls.size() == 4);
  CHECK(calls["m/0/0/1/h"] == "one");
  CHECK(calls["m/0/0/2/h"] == "two again"); // the later epoch wins
  CHECK(calls["m/0/0/3/h"].empty());
  CHECK(notes.empty());

  // A process killed mid-write: the last record is cut short, or damaged.
  auto path = call_log_path(dir.path(), run1, 2, "stage-0-subtask-0");
  auto bytes = test::read_file(path);
  for (auto cut : {3, 20}) {
    CAPTURE(cut);
    test::write_file(path, cut == 3 ? bytes.substr(0, bytes.size() - 3) : bytes.substr(0, bytes.size() - 20) + std::string(20, 'x'));
    calls.clear();
    notes.clear();
    REQUIRE(read_call_log(dir.path(), calls, notes, error));
    CHECK(calls.count("m/0/0/2/h") == 1); // from epoch 3
    CHECK(calls.count("m/0/0/3/h") == 0); // the torn record
    REQUIRE(notes.size() == 1);
    CHECK(notes[0].find("torn or damaged") != std::string::npos);
  }
  // The next run never appends after the tear: it writes its own files.
  {
    call_log_writer a{dir.path(), run2, "stage-0-subtask-0"};
    REQUIRE(a.append(2, {{"m/0/0/5/h", "five"}}, false, error));
  }
  calls.clear();
  REQUIRE(read_call_log(dir.path(), calls, notes, error));
  CHECK(calls["m/0/0/5/h"] == "five");

  // Run 2's checkpoint 3 completes: its own epochs <= 3 go; run 1's files
  // stay (run 1 numbered its epochs from another restore: a checkpoint of
  // run 2 does not cover them), until the job ends.
  CHECK(prune_call_log(dir.path(), run2, 3) == 1);
  calls.clear();
  REQUIRE(read_call_log(dir.path(), calls, notes, error));
  CHECK(calls.size() == 3); // run 1's keys 1, 2 and 4 (3 was torn)
  CHECK(calls.count("m/0/0/5/h") == 0);
  CHECK(prune_call_log(dir.path(), run2, 9, true) == 4); // the job ended: run 1's four files
  CHECK(test::list_dir(dir.path()).empty());
  CHECK_FALSE(read_call_log("/proc/sinfer-no-such-dir", calls, notes, error));
  CHECK(error.find("call log: cannot read the directory \"/proc/sinfer-no-such-dir\"") == 0);
  // Run names sort by start time and differ between processes.
  auto r = new_call_log_run();
  CHECK(r.rfind("r", 0) == 0);
  CHECK(r.find('p') != std::string::npos);
  CHECK(r.find('-') == std::string::npos);
}

TEST_CASE("state store: a directory that cannot hold a store is a clear error") {
  std::string error;
  auto store = state_store::open("/proc/sinfer-no-such-dir/state", error);
  CHECK_FALSE(store);
  CHECK(error.find("checkpoint.dir \"/proc/sinfer-no-such-dir/state\": cannot open the state store") == 0);
}
