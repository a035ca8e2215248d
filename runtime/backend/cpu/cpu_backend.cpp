// The reference backend: every operation on the host, split over a thread pool.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>
#include <vector>

#include <cblas.h>

#include "backend/backend.hpp"
#include "backend/cpu/rope_table.hpp"
#include "cpu/quant.hpp"
#include "cpu/vec_ops.hpp"
#include "util/error.hpp"
#include "util/thread_pool.hpp"

namespace ts {
namespace {

constexpr int64_t kRowBlock = 32;        // weight rows per scheduling unit of a matmul
constexpr int64_t kParallelMin = 1 << 14;  // elementwise ops smaller than this stay on one thread
constexpr int64_t kGemmMinQueries = 8;      // from this many queries, attention runs as GEMMs
constexpr int64_t kQueryBlock = 64;         // queries per attention GEMM tile
constexpr int32_t kMaxHeadDim = 256;
constexpr int64_t kKeyBlock = 256;          // keys per decode-attention task

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int n_threads) : pool_(n_threads), ops_(kernels::vec_ops()) {
    openblas_set_num_threads(1);  // BLAS runs inside our pool's tasks
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

  void rmsnorm(const float* x, const float* weight, int64_t m, int64_t n, float eps, float* y) override {
    pool_.parallel_for(m, [&](int, int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float* xi = x + i * n;
        float* yi = y + i * n;
        const float s = 1.f / std::sqrt(ops_.sum_sq(xi, n) / float(n) + eps);
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

  void swiglu(float* gate, const float* up, int64_t n) override {
    elementwise(n, [&](int64_t b, int64_t e) { ops_.silu_mul(gate + b, up + b, e - b); });
  }

  void kv_store(const KvLayerView& kv, int64_t t0, int64_t m, const float* k, const float* v) override {
    const int64_t row = int64_t(kv.n_kv_heads) * kv.head_dim;
    for (int64_t i = 0; i < m; ++i)
      for (int32_t h = 0; h < kv.n_kv_heads; ++h) {
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

  // Softmax over s[0, n), probabilities rounded to fp16 like the products they feed.
  void softmax_fp16(float* s, int64_t n) {
    if (n <= 0) return;
    const float mx = *std::max_element(s, s + n);
    const float sum = ops_.exp_sub_sum(s, mx, n);
    ops_.scale(s, 1.f / sum, n);
    round_to_fp16(s, n);
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
  std::vector<uint8_t> act_;
  cpu::RopeTable rope_;
  std::vector<float> kf_, vf_;  // attended keys (rotated) and values as f32, [kv_head][key][dim]
  std::vector<float> qall_, sall_, partial_;  // decode: queries, scores, per-block outputs
  std::vector<std::vector<float>> scores_, qrot_;  // per thread
};

void CpuBackend::attention(const AttentionArgs& a) {
  const int64_t nk = a.n_keys;
  int64_t max_pos = 0;
  for (int64_t j = 0; j < nk; ++j) max_pos = std::max<int64_t>(max_pos, a.key_pos ? a.key_pos[j] : (a.keys ? a.keys[j] : j));
  for (int64_t i = 0; i < a.m; ++i) max_pos = std::max<int64_t>(max_pos, a.q_pos ? a.q_pos[i] : a.q_first + i);
  rope_.ensure(a.rope, max_pos + 1);

  if (a.m >= kGemmMinQueries) {
    gather_keys(a);
    return attention_tiled(a, nk);
  }
  attention_decode(a);
}

// Gathers the attended keys once per KV head, rotated at their positions, for the prefill
// GEMMs: shared by the `group` query heads of the head group and by every query of the chunk.
void CpuBackend::gather_keys(const AttentionArgs& a) {
  const int32_t d = a.kv.head_dim, Hkv = a.kv.n_kv_heads;
  const int64_t nk = a.n_keys;
  kf_.resize(size_t(Hkv * nk * d));
  vf_.resize(size_t(Hkv * nk * d));
  pool_.parallel_for(Hkv * nk, [&](int, int64_t b, int64_t e) {
    for (int64_t idx = b; idx < e; ++idx) {
      const int32_t h = int32_t(idx / nk);
      const int64_t j = idx % nk;
      const int64_t t = a.keys ? a.keys[j] : j;
      float* kd = kf_.data() + idx * d;
      ops_.fp16_to_f32(a.kv.k_at(h, t), kd, d);
      cpu::rope_apply(rope_, a.rope.style, d, a.key_pos ? a.key_pos[j] : t, kd);
      round_to_fp16(kd, d);  // one fp16 rounding, as a cache of rotated fp16 keys would hold
      ops_.fp16_to_f32(a.kv.v_at(h, t), vf_.data() + idx * d, d);
    }
  });
}

// Decode (a few queries): keys and values are streamed from the cache once, in blocks of keys
// spread over the threads, with no scratch copy: memory traffic is what bounds this step.
// Pass 1 scores every (query, head, key); pass 2 is each row's softmax; pass 3 accumulates
// P.V per key block into partial outputs that are then summed.
void CpuBackend::attention_decode(const AttentionArgs& a) {
  const int32_t d = a.kv.head_dim, H = a.n_heads, Hkv = a.kv.n_kv_heads, group = H / Hkv;
  const int64_t nk = a.n_keys, blocks = (nk + kKeyBlock - 1) / kKeyBlock, rows = a.m * H;
  qall_.resize(size_t(rows * d));
  for (int64_t i = 0; i < a.m; ++i)
    for (int32_t h = 0; h < H; ++h) load_query(a, i, h, qall_.data() + (i * H + h) * d);
  sall_.resize(size_t(rows * nk));
  pool_.parallel_for(Hkv * blocks, [&](int, int64_t b, int64_t e) {
    float k[kMaxHeadDim];
    for (int64_t task = b; task < e; ++task) {
      const int32_t g = int32_t(task / blocks);
      const int64_t j0 = (task % blocks) * kKeyBlock, j1 = std::min(nk, j0 + kKeyBlock);
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t t = a.keys ? a.keys[j] : j;
        ops_.fp16_to_f32(a.kv.k_at(g, t), k, d);
        cpu::rope_apply(rope_, a.rope.style, d, a.key_pos ? a.key_pos[j] : t, k);
        round_to_fp16(k, d);
        for (int64_t i = 0; i < a.m; ++i)
          for (int32_t hh = 0; hh < group; ++hh) {
            const int64_t r = i * H + g * group + hh;
            sall_[size_t(r * nk + j)] = ops_.dot(qall_.data() + r * d, k, d) * a.scale;
          }
      }
    }
  });
  for (int64_t r = 0; r < rows; ++r) {
    float* sr = sall_.data() + r * nk;
    const int64_t visible = visible_keys(a, a.q_first + r / H);
    softmax_fp16(sr, visible);
    std::fill(sr + visible, sr + nk, 0.f);
  }
  partial_.assign(size_t(blocks * rows * d), 0.f);
  pool_.parallel_for(Hkv * blocks, [&](int, int64_t b, int64_t e) {
    float v[kMaxHeadDim];
    for (int64_t task = b; task < e; ++task) {
      const int32_t g = int32_t(task / blocks);
      const int64_t blk = task % blocks, j0 = blk * kKeyBlock, j1 = std::min(nk, j0 + kKeyBlock);
      for (int64_t j = j0; j < j1; ++j) {
        ops_.fp16_to_f32(a.kv.v_at(g, a.keys ? a.keys[j] : j), v, d);
        for (int64_t i = 0; i < a.m; ++i)
          for (int32_t hh = 0; hh < group; ++hh) {
            const int64_t r = i * H + g * group + hh;
            const float p = sall_[size_t(r * nk + j)];
            if (p != 0.f) ops_.axpy(partial_.data() + (blk * rows + r) * d, p, v, d);
          }
      }
    }
  });
  for (int64_t r = 0; r < rows; ++r) {
    float* o = a.out + r * d;  // row r = query i, head h: out[i][h]
    std::fill_n(o, d, 0.f);
    for (int64_t blk = 0; blk < blocks; ++blk) ops_.axpy(o, 1.f, partial_.data() + (blk * rows + r) * d, d);
  }
}

// Prefill chunks: per KV-head group and block of queries, S = Q.K^T and O = P.V as GEMMs
// (single-threaded BLAS inside each pool task), the block's causal limit trimming the keys.
void CpuBackend::attention_tiled(const AttentionArgs& a, int64_t nk) {
  const int32_t d = a.kv.head_dim, H = a.n_heads, Hkv = a.kv.n_kv_heads, group = H / Hkv;
  const int64_t blocks = (a.m + kQueryBlock - 1) / kQueryBlock;
  pool_.parallel_for(int64_t(Hkv) * blocks, [&](int thread, int64_t b, int64_t e) {
    std::vector<float>& s = scores_[size_t(thread)];
    std::vector<float>& q = qrot_[size_t(thread)];
    for (int64_t task = b; task < e; ++task) {
      const int32_t g = int32_t(task / blocks);
      const int64_t i0 = (task % blocks) * kQueryBlock, i1 = std::min(a.m, i0 + kQueryBlock);
      const int64_t rows = (i1 - i0) * group;  // row (i - i0) * group + hh
      const int64_t cols = visible_keys(a, a.q_first + i1 - 1);
      q.resize(size_t(rows * d) + size_t(rows * d));  // queries, then outputs
      s.resize(size_t(rows * cols));
      float* qb = q.data();
      float* ob = q.data() + rows * d;
      for (int64_t i = i0; i < i1; ++i)
        for (int32_t hh = 0; hh < group; ++hh) load_query(a, i, g * group + hh, qb + ((i - i0) * group + hh) * d);
      const float* kg = kf_.data() + int64_t(g) * nk * d;
      const float* vg = vf_.data() + int64_t(g) * nk * d;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(cols), d, a.scale, qb, d, kg, d, 0.f,
                  s.data(), int(cols));
      for (int64_t r = 0; r < rows; ++r) {
        float* sr = s.data() + r * cols;
        const int64_t visible = visible_keys(a, a.q_first + i0 + r / group);
        softmax_fp16(sr, visible);
        std::fill(sr + visible, sr + cols, 0.f);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), d, int(cols), 1.f, s.data(), int(cols), vg,
                  d, 0.f, ob, d);
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
      ops_.fp16_to_f32(kv.k_at(g, c0 + j), k, d);
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
