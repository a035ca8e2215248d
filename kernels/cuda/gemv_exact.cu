// The CPU's prefill product order on the GPU (exact_kernels.hpp): eight threads per (weight row,
// group of 8 activation rows), thread t holding the CPU's AVX2 lane t (elements 4t..4t+3 of each
// block) for all 8 activation rows, its chains running over the blocks in order; thread t also
// runs the min-term chain of activation row t. A warp covers 4 weight rows, a block 32; the
// block's 8 activation rows are staged in shared memory first (quant words, d and s as floats).
#include <cuda_fp16.h>

#include <stdexcept>

#include "exact_kernels.hpp"
#include "exact_math.cuh"
#include "launch.cuh"

namespace ts::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = kThreads / 8;
constexpr int kActs = 8;          // activation rows per thread
constexpr int kCpuActChunk = 128;  // tile_avx2.cpp's kActChunk: activation rows of one min-term pass

__device__ __forceinline__ float half_at(const uint8_t* p) { return __half2float(__ushort_as_half(*reinterpret_cast<const uint16_t*>(p))); }

// 4 bytes at a 2-byte aligned address.
__device__ __forceinline__ uint32_t word_at(const uint8_t* p) {
  const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
  return uint32_t(h[0]) | uint32_t(h[1]) << 16;
}

// Nibbles of elements 4t..4t+3: low nibbles of qs[4t..] for t < 4, high nibbles of qs[4(t-4)..].
__device__ __forceinline__ uint32_t nibbles(const uint8_t* qs, int t) {
  return (word_at(qs + 4 * (t & 3)) >> (t & 4)) & 0x0F0F0F0Fu;
}

// Fifth bits of elements 4t..4t+3 (bit e of the little-endian qh), as 0x10 per byte.
__device__ __forceinline__ uint32_t fifth(const uint8_t* qh, int t) {
  const uint32_t h = word_at(qh) >> (4 * t);
  return ((h & 1u) << 4) | ((h & 2u) << 11) | ((h & 4u) << 18) | ((h & 8u) << 25);
}

// Per weight type: block bytes, activation block bytes, whether it has a min (Q8_1 partner),
// and lane t's four quants as signed bytes.
struct Q4_0 {
  static constexpr int kBlock = 18, kAct = 34;
  static constexpr bool kMin = false;
  __device__ static int q(const uint8_t* b, int t) { return int(__vsub4(nibbles(b + 2, t), 0x08080808u)); }
};
struct Q4_1 {
  static constexpr int kBlock = 20, kAct = 36;
  static constexpr bool kMin = true;
  __device__ static int q(const uint8_t* b, int t) { return int(nibbles(b + 4, t)); }
};
struct Q5_0 {
  static constexpr int kBlock = 22, kAct = 34;
  static constexpr bool kMin = false;
  __device__ static int q(const uint8_t* b, int t) { return int(__vsub4(nibbles(b + 6, t) | fifth(b + 2, t), 0x10101010u)); }
};
struct Q5_1 {
  static constexpr int kBlock = 24, kAct = 36;
  static constexpr bool kMin = true;
  __device__ static int q(const uint8_t* b, int t) { return int(nibbles(b + 8, t) | fifth(b + 4, t)); }
};
struct Q8_0 {
  static constexpr int kBlock = 34, kAct = 34;
  static constexpr bool kMin = false;
  __device__ static int q(const uint8_t* b, int t) { return int(word_at(b + 2 + 4 * t)); }
};

template <class T>
__global__ void __launch_bounds__(kThreads) gemv_exact_kernel(const uint8_t* __restrict__ w, size_t row_bytes,
                                                              int64_t nb, int64_t n_out, const uint8_t* __restrict__ act,
                                                              size_t act_bytes, int64_t m, float* __restrict__ y,
                                                              int64_t ldy) {
  extern __shared__ uint32_t staged[];  // [a][b][8] quant words, then [a][b] d, then [a][b] s
  const int t = threadIdx.x & 7;
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 8;
  const int64_t j0 = int64_t(blockIdx.y) * kActs;
  const int n_act = int(min(int64_t(kActs), m - j0));
  const int64_t rr = min(r, n_out - 1);  // threads past the last row compute a copy (the shuffles need them)
  const uint8_t* wr = w + rr * row_bytes;
  float* sd = reinterpret_cast<float*>(staged + kActs * nb * 8);
  float* ss = sd + kActs * nb;
  pdl_wait();
  const uint8_t* ar = act + j0 * act_bytes;
  for (int64_t e = threadIdx.x; e < n_act * nb * 8; e += kThreads) {
    const int64_t a = e / (nb * 8), b = e / 8 % nb;
    const uint8_t* ab = ar + a * act_bytes + b * T::kAct;
    staged[e] = word_at(ab + (T::kMin ? 4 : 2) + 4 * (e & 7));
    if ((e & 7) == 0) sd[a * nb + b] = half_at(ab);
    if (T::kMin && (e & 7) == 1) ss[a * nb + b] = half_at(ab + 2);
  }
  __syncthreads();
  // The CPU adds the min term of row j0 + t by fused multiply-adds for the chunk's first
  // floor(rows / 8) * 8 activation rows and by separate products and sums for the rest.
  const int64_t j = j0 + t;
  const int64_t chunk = min(m, int64_t(kCpuActChunk)), c0 = j / chunk * chunk;
  const int64_t in_chunk = min(m, c0 + chunk) - c0;
  const bool fused_min = j - c0 < in_chunk / 8 * 8;

  float acc[kActs];
#pragma unroll
  for (int a = 0; a < kActs; ++a) acc[a] = 0.f;
  float vmin = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* wb = wr + b * T::kBlock;
    const int q = T::q(wb, t);
    const float wd = half_at(wb);
#pragma unroll
    for (int a = 0; a < kActs; ++a)
      if (a < n_act) {
        const int p = __dp4a(q, int(staged[(a * nb + b) * 8 + t]), 0);
        acc[a] = __fmaf_rn(__int2float_rn(p), __fmul_rn(sd[a * nb + b], wd), acc[a]);
      }
    if constexpr (T::kMin) {
      if (t < n_act) {
        const float wm = half_at(wb + 2), sv = ss[t * nb + b];
        vmin = fused_min ? __fmaf_rn(wm, sv, vmin) : __fadd_rn(vmin, __fmul_rn(wm, sv));
      }
    }
  }
  float mine = 0.f;
#pragma unroll
  for (int a = 0; a < kActs; ++a) {
    const float f = fold8_lanes(acc[a]);
    if (a == t) mine = f;
  }
  if (r < n_out && t < n_act) y[j * ldy + r] = T::kMin ? __fadd_rn(mine, vmin) : mine;
}

template <class F>
bool with_type(GgmlType wt, F&& f) {
  switch (wt) {
    case GgmlType::Q4_0: f(Q4_0{}); return true;
    case GgmlType::Q4_1: f(Q4_1{}); return true;
    case GgmlType::Q5_0: f(Q5_0{}); return true;
    case GgmlType::Q5_1: f(Q5_1{}); return true;
    case GgmlType::Q8_0: f(Q8_0{}); return true;
    default: return false;
  }
}

}  // namespace

bool gemv_exact_supports(GgmlType wt) {
  return with_type(wt, [](auto) {});
}

void launch_gemv_exact(GgmlType wt, const void* w, size_t row_bytes, int64_t n_in, int64_t n_out, const void* act,
                       int64_t m, float* y, int64_t ldy, cudaStream_t s) {
  if (n_in % 32 != 0) throw std::invalid_argument("launch_gemv_exact: n_in must be a multiple of 32");
  if (n_out <= 0 || m <= 0) return;
  const int64_t nb = n_in / 32;
  const size_t smem = size_t(kActs * nb) * (8 + 2) * 4;
  if (smem > 48 * 1024) throw std::invalid_argument("launch_gemv_exact: rows wider than the staged activations hold");
  const dim3 grid(unsigned((n_out + kRowsPerBlock - 1) / kRowsPerBlock), unsigned((m + kActs - 1) / kActs));
  const bool ok = with_type(wt, [&](auto tt) {
    using T = decltype(tt);
    launch(gemv_exact_kernel<T>, grid, kThreads, smem, s, static_cast<const uint8_t*>(w), row_bytes, n_in / 32, n_out,
           static_cast<const uint8_t*>(act), size_t(n_in / 32) * T::kAct, m, y, ldy);
  });
  if (!ok) throw std::invalid_argument("launch_gemv_exact: unsupported weight type");
  check(cudaGetLastError(), "gemv_exact_kernel");
}

}  // namespace ts::cuda
