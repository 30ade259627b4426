#pragma once
/// The durable state of a job under `checkpoint.dir`: completed checkpoints
/// and the call log, in one embedded RocksDB database (the first piece of
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
/// Call log: results of completed model calls under a deterministic key
/// (record identity + model + input hash), tagged with the epoch (the id of
/// the checkpoint in progress) they were written in. `prune_calls_before(e)`
/// drops whole epochs older than `e` at once (they are covered by a
/// completed checkpoint).

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

  /// Records a call's result under `key` in `epoch`.
  virtual bool log_call(uint64_t epoch, const std::string& key, const std::string& result, std::string& error) = 0;

  /// Records several calls' results in `epoch` in one write (fsynced with
  /// `sync`). Safe to call from several threads at once.
  virtual bool log_calls(uint64_t epoch, const std::vector<std::pair<std::string, std::string>>& calls, bool sync,
                         std::string& error) = 0;

  /// Calls `f(epoch, key, result)` for every logged call not yet pruned.
  virtual void for_each_call(const std::function<void(uint64_t, const std::string&, const std::string&)>& f) = 0;

  /// The logged result of `key` in any epoch not yet pruned.
  virtual std::optional<std::string> find_call(const std::string& key) = 0;

  /// Drops every call logged in an epoch before `epoch`.
  virtual void prune_calls_before(uint64_t epoch) = 0;

  /// Test hook (torn writes): writes the parts of `c` without its manifest,
  /// or, with `damage`, writes it whole and then overwrites one part's bytes.
  virtual void write_torn_checkpoint_for_test(const checkpoint_data& c, bool damage) = 0;
};

} // namespace sinfer
