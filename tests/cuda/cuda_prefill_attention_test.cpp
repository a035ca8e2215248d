// The CUDA prefill (chunk) attention against CpuBackend::attention: dense and sparse attended
// sets, remapped and true RoPE positions, both RoPE pairings, group sizes 3, 4 and 8, an
// identity and a shuffled page table, and query sub-blocks forced by small scratch budgets, on
// the tensor cores (close) and in the CPU's order (bit for bit, in a test of its own); and the
// causal softmax kernel alone. Skips without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cuda/cuda_decode_attention.hpp"
#include "backend/cuda/cuda_prefill_attention.hpp"
#include "backend/cuda/device_buffer.hpp"
#include "cuda_test_support.hpp"
#include "cpu/exact_ops.hpp"
#include "cpu/vec_ops.hpp"
#include "cuda/exact_kernels.hpp"
#include "cuda/prefill_kernels.hpp"
#include "util/fp16.hpp"

namespace ts {
namespace {

using test::HostKv;
using test::Shape;


const Shape kSmol{9, 3, 64, RopeStyle::adjacent};
const Shape kQwenLike{32, 8, 128, RopeStyle::neox};
const Shape kGroup8{8, 1, 128, RopeStyle::adjacent};

constexpr int64_t kHostTokens = 2112;     // covers every case's keys and queries
constexpr int64_t kDeviceCapacity = 4096;
constexpr int64_t kQueries = 64;

RopeParams rope_of(const Shape& s) { return {s.style, s.D, 10000.f, nullptr}; }

// kQueries queries at q_first over a set: `keys` ascending, or (empty) all of [0, n_keys).
struct Case {
  std::string name;
  std::vector<int32_t> keys;
  int64_t n_keys;
  int64_t q_first;
  bool remap;
  std::vector<float> q;
};

// Sinks 0..15, 300 random indices below 2000, the local window 2000..2063 holding the queries.
Case sparse_case(bool remap, uint32_t seed) {
  std::vector<int32_t> middle(2000 - 16);
  std::iota(middle.begin(), middle.end(), 16);
  std::shuffle(middle.begin(), middle.end(), std::mt19937(seed));
  middle.resize(300);
  std::vector<int32_t> keys(16);
  std::iota(keys.begin(), keys.end(), 0);
  keys.insert(keys.end(), middle.begin(), middle.end());
  for (int32_t t = 2000; t < 2000 + kQueries; ++t) keys.push_back(t);
  std::sort(keys.begin(), keys.end());
  const int64_t n = int64_t(keys.size());
  return {remap ? "sparse remap" : "sparse true positions", std::move(keys), n, 2000, remap, {}};
}

Case dense_case() { return {"dense", {}, 1000 + kQueries, 1000, false, {}}; }

std::vector<float> random_q(const Shape& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> q(size_t(kQueries * s.H * s.D));
  for (float& x : q) x = nd(rng);
  return q;
}

std::vector<float> cpu_attention(HostKv& kv, const Case& c) {
  const Shape& s = kv.s;
  std::vector<int32_t> set = c.keys;
  if (set.empty()) {
    set.resize(size_t(c.n_keys));
    std::iota(set.begin(), set.end(), 0);
  }
  std::vector<int32_t> key_pos(set.size()), q_pos(static_cast<size_t>(kQueries));
  std::iota(key_pos.begin(), key_pos.end(), 0);
  for (int64_t i = 0; i < kQueries; ++i)
    q_pos[size_t(i)] = int32_t(std::lower_bound(set.begin(), set.end(), int32_t(c.q_first + i)) - set.begin());
  std::vector<float> out(c.q.size());
  AttentionArgs a;
  a.q = c.q.data();
  a.m = kQueries;
  a.n_heads = s.H;
  a.kv = kv.view();
  a.q_first = c.q_first;
  a.keys = c.keys.empty() ? nullptr : c.keys.data();
  a.n_keys = c.n_keys;
  a.key_pos = c.remap ? key_pos.data() : nullptr;
  a.q_pos = c.remap ? q_pos.data() : nullptr;
  a.rope = rope_of(s);
  a.scale = 1.f / std::sqrt(float(s.D));
  a.out = out.data();
  make_cpu_backend(1)->attention(a);
  return out;
}

template <class T>
DeviceBuffer<T> to_device(const std::vector<T>& h, cudaStream_t st) {
  DeviceBuffer<T> d(h.size());
  if (!h.empty())
    cuda::check(cudaMemcpyAsync(d.get(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, st),
                "cudaMemcpyAsync");
  return d;
}

std::vector<float> gpu_attention(CudaDecodeAttention& att, CudaPrefillAttention& pf, const Case& c) {
  const CudaDecodeShape& s = att.shape();
  cudaStream_t st = att.stream();
  DeviceBuffer<int32_t> keys = to_device(c.keys, st);
  DeviceBuffer<float> q = to_device(c.q, st), out(c.q.size());
  cuda::check(cudaMemsetAsync(out.get(), 0xff, c.q.size() * 4, st), "cudaMemsetAsync");  // NaN: unwritten shows
  PrefillAttentionArgs a;
  a.kv = att.kv(0);
  a.rope = att.rope_tables();
  a.keys = c.keys.empty() ? nullptr : keys.get();
  a.n_keys = c.n_keys;
  a.remap = c.remap;
  a.q = q.get();
  a.m = kQueries;
  a.q_first = c.q_first;
  a.n_heads = s.n_heads;
  a.scale = 1.f / std::sqrt(float(s.head_dim));
  a.out = out.get();
  pf.run(a);
  std::vector<float> o(c.q.size());
  cuda::check(cudaMemcpyAsync(o.data(), out.get(), o.size() * 4, cudaMemcpyDeviceToHost, st), "cudaMemcpyAsync");
  cuda::check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
  return o;
}

double max_abs_error(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    e = std::max(e, double(std::abs(a[i] - b[i])));
  }
  return e;
}

// Outputs whose bits differ.
int64_t differing_bits(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], 4) != 0;
  return n;
}

// Every case on the tensor cores (close to the CPU) or in the CPU's order (its bits).
void expect_matches_cpu(bool cpu_order) {
  for (const Shape& s : {kSmol, kQwenLike, kGroup8}) {
    HostKv kv(s, kHostTokens, uint32_t(s.H * 100 + s.D), 1.5f);
    // Sparse sets first, so the dense one grows the gathered buffers of a used object.
    std::vector<Case> cases = {sparse_case(true, 1), sparse_case(false, 2), dense_case()};
    std::vector<std::vector<float>> refs;
    for (size_t c = 0; c < cases.size(); ++c) {
      cases[c].q = random_q(s, uint32_t(10 + c));
      refs.push_back(cpu_attention(kv, cases[c]));
    }
    for (bool shuffled : {false, true}) {
      CudaDecodeAttention att(CudaDecodeShape{1, s.H, s.Hkv, s.D, kDeviceCapacity, rope_of(s)}, cuda::SelectConfig{});
      if (shuffled) {
        std::vector<int32_t> order(size_t(kDeviceCapacity >> cuda::kPageShift));
        std::iota(order.begin(), order.end(), 0);
        std::shuffle(order.begin(), order.end(), std::mt19937(7));
        att.set_page_order(order);
      }
      att.upload_kv(0, kv.k.data(), kv.v.data(), kHostTokens, kHostTokens);
      // 1 GiB: one sub-block; 1 MiB: several, the last one shorter; 1 byte: one query each.
      for (size_t scratch : {size_t(1) << 30, size_t(1) << 20, size_t(1)}) {
        CudaPrefillAttention pf(att.stream(), cpu_order, scratch);
        for (size_t c = 0; c < cases.size(); ++c) {
          const std::vector<float> got = gpu_attention(att, pf, cases[c]);
          const std::string what = cases[c].name + ", H " + std::to_string(s.H) + " Hkv " + std::to_string(s.Hkv) +
                                   " D " + std::to_string(s.D) + ", pages " + (shuffled ? "shuffled" : "in order") +
                                   ", scratch " + std::to_string(scratch);
          if (cpu_order)
            EXPECT_EQ(differing_bits(got, refs[c]), 0) << what << " (CPU order), max |error| "
                                                      << max_abs_error(got, refs[c]);
          else
            EXPECT_LE(max_abs_error(got, refs[c]), 2e-3) << what;
        }
      }
    }
  }
}

TEST(CudaPrefillAttention, MatchesCpuOnTensorCores) {
  TS_SKIP_WITHOUT_GPU();
  expect_matches_cpu(false);
}

// No cuBLAS in this one, so that racecheck can watch the lane-chain and softmax kernels alone.
TEST(CudaPrefillAttention, CpuOrderEqualsCpuBits) {
  TS_SKIP_WITHOUT_GPU();
  expect_matches_cpu(true);
}

// The lane-chain products alone against ExactOps::dot_lanes8, bit for bit: A row- and
// column-major, narrow (2 x 2 tiles per thread) and wide (4 x 4) products, partial tiles, k not
// a multiple of the 32-element stage, two problems per launch. Four launches, so that racecheck
// can watch the kernel through a whole test.
TEST(CudaPrefillAttention, LaneChainProductsEqualCpu) {
  TS_SKIP_WITHOUT_GPU();
  struct Case {
    int64_t n_a, n_b, k;
    bool a_rows;
  };
  constexpr int kBatch = 2;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (const Case& p : {Case{40, 13, 72, true}, Case{300, 21, 136, true}, Case{64, 9, 200, false},
                        Case{260, 37, 48, false}}) {
    const int64_t na_k = p.n_a * p.k, nb_k = p.n_b * p.k;
    std::vector<uint16_t> a(size_t(kBatch * na_k)), b(size_t(kBatch * nb_k));
    for (uint16_t& x : a) x = fp32_to_fp16(nd(rng));
    for (uint16_t& x : b) x = fp32_to_fp16(nd(rng));
    DeviceBuffer<uint16_t> ad(a.size()), bd(b.size());
    DeviceBuffer<float> cd(size_t(kBatch * p.n_a * p.n_b));
    cuda::check(cudaMemcpy(ad.get(), a.data(), a.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
    cuda::check(cudaMemcpy(bd.get(), b.data(), b.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
    // A(i, l) at i * k + l (rows) or l * n_a + i (columns); C column j at j * n_a.
    const cuda::Lanes8Operands o{ad.get(), na_k, p.a_rows ? p.k : 1, p.a_rows ? 1 : p.n_a,
                                 bd.get(), nb_k, p.k, cd.get(), p.n_a * p.n_b, p.n_a};
    cuda::launch_lanes8_products(o, p.n_a, p.n_b, p.k, kBatch, nullptr);
    std::vector<float> got(cd.size());
    cuda::check(cudaMemcpy(got.data(), cd.get(), got.size() * 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
    for (int z = 0; z < kBatch; ++z) {
      std::vector<float> af(static_cast<size_t>(na_k)), bf(static_cast<size_t>(nb_k));
      std::vector<float> want(static_cast<size_t>(p.n_a * p.n_b));
      for (int64_t i = 0; i < p.n_a; ++i)
        for (int64_t l = 0; l < p.k; ++l)
          af[size_t(i * p.k + l)] = fp16_to_fp32(a[size_t(z * na_k + (p.a_rows ? i * p.k + l : l * p.n_a + i))]);
      for (int64_t x = 0; x < nb_k; ++x) bf[size_t(x)] = fp16_to_fp32(b[size_t(z * nb_k + x)]);
      kernels::exact_ops().dot_lanes8(p.n_a, p.n_b, p.k, af.data(), p.k, bf.data(), p.k, want.data(), p.n_a);
      const std::vector<float> gz(got.begin() + z * p.n_a * p.n_b, got.begin() + (z + 1) * p.n_a * p.n_b);
      EXPECT_EQ(differing_bits(gz, want), 0) << "n_a " << p.n_a << " n_b " << p.n_b << " k " << p.k
                                             << (p.a_rows ? " A rows" : " A columns") << ", problem " << z;
    }
  }
}

TEST(CudaPrefillAttention, RejectsUnsupportedShapes) {
  TS_SKIP_WITHOUT_GPU();
  CudaPrefillAttention pf(nullptr, false);
  PrefillAttentionArgs a;
  a.m = 1;
  a.n_keys = 1;
  a.kv.n_kv_heads = 3;
  a.n_heads = 9;
  a.kv.head_dim = 96;
  EXPECT_THROW(pf.run(a), std::runtime_error);
  a.kv.head_dim = 64;
  a.kv.n_kv_heads = 2;
  EXPECT_THROW(pf.run(a), std::runtime_error);
}

// The causal softmax alone (no cuBLAS around it, so that racecheck can watch it by itself): 3
// heads x 5 queries at q_first 295 over 300 keys; query i sees keys < q_first + i + 1, masked
// columns up to `cols` are exact zeros, visible ones equal the CPU's expf softmax after fp16
// rounding.
TEST(CudaPrefillAttention, SoftmaxMatchesCpu) {
  TS_SKIP_WITHOUT_GPU();
  const int64_t heads = 3, mb = 5, n = 300, ld = 320, cols = 304;
  const float scale = 0.125f;
  cuda::PrefillSet set;
  set.n_keys = n;
  set.n_pad = cols;
  cuda::PrefillBlock b;
  b.mb = mb;
  b.q_first = n - mb;
  b.n_heads = heads;
  b.head_dim = 64;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 8.f);
  std::vector<float> s(size_t(heads * mb * ld));
  for (float& x : s) x = nd(rng);
  DeviceBuffer<float> sd(s.size());
  DeviceBuffer<uint16_t> pd(s.size());
  cuda::check(cudaMemcpy(sd.get(), s.data(), s.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
  cuda::check(cudaMemset(pd.get(), 0xff, s.size() * 2), "cudaMemset");
  cuda::launch_prefill_softmax(sd.get(), b, set, ld, cols, scale, pd.get(), nullptr);
  std::vector<uint16_t> p(s.size());
  cuda::check(cudaMemcpy(p.data(), pd.get(), p.size() * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");
  for (int64_t row = 0; row < heads * mb; ++row) {
    const int64_t visible = b.q_first + row % mb + 1;
    const float* sr = &s[size_t(row * ld)];
    float mx = -INFINITY;
    for (int64_t j = 0; j < visible; ++j) mx = std::max(mx, sr[j] * scale);
    double sum = 0;
    for (int64_t j = 0; j < visible; ++j) sum += std::exp(double(sr[j] * scale) - mx);
    for (int64_t j = 0; j < cols; ++j) {
      const float got = fp16_to_fp32(p[size_t(row * ld + j)]);
      const float want = j < visible ? float(std::exp(double(sr[j] * scale) - mx) / sum) : 0.f;
      ASSERT_NEAR(got, want, 1e-3f * std::max(want, 1e-3f)) << "row " << row << " col " << j;
      if (j >= visible) {
        ASSERT_EQ(p[size_t(row * ld + j)], 0) << "masked column " << j;
      }
    }
  }
}

}  // namespace
}  // namespace ts
