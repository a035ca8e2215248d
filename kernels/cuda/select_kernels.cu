// TokenSelect on the device, per layer and decode step (DESIGN.md "the algorithm contract"):
// plan (dense / reuse the cached selection / select), scoring of every candidate key against
// the fingerprint with per-head softmax statistics in the same pass, the soft vote, and an
// exact top-k by radix select over the votes' bits (11 + 11 + 10 bits), compacted in position
// order. Fixed grids with grid-stride loops: the launch shapes never depend on T, so one
// captured graph serves every step.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

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

constexpr int kHistBins = 2048;
constexpr int kPlanThreads = 1024;
constexpr int kScoreThreads = 256;
constexpr int kVoteThreads = 256;
constexpr int kPickThreads = 1024;  // two bins per thread
constexpr int kCompactThreads = 256;
constexpr int kMaxHeads = 128;

__global__ void set_tokens_kernel(StepState* s, int n, int32_t T, int32_t delta, const int32_t* T_dev) {
  pdl_wait();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) s[i].T = T_dev ? *T_dev : delta ? s[i].T + delta : T;
}

// Block 0 plans; blocks 1.. (when the launch appends) store KV head blockIdx.x - 1 of the
// step's K/V at index T - 1.
__global__ void __launch_bounds__(kPlanThreads) plan_kernel(StepState* st, float* fp, const float* q, int n,
                                                            SelectConfig cfg, uint32_t* hist, StepKv append,
                                                            cudaGraphConditionalHandle select_if, int has_if) {
  pdl_wait();
  if (blockIdx.x > 0) {
    const PagedKv& kv = append.kv;
    const int g = blockIdx.x - 1;
    const int64_t off = kv_offset(kv, g, st->T - 1);
    for (int i = threadIdx.x; i < kv.head_dim; i += blockDim.x) {
      reinterpret_cast<__half*>(kv.k)[off + i] = __float2half_rn(append.k[g * kv.head_dim + i]);
      reinterpret_cast<__half*>(kv.v)[off + i] = __float2half_rn(append.v[g * kv.head_dim + i]);
    }
    return;
  }
  using Reduce = cub::BlockReduce<double, kPlanThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ int plan;
  const int32_t T = st->T;
  const int32_t sink_end = min(cfg.n_init, T);
  const int32_t local_start = max(sink_end, T - cfg.n_local);
  const int64_t budget = int64_t(cfg.n_init) + cfg.k + cfg.n_local;
  if (cfg.full || T <= budget) {
    plan = kPlanDense;
  } else if (cfg.fresh || !cfg.cache || !st->fp_valid) {
    plan = kPlanSelect;
  } else {
    // n = heads x head_dim is a multiple of 4: one or two float4 per thread, all loads in flight.
    double dot = 0, na = 0, nb = 0;
#pragma unroll 2
    for (int i = threadIdx.x * 4; i < n; i += blockDim.x * 4) {
      const float4 x = *reinterpret_cast<const float4*>(q + i), y = *reinterpret_cast<const float4*>(fp + i);
      dot += double(x.x) * y.x + double(x.y) * y.y + double(x.z) * y.z + double(x.w) * y.w;
      na += double(x.x) * x.x + double(x.y) * x.y + double(x.z) * x.z + double(x.w) * x.w;
      nb += double(y.x) * y.x + double(y.y) * y.y + double(y.z) * y.z + double(y.w) * y.w;
    }
    dot = Reduce(tmp).Sum(dot);
    __syncthreads();
    na = Reduce(tmp).Sum(na);
    __syncthreads();
    nb = Reduce(tmp).Sum(nb);
    if (threadIdx.x == 0) plan = (na > 0 && nb > 0 && dot / sqrt(na * nb) >= double(cfg.tau)) ? kPlanReuse : kPlanSelect;
  }
  __syncthreads();
  if (plan == kPlanSelect) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) fp[i] = q[i];
    for (int i = threadIdx.x; i < kHistBins; i += blockDim.x) hist[i] = 0;
  }
  if (threadIdx.x == 0) {
    st->plan = plan;
    st->c0 = sink_end;
    if (plan == kPlanSelect) {
      st->n_cand = local_start - sink_end;
      st->k_eff = min(cfg.k, local_start - sink_end);
      st->k_left = st->k_eff;
      st->prefix = 0;
      st->prefix_mask = 0;
      st->fp_valid = cfg.cache;
      ++st->misses;
    } else if (plan == kPlanReuse) {
      ++st->hits;
    }
    if (has_if) cudaGraphSetConditional(select_if, plan == kPlanSelect);
  }
}

// scores[h][j] = q[h] . K_{h/group}(c0 + j) * scale (keys before RoPE), each key read once per
// KV head (blockIdx.y), on the tensor cores: per warp and tile of 8 keys, S = Q . K^T with the
// group's G query heads as the rows (query_fragments: 16-byte key chunks are the B fragments as
// loaded). Only dot products here: the softmax statistics are a second pass over the scores.
template <int D, int G>
__global__ void __launch_bounds__(kScoreThreads)
    scores_kernel(PagedKv kv, const StepState* st, const float* q, int n_heads, float scale, float* scores,
                  int64_t stride, int force) {
  pdl_wait();
  constexpr int CH = D / 32;  // 16-byte chunks per lane per key
  constexpr int NW = kScoreThreads / 32, U = D == 128 ? 2 : 4;  // U tiles of 8 keys in flight per warp
  if (!force && st->plan != kPlanSelect) return;
  const int c0 = st->c0, n = st->n_cand, g = blockIdx.y;
  const int lane = threadIdx.x & 31, r = lane / 4, c = lane % 4, warp = threadIdx.x >> 5;
  float qf[CH][8];
#pragma unroll
  for (int i = 0; i < CH; ++i)
#pragma unroll
    for (int e = 0; e < 8; ++e) qf[i][e] = r < G ? q[(g * G + r) * D + (c + 4 * i) * 8 + e] * scale : 0.f;
  uint32_t qa[CH][2][2][2];
  query_fragments<CH>(qf, qa);
  const int tiles = (n + 7) / 8, step = gridDim.x * NW * U;
  for (int t0 = (blockIdx.x * NW + warp) * U; t0 < tiles; t0 += step) {
    uint4 k[U][CH];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = (t0 + u) * 8 + r;
#pragma unroll
      for (int i = 0; i < CH; ++i)
        k[u][i] = j < n ? __ldg(reinterpret_cast<const uint4*>(kv.k + kv_offset(kv, g, c0 + j) + (c + 4 * i) * 8))
                        : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float acc[4] = {0.f, 0.f, 0.f, 0.f};
      tile_scores<CH>(acc, qa, k[u]);
      // acc[0..1]: head r, keys 2c and 2c + 1 of the tile (rows r + 8 are padding).
      const int j = (t0 + u) * 8 + 2 * c;
      if (r < G) {
        float* out = scores + int64_t(g * G + r) * stride;
        if (j < n) out[j] = acc[0];
        if (j + 1 < n) out[j + 1] = acc[1];
      }
    }
  }
}

// Per block and head, the (max, sum of exp) of a slice of the head's scores (blockIdx.y = head).
__global__ void __launch_bounds__(256) score_stats_kernel(const StepState* st, const float* scores, int64_t stride,
                                                          int n_heads, float2* partials) {
  pdl_wait();
  if (st->plan != kPlanSelect) return;
  __shared__ float2 red[256];
  const int h = blockIdx.y, n = st->n_cand;
  const float* s = scores + int64_t(h) * stride;
  float m = -INFINITY;
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) m = fmaxf(m, s[j]);
  float sum = 0.f;
  if (m != -INFINITY)
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) sum += __expf(s[j] - m);
  red[threadIdx.x] = make_float2(m, sum);
  __syncthreads();
  for (int o = blockDim.x / 2; o > 0; o >>= 1) {
    if (threadIdx.x < o) red[threadIdx.x] = merge_stats(red[threadIdx.x], red[threadIdx.x + o]);
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[int64_t(blockIdx.x) * n_heads + h] = red[0];
}

// stats[h] = the merge of every scoring block's partial for head h.
__global__ void softmax_stats_kernel(const StepState* st, const float2* partials, int blocks, int n_heads,
                                     float2* stats) {
  pdl_wait();
  if (st->plan != kPlanSelect) return;
  __shared__ float2 red[256];
  const int h = blockIdx.x;
  float2 s = make_float2(-INFINITY, 0.f);
  for (int b = threadIdx.x; b < blocks; b += blockDim.x) s = merge_stats(s, partials[int64_t(b) * n_heads + h]);
  red[threadIdx.x] = s;
  __syncthreads();
  for (int o = blockDim.x / 2; o > 0; o >>= 1) {
    if (threadIdx.x < o) red[threadIdx.x] = merge_stats(red[threadIdx.x], red[threadIdx.x + o]);
    __syncthreads();
  }
  if (threadIdx.x == 0) stats[h] = red[0];
}

// Adds a block's shared histogram into the global one.
__device__ void flush_hist(const uint32_t* local, uint32_t* hist, int bins) {
  __syncthreads();
  for (int i = threadIdx.x; i < bins; i += blockDim.x)
    if (local[i]) atomicAdd(hist + i, local[i]);
}

// votes[j] = sum_h exp(s_h(j) - max_h) / sum_h; histogram of the votes' top 11 bits. Votes are
// >= 0, so their bit patterns order like their values.
__global__ void __launch_bounds__(kVoteThreads) vote_hist_kernel(const StepState* st, const float* scores,
                                                                 int64_t stride, const float2* stats, int n_heads,
                                                                 float* votes, uint32_t* hist) {
  pdl_wait();
  if (st->plan != kPlanSelect) return;
  __shared__ uint32_t local[kHistBins];
  __shared__ float2 sh[kMaxHeads];
  for (int i = threadIdx.x; i < kHistBins; i += blockDim.x) local[i] = 0;
  for (int h = threadIdx.x; h < n_heads; h += blockDim.x) sh[h] = make_float2(stats[h].x, 1.f / stats[h].y);
  __syncthreads();
  const int n = st->n_cand;
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) {
    float v = 0.f;
    for (int h = 0; h < n_heads; ++h) v = fmaf(__expf(scores[int64_t(h) * stride + j] - sh[h].x), sh[h].y, v);
    votes[j] = v;
    atomicAdd(local + (__float_as_uint(v) >> 21), 1u);
  }
  flush_hist(local, hist, kHistBins);
}

// Radix passes 2 and 3: histogram of the next digit among the votes that match the prefix.
__global__ void __launch_bounds__(kVoteThreads) hist_kernel(const StepState* st, const float* votes, int shift,
                                                            int bins, uint32_t* hist) {
  pdl_wait();
  if (st->plan != kPlanSelect) return;
  __shared__ uint32_t local[kHistBins];
  for (int i = threadIdx.x; i < bins; i += blockDim.x) local[i] = 0;
  __syncthreads();
  const uint32_t prefix = st->prefix, mask = st->prefix_mask;
  const int n = st->n_cand;
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) {
    const uint32_t b = __float_as_uint(votes[j]);
    if ((b & mask) == prefix) atomicAdd(local + ((b >> shift) & (bins - 1)), 1u);
  }
  flush_hist(local, hist, bins);
}

// Finds the digit of the k_left-th largest vote among those matching the prefix, extends the
// prefix with it, and leaves in k_left how many with that digit are still to be taken.
__global__ void __launch_bounds__(kPickThreads) pick_kernel(StepState* st, uint32_t* hist, int shift, int bins) {
  pdl_wait();
  if (st->plan != kPlanSelect) return;
  using Scan = cub::BlockScan<uint32_t, kPickThreads>;
  __shared__ typename Scan::TempStorage tmp;
  // Thread t holds bins hi = bins-1-2t and lo = bins-2-2t (descending order).
  const int hi = bins - 1 - 2 * int(threadIdx.x), lo = hi - 1;
  const uint32_t c_hi = hi >= 0 ? hist[hi] : 0, c_lo = lo >= 0 ? hist[lo] : 0;
  uint32_t before = 0;
  Scan(tmp).ExclusiveSum(c_hi + c_lo, before);
  const uint32_t need = uint32_t(st->k_left);
  int bin = -1;
  uint32_t greater = 0;
  if (hi >= 0 && before < need && before + c_hi >= need) {
    bin = hi;
    greater = before;
  } else if (lo >= 0 && before + c_hi < need && before + c_hi + c_lo >= need) {
    bin = lo;
    greater = before + c_hi;
  }
  __syncthreads();  // everyone has read k_left
  if (bin >= 0) {
    st->prefix |= uint32_t(bin) << shift;
    st->prefix_mask |= uint32_t(bins - 1) << shift;
    st->k_left = int32_t(need - greater);
  }
  if (hi >= 0) hist[hi] = 0;
  if (lo >= 0) hist[lo] = 0;
}

// Block b's slice of the candidates: [n * b / blocks, n * (b + 1) / blocks).
__device__ __forceinline__ int slice_begin(int n, int b, int blocks) { return int(int64_t(n) * b / blocks); }

__global__ void __launch_bounds__(kCompactThreads) compact_count_kernel(const StepState* st, const float* votes,
                                                                        int2* counts) {
  pdl_wait();
  if (st->plan != kPlanSelect) return;
  using Reduce = cub::BlockReduce<int, kCompactThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const uint32_t thr = st->prefix;
  const int n = st->n_cand, j0 = slice_begin(n, blockIdx.x, gridDim.x), j1 = slice_begin(n, blockIdx.x + 1, gridDim.x);
  int g = 0, e = 0;
  for (int j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
    const uint32_t b = __float_as_uint(votes[j]);
    g += b > thr;
    e += b == thr;
  }
  g = Reduce(tmp).Sum(g);
  __syncthreads();
  e = Reduce(tmp).Sum(e);
  if (threadIdx.x == 0) counts[blockIdx.x] = make_int2(g, e);
}

// Writes the selection in position order: every vote above the threshold, and the first k_left
// (lowest positions) equal to it, as the CPU's tie rule (vote descending, position ascending).
__global__ void __launch_bounds__(kCompactThreads) compact_write_kernel(StepState* st, const float* votes,
                                                                        const int2* counts, int32_t* selected,
                                                                        float* selected_votes) {
  pdl_wait();
  if (st->plan != kPlanSelect) return;
  using Scan = cub::BlockScan<int, kCompactThreads>;
  using Reduce = cub::BlockReduce<int, kCompactThreads>;
  __shared__ union {
    typename Scan::TempStorage scan;
    typename Reduce::TempStorage reduce;
  } tmp;
  __shared__ int base_g, base_e;
  const uint32_t thr = st->prefix;
  const int need = st->k_left, c0 = st->c0, n = st->n_cand;
  int g = 0, e = 0;
  for (int b = threadIdx.x; b < int(blockIdx.x); b += blockDim.x) {
    g += counts[b].x;
    e += counts[b].y;
  }
  g = Reduce(tmp.reduce).Sum(g);
  __syncthreads();
  e = Reduce(tmp.reduce).Sum(e);
  if (threadIdx.x == 0) {
    base_g = g;
    base_e = e;
  }
  __syncthreads();
  int G = base_g, E = base_e;
  const int j0 = slice_begin(n, blockIdx.x, gridDim.x), j1 = slice_begin(n, blockIdx.x + 1, gridDim.x);
  for (int t0 = j0; t0 < j1; t0 += blockDim.x) {
    const int j = t0 + threadIdx.x;
    const uint32_t b = j < j1 ? __float_as_uint(votes[j]) : 0u;
    const int is_g = j < j1 && b > thr, is_e = j < j1 && b == thr;
    int gx, ex, gt, et;
    __syncthreads();
    Scan(tmp.scan).ExclusiveSum(is_g, gx, gt);
    __syncthreads();
    Scan(tmp.scan).ExclusiveSum(is_e, ex, et);
    if (is_g || (is_e && E + ex < need)) {
      const int idx = G + gx + min(E + ex, need);
      selected[idx] = c0 + j;
      selected_votes[idx] = __uint_as_float(b);
    }
    G += gt;
    E += et;
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    st->n_sel = st->k_eff;
    st->sel_local_start = c0 + n;
  }
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

void check_launch(const char* what) { check(cudaGetLastError(), what); }

void launch_scores_impl(const PagedKv& kv, const LayerSelectBuffers& layer, const float* q, int32_t n_heads,
                        float scale, const SelectScratch& s, int force, cudaStream_t stream) {
  if (n_heads > kMaxHeads || n_heads % kv.n_kv_heads != 0 || n_heads / kv.n_kv_heads > kMaxGroup)
    throw std::runtime_error("CUDA selection: unsupported head layout (" + std::to_string(n_heads) + " heads, " +
                             std::to_string(kv.n_kv_heads) + " KV heads)");
  const dim3 grid(unsigned(s.score_blocks), unsigned(kv.n_kv_heads));
  if (kv.head_dim != 64 && kv.head_dim != 128)
    throw std::runtime_error("CUDA selection: head_dim must be 64 or 128 (got " + std::to_string(kv.head_dim) + ")");
  dispatch_group(n_heads / kv.n_kv_heads, [&](auto gc) {
    constexpr int G = decltype(gc)::value;
    if (kv.head_dim == 64)
      launch(scores_kernel<64, G>, grid, kScoreThreads, 0, stream, kv, layer.state, q, n_heads, scale, s.scores,
             s.capacity, force);
    else
      launch(scores_kernel<128, G>, grid, kScoreThreads, 0, stream, kv, layer.state, q, n_heads, scale, s.scores,
             s.capacity, force);
  });
  check_launch("scores_kernel");
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

void launch_plan(const LayerSelectBuffers& layer, const float* q, int32_t n_heads, int32_t head_dim,
                 const SelectConfig& cfg, const SelectScratch& s, const StepKv* append,
                 const cudaGraphConditionalHandle* select_if, cudaStream_t stream) {
  launch(plan_kernel, 1 + (append ? append->kv.n_kv_heads : 0), kPlanThreads, 0, stream, layer.state,
         layer.fingerprint, q, n_heads * head_dim, cfg, s.hist, append ? *append : StepKv{},
         select_if ? *select_if : cudaGraphConditionalHandle{}, select_if != nullptr);
  check_launch("plan_kernel");
}

void launch_scores_only(const PagedKv& kv, const LayerSelectBuffers& layer, const float* q, int32_t n_heads,
                        float scale, const SelectScratch& s, cudaStream_t stream) {
  launch_scores_impl(kv, layer, q, n_heads, scale, s, 1, stream);
}

void launch_select(const PagedKv& kv, const LayerSelectBuffers& layer, const float* q, int32_t n_heads, float scale,
                   const SelectScratch& s, cudaStream_t stream) {
  launch_scores_impl(kv, layer, q, n_heads, scale, s, 0, stream);
  launch(score_stats_kernel, dim3(unsigned(s.stats_blocks), unsigned(n_heads)), 256, 0, stream, layer.state, s.scores,
         s.capacity, n_heads, s.partials);
  check_launch("score_stats_kernel");
  launch(softmax_stats_kernel, n_heads, 256, 0, stream, layer.state, s.partials, s.stats_blocks, n_heads, s.stats);
  check_launch("softmax_stats_kernel");
  launch(vote_hist_kernel, s.compact_blocks, kVoteThreads, 0, stream, layer.state, s.scores, s.capacity, s.stats,
         n_heads, s.votes, s.hist);
  check_launch("vote_hist_kernel");
  launch(pick_kernel, 1, kPickThreads, 0, stream, layer.state, s.hist, 21, 2048);
  check_launch("pick_kernel");
  launch(hist_kernel, s.compact_blocks, kVoteThreads, 0, stream, layer.state, s.votes, 10, 2048, s.hist);
  check_launch("hist_kernel");
  launch(pick_kernel, 1, kPickThreads, 0, stream, layer.state, s.hist, 10, 2048);
  check_launch("pick_kernel");
  launch(hist_kernel, s.compact_blocks, kVoteThreads, 0, stream, layer.state, s.votes, 0, 1024, s.hist);
  check_launch("hist_kernel");
  launch(pick_kernel, 1, kPickThreads, 0, stream, layer.state, s.hist, 0, 1024);
  check_launch("pick_kernel");
  launch(compact_count_kernel, s.compact_blocks, kCompactThreads, 0, stream, layer.state, s.votes, s.block_counts);
  check_launch("compact_count_kernel");
  launch(compact_write_kernel, s.compact_blocks, kCompactThreads, 0, stream, layer.state, s.votes, s.block_counts,
         layer.selected, layer.selected_votes);
  check_launch("compact_write_kernel");
}

void launch_fill_random_half(uint16_t* x, int64_t n, uint32_t seed, float scale, cudaStream_t stream) {
  launch(fill_random_half_kernel, 1024, 256, 0, stream, reinterpret_cast<__half*>(x), n, seed, scale);
  check_launch("fill_random_half_kernel");
}

}  // namespace ts::cuda
