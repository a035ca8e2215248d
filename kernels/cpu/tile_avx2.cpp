// AVX2 matmul tiles for the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0).
// Prefill: the inner kernel computes R weight rows x C activation rows at once: each weight
// block is unpacked once and reused C times, each activation block loaded once and reused R
// times, and the R*C accumulators stay in registers (4 x 3 = 12 of the 16 ymm registers).
// Decode (m = 1): a plain pass over 4 rows at a time, each weight byte read once.
// K-quant and float weights go through the AVX2 vec_dot row loop (dot_avx2.cpp).
#include <algorithm>
#include <cstring>
#include <array>
#include <utility>
#include <vector>

#include "dispatch.hpp"
#include "simd_avx2.hpp"

namespace ts::kernels::detail {
namespace {
using namespace avx2;

// Per weight type: its block, the activation block, how to unpack 32 quants into bytes, and
// whether they are signed (sign trick needed) and carry a min (Q8_1's s term).
struct TQ4_0 {
  using W = BlockQ4_0; using A = BlockQ8_0;
  static constexpr bool kSigned = true, kMin = false;
  static __m256i q(const W& b) { return _mm256_sub_epi8(nibbles(b.qs), _mm256_set1_epi8(8)); }
};
struct TQ4_1 {
  using W = BlockQ4_1; using A = BlockQ8_1;
  static constexpr bool kSigned = false, kMin = true;
  static __m256i q(const W& b) { return nibbles(b.qs); }
};
struct TQ5_0 {
  using W = BlockQ5_0; using A = BlockQ8_0;
  static constexpr bool kSigned = true, kMin = false;
  static __m256i q(const W& b) {
    return _mm256_sub_epi8(_mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh)), _mm256_set1_epi8(16));
  }
};
struct TQ5_1 {
  using W = BlockQ5_1; using A = BlockQ8_1;
  static constexpr bool kSigned = false, kMin = true;
  static __m256i q(const W& b) { return _mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh)); }
};
struct TQ8_0 {
  using W = BlockQ8_0; using A = BlockQ8_0;
  static constexpr bool kSigned = true, kMin = false;
  static __m256i q(const W& b) { return load256(b.qs); }
};

// Block scales converted to float ahead of the kernels: weight scales per row block, activation
// scales per activation chunk. Otherwise each F16C conversion would be redone for every row x
// activation pair in the inner loop.
struct Scales {
  const float* wd;  // weight d, [row][block]
  const float* ad;  // activation d, [act][block]
};

template <class T, int R, int C>
void kernel(int64_t nb, const uint8_t* w, size_t wstride, const uint8_t* a, size_t astride,
            const Scales& sc, float* y, int64_t ldy) {
  using W = typename T::W;
  using A = typename T::A;
  const W* wr[R];
  const A* ac[C];
  for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const W*>(w + r * wstride);
  for (int c = 0; c < C; ++c) ac[c] = reinterpret_cast<const A*>(a + c * astride);

  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();

  for (int64_t b = 0; b < nb; ++b) {
    __m256i wq[R], wabs[R];
    for (int r = 0; r < R; ++r) {
      wq[r] = T::q(wr[r][b]);
      if constexpr (T::kSigned) wabs[r] = _mm256_sign_epi8(wq[r], wq[r]);
    }
    for (int c = 0; c < C; ++c) {
      const __m256i aq = load256(ac[c][b].qs);
      const __m256 da = _mm256_broadcast_ss(sc.ad + c * nb + b);
      for (int r = 0; r < R; ++r) {
        __m256i p;
        if constexpr (T::kSigned) p = dot_i8i8(wabs[r], wq[r], aq);
        else p = dot_u8i8(wq[r], aq);
        const __m256 d = _mm256_mul_ps(da, _mm256_broadcast_ss(sc.wd + r * nb + b));
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), d, acc[r][c]);
      }
    }
  }
  // Reduce every accumulator first (fully unrolled, so acc[][] stays in registers).
  float out[R][C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) out[r][c] = hsum(acc[r][c]);
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r) y[c * ldy + r] = out[r][c];
}

// Q4_1 / Q5_1 min term of a whole row block x activation chunk, added onto y:
// y[j][r] += sum_b m_w[r][b] * s_a[j][b], with s_a stored block-major (asT[b][j]) so eight
// activations go in one vector. Costs 1/32 of the main loop; keeps it out of the kernels.
void add_min_term(int64_t nb, int64_t rows, int64_t acts, const float* wm, const float* asT,
                  float* y, int64_t ldy) {
  alignas(32) float t[32];
  auto scatter = [&](int64_t j, int64_t r, int count) {
    for (int k = 0; k < count; ++k) y[(j + k) * ldy + r] += t[k];
  };
  for (int64_t r = 0; r < rows; ++r) {
    const float* mr = wm + r * nb;
    int64_t j = 0;
    for (; j + 32 <= acts; j += 32) {  // four independent FMA chains (latency-bound otherwise)
      __m256 v0 = _mm256_setzero_ps(), v1 = v0, v2 = v0, v3 = v0;
      for (int64_t b = 0; b < nb; ++b) {
        const __m256 mb = _mm256_broadcast_ss(mr + b);
        const float* sb = asT + b * acts + j;
        v0 = _mm256_fmadd_ps(mb, _mm256_loadu_ps(sb), v0);
        v1 = _mm256_fmadd_ps(mb, _mm256_loadu_ps(sb + 8), v1);
        v2 = _mm256_fmadd_ps(mb, _mm256_loadu_ps(sb + 16), v2);
        v3 = _mm256_fmadd_ps(mb, _mm256_loadu_ps(sb + 24), v3);
      }
      _mm256_store_ps(t, v0), _mm256_store_ps(t + 8, v1);
      _mm256_store_ps(t + 16, v2), _mm256_store_ps(t + 24, v3);
      scatter(j, r, 32);
    }
    for (; j + 8 <= acts; j += 8) {
      __m256 v = _mm256_setzero_ps();
      for (int64_t b = 0; b < nb; ++b)
        v = _mm256_fmadd_ps(_mm256_broadcast_ss(mr + b), _mm256_loadu_ps(asT + b * acts + j), v);
      _mm256_store_ps(t, v);
      scatter(j, r, 8);
    }
    for (; j < acts; ++j) {
      float v = 0;
      for (int64_t b = 0; b < nb; ++b) v += mr[b] * asT[b * acts + j];
      y[j * ldy + r] += v;
    }
  }
}

// Decode (one activation row): every weight block is used once, so its scales are converted
// in the loop. Four rows at a time: their (d, m) half pairs go through one 8-wide F16C
// conversion and one multiply by the activation's (d, s) pair, lane 2r giving row r's block
// scale and lane 2r+1 its min term m*s (summed in `mins`). Activation pairs come pre-converted.
template <class T>
void decode4(int64_t nb, const uint8_t* w, size_t wstride, const uint8_t* a, const float* ads,
             float* y) {
  using W = typename T::W;
  const auto* ab = reinterpret_cast<const typename T::A*>(a);
  const W* w0 = reinterpret_cast<const W*>(w);
  const W* w1 = reinterpret_cast<const W*>(w + wstride);
  const W* w2 = reinterpret_cast<const W*>(w + 2 * wstride);
  const W* w3 = reinterpret_cast<const W*>(w + 3 * wstride);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0, mins = acc0;
  const __m256i lane0 = _mm256_set1_epi32(0), lane2 = _mm256_set1_epi32(2),
                lane4 = _mm256_set1_epi32(4), lane6 = _mm256_set1_epi32(6);
  auto load_dm = [](const W& blk) {  // d and the next two bytes (m for Q4_1/Q5_1)
    int32_t v;
    std::memcpy(&v, &blk.d, 4);
    return v;
  };
  for (int64_t b = 0; b < nb; ++b) {
    const __m256 dm = _mm256_cvtph_ps(
        _mm_setr_epi32(load_dm(w0[b]), load_dm(w1[b]), load_dm(w2[b]), load_dm(w3[b])));
    const __m256 act = _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(ads + 2 * b)));
    const __m256 prod = _mm256_mul_ps(dm, act);
    if constexpr (T::kMin) mins = _mm256_add_ps(mins, prod);
    const __m256i aq = load256(ab[b].qs);
    // Software prefetch a few blocks ahead on each row stream (hardware prefetch lags on
    // four interleaved streams).
    _mm_prefetch(reinterpret_cast<const char*>(w0 + b + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w1 + b + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w2 + b + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w3 + b + 16), _MM_HINT_T0);
    auto step = [&](const W& blk, __m256i lane, __m256& acc) {
      const __m256i wq = T::q(blk);
      __m256i p;
      if constexpr (T::kSigned) p = dot_i8i8(_mm256_sign_epi8(wq, wq), wq, aq);
      else p = dot_u8i8(wq, aq);
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_permutevar8x32_ps(prod, lane), acc);
    };
    step(w0[b], lane0, acc0);
    step(w1[b], lane2, acc1);
    step(w2[b], lane4, acc2);
    step(w3[b], lane6, acc3);
  }
  alignas(32) float m[8];
  _mm256_store_ps(m, mins);
  y[0] = hsum(acc0) + (T::kMin ? m[1] : 0.f);
  y[1] = hsum(acc1) + (T::kMin ? m[3] : 0.f);
  y[2] = hsum(acc2) + (T::kMin ? m[5] : 0.f);
  y[3] = hsum(acc3) + (T::kMin ? m[7] : 0.f);
}

// Single leftover rows of a decode tile.
template <class T>
void decode1(int64_t nb, const uint8_t* w, const uint8_t* a, const float* ads, float* y) {
  const auto* ab = reinterpret_cast<const typename T::A*>(a);
  const auto* wr = reinterpret_cast<const typename T::W*>(w);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i wq = T::q(wr[b]);
    __m256i p;
    if constexpr (T::kSigned) p = dot_i8i8(_mm256_sign_epi8(wq, wq), wq, load256(ab[b].qs));
    else p = dot_u8i8(wq, load256(ab[b].qs));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(hf(wr[b].d) * ads[2 * b]), acc);
    if constexpr (T::kMin) mins += hf(wr[b].m) * ads[2 * b + 1];
  }
  *y = hsum(acc) + mins;
}

using KernelFn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, const Scales&,
                          float*, int64_t);

// Register blocking for prefill: kRows weight rows x kCols activations per kernel call.
// 4 x 3 and 3 x 4 measured alike (2 x 4 slower, 2 x 6 and 4 x 2 spill); 4 divides kRowBlock.
constexpr int kRows = 4, kCols = 3;
constexpr int64_t kRowBlock = 32;    // rows whose blocks stay in L1 while activations pass
constexpr int64_t kActChunk = 128;   // activation rows whose scales are converted at once

// kernel<T, r, c> for every r <= kRows, c <= kCols (edges of the tile use the smaller ones).
template <class T>
struct Kernels {
  template <size_t... I>
  static constexpr std::array<KernelFn, sizeof...(I)> make(std::index_sequence<I...>) {
    return {kernel<T, int(I / kCols) + 1, int(I % kCols) + 1>...};
  }
  static KernelFn get(int r, int c) {
    static constexpr auto table = make(std::make_index_sequence<kRows * kCols>{});
    return table[size_t((r - 1) * kCols + (c - 1))];
  }
};

template <class T>
void weight_scales(const uint8_t* w, size_t wrb, int64_t rows, int64_t nb, float* d, float* m) {
  for (int64_t r = 0; r < rows; ++r) {
    const auto* blk = reinterpret_cast<const typename T::W*>(w + r * wrb);
    for (int64_t b = 0; b < nb; ++b) {
      d[r * nb + b] = hf(blk[b].d);
      if constexpr (T::kMin) m[r * nb + b] = hf(blk[b].m);
    }
  }
}

template <class T>
void act_scales(const uint8_t* a, size_t arb, int64_t acts, int64_t nb, float* d, float* s) {
  for (int64_t j = 0; j < acts; ++j) {
    const auto* blk = reinterpret_cast<const typename T::A*>(a + j * arb);
    for (int64_t b = 0; b < nb; ++b) {
      d[j * nb + b] = hf(blk[b].d);
      if constexpr (T::kMin) s[b * acts + j] = hf(blk[b].s);  // block-major, see add_min_term
    }
  }
}

template <class T>
void tile(int64_t n, const uint8_t* w, size_t wrb, int64_t r0, int64_t r1, const uint8_t* a,
          size_t arb, int64_t m, float* y, int64_t ldy) {
  const int64_t nb = n / QK;
  if (m == 1) {  // decode: four rows in flight, each weight byte read once
    thread_local std::vector<float> ads_buf;
    ads_buf.resize(size_t(2 * nb));
    float* ads = ads_buf.data();  // activation (d, s) per block; s = 0 for Q8_0
    const auto* ab = reinterpret_cast<const typename T::A*>(a);
    for (int64_t b = 0; b < nb; ++b) {
      ads[2 * b] = hf(ab[b].d);
      if constexpr (T::kMin) ads[2 * b + 1] = hf(ab[b].s);
      else ads[2 * b + 1] = 0;
    }
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) decode4<T>(nb, w + r * wrb, wrb, a, ads, y + r);
    for (; r < r1; ++r) decode1<T>(nb, w + r * wrb, a, ads, y + r);
    return;
  }
  const int64_t chunk = std::min(m, kActChunk);
  thread_local std::vector<float> buf;
  buf.resize(size_t(2 * nb * (kRowBlock + chunk)));
  float* wd = buf.data();
  float* wm = wd + kRowBlock * nb;
  float* ad = wm + kRowBlock * nb;
  float* as = ad + chunk * nb;

  for (int64_t j0 = 0; j0 < m; j0 += chunk) {
    const int64_t je = std::min(m, j0 + chunk);
    act_scales<T>(a + j0 * arb, arb, je - j0, nb, ad, as);
    for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
      const int64_t re = std::min(r1, rb + kRowBlock);
      weight_scales<T>(w + rb * wrb, wrb, re - rb, nb, wd, wm);
      for (int64_t j = j0; j < je; j += kCols) {
        const int cc = int(std::min<int64_t>(kCols, je - j));
        for (int64_t r = rb; r < re; r += kRows) {
          const int rr = int(std::min<int64_t>(kRows, re - r));
          const Scales s{wd + (r - rb) * nb, ad + (j - j0) * nb};
          Kernels<T>::get(rr, cc)(nb, w + r * wrb, wrb, a + j * arb, arb, s, y + j * ldy + r, ldy);
        }
      }
      if constexpr (T::kMin) add_min_term(nb, re - rb, je - j0, wm, as, y + j0 * ldy + rb, ldy);
    }
  }
}

}  // namespace

void matmul_tile_avx2(GgmlType wt, int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0,
                      int64_t r1, const uint8_t* a, size_t a_row_bytes, int64_t m, float* y,
                      int64_t ldy) {
  switch (wt) {
    case GgmlType::Q4_0: return tile<TQ4_0>(n, w, w_row_bytes, r0, r1, a, a_row_bytes, m, y, ldy);
    case GgmlType::Q4_1: return tile<TQ4_1>(n, w, w_row_bytes, r0, r1, a, a_row_bytes, m, y, ldy);
    case GgmlType::Q5_0: return tile<TQ5_0>(n, w, w_row_bytes, r0, r1, a, a_row_bytes, m, y, ldy);
    case GgmlType::Q5_1: return tile<TQ5_1>(n, w, w_row_bytes, r0, r1, a, a_row_bytes, m, y, ldy);
    case GgmlType::Q8_0: return tile<TQ8_0>(n, w, w_row_bytes, r0, r1, a, a_row_bytes, m, y, ldy);
    default: {
      // Row loop over the AVX2 dot products, in row blocks so weights stay cached.
      for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
        const int64_t re = std::min(r1, rb + kRowBlock);
        for (int64_t j = 0; j < m; ++j)
          for (int64_t r = rb; r < re; ++r)
            y[j * ldy + r] = vec_dot_avx2(wt, n, w + r * w_row_bytes, a + j * a_row_bytes);
      }
    }
  }
}

// One dot product of a 32-block type: a 1-row, 1-activation tile.
float dot32_avx2(GgmlType wt, int64_t n, const void* w, const void* a) {
  float y = 0;
  matmul_tile_avx2(wt, n, static_cast<const uint8_t*>(w), 0, 0, 1, static_cast<const uint8_t*>(a),
                   0, 1, &y, 1);
  return y;
}

}  // namespace ts::kernels::detail
