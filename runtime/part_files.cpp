#include "runtime/part_files.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

namespace sinfer {

namespace {

std::string epoch_text(uint64_t epoch) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%012llu", static_cast<unsigned long long>(epoch));
  return buf;
}

std::string failed(const std::string& what, const std::string& path) {
  return what + " \"" + path + "\": " + std::strerror(errno);
}

} // namespace

part_files::part_files(std::string dir, std::string prefix) : dir_(std::move(dir)), prefix_(std::move(prefix)) {
}

part_files::~part_files() {
  if (open_ != nullptr)
    std::fclose(open_); // unsealed: recover() deletes it
}

std::string part_files::pending_path(uint64_t epoch) const {
  return dir_ + "/." + prefix_ + "-" + epoch_text(epoch) + ".pending";
}

std::string part_files::visible_path(uint64_t epoch) const {
  return dir_ + "/" + prefix_ + "-" + epoch_text(epoch) + ".jsonl";
}

bool part_files::begin(uint64_t epoch, std::string& error) {
  if (open_ != nullptr || begun_) {
    error = "part of epoch " + std::to_string(open_epoch_) + " is still open";
    return false;
  }
  begun_ = true;
  open_epoch_ = epoch;
  return true;
}

bool part_files::append(std::string_view line, std::string& error) {
  if (!begun_) {
    error = "no part is open";
    return false;
  }
  if (open_ == nullptr) { // the part's first line makes its file
    auto path = pending_path(open_epoch_);
    open_ = std::fopen(path.c_str(), "wb");
    if (open_ == nullptr) {
      error = failed("cannot write", path);
      return false;
    }
    std::setvbuf(open_, nullptr, _IOFBF, 1 << 20);
  }
  // Only the sink's thread writes a part: no stdio locking per line.
  if (fwrite_unlocked(line.data(), 1, line.size(), open_) != line.size() || putc_unlocked('\n', open_) == EOF) {
    error = failed("writing", pending_path(open_epoch_));
    return false;
  }
  return true;
}

bool part_files::seal(std::string& error, bool sync) {
  if (!begun_) {
    error = "no part is open";
    return false;
  }
  begun_ = false;
  if (open_ == nullptr)
    return true; // no line: no file
  bool ok = std::fflush(open_) == 0 && (!sync || ::fsync(::fileno(open_)) == 0);
  ok = std::fclose(open_) == 0 && ok;
  open_ = nullptr;
  if (!ok) {
    error = failed("sealing", pending_path(open_epoch_));
    return false;
  }
  return true;
}

bool part_files::sync(uint64_t epoch, std::string& error) const {
  auto path = pending_path(epoch);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return true; // no line in that epoch
    error = failed("cannot sync", path);
    return false;
  }
  bool ok = ::fsync(fd) == 0;
  if (!ok)
    error = failed("cannot sync", path);
  ::close(fd);
  return ok;
}

bool part_files::publish(uint64_t epoch, std::string& error) {
  auto from = pending_path(epoch), to = visible_path(epoch);
  if (::access(from.c_str(), F_OK) != 0)
    return true; // published before (a repeated completion notice), or the part had no line
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    error = failed("cannot publish", from);
    return false;
  }
  // No directory fsync here (the sink's thread): after a machine crash that
  // lost the rename, recover() renames the sealed part again.
  return true;
}

bool part_files::sync_dir(std::string& error) const {
  int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0 || ::fsync(fd) != 0) {
    error = failed("cannot sync the directory", dir_);
    if (fd >= 0)
      ::close(fd);
    return false;
  }
  ::close(fd);
  return true;
}

std::vector<uint64_t> part_files::epochs_named(const std::string& head, const std::string& tail, bool& ok) const {
  std::vector<uint64_t> epochs;
  DIR* d = ::opendir(dir_.c_str());
  ok = d != nullptr;
  if (d == nullptr)
    return epochs;
  while (auto* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() != head.size() + 12 + tail.size() || name.compare(0, head.size(), head) != 0
        || name.compare(name.size() - tail.size(), tail.size(), tail) != 0)
      continue;
    auto digits = name.substr(head.size(), 12);
    if (digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    epochs.push_back(std::strtoull(digits.c_str(), nullptr, 10));
  }
  ::closedir(d);
  std::sort(epochs.begin(), epochs.end());
  return epochs;
}

bool part_files::recover(uint64_t completed, std::vector<std::string>& actions, std::string& error) {
  bool ok = true;
  // ".PREFIX-<12 digits>.pending" and "PREFIX-<12 digits>.jsonl"
  auto pending = epochs_named("." + prefix_ + "-", ".pending", ok);
  auto visible = ok ? epochs_named(prefix_ + "-", ".jsonl", ok) : std::vector<uint64_t>{};
  if (!ok) {
    error = failed("cannot read", dir_);
    return false;
  }
  for (auto epoch : pending) {
    auto path = pending_path(epoch);
    if (epoch <= completed) {
      if (!publish(epoch, error))
        return false;
      actions.push_back("published " + visible_path(epoch) + " (checkpoint " + std::to_string(epoch)
                        + " had completed)");
    } else {
      if (std::remove(path.c_str()) != 0) {
        error = failed("cannot remove", path);
        return false;
      }
      actions.push_back("deleted " + path + " (after the last completed checkpoint)");
    }
  }
  // Visible parts after `completed` exist only when an older checkpoint is
  // restored on purpose: the restore writes their lines again.
  for (auto epoch : visible) {
    if (epoch <= completed)
      continue;
    auto path = visible_path(epoch);
    if (std::remove(path.c_str()) != 0) {
      error = failed("cannot remove", path);
      return false;
    }
    actions.push_back("deleted " + path + " (after the restored checkpoint " + std::to_string(completed) + ")");
  }
  return sync_dir(error);
}

} // namespace sinfer
