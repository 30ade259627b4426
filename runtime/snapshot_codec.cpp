#include "runtime/snapshot_codec.hpp"

#include <charconv>
#include <cstdio>

namespace sinfer {

namespace {

constexpr unsigned char format_version = 1;

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s.data(), s.size());
}

/// Reads from a byte string, remembering the first problem.
class reader {
public:
  reader(std::string_view bytes, std::string& error) : in_(bytes), error_(error) {
  }

  bool varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size())
        return fail("truncated number");
      auto b = static_cast<unsigned char>(in_[pos_++]);
      if (shift == 63 && b > 1)
        return fail("number too large");
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0)
        return true;
    }
    return fail("number too long");
  }

  bool string(std::string& s) {
    uint64_t n = 0;
    if (!varint(n))
      return false;
    if (n > in_.size() - pos_)
      return fail("string longer than the bytes left");
    s.assign(in_.data() + pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return true;
  }

  bool version() {
    if (pos_ >= in_.size())
      return fail("empty");
    auto v = static_cast<unsigned char>(in_[pos_++]);
    if (v != format_version)
      return fail("format version " + std::to_string(v) + ", expected " + std::to_string(format_version));
    return true;
  }

  /// A count of items each at least `min_bytes` long: bounded by the bytes
  /// left, so a hostile count cannot make us reserve gigabytes.
  bool count(uint64_t& n, size_t min_bytes) {
    if (!varint(n))
      return false;
    if (n > (in_.size() - pos_) / min_bytes)
      return fail("count larger than the bytes left");
    return true;
  }

  bool end() {
    return pos_ == in_.size() || fail("trailing bytes");
  }

  bool fail(const std::string& what) {
    if (error_.empty())
      error_ = what + " at byte " + std::to_string(pos_);
    return false;
  }

private:
  std::string_view in_;
  std::string& error_;
  size_t pos_ = 0;
};

} // namespace

std::string encode_source_position(const source_position& p) {
  std::string out(1, static_cast<char>(format_version));
  put_varint(out, p.bytes);
  put_varint(out, p.lines);
  put_varint(out, p.generated);
  put_varint(out, p.routed);
  return out;
}

bool decode_source_position(std::string_view bytes, source_position& out, std::string& error) {
  reader r{bytes, error};
  return r.version() && r.varint(out.bytes) && r.varint(out.lines) && r.varint(out.generated)
         && r.varint(out.routed) && r.end();
}

std::string encode_held(const std::vector<held_snapshot>& records) {
  std::string out(1, static_cast<char>(format_version));
  put_varint(out, records.size());
  for (auto& h : records) {
    put_varint(out, h.rec.id.source);
    put_varint(out, h.rec.id.partition);
    put_varint(out, h.rec.id.offset);
    put_string(out, h.rec.json);
    put_string(out, h.rec.error);
    put_varint(out, static_cast<uint64_t>(h.rec.born_ns));
    put_varint(out, (h.done ? 1u : 0u) | (static_cast<uint64_t>(h.link) << 1));
  }
  return out;
}

bool decode_held(std::string_view bytes, std::vector<held_snapshot>& out, std::string& error) {
  reader r{bytes, error};
  uint64_t n = 0;
  if (!r.version() || !r.count(n, 7))
    return false;
  out.clear();
  out.reserve(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) {
    held_snapshot h;
    uint64_t source = 0, partition = 0, born = 0, flags = 0;
    if (!r.varint(source) || !r.varint(partition) || !r.varint(h.rec.id.offset) || !r.string(h.rec.json)
        || !r.string(h.rec.error) || !r.varint(born) || !r.varint(flags))
      return false;
    if (source > UINT32_MAX || partition > UINT32_MAX || flags > 0x1ff)
      return r.fail("record " + std::to_string(i) + ": field out of range");
    h.rec.id.source = static_cast<uint32_t>(source);
    h.rec.id.partition = static_cast<uint32_t>(partition);
    h.rec.born_ns = static_cast<int64_t>(born);
    h.done = (flags & 1) != 0;
    h.link = static_cast<uint8_t>(flags >> 1);
    out.push_back(std::move(h));
  }
  return r.end();
}

std::string encode_outputs(const std::string* values, size_t n) {
  std::string out(1, static_cast<char>(format_version));
  put_varint(out, n);
  for (size_t i = 0; i < n; ++i)
    put_string(out, values[i]);
  return out;
}

std::string encode_outputs(const std::vector<std::string>& values) {
  return encode_outputs(values.data(), values.size());
}

bool decode_outputs(std::string_view bytes, std::vector<std::string>& out, std::string& error) {
  reader r{bytes, error};
  uint64_t n = 0;
  if (!r.version() || !r.count(n, 1))
    return false;
  out.assign(static_cast<size_t>(n), std::string{});
  for (auto& v : out)
    if (!r.string(v))
      return false;
  return r.end();
}

std::string call_log_key(std::string_view model, const record_id& id, const std::string* inputs, size_t n) {
  uint64_t h = fnv1a64({});
  for (size_t i = 0; i < n; ++i) {
    h = fnv1a64(inputs[i], h);
    h = fnv1a64(std::string_view{"\x1f", 1}, h); // a separator: ("ab","c") differs from ("a","bc")
  }
  // model/source/partition/offset/hash: to_chars, not snprintf (this runs
  // for every record of a logged model).
  char buf[96];
  char* p = buf;
  char* end = buf + sizeof buf;
  for (uint64_t part : {uint64_t{id.source}, uint64_t{id.partition}, id.offset}) {
    *p++ = '/';
    p = std::to_chars(p, end, part).ptr;
  }
  *p++ = '/';
  static constexpr char digits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i)
    *p++ = digits[(h >> (4 * i)) & 15];
  std::string key;
  key.reserve(model.size() + static_cast<size_t>(p - buf));
  key.append(model.data(), model.size());
  key.append(buf, static_cast<size_t>(p - buf));
  return key;
}

std::string operator_part_name(uint32_t stage, uint32_t subtask) {
  return "stage-" + std::to_string(stage) + "/subtask-" + std::to_string(subtask);
}

} // namespace sinfer
