#pragma once
/// Exactly-once output files (issue 6, the sink's half): output lines of
/// checkpoint epoch E go to a hidden pending part, `DIR/.PREFIX-E.pending`;
/// when checkpoint E completes, the part is renamed to `DIR/PREFIX-E.jsonl`
/// (atomic on POSIX), so a reader of `DIR/PREFIX-*.jsonl` never sees a line
/// that a restore could write again. Flink's FileSink does the same with
/// in-progress, pending and finished files. No CAF here; the record sink
/// writes through it when checkpoints are on.
///
/// Life of a part: `begin(E)` opens it; `append` adds lines; `seal()` flushes
/// and closes it (the sink's pre-commit, when the barrier of E passes: the
/// part then holds exactly the lines before the barrier) and fsyncs it, or
/// leaves that to `sync(E)` on another thread (the checkpoint coordinator's);
/// `publish(E)` renames it (checkpoint E completed; the directory is not
/// fsynced: a rename a machine crash lost is redone by `recover`).
///
/// After a crash, `recover(completed)` settles the parts the last run left:
/// sealed parts of epochs <= the latest completed checkpoint are published
/// (the crash fell between the checkpoint's completion and the rename); every
/// other pending part is deleted (its lines are re-made from the restored
/// checkpoint).

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace sinfer {

class part_files {
public:
  part_files(std::string dir, std::string prefix);
  ~part_files();
  part_files(const part_files&) = delete;
  part_files& operator=(const part_files&) = delete;

  /// Opens the pending part of `epoch`: its file is made (truncating a
  /// leftover one) by the first line; a part without lines has no file.
  bool begin(uint64_t epoch, std::string& error);

  /// Appends one line (a newline is added).
  bool append(std::string_view line, std::string& error);

  /// Flushes the open part and closes it; with `sync`, fsyncs it first.
  /// Without, call `sync(epoch)` (from any thread) before publishing.
  bool seal(std::string& error, bool sync = true);

  /// Fsyncs the sealed part of `epoch` (none: nothing to do).
  bool sync(uint64_t epoch, std::string& error) const;

  /// Makes the sealed part of `epoch` visible (rename). Publishing an epoch
  /// that is already visible, or had no line, is a no-op.
  bool publish(uint64_t epoch, std::string& error);

  /// Settles what a previous run left (see above), and deletes visible
  /// parts after `completed` (an older checkpoint restored on purpose: the
  /// restore writes their lines again); `actions` gets a line per part
  /// published or deleted. `recover(0, ...)` deletes every part (a fresh
  /// start). Returns false when the directory cannot be
  /// read or a file cannot be renamed or removed.
  bool recover(uint64_t completed, std::vector<std::string>& actions, std::string& error);

  /// The pending and the visible path of `epoch`.
  std::string pending_path(uint64_t epoch) const;
  std::string visible_path(uint64_t epoch) const;

private:
  bool sync_dir(std::string& error) const;
  std::vector<uint64_t> epochs_named(const std::string& head, const std::string& tail, bool& ok) const;

  std::string dir_, prefix_;
  std::FILE* open_ = nullptr;
  uint64_t open_epoch_ = 0;
  /// begin() called and seal() not yet.
  bool begun_ = false;
};

} // namespace sinfer
