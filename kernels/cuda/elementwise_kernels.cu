// The CUDA backend's row and element operations (elementwise_kernels.hpp). Compiled without
// contraction of multiply-adds (-fmad=false) so that the written fmaf calls are the only ones,
// as in the CPU's exact_ops.
#include <cuda_fp16.h>

#include <cub/block/block_reduce.cuh>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "decode_kernels.hpp"
#include "device_common.cuh"
#include "elementwise_kernels.hpp"
#include "exact_math.cuh"
#include "launch.cuh"
#include "quantize_q8.cuh"

namespace ts::cuda {
namespace {

constexpr int kThreads = 256;

// One block per row: the sum of squares in double, then each element times the scale, then
// the weight (the CPU's order).
__global__ void __launch_bounds__(kThreads) rmsnorm_kernel(const float* x, const float* w, int64_t n, float eps,
                                                            float* y) {
  pdl_wait();
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

// The same for rows of n = 4k <= 4 * V * kThreads floats, with the residual add first when Add
// (x += d, written back; y may be d: every element is read before the reduction's barrier and
// written after it by the same thread), and the result's Q8_0 / Q8_1 quantisation into q when
// Q (one row). Every thread loads its V float4s of each row at once and keeps them in registers,
// so the block waits for memory once, not once per element (the loop above stalls ~16 times on a
// 4096-wide row: ~10 us of a decode step). The weights, which no kernel writes, are loaded
// before pdl_wait.
template <int V, bool Add, RowQuant Q>
__global__ void __launch_bounds__(kThreads) rmsnorm_vec_kernel(float4* x, const float4* d, const float4* w, int n4,
                                                               float eps, float4* y, uint8_t* q) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ float scale;
  float4 wv[V], xv[V];
#pragma unroll
  for (int v = 0; v < V; ++v) {
    const int j = threadIdx.x + v * kThreads;
    wv[v] = j < n4 ? __ldg(w + j) : float4{};
  }
  pdl_wait();
  const int64_t row = int64_t(blockIdx.x) * n4;
#pragma unroll
  for (int v = 0; v < V; ++v) {
    const int j = threadIdx.x + v * kThreads;
    xv[v] = j < n4 ? x[row + j] : float4{};
    if (Add && j < n4) {
      const float4 dv = d[row + j];
      xv[v] = float4{xv[v].x + dv.x, xv[v].y + dv.y, xv[v].z + dv.z, xv[v].w + dv.w};
    }
  }
  double sum = 0;
#pragma unroll
  for (int v = 0; v < V; ++v)
    sum += double(xv[v].x * xv[v].x) + double(xv[v].y * xv[v].y) + double(xv[v].z * xv[v].z) +
           double(xv[v].w * xv[v].w);
  sum = Reduce(tmp).Sum(sum);
  if (threadIdx.x == 0) scale = 1.f / sqrtf(float(sum / double(4 * n4)) + eps);
  __syncthreads();
#pragma unroll
  for (int v = 0; v < V; ++v) {
    const int j = threadIdx.x + v * kThreads;
    const float4 r{xv[v].x * scale * wv[v].x, xv[v].y * scale * wv[v].y, xv[v].z * scale * wv[v].z,
                   xv[v].w * scale * wv[v].w};
    if (Q != RowQuant::none) quantize_q8_quad<Q == RowQuant::q8_1>(r, j, q, j < n4);  // the whole warp
    if (j >= n4) continue;
    if (Add) x[row + j] = xv[v];
    y[row + j] = r;
  }
}

__global__ void add_bias_kernel(float* x, const float* bias, int64_t total, int64_t n) {
  pdl_wait();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    x[i] += bias[i % n];
}

__global__ void add_kernel(float* y, const float* x, int64_t n) {
  pdl_wait();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] += x[i];
}

__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.f + exp_poly(0.f - g)) * u; }

__global__ void swiglu_kernel(float* g, const float* u, int64_t n) {
  pdl_wait();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    g[i] = silu_mul(g[i], u[i]);
}

// SwiGLU over one row of n = 4 * n4 values (16-byte aligned), one quad per thread, with the
// result's Q8_0 / Q8_1 quantisation into q (n4 a multiple of 8: whole blocks).
template <bool S>
__global__ void swiglu_q8_kernel(float4* g, const float4* u, int n4, uint8_t* q) {
  pdl_wait();
  const int j = int(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool valid = j < n4;
  float4 r{};
  if (valid) {
    const float4 a = g[j], b = u[j];
    r = float4{silu_mul(a.x, b.x), silu_mul(a.y, b.y), silu_mul(a.z, b.z), silu_mul(a.w, b.w)};
    g[j] = r;
  }
  quantize_q8_quad<S>(r, j, q, valid);
}

// One block per (token, KV head).
__global__ void kv_store_kernel(PagedKv kv, int64_t t0, const float* k, const float* v) {
  pdl_wait();
  const int t = int(t0 + blockIdx.x), g = blockIdx.y;
  const int64_t off = kv_offset(kv, g, t);
  const int64_t src = (int64_t(blockIdx.x) * kv.n_kv_heads + g) * kv.head_dim;
  for (int i = threadIdx.x; i < kv.head_dim; i += blockDim.x) {
    const __half kh = __float2half_rn(k[src + i]);
    reinterpret_cast<__half*>(kv.k)[off + i] = kh;
    if (kv.k8) kv.k8[off + i] = half_to_e4m3(kh);
    reinterpret_cast<__half*>(kv.v)[off + i] = __float2half_rn(v[src + i]);
  }
}

__global__ void mean_rows_kernel(const float* q, int64_t m, int64_t n, float* out) {
  pdl_wait();
  const int64_t x = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (x >= n) return;
  float s = 0.f;
  for (int64_t i = 0; i < m; ++i) s += q[i * n + x];  // the CPU's order: rows in turn
  out[x] = s / float(m);
}

int grid_for(int64_t n) { return int(std::min<int64_t>((n + kThreads - 1) / kThreads, 65536)); }


bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The vectorised norm (with the residual add when d, the quantisation when q) where the rows
// allow; false otherwise.
bool launch_rmsnorm_vec(float* x, const float* d, const float* w, int64_t m, int64_t n, float eps, float* y,
                        RowQuantOut q, cudaStream_t s) {
  const int64_t per_thread = (n / 4 + kThreads - 1) / kThreads;  // float4s
  if (n % 4 != 0 || per_thread > 8 || !aligned16(x) || (d && !aligned16(d)) || !aligned16(w) || !aligned16(y))
    return false;
  const auto run = [&](auto v, auto add, auto quant) {
    launch(rmsnorm_vec_kernel<decltype(v)::value, decltype(add)::value, decltype(quant)::value>, unsigned(m),
           kThreads, 0, s, reinterpret_cast<float4*>(x), reinterpret_cast<const float4*>(d),
           reinterpret_cast<const float4*>(w), int(n / 4), eps, reinterpret_cast<float4*>(y),
           static_cast<uint8_t*>(q.dst));
  };
  const auto with_quant = [&](auto v, auto add) {
    using Q = std::integral_constant<RowQuant, RowQuant::none>;
    if (q.format == RowQuant::q8_0) return run(v, add, std::integral_constant<RowQuant, RowQuant::q8_0>{});
    if (q.format == RowQuant::q8_1) return run(v, add, std::integral_constant<RowQuant, RowQuant::q8_1>{});
    run(v, add, Q{});
  };
  const auto with_add = [&](auto v) {
    if (d)
      with_quant(v, std::true_type{});
    else
      with_quant(v, std::false_type{});
  };
  if (per_thread <= 1)
    with_add(std::integral_constant<int, 1>{});
  else if (per_thread <= 2)
    with_add(std::integral_constant<int, 2>{});
  else if (per_thread <= 4)
    with_add(std::integral_constant<int, 4>{});
  else
    with_add(std::integral_constant<int, 8>{});
  check(cudaGetLastError(), "rmsnorm_vec_kernel");
  return true;
}

// Whether a one-row result can be quantised by the kernel that computes it.
bool quantisable(RowQuantOut q, int64_t m, int64_t n) { return q.format != RowQuant::none && m == 1 && n % 32 == 0; }

}  // namespace

bool launch_rmsnorm(const float* x, const float* w, int64_t m, int64_t n, float eps, float* y, RowQuantOut q,
                    cudaStream_t s) {
  if (!quantisable(q, m, n)) q = {};
  // The vectorised kernel only writes x when given d.
  if (launch_rmsnorm_vec(const_cast<float*>(x), nullptr, w, m, n, eps, y, q, s)) return q.format != RowQuant::none;
  launch(rmsnorm_kernel, unsigned(m), kThreads, 0, s, x, w, n, eps, y);
  check(cudaGetLastError(), "rmsnorm_kernel");
  return false;
}

bool launch_add_rmsnorm(float* x, const float* d, const float* w, int64_t m, int64_t n, float eps, float* y,
                        RowQuantOut q, cudaStream_t s) {
  if (!quantisable(q, m, n)) q = {};
  if (launch_rmsnorm_vec(x, d, w, m, n, eps, y, q, s)) return q.format != RowQuant::none;
  launch_add(x, d, m * n, s);
  return launch_rmsnorm(x, w, m, n, eps, y, {}, s);
}

void launch_add_bias(float* x, const float* bias, int64_t m, int64_t n, cudaStream_t s) {
  launch(add_bias_kernel, grid_for(m * n), kThreads, 0, s, x, bias, m * n, n);
  check(cudaGetLastError(), "add_bias_kernel");
}

void launch_add(float* y, const float* x, int64_t n, cudaStream_t s) {
  launch(add_kernel, grid_for(n), kThreads, 0, s, y, x, n);
  check(cudaGetLastError(), "add_kernel");
}

bool launch_swiglu(float* gate, const float* up, int64_t n, RowQuantOut q, cudaStream_t s) {
  if (quantisable(q, 1, n) && aligned16(gate) && aligned16(up)) {
    const auto kernel = q.format == RowQuant::q8_1 ? swiglu_q8_kernel<true> : swiglu_q8_kernel<false>;
    launch(kernel, unsigned((n / 4 + kThreads - 1) / kThreads), kThreads, 0, s, reinterpret_cast<float4*>(gate),
           reinterpret_cast<const float4*>(up), int(n / 4), static_cast<uint8_t*>(q.dst));
    check(cudaGetLastError(), "swiglu_q8_kernel");
    return true;
  }
  launch(swiglu_kernel, grid_for(n), kThreads, 0, s, gate, up, n);
  check(cudaGetLastError(), "swiglu_kernel");
  return false;
}

void launch_kv_store(const PagedKv& kv, int64_t t0, int64_t m, const float* k, const float* v, cudaStream_t s) {
  launch(kv_store_kernel, dim3(unsigned(m), unsigned(kv.n_kv_heads)), 64, 0, s, kv, t0, k, v);
  check(cudaGetLastError(), "kv_store_kernel");
}

void launch_mean_rows(const float* q, int64_t m, int64_t n, float* out, cudaStream_t s) {
  launch(mean_rows_kernel, grid_for(n), kThreads, 0, s, q, m, n, out);
  check(cudaGetLastError(), "mean_rows_kernel");
}

}  // namespace ts::cuda
