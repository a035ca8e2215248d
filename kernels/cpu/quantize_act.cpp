// Activation quantisation into each weight type's partner format (the llama.cpp pairing):
// Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for Q4_K/Q5_K/Q6_K, f32 for float weights.
// Scalar only: it touches m*n values while the matmul touches m*n*rows.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "blocks.hpp"
#include "quant.hpp"

namespace ts::kernels {
namespace {
using namespace detail;

GgmlType partner(GgmlType wt) {
  switch (wt) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: return GgmlType::F32;
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: return GgmlType::Q8_0;
    case GgmlType::Q4_1: case GgmlType::Q5_1: return GgmlType::Q8_1;
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: return GgmlType::Q8_K;
    default: throw std::invalid_argument("activation format: unsupported weight type");
  }
}

// Round half to even without a libm call (exact for |v| < 2^22; here |v| <= 127).
inline float round_even(float v) { return (v + 12582912.f) - 12582912.f; }

// Symmetric 8-bit: d = max|x| / 127, q = round(x * 127 / max|x|), ties to even — the same
// arithmetic as llama.cpp's SIMD path, so both engines see identical activations.
// Returns sum(q) for Q8_1's s.
int quant_block_q8(const float* x, float& d_out, int8_t* q) {
  float amax = 0;
  for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = amax != 0 ? 127.0f / amax : 0.0f;
  int sum = 0;
  for (int j = 0; j < QK; ++j) {
    q[j] = int8_t(round_even(x[j] * id));
    sum += q[j];
  }
  d_out = d;
  return sum;
}

void quant_q8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    float d;
    quant_block_q8(x + i * QK, d, y[i].qs);
    y[i].d = fp32_to_fp16(d);
  }
}

void quant_q8_1(const float* x, BlockQ8_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    float d;
    const int sum = quant_block_q8(x + i * QK, d, y[i].qs);
    y[i].d = fp32_to_fp16(d);
    y[i].s = fp32_to_fp16(d * float(sum));
  }
}

// Q8_K: float scale from the signed extreme (so it maps to -127 exactly), plus 16-value sums
// that the K-quant dots use for their min / offset terms.
void quant_q8_k(const float* x, BlockQ8_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QKK) {
    float amax = 0, maxv = 0;
    for (int j = 0; j < QKK; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        maxv = x[j];
      }
    }
    if (amax == 0) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / maxv;
    for (int j = 0; j < QKK; ++j) {
      const long v = std::lrintf(iscale * x[j]);
      y[i].qs[j] = int8_t(std::min<long>(127, std::max<long>(-127, v)));
    }
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += y[i].qs[16 * g + l];
      y[i].bsums[g] = int16_t(s);
    }
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace

bool same_activation_format(GgmlType a, GgmlType b) { return partner(a) == partner(b); }

size_t act_row_bytes(GgmlType wt, int64_t n) {
  const GgmlType p = partner(wt);
  if (p == GgmlType::F32) return size_t(n) * 4;
  return size_t(row_bytes(p, n));
}

void quantize_act_row(GgmlType wt, const float* x, void* dst, int64_t n) {
  const GgmlType p = partner(wt);
  if (n % traits(p).block_elems != 0)
    throw std::invalid_argument("quantize_act_row: n not a multiple of block size");
  const int64_t nb = n / traits(p).block_elems;
  switch (p) {
    case GgmlType::F32: std::memcpy(dst, x, size_t(n) * 4); return;
    case GgmlType::Q8_0: quant_q8_0(x, static_cast<BlockQ8_0*>(dst), nb); return;
    case GgmlType::Q8_1: quant_q8_1(x, static_cast<BlockQ8_1*>(dst), nb); return;
    case GgmlType::Q8_K: quant_q8_k(x, static_cast<BlockQ8_K*>(dst), nb); return;
    default: return;
  }
}

}  // namespace ts::kernels
