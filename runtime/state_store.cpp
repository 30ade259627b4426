#include "runtime/state_store.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <zlib.h>

namespace sinfer {

namespace {

// Keys: "c/ID/m" a checkpoint's manifest, "c/ID/p/NAME" its parts; ids as
// 20 digits so keys sort numerically.
std::string padded(uint64_t n) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(n));
  return buf;
}

std::string manifest_key(uint64_t id) {
  return "c/" + padded(id) + "/m";
}

std::string part_key(uint64_t id, const std::string& name) {
  return "c/" + padded(id) + "/p/" + name;
}

uint32_t crc_of(const std::string& bytes) {
  return static_cast<uint32_t>(
    crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

// --- manifest encoding: little-endian integers, length-prefixed strings ---

constexpr uint32_t manifest_version = 1;

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_str(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}

struct reader {
  const std::string& in;
  size_t at = 0;
  bool ok = true;

  uint64_t u64() {
    if (in.size() - at < 8) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
    at += 8;
    return v;
  }

  std::string str() {
    auto n = u64();
    if (!ok || in.size() - at < n) {
      ok = false;
      return {};
    }
    auto s = in.substr(at, n);
    at += n;
    return s;
  }
};

struct manifest_entry {
  std::string name;
  uint64_t size = 0;
  uint32_t crc = 0;
};

std::string encode_manifest(const checkpoint_data& c) {
  std::string out;
  put_u64(out, manifest_version);
  put_u64(out, c.id);
  put_str(out, c.job_fingerprint);
  put_u64(out, c.parts.size());
  for (auto& kv : c.parts) {
    put_str(out, kv.first);
    put_u64(out, kv.second.size());
    put_u64(out, crc_of(kv.second));
  }
  put_u64(out, crc_of(out)); // the manifest's own checksum, last
  return out;
}

class rocksdb_store : public state_store {
public:
  explicit rocksdb_store(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {
  }

  bool write_checkpoint(const checkpoint_data& c, std::string& error) override {
    rocksdb::WriteBatch batch;
    for (auto& kv : c.parts)
      batch.Put(part_key(c.id, kv.first), kv.second);
    batch.Put(manifest_key(c.id), encode_manifest(c));
    rocksdb::WriteOptions sync;
    sync.sync = true;
    auto s = db_->Write(sync, &batch);
    if (!s.ok()) {
      error = "checkpoint " + std::to_string(c.id) + ": " + s.ToString();
      return false;
    }
    return true;
  }

  std::vector<uint64_t> checkpoint_ids() override {
    std::vector<uint64_t> ids;
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{})};
    for (it->Seek("c/"); it->Valid() && it->key().starts_with("c/"); it->Next()) {
      auto key = it->key().ToString();
      if (key.size() == manifest_key(0).size() && key.compare(key.size() - 2, 2, "/m") == 0)
        ids.push_back(std::strtoull(key.c_str() + 2, nullptr, 10));
    }
    return ids;
  }

  std::optional<checkpoint_data> read_checkpoint(uint64_t id, std::string& problem) override {
    std::string m;
    if (!db_->Get(rocksdb::ReadOptions{}, manifest_key(id), &m).ok()) {
      problem = "checkpoint " + std::to_string(id) + ": no manifest (never completed)";
      return std::nullopt;
    }
    if (m.size() < 8 || crc_of(m.substr(0, m.size() - 8)) != reader{m, m.size() - 8}.u64()) {
      problem = "checkpoint " + std::to_string(id) + ": its manifest is damaged";
      return std::nullopt;
    }
    reader r{m};
    checkpoint_data c;
    auto version = r.u64();
    c.id = r.u64();
    c.job_fingerprint = r.str();
    auto n = r.u64();
    if (!r.ok || version != manifest_version || c.id != id) {
      problem = "checkpoint " + std::to_string(id) + ": unreadable manifest (version " + std::to_string(version) + ")";
      return std::nullopt;
    }
    for (uint64_t i = 0; i < n && r.ok; ++i) {
      manifest_entry e;
      e.name = r.str();
      e.size = r.u64();
      e.crc = static_cast<uint32_t>(r.u64());
      std::string bytes;
      if (!db_->Get(rocksdb::ReadOptions{}, part_key(id, e.name), &bytes).ok()) {
        problem = "checkpoint " + std::to_string(id) + ": part \"" + e.name + "\" is missing (torn write)";
        return std::nullopt;
      }
      if (bytes.size() != e.size || crc_of(bytes) != e.crc) {
        problem = "checkpoint " + std::to_string(id) + ": part \"" + e.name + "\" does not match its checksum";
        return std::nullopt;
      }
      c.parts.emplace(std::move(e.name), std::move(bytes));
    }
    if (!r.ok) {
      problem = "checkpoint " + std::to_string(id) + ": unreadable manifest";
      return std::nullopt;
    }
    return c;
  }

  std::optional<checkpoint_data> latest_checkpoint(std::vector<std::string>* skipped) override {
    auto ids = checkpoint_ids();
    for (auto i = ids.rbegin(); i != ids.rend(); ++i) {
      std::string problem;
      if (auto c = read_checkpoint(*i, problem))
        return c;
      if (skipped != nullptr)
        skipped->push_back(problem);
    }
    return std::nullopt;
  }

  void retain(size_t n) override {
    auto ids = checkpoint_ids();
    n = std::max<size_t>(1, n);
    if (ids.size() <= n)
      return;
    rocksdb::WriteBatch batch;
    // Everything of the older checkpoints, torn leftovers included.
    auto keep_from = ids[ids.size() - n];
    batch.DeleteRange("c/", "c/" + padded(keep_from) + "/");
    db_->Write(rocksdb::WriteOptions{}, &batch);
  }

  void drop_checkpoints_after(uint64_t id) override {
    rocksdb::WriteBatch batch;
    batch.DeleteRange("c/" + padded(id + 1) + "/", "c0"); // '0' follows '/'
    rocksdb::WriteOptions sync;
    sync.sync = true;
    db_->Write(sync, &batch);
  }

  void write_torn_checkpoint_for_test(const checkpoint_data& c, bool damage) override {
    std::string error;
    if (damage) {
      write_checkpoint(c, error);
      if (!c.parts.empty())
        db_->Put(rocksdb::WriteOptions{}, part_key(c.id, c.parts.begin()->first),
                 c.parts.begin()->second + "garbage");
      return;
    }
    for (auto& kv : c.parts)
      db_->Put(rocksdb::WriteOptions{}, part_key(c.id, kv.first), kv.second);
  }

private:
  std::unique_ptr<rocksdb::DB> db_;
};

} // namespace

std::unique_ptr<state_store> state_store::open(const std::string& dir, std::string& error) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  rocksdb::DB* raw = nullptr;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path{dir}.parent_path(), ec); // RocksDB makes only the last
  auto s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) {
    error = "checkpoint.dir \"" + dir + "\": cannot open the state store: " + s.ToString();
    if (s.ToString().find("lock") != std::string::npos)
      error += " (is another run of this job still using it?)";
    return nullptr;
  }
  return std::make_unique<rocksdb_store>(std::unique_ptr<rocksdb::DB>{raw});
}

} // namespace sinfer
