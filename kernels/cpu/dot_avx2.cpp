// AVX2/FMA/F16C dot products: float weights against f32 activations, K-quants against Q8_K.
// (The 32-element block types share the register-blocked kernel in tile_avx2.cpp.)
#include <stdexcept>

#include "dispatch.hpp"
#include "simd_avx2.hpp"

namespace ts::kernels::detail {
namespace {
using namespace avx2;

// Float weights: widen 8 at a time, four independent FMA chains to hide latency.
// n must be a multiple of 8; callers finish odd tails with scalar code.
template <class Load>
float dot_float(int64_t n, const float* y, Load load) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k)
      acc[k] = _mm256_fmadd_ps(load(i + 8 * k), _mm256_loadu_ps(y + i + 8 * k), acc[k]);
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(load(i), _mm256_loadu_ps(y + i), acc[0]);
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

float dot_f32(int64_t n, const void* w, const void* a) {
  const float* x = static_cast<const float*>(w);
  const int64_t n8 = n & ~int64_t(7);
  float s = dot_float(n8, static_cast<const float*>(a), [x](int64_t i) { return _mm256_loadu_ps(x + i); });
  for (int64_t k = n8; k < n; ++k) s += x[k] * static_cast<const float*>(a)[k];
  return s;
}

float dot_f16(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const int64_t n8 = n & ~int64_t(7);
  float s = dot_float(n8, static_cast<const float*>(a), [x](int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
  });
  for (int64_t k = n8; k < n; ++k) s += fp16_to_fp32(x[k]) * static_cast<const float*>(a)[k];
  return s;
}

float dot_bf16(int64_t n, const void* w, const void* a) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const int64_t n8 = n & ~int64_t(7);
  float s = dot_float(n8, static_cast<const float*>(a), [x](int64_t i) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  });
  for (int64_t k = n8; k < n; ++k) s += bf16_to_fp32(x[k]) * static_cast<const float*>(a)[k];
  return s;
}

// Sum over the 8 sub-blocks of m_j * (sum of that sub-block's activations), from bsums.
inline int k_min_term(const uint8_t mn[8], const int16_t* bsums) {
  const __m256i bs = load256(bsums);
  const __m128i m8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn));
  // Each m_j twice (for bsums 2j and 2j+1) as int16.
  const __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
  const __m256i p = _mm256_madd_epi16(bs, m16);
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// Q4_K / Q5_K: chunk c of 32 qs bytes holds sub-blocks 2c (low nibbles) and 2c+1 (high).
// Products are scaled by the 6-bit sub-block scale in the int16 -> int32 madd.
template <bool Five>
float dot_q45_k(int64_t n, const void* w, const void* a) {
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  float accm = 0;
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
    __m256i hb = Five ? load256(qh) : _mm256_setzero_si256();
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q = load256(qs + 32 * c);
      __m256i lo = _mm256_and_si256(q, low4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
      if constexpr (Five) {  // bit 2c of qh[l] -> sub-block 2c, bit 2c+1 -> 2c+1
        const __m256i one = _mm256_set1_epi8(1);
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4));
        hb = _mm256_srli_epi16(hb, 2);
      }
      const __m256i plo = _mm256_maddubs_epi16(lo, load256(y[i].qs + 64 * c));
      const __m256i phi = _mm256_maddubs_epi16(hi, load256(y[i].qs + 64 * c + 32));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * c])));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * c + 1])));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * hf(d16)), _mm256_cvtepi32_ps(sumi), acc);
    accm += y[i].d * hf(dmin16) * float(k_min_term(mn, y[i].bsums));
  }
  return hsum(acc) - accm;
}

// Q6_K: unsigned 6-bit q times activations, minus 32 * sum(activations) per 16-value group
// (from bsums), each group scaled by its int8 scale in the int16 -> int32 madd.
float dot_q6_k(int64_t n, const void* w, const void* a) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const __m256i low4 = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QKK; ++i) {
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales)));
    // 32 * sum_g sc_g * bsum_g, kept as int32 lanes.
    __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(),
                                    _mm256_slli_epi32(_mm256_madd_epi16(load256(y[i].bsums), sc16), 5));
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = load256(x[i].ql + 64 * h), ql1 = load256(x[i].ql + 64 * h + 32);
      const __m256i qh = load256(x[i].qh + 32 * h);
      const __m256i lo[4] = {_mm256_and_si256(ql0, low4), _mm256_and_si256(ql1, low4),
                             _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                             _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4)};
      for (int g = 0; g < 4; ++g) {
        const __m256i hbits = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * g), two);
        const __m256i q = _mm256_or_si256(lo[g], _mm256_slli_epi16(hbits, 4));
        const __m256i p = _mm256_maddubs_epi16(q, load256(y[i].qs + 128 * h + 32 * g));
        const int s = 8 * h + 2 * g;  // 16-value groups s (bytes 0..15) and s+1 (16..31)
        const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(x[i].scales[s + 1]),
                                             _mm_set1_epi16(x[i].scales[s]));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scv));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(hf(x[i].d) * y[i].d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc);
}

}  // namespace

float vec_dot_avx2(GgmlType wt, int64_t n, const void* w, const void* a) {
  switch (wt) {
    case GgmlType::F32: return dot_f32(n, w, a);
    case GgmlType::F16: return dot_f16(n, w, a);
    case GgmlType::BF16: return dot_bf16(n, w, a);
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1:
    case GgmlType::Q8_0: return dot32_avx2(wt, n, w, a);
    case GgmlType::Q4_K: return dot_q45_k<false>(n, w, a);
    case GgmlType::Q5_K: return dot_q45_k<true>(n, w, a);
    case GgmlType::Q6_K: return dot_q6_k(n, w, a);
    default: throw std::invalid_argument("vec_dot: unsupported weight type");
  }
}

}  // namespace ts::kernels::detail
