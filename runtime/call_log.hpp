#pragma once
/// The durable call log: results of completed model calls under their call
/// key (runtime/snapshot_codec.hpp: model, record identity, input hash), so
/// a job restored after a crash answers those records from it instead of
/// calling the model again. No CAF.
///
/// Layout: append-only files `DIR/calls-EPOCH-WRITER.log`, one per writer
/// (an operator: no locks between them) and epoch (the checkpoint whose
/// barrier the writer has not passed yet). A record is [u32 key length][u32
/// value length][key][value][u32 CRC-32 of key and value], little-endian;
/// one write() per batch of results. A process killed mid-write leaves at
/// most a torn last record, which the reader drops (CRC). Without `sync`
/// the data is in the kernel when `append` returns (it survives the
/// process, not the machine); with it, fsync'd too.
///
/// Why files and not the RocksDB store: the log is written for every
/// result and read only after a crash. An append costs about 0.1 us per
/// entry here against 1.8 us for a RocksDB put (memtable, WAL, then flushes
/// and compactions competing for the same cores): measured in the note of
/// the commit that made this change.
///
/// Pruning: when checkpoint E completes, every file of an epoch <= E is
/// deleted (its results are in the checkpoint's snapshots or output).

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sinfer {

class call_log_writer {
public:
  /// Writes files of `writer` (letters, digits, '-') in `dir`.
  call_log_writer(std::string dir, std::string writer);
  ~call_log_writer();
  call_log_writer(const call_log_writer&) = delete;
  call_log_writer& operator=(const call_log_writer&) = delete;

  /// Appends `calls` (key, value) to the file of `epoch` (opened, or made,
  /// when the epoch changes). False with `error` when the write fails.
  bool append(uint64_t epoch, const std::vector<std::pair<std::string, std::string>>& calls, bool sync,
              std::string& error);

private:
  std::string dir_, writer_;
  int fd_ = -1;
  uint64_t epoch_ = 0;
  std::string buffer_;
};

/// The path of the file of `writer` in `epoch`.
std::string call_log_path(const std::string& dir, uint64_t epoch, const std::string& writer);

/// Every call logged in an epoch after `after`, key -> value (a key logged
/// twice keeps the later value). Torn or damaged tails are skipped and
/// noted in `notes`. False with `error` when the directory cannot be read.
bool read_call_log(const std::string& dir, uint64_t after, std::unordered_map<std::string, std::string>& out,
                   std::vector<std::string>& notes, std::string& error);

/// Deletes the files of every epoch <= `upto`; returns how many.
size_t prune_call_log(const std::string& dir, uint64_t upto);

} // namespace sinfer
