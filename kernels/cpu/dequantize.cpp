// dequantize_row: bit-exact with ggml / gguf.quants.dequantize. Every value is computed in float
// with the same operations in the same order (e.g. Q4_1 = d*q + m as a multiply then an add,
// K-quants (d*sc)*q - dmin*m). This file is built without FMA, so nothing gets fused.
#include <stdexcept>

#include "blocks.hpp"
#include "quant.hpp"

namespace ts::kernels {
namespace {
using namespace detail;

void deq_q4_0(const BlockQ4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK) {
    const float d = h2f(b[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * float((b[i].qs[j] & 15) - 8);
      y[j + 16] = d * float((b[i].qs[j] >> 4) - 8);
    }
  }
}

void deq_q4_1(const BlockQ4_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK) {
    const float d = h2f(b[i].d), m = h2f(b[i].m);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * float(b[i].qs[j] & 15) + m;
      y[j + 16] = d * float(b[i].qs[j] >> 4) + m;
    }
  }
}

// Fifth bit of element j is bit j of the little-endian u32 qh.
void deq_q5_0(const BlockQ5_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK) {
    const float d = h2f(b[i].d);
    const uint32_t qh = load_u32(b[i].qh);
    for (int j = 0; j < 16; ++j) {
      const int lo = (b[i].qs[j] & 15) | int(((qh >> j) & 1) << 4);
      const int hi = (b[i].qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4);
      y[j] = d * float(lo - 16);
      y[j + 16] = d * float(hi - 16);
    }
  }
}

void deq_q5_1(const BlockQ5_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK) {
    const float d = h2f(b[i].d), m = h2f(b[i].m);
    const uint32_t qh = load_u32(b[i].qh);
    for (int j = 0; j < 16; ++j) {
      const int lo = (b[i].qs[j] & 15) | int(((qh >> j) & 1) << 4);
      const int hi = (b[i].qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4);
      y[j] = d * float(lo) + m;
      y[j + 16] = d * float(hi) + m;
    }
  }
}

void deq_q8_0(const BlockQ8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK) {
    const float d = h2f(b[i].d);
    for (int j = 0; j < 32; ++j) y[j] = d * float(b[i].qs[j]);
  }
}

// Four 64-value chunks; chunk c: low nibbles of qs[32c..] are sub-block 2c, high nibbles 2c+1.
void deq_q4_k(const BlockQ4_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
    uint8_t sc[8], mn[8];
    unpack_k_scales(b[i].scales, sc, mn);
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = b[i].qs + 32 * c;
      const float d1 = d * float(sc[2 * c]), m1 = dmin * float(mn[2 * c]);
      const float d2 = d * float(sc[2 * c + 1]), m2 = dmin * float(mn[2 * c + 1]);
      for (int l = 0; l < 32; ++l) y[l] = d1 * float(q[l] & 15) - m1;
      for (int l = 0; l < 32; ++l) y[32 + l] = d2 * float(q[l] >> 4) - m2;
      y += 64;
    }
  }
}

// As Q4_K; the fifth bit of sub-block j's element l is bit j of qh[l].
void deq_q5_k(const BlockQ5_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
    uint8_t sc[8], mn[8];
    unpack_k_scales(b[i].scales, sc, mn);
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = b[i].qs + 32 * c;
      const int s1 = 2 * c, s2 = 2 * c + 1;
      const float d1 = d * float(sc[s1]), m1 = dmin * float(mn[s1]);
      const float d2 = d * float(sc[s2]), m2 = dmin * float(mn[s2]);
      for (int l = 0; l < 32; ++l)
        y[l] = d1 * float((q[l] & 15) | (((b[i].qh[l] >> s1) & 1) << 4)) - m1;
      for (int l = 0; l < 32; ++l)
        y[32 + l] = d2 * float((q[l] >> 4) | (((b[i].qh[l] >> s2) & 1) << 4)) - m2;
      y += 64;
    }
  }
}

// Two 128-value halves (64 ql, 32 qh, 8 scales each). Within a half, 32-value group g takes
// ql[l + 32*(g&1)] (low nibble for g < 2, high for g >= 2) and bits 2g..2g+1 of qh[l];
// each 16 values share one int8 scale.
void deq_q6_k(const BlockQ6_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(b[i].d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b[i].ql + 64 * h;
      const uint8_t* qh = b[i].qh + 32 * h;
      const int8_t* sc = b[i].scales + 8 * h;
      for (int g = 0; g < 4; ++g) {
        for (int l = 0; l < 32; ++l) {
          const int lo = (g < 2 ? ql[l + 32 * g] & 15 : ql[l + 32 * (g - 2)] >> 4);
          const int q = (lo | (((qh[l] >> (2 * g)) & 3) << 4)) - 32;
          const float ds = d * float(sc[2 * g + l / 16]);
          y[32 * g + l] = ds * float(q);
        }
      }
      y += 128;
    }
  }
}

}  // namespace

void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n) {
  const int64_t be = traits(t).block_elems;
  if (n % be != 0) throw std::invalid_argument("dequantize_row: n not a multiple of block size");
  const int64_t nb = n / be;
  switch (t) {
    case GgmlType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
    case GgmlType::F16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(s[i]);
      return;
    }
    case GgmlType::BF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(s[i]);
      return;
    }
    case GgmlType::Q4_0: deq_q4_0(static_cast<const BlockQ4_0*>(src), dst, nb); return;
    case GgmlType::Q4_1: deq_q4_1(static_cast<const BlockQ4_1*>(src), dst, nb); return;
    case GgmlType::Q5_0: deq_q5_0(static_cast<const BlockQ5_0*>(src), dst, nb); return;
    case GgmlType::Q5_1: deq_q5_1(static_cast<const BlockQ5_1*>(src), dst, nb); return;
    case GgmlType::Q8_0: deq_q8_0(static_cast<const BlockQ8_0*>(src), dst, nb); return;
    case GgmlType::Q4_K: deq_q4_k(static_cast<const BlockQ4_K*>(src), dst, nb); return;
    case GgmlType::Q5_K: deq_q5_k(static_cast<const BlockQ5_K*>(src), dst, nb); return;
    case GgmlType::Q6_K: deq_q6_k(static_cast<const BlockQ6_K*>(src), dst, nb); return;
    default: throw std::invalid_argument("dequantize_row: unsupported type");
  }
}

}  // namespace ts::kernels
