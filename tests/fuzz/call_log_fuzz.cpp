/// Fuzz target: the call log reader's decoding of one file's bytes,
/// `decode_call_log` (runtime/call_log.hpp; `read_call_log` runs it on
/// every file of the log directory).
///
/// Input: a call log file's bytes.
/// Invariants: the intact records take at most the bytes given; encoded
/// again (`encode_call_log`, what the writer writes) they are exactly those
/// bytes; the tail left over is not a whole intact record (the reader stops
/// at the first torn or damaged one); and whatever follows a good prefix,
/// that prefix's records are still read (a torn write loses only itself).

#include "fuzz_support.hpp"

#include "runtime/call_log.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sinfer;
  auto bytes = fuzz::as_text(data, size);
  std::vector<std::pair<std::string_view, std::string_view>> entries;
  auto used = decode_call_log(bytes, entries);
  FUZZ_CHECK(used <= bytes.size());
  std::vector<std::pair<std::string, std::string>> calls;
  for (auto& kv : entries)
    calls.emplace_back(kv.first, kv.second);
  std::string encoded;
  encode_call_log(calls, encoded);
  FUZZ_CHECK(encoded.size() == used);
  FUZZ_CHECK(bytes.substr(0, used) == encoded);

  // The tail on its own yields nothing: it does not start with an intact record.
  std::vector<std::pair<std::string_view, std::string_view>> tail;
  FUZZ_CHECK(decode_call_log(bytes.substr(used), tail) == 0 && tail.empty());

  // The intact prefix followed by a torn copy of itself (cut one byte
  // short) reads the prefix's records, then stops.
  if (used > 0) {
    std::string torn{bytes.substr(0, used)};
    torn += bytes.substr(0, used - 1);
    std::vector<std::pair<std::string_view, std::string_view>> again;
    auto n = decode_call_log(torn, again);
    FUZZ_CHECK(n >= used && again.size() >= entries.size());
    for (size_t i = 0; i < entries.size(); ++i)
      FUZZ_CHECK(again[i] == entries[i]);
  }
  return 0;
}
