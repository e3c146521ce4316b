#pragma once
// SHA-256 (FIPS 180-4), used for model fingerprints and prompt hashes.
#include <cstddef>
#include <cstdint>
#include <string>

namespace hc {

// Incremental hasher: update() any number of times, then hex_digest() (64 lowercase hex chars).
// hex_digest() finalises a copy, so it may be called again after further update() calls.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(const std::string& s) { update(s.data(), s.size()); }
  std::string hex_digest() const;

 private:
  void compress(const uint8_t* block);  // one 64-byte block

  uint32_t state_[8];
  uint8_t pending_[64];        // bytes not yet compressed
  size_t pending_len_ = 0;
  uint64_t total_len_ = 0;     // bytes hashed so far
};

std::string sha256_hex(const void* data, size_t n);
inline std::string sha256_hex(const std::string& s) { return sha256_hex(s.data(), s.size()); }

}  // namespace hc
