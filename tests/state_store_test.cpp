// The state store (runtime/state_store.hpp): checkpoints written atomically
// and verified on read, torn or damaged ones skipped, retention, and the
// call log's epochs.

#include <doctest/doctest.h>

#include <string>
#include <vector>

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

TEST_CASE("state store: the call log answers from any live epoch and prunes whole epochs") {
  test::temp_dir dir;
  {
    auto store = open_store(dir.file("state"));
    std::string error;
    REQUIRE(store->log_call(1, "rec-1/m/h1", "{\"label\":\"a\"}", error));
    REQUIRE(store->log_call(2, "rec-2/m/h2", "{\"label\":\"b\"}", error));
    REQUIRE(store->log_call(3, "rec-3/m/h3", "{\"label\":\"c\"}", error));
    CHECK(store->find_call("rec-1/m/h1") == std::string{"{\"label\":\"a\"}"});
    CHECK_FALSE(store->find_call("rec-9/m/h9"));
    store->prune_calls_before(2);
    CHECK_FALSE(store->find_call("rec-1/m/h1"));
    CHECK(store->find_call("rec-2/m/h2") == std::string{"{\"label\":\"b\"}"});
  }
  // Reopened: the epochs left are found again.
  auto store = open_store(dir.file("state"));
  CHECK(store->find_call("rec-3/m/h3") == std::string{"{\"label\":\"c\"}"});
  CHECK_FALSE(store->find_call("rec-1/m/h1"));
}

TEST_CASE("state store: a directory that cannot hold a store is a clear error") {
  std::string error;
  auto store = state_store::open("/proc/sinfer-no-such-dir/state", error);
  CHECK_FALSE(store);
  CHECK(error.find("checkpoint.dir \"/proc/sinfer-no-such-dir/state\": cannot open the state store") == 0);
}
