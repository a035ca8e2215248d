// Products in ExactOps::dot_lanes8's order (exact_kernels.hpp) on the CUDA cores: eight threads
// per RI x RJ tile of outputs, thread t holding lane t's fused chains (elements t, t+8, ... of
// the product length) of all of them, folded across the eight threads at the end. A chain cannot
// be split, so the outputs are all the parallelism there is: narrow products (P . V, 64 or 128
// outputs per row) take 2 x 2 tiles per thread, wide ones (Q . K^T) 4 x 4. Operands are staged
// through shared memory 32 elements of k at a time, each thread's four elements adjacent so that
// it reads them as one float4.
#include <cuda_fp16.h>

#include "exact_kernels.hpp"
#include "exact_math.cuh"
#include "launch.cuh"

namespace ts::cuda {
namespace {

constexpr int kThreads = 256;  // 32 groups of 8 threads: 4 along i, 8 along j
constexpr int kStep = 32;      // k per stage: 4 elements per lane

// Shared-memory column of element l of a stage: lane l % 8, slot l / 8.
__device__ __forceinline__ int slot(int l) { return (l & 7) * 4 + (l >> 3); }

__device__ __forceinline__ float load_half(const uint16_t* p) { return __half2float(__ushort_as_half(*p)); }

template <int RI, int RJ>
__global__ void __launch_bounds__(kThreads) lanes8_kernel(Lanes8Operands o, int64_t n_a, int64_t n_b, int64_t k) {
  constexpr int kTileI = 4 * RI, kTileJ = 8 * RJ;
  pdl_wait();
  __shared__ __align__(16) float as[kTileI][kStep];
  __shared__ __align__(16) float bs[kTileJ][kStep];
  const int t = threadIdx.x & 7, g = threadIdx.x >> 3, gi = g & 3, gj = g >> 2;
  const int64_t i0 = int64_t(blockIdx.x) * kTileI, j0 = int64_t(blockIdx.y) * kTileJ;
  const uint16_t* a = o.a + blockIdx.z * o.a_batch;
  const uint16_t* b = o.b + blockIdx.z * o.b_batch;
  const bool a_rows = o.a_sl == 1;  // A row-major: consecutive threads take consecutive l

  float acc[RI][RJ];
#pragma unroll
  for (int u = 0; u < RI; ++u)
#pragma unroll
    for (int v = 0; v < RJ; ++v) acc[u][v] = 0.f;

  // The next stage's operands are read into registers while the current one is multiplied.
  constexpr int kNa = kTileI * kStep / kThreads, kNb = kTileJ * kStep / kThreads;
  float ra[kNa], rb[kNb];
  auto fetch = [&](int64_t k0) {
#pragma unroll
    for (int x = 0; x < kNa; ++x) {
      const int e = threadIdx.x + x * kThreads;
      const int ii = a_rows ? e / kStep : e % kTileI, l = a_rows ? e % kStep : e / kTileI;
      const int64_t i = i0 + ii, kl = k0 + l;
      ra[x] = i < n_a && kl < k ? load_half(a + i * o.a_si + kl * o.a_sl) : 0.f;
    }
#pragma unroll
    for (int x = 0; x < kNb; ++x) {
      const int e = threadIdx.x + x * kThreads;
      const int64_t j = j0 + e / kStep, kl = k0 + e % kStep;
      rb[x] = j < n_b && kl < k ? load_half(b + j * o.ldb + kl) : 0.f;
    }
  };
  auto stage = [&] {
#pragma unroll
    for (int x = 0; x < kNa; ++x) {
      const int e = threadIdx.x + x * kThreads;
      as[a_rows ? e / kStep : e % kTileI][slot(a_rows ? e % kStep : e / kTileI)] = ra[x];
    }
#pragma unroll
    for (int x = 0; x < kNb; ++x) {
      const int e = threadIdx.x + x * kThreads;
      bs[e / kStep][slot(e % kStep)] = rb[x];
    }
  };
  fetch(0);
  for (int64_t k0 = 0; k0 < k; k0 += kStep) {
    stage();
    __syncthreads();
    if (k0 + kStep < k) fetch(k0 + kStep);
    float4 av[RI], bv[RJ];
#pragma unroll
    for (int u = 0; u < RI; ++u) av[u] = *reinterpret_cast<const float4*>(&as[gi * RI + u][4 * t]);
#pragma unroll
    for (int v = 0; v < RJ; ++v) bv[v] = *reinterpret_cast<const float4*>(&bs[gj * RJ + v][4 * t]);
#pragma unroll
    for (int u = 0; u < RI; ++u)
#pragma unroll
      for (int v = 0; v < RJ; ++v) {  // elements t, t+8, t+16, t+24 of the stage, in order
        acc[u][v] = __fmaf_rn(av[u].x, bv[v].x, acc[u][v]);
        acc[u][v] = __fmaf_rn(av[u].y, bv[v].y, acc[u][v]);
        acc[u][v] = __fmaf_rn(av[u].z, bv[v].z, acc[u][v]);
        acc[u][v] = __fmaf_rn(av[u].w, bv[v].w, acc[u][v]);
      }
    __syncthreads();
  }
  float* c = o.c + blockIdx.z * o.c_batch;
#pragma unroll
  for (int u = 0; u < RI; ++u)
#pragma unroll
    for (int v = 0; v < RJ; ++v) {
      const float f = fold8_lanes(acc[u][v]);
      const int64_t i = i0 + gi * RI + u, j = j0 + gj * RJ + v;
      if (((u * RJ + v) & 7) == t && i < n_a && j < n_b) c[j * o.ldc + i] = f;
    }
}

}  // namespace

void launch_lanes8_products(const Lanes8Operands& o, int64_t n_a, int64_t n_b, int64_t k, int batch,
                            cudaStream_t s) {
  if (n_a <= 0 || n_b <= 0 || batch <= 0) return;
  auto run = [&](auto kernel, int ti, int tj) {
    const dim3 grid(unsigned((n_a + ti - 1) / ti), unsigned((n_b + tj - 1) / tj), unsigned(batch));
    launch(kernel, grid, kThreads, 0, s, o, n_a, n_b, k);
  };
  if (n_a <= 256)
    run(lanes8_kernel<2, 2>, 8, 16);
  else
    run(lanes8_kernel<4, 4>, 16, 32);
  check(cudaGetLastError(), "lanes8_kernel");
}

}  // namespace ts::cuda
