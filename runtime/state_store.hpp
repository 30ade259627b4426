#pragma once
/// The durable state of a job under `checkpoint.dir`: completed checkpoints
/// in an embedded RocksDB database (the first piece of
/// checkpointed fault tolerance; the checkpoint coordinator that fills it
/// comes next). No CAF, and no RocksDB header here.
///
/// Checkpoints: a checkpoint is a set of named parts (each operator's
/// snapshot, the source offsets, the sink's staged output) written in one
/// atomic, synced batch together with a manifest that lists every part with
/// its size and CRC-32. Reading a checkpoint verifies the manifest against
/// the parts: one missing or damaged part (a torn or corrupted write) makes
/// the whole checkpoint unusable, and `latest_checkpoint` falls back to the
/// newest one that verifies. `retain(n)` keeps the newest n.
///
/// The call log is not here: it is append-only files (runtime/call_log.hpp),
/// written for every result and read only after a crash.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sinfer {

struct checkpoint_data {
  uint64_t id = 0;
  /// What the job's config looked like (a fingerprint of its stages and
  /// models): a checkpoint of another job shape must not be restored.
  std::string job_fingerprint;
  /// Part name -> bytes.
  std::map<std::string, std::string> parts;
};

class state_store {
public:
  /// Opens (creating if needed) the store in directory `dir`; nullptr and
  /// `error` set when it cannot be opened.
  static std::unique_ptr<state_store> open(const std::string& dir, std::string& error);

  virtual ~state_store() = default;

  /// Writes checkpoint `c` atomically and durably (one synced batch); false
  /// and `error` set on failure, in which case nothing of it is visible.
  virtual bool write_checkpoint(const checkpoint_data& c, std::string& error) = 0;

  /// Ids of the checkpoints whose manifest is present, oldest first (a
  /// listed one may still fail verification).
  virtual std::vector<uint64_t> checkpoint_ids() = 0;

  /// Checkpoint `id` if its manifest and every part verify; else nullopt and
  /// `problem` says what is wrong.
  virtual std::optional<checkpoint_data> read_checkpoint(uint64_t id, std::string& problem) = 0;

  /// The newest checkpoint that verifies (skipping torn ones, each noted in
  /// `skipped`), or nullopt.
  virtual std::optional<checkpoint_data> latest_checkpoint(std::vector<std::string>* skipped = nullptr) = 0;

  /// Keeps the newest `n` checkpoints (n >= 1), deleting the others.
  virtual void retain(size_t n) = 0;

  /// Deletes every checkpoint newer than `id` (a restore from an older one:
  /// the newer ones describe a history that is being rewritten).
  virtual void drop_checkpoints_after(uint64_t id) = 0;

  /// Test hook (torn writes): writes the parts of `c` without its manifest,
  /// or, with `damage`, writes it whole and then overwrites one part's bytes.
  virtual void write_torn_checkpoint_for_test(const checkpoint_data& c, bool damage) = 0;
};

} // namespace sinfer
