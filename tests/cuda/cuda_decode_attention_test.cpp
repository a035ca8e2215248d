// The CUDA decode-step attention against the CPU backend and the CPU TokenSelect policy (the
// reference, DESIGN.md): dense attention, TokenSelect's selected sets (equal up to near-ties
// of the vote) and outputs, RoPE in both pairings and position modes, a shuffled page table,
// the selection cache, ties, a large candidate set, CUDA graph replay, and scoring on the keys'
// fp8 copy. Skips without a GPU.
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cuda/cuda_decode_attention.hpp"
#include "cuda/elementwise_kernels.hpp"
#include "cuda_test_support.hpp"
#include "cpu/quant.hpp"
#include "cpu/vec_ops.hpp"
#include "select/token_select.hpp"
#include "util/fp16.hpp"

namespace ts {
namespace {

using test::HostKv;
using test::Shape;


std::vector<float> random_q(const Shape& s, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, scale);
  std::vector<float> q(size_t(s.H * s.D));
  for (float& x : q) x = nd(rng);
  return q;
}

RopeParams rope_of(const Shape& s) { return {s.style, s.D, 10000.f, nullptr}; }

// ||a - b|| / ||b||
double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += double(a[i] - b[i]) * (a[i] - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

// The GPU side of one test: one layer, a shuffled page table, the host cache uploaded.
struct Gpu {
  CudaDecodeAttention att;
  float* q = nullptr;
  float* out = nullptr;
  Gpu(HostKv& kv, const cuda::SelectConfig& cfg, int64_t capacity)
      : att(CudaDecodeShape{1, kv.s.H, kv.s.Hkv, kv.s.D, capacity, rope_of(kv.s)}, cfg) {
    const int64_t pages = (capacity + 63) / 64;
    std::vector<int32_t> order(static_cast<size_t>(pages));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(7));
    att.set_page_order(order);
    att.upload_kv(0, kv.k.data(), kv.v.data(), std::min(kv.cap, capacity), kv.cap);
    cuda::check(cudaMalloc(&q, size_t(kv.s.H * kv.s.D) * 4), "cudaMalloc");
    cuda::check(cudaMalloc(&out, size_t(kv.s.H * kv.s.D) * 4), "cudaMalloc");
  }
  ~Gpu() {
    cudaFree(q);
    cudaFree(out);
  }
  // T tokens cached; the attention split for at most max_keys attended keys.
  void start(int64_t T, int64_t max_keys) {
    att.set_tokens(int32_t(T));
    att.plan_splits(max_keys);
  }
  std::vector<float> attend(const std::vector<float>& qh, const cuda::RowQuantOut& out_q = {}) {
    cuda::check(cudaMemcpyAsync(q, qh.data(), qh.size() * 4, cudaMemcpyHostToDevice, att.stream()), "cudaMemcpyAsync");
    const size_t n = qh.size();
    std::vector<float> poison(n, NAN);
    cuda::check(cudaMemcpyAsync(out, poison.data(), n * 4, cudaMemcpyHostToDevice, att.stream()), "cudaMemcpyAsync");
    att.attend(0, q, out, nullptr, nullptr, out_q);
    std::vector<float> o(n);
    cuda::check(cudaMemcpyAsync(o.data(), out, n * 4, cudaMemcpyDeviceToHost, att.stream()), "cudaMemcpyAsync");
    cuda::check(cudaStreamSynchronize(att.stream()), "cudaStreamSynchronize");
    return o;
  }
};

// The CPU reference of one decode step at T tokens (the query is token T - 1).
struct Cpu {
  std::unique_ptr<Backend> be = make_cpu_backend(0);
  TokenSelectPolicy policy;
  Shape s;
  Cpu(const Shape& sh, const SelectOptions& o) : policy(*be, 1, sh.H, sh.D, o), s(sh) { policy.set_recording(true); }
  std::vector<float> attend(HostKv& kv, const std::vector<float>& q, int64_t T) {
    policy.begin_step(T - 1, 1);
    const AttentionSet set = policy.plan(0, q.data(), 1, s.H, kv.view(), T - 1);
    std::vector<float> out(q.size());
    AttentionArgs a;
    a.q = q.data();
    a.m = 1;
    a.n_heads = s.H;
    a.kv = kv.view();
    a.q_first = T - 1;
    a.keys = set.keys;
    a.n_keys = set.n_keys;
    a.key_pos = set.key_pos;
    a.q_pos = set.q_pos;
    a.rope = rope_of(s);
    a.scale = 1.f / std::sqrt(float(s.D));
    a.out = out.data();
    be->attention(a);
    return out;
  }
};

// The sets agree except for candidates whose CPU votes tie (within rel_tol) with the k-th.
void expect_same_selection_up_to_ties(const LayerSelection& cpu, const CudaDecodeAttention::Selection& gpu,
                                      double rel_tol) {
  ASSERT_EQ(cpu.positions.size(), gpu.positions.size());
  ASSERT_TRUE(std::is_sorted(gpu.positions.begin(), gpu.positions.end()));
  const float kth = *std::min_element(cpu.votes.begin(), cpu.votes.end());
  std::set<int32_t> a(cpu.positions.begin(), cpu.positions.end()), b(gpu.positions.begin(), gpu.positions.end());
  ASSERT_EQ(b.size(), gpu.positions.size()) << "GPU selection has duplicates";
  size_t differ = 0;
  for (size_t i = 0; i < cpu.positions.size(); ++i) {
    if (!b.count(cpu.positions[i])) {
      ++differ;
      EXPECT_LE(std::abs(cpu.votes[i] - kth), rel_tol * kth) << "CPU selected " << cpu.positions[i] << " (vote "
                                                              << cpu.votes[i] << ", k-th " << kth << "), GPU did not";
    }
  }
  for (size_t i = 0; i < gpu.positions.size(); ++i) {
    if (!a.count(gpu.positions[i])) {
      EXPECT_LE(std::abs(gpu.votes[i] - kth), rel_tol * kth) << "GPU selected " << gpu.positions[i] << " (vote "
                                                              << gpu.votes[i] << ", k-th " << kth << "), CPU did not";
    }
  }
  EXPECT_LE(differ, cpu.positions.size() / 100 + 2) << "too many near-ties swapped";
}

const Shape kSmol{9, 3, 64, RopeStyle::adjacent};
const Shape kLlama8B{32, 8, 128, RopeStyle::adjacent};
const Shape kQwenLike{28, 4, 128, RopeStyle::neox};
const Shape kMha{4, 4, 64, RopeStyle::neox};

TEST(CudaDecodeAttention, DenseMatchesCpu) {
  TS_SKIP_WITHOUT_GPU();
  for (const Shape& s : {kSmol, kLlama8B, kQwenLike, kMha})
    for (int64_t T : {1, 77, 3000, 20000}) {
      HostKv kv(s, T, uint32_t(T), 1.f);
      const std::vector<float> q = random_q(s, uint32_t(T) + 1, 1.f);
      SelectOptions o;
      o.mode = AttentionMode::full;
      Cpu cpu(s, o);
      const std::vector<float> ref = cpu.attend(kv, q, T);
      cuda::SelectConfig cfg;
      cfg.full = 1;
      Gpu gpu(kv, cfg, T);
      gpu.start(T, T);
      const double err = rel_error(gpu.attend(q), ref);
      EXPECT_LT(err, 3e-3) << "H " << s.H << " Hkv " << s.Hkv << " D " << s.D << " T " << T;
    }
}

void tokenselect_case(const Shape& s, int64_t T, PositionMode pm, uint32_t seed) {
  HostKv kv(s, T, seed, 1.5f);
  const std::vector<float> q = random_q(s, seed + 1, 1.5f);
  SelectOptions o;
  o.n_init = 16;
  o.n_local = 64;
  o.k = 256;
  o.cache = false;
  o.positions = pm;
  Cpu cpu(s, o);
  const std::vector<float> ref = cpu.attend(kv, q, T);
  cuda::SelectConfig cfg{16, 64, 256, 0.9f, 0, pm == PositionMode::remap ? 1 : 0, 0};
  Gpu gpu(kv, cfg, T);
  gpu.start(T, 16 + 256 + 64);
  const std::vector<float> out = gpu.attend(q);
  const CudaDecodeAttention::Selection sel = gpu.att.selection(0);
  const std::string what = "H " + std::to_string(s.H) + " D " + std::to_string(s.D) + " T " + std::to_string(T);
  if (T <= o.budget()) {
    EXPECT_EQ(sel.plan, cuda::kPlanDense) << what;
  } else {
    EXPECT_EQ(sel.plan, cuda::kPlanSelect) << what;
    expect_same_selection_up_to_ties(cpu.policy.last_selection()[0], sel, 1e-4);
  }
  EXPECT_LT(rel_error(out, ref), 5e-3) << what;
}

TEST(CudaDecodeAttention, TokenSelectMatchesCpu) {
  TS_SKIP_WITHOUT_GPU();
  for (const Shape& s : {kSmol, kLlama8B, kQwenLike})
    for (int64_t T : {200, 5000, 40000})
      for (PositionMode pm : {PositionMode::remap, PositionMode::true_pos}) tokenselect_case(s, T, pm, uint32_t(T));
}

TEST(CudaDecodeAttention, LargeCandidateSetMatchesCpu) {
  TS_SKIP_WITHOUT_GPU();
  const Shape s = kSmol;
  const int64_t T = 300000;
  HostKv kv(s, T, 11, 1.5f);
  const std::vector<float> q = random_q(s, 12, 1.5f);
  SelectOptions o;  // the paper's configuration: n_init 128, n_local 512, k 2048
  o.cache = false;
  Cpu cpu(s, o);
  const std::vector<float> ref = cpu.attend(kv, q, T);
  cuda::SelectConfig cfg;
  cfg.cache = 0;
  Gpu gpu(kv, cfg, T);
  gpu.start(T, o.budget());
  const std::vector<float> out = gpu.attend(q);
  expect_same_selection_up_to_ties(cpu.policy.last_selection()[0], gpu.att.selection(0), 1e-4);
  EXPECT_LT(rel_error(out, ref), 5e-3);
}

// The combine kernel also writes the output as the output projection's activation blocks:
// byte for byte the CPU's quantisation of the float output it wrote.
TEST(CudaDecodeAttention, QuantisesItsOutputForTheOutputProjection) {
  TS_SKIP_WITHOUT_GPU();
  for (const Shape& s : {kSmol, kLlama8B})
    for (GgmlType wt : {GgmlType::Q4_0, GgmlType::Q4_1}) {
      HostKv kv(s, 3000, 5, 1.5f);
      const std::vector<float> q = random_q(s, 6, 1.5f);
      Gpu gpu(kv, cuda::SelectConfig{}, 3000);
      gpu.start(3000, 3000);
      const int64_t n = int64_t(s.H) * s.D;
      const size_t bytes = kernels::act_row_bytes(wt, n);
      uint8_t* dq = nullptr;
      cuda::check(cudaMalloc(&dq, bytes), "cudaMalloc");
      const cuda::RowQuant f = wt == GgmlType::Q4_0 ? cuda::RowQuant::q8_0 : cuda::RowQuant::q8_1;
      const std::vector<float> out = gpu.attend(q, {f, dq});
      std::vector<uint8_t> got(bytes), want(bytes);
      cuda::check(cudaMemcpy(got.data(), dq, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
      cudaFree(dq);
      kernels::quantize_act_row(wt, out.data(), want.data(), n);
      EXPECT_EQ(got, want) << "H " << s.H << ", " << type_name(uint32_t(wt));
    }
}

TEST(CudaDecodeAttention, TiedVotesTakeTheLowestPositions) {
  TS_SKIP_WITHOUT_GPU();
  const Shape s = kSmol;
  const int64_t T = 4000;
  HostKv kv(s, T, 3, 1.f);
  for (int g = 0; g < s.Hkv; ++g)  // every key of a head the same: every vote ties
    for (int64_t t = 1; t < T; ++t)
      std::copy_n(kv.k.data() + g * T * s.D, s.D, kv.k.data() + (g * T + t) * s.D);
  const std::vector<float> q = random_q(s, 4, 1.f);
  cuda::SelectConfig cfg{16, 64, 256, 0.9f, 0, 1, 0};
  Gpu gpu(kv, cfg, T);
  gpu.start(T, 336);
  gpu.attend(q);
  const CudaDecodeAttention::Selection sel = gpu.att.selection(0);
  std::vector<int32_t> first(256);
  std::iota(first.begin(), first.end(), 16);
  EXPECT_EQ(sel.positions, first);
}

// Decode steps with the selection cache on, replayed from one CUDA graph that advances T on
// the device: hits and misses and outputs as the CPU policy's on the same steps.
TEST(CudaDecodeAttention, SelectionCacheAndGraphReplayMatchCpu) {
  TS_SKIP_WITHOUT_GPU();
  const Shape s = kSmol;
  const int64_t T0 = 6000, steps = 6;
  HostKv kv(s, T0 + steps, 5, 1.5f);
  SelectOptions o;
  o.n_init = 16;
  o.n_local = 64;
  o.k = 256;
  Cpu cpu(s, o);
  cuda::SelectConfig cfg{16, 64, 256, 0.9f, 1, 1, 0};
  Gpu gpu(kv, cfg, T0 + steps);
  gpu.att.plan_splits(16 + 256 + 64 + steps);
  gpu.att.set_tokens(int32_t(T0 - 1));

  cudaGraph_t graph;
  cudaGraphExec_t exec;
  cudaStream_t st = gpu.att.stream();
  ASSERT_EQ(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  gpu.att.advance_tokens(1);
  gpu.att.attend(0, gpu.q, gpu.out);
  ASSERT_EQ(cudaStreamEndCapture(st, &graph), cudaSuccess);
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);

  const std::vector<float> base = random_q(s, 6, 1.5f), other = random_q(s, 7, 1.5f);
  for (int64_t i = 0; i < steps; ++i) {
    // Steps 0-2 move the query a little (hits after the first), step 3 jumps (a miss).
    std::vector<float> q = i < 3 ? base : other;
    std::mt19937 rng(uint32_t(100 + i));
    std::normal_distribution<float> nd(0.f, 0.05f);
    for (float& x : q) x += nd(rng);
    const std::vector<float> ref = cpu.attend(kv, q, T0 + i);
    cuda::check(cudaMemcpyAsync(gpu.q, q.data(), q.size() * 4, cudaMemcpyHostToDevice, st), "cudaMemcpyAsync");
    ASSERT_EQ(cudaGraphLaunch(exec, st), cudaSuccess);
    std::vector<float> out(q.size());
    cuda::check(cudaMemcpyAsync(out.data(), gpu.out, out.size() * 4, cudaMemcpyDeviceToHost, st), "cudaMemcpyAsync");
    cuda::check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
    EXPECT_LT(rel_error(out, ref), 5e-3) << "step " << i;
    const CudaDecodeAttention::Stats gs = gpu.att.stats();
    EXPECT_EQ(gs.hits, cpu.policy.stats().cache_hits) << "step " << i;
    EXPECT_EQ(gs.misses, cpu.policy.stats().cache_misses) << "step " << i;
  }
  EXPECT_GT(cpu.policy.stats().cache_hits, 0);
  EXPECT_GE(cpu.policy.stats().cache_misses, 2);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

// The attention reads a selection's tokens at the cache slots stored with it; pages moved
// under it (a new page order, the cache uploaded again) must not be read through the old slots:
// the same query then selects afresh instead of reusing.
TEST(CudaDecodeAttention, NewPageOrderSelectsAfresh) {
  TS_SKIP_WITHOUT_GPU();
  const Shape s = kLlama8B;
  const int64_t T = 6000;
  HostKv kv(s, T, 11, 1.5f);
  const std::vector<float> q = random_q(s, 12, 1.5f);
  SelectOptions o;
  o.n_init = 16;
  o.n_local = 64;
  o.k = 256;
  o.cache = false;
  Cpu cpu(s, o);
  const std::vector<float> ref = cpu.attend(kv, q, T);
  Gpu gpu(kv, cuda::SelectConfig{16, 64, 256, 0.9f, 1, 1, 0}, T);
  gpu.start(T, o.budget());
  EXPECT_LT(rel_error(gpu.attend(q), ref), 5e-3);
  std::vector<int32_t> order(size_t((T + 63) / 64));
  std::iota(order.begin(), order.end(), 0);
  std::reverse(order.begin(), order.end());
  gpu.att.set_page_order(order);
  gpu.att.upload_kv(0, kv.k.data(), kv.v.data(), T, kv.cap);
  gpu.start(T, o.budget());
  EXPECT_LT(rel_error(gpu.attend(q), ref), 5e-3);
  EXPECT_EQ(gpu.att.selection(0).plan, cuda::kPlanSelect);
  EXPECT_EQ(gpu.att.stats().hits, 0);
}

// fp16 bits -> e4m3 -> fp16 bits, by the CUDA headers' host conversion (the kernels use the
// device instruction).
uint16_t round_to_e4m3(uint16_t h) {
  __half_raw r;
  r.x = h;
  const __nv_fp8_storage_t f = __nv_cvt_halfraw_to_fp8(r, __NV_SATFINITE, __NV_E4M3);
  return __nv_cvt_fp8_to_halfraw(f, __NV_E4M3).x;
}

// Scoring on the keys' fp8 copy selects what the CPU selects from keys rounded to e4m3 (and
// the query to fp16, as the fp8 path multiplies it), up to near-ties of the vote.
TEST(CudaDecodeAttention, Fp8ScoringSelectsAsTheCpuOnRoundedKeys) {
  TS_SKIP_WITHOUT_GPU();
  for (const Shape& s : {kSmol, kLlama8B, kQwenLike})
    for (int64_t T : {5000, 40000}) {
      HostKv kv(s, T, uint32_t(T) + 3, 1.5f);
      HostKv rounded = kv;
      for (uint16_t& k : rounded.k) k = round_to_e4m3(k);
      std::vector<float> q = random_q(s, uint32_t(T) + 4, 1.5f);
      for (float& x : q) x = fp16_to_fp32(fp32_to_fp16(x));
      SelectOptions o;
      o.n_init = 16;
      o.n_local = 64;
      o.k = 256;
      o.cache = false;
      Cpu cpu(s, o);
      cpu.attend(rounded, q, T);
      cuda::SelectConfig cfg{16, 64, 256, 0.9f, 0, 1, 0};
      cfg.fp8_keys = 1;
      Gpu gpu(kv, cfg, T);
      gpu.start(T, 16 + 256 + 64);
      const std::vector<float> out = gpu.attend(q);
      for (float x : out) ASSERT_TRUE(std::isfinite(x));
      SCOPED_TRACE("H " + std::to_string(s.H) + " D " + std::to_string(s.D) + " T " + std::to_string(T));
      expect_same_selection_up_to_ties(cpu.policy.last_selection()[0], gpu.att.selection(0), 3e-3);
    }
}

// Host offset of token t, KV head g, in a one-layer paged pool with page order `order`.
size_t pool_offset(const std::vector<int32_t>& order, const Shape& s, int g, int64_t t) {
  const int64_t row = ((int64_t(order[size_t(t >> 6)]) * s.Hkv + g) << 6) + (t & 63);
  return size_t(row * s.D);
}

// Every writer of keys keeps the fp8 copy: the upload (converted after), a prefill chunk's
// store and a decode step's append, each byte the e4m3 rounding of the stored fp16 key.
TEST(CudaDecodeAttention, Fp8CopyFollowsEveryKeyWriter) {
  TS_SKIP_WITHOUT_GPU();
  const Shape s = kLlama8B;
  const int64_t T0 = 1000, m = 70, cap = 1280;
  HostKv kv(s, cap, 21, 3.f);
  cuda::SelectConfig cfg{16, 64, 256, 0.9f, 1, 1, 0};
  cfg.fp8_keys = 1;
  Gpu gpu(kv, cfg, cap);  // the upload fills the whole capacity; the writers below overwrite
  const size_t row = size_t(s.Hkv * s.D);
  std::vector<float> k(size_t(m + 1) * row), v(k.size());
  std::mt19937 rng(22);
  std::normal_distribution<float> nd(0.f, 4.f);
  for (float& x : k) x = nd(rng);
  for (float& x : v) x = nd(rng);
  DeviceBuffer<float> dk = test::upload(k), dv = test::upload(v);
  cuda::launch_kv_store(gpu.att.kv(0), T0, m, dk.get(), dv.get(), gpu.att.stream());
  gpu.start(T0 + m + 1, T0 + m + 1);
  cuda::check(cudaMemsetAsync(gpu.q, 0, size_t(s.H * s.D) * 4, gpu.att.stream()), "cudaMemsetAsync");
  gpu.att.attend(0, gpu.q, gpu.out, dk.get() + m * row, dv.get() + m * row);  // the step's own K/V at T0 + m

  const size_t n = size_t((cap + 63) / 64 * 64) * row;
  std::vector<uint16_t> k16(n);
  std::vector<uint8_t> k8(n);
  cuda::check(cudaStreamSynchronize(gpu.att.stream()), "cudaStreamSynchronize");
  cuda::check(cudaMemcpy(k16.data(), gpu.att.kv(0).k, n * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");
  cuda::check(cudaMemcpy(k8.data(), gpu.att.kv(0).k8, n, cudaMemcpyDeviceToHost), "cudaMemcpy");
  std::vector<int32_t> order(size_t(cap / 64));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(7));  // as Gpu's
  int64_t checked = 0;
  for (int64_t t : {int64_t(0), T0 - 1, T0, T0 + m - 1, T0 + m, cap - 1})
    for (int g = 0; g < s.Hkv; ++g)
      for (int i = 0; i < s.D; ++i) {
        const size_t off = pool_offset(order, s, g, t) + size_t(i);
        if (t >= T0 && t <= T0 + m) {  // written from the floats
          ASSERT_EQ(k16[off], fp32_to_fp16(k[size_t(t - T0) * row + size_t(g * s.D + i)])) << "t " << t;
        }
        __half_raw r;
        r.x = k16[off];
        ASSERT_EQ(k8[off], __nv_cvt_halfraw_to_fp8(r, __NV_SATFINITE, __NV_E4M3)) << "t " << t << " g " << g << " i " << i;
        ++checked;
      }
  EXPECT_EQ(checked, 6 * s.Hkv * s.D);
}

TEST(CudaDecodeAttention, RejectsUnsupportedShapes) {
  TS_SKIP_WITHOUT_GPU();
  cuda::SelectConfig cfg;
  EXPECT_THROW(CudaDecodeAttention(CudaDecodeShape{1, 9, 3, 96, 1024, {}}, cfg), std::runtime_error);
  EXPECT_THROW(CudaDecodeAttention(CudaDecodeShape{1, 32, 2, 64, 1024, {}}, cfg), std::runtime_error);
  EXPECT_THROW(CudaDecodeAttention(CudaDecodeShape{1, 9, 3, 64, 0, {}}, cfg), std::runtime_error);
}

}  // namespace
}  // namespace ts
