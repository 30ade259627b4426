#pragma once
/// Standard base64 (RFC 4648, alphabet A-Z a-z 0-9 + /): dead letters carry
/// a record's exact bytes in it, OpenAI-compatible servers send embeddings
/// in it, and the reference server answers in it. No CAF, no allocation
/// beyond the output.

#include <cstdint>
#include <string>
#include <string_view>

namespace sinfer {

/// Appends `bytes` in base64, padded with '='.
inline void append_base64(std::string& out, std::string_view bytes) {
  static constexpr char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  auto byte = [&](size_t i) { return uint32_t{static_cast<uint8_t>(bytes[i])}; };
  out.reserve(out.size() + (bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    for (int shift = 18; shift >= 0; shift -= 6)
      out.push_back(digits[(n >> shift) & 63]);
  }
  if (i < bytes.size()) {
    bool two = i + 1 < bytes.size();
    uint32_t n = (byte(i) << 16) | (two ? byte(i + 1) << 8 : 0);
    out.push_back(digits[(n >> 18) & 63]);
    out.push_back(digits[(n >> 12) & 63]);
    out.push_back(two ? digits[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
}

/// `bytes` in base64, padded with '='.
inline std::string base64(std::string_view bytes) {
  std::string out;
  append_base64(out, bytes);
  return out;
}

/// Base64 (padding optional) to bytes in `out`; false on a character
/// outside the alphabet or a lone trailing digit (not a whole byte).
inline bool decode_base64(std::string_view in, std::string& out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z')
      return c - 'A';
    if (c >= 'a' && c <= 'z')
      return c - 'a' + 26;
    if (c >= '0' && c <= '9')
      return c - '0' + 52;
    if (c == '+')
      return 62;
    if (c == '/')
      return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=')
    in.remove_suffix(1);
  out.clear();
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = value(c);
    if (v < 0)
      return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return bits < 6; // one leftover base64 digit cannot be a whole byte
}

} // namespace sinfer
