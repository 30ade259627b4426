#pragma once
/// Which subtask a record goes to: by a key's hash or round-robin.
///
/// Keyed routing hashes the key's JSON text with 64-bit FNV-1a and takes it
/// modulo the parallelism, so the same key always lands in the same subtask
/// (stable across runs and machines). Round-robin assigns record i to subtask
/// i mod P. Pure functions.

#include <cstdint>
#include <string_view>

namespace sinfer {

/// 64-bit FNV-1a over `bytes`.
constexpr uint64_t fnv1a(std::string_view bytes) noexcept {
  uint64_t h = 14695981039346656037ull;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

/// The subtask for a record whose partition key has JSON text `key`.
/// `parallelism` must be >= 1.
constexpr uint32_t subtask_for_key(std::string_view key, uint32_t parallelism) noexcept {
  return static_cast<uint32_t>(fnv1a(key) % parallelism);
}

/// The subtask for the `index`-th record (0-based) under round-robin.
constexpr uint32_t subtask_round_robin(uint64_t index, uint32_t parallelism) noexcept {
  return static_cast<uint32_t>(index % parallelism);
}

} // namespace sinfer
