#pragma once
/// The durable call log: results of completed model calls under their call
/// key (runtime/snapshot_codec.hpp: model, record identity, input hash), so
/// a job restored after a crash answers those records from it instead of
/// calling the model again. No CAF.
///
/// Layout: append-only files `DIR/calls-RUN-EPOCH-WRITER.log`, one per run
/// (a process: a restarted job never appends to a file a killed one may
/// have torn), writer (an operator: no locks between them) and epoch (the
/// checkpoint whose barrier the writer has not passed yet). A record is [u32 key length][u32
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
/// Pruning: when checkpoint E completes, the run's files of epochs <= E are
/// deleted (their results are in the checkpoint's snapshots or output).
/// Files of earlier runs are kept until the job ends: their epochs count
/// from the checkpoint that run restored, not this run's, so a checkpoint of
/// this run says nothing about which of their records are behind it. A
/// restore reads every file there is (an entry a checkpoint covers is never
/// asked for: its record is not read or held again).

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sinfer {

class call_log_writer {
public:
  /// Writes files of `run` (new_call_log_run) and `writer` (letters,
  /// digits, '-') in `dir`.
  call_log_writer(std::string dir, std::string run, std::string writer);
  ~call_log_writer();
  call_log_writer(const call_log_writer&) = delete;
  call_log_writer& operator=(const call_log_writer&) = delete;

  /// Appends `calls` (key, value) to the file of `epoch` (opened, or made,
  /// when the epoch changes). False with `error` when the write fails.
  bool append(uint64_t epoch, const std::vector<std::pair<std::string, std::string>>& calls, bool sync,
              std::string& error);

private:
  std::string dir_, run_, writer_;
  int fd_ = -1;
  uint64_t epoch_ = 0;
  std::string buffer_;
};

/// A name for this process's files, unique among runs of a job: "r", the
/// wall clock in microseconds, "p", the process id.
std::string new_call_log_run();

/// The path of the file of `run` and `writer` in `epoch`.
std::string call_log_path(const std::string& dir, const std::string& run, uint64_t epoch, const std::string& writer);

/// Appends `calls` (key, value) to `out` as call log records (the layout
/// above): what `call_log_writer::append` writes in one write().
void encode_call_log(const std::vector<std::pair<std::string, std::string>>& calls, std::string& out);

/// The records of one call log file's `bytes`, in file order, appended to
/// `entries` as views into `bytes`; stops at the first record that is torn
/// (lengths past the end) or damaged (CRC mismatch). Returns the bytes the
/// intact records take: less than `bytes.size()` means a torn or damaged
/// tail. Pure (no I/O), so the call_log fuzzer feeds it any bytes.
size_t decode_call_log(std::string_view bytes, std::vector<std::pair<std::string_view, std::string_view>>& entries);

/// Every call logged, key -> value (a key logged twice keeps the value of
/// the later file). Torn or damaged tails are skipped and noted in `notes`.
/// False with `error` when the directory cannot be read.
bool read_call_log(const std::string& dir, std::unordered_map<std::string, std::string>& out,
                   std::vector<std::string>& notes, std::string& error);

/// Deletes the files of `run` of every epoch <= `upto`, and with
/// `other_runs` every file of other runs too; returns how many.
size_t prune_call_log(const std::string& dir, const std::string& run, uint64_t upto, bool other_runs = false);

} // namespace sinfer
