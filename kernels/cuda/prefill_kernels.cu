// Element kernels of prefill (chunk) attention around its two cuBLAS products: the gathered,
// rotated fp16 K/V of the attended set, the rotated fp16 queries, the causal softmax per score
// row and the scatter of the output. RoPE as in the decode kernels (rope_cs2, rotate_pair).
#include "decode_kernels.hpp"
#include "device_common.cuh"
#include "exact_math.cuh"
#include "launch.cuh"
#include "prefill_kernels.hpp"

namespace ts::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kSoftmaxThreads = 256;

// Thread p of a head vector holds RoPE pairs 2p and 2p + 1 as x[0..3] = (first, second, first,
// second); this is the element of slot u: adjacent pairs (2i, 2i+1), NEOX pairs (i, i + D/2).
__device__ __forceinline__ int pair_elem(int neox, int half, int p, int u) {
  return neox ? 2 * p + (u >> 1) + (u & 1) * half : 4 * p + u;
}

__device__ __forceinline__ void rope4(const RopeTables& r, int half, int pos, int p, float (&x)[4]) {
  float2 cs[2];
  rope_cs2(r, half, pos, 2 * p, cs[0], cs[1]);
#pragma unroll
  for (int u = 0; u < 2; ++u) rotate_pair(x[2 * u], x[2 * u + 1], cs[u]);
}

__device__ __forceinline__ uint16_t to_half_bits(float x) { return __half_as_ushort(__float2half_rn(x)); }

// Entries of the set below cache index x: the rank of x when x is in it.
__device__ int64_t count_below(const PrefillSet& s, int64_t x) {
  if (!s.keys) return min(max(x, int64_t(0)), s.n_keys);
  int64_t lo = 0, hi = s.n_keys;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (s.keys[mid] < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

// D / 4 threads per (KV head, set entry) row.
__global__ void gather_kernel(PagedKv kv, RopeTables rope, PrefillSet set, uint16_t* kg, uint16_t* vg) {
  pdl_wait();
  const int D = kv.head_dim, tpr = D / 4, p = threadIdx.x % tpr;
  const int64_t row = int64_t(blockIdx.x) * (kThreads / tpr) + threadIdx.x / tpr;
  if (row >= kv.n_kv_heads * set.n_pad) return;
  const int g = int(row / set.n_pad);
  const int64_t j = row % set.n_pad;
  uint16_t* kd = kg + row * D;
  uint2* vd = reinterpret_cast<uint2*>(vg + row * D) + p;
  if (j >= set.n_keys) {
    for (int u = 0; u < 4; ++u) kd[4 * p + u] = 0;
    *vd = make_uint2(0, 0);
    return;
  }
  const int t = set.keys ? set.keys[j] : int(j);
  const int64_t off = kv_offset(kv, g, t);
  float x[4];
#pragma unroll
  for (int u = 0; u < 4; ++u) x[u] = __half2float(__ushort_as_half(kv.k[off + pair_elem(rope.neox, D / 2, p, u)]));
  rope4(rope, D / 2, set.remap ? int(j) : t, p, x);
#pragma unroll
  for (int u = 0; u < 4; ++u) kd[pair_elem(rope.neox, D / 2, p, u)] = to_half_bits(x[u]);
  *vd = *(reinterpret_cast<const uint2*>(kv.v + off) + p);
}

// D / 4 threads per (head, query) row of qg.
__global__ void queries_kernel(const float* q, PrefillBlock b, RopeTables rope, PrefillSet set, uint16_t* qg) {
  pdl_wait();
  const int D = b.head_dim, tpr = D / 4, p = threadIdx.x % tpr;
  const int64_t row = int64_t(blockIdx.x) * (kThreads / tpr) + threadIdx.x / tpr;
  if (row >= b.n_heads * b.mb) return;
  const int64_t h = row / b.mb, i = row % b.mb, t = b.q_first + i;
  const float* src = q + (i * b.n_heads + h) * D;
  float x[4];
#pragma unroll
  for (int u = 0; u < 4; ++u) x[u] = src[pair_elem(rope.neox, D / 2, p, u)];
  rope4(rope, D / 2, int(set.remap ? count_below(set, t) : t), p, x);
#pragma unroll
  for (int u = 0; u < 4; ++u) qg[row * D + pair_elem(rope.neox, D / 2, p, u)] = to_half_bits(x[u]);
}

struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct Sum {
  __device__ float operator()(float a, float b) const { return a + b; }
};

// op over the block's values, returned to every thread.
template <class Op>
__device__ float block_reduce(float v, Op op) {
  __shared__ float part[kSoftmaxThreads / 32];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
  __syncthreads();
  v = part[0];
#pragma unroll
  for (int w = 1; w < kSoftmaxThreads / 32; ++w) v = op(v, part[w]);
  __syncthreads();  // part is free again for the next reduction
  return v;
}

// One block per score row (head h, query i at row h * mb + i).
__global__ void __launch_bounds__(kSoftmaxThreads)
    softmax_kernel(const float* s, PrefillBlock b, PrefillSet set, int64_t ld, int64_t cols, float scale, uint16_t* p) {
  pdl_wait();
  const int64_t row = blockIdx.x;
  const int64_t visible = count_below(set, b.q_first + row % b.mb + 1);
  const float* sr = s + row * ld;
  uint16_t* pr = p + row * ld;
  // The scaled score is rounded before the exp (no fused multiply-add), as on the CPU.
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < visible; j += kSoftmaxThreads) mx = fmaxf(mx, __fmul_rn(sr[j], scale));
  mx = block_reduce(mx, Max{});
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < visible; j += kSoftmaxThreads) sum += expf(__fmul_rn(sr[j], scale) - mx);
  const float inv = 1.f / block_reduce(sum, Sum{});
  // Masked keys get exact zeros: P . V reads every column up to `cols`.
  for (int64_t j = threadIdx.x; j < cols; j += kSoftmaxThreads)
    pr[j] = j < visible ? to_half_bits(expf(__fmul_rn(sr[j], scale) - mx) * inv) : 0;
}

// The same row in the CPU's order (ExactOps::softmax): e = exp_poly(scaled - max) kept in s, the
// folds of its blocks of 8 summed in double in block order (by one thread), p = e * float(1 / sum).
__global__ void __launch_bounds__(kSoftmaxThreads)
    softmax_exact_kernel(float* s, PrefillBlock b, PrefillSet set, int64_t ld, int64_t cols, float scale, uint16_t* p) {
  pdl_wait();
  __shared__ double part[kSoftmaxThreads];
  __shared__ float inv_shared;
  const int64_t row = blockIdx.x;
  const int64_t visible = count_below(set, b.q_first + row % b.mb + 1);
  float* sr = s + row * ld;
  uint16_t* pr = p + row * ld;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < visible; j += kSoftmaxThreads) mx = fmaxf(mx, __fmul_rn(sr[j], scale));
  mx = block_reduce(mx, Max{});
  double sum = 0;  // thread 0's
  const int64_t blocks = (visible + 7) / 8;
  for (int64_t b0 = 0; b0 < blocks; b0 += kSoftmaxThreads) {
    const int64_t blk = b0 + threadIdx.x;
    if (blk < blocks) {
      float e[8];
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const int64_t j = blk * 8 + u;
        e[u] = j < visible ? exp_poly(__fsub_rn(__fmul_rn(sr[j], scale), mx)) : 0.f;
        if (j < visible) sr[j] = e[u];
      }
      part[threadIdx.x] = double(fold8(e));
    }
    __syncthreads();
    if (threadIdx.x == 0)
      for (int i = 0; i < int(min(int64_t(kSoftmaxThreads), blocks - b0)); ++i) sum += part[i];
    __syncthreads();
  }
  if (threadIdx.x == 0) inv_shared = float(1.0 / sum);
  __syncthreads();
  const float inv = inv_shared;
  for (int64_t j = threadIdx.x; j < cols; j += kSoftmaxThreads) pr[j] = j < visible ? to_half_bits(__fmul_rn(sr[j], inv)) : 0;
}

// One thread per 4 outputs, in out's order.
__global__ void scatter_kernel(const float* o, PrefillBlock b, float* out) {
  pdl_wait();
  const int64_t n4 = b.mb * b.n_heads * b.head_dim / 4, idx = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= n4) return;
  const int64_t per_query = b.n_heads * b.head_dim / 4, i = idx / per_query, rem = idx % per_query;
  const int64_t h = rem / (b.head_dim / 4), x = rem % (b.head_dim / 4);
  reinterpret_cast<float4*>(out)[idx] = reinterpret_cast<const float4*>(o)[(h * b.mb + i) * (b.head_dim / 4) + x];
}

unsigned blocks_for(int64_t threads) { return unsigned((threads + kThreads - 1) / kThreads); }

}  // namespace

void launch_prefill_gather(const PagedKv& kv, const RopeTables& rope, const PrefillSet& set, uint16_t* kg,
                           uint16_t* vg, cudaStream_t stream) {
  const int64_t threads = kv.n_kv_heads * set.n_pad * (kv.head_dim / 4);
  launch(gather_kernel, blocks_for(threads), kThreads, 0, stream, kv, rope, set, kg, vg);
  check(cudaGetLastError(), "prefill gather_kernel");
}

void launch_prefill_queries(const float* q, const PrefillBlock& b, const RopeTables& rope, const PrefillSet& set,
                            uint16_t* qg, cudaStream_t stream) {
  const int64_t threads = b.n_heads * b.mb * (b.head_dim / 4);
  launch(queries_kernel, blocks_for(threads), kThreads, 0, stream, q, b, rope, set, qg);
  check(cudaGetLastError(), "prefill queries_kernel");
}

void launch_prefill_softmax(const float* s, const PrefillBlock& b, const PrefillSet& set, int64_t ld, int64_t cols,
                            float scale, uint16_t* p, cudaStream_t stream) {
  launch(softmax_kernel, unsigned(b.n_heads * b.mb), kSoftmaxThreads, 0, stream, s, b, set, ld, cols, scale, p);
  check(cudaGetLastError(), "prefill softmax_kernel");
}

void launch_prefill_softmax_exact(float* s, const PrefillBlock& b, const PrefillSet& set, int64_t ld, int64_t cols,
                                  float scale, uint16_t* p, cudaStream_t stream) {
  launch(softmax_exact_kernel, unsigned(b.n_heads * b.mb), kSoftmaxThreads, 0, stream, s, b, set, ld, cols, scale, p);
  check(cudaGetLastError(), "prefill softmax_exact_kernel");
}

void launch_prefill_scatter(const float* o, const PrefillBlock& b, float* out, cudaStream_t stream) {
  launch(scatter_kernel, blocks_for(b.mb * b.n_heads * b.head_dim / 4), kThreads, 0, stream, o, b, out);
  check(cudaGetLastError(), "prefill scatter_kernel");
}

}  // namespace ts::cuda
