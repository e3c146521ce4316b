// Dequantisation of the GGUF storage types headcal reads. Block layouts are ggml's
// (ggml-common.h); the arithmetic follows ggml's reference dequantisers operation by operation
// (float32 products in the same order), so results match llama.cpp and the `gguf` Python package.
#include <array>
#include <cstring>

#include "common/error.h"
#include "io/model/gguf.h"
#include "io/model/safetensors.h"

// Keep a*b+c as two roundings, as ggml's reference code and numpy compute it: a fused
// multiply-add would change the last bit and break the bit-exact comparison with `gguf`.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace hc {

namespace {

constexpr int64_t kQK = 32;    // elements per block of the "_0/_1" formats
constexpr int64_t kQKK = 256;  // elements per K-quant super-block

// Bytes per block (ggml-common.h).
constexpr size_t kQ8_0Bytes = 2 + 32;           // f16 d, int8 qs[32]
constexpr size_t kQ4_0Bytes = 2 + 16;           // f16 d, uint8 qs[16]
constexpr size_t kQ4_1Bytes = 2 + 2 + 16;       // f16 d, f16 m, uint8 qs[16]
constexpr size_t kQ5_0Bytes = 2 + 4 + 16;       // f16 d, uint32 qh, uint8 qs[16]
constexpr size_t kQ5_1Bytes = 2 + 2 + 4 + 16;   // f16 d, f16 m, uint32 qh, uint8 qs[16]
constexpr size_t kQ4_KBytes = 2 + 2 + 12 + 128; // f16 d, f16 dmin, scales[12], qs[128]
constexpr size_t kQ5_KBytes = 2 + 2 + 12 + 32 + 128; // f16 d, f16 dmin, scales[12], qh[32], qs[128]
constexpr size_t kQ6_KBytes = 128 + 64 + 16 + 2;// ql[128], qh[64], int8 scales[16], f16 d

// Every f16 bit pattern converted once: the K-quant and _0/_1 loops read one or two halves per
// block, F16 tensors one per element, and a 256 KiB table beats the branchy conversion.
const std::array<float, 65536>& half_table() {
  static const std::array<float, 65536> table = [] {
    std::array<float, 65536> t{};
    for (uint32_t h = 0; h < 65536; ++h) t[h] = f16_to_f32(static_cast<uint16_t>(h));
    return t;
  }();
  return table;
}

inline uint16_t read_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void dequant_q8_0(const uint8_t* src, int64_t blocks, float* dst, const float* half) {
  for (int64_t b = 0; b < blocks; ++b, src += kQ8_0Bytes, dst += kQK) {
    const float d = half[read_u16(src)];
    const int8_t* qs = reinterpret_cast<const int8_t*>(src + 2);
    for (int j = 0; j < kQK; ++j) dst[j] = static_cast<float>(qs[j]) * d;
  }
}

void dequant_q4_0(const uint8_t* src, int64_t blocks, float* dst, const float* half) {
  for (int64_t b = 0; b < blocks; ++b, src += kQ4_0Bytes, dst += kQK) {
    const float d = half[read_u16(src)];
    const uint8_t* qs = src + 2;
    // Low nibbles are elements 0..15, high nibbles 16..31.
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = static_cast<float>(static_cast<int>(qs[j] & 0x0f) - 8) * d;
      dst[j + kQK / 2] = static_cast<float>(static_cast<int>(qs[j] >> 4) - 8) * d;
    }
  }
}

void dequant_q4_1(const uint8_t* src, int64_t blocks, float* dst, const float* half) {
  for (int64_t b = 0; b < blocks; ++b, src += kQ4_1Bytes, dst += kQK) {
    const float d = half[read_u16(src)];
    const float m = half[read_u16(src + 2)];
    const uint8_t* qs = src + 4;
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = static_cast<float>(qs[j] & 0x0f) * d + m;
      dst[j + kQK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

// The 5-bit "_0/_1" formats: element j < 16 takes the low nibble of qs[j], element j + 16 the
// high nibble; bit j of the little-endian qh word is each element's fifth bit.
inline void q5_values(const uint8_t* qh_bytes, const uint8_t* qs, uint8_t* q) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  for (int j = 0; j < kQK / 2; ++j) {
    q[j] = static_cast<uint8_t>((qs[j] & 0x0f) | (((qh >> j) & 1u) << 4));
    q[j + kQK / 2] = static_cast<uint8_t>((qs[j] >> 4) | (((qh >> (j + kQK / 2)) & 1u) << 4));
  }
}

void dequant_q5_0(const uint8_t* src, int64_t blocks, float* dst, const float* half) {
  uint8_t q[kQK];
  for (int64_t b = 0; b < blocks; ++b, src += kQ5_0Bytes, dst += kQK) {
    const float d = half[read_u16(src)];
    q5_values(src + 2, src + 6, q);
    for (int j = 0; j < kQK; ++j) dst[j] = static_cast<float>(static_cast<int>(q[j]) - 16) * d;
  }
}

void dequant_q5_1(const uint8_t* src, int64_t blocks, float* dst, const float* half) {
  uint8_t q[kQK];
  for (int64_t b = 0; b < blocks; ++b, src += kQ5_1Bytes, dst += kQK) {
    const float d = half[read_u16(src)];
    const float m = half[read_u16(src + 2)];
    q5_values(src + 4, src + 8, q);
    for (int j = 0; j < kQK; ++j) dst[j] = static_cast<float>(q[j]) * d + m;
  }
}

// 8 sub-blocks of 32 share a 6-bit scale and a 6-bit min, packed into 12 bytes:
// bytes 0-3 hold scales 0-3 (low 6 bits) and the top 2 bits of scales 4-7; bytes 4-7 the same
// for the mins; bytes 8-11 the low 4 bits of scales 4-7 (low nibble) and mins 4-7 (high nibble).
inline void q4_k_scale_min(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void dequant_q4_k(const uint8_t* src, int64_t blocks, float* dst, const float* half) {
  for (int64_t b = 0; b < blocks; ++b, src += kQ4_KBytes) {
    const float d = half[read_u16(src)];
    const float dmin = half[read_u16(src + 2)];
    const uint8_t* scales = src + 4;
    const uint8_t* qs = src + 16;
    // 4 groups of 64 elements; each group's 32 bytes give sub-block 2g (low nibbles) and 2g+1 (high).
    for (int g = 0; g < 4; ++g, qs += 32) {
      uint8_t sc, mn;
      q4_k_scale_min(2 * g, scales, &sc, &mn);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
      q4_k_scale_min(2 * g + 1, scales, &sc, &mn);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(mn);
      for (int l = 0; l < 32; ++l) *dst++ = d1 * static_cast<float>(qs[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * static_cast<float>(qs[l] >> 4) - m2;
    }
  }
}

// Q4_K's layout plus a fifth bit per element: bit s of qh[l] belongs to element l of sub-block s.
void dequant_q5_k(const uint8_t* src, int64_t blocks, float* dst, const float* half) {
  for (int64_t b = 0; b < blocks; ++b, src += kQ5_KBytes) {
    const float d = half[read_u16(src)];
    const float dmin = half[read_u16(src + 2)];
    const uint8_t* scales = src + 4;
    const uint8_t* qh = src + 16;
    const uint8_t* qs = src + 48;
    for (int g = 0; g < 4; ++g, qs += 32) {
      for (int half_of_group = 0; half_of_group < 2; ++half_of_group) {
        const int s = 2 * g + half_of_group;
        uint8_t sc, mn;
        q4_k_scale_min(s, scales, &sc, &mn);
        const float ds = d * static_cast<float>(sc), ms = dmin * static_cast<float>(mn);
        const int shift = 4 * half_of_group;
        for (int l = 0; l < 32; ++l) {
          const int q = ((qs[l] >> shift) & 0x0f) | (((qh[l] >> s) & 1) << 4);
          *dst++ = ds * static_cast<float>(q) - ms;
        }
      }
    }
  }
}

void dequant_q6_k(const uint8_t* src, int64_t blocks, float* dst, const float* half) {
  for (int64_t b = 0; b < blocks; ++b, src += kQ6_KBytes) {
    const uint8_t* ql = src;         // low 4 bits, 128 bytes
    const uint8_t* qh = src + 128;   // high 2 bits, 64 bytes
    const int8_t* sc = reinterpret_cast<const int8_t*>(src + 192);  // 16 scales, one per 16 elements
    const float d = half[read_u16(src + 208)];
    // Two halves of 128 elements; in each, element l + 32k takes its low nibble from ql
    // (k = 0,1: low nibbles of ql[l], ql[l+32]; k = 2,3: their high nibbles) and bits 2k..2k+1 of qh[l].
    for (int h = 0; h < 2; ++h, ql += 64, qh += 32, sc += 8, dst += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = static_cast<int>((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = static_cast<int>((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = static_cast<int>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = static_cast<int>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        dst[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        dst[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        dst[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        dst[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

}  // namespace

int64_t dtype_block_size(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16: return 1;
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1: return kQK;
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K: return kQKK;
  }
  throw Error("internal error: dtype_block_size: unknown dtype");
}

static size_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16:
    case DType::BF16: return 2;
    case DType::Q8_0: return kQ8_0Bytes;
    case DType::Q4_0: return kQ4_0Bytes;
    case DType::Q4_1: return kQ4_1Bytes;
    case DType::Q5_0: return kQ5_0Bytes;
    case DType::Q5_1: return kQ5_1Bytes;
    case DType::Q4_K: return kQ4_KBytes;
    case DType::Q5_K: return kQ5_KBytes;
    case DType::Q6_K: return kQ6_KBytes;
  }
  throw Error("internal error: dtype_block_bytes: unknown dtype");
}

size_t dtype_nbytes(DType t, int64_t n) {
  const int64_t block = dtype_block_size(t);
  if (n < 0 || n % block != 0)
    throw InputError(std::string(dtype_name(t)) + ": " + std::to_string(n) + " elements is not a whole number of " +
                     std::to_string(block) + "-element blocks");
  return static_cast<size_t>(n / block) * dtype_block_bytes(t);
}

void dequantize(DType t, const uint8_t* src, int64_t n, float* dst) {
  const int64_t block = dtype_block_size(t);
  HC_ASSERT(n >= 0 && n % block == 0, "dequantize: element count is not a whole number of blocks");
  const float* half = half_table().data();
  const int64_t blocks = n / block;
  switch (t) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = half[read_u16(src + 2 * i)];
      return;
    case DType::BF16: convert_to_f32(t, src, n, dst); return;
    case DType::Q8_0: dequant_q8_0(src, blocks, dst, half); return;
    case DType::Q4_0: dequant_q4_0(src, blocks, dst, half); return;
    case DType::Q4_1: dequant_q4_1(src, blocks, dst, half); return;
    case DType::Q5_0: dequant_q5_0(src, blocks, dst, half); return;
    case DType::Q5_1: dequant_q5_1(src, blocks, dst, half); return;
    case DType::Q4_K: dequant_q4_k(src, blocks, dst, half); return;
    case DType::Q5_K: dequant_q5_k(src, blocks, dst, half); return;
    case DType::Q6_K: dequant_q6_k(src, blocks, dst, half); return;
  }
}

}  // namespace hc
