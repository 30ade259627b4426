// Exactly-once output parts (runtime/part_files.hpp): nothing is visible
// before its checkpoint completes, publishing is atomic and repeatable, and
// recovery publishes or deletes what a crashed run left.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <unistd.h>

#include "runtime/part_files.hpp"
#include "test_util.hpp"

using namespace sinfer;

namespace {

bool exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

void write_epoch(part_files& parts, uint64_t epoch, std::vector<std::string> lines, bool seal = true) {
  std::string error;
  REQUIRE(parts.begin(epoch, error));
  for (auto& l : lines)
    REQUIRE(parts.append(l, error));
  if (seal)
    REQUIRE(parts.seal(error));
}

} // namespace

TEST_CASE("part files: lines become visible only when their checkpoint is published") {
  test::temp_dir dir;
  part_files parts{dir.path(), "out"};
  write_epoch(parts, 1, {R"({"id":1})", R"({"id":2})"});
  CHECK_FALSE(exists(parts.visible_path(1)));
  CHECK(test::read_file(parts.pending_path(1)) == "{\"id\":1}\n{\"id\":2}\n");
  std::string error;
  REQUIRE(parts.publish(1, error));
  CHECK(test::read_file(dir.path() + "/out-000000000001.jsonl") == "{\"id\":1}\n{\"id\":2}\n");
  CHECK_FALSE(exists(parts.pending_path(1)));
  CHECK(parts.publish(1, error)); // a repeated completion notice
  // A part without lines has no file, before or after publishing.
  write_epoch(parts, 2, {});
  CHECK_FALSE(exists(parts.pending_path(2)));
  CHECK(parts.publish(2, error));
  CHECK_FALSE(exists(parts.visible_path(2)));
}

TEST_CASE("part files: recovery publishes sealed parts of completed checkpoints and deletes the rest") {
  struct row {
    const char* name;
    uint64_t completed;
    std::vector<bool> visible; // epochs 1..3 after recovery
  };
  std::vector<row> rows = {
    {"crash before any checkpoint completed", 0, {false, false, false}},
    {"checkpoint 1 completed, its rename did not happen", 1, {true, false, false}},
    {"checkpoint 2 completed", 2, {true, true, false}},
  };
  for (auto& r : rows) {
    CAPTURE(r.name);
    test::temp_dir dir;
    {
      part_files parts{dir.path(), "out"};
      write_epoch(parts, 1, {"a"});
      write_epoch(parts, 2, {"b"});
      write_epoch(parts, 3, {"c"}, false); // open when the process died
    }
    part_files parts{dir.path(), "out"};
    std::vector<std::string> actions;
    std::string error;
    REQUIRE(parts.recover(r.completed, actions, error));
    CHECK(actions.size() == 3);
    for (uint64_t e = 1; e <= 3; ++e) {
      CAPTURE(e);
      CHECK(exists(parts.visible_path(e)) == r.visible[e - 1]);
      CHECK_FALSE(exists(parts.pending_path(e)));
    }
    // Published parts after the restored checkpoint (an older one restored
    // on purpose) are deleted: the restore writes their lines again.
    if (r.completed == 2) {
      REQUIRE(parts.recover(1, actions, error));
      CHECK(exists(parts.visible_path(1)));
      CHECK_FALSE(exists(parts.visible_path(2)));
    }
    // Other files in the directory are left alone.
    test::write_file(dir.file("notes.txt"), "x");
    REQUIRE(parts.recover(r.completed, actions, error));
    CHECK(exists(dir.file("notes.txt")));
  }
}

TEST_CASE("part files: misuse and unwritable directories are clear errors") {
  part_files parts{"/proc/sinfer-no-such-dir", "out"};
  std::string error;
  CHECK_FALSE(parts.append("x", error));
  CHECK(error == "no part is open");
  CHECK_FALSE(parts.seal(error));
  REQUIRE(parts.begin(1, error)); // the file is made by the first line
  CHECK_FALSE(parts.append("x", error));
  CHECK(error.find("cannot write \"/proc/sinfer-no-such-dir/.out-000000000001.pending\"") == 0);
  CHECK(parts.seal(error));
  std::vector<std::string> actions;
  CHECK_FALSE(parts.recover(0, actions, error));
  CHECK(error.find("cannot read \"/proc/sinfer-no-such-dir\"") == 0);
  test::temp_dir dir;
  part_files ok{dir.path(), "out"};
  REQUIRE(ok.begin(1, error));
  CHECK_FALSE(ok.begin(2, error));
  CHECK(error == "part of epoch 1 is still open");
}
