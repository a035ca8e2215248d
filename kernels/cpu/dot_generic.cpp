// Portable scalar dot products of a weight row with its partner-format activation row, and the
// plain row-by-activation matmul tile built on them. Integer sums per block, float per block.
#include <algorithm>
#include <stdexcept>

#include "blocks.hpp"
#include "dispatch.hpp"

namespace ts::kernels::detail {
namespace {

using DotFn = float (*)(int64_t n, const void* w, const void* a);

float dot_f32(int64_t n, const void* w, const void* a) {
  const float* x = static_cast<const float*>(w);
  const float* y = static_cast<const float*>(a);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i] * y[i];
  return s;
}

float dot_f16(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const float* y = static_cast<const float*>(a);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += fp16_to_fp32(x[i]) * y[i];
  return s;
}

float dot_bf16(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const float* y = static_cast<const float*>(a);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += bf16_to_fp32(x[i]) * y[i];
  return s;
}

float dot_q4_0(int64_t n, const void* w, const void* a) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK; ++i) {
    int sumi = 0;
    for (int j = 0; j < 16; ++j)
      sumi += ((x[i].qs[j] & 15) - 8) * y[i].qs[j] + ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
    s += float(sumi) * (h2f(x[i].d) * h2f(y[i].d));
  }
  return s;
}

// d*q + m weights: sum_j (dw*qw_j + m)(da*qa_j) = dw*da*sum(qw*qa) + m*s, s = da*sum(qa).
float dot_q4_1(int64_t n, const void* w, const void* a) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK; ++i) {
    int sumi = 0;
    for (int j = 0; j < 16; ++j)
      sumi += (x[i].qs[j] & 15) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
    s += float(sumi) * (h2f(x[i].d) * h2f(y[i].d)) + h2f(x[i].m) * h2f(y[i].s);
  }
  return s;
}

float dot_q5_0(int64_t n, const void* w, const void* a) {
  const BlockQ5_0* x = static_cast<const BlockQ5_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK; ++i) {
    const uint32_t qh = load_u32(x[i].qh);
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = ((x[i].qs[j] & 15) | int(((qh >> j) & 1) << 4)) - 16;
      const int hi = ((x[i].qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4)) - 16;
      sumi += lo * y[i].qs[j] + hi * y[i].qs[j + 16];
    }
    s += float(sumi) * (h2f(x[i].d) * h2f(y[i].d));
  }
  return s;
}

float dot_q5_1(int64_t n, const void* w, const void* a) {
  const BlockQ5_1* x = static_cast<const BlockQ5_1*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK; ++i) {
    const uint32_t qh = load_u32(x[i].qh);
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = (x[i].qs[j] & 15) | int(((qh >> j) & 1) << 4);
      const int hi = (x[i].qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4);
      sumi += lo * y[i].qs[j] + hi * y[i].qs[j + 16];
    }
    s += float(sumi) * (h2f(x[i].d) * h2f(y[i].d)) + h2f(x[i].m) * h2f(y[i].s);
  }
  return s;
}

float dot_q8_0(int64_t n, const void* w, const void* a) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QK; ++i) {
    int sumi = 0;
    for (int j = 0; j < 32; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    s += float(sumi) * (h2f(x[i].d) * h2f(y[i].d));
  }
  return s;
}

// K-quants: sum = da * (d * sum_j sc_j * <q_j, a_j>  -  dmin * sum_j m_j * sum(a_j)); the
// activation sums come from Q8_K's bsums (two 16-value sums per 32-value sub-block).
template <bool Five>
float dot_q45_k(int64_t n, const void* w, const void* a) {
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QKK; ++i) {
    const uint8_t *scales, *qs, *qh = nullptr;
    uint16_t d16, dmin16;
    if constexpr (Five) {
      const BlockQ5_K& b = static_cast<const BlockQ5_K*>(w)[i];
      scales = b.scales, qs = b.qs, qh = b.qh, d16 = b.d, dmin16 = b.dmin;
    } else {
      const BlockQ4_K& b = static_cast<const BlockQ4_K*>(w)[i];
      scales = b.scales, qs = b.qs, d16 = b.d, dmin16 = b.dmin;
    }
    uint8_t sc[8], mn[8];
    unpack_k_scales(scales, sc, mn);
    int sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
      const uint8_t* q = qs + 32 * (j / 2);
      const int shift = 4 * (j & 1);
      const int8_t* ya = y[i].qs + 32 * j;
      int sub = 0;
      for (int l = 0; l < 32; ++l) {
        int v = (q[l] >> shift) & 15;
        if constexpr (Five) v |= ((qh[l] >> j) & 1) << 4;
        sub += v * ya[l];
      }
      sumi += sc[j] * sub;
      summ += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    }
    s += y[i].d * (h2f(d16) * float(sumi) - h2f(dmin16) * float(summ));
  }
  return s;
}

float dot_q6_k(int64_t n, const void* w, const void* a) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float s = 0;
  for (int64_t i = 0; i < n / QKK; ++i) {
    int sumi = 0;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x[i].ql + 64 * h;
      const uint8_t* qh = x[i].qh + 32 * h;
      const int8_t* ya = y[i].qs + 128 * h;
      for (int g = 0; g < 4; ++g) {
        int sub[2] = {0, 0};
        for (int l = 0; l < 32; ++l) {
          const int lo = g < 2 ? ql[l + 32 * g] & 15 : ql[l + 32 * (g - 2)] >> 4;
          const int q = (lo | (((qh[l] >> (2 * g)) & 3) << 4)) - 32;
          sub[l / 16] += q * ya[32 * g + l];
        }
        sumi += x[i].scales[8 * h + 2 * g] * sub[0] + x[i].scales[8 * h + 2 * g + 1] * sub[1];
      }
    }
    s += h2f(x[i].d) * y[i].d * float(sumi);
  }
  return s;
}

DotFn dot_fn(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return dot_f32;
    case GgmlType::F16: return dot_f16;
    case GgmlType::BF16: return dot_bf16;
    case GgmlType::Q4_0: return dot_q4_0;
    case GgmlType::Q4_1: return dot_q4_1;
    case GgmlType::Q5_0: return dot_q5_0;
    case GgmlType::Q5_1: return dot_q5_1;
    case GgmlType::Q8_0: return dot_q8_0;
    case GgmlType::Q4_K: return dot_q45_k<false>;
    case GgmlType::Q5_K: return dot_q45_k<true>;
    case GgmlType::Q6_K: return dot_q6_k;
    default: throw std::invalid_argument("vec_dot: unsupported weight type");
  }
}

}  // namespace

bool supported_weight(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q4_0:
    case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0:
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: return true;
    default: return false;
  }
}

float vec_dot_generic(GgmlType wt, int64_t n, const void* w, const void* a) {
  return dot_fn(wt)(n, w, a);
}

void matmul_tile_generic(GgmlType wt, int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0,
                         int64_t r1, const uint8_t* a, size_t a_row_bytes, int64_t m, float* y,
                         int64_t ldy) {
  const DotFn f = dot_fn(wt);
  // Row blocks of 16 stay in cache while every activation row passes over them.
  for (int64_t rb = r0; rb < r1; rb += 16) {
    const int64_t re = std::min(r1, rb + 16);
    for (int64_t j = 0; j < m; ++j)
      for (int64_t r = rb; r < re; ++r)
        y[j * ldy + r] = f(n, w + r * w_row_bytes, a + j * a_row_bytes);
  }
}

}  // namespace ts::kernels::detail
