// Split ("flash-decoding") attention of one decode query over the step's attended set, read
// straight from the paged cache: blockIdx.y is a KV head, whose K/V rows are read once for all
// its query heads (GQA); blockIdx.x is a split, a contiguous slice of the attended set. Keys
// are rotated with RoPE at their (remapped or true) positions on the fly, since the cache holds
// them before RoPE (the query comes rotated and scaled from the step launch); both products run
// on the tensor cores. Each split writes (max, sum) and an unnormalised output per head; a
// combine kernel merges the splits.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "decode_kernels.hpp"
#include "device_common.cuh"
#include "launch.cuh"
#include "quantize_q8.cuh"

namespace ts::cuda {
namespace {

constexpr int kAttendThreads = 128;

__global__ void write_key_set_kernel(const StepState* st, const int32_t* sel, int32_t* keys, int n) {
  pdl_wait();
  const KeySet ks = key_set(*st);
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) keys[j] = ks.at(sel, j);
}

// Half-precision words of 16-byte loads, as a flat array.
union Chunk {
  uint4 v;
  uint32_t w[4];
};

// One warp's tile of 8 attended keys as lane (r, c) needs it: key r (chunks c, c+4, ..., before
// RoPE) with its RoPE position, and V of keys 2c, 2c+1 at dims [r*D/8, (r+1)*D/8).
template <int D>
struct Tile {
  uint4 k[D / 32];
  int pos;
  Chunk v[2][D / 64];
};

// A tile's K and V on their way into registers: shared memory in lane-major slots. Each lane
// reads back only what it copied itself, so the asynchronous copies need no barrier, only the
// lane's own wait (the RoPE row, shared by the warp, adds a warp barrier); the next tile
// streams in while this one is computed.
template <int D>
struct Stage {
  uint4 k[D / 32][32];
  uint4 v[2][D / 64][32];
  float4 cs[D / 4];  // relative rotation: the tile start's RoPE row, copied by lanes < D / 4
};

// 16 bytes from global to shared memory, asynchronously, through L1 (a lane's V piece is half a
// sector whose other half the next copy takes); zeros when not valid (src is then not read).
__device__ __forceinline__ void cp_async16(uint4* dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(unsigned(__cvta_generic_to_shared(dst))),
               "l"(src), "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most N of this thread's copy groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Entry j's cache slot; past j1 slot 0 (its copy is masked). Contiguous: the set is [0, T)
// (dense), so entry j is token j at position j.
template <bool Contiguous>
__device__ __forceinline__ int slot_at(const AttendArgs& a, const KeySet& set, int j, int j1) {
  return j >= j1 ? 0 : Contiguous ? kv_slot(a.kv, j) : set.slot_at(a.kv, a.selected_slots, j);
}

// A warp's pair of tiles (16 keys from base): lane l holds key (l & 15)'s row offset in the
// cache (KV head g) and its RoPE position, found once for the pair; each tile's lanes take
// theirs by shuffles. Looking them up per lane and tile (three slots a lane: its key row and two
// value rows) made the addressing the largest part of a tile's instructions.
struct PairRows {
  int64_t off;
  int pos;
};

template <bool Contiguous>
__device__ __forceinline__ PairRows pair_rows(const AttendArgs& a, const KeySet& set, int base, int j1, int g) {
  const int j = base + (threadIdx.x & 15);
  return {kv_slot_offset(a.kv, g, slot_at<Contiguous>(a, set, j, j1)),
          j >= j1 ? 0 : a.remap || Contiguous ? j : set.at(a.selected, j)};
}

__device__ __forceinline__ int64_t shfl_offset(int64_t x, int lane) {
  return __shfl_sync(0xffffffffu, static_cast<long long>(x), lane);
}

// Starts copying tile t (0, 1) of the pair into st, its first key at base (keys past j1 as
// zeros); returns key r's RoPE position. Every lane of the warp calls it.
template <int D>
__device__ __forceinline__ int stage_tile(const AttendArgs& a, const PairRows& rows, int t, int base, int j1,
                                          Stage<D>& st) {
  const int lane = threadIdx.x & 31, r = lane / 4, c = lane % 4;
  const uint16_t* kp = a.kv.k + shfl_offset(rows.off, 8 * t + r);
  const int pos = __shfl_sync(0xffffffffu, rows.pos, 8 * t + r);
  const int j = base + r;
#pragma unroll
  for (int i = 0; i < D / 32; ++i) cp_async16(&st.k[i][lane], kp + (c + 4 * i) * 8, j < j1);
#pragma unroll
  for (int x = 0; x < 2; ++x) {
    const int jv = base + 2 * c + x;
    const uint16_t* vp = a.kv.v + shfl_offset(rows.off, 8 * t + 2 * c + x) + r * (D / 8);
#pragma unroll
    for (int w = 0; w < D / 64; ++w) cp_async16(&st.v[x][w][lane], reinterpret_cast<const uint4*>(vp) + w, jv < j1);
  }
  return pos;
}

template <int D>
__device__ __forceinline__ void read_tile(const Stage<D>& st, int pos, Tile<D>& b) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int i = 0; i < D / 32; ++i) b.k[i] = st.k[i][lane];
#pragma unroll
  for (int x = 0; x < 2; ++x)
#pragma unroll
    for (int w = 0; w < D / 64; ++w) b.v[x][w].v = st.v[x][w][lane];
  b.pos = pos;
}

// C += A.B, mma.sync m16n8k8: a0 = A[r][2c..2c+1], a1 = A[r+8][2c..], b0 = B[2c..2c+1][r].
__device__ __forceinline__ void mma1688(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t b0) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(b0));
}

// The S = Q . K^T A fragments of a lane's query part qf (row r, chunks c + 4i): the query
// rounded to fp16 like the CPU's, so no low part.
template <int D>
__device__ __forceinline__ void pack_query(const float (&qf)[D / 32][8], uint32_t (&qa)[D / 32][2][2]) {
#pragma unroll
  for (int i = 0; i < D / 32; ++i)
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int p = 0; p < 2; ++p) qa[i][u][p] = pack_half2(qf[i][4 * u + 2 * p], qf[i][4 * u + 2 * p + 1]);
}

// Key r of a tile (the lane's chunks c + 4i, fp16) turned by a row of RopeTables::offsets16, in
// fp16 arithmetic with the CPU's operation order (x' = x cos + rn(y * -sin), y' = x sin +
// rn(y cos)), straight into the products' B fragments: no conversions to f32 and back, and
// half the table bytes. The CPU rotates in f32 and rounds the result once; this rounds twice,
// from fp16 (cos, sin): the rotated key is within a couple of fp16 steps of the CPU's.
template <int D>
__device__ __forceinline__ void turn_key16(const uint4 (&k)[D / 32], const uint32_t* row, int neox, int c,
                                           uint32_t (&kw)[D / 32][4]) {
  constexpr int CH = D / 32;
  const auto h2 = [](uint32_t w) { return *reinterpret_cast<const __half2*>(&w); };
  const auto u32 = [](__half2 h) { return *reinterpret_cast<const uint32_t*>(&h); };
  if (!neox) {  // word e of chunk c + 4i: the pair (x, y) = 4(c + 4i) + e
#pragma unroll
    for (int i = 0; i < CH; ++i) {
      const uint4 t = __ldg(reinterpret_cast<const uint4*>(row + (c + 4 * i) * 4));
      const uint32_t tw[4] = {t.x, t.y, t.z, t.w}, kin[4] = {k[i].x, k[i].y, k[i].z, k[i].w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const __half2 xx = h2(__byte_perm(kin[e], 0, 0x1010)), yy = h2(__byte_perm(kin[e], 0, 0x3232));
        const __half2 nsc = h2(__byte_perm(tw[e], 0, 0x1032) ^ 0x8000u);  // (-sin, cos)
        kw[i][e] = u32(__hfma2(xx, h2(tw[e]), __hmul2(yy, nsc)));
      }
    }
  } else {  // word e of chunk c + 4i: the x of pairs 8(c + 4i) + 2e, + 1; chunk i + CH/2: their y
#pragma unroll
    for (int i = 0; i < CH / 2; ++i) {
      const uint4* tp = reinterpret_cast<const uint4*>(row + (c + 4 * i) * 8);
      const uint4 t0 = __ldg(tp), t1 = __ldg(tp + 1);
      const uint32_t tw[8] = {t0.x, t0.y, t0.z, t0.w, t1.x, t1.y, t1.z, t1.w};
      const uint32_t xs[4] = {k[i].x, k[i].y, k[i].z, k[i].w};
      const uint32_t ys[4] = {k[i + CH / 2].x, k[i + CH / 2].y, k[i + CH / 2].z, k[i + CH / 2].w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const uint32_t cw = __byte_perm(tw[2 * e], tw[2 * e + 1], 0x5410), sw = __byte_perm(tw[2 * e], tw[2 * e + 1], 0x7632);
        const __half2 x = h2(xs[e]), y = h2(ys[e]);
        kw[i][e] = u32(__hfma2(x, h2(cw), __hmul2(y, h2(sw ^ 0x80008000u))));
        kw[i + CH / 2][e] = u32(__hfma2(x, h2(sw), __hmul2(y, h2(cw))));
      }
    }
  }
}

// The split's keys [j0, j1), taken by the block's warps in tiles of 8, a warp's tiles in
// adjacent pairs (warp w: tiles 2w, 2w + 1, then 2w + 2 NW, ...): S, the online softmax and O^T
// (see attend_split_kernel), accumulated into m, l and o.
//
// Relative (the keys' positions are their indices j: dense, or remapped ranks): a pair's keys
// sit at base + 8t + r, and S = (R(base)^T q) . (R(8t + r) k). So each key turns by its offset
// in the pair (RoPE table rows 0..15, which stay in L1) and the query (rotated at its position,
// in sq) turns back by base once per pair, by the base's row staged with the pair's first tile.
// Rotating every key at its own position read a 512-byte table row per key at d 128, as many
// bytes as the key and its value: that held dense decode at 63% of copy (measured: 82% with the
// table reads out of the way). The turn by the offset runs in fp16 (turn_key16). Otherwise qa
// is the query and keys turn at their positions, in f32.
template <int D, int G, bool Contiguous, bool Relative>
__device__ __forceinline__ void attend_keys(const AttendArgs& a, const KeySet& set, int j0, int j1, int g,
                                            const float4 (*sq)[32], Stage<D> (&stage)[2],
                                            uint32_t (&qa)[D / 32][2][2], float& m, float& l,
                                            float (&o)[D / 16][4]) {
  constexpr int CH = D / 32, NW = kAttendThreads / 32, VW = D / 16;
  const int lane = threadIdx.x & 31, r = lane / 4, c = lane % 4, warp = threadIdx.x >> 5;
  // The query's turn back by the tile start reads that position's RoPE row: staged with the
  // tile, so that its latency (an L2 read: every tile starts at a new position) is hidden too.
  const auto stage_row = [&](int tile_base, Stage<D>& st) {
    if (Relative && lane < D / 4)
      cp_async16(reinterpret_cast<uint4*>(&st.cs[lane]), a.rope.cs + int64_t(tile_base) * D + 4 * lane, true);
  };
  const auto tile_at = [&](int it) { return j0 + 8 * (2 * warp + (it & 1)) + 16 * NW * (it >> 1); };
  int base = tile_at(0);
  int pos = 0;
  PairRows rows{0, 0};
  if (base < j1) {
    rows = pair_rows<Contiguous>(a, set, base, j1, g);
    pos = stage_tile<D>(a, rows, 0, base, j1, stage[0]);
    stage_row(base, stage[0]);
  }
  cp_async_commit();
  for (int it = 0; base < j1; ++it) {
    const int next = tile_at(it + 1);
    if (Relative) __syncwarp();  // every lane has read the row that the next pair's overwrites
    int pos_next = 0;
    if (next < j1) {
      if ((it & 1) == 1) rows = pair_rows<Contiguous>(a, set, next, j1, g);  // a pair's first tile
      pos_next = stage_tile<D>(a, rows, (it + 1) & 1, next, j1, stage[(it + 1) & 1]);
      if ((it & 1) == 1) stage_row(next, stage[(it + 1) & 1]);
    }
    cp_async_commit();
    cp_async_wait<1>();  // this tile's copies (the lane's own) have landed
    if (Relative) __syncwarp();  // and the RoPE row, copied by other lanes
    Tile<D> cur;
    read_tile<D>(stage[it & 1], pos, cur);
    pos = pos_next;
    if (Relative && (it & 1) == 0) {
      float qf[CH][8];
#pragma unroll
      for (int k = 0; k < 2 * CH; ++k) {
        const float4 v = sq[k][lane];
        qf[k / 2][(k % 2) * 4] = v.x;
        qf[k / 2][(k % 2) * 4 + 1] = v.y;
        qf[k / 2][(k % 2) * 4 + 2] = v.z;
        qf[k / 2][(k % 2) * 4 + 3] = v.w;
      }
      rope_chunks_row<D, true, true>(qf, reinterpret_cast<const float*>(stage[it & 1].cs), a.rope.neox, c);
      pack_query<D>(qf, qa);
    }
    // Key r, rotated and rounded to fp16 (as the CPU's attention does), then S.
    uint32_t kw[CH][4];
    if (Relative) {
      turn_key16<D>(cur.k, a.rope.offsets16 + (8 * (it & 1) + r) * (D / 2), a.rope.neox, c, kw);
    } else {
      float kf[CH][8];
#pragma unroll
      for (int i = 0; i < CH; ++i) unpack8(cur.k[i], kf[i]);
      rope_chunks<D>(kf, a.rope, cur.pos, c);
#pragma unroll
      for (int i = 0; i < CH; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) kw[i][e] = pack_half2(kf[i][2 * e], kf[i][2 * e + 1]);
    }
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int i = 0; i < CH; ++i) {
      mma16816(acc, qa[i][0][0], 0u, qa[i][0][1], 0u, kw[i][0], kw[i][1]);
      mma16816(acc, qa[i][1][0], 0u, qa[i][1][1], 0u, kw[i][2], kw[i][3]);
    }
    const float s0 = base + 2 * c < j1 ? acc[0] : -INFINITY, s1 = base + 2 * c + 1 < j1 ? acc[1] : -INFINITY;
    // Online softmax of row r over the tile (lanes 4r..4r+3 hold 2 keys each).
    float bm = fmaxf(s0, s1);
    bm = fmaxf(bm, __shfl_xor_sync(0xffffffffu, bm, 1));
    bm = fmaxf(bm, __shfl_xor_sync(0xffffffffu, bm, 2));
    const float m_new = fmaxf(m, bm);
    const float corr = m == -INFINITY ? 0.f : __expf(m - m_new);
    // The fp16 probabilities feed the product; the sum uses the same rounded values.
    const uint32_t pb = pack_half2(s0 == -INFINITY ? 0.f : __expf(s0 - m_new), s1 == -INFINITY ? 0.f : __expf(s1 - m_new));
    const float2 pr = __half22float2(*reinterpret_cast<const __half2*>(&pb));
    l = l * corr + pr.x + pr.y;
    m = m_new;
    // O^T columns are heads 2c and 2c+1: their corrections live in lanes 8c and 8c + 4. Once the
    // maxima settle, a tile rarely raises one: skip the rescale when no row's did (corr 1).
    if (__any_sync(0xffffffffu, corr != 1.f)) {
      const float corr0 = __shfl_sync(0xffffffffu, corr, 8 * c), corr1 = __shfl_sync(0xffffffffu, corr, 8 * c + 4);
#pragma unroll
      for (int s = 0; s < VW; ++s) {
        o[s][0] *= corr0;
        o[s][1] *= corr1;
        o[s][2] *= corr0;
        o[s][3] *= corr1;
      }
    }
#pragma unroll
    for (int s = 0; s < VW; ++s) {
      const uint32_t w0 = cur.v[0][s / 4].w[s % 4], w1 = cur.v[1][s / 4].w[s % 4];
      mma1688(o[s], __byte_perm(w0, w1, 0x5410), __byte_perm(w0, w1, 0x7632), pb);
    }
    base = next;
  }
  cp_async_wait<0>();  // the stages may be reused
}

// The split kernel on the tensor cores. Per warp and tile of 8 attended keys: S = Q . K^T as in
// scoring (query_fragments; the query rounded to fp16 like the CPU's, so no low part), with key
// r rotated in registers at its position; the online softmax per head (row r of S, shared by
// lanes 4r..4r+3); then O^T += V^T . P^T (m16n8k8), whose B fragment is the lane's own pair of
// probabilities (row r of S is column r of P^T) and whose A fragments are V read in 16-byte
// pieces: lane (r, c) reads keys 2c, 2c+1 at dims [r*D/8, (r+1)*D/8), so row r of slab s of
// V^T is dim r*D/8 + 2s and row r+8 is dim r*D/8 + 2s + 1.
template <int D, int G>
// Resident blocks: 4 for d 64 (112 registers); 3 for d 128, where a cap of 128 registers spilled
// and ran 15% slower (measured).
__global__ void __launch_bounds__(kAttendThreads, D == 128 ? 3 : 4) attend_split_kernel(AttendArgs a) {
  pdl_wait();
  constexpr int CH = D / 32, NW = kAttendThreads / 32, VW = D / 16;  // V slabs of 16 dims
  const StepState& st = *a.state;
  const KeySet set = key_set(st);
  const int n_keys = set.size();
  const int g = blockIdx.y;
  const int lane = threadIdx.x & 31, r = lane / 4, c = lane % 4, warp = threadIdx.x >> 5;
  const int chunk = (n_keys + gridDim.x - 1) / gridDim.x;
  const int j0 = min(n_keys, int(blockIdx.x) * chunk), j1 = min(n_keys, j0 + chunk);

  // Query row r (head g*G + r), already scaled and rotated at its position by the step launch.
  float qf[CH][8];
#pragma unroll
  for (int i = 0; i < CH; ++i)
#pragma unroll
    for (int e = 0; e < 8; e += 4) {
      const float4 v = r < G ? *reinterpret_cast<const float4*>(a.q + (g * G + r) * D + (c + 4 * i) * 8 + e)
                             : make_float4(0.f, 0.f, 0.f, 0.f);
      qf[i][e] = v.x;
      qf[i][e + 1] = v.y;
      qf[i][e + 2] = v.z;
      qf[i][e + 3] = v.w;
    }
  uint32_t qa[CH][2][2];
  pack_query<D>(qf, qa);
  __shared__ float4 sq[2 * CH][32];  // qf of every lane, for the relative rotation
  const bool relative = st.plan == kPlanDense || a.remap;
  if (relative && warp == 0)
#pragma unroll
    for (int k = 0; k < 2 * CH; ++k)
      sq[k][lane] = make_float4(qf[k / 2][(k % 2) * 4], qf[k / 2][(k % 2) * 4 + 1], qf[k / 2][(k % 2) * 4 + 2],
                                qf[k / 2][(k % 2) * 4 + 3]);
  __syncthreads();

  float m = -INFINITY, l = 0.f;  // row r's running max and this lane's part of its sum
  float o[VW][4];                // O^T slab s: (dim r*D/8+2s | +1) x (heads 2c, 2c+1)
#pragma unroll
  for (int s = 0; s < VW; ++s) o[s][0] = o[s][1] = o[s][2] = o[s][3] = 0.f;

  // Per warp: two tile stages while attending, its rows of the merge afterwards. Dim d of a row
  // sits at column d + d / (D / 8), rows kRow apart: the 32 lanes' stores below (lane (r, c):
  // head 2c (+1), dims r D/8 + 2s (+1)) then fall in 32 distinct banks (16-way conflicts without).
  constexpr int kRow = D == 128 ? 140 : 84;
  static_assert(D - 1 + (D - 1) / (D / 8) < kRow, "a padded row holds its last column");
  const auto col = [](int d) { return d + d / (D / 8); };
  struct WarpSmem {
    union {
      Stage<D> stage[2];
      float o[8][kRow];
    };
  };
  __shared__ WarpSmem wsm[NW];
  if (st.plan == kPlanDense)
    attend_keys<D, G, true, true>(a, set, j0, j1, g, sq, wsm[warp].stage, qa, m, l, o);
  else if (a.remap)
    attend_keys<D, G, false, true>(a, set, j0, j1, g, sq, wsm[warp].stage, qa, m, l, o);
  else
    attend_keys<D, G, false, false>(a, set, j0, j1, g, sq, wsm[warp].stage, qa, m, l, o);
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);

  // Merge the warps through shared memory: per head, the warps' maximum and weights are found
  // once (threads < G), then every output element sums the warps' rows with them.
  __shared__ float sm_ml[NW][8][2];
  __shared__ float sm_wt[NW][8], sm_head[8][2];  // exp(m_w - max) per warp and head; (max, sum)
  if (c == 0) {
    sm_ml[warp][r][0] = m;
    sm_ml[warp][r][1] = l;
  }
#pragma unroll
  for (int s = 0; s < VW; ++s) {
    const int d0 = col(r * (D / 8) + 2 * s);
    wsm[warp].o[2 * c][d0] = o[s][0];
    wsm[warp].o[2 * c + 1][d0] = o[s][1];
    wsm[warp].o[2 * c][d0 + 1] = o[s][2];
    wsm[warp].o[2 * c + 1][d0 + 1] = o[s][3];
  }
  __syncthreads();
  if (threadIdx.x < G) {
    const int hh = threadIdx.x;
    float mm = -INFINITY, ll = 0.f;
#pragma unroll
    for (int w = 0; w < NW; ++w) mm = fmaxf(mm, sm_ml[w][hh][0]);
#pragma unroll
    for (int w = 0; w < NW; ++w) {  // a warp without keys weighs 0 (its row and sum are 0)
      const float wt = sm_ml[w][hh][0] == -INFINITY ? 0.f : __expf(sm_ml[w][hh][0] - mm);
      sm_wt[w][hh] = wt;
      ll += sm_ml[w][hh][1] * wt;
    }
    sm_head[hh][0] = mm;
    sm_head[hh][1] = ll;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * D; idx += blockDim.x) {
    const int hh = idx / D, e = idx % D;
    float acc = 0.f;
#pragma unroll
    for (int w = 0; w < NW; ++w) acc += wsm[w].o[hh][col(e)] * sm_wt[w][hh];
    const int64_t row = int64_t(blockIdx.x) * a.n_heads + g * G + hh;
    a.part_o[row * D + e] = acc;
    if (e == 0) a.part_ml[row] = make_float2(sm_head[hh][0], sm_head[hh][1]);
  }
}

// out[h] = the splits' outputs merged by their softmax statistics. Block (h, x) covers 32
// elements of head h; its 8 rows of threads take every 8th split, then add up. With Q, the first
// row (one warp: one block of 32 values) also quantises them into q for the output projection.
// A row's first kAhead splits are loaded before their maximum is known, so that the merge of up
// to 8 kAhead splits waits on one round of reads: the statistics and the outputs together.
template <RowQuant Q>
__global__ void __launch_bounds__(256) attend_combine_kernel(const float* part_o, const float2* part_ml, int splits,
                                                             int n_heads, int d, float* out, uint8_t* q) {
  constexpr int kAhead = 8;
  pdl_wait();
  __shared__ float red[8][32][2];
  __shared__ float warp_max[8];
  const int h = blockIdx.x, e = blockIdx.y * 32 + threadIdx.x;
  float2 ml[kAhead];
  float po[kAhead];
#pragma unroll
  for (int k = 0; k < kAhead; ++k) {
    const int s = threadIdx.y + 8 * k;
    ml[k] = s < splits ? part_ml[int64_t(s) * n_heads + h] : make_float2(-INFINITY, 0.f);
    po[k] = s < splits ? part_o[(int64_t(s) * n_heads + h) * d + e] : 0.f;
  }
  // The splits' maximum: the row's own (every lane of a warp holds the same splits), then across
  // the 8 rows (one barrier).
  float mm = -INFINITY;
  for (int s = threadIdx.y + 8 * kAhead; s < splits; s += 8) mm = fmaxf(mm, part_ml[int64_t(s) * n_heads + h].x);
#pragma unroll
  for (int k = 0; k < kAhead; ++k) mm = fmaxf(mm, ml[k].x);
  if (threadIdx.x == 0) warp_max[threadIdx.y] = mm;
  __syncthreads();
#pragma unroll
  for (int w = 0; w < 8; ++w) mm = fmaxf(mm, warp_max[w]);
  float ll = 0.f, acc = 0.f;
#pragma unroll
  for (int k = 0; k < kAhead; ++k) {
    const float w = ml[k].x == -INFINITY ? 0.f : __expf(ml[k].x - mm);
    ll += ml[k].y * w;
    acc += po[k] * w;
  }
  for (int s = threadIdx.y + 8 * kAhead; s < splits; s += 8) {
    const float2 m2 = part_ml[int64_t(s) * n_heads + h];
    const float w = m2.x == -INFINITY ? 0.f : __expf(m2.x - mm);
    ll += m2.y * w;
    acc += part_o[(int64_t(s) * n_heads + h) * d + e] * w;
  }
  red[threadIdx.y][threadIdx.x][0] = ll;
  red[threadIdx.y][threadIdx.x][1] = acc;
  __syncthreads();
  if (threadIdx.y == 0) {
    for (int r = 1; r < 8; ++r) {
      ll += red[r][threadIdx.x][0];
      acc += red[r][threadIdx.x][1];
    }
    const float v[1] = {acc / ll};
    out[h * d + e] = v[0];
    if (Q != RowQuant::none) quantize_q8_part<Q == RowQuant::q8_1, 1>(v, int64_t(h) * d + e, q, true);
  }
}

}  // namespace

void launch_attend(const AttendArgs& a, cudaStream_t stream) {
  const int group = a.n_heads / a.kv.n_kv_heads;
  if (a.n_heads % a.kv.n_kv_heads != 0 || group < 1 || group > kMaxGroup)
    throw std::runtime_error("CUDA attention: unsupported head layout");
  const dim3 grid(unsigned(a.splits), unsigned(a.kv.n_kv_heads));
  if (a.kv.head_dim != 64 && a.kv.head_dim != 128)
    throw std::runtime_error("CUDA attention: head_dim must be 64 or 128 (got " + std::to_string(a.kv.head_dim) + ")");
  dispatch_group(group, [&](auto gc) {
    if (a.kv.head_dim == 64)
      launch(attend_split_kernel<64, decltype(gc)::value>, grid, kAttendThreads, 0, stream, a);
    else
      launch(attend_split_kernel<128, decltype(gc)::value>, grid, kAttendThreads, 0, stream, a);
  });
  check(cudaGetLastError(), "attend_split_kernel");
  const auto combine = a.out_q.format == RowQuant::q8_0   ? attend_combine_kernel<RowQuant::q8_0>
                       : a.out_q.format == RowQuant::q8_1 ? attend_combine_kernel<RowQuant::q8_1>
                                                          : attend_combine_kernel<RowQuant::none>;
  launch(combine, dim3(unsigned(a.n_heads), unsigned(a.kv.head_dim / 32)), dim3(32, 8), 0, stream, a.part_o,
         a.part_ml, a.splits, a.n_heads, a.kv.head_dim, a.out, static_cast<uint8_t*>(a.out_q.dst));
  check(cudaGetLastError(), "attend_combine_kernel");
}

void launch_write_key_set(const StepState* state, const int32_t* selected, int32_t* keys, int64_t n,
                          cudaStream_t stream) {
  launch(write_key_set_kernel, unsigned(std::min<int64_t>((n + 255) / 256, 1024)), 256, 0, stream, state, selected,
         keys, int(n));
  check(cudaGetLastError(), "write_key_set_kernel");
}

}  // namespace ts::cuda

namespace ts::cuda {

int attend_blocks_per_sm(int head_dim, int group) {
  int blocks = 1;
  dispatch_group(group, [&](auto gc) {
    constexpr int G = decltype(gc)::value;
    const void* f = head_dim == 64 ? reinterpret_cast<const void*>(attend_split_kernel<64, G>)
                                   : reinterpret_cast<const void*>(attend_split_kernel<128, G>);
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, kAttendThreads, 0),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  });
  return blocks;
}

}  // namespace ts::cuda
