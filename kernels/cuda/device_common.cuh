// Device helpers shared by the decode kernels: paged-cache addressing, a step's attended set,
// fp16 unpacking, RoPE from the tables, (max, sum) softmax statistics, and the tensor-core products with
// their fragment layouts.
#pragma once
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <type_traits>

#include "decode_types.hpp"

namespace ts::cuda {

// Token t's slot in a paged pool: its physical page << kPageShift | its offset in the page.
__device__ __forceinline__ int kv_slot(const PagedKv& kv, int t) {
  return (kv.page_table[t >> kPageShift] << kPageShift) | (t & ((1 << kPageShift) - 1));
}

// Element offset of slot s, KV head g (keys and values share the layout).
__device__ __forceinline__ int64_t kv_slot_offset(const PagedKv& kv, int g, int s) {
  const int64_t row = ((int64_t(s >> kPageShift) * kv.n_kv_heads + g) << kPageShift) + (s & ((1 << kPageShift) - 1));
  return row * kv.head_dim;
}

// Element offset of token t, KV head g.
__device__ __forceinline__ int64_t kv_offset(const PagedKv& kv, int g, int t) {
  return kv_slot_offset(kv, g, kv_slot(kv, t));
}

// The attended set of a step: [0, n_sink) ∪ selected[0, n_sel) ∪ [tail, T).
struct KeySet {
  int n_sink, n_sel, tail, T;
  // The set a plan attends, from the state's fields as the step launch leaves them.
  __device__ static KeySet of(int plan, int T, int c0, int n_sel, int sel_local_start) {
    if (plan == kPlanDense) return {T, 0, T, T};
    // A reused selection was made when the local window started earlier: the tokens that left
    // the window since are attended too (as on the CPU).
    return {c0, n_sel, max(sel_local_start, c0), T};
  }
  __device__ int size() const { return n_sink + n_sel + (T - tail); }
  __device__ int at(const int32_t* sel, int j) const {
    return j < n_sink ? j : j < n_sink + n_sel ? sel[j - n_sink] : tail + (j - n_sink - n_sel);
  }
  // Its cache slot: a selected token's is stored with the selection (no page-table read).
  __device__ int slot_at(const PagedKv& kv, const int32_t* slots, int j) const {
    return j < n_sink ? kv_slot(kv, j) : j < n_sink + n_sel ? slots[j - n_sink] : kv_slot(kv, tail + (j - n_sink - n_sel));
  }
};

__device__ __forceinline__ KeySet key_set(const StepState& st) {
  return KeySet::of(st.plan, st.T, st.c0, st.n_sel, st.sel_local_start);
}

// Eight fp16 values held in 16 bytes, as floats.
__device__ __forceinline__ void unpack8(const uint4& u, float (&x)[8]) {
  const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(h[i]);
    x[2 * i] = f.x;
    x[2 * i + 1] = f.y;
  }
}

// fp16 to fp8 e4m3 (round to nearest even, saturating at +-448): the keys' scoring copy.
__device__ __forceinline__ uint8_t half_to_e4m3(__half h) {
  return __nv_cvt_halfraw_to_fp8(static_cast<__half_raw>(h), __NV_SATFINITE, __NV_E4M3);
}

// Eight e4m3 values (lo: the first four bytes) as eight fp16 values in 16 bytes; exact.
__device__ __forceinline__ uint4 e4m3x8_to_half8(uint32_t lo, uint32_t hi) {
  const auto two = [](uint32_t b) {
    const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(b), __NV_E4M3);
    return uint32_t(h.x) | uint32_t(h.y) << 16;
  };
  return make_uint4(two(lo & 0xffffu), two(lo >> 16), two(hi & 0xffffu), two(hi >> 16));
}

// (cos, sin) of pairs i and i+1 at position pos (i even): one 16-byte load.
__device__ __forceinline__ void rope_cs2(const RopeTables& r, int half, int pos, int i, float2& a, float2& b) {
  const float4 v = __ldg(reinterpret_cast<const float4*>(r.cs + 2 * (int64_t(pos) * half + i)));
  a = make_float2(v.x, v.y);
  b = make_float2(v.z, v.w);
}

// Rotates the pair (a, b) by (cos, sin) with the CPU's operation order (kernels/cpu/exact_ops:
// one product rounded, then a fused multiply-add), so that results match it bit for bit.
__device__ __forceinline__ void rotate_pair(float& a, float& b, float2 cs) {
  const float na = fmaf(a, cs.x, __fmul_rn(b, -cs.y));
  const float nb = fmaf(a, cs.y, __fmul_rn(b, cs.x));
  a = na;
  b = nb;
}

// Rotates the chunks c + 4i (i < CH = D/32, 8 elements each) of one head vector that a lane
// holds (the query_fragments order) by one position's (cos, sin) row (half = D/2 pairs, as in
// RopeTables; in global memory, or in shared memory with Shared), or back by it (Inverse).
// Adjacent pairs lie inside a chunk; the NEOX partner of chunk c + 4i is chunk c + 4(i + CH/2),
// held by the same lane.
template <int D, bool Inverse = false, bool Shared = false>
__device__ __forceinline__ void rope_chunks_row(float (&x)[D / 32][8], const float* row, int neox, int c) {
  constexpr int CH = D / 32;
  const auto dir = [](float2 cs) { return Inverse ? make_float2(cs.x, -cs.y) : cs; };
  // (cos, sin) of pairs i and i + 1 (i even): one 16-byte load.
  const auto cs2 = [row](int i, float2 (&cs)[2]) {
    const float4* p = reinterpret_cast<const float4*>(row + 2 * i);
    const float4 v = Shared ? *p : __ldg(p);
    cs[0] = make_float2(v.x, v.y);
    cs[1] = make_float2(v.z, v.w);
  };
  if (!neox) {
#pragma unroll
    for (int i = 0; i < CH; ++i)
#pragma unroll
      for (int p = 0; p < 4; p += 2) {
        float2 cs[2];
        cs2((c + 4 * i) * 4 + p, cs);
#pragma unroll
        for (int u = 0; u < 2; ++u) rotate_pair(x[i][2 * (p + u)], x[i][2 * (p + u) + 1], dir(cs[u]));
      }
  } else {
#pragma unroll
    for (int i = 0; i < CH / 2; ++i)
#pragma unroll
      for (int e = 0; e < 8; e += 2) {
        float2 cs[2];
        cs2((c + 4 * i) * 8 + e, cs);
#pragma unroll
        for (int u = 0; u < 2; ++u) rotate_pair(x[i][e + u], x[i + CH / 2][e + u], dir(cs[u]));
      }
  }
}

// rope_chunks_row with the table's row of position pos.
template <int D, bool Inverse = false>
__device__ __forceinline__ void rope_chunks(float (&x)[D / 32][8], const RopeTables& r, int pos, int c) {
  rope_chunks_row<D, Inverse>(x, r.cs + int64_t(pos) * D, r.neox, c);
}

// Softmax statistics (max m, sum s of exp(x - m)); merging is associative.
__device__ __forceinline__ float2 merge_stats(float2 a, float2 b) {
  if (a.x == -INFINITY) return b;
  if (b.x == -INFINITY) return a;
  const float m = fmaxf(a.x, b.x);
  return make_float2(m, a.y * __expf(a.x - m) + b.y * __expf(b.x - m));
}

// C += A.B on the tensor cores (mma.sync m16n8k16, fp16 inputs, fp32 accumulators). A is
// 16 x 16 row-major, B 16 x 8 column-major, in the PTX fragment order: with r = lane / 4 and
// c = lane % 4, a0 = A[r][2c..2c+1], a1 = A[r+8][2c..], a2 = A[r][2c+8..], a3 = A[r+8][2c+8..];
// b0 = B[2c..2c+1][r], b1 = B[2c+8..2c+9][r]; c0..1 = C[r][2c..2c+1], c2..3 = C[r+8][2c..].
__device__ __forceinline__ void mma16816(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_half2(float a, float b) {
  const __half2 h = __floats2half2_rn(a, b);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// Query fragments of the m16n8k16 products S = Q . K^T used by scoring and attention. The dot
// product may visit the head dimensions in any order, so lane (r, c) loads whole 16-byte chunks
// c, c+4, ... (CH = D/32 of them) of one key, which are the B fragments as they are: chunk i,
// half u covers dims 8(c+4i) + 4u + {0,1} (b0) and + {2,3} (b1). The query rows (heads) follow
// the same order. q holds row r's CH x 8 values of those chunks; rows >= G are zero. The query
// is split into fp16 high and low parts ([..][0] and [..][1]) so that two products keep fp32
// accuracy against fp16 keys.
template <int CH>
__device__ __forceinline__ void query_fragments(const float (&q)[CH][8], uint32_t (&qa)[CH][2][2][2]) {
#pragma unroll
  for (int i = 0; i < CH; ++i)
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int p = 0; p < 2; ++p) {
        const float x0 = q[i][4 * u + 2 * p], x1 = q[i][4 * u + 2 * p + 1];
        const __half h0 = __float2half_rn(x0), h1 = __float2half_rn(x1);
        qa[i][u][p][0] = pack_half2(__half2float(h0), __half2float(h1));
        qa[i][u][p][1] = pack_half2(x0 - __half2float(h0), x1 - __half2float(h1));
      }
}

// S[r][2c..2c+1] (acc[0..1]) of one 8-key tile whose key r chunks this lane holds in k; with
// the query's high part only when Parts is 1 (keys coarser than fp16 gain nothing from the low).
template <int CH, int Parts = 2>
__device__ __forceinline__ void tile_scores(float (&acc)[4], const uint32_t (&qa)[CH][2][2][2], const uint4 (&k)[CH]) {
#pragma unroll
  for (int i = 0; i < CH; ++i)
#pragma unroll
    for (int hl = 0; hl < Parts; ++hl) {
      mma16816(acc, qa[i][0][0][hl], 0u, qa[i][0][1][hl], 0u, k[i].x, k[i].y);
      mma16816(acc, qa[i][1][0][hl], 0u, qa[i][1][1][hl], 0u, k[i].z, k[i].w);
    }
}

// Calls f(std::integral_constant<int, N>{}) for n in [1, 8], so that kernels keep exactly N
// heads' or rows' registers; false for any other n.
template <class F>
bool dispatch_1_to_8(int n, F&& f) {
  switch (n) {
    case 1: f(std::integral_constant<int, 1>{}); return true;
    case 2: f(std::integral_constant<int, 2>{}); return true;
    case 3: f(std::integral_constant<int, 3>{}); return true;
    case 4: f(std::integral_constant<int, 4>{}); return true;
    case 5: f(std::integral_constant<int, 5>{}); return true;
    case 6: f(std::integral_constant<int, 6>{}); return true;
    case 7: f(std::integral_constant<int, 7>{}); return true;
    case 8: f(std::integral_constant<int, 8>{}); return true;
  }
  return false;
}

// The group size G (query heads per KV head) in [1, kMaxGroup].
template <class F>
void dispatch_group(int group, F&& f) {
  static_assert(kMaxGroup == 8);
  dispatch_1_to_8(group, f);
}

}  // namespace ts::cuda
