// Device helpers shared by the decode kernels: paged-cache addressing, 16-byte fp16 loads,
// RoPE from the two-level tables, and merging (max, sum) softmax statistics.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "decode_types.hpp"

namespace ts::cuda {

// Element offset of token t, KV head g, in a paged pool (keys and values share the layout).
__device__ __forceinline__ int64_t kv_offset(const PagedKv& kv, int g, int t) {
  const int64_t page = kv.page_table[t >> kv.page_shift];
  const int64_t row = ((page * kv.n_kv_heads + g) << kv.page_shift) + (t & ((1 << kv.page_shift) - 1));
  return row * kv.head_dim;
}

// Eight consecutive fp16 values (16 bytes, read through the non-coherent cache) as floats.
__device__ __forceinline__ void load8(const uint16_t* p, float (&x)[8]) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
  const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(h[i]);
    x[2 * i] = f.x;
    x[2 * i + 1] = f.y;
  }
}

// (cos, sin) of pairs i and i+1 at position pos (i even): lo(pos & 63) rotated by hi(pos >> 6),
// read as one 16-byte load from each table.
__device__ __forceinline__ void rope_cs2(const RopeTables& r, int half, int pos, int i, float2& a, float2& b) {
  const float4 lo = __ldg(reinterpret_cast<const float4*>(r.lo + 2 * ((pos & 63) * half + i)));
  const float4 hi = __ldg(reinterpret_cast<const float4*>(r.hi + 2 * (int64_t(pos >> kRopeLoBits) * half + i)));
  a = make_float2(hi.x * lo.x - hi.y * lo.y, hi.y * lo.x + hi.x * lo.y);
  b = make_float2(hi.z * lo.z - hi.w * lo.w, hi.w * lo.z + hi.z * lo.w);
}

// Rotates the 8 elements [8 * li, 8 * li + 8) of a head vector of D elements held by lane
// group member li (L = D / 8 lanes hold one vector). Adjacent pairs lie inside a lane; NEOX
// pairs (i, i + D/2) lie in lanes li and li ^ (L/2), exchanged by shuffles. All 32 lanes call.
template <int D>
__device__ __forceinline__ void rope8(float (&x)[8], const RopeTables& r, int pos, int li) {
  constexpr int L = D / 8, half = D / 2;
  if (!r.neox) {
#pragma unroll
    for (int i = 0; i < 4; i += 2) {
      float2 cs[2];
      rope_cs2(r, half, pos, li * 4 + i, cs[0], cs[1]);
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const float a = x[2 * (i + u)], b = x[2 * (i + u) + 1];
        x[2 * (i + u)] = a * cs[u].x - b * cs[u].y;
        x[2 * (i + u) + 1] = b * cs[u].x + a * cs[u].y;
      }
    }
  } else {
    const bool first = li < L / 2;
    const int pair0 = first ? li * 8 : li * 8 - half;
#pragma unroll
    for (int i = 0; i < 8; i += 2) {
      float2 cs[2];
      rope_cs2(r, half, pos, pair0 + i, cs[0], cs[1]);
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const float partner = __shfl_xor_sync(0xffffffffu, x[i + u], L / 2);
        x[i + u] = first ? x[i + u] * cs[u].x - partner * cs[u].y : x[i + u] * cs[u].x + partner * cs[u].y;
      }
    }
  }
}

// Sum over the L lanes that hold one vector (L a power of two, groups aligned in the warp).
template <int L>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int o = L / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Softmax statistics (max m, sum s of exp(x - m)); merging is associative.
__device__ __forceinline__ float2 merge_stats(float2 a, float2 b) {
  if (a.x == -INFINITY) return b;
  if (b.x == -INFINITY) return a;
  const float m = fmaxf(a.x, b.x);
  return make_float2(m, a.y * __expf(a.x - m) + b.y * __expf(b.x - m));
}

// Calls f(std::integral_constant<int, G>{}) for the group size G in [1, kMaxGroup], so kernels
// keep exactly G query heads' registers.
template <class F>
void dispatch_group(int group, F&& f) {
  switch (group) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    case 8: return f(std::integral_constant<int, 8>{});
  }
}

}  // namespace ts::cuda
