// TokenSelect on the device, per layer and decode step (DESIGN.md "the algorithm contract"):
// plan (dense / reuse the cached selection / select), scoring of every candidate key against
// the fingerprint with per-head softmax statistics in the same pass, the soft vote, and an
// exact top-k by radix select over the votes' bits (11 + 11 + 10 bits), compacted in position
// order: one cooperative launch per layer, its phases separated by grid-wide barriers. Fixed
// grids with grid-stride loops: the launch shapes never depend on T, so one captured graph
// serves every step.
#include <cooperative_groups.h>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "decode_kernels.hpp"
#include "device_common.cuh"
#include "launch.cuh"

namespace ts::cuda {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 256, kWarps = kThreads / 32;
constexpr int kHistBins = 2048;  // radix digits of 11, 11 and 10 bits
static_assert(kSelectHistBins == kHistBins * 2 + kHistBins / 2, "the three digits' histograms");
constexpr int kMaxHeads = 128;

__global__ void set_tokens_kernel(StepState* s, int n, int32_t T, int32_t delta, const int32_t* T_dev) {
  pdl_wait();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) s[i].T = T_dev ? *T_dev : delta ? s[i].T + delta : T;
}

// Everything a launch of the step kernel needs.
struct StepArgs {
  PagedKv kv;
  LayerSelectBuffers layer;
  const float* q = nullptr;  // n_heads x head_dim, before RoPE (the fingerprint of the step)
  int32_t n_heads = 0;
  float scale = 1.f;
  SelectConfig cfg;
  SelectScratch s;
  StepKv append;  // .k null: nothing to store
  RopeTables rope;  // .cs null: layer.query is not written
};

// The plan's cosine: q . fingerprint and both squared norms, summed in one block reduction.
struct Dots {
  double qf, qq, ff;
  __device__ Dots operator+(const Dots& o) const { return {qf + o.qf, qq + o.qq, ff + o.ff}; }
};

// The phases' shared memory; one phase uses it at a time.
union StepSmem {
  cub::BlockReduce<Dots, kThreads>::TempStorage plan;
  float2 warp_stats[kWarps][8];
  struct {
    uint32_t local[kHistBins];
    float2 head[kMaxHeads];  // (max, 1 / sum) per head
  } vote;
  struct {
    cub::BlockScan<uint32_t, kThreads>::TempStorage scan;
    int bin;
    uint32_t greater;
  } pick;
  union {
    cub::BlockScan<int, kThreads>::TempStorage scan;
    cub::BlockReduce<int, kThreads>::TempStorage reduce;
  } compact;
};

// Whether the step attends all of [0, T): the dense baseline, or a context within the budget.
__device__ __forceinline__ bool attends_all(const SelectConfig& cfg, int T) {
  return cfg.full || T <= int64_t(cfg.n_init) + cfg.k + cfg.n_local;
}

// The step's plan: dense / reuse the cached selection / select. Every block computes it, with
// the same arithmetic, so that the launch agrees without a barrier. The cosine's loads are
// issued with the state's, before anything depends on either: on a reusing step the plan is
// the whole launch, and its length is that of its chain of dependent reads.
__device__ int plan_of(const StepArgs& a, int T, StepSmem& sm) {
  const SelectConfig& cfg = a.cfg;
  const bool dense = attends_all(cfg, T);
  if (cfg.full) return kPlanDense;
  if (cfg.fresh || !cfg.cache) return dense ? kPlanDense : kPlanSelect;  // no cosine to compute
  const int fp_valid = a.layer.state->fp_valid;
  // n = heads x head_dim is a multiple of 4: the float4 loads are all in flight at once.
  const int n = a.n_heads * a.kv.head_dim;
  const float* fp = a.layer.fingerprint;
  Dots d{0, 0, 0};
#pragma unroll 4
  for (int i = threadIdx.x * 4; i < n; i += kThreads * 4) {
    const float4 x = *reinterpret_cast<const float4*>(a.q + i), y = *reinterpret_cast<const float4*>(fp + i);
    d.qf += double(x.x) * y.x + double(x.y) * y.y + double(x.z) * y.z + double(x.w) * y.w;
    d.qq += double(x.x) * x.x + double(x.y) * x.y + double(x.z) * x.z + double(x.w) * x.w;
    d.ff += double(y.x) * y.x + double(y.y) * y.y + double(y.z) * y.z + double(y.w) * y.w;
  }
  if (dense) return kPlanDense;
  if (!fp_valid) return kPlanSelect;
  __shared__ int plan;
  d = cub::BlockReduce<Dots, kThreads>(sm.plan).Sum(d);
  if (threadIdx.x == 0)
    plan = d.qq > 0 && d.ff > 0 && d.qf / sqrt(d.qq * d.ff) >= double(cfg.tau) ? kPlanReuse : kPlanSelect;
  __syncthreads();
  return plan;
}

// Block g < n_kv_heads turns its query heads for the attention kernel: q scaled and rotated at
// the query's position in the attended set (LayerSelectBuffers::query), with the attention's
// arithmetic. That position depends on the plan, so the (cos, sin) of both candidates (a reused
// selection's set, a new one's) are loaded with q before the plan is known, and the turn after
// it costs no further read.
template <int D, int G>
struct QueryTurn {
  static constexpr int kPairs = (G * D / 2 + kThreads - 1) / kThreads;  // per thread
  float2 x[kPairs], cs[2][kPairs];  // cs[0]: if the plan reuses the selection; cs[1]: otherwise

  // The thread's k-th pair: its index i in the head and its two elements' offsets in q; false
  // past the group's pairs.
  struct Pair {
    int i, o0, o1;
  };
  __device__ static bool pair(const StepArgs& a, int k, Pair& pr) {
    const int p = threadIdx.x + k * kThreads;
    if (p >= G * D / 2) return false;
    const int h = blockIdx.x * G + p / (D / 2), i = p % (D / 2);
    pr = {i, h * D + (a.rope.neox ? i : 2 * i), h * D + (a.rope.neox ? i + D / 2 : 2 * i + 1)};
    return true;
  }

  __device__ void load(const StepArgs& a, const StepState& st, int T, int c0, int n) {
    const SelectConfig& cfg = a.cfg;
    int pos[2] = {max(T - 1, 0), max(T - 1, 0)};  // a dense plan, or true positions
    if (cfg.remap && !attends_all(cfg, T)) {
      const int k_eff = min(cfg.k, n);
      const KeySet reuse = KeySet::of(kPlanReuse, T, c0, st.n_sel, st.sel_local_start);
      // As the selection leaves the state (n_sel, sel_local_start).
      const KeySet fresh = KeySet::of(kPlanSelect, T, c0, k_eff, k_eff > 0 ? c0 + n : st.sel_local_start);
      // A reused set is only a candidate: its state may be stale, so its position is kept in range.
      pos[0] = min(max(reuse.size() - 1, 0), T - 1);
      pos[1] = fresh.size() - 1;
    }
#pragma unroll
    for (int k = 0; k < kPairs; ++k) {
      Pair pr;
      if (!pair(a, k, pr)) break;
      x[k] = make_float2(a.q[pr.o0] * a.scale, a.q[pr.o1] * a.scale);
#pragma unroll
      for (int c = 0; c < 2; ++c)
        cs[c][k] = __ldg(reinterpret_cast<const float2*>(a.rope.cs + int64_t(pos[c]) * D) + pr.i);
    }
  }

  __device__ void store(const StepArgs& a, int plan) const {
    const bool reuse = plan == kPlanReuse;
#pragma unroll
    for (int k = 0; k < kPairs; ++k) {
      Pair pr;
      if (!pair(a, k, pr)) break;
      float x0 = x[k].x, x1 = x[k].y;
      rotate_pair(x0, x1, reuse ? cs[0][k] : cs[1][k]);
      a.layer.query[pr.o0] = x0;
      a.layer.query[pr.o1] = x1;
    }
  }
};

// Block b < n_kv_heads stores KV head b of the step's K/V at index T - 1.
__device__ void append_kv(const StepKv& ap, int T) {
  const PagedKv& kv = ap.kv;
  const int g = blockIdx.x;
  const int64_t off = kv_offset(kv, g, T - 1);
  for (int i = threadIdx.x; i < kv.head_dim; i += kThreads) {
    const __half k = __float2half_rn(ap.k[g * kv.head_dim + i]);
    reinterpret_cast<__half*>(kv.k)[off + i] = k;
    if (kv.k8) kv.k8[off + i] = half_to_e4m3(k);
    reinterpret_cast<__half*>(kv.v)[off + i] = __float2half_rn(ap.v[g * kv.head_dim + i]);
  }
}

// scores[h][j] = q[h] . K_{h/G}(c0 + j) * scale (keys before RoPE), each key read once per KV
// head, on the tensor cores: per warp and tile of 8 keys, S = Q . K^T with the group's G query
// heads as the rows (query_fragments: 16-byte key chunks are the B fragments as loaded). In the
// same pass each head's softmax statistics (max, sum of exp) over the block's keys go to
// partials[bx][h]. Block b scores for KV head b % n_kv_heads, slice b / n_kv_heads of
// gridDim.x / n_kv_heads. F8: the keys' fp8 copy, half the bytes: a 16-byte load holds two
// chunks, widened to fp16 in registers, and the query's high fp16 part alone is enough.
template <int D, int G, bool F8>
__device__ void score_phase(const StepArgs& a, int c0, int n, StepSmem& sm) {
  constexpr int CH = D / 32;                 // 8-dim chunks per lane per key
  constexpr int L = F8 ? CH / 2 : CH;        // 16-byte loads per lane per key
  constexpr int U = (D == 128 ? 2 : 4) * (F8 ? 2 : 1);  // tiles of 8 keys in flight per warp
  const PagedKv& kv = a.kv;
  const int n_kv = kv.n_kv_heads, g = blockIdx.x % n_kv, bx = blockIdx.x / n_kv, nbx = gridDim.x / n_kv;
  const int lane = threadIdx.x & 31, r = lane / 4, c = lane % 4, warp = threadIdx.x >> 5;
  // Lane c's i-th chunk: fp16, chunk c + 4i (one load each); fp8, chunks 8h + 2c and 8h + 2c + 1
  // in the key's 64-byte part h = i / 2 (one load for the two).
  const auto chunk = [c](int i) { return F8 ? 8 * (i >> 1) + 2 * c + (i & 1) : c + 4 * i; };
  float qf[CH][8];
#pragma unroll
  for (int i = 0; i < CH; ++i)
#pragma unroll
    for (int e = 0; e < 8; ++e) qf[i][e] = r < G ? a.q[(g * G + r) * D + chunk(i) * 8 + e] * a.scale : 0.f;
  uint32_t qa[CH][2][2][2];
  query_fragments<CH>(qf, qa);
  float m = -INFINITY, sum = 0.f;  // head r's statistics over this lane's keys
  float* out = a.s.scores + int64_t(g * G + r) * a.s.capacity;
  const int tiles = (n + 7) / 8, step = nbx * kWarps * U;
  // The cache slot (a page-table read) of row r of tile t; -1 past the candidates.
  const auto row_slot = [&](int t) {
    const int j = t * 8 + r;
    return j < n ? kv_slot(kv, c0 + j) : -1;
  };
  // At d 128 the slots of the warp's next U tiles are read while this U are loaded and scored,
  // so a step waits on one round of reads, not two (at d 64 the registers for it would cost a
  // resident block per SM).
  constexpr bool kAhead = D == 128;
  int ahead[U];
  if (kAhead) {
#pragma unroll
    for (int u = 0; u < U; ++u) ahead[u] = row_slot((bx * kWarps + warp) * U + u);
  }
  for (int t0 = (bx * kWarps + warp) * U; t0 < tiles; t0 += step) {
    uint4 raw[U][L];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int slot = kAhead ? ahead[u] : row_slot(t0 + u);
      const int64_t off = slot >= 0 ? kv_slot_offset(kv, g, slot) : 0;
#pragma unroll
      for (int l = 0; l < L; ++l) {
        const void* p = F8 ? static_cast<const void*>(kv.k8 + off + 64 * l + 16 * c)
                           : static_cast<const void*>(kv.k + off + chunk(l) * 8);
        // Keys are read once: evict-first (.cs), so that the scores written meanwhile stay in L2
        // for the vote, which reads them back (NOTES, GPU v14).
        raw[u][l] = slot >= 0 ? __ldcs(static_cast<const uint4*>(p)) : make_uint4(0, 0, 0, 0);
      }
    }
    if (kAhead) {
#pragma unroll
      for (int u = 0; u < U; ++u) ahead[u] = row_slot(t0 + step + u);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      uint4 k[CH];
#pragma unroll
      for (int l = 0; l < L; ++l) {
        if (F8) {
          k[2 * l] = e4m3x8_to_half8(raw[u][l].x, raw[u][l].y);
          k[2 * l + 1] = e4m3x8_to_half8(raw[u][l].z, raw[u][l].w);
        } else {
          k[l] = raw[u][l];
        }
      }
      float acc[4] = {0.f, 0.f, 0.f, 0.f};
      tile_scores<CH, F8 ? 1 : 2>(acc, qa, k);
      // acc[0..1]: head r, keys 2c and 2c + 1 of the tile (rows r + 8 are padding).
      const int j = (t0 + u) * 8 + 2 * c;
      if (r < G) {
        const float s0 = j < n ? acc[0] : -INFINITY, s1 = j + 1 < n ? acc[1] : -INFINITY;
        if (j < n) out[j] = s0;
        if (j + 1 < n) out[j + 1] = s1;
        const float tm = fmaxf(s0, s1);
        if (tm > m) {
          sum = m == -INFINITY ? 0.f : sum * __expf(m - tm);
          m = tm;
        }
        if (j < n) sum += __expf(s0 - m);
        if (j + 1 < n) sum += __expf(s1 - m);
      }
    }
  }
  // Lanes 4r..4r+3 hold head r's parts; then the warps.
  float2 st = make_float2(m, sum);
#pragma unroll
  for (int x = 1; x <= 2; x <<= 1) {
    const float2 o = make_float2(__shfl_xor_sync(0xffffffffu, st.x, x), __shfl_xor_sync(0xffffffffu, st.y, x));
    st = merge_stats(st, o);
  }
  if (c == 0) sm.warp_stats[warp][r] = st;
  __syncthreads();
  if (threadIdx.x < G) {
    float2 t = sm.warp_stats[0][threadIdx.x];
    for (int w = 1; w < kWarps; ++w) t = merge_stats(t, sm.warp_stats[w][threadIdx.x]);
    a.s.partials[int64_t(bx) * a.n_heads + g * G + threadIdx.x] = t;
  }
}

// Adds a block's shared histogram into the global one.
__device__ void flush_hist(const uint32_t* local, uint32_t* hist, int bins) {
  __syncthreads();
  for (int i = threadIdx.x; i < bins; i += kThreads)
    if (local[i]) atomicAdd(hist + i, local[i]);
}

// votes[j] = sum_h exp(s_h(j) - max_h) / sum_h, with each head's statistics merged from the
// scoring blocks' partials; and the histogram of the votes' top 11 bits. Votes are >= 0, so
// their bit patterns order like their values.
__device__ void vote_phase(const StepArgs& a, int n, StepSmem& sm) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nbx = gridDim.x / a.kv.n_kv_heads;
  for (int i = threadIdx.x; i < kHistBins; i += kThreads) sm.vote.local[i] = 0;
  for (int h = warp; h < a.n_heads; h += kWarps) {
    float2 t = make_float2(-INFINITY, 0.f);
    for (int b = lane; b < nbx; b += 32) t = merge_stats(t, a.s.partials[int64_t(b) * a.n_heads + h]);
#pragma unroll
    for (int x = 16; x > 0; x >>= 1)
      t = merge_stats(t, make_float2(__shfl_xor_sync(0xffffffffu, t.x, x), __shfl_xor_sync(0xffffffffu, t.y, x)));
    if (lane == 0) sm.vote.head[h] = make_float2(t.x, 1.f / t.y);
  }
  __syncthreads();
  for (int j = blockIdx.x * kThreads + threadIdx.x; j < n; j += gridDim.x * kThreads) {
    float v = 0.f;
    for (int h = 0; h < a.n_heads; ++h)
      v = fmaf(__expf(a.s.scores[int64_t(h) * a.s.capacity + j] - sm.vote.head[h].x), sm.vote.head[h].y, v);
    a.s.votes[j] = v;
    atomicAdd(sm.vote.local + (__float_as_uint(v) >> 21), 1u);
  }
  flush_hist(sm.vote.local, a.s.hist, kHistBins);
}

// Radix passes 2 and 3: histogram of the next digit among the votes that match the prefix.
__device__ void hist_phase(const StepArgs& a, int n, uint32_t prefix, uint32_t mask, int shift, int bins,
                           uint32_t* hist, StepSmem& sm) {
  for (int i = threadIdx.x; i < bins; i += kThreads) sm.vote.local[i] = 0;
  __syncthreads();
  for (int j = blockIdx.x * kThreads + threadIdx.x; j < n; j += gridDim.x * kThreads) {
    const uint32_t b = __float_as_uint(a.s.votes[j]);
    if ((b & mask) == prefix) atomicAdd(sm.vote.local + ((b >> shift) & (bins - 1)), 1u);
  }
  flush_hist(sm.vote.local, hist, bins);
}

// The digit of the k_left-th largest vote among those matching the prefix (from the pass's
// complete histogram, which every block reads): extends the prefix with it and leaves in k_left
// how many with that digit are still to be taken.
template <int Bins>
__device__ void pick(const uint32_t* hist, int shift, uint32_t& prefix, uint32_t& mask, int& k_left, StepSmem& sm) {
  constexpr int Per = Bins / kThreads;  // thread t holds bins Bins-1-Per*t downwards (descending)
  uint32_t cnt[Per], total = 0;
#pragma unroll
  for (int i = 0; i < Per; ++i) total += cnt[i] = hist[Bins - 1 - Per * int(threadIdx.x) - i];
  uint32_t before = 0;
  cub::BlockScan<uint32_t, kThreads>(sm.pick.scan).ExclusiveSum(total, before);
  const uint32_t need = uint32_t(k_left);
#pragma unroll
  for (int i = 0; i < Per; ++i) {
    if (before < need && before + cnt[i] >= need) {
      sm.pick.bin = Bins - 1 - Per * int(threadIdx.x) - i;
      sm.pick.greater = before;
    }
    before += cnt[i];
  }
  __syncthreads();
  prefix |= uint32_t(sm.pick.bin) << shift;
  mask |= uint32_t(Bins - 1) << shift;
  k_left = int(need - sm.pick.greater);
  __syncthreads();  // the scan storage is reused next
}

// Voter b's slice of the candidates: [n * b / voters, n * (b + 1) / voters).
__device__ __forceinline__ int slice_begin(int n, int b, int voters) { return int(int64_t(n) * b / voters); }

// Per voter, how many of its slice's votes are above the threshold and equal to it.
__device__ void compact_count(const StepArgs& a, int n, int voters, uint32_t thr, StepSmem& sm) {
  using Reduce = cub::BlockReduce<int, kThreads>;
  const int j0 = slice_begin(n, blockIdx.x, voters), j1 = slice_begin(n, blockIdx.x + 1, voters);
  int g = 0, e = 0;
  for (int j = j0 + threadIdx.x; j < j1; j += kThreads) {
    const uint32_t b = __float_as_uint(a.s.votes[j]);
    g += b > thr;
    e += b == thr;
  }
  g = Reduce(sm.compact.reduce).Sum(g);
  __syncthreads();
  e = Reduce(sm.compact.reduce).Sum(e);
  if (threadIdx.x == 0) a.s.block_counts[blockIdx.x] = make_int2(g, e);
}

// Writes the selection in position order: every vote above the threshold, and the first `need`
// (lowest positions) equal to it, as the CPU's tie rule (vote descending, position ascending).
__device__ void compact_write(const StepArgs& a, int c0, int n, int voters, uint32_t thr, int need, StepSmem& sm) {
  using Scan = cub::BlockScan<int, kThreads>;
  using Reduce = cub::BlockReduce<int, kThreads>;
  __shared__ int base_g, base_e;
  int g = 0, e = 0;
  for (int b = threadIdx.x; b < int(blockIdx.x); b += kThreads) {
    g += a.s.block_counts[b].x;
    e += a.s.block_counts[b].y;
  }
  g = Reduce(sm.compact.reduce).Sum(g);
  __syncthreads();
  e = Reduce(sm.compact.reduce).Sum(e);
  if (threadIdx.x == 0) {
    base_g = g;
    base_e = e;
  }
  __syncthreads();
  int G = base_g, E = base_e;
  const int j0 = slice_begin(n, blockIdx.x, voters), j1 = slice_begin(n, blockIdx.x + 1, voters);
  for (int t0 = j0; t0 < j1; t0 += kThreads) {
    const int j = t0 + threadIdx.x;
    const uint32_t b = j < j1 ? __float_as_uint(a.s.votes[j]) : 0u;
    const int is_g = j < j1 && b > thr, is_e = j < j1 && b == thr;
    int gx, ex, gt, et;
    __syncthreads();
    Scan(sm.compact.scan).ExclusiveSum(is_g, gx, gt);
    __syncthreads();
    Scan(sm.compact.scan).ExclusiveSum(is_e, ex, et);
    if (is_g || (is_e && E + ex < need)) {
      const int idx = G + gx + min(E + ex, need);
      a.layer.selected[idx] = c0 + j;
      a.layer.selected_votes[idx] = __uint_as_float(b);
      a.layer.selected_slots[idx] = kv_slot(a.kv, c0 + j);
    }
    G += gt;
    E += et;
  }
}

// One layer's TokenSelect step in one launch: the step's K/V stored (blocks < n_kv_heads), the
// plan, and when it is to select, the selection in phases separated by grid-wide barriers (a
// cooperative launch of `blocks`): scoring with the softmax statistics, the vote with the first
// radix digit's histogram, two more digits, then the compaction. A step that reuses its
// selection, or attends densely, ends after the plan. The dense baseline (cfg.full) launches
// only n_kv_heads blocks, normally: its plan never selects.
template <int D, int G>
__global__ void __launch_bounds__(kThreads) step_kernel(StepArgs a) {
  pdl_wait();
  __shared__ StepSmem sm;
  StepState* st = a.layer.state;
  const int T = st->T;
  const SelectConfig& cfg = a.cfg;
  const int c0 = min(cfg.n_init, T), n = max(c0, T - cfg.n_local) - c0;
  const bool turns = a.rope.cs && int(blockIdx.x) < a.kv.n_kv_heads;
  QueryTurn<D, G> turn;
  if (turns) turn.load(a, *st, T, c0, n);
  const int plan = plan_of(a, T, sm);
  if (a.append.k && int(blockIdx.x) < a.kv.n_kv_heads) append_kv(a.append, T);
  if (turns) turn.store(a, plan);
  if (plan != kPlanSelect) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
      st->plan = plan;
      st->c0 = c0;
      st->hits += plan == kPlanReuse;
    }
    return;
  }
  const cg::grid_group grid = cg::this_grid();
  if (blockIdx.x == gridDim.x - 1)
    for (int i = threadIdx.x; i < kSelectHistBins; i += kThreads) a.s.hist[i] = 0;
  if (a.kv.k8)
    score_phase<D, G, true>(a, c0, n, sm);
  else
    score_phase<D, G, false>(a, c0, n, sm);
  grid.sync();  // every block has read the fingerprint: the state may change now
  if (blockIdx.x == 0) {
    for (int i = threadIdx.x; i < a.n_heads * D; i += kThreads) a.layer.fingerprint[i] = a.q[i];
    if (threadIdx.x == 0) {
      st->plan = plan;
      st->c0 = c0;
      st->fp_valid = cfg.cache;
      ++st->misses;
    }
  }
  const int k_eff = min(cfg.k, n);
  if (k_eff == 0) {
    if (blockIdx.x == 0 && threadIdx.x == 0) st->n_sel = 0;
    return;
  }
  // The vote's grid-stride slices are kThreads long: blocks past the candidates hold no votes,
  // and sit out the vote, the radix passes and the compaction (whose slices are the voters'
  // alone), keeping only to the barriers. Below gridDim.x * kThreads candidates that spares the
  // rest of the grid the histograms' shared memory and the picks' reads of them (8k candidates:
  // 32 voters). The guards cost 9 registers at head_dim 64, two resident blocks per SM instead
  // of three: faster to 128k, slower from 512k (NOTES, GPU v17).
  const int voters = min(int(gridDim.x), (n + kThreads - 1) / kThreads);
  const bool votes = int(blockIdx.x) < voters;
  if (votes) vote_phase(a, n, sm);
  grid.sync();
  uint32_t prefix = 0, mask = 0;
  int k_left = k_eff;
  uint32_t* const hist2 = a.s.hist + kHistBins;
  uint32_t* const hist3 = hist2 + kHistBins;
  if (votes) {
    pick<kHistBins>(a.s.hist, 21, prefix, mask, k_left, sm);
    hist_phase(a, n, prefix, mask, 10, kHistBins, hist2, sm);
  }
  grid.sync();
  if (votes) {
    pick<kHistBins>(hist2, 10, prefix, mask, k_left, sm);
    hist_phase(a, n, prefix, mask, 0, kHistBins / 2, hist3, sm);
  }
  grid.sync();
  if (votes) {
    pick<kHistBins / 2>(hist3, 0, prefix, mask, k_left, sm);
    compact_count(a, n, voters, prefix, sm);
  }
  grid.sync();
  if (votes) compact_write(a, c0, n, voters, prefix, k_left, sm);
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    st->n_sel = k_eff;
    st->sel_local_start = c0 + n;
  }
}

// The scoring phase alone over the step's candidates (the benchmark's bandwidth figure).
template <int D, int G>
__global__ void __launch_bounds__(kThreads) scores_kernel(StepArgs a) {
  pdl_wait();
  __shared__ StepSmem sm;
  const int T = a.layer.state->T, c0 = min(a.cfg.n_init, T), n = max(c0, T - a.cfg.n_local) - c0;
  if (a.kv.k8)
    score_phase<D, G, true>(a, c0, n, sm);
  else
    score_phase<D, G, false>(a, c0, n, sm);
}

__global__ void fill_random_half_kernel(__half* x, int64_t n, uint32_t seed, float scale) {
  pdl_wait();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 0x9E3779B1u ^ uint32_t(i >> 32) * 0x85EBCA77u ^ seed * 0xC2B2AE3Du;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    h *= 0x297A2D39u;
    h ^= h >> 15;
    x[i] = __float2half_rn((float(h >> 8) * (1.f / 16777216.f) * 2.f - 1.f) * scale);
  }
}

__global__ void keys_to_fp8_kernel(const __half* k, uint8_t* k8, int64_t n) {
  pdl_wait();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    k8[i] = half_to_e4m3(k[i]);
}

void check_launch(const char* what) { check(cudaGetLastError(), what); }

void check_heads(const PagedKv& kv, int32_t n_heads) {
  if (n_heads > kMaxHeads || n_heads % kv.n_kv_heads != 0 || n_heads / kv.n_kv_heads > kMaxGroup)
    throw std::runtime_error("CUDA selection: unsupported head layout (" + std::to_string(n_heads) + " heads, " +
                             std::to_string(kv.n_kv_heads) + " KV heads)");
  if (kv.head_dim != 64 && kv.head_dim != 128)
    throw std::runtime_error("CUDA selection: head_dim must be 64 or 128 (got " + std::to_string(kv.head_dim) + ")");
}

StepArgs step_args(const PagedKv& kv, const LayerSelectBuffers& layer, const float* q, int32_t n_heads, float scale,
                   const SelectConfig& cfg, const SelectScratch& s) {
  check_heads(kv, n_heads);
  StepArgs a;
  a.kv = kv;
  a.layer = layer;
  a.q = q;
  a.n_heads = n_heads;
  a.scale = scale;
  a.cfg = cfg;
  a.s = s;
  return a;
}

// Calls f with the step kernel's (D, G) instance as a compile-time pair.
template <class F>
void dispatch_step(int head_dim, int group, F&& f) {
  dispatch_group(group, [&](auto gc) {
    if (head_dim == 64)
      f(std::integral_constant<int, 64>{}, gc);
    else
      f(std::integral_constant<int, 128>{}, gc);
  });
}

}  // namespace

void launch_set_tokens(StepState* states, int n_layers, int32_t T, cudaStream_t stream) {
  launch(set_tokens_kernel, (n_layers + 127) / 128, 128, 0, stream, states, n_layers, T, 0, nullptr);
  check_launch("set_tokens_kernel");
}

void launch_set_tokens_from(StepState* states, int n_layers, const int32_t* T, cudaStream_t stream) {
  launch(set_tokens_kernel, (n_layers + 127) / 128, 128, 0, stream, states, n_layers, 0, 0, T);
  check_launch("set_tokens_kernel");
}

void launch_advance_tokens(StepState* states, int n_layers, int32_t delta, cudaStream_t stream) {
  launch(set_tokens_kernel, (n_layers + 127) / 128, 128, 0, stream, states, n_layers, 0, delta, nullptr);
  check_launch("set_tokens_kernel");
}

int select_blocks(int head_dim, int group, int n_kv_heads, int n_sms) {
  int per_sm = 0;
  dispatch_step(head_dim, group, [&](auto dc, auto gc) {
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, step_kernel<decltype(dc)::value, decltype(gc)::value>,
                                                        kThreads, 0),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  });
  // All blocks resident (a grid barrier needs them); a multiple of the KV heads for scoring.
  const int blocks = std::min(per_sm, 4) * n_sms / n_kv_heads * n_kv_heads;
  if (blocks < n_kv_heads) throw std::runtime_error("CUDA selection: too few resident blocks for the selection");
  return blocks;
}

void launch_step(const PagedKv& kv, const LayerSelectBuffers& layer, const float* q, int32_t n_heads, float scale,
                 const SelectConfig& cfg, const SelectScratch& s, const StepKv* append, const RopeTables* rope,
                 cudaStream_t stream) {
  StepArgs a = step_args(kv, layer, q, n_heads, scale, cfg, s);
  if (append) a.append = *append;
  if (rope) a.rope = *rope;
  dispatch_step(kv.head_dim, n_heads / kv.n_kv_heads, [&](auto dc, auto gc) {
    const auto kernel = step_kernel<decltype(dc)::value, decltype(gc)::value>;
    if (cfg.full)
      launch(kernel, unsigned(kv.n_kv_heads), kThreads, 0, stream, a);
    else
      launch_cooperative(kernel, unsigned(s.blocks), kThreads, 0, stream, a);
  });
  check_launch("step_kernel");
}

void launch_scores_only(const PagedKv& kv, const LayerSelectBuffers& layer, const float* q, int32_t n_heads,
                        float scale, const SelectConfig& cfg, const SelectScratch& s, cudaStream_t stream) {
  const StepArgs a = step_args(kv, layer, q, n_heads, scale, cfg, s);
  dispatch_step(kv.head_dim, n_heads / kv.n_kv_heads, [&](auto dc, auto gc) {
    launch(scores_kernel<decltype(dc)::value, decltype(gc)::value>, unsigned(s.blocks), kThreads, 0, stream, a);
  });
  check_launch("scores_kernel");
}

void launch_keys_to_fp8(const uint16_t* k, uint8_t* k8, int64_t n, cudaStream_t stream) {
  launch(keys_to_fp8_kernel, 1024, 256, 0, stream, reinterpret_cast<const __half*>(k), k8, n);
  check_launch("keys_to_fp8_kernel");
}

void launch_fill_random_half(uint16_t* x, int64_t n, uint32_t seed, float scale, cudaStream_t stream) {
  launch(fill_random_half_kernel, 1024, 256, 0, stream, reinterpret_cast<__half*>(x), n, seed, scale);
  check_launch("fill_random_half_kernel");
}

}  // namespace ts::cuda
