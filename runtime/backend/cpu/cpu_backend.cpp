// The reference backend: every operation on the host, split over a thread pool.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cpu/rope_table.hpp"
#include "cpu/exact_ops.hpp"
#include "cpu/quant.hpp"
#include "cpu/vec_ops.hpp"
#include "util/error.hpp"
#include "util/thread_pool.hpp"

namespace ts {
namespace {

constexpr int64_t kRowBlock = 32;        // weight rows per scheduling unit of a matmul
constexpr int64_t kParallelMin = 1 << 14;  // elementwise ops smaller than this stay on one thread
constexpr int64_t kQueryBlock = 64;         // queries per attention GEMM tile
constexpr int32_t kMaxHeadDim = 256;
constexpr int64_t kKeyBlock = 256;          // keys per decode-attention task

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int n_threads) : pool_(n_threads), ops_(kernels::vec_ops()), exact_(kernels::exact_ops()) {
    scores_.resize(size_t(pool_.size()));
    qrot_.resize(size_t(pool_.size()));
  }

  std::string name() const override { return "cpu"; }

  float* alloc(size_t n) override {
    void* p = std::aligned_alloc(64, std::max<size_t>(64, (n * sizeof(float) + 63) / 64 * 64));
    if (!p) fail(Status::out_of_memory, "cpu backend: cannot allocate " + std::to_string(n * 4) + " bytes");
    return static_cast<float*>(p);
  }
  void free(float* p) override { std::free(p); }

  void matmul(const Weight& w, const float* x, int64_t m, float* y) override {
    const Weight* ws[1] = {&w};
    float* ys[1] = {y};
    matmul_many(ws, ys, 1, x, m);
  }

  // Quantises x once and runs every weight's row blocks in one parallel loop (one barrier).
  // Weights whose activation format differs from the first are run separately.
  void matmul_many(const Weight* const* ws, float* const* ys, int n, const float* x, int64_t m) override {
    const Weight& w0 = *ws[0];
    const size_t arb = kernels::act_row_bytes(w0.type, w0.n_in);
    act_.resize(size_t(m) * arb);
    uint8_t* act = act_.data();
    auto quantize = [&](int, int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) kernels::quantize_act_row(w0.type, x + i * w0.n_in, act + i * arb, w0.n_in);
    };
    if (m < 8) quantize(0, 0, m);  // not worth a barrier
    else pool_.parallel_for(m, quantize);
    int same = 1;
    while (same < n && same < 8 && kernels::same_activation_format(ws[same]->type, w0.type) && ws[same]->n_in == w0.n_in) ++same;
    int64_t first_block[8] = {0}, blocks = 0;
    for (int i = 0; i < same; ++i) {
      first_block[i] = blocks;
      blocks += (ws[i]->n_out + kRowBlock - 1) / kRowBlock;
    }
    pool_.parallel_for(blocks, [&](int, int64_t b, int64_t e) {
      for (int i = 0; i < same && b < e; ++i) {
        const int64_t end_i = i + 1 < same ? first_block[i + 1] : blocks;
        if (b >= end_i) continue;
        const Weight& w = *ws[i];
        const int64_t lo = b - first_block[i], hi = std::min(e, end_i) - first_block[i];
        kernels::matmul_tile(w.type, w.n_in, w.data, w.row_bytes, lo * kRowBlock, std::min(w.n_out, hi * kRowBlock),
                             act, arb, m, ys[i], w.n_out);
        b = std::min(e, end_i);
      }
    });
    if (same < n) matmul_many(ws + same, ys + same, n - same, x, m);
  }

  void get_rows(const Weight& w, const int32_t* ids, int64_t m, float* y) override {
    for (int64_t i = 0; i < m; ++i) {
      if (ids[i] < 0 || ids[i] >= w.n_out)
        fail(Status::invalid_arg, "token id " + std::to_string(ids[i]) + " outside the vocabulary");
      kernels::dequantize_row(w.type, w.data + size_t(ids[i]) * w.row_bytes, y + i * w.n_in, w.n_in);
    }
  }

  void rmsnorm(const float* x, const float* weight, int64_t m, int64_t n, float eps, float* y, const Weight*) override {
    pool_.parallel_for(m, [&](int, int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float* xi = x + i * n;
        float* yi = y + i * n;
        const float s = exact_.rms_scale(xi, n, eps);
        for (int64_t j = 0; j < n; ++j) yi[j] = xi[j] * s * weight[j];
      }
    });
  }

  void add_bias(float* x, const float* bias, int64_t m, int64_t n) override {
    for (int64_t i = 0; i < m; ++i) ops_.axpy(x + i * n, 1.f, bias, n);
  }

  void add(float* y, const float* x, int64_t n) override {
    elementwise(n, [&](int64_t b, int64_t e) { ops_.axpy(y + b, 1.f, x + b, e - b); });
  }

  void swiglu(float* gate, const float* up, int64_t n, const Weight*) override {
    elementwise(n, [&](int64_t b, int64_t e) { exact_.silu_mul(gate + b, up + b, e - b); });
  }

  void kv_store(const KvLayerView& kv, int64_t t0, int64_t m, const float* k, const float* v) override {
    const int64_t row = int64_t(kv.n_kv_heads) * kv.head_dim;
    for (int64_t i = 0; i < m; ++i)
      for (int32_t h = 0; h < kv.n_kv_heads; ++h) {
        if (kv.k32)
          std::copy_n(k + i * row + int64_t(h) * kv.head_dim, kv.head_dim, kv.k32_at(h, t0 + i));
        else
          ops_.f32_to_fp16(k + i * row + int64_t(h) * kv.head_dim, kv.k_at(h, t0 + i), kv.head_dim);
        ops_.f32_to_fp16(v + i * row + int64_t(h) * kv.head_dim, kv.v_at(h, t0 + i), kv.head_dim);
      }
  }

  void attention(const AttentionArgs& a) override;
  void attention_tiled(const AttentionArgs& a, int64_t nk);
  void attention_decode(const AttentionArgs& a);
  void gather_keys(const AttentionArgs& a);
  void selection_scores(const KvLayerView& kv, const float* qbar, int32_t n_heads, int64_t c0, int64_t c1,
                        float scale, float* scores) override;

 private:
  // Keys query i (cache index qi) may see: causal, over the ascending attended set.
  static int64_t visible_keys(const AttentionArgs& a, int64_t qi) {
    return a.keys ? std::upper_bound(a.keys, a.keys + a.n_keys, qi) - a.keys : std::min<int64_t>(a.n_keys, qi + 1);
  }

  // Query i, head hq: rotated at its position and rounded to fp16 (the precision of K and V,
  // as in llama.cpp's and FlashAttention's fp16 products).
  void load_query(const AttentionArgs& a, int64_t i, int32_t hq, float* q) {
    const int32_t d = a.kv.head_dim;
    std::copy_n(a.q + (i * a.n_heads + hq) * d, d, q);
    cpu::rope_apply(rope_, a.rope.style, d, a.q_pos ? a.q_pos[i] : a.q_first + i, q);
    round_to_fp16(q, d);
  }

  // Cached key (head h, cache index t) as f32, rotated at position pos and rounded to fp16, as
  // a cache of rotated fp16 keys would hold it.
  void load_key(const KvLayerView& kv, int32_t h, int64_t t, const AttentionArgs& a, int64_t pos, float* k) {
    read_key(kv, h, t, k);
    cpu::rope_apply(rope_, a.rope.style, kv.head_dim, pos, k);
    round_to_fp16(k, kv.head_dim);
  }

  // Cached key (head h, cache index t) as stored, before RoPE, as f32.
  void read_key(const KvLayerView& kv, int32_t h, int64_t t, float* k) {
    if (kv.k32)
      std::copy_n(kv.k32_at(h, t), kv.head_dim, k);
    else
      ops_.fp16_to_f32(kv.k_at(h, t), k, kv.head_dim);
  }

  // x = fp16(x), through the vector conversions.
  void round_to_fp16(float* x, int64_t n) {
    uint16_t h[64];
    for (int64_t i = 0; i < n; i += 64) {
      const int64_t c = std::min<int64_t>(64, n - i);
      ops_.f32_to_fp16(x + i, h, c);
      ops_.fp16_to_f32(h, x + i, c);
    }
  }

  template <class F>
  void elementwise(int64_t n, F&& f) {
    if (n < kParallelMin) return f(0, n);
    pool_.parallel_for(n, [&](int, int64_t b, int64_t e) { f(b, e); });
  }

  ThreadPool pool_;
  const kernels::VecOps& ops_;
  const kernels::ExactOps& exact_;
  std::vector<uint8_t> act_;
  cpu::RopeTable rope_;
  // Prefill: attended keys (rotated, fp16-rounded) [kv_head][key][dim] and values transposed
  // [kv_head][dim][key], keys padded with zeros to a multiple of 8.
  std::vector<float> kf_, vt_;
  std::vector<float> qall_, sall_, acc_;  // decode: queries, scores/probabilities, P.V chains
  std::vector<std::vector<float>> scores_, qrot_;  // per thread
};

void CpuBackend::attention(const AttentionArgs& a) {
  const int64_t nk = a.n_keys;
  int64_t max_pos = 0;
  for (int64_t j = 0; j < nk; ++j) max_pos = std::max<int64_t>(max_pos, a.key_pos ? a.key_pos[j] : (a.keys ? a.keys[j] : j));
  for (int64_t i = 0; i < a.m; ++i) max_pos = std::max<int64_t>(max_pos, a.q_pos ? a.q_pos[i] : a.q_first + i);
  rope_.ensure(a.rope, max_pos + 1);
  // llama.cpp's arithmetic differs for one query (vector dot products) and for several (GEMM
  // tiles); we follow it (kernels/cpu/exact_ops.hpp).
  if (a.m > 1) {
    gather_keys(a);
    return attention_tiled(a, nk);
  }
  attention_decode(a);
}

// Gathers the attended keys once per KV head, rotated at their positions, and the values
// transposed: shared by the `group` query heads of the head group and by every query of the chunk.
void CpuBackend::gather_keys(const AttentionArgs& a) {
  const int32_t d = a.kv.head_dim, Hkv = a.kv.n_kv_heads;
  const int64_t nk = a.n_keys, nk8 = (nk + 7) / 8 * 8;
  kf_.resize(size_t(Hkv * nk * d));
  vt_.assign(size_t(Hkv * d * nk8), 0.f);
  pool_.parallel_for(Hkv * nk, [&](int, int64_t b, int64_t e) {
    float v[kMaxHeadDim];
    for (int64_t idx = b; idx < e; ++idx) {
      const int32_t h = int32_t(idx / nk);
      const int64_t j = idx % nk;
      const int64_t t = a.keys ? a.keys[j] : j;
      load_key(a.kv, h, t, a, a.key_pos ? a.key_pos[j] : t, kf_.data() + idx * d);
      ops_.fp16_to_f32(a.kv.v_at(h, t), v, d);
      float* vt = vt_.data() + int64_t(h) * d * nk8 + j;
      for (int32_t x = 0; x < d; ++x) vt[x * nk8] = v[x];
    }
  });
}

// One query: scores split over the threads by key blocks; per head, the softmax; then P.V as
// 32 fused-multiply-add chains per output (key j feeds chain j % 32), split by head group and
// output slice. Keys and values are read from the cache with no scratch copy.
void CpuBackend::attention_decode(const AttentionArgs& a) {
  const int32_t d = a.kv.head_dim, H = a.n_heads, Hkv = a.kv.n_kv_heads, group = H / Hkv;
  const int64_t nk = a.n_keys, blocks = (nk + kKeyBlock - 1) / kKeyBlock;
  qall_.resize(size_t(H * d));
  for (int32_t h = 0; h < H; ++h) load_query(a, 0, h, qall_.data() + h * d);
  sall_.resize(size_t(H * nk));
  pool_.parallel_for(Hkv * blocks, [&](int, int64_t b, int64_t e) {
    float k[kMaxHeadDim];
    for (int64_t task = b; task < e; ++task) {
      const int32_t g = int32_t(task / blocks);
      const int64_t j0 = (task % blocks) * kKeyBlock, j1 = std::min(nk, j0 + kKeyBlock);
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t t = a.keys ? a.keys[j] : j;
        load_key(a.kv, g, t, a, a.key_pos ? a.key_pos[j] : t, k);
        for (int32_t hh = 0; hh < group; ++hh) {
          const int64_t r = g * group + hh;
          sall_[size_t(r * nk + j)] = exact_.dot_lanes32(qall_.data() + r * d, k, d) * a.scale;
        }
      }
    }
  });
  const int64_t visible = visible_keys(a, a.q_first);
  for (int32_t r = 0; r < H; ++r) {
    float* sr = sall_.data() + int64_t(r) * nk;
    exact_.softmax(sr, visible, nk);
    round_to_fp16(sr, visible);
  }
  constexpr int64_t kSlice = 16;  // outputs per P.V task
  const int64_t slices = (d + kSlice - 1) / kSlice;
  acc_.resize(size_t(H) * 32 * size_t(d));
  pool_.parallel_for(Hkv * slices, [&](int, int64_t b, int64_t e) {
    float v[kMaxHeadDim];
    for (int64_t task = b; task < e; ++task) {
      const int32_t g = int32_t(task / slices);
      const int64_t x0 = (task % slices) * kSlice, w = std::min<int64_t>(kSlice, d - x0);
      for (int32_t hh = 0; hh < group; ++hh) {
        float* acc = acc_.data() + int64_t(g * group + hh) * 32 * d;
        for (int c = 0; c < 32; ++c) std::fill_n(acc + c * d + x0, w, 0.f);
      }
      for (int64_t j = 0; j < visible; ++j) {
        ops_.fp16_to_f32(a.kv.v_at(g, a.keys ? a.keys[j] : j) + x0, v, w);
        for (int32_t hh = 0; hh < group; ++hh) {
          const int64_t r = g * group + hh;
          exact_.fma_row(acc_.data() + (r * 32 + j % 32) * d + x0, sall_[size_t(r * nk + j)], v, w);
        }
      }
    }
  });
  for (int32_t r = 0; r < H; ++r) exact_.fold_lanes32(acc_.data() + int64_t(r) * 32 * d, d, a.out + int64_t(r) * d);
}

// Several queries: per KV-head group and block of queries, S = Q.K^T and O = P.V as lane-chain
// GEMM tiles, the block's causal limit trimming the keys.
void CpuBackend::attention_tiled(const AttentionArgs& a, int64_t nk) {
  const int32_t d = a.kv.head_dim, H = a.n_heads, Hkv = a.kv.n_kv_heads, group = H / Hkv;
  const int64_t blocks = (a.m + kQueryBlock - 1) / kQueryBlock, nk8 = (nk + 7) / 8 * 8;
  pool_.parallel_for(int64_t(Hkv) * blocks, [&](int thread, int64_t b, int64_t e) {
    std::vector<float>& s = scores_[size_t(thread)];
    std::vector<float>& q = qrot_[size_t(thread)];
    for (int64_t task = b; task < e; ++task) {
      const int32_t g = int32_t(task / blocks);
      const int64_t i0 = (task % blocks) * kQueryBlock, i1 = std::min(a.m, i0 + kQueryBlock);
      const int64_t rows = (i1 - i0) * group;  // row (i - i0) * group + hh
      const int64_t cols = visible_keys(a, a.q_first + i1 - 1), cols8 = (cols + 7) / 8 * 8;
      q.resize(size_t(rows * d) + size_t(rows * d));  // queries, then outputs
      s.resize(size_t(rows * cols8));
      float* qb = q.data();
      float* ob = q.data() + rows * d;
      for (int64_t i = i0; i < i1; ++i)
        for (int32_t hh = 0; hh < group; ++hh) load_query(a, i, g * group + hh, qb + ((i - i0) * group + hh) * d);
      const float* kg = kf_.data() + int64_t(g) * nk * d;
      const float* vg = vt_.data() + int64_t(g) * d * nk8;
      exact_.dot_lanes8(cols, rows, d, kg, d, qb, d, s.data(), cols8);
      for (int64_t r = 0; r < rows; ++r) {
        float* sr = s.data() + r * cols8;
        const int64_t visible = visible_keys(a, a.q_first + i0 + r / group);
        for (int64_t j = 0; j < visible; ++j) sr[j] *= a.scale;
        exact_.softmax(sr, visible, cols8);
        round_to_fp16(sr, visible);
      }
      exact_.dot_lanes8(d, rows, cols8, vg, nk8, s.data(), cols8, ob, d);
      for (int64_t i = i0; i < i1; ++i)
        for (int32_t hh = 0; hh < group; ++hh)
          std::copy_n(ob + ((i - i0) * group + hh) * d, d, a.out + (i * H + g * group + hh) * d);
    }
  });
}

void CpuBackend::selection_scores(const KvLayerView& kv, const float* qbar, int32_t n_heads, int64_t c0,
                                  int64_t c1, float scale, float* scores) {
  const int32_t d = kv.head_dim, group = n_heads / kv.n_kv_heads;
  const int64_t n = c1 - c0;
  pool_.parallel_for(int64_t(kv.n_kv_heads) * n, [&](int, int64_t b, int64_t e) {
    float k[kMaxHeadDim];
    for (int64_t idx = b; idx < e; ++idx) {
      const int32_t g = int32_t(idx / n);
      const int64_t j = idx % n;
      read_key(kv, g, c0 + j, k);
      for (int32_t hh = 0; hh < group; ++hh) {
        const int32_t h = g * group + hh;
        scores[int64_t(h) * n + j] = ops_.dot(qbar + int64_t(h) * d, k, d) * scale;
      }
    }
  });
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int n_threads) { return std::make_unique<CpuBackend>(n_threads); }

}  // namespace ts
