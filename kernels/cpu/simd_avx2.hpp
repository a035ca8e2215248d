// Internal, AVX2 files only: helpers that unpack weight blocks into 32 bytes and reduce
// int8 x int8 products. Include only from *_avx2.cpp (compiled with -mavx2 -mfma -mf16c).
#pragma once
#include <immintrin.h>

#include "blocks.hpp"

namespace ts::kernels::detail::avx2 {

// Half to float with F16C. (Dot products only: F16C quiets signalling NaNs, so dequantize_row
// uses the exact scalar conversion.)
inline float hf(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 16 packed bytes -> 32 nibbles in element order: low nibbles are elements 0..15, high 16..31.
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i v = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

// Q5 fifth bits: byte i = 0x10 if bit i of the little-endian u32 at qh is set, else 0.
inline __m256i fifth_bits(const uint8_t* qh) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(int(load_u32(qh))),
      _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                         0x0303030303030303));  // byte i <- byte i/8 of qh
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// Eight int32 lanes summing the 32 products of unsigned u8 weights with signed i8 activations.
inline __m256i dot_u8i8(__m256i w_u8, __m256i a_i8) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w_u8, a_i8), _mm256_set1_epi16(1));
}

// Same for signed weights: |w| * (a with w's sign) keeps maddubs' unsigned operand.
inline __m256i dot_i8i8(__m256i w_abs, __m256i w_i8, __m256i a_i8) {
  return dot_u8i8(w_abs, _mm256_sign_epi8(a_i8, w_i8));
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

}  // namespace ts::kernels::detail::avx2
