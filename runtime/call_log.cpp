#include "runtime/call_log.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <zlib.h>

#include "runtime/json_reader.hpp"

namespace sinfer {

namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

uint32_t crc_of(const char* data, size_t n, uint32_t crc = 0) {
  return static_cast<uint32_t>(crc32(crc, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(n)));
}

/// "calls-RUN-<12 digits>-WRITER.log" -> its run and epoch; false for
/// other names.
bool parse_name(const std::string& name, std::string& run, uint64_t& epoch) {
  const std::string head = "calls-", tail = ".log";
  if (name.size() < head.size() + tail.size() || name.compare(0, head.size(), head) != 0
      || name.compare(name.size() - tail.size(), tail.size(), tail) != 0)
    return false;
  auto dash = name.find('-', head.size());
  if (dash == std::string::npos || name.size() < dash + 1 + 13 + tail.size() || name[dash + 13] != '-')
    return false;
  auto digits = name.substr(dash + 1, 12);
  if (digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  run = name.substr(head.size(), dash - head.size());
  epoch = std::strtoull(digits.c_str(), nullptr, 10);
  return true;
}

/// Calls f(run, epoch, path) for every call log file, oldest run first
/// (run names start with the wall-clock time), then by epoch.
template <class F>
bool for_each_file(const std::string& dir, F f) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr)
    return false;
  struct file {
    std::string run;
    uint64_t epoch;
    std::string name;
  };
  std::vector<file> files;
  while (auto* e = ::readdir(d)) {
    file fi;
    fi.name = e->d_name;
    if (parse_name(fi.name, fi.run, fi.epoch))
      files.push_back(std::move(fi));
  }
  ::closedir(d);
  std::sort(files.begin(), files.end(), [](const file& a, const file& b) {
    if (a.run.size() != b.run.size())
      return a.run.size() < b.run.size();
    return a.run != b.run ? a.run < b.run : a.epoch != b.epoch ? a.epoch < b.epoch : a.name < b.name;
  });
  for (auto& fi : files)
    f(fi.run, fi.epoch, dir + "/" + fi.name);
  return true;
}

} // namespace

std::string new_call_log_run() {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count();
  return "r" + std::to_string(us) + "p" + std::to_string(::getpid());
}

std::string call_log_path(const std::string& dir, const std::string& run, uint64_t epoch, const std::string& writer) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%012llu", static_cast<unsigned long long>(epoch));
  return dir + "/calls-" + run + "-" + buf + "-" + writer + ".log";
}

call_log_writer::call_log_writer(std::string dir, std::string run, std::string writer)
  : dir_(std::move(dir)), run_(std::move(run)), writer_(std::move(writer)) {
}

call_log_writer::~call_log_writer() {
  if (fd_ >= 0)
    ::close(fd_);
}

bool call_log_writer::append(uint64_t epoch, const std::vector<std::pair<std::string, std::string>>& calls,
                             bool sync, std::string& error) {
  if (fd_ < 0 || epoch != epoch_) {
    if (fd_ >= 0)
      ::close(fd_);
    auto path = call_log_path(dir_, run_, epoch, writer_);
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      error = "call log: cannot write \"" + path + "\": " + std::strerror(errno);
      return false;
    }
    epoch_ = epoch;
  }
  buffer_.clear();
  encode_call_log(calls, buffer_);
  const char* p = buffer_.data();
  size_t left = buffer_.size();
  while (left > 0) {
    auto n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      error = "call log: writing \"" + call_log_path(dir_, run_, epoch_, writer_) + "\": " + std::strerror(errno);
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (sync && ::fdatasync(fd_) != 0) {
    error = "call log: syncing \"" + call_log_path(dir_, run_, epoch_, writer_) + "\": " + std::strerror(errno);
    return false;
  }
  return true;
}

void encode_call_log(const std::vector<std::pair<std::string, std::string>>& calls, std::string& out) {
  for (auto& kv : calls) {
    put_u32(out, static_cast<uint32_t>(kv.first.size()));
    put_u32(out, static_cast<uint32_t>(kv.second.size()));
    out += kv.first;
    out += kv.second;
    put_u32(out, crc_of(kv.second.data(), kv.second.size(), crc_of(kv.first.data(), kv.first.size())));
  }
}

size_t decode_call_log(std::string_view bytes, std::vector<std::pair<std::string_view, std::string_view>>& entries) {
  size_t at = 0;
  while (bytes.size() - at >= 12) {
    auto klen = get_u32(bytes.data() + at), vlen = get_u32(bytes.data() + at + 4);
    // In 64 bits: two u32 lengths near 4 GiB must not wrap around.
    if (static_cast<uint64_t>(klen) + vlen + 12 > bytes.size() - at)
      break;
    const char* key = bytes.data() + at + 8;
    const char* value = key + klen;
    if (get_u32(value + vlen) != crc_of(value, vlen, crc_of(key, klen)))
      break;
    entries.emplace_back(std::string_view{key, klen}, std::string_view{value, vlen});
    at += 12 + static_cast<size_t>(klen) + vlen;
  }
  return at;
}

bool read_call_log(const std::string& dir, std::unordered_map<std::string, std::string>& out,
                   std::vector<std::string>& notes, std::string& error) {
  std::vector<std::pair<std::string_view, std::string_view>> entries;
  bool ok = for_each_file(dir, [&](const std::string&, uint64_t, const std::string& path) {
    std::string bytes;
    if (!config_reading::read_text_file(path, bytes)) {
      notes.push_back("call log: cannot read \"" + path + "\": " + std::strerror(errno) + "; its calls will be made again");
      return;
    }
    entries.clear();
    auto at = decode_call_log(bytes, entries);
    for (auto& kv : entries)
      out[std::string{kv.first}] = std::string{kv.second};
    if (at != bytes.size())
      notes.push_back("call log: \"" + path + "\" ends in " + std::to_string(bytes.size() - at)
                      + " bytes of a torn or damaged write (dropped: those calls will be made again)");
  });
  if (!ok)
    error = "call log: cannot read the directory \"" + dir + "\": " + std::strerror(errno);
  return ok;
}

size_t prune_call_log(const std::string& dir, const std::string& run, uint64_t upto, bool other_runs) {
  size_t removed = 0;
  for_each_file(dir, [&](const std::string& of, uint64_t epoch, const std::string& path) {
    bool mine = of == run;
    if (((mine && epoch <= upto) || (!mine && other_runs)) && ::unlink(path.c_str()) == 0)
      ++removed;
  });
  return removed;
}

} // namespace sinfer
