// The CUDA backend's row and element operations (elementwise_kernels.hpp). Compiled without
// contraction of multiply-adds (-fmad=false) so that the written fmaf calls are the only ones,
// as in the CPU's exact_ops.
#include <cuda_fp16.h>

#include <cub/block/block_reduce.cuh>

#include <algorithm>

#include "decode_kernels.hpp"
#include "device_common.cuh"
#include "elementwise_kernels.hpp"

namespace ts::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) rmsnorm_kernel(const float* x, const float* w, int64_t n, float eps,
                                                            float* y) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ float scale;
  const float* xi = x + blockIdx.x * n;
  double sum = 0;
  for (int64_t j = threadIdx.x; j < n; j += kThreads) sum += double(xi[j] * xi[j]);
  sum = Reduce(tmp).Sum(sum);
  if (threadIdx.x == 0) scale = 1.f / sqrtf(float(sum / double(n)) + eps);
  __syncthreads();
  float* yi = y + blockIdx.x * n;
  for (int64_t j = threadIdx.x; j < n; j += kThreads) yi[j] = xi[j] * scale * w[j];
}

__global__ void add_bias_kernel(float* x, const float* bias, int64_t total, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    x[i] += bias[i % n];
}

__global__ void add_kernel(float* y, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] += x[i];
}

// exp(x) exactly as kernels/cpu/exact_ops_impl.inc's exp_poly (llama.cpp's constants).
__device__ float exp_poly(float x) {
  const float r = 0x1.8p23f;
  const float z = fmaf(x, 0x1.715476p+0f, r);
  const float n = z - r;
  const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
  const uint32_t e = __float_as_uint(z) << 23;
  const float k = __uint_as_float(e + __float_as_uint(1.f));
  const float u = b * b;
  const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                       0x1.ffffecp-1f * b);
  const float an = fabsf(n);
  if (!(an > 126.f)) return fmaf(j, k, k);
  const uint32_t g = n <= 0.f ? 0x82000000u : 0u;
  const float s1 = __uint_as_float(g + 0x7f000000u);
  if (an > 192.f) return s1 * s1;
  const float s2 = __uint_as_float(e - g);
  return fmaf(s2, j, s2) * s1;
}

__global__ void swiglu_kernel(float* g, const float* u, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    g[i] = g[i] / (1.f + exp_poly(0.f - g[i])) * u[i];
}

// One block per (token, KV head).
__global__ void kv_store_kernel(PagedKv kv, int64_t t0, const float* k, const float* v) {
  const int t = int(t0 + blockIdx.x), g = blockIdx.y;
  const int64_t off = kv_offset(kv, g, t);
  const int64_t src = (int64_t(blockIdx.x) * kv.n_kv_heads + g) * kv.head_dim;
  for (int i = threadIdx.x; i < kv.head_dim; i += blockDim.x) {
    reinterpret_cast<__half*>(kv.k)[off + i] = __float2half_rn(k[src + i]);
    reinterpret_cast<__half*>(kv.v)[off + i] = __float2half_rn(v[src + i]);
  }
}

__global__ void mean_rows_kernel(const float* q, int64_t m, int64_t n, float* out) {
  const int64_t x = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (x >= n) return;
  float s = 0.f;
  for (int64_t i = 0; i < m; ++i) s += q[i * n + x];  // the CPU's order: rows in turn
  out[x] = s / float(m);
}

int grid_for(int64_t n) { return int(std::min<int64_t>((n + kThreads - 1) / kThreads, 65536)); }

}  // namespace

void launch_rmsnorm(const float* x, const float* w, int64_t m, int64_t n, float eps, float* y, cudaStream_t s) {
  rmsnorm_kernel<<<unsigned(m), kThreads, 0, s>>>(x, w, n, eps, y);
  check(cudaGetLastError(), "rmsnorm_kernel");
}

void launch_add_bias(float* x, const float* bias, int64_t m, int64_t n, cudaStream_t s) {
  add_bias_kernel<<<grid_for(m * n), kThreads, 0, s>>>(x, bias, m * n, n);
  check(cudaGetLastError(), "add_bias_kernel");
}

void launch_add(float* y, const float* x, int64_t n, cudaStream_t s) {
  add_kernel<<<grid_for(n), kThreads, 0, s>>>(y, x, n);
  check(cudaGetLastError(), "add_kernel");
}

void launch_swiglu(float* gate, const float* up, int64_t n, cudaStream_t s) {
  swiglu_kernel<<<grid_for(n), kThreads, 0, s>>>(gate, up, n);
  check(cudaGetLastError(), "swiglu_kernel");
}

void launch_kv_store(const PagedKv& kv, int64_t t0, int64_t m, const float* k, const float* v, cudaStream_t s) {
  kv_store_kernel<<<dim3(unsigned(m), unsigned(kv.n_kv_heads)), 64, 0, s>>>(kv, t0, k, v);
  check(cudaGetLastError(), "kv_store_kernel");
}

void launch_mean_rows(const float* q, int64_t m, int64_t n, float* out, cudaStream_t s) {
  mean_rows_kernel<<<grid_for(n), kThreads, 0, s>>>(q, m, n, out);
  check(cudaGetLastError(), "mean_rows_kernel");
}

}  // namespace ts::cuda
