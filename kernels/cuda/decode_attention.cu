// Split ("flash-decoding") attention of one decode query over the step's attended set, read
// straight from the paged cache: blockIdx.y is a KV head, whose K/V rows are read once for all
// its query heads (GQA); blockIdx.x is a split, a contiguous slice of the attended set. L =
// head_dim / 8 lanes hold one key (16 bytes each); keys are rotated with RoPE at their
// (remapped or true) positions on the fly, since the cache holds them before RoPE. Each split
// writes (max, sum) and an unnormalised output per head; a combine kernel merges the splits.
#include <stdexcept>
#include <string>

#include "decode_kernels.hpp"
#include "device_common.cuh"

namespace ts::cuda {
namespace {

constexpr int kAttendThreads = 128;

// The attended set of a step: [0, n_sink) ∪ selected[0, n_sel) ∪ [tail, T).
struct KeySet {
  int n_sink, n_sel, tail, T;
  __device__ int size() const { return n_sink + n_sel + (T - tail); }
  __device__ int at(const int32_t* sel, int j) const {
    return j < n_sink ? j : j < n_sink + n_sel ? sel[j - n_sink] : tail + (j - n_sink - n_sel);
  }
};

__device__ KeySet key_set(const StepState& st) {
  if (st.plan == kPlanDense) return {st.T, 0, st.T, st.T};
  // A reused selection was made when the local window started earlier: the tokens that left the
  // window since are attended too (as on the CPU).
  return {st.c0, st.n_sel, max(st.sel_local_start, st.c0), st.T};
}

// Four resident blocks per multiprocessor (a register cap of 128) up to 4 query heads per KV
// head; latency, not arithmetic, bounds this loop, so resident warps matter most.
template <int D, int G>
__global__ void __launch_bounds__(kAttendThreads, G <= 4 ? 4 : 2) attend_split_kernel(AttendArgs a) {
  constexpr int L = D / 8, KPW = 32 / L, NW = kAttendThreads / 32;
  constexpr int kUnroll = 2;  // keys per lane group in flight (4, with 3 blocks per SM, measured slower)
  const StepState& st = *a.state;
  const KeySet set = key_set(st);
  const int n_keys = set.size();
  constexpr int group = G;
  const int g = blockIdx.y;
  const int lane = threadIdx.x & 31, sub = lane / L, li = lane % L, warp = threadIdx.x >> 5;
  const int chunk = (n_keys + gridDim.x - 1) / gridDim.x;
  const int j0 = min(n_keys, int(blockIdx.x) * chunk), j1 = min(n_keys, j0 + chunk);

  // The group's queries, rotated at the query's position: the last rank, or T - 1.
  const int q_pos = a.remap ? n_keys - 1 : set.T - 1;
  float q[G][8];
#pragma unroll
  for (int hh = 0; hh < G; ++hh) {
#pragma unroll
    for (int e = 0; e < 8; ++e) q[hh][e] = a.q[(g * G + hh) * D + li * 8 + e] * a.scale;
    rope8<D>(q[hh], a.rope, q_pos, li);
  }

  float m[G], l[G], acc[G][8];
#pragma unroll
  for (int hh = 0; hh < G; ++hh) {
    m[hh] = -INFINITY;
    l[hh] = 0.f;
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[hh][e] = 0.f;
  }

  for (int base = j0 + warp * KPW * kUnroll; base < j1; base += NW * KPW * kUnroll) {
    float k[kUnroll][8], v[kUnroll][8];
    int pos[kUnroll];
    bool ok[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = base + u * KPW + sub;
      ok[u] = j < j1;
      const int t = ok[u] ? set.at(a.selected, j) : 0;
      pos[u] = ok[u] ? (a.remap ? j : t) : 0;
      if (ok[u]) {
        const int64_t off = kv_offset(a.kv, g, t) + li * 8;
        load8(a.kv.k + off, k[u]);
        load8(a.kv.v + off, v[u]);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) k[u][e] = v[u][e] = 0.f;
      }
    }
    // Scores of the kUnroll keys for every head, then one softmax rescale per head for all.
    float sc[kUnroll][G];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      rope8<D>(k[u], a.rope, pos[u], li);
#pragma unroll
      for (int hh = 0; hh < G; ++hh) {
        float s = 0.f;
#pragma unroll
        for (int e = 0; e < 8; ++e) s = fmaf(q[hh][e], k[u][e], s);
        s = group_sum<L>(s);  // every lane shuffles, valid key or not
        sc[u][hh] = ok[u] ? s : -INFINITY;
      }
    }
#pragma unroll
    for (int hh = 0; hh < G; ++hh) {
      float mx = m[hh];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) mx = fmaxf(mx, sc[u][hh]);
      if (mx == -INFINITY) continue;  // no valid key yet
      const float corr = __expf(m[hh] - mx);
      m[hh] = mx;
      l[hh] *= corr;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[hh][e] *= corr;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const float p = __expf(sc[u][hh] - mx);
        l[hh] += p;
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[hh][e] = fmaf(p, v[u][e], acc[hh][e]);
      }
    }
  }

  // Merge the warp's lane groups (same li, other keys), then the warps through shared memory.
  __shared__ float sm_ml[NW][G][2];
  __shared__ float sm_acc[NW][G][D];
#pragma unroll
  for (int hh = 0; hh < G; ++hh) {
#pragma unroll
    for (int o = L; o < 32; o <<= 1) {
      const float m2 = __shfl_xor_sync(0xffffffffu, m[hh], o), l2 = __shfl_xor_sync(0xffffffffu, l[hh], o);
      const float mm = fmaxf(m[hh], m2);
      const float w1 = mm == -INFINITY ? 0.f : __expf(m[hh] - mm), w2 = mm == -INFINITY ? 0.f : __expf(m2 - mm);
      l[hh] = l[hh] * w1 + l2 * w2;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[hh][e] = acc[hh][e] * w1 + __shfl_xor_sync(0xffffffffu, acc[hh][e], o) * w2;
      m[hh] = mm;
    }
    if (sub == 0) {
#pragma unroll
      for (int e = 0; e < 8; ++e) sm_acc[warp][hh][li * 8 + e] = acc[hh][e];
      if (li == 0) {
        sm_ml[warp][hh][0] = m[hh];
        sm_ml[warp][hh][1] = l[hh];
      }
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < group * D; idx += blockDim.x) {
    const int hh = idx / D, e = idx % D;
    float mm = -INFINITY;
    for (int w = 0; w < NW; ++w) mm = fmaxf(mm, sm_ml[w][hh][0]);
    float ll = 0.f, o = 0.f;
    if (mm != -INFINITY)
      for (int w = 0; w < NW; ++w) {
        const float wt = __expf(sm_ml[w][hh][0] - mm);
        ll += sm_ml[w][hh][1] * wt;
        o += sm_acc[w][hh][e] * wt;
      }
    const int64_t row = int64_t(blockIdx.x) * a.n_heads + g * group + hh;
    a.part_o[row * D + e] = o;
    if (e == 0) a.part_ml[row] = make_float2(mm, ll);
  }
}

// out[h] = the splits' outputs merged by their softmax statistics. Block (h, x) covers 32
// elements of head h; its 8 rows of threads take every 8th split, then add up.
__global__ void __launch_bounds__(256) attend_combine_kernel(const float* part_o, const float2* part_ml, int splits,
                                                             int n_heads, int d, float* out) {
  __shared__ float red[8][32][2];
  __shared__ float max_part[256];
  const int h = blockIdx.x, tid = threadIdx.y * 32 + threadIdx.x, e = blockIdx.y * 32 + threadIdx.x;
  float mm = -INFINITY;
  for (int s = tid; s < splits; s += 256) mm = fmaxf(mm, part_ml[int64_t(s) * n_heads + h].x);
  max_part[tid] = mm;
  __syncthreads();
  for (int o = 128; o > 0; o >>= 1) {
    if (tid < o) max_part[tid] = fmaxf(max_part[tid], max_part[tid + o]);
    __syncthreads();
  }
  mm = max_part[0];
  float ll = 0.f, acc = 0.f;
#pragma unroll 4
  for (int s = threadIdx.y; s < splits; s += 8) {
    const float2 ml = part_ml[int64_t(s) * n_heads + h];
    const float w = ml.x == -INFINITY ? 0.f : __expf(ml.x - mm);
    ll += ml.y * w;
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
    out[h * d + e] = acc / ll;
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
      attend_split_kernel<64, decltype(gc)::value><<<grid, kAttendThreads, 0, stream>>>(a);
    else
      attend_split_kernel<128, decltype(gc)::value><<<grid, kAttendThreads, 0, stream>>>(a);
  });
  check(cudaGetLastError(), "attend_split_kernel");
  attend_combine_kernel<<<dim3(unsigned(a.n_heads), unsigned(a.kv.head_dim / 32)), dim3(32, 8), 0, stream>>>(
      a.part_o, a.part_ml, a.splits, a.n_heads, a.kv.head_dim, a.out);
  check(cudaGetLastError(), "attend_combine_kernel");
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
