// The operations a model forward pass is written over. Backends implement operations, not
// models (DESIGN.md "Layers"). Buffers passed to operations are backend memory obtained from
// alloc(); for the CPU backend that is ordinary host memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gguf/gguf_types.hpp"

namespace ts {

// A 2-D weight matrix in its GGUF type: n_out rows of n_in elements.
struct Weight {
  GgmlType type{};
  int64_t n_in = 0;
  int64_t n_out = 0;
  size_t row_bytes = 0;
  const uint8_t* data = nullptr;  // host copy (mmap'd); backends may keep their own
};

enum class RopeStyle { adjacent, neox };  // llama GGUF: pairs (2i, 2i+1); qwen2: (i, i + d/2)

struct RopeParams {
  RopeStyle style = RopeStyle::adjacent;
  int32_t head_dim = 0;
  float freq_base = 10000.f;
  const float* freq_factors = nullptr;  // head_dim/2 divisors (Llama 3.1 rope_freqs), or null
};

// One layer's slice of the KV cache, head-major [kv_head][token][dim]: keys before RoPE and
// values, both fp16.
// Precision of cached keys: fp16 (default), or f32 — 1.5x the cache, but then keys rotated at
// attention time round to fp16 once, exactly as a cache of rotated fp16 keys (llama.cpp's) holds them.
enum class KeyPrecision { f16, f32 };

struct KvLayerView {
  uint16_t* k = nullptr;   // fp16 keys, or null when k32 holds them
  float* k32 = nullptr;    // f32 keys (KeyPrecision::f32)
  uint16_t* v = nullptr;
  int64_t capacity = 0;  // tokens per head
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
  uint16_t* k_at(int32_t h, int64_t t) const { return k + (int64_t(h) * capacity + t) * head_dim; }
  float* k32_at(int32_t h, int64_t t) const { return k32 + (int64_t(h) * capacity + t) * head_dim; }
  size_t key_bytes() const { return k32 ? sizeof(float) : sizeof(uint16_t); }
  uint16_t* v_at(int32_t h, int64_t t) const { return v + (int64_t(h) * capacity + t) * head_dim; }
};

// Attention of m queries (cache indices q_first .. q_first+m-1) over a set of cached keys.
// A query never sees a key with a larger cache index (causal). Keys and queries are rotated
// with RoPE here, at the given positions, because the cache holds keys before RoPE.
struct AttentionArgs {
  const float* q = nullptr;  // m x n_heads x head_dim, before RoPE
  int64_t m = 0;
  int32_t n_heads = 0;
  KvLayerView kv;
  int64_t q_first = 0;
  const int32_t* keys = nullptr;     // ascending cache indices; null: all of [0, n_keys)
  int64_t n_keys = 0;
  const int32_t* key_pos = nullptr;  // RoPE position per attended key; null: its cache index
  const int32_t* q_pos = nullptr;    // RoPE position per query; null: its cache index
  RopeParams rope;
  float scale = 1.f;
  float* out = nullptr;  // m x n_heads x head_dim
};

// TokenSelect's settings as a backend that selects on its own device takes them (select/ maps
// SelectOptions here; the algorithm is DESIGN.md's, computed there instead of on the host).
struct DeviceSelectConfig {
  int32_t n_init = 128, n_local = 512, k = 2048;
  float tau = 0.9f;
  bool cache = true;  // reuse the last selection when the fingerprint's cosine >= tau
  bool remap = true;  // RoPE positions are ranks in the attention set
  bool full = false;  // dense causal attention (the baseline)
  bool fp8_keys = false;  // score an fp8 copy of the keys (ScoringKeys::fp8)
};

// Layer-steps of device attention since configure(): selection-cache hits and misses, steps
// that selected (the context above the budget, hit or miss) and steps that attended densely.
struct DeviceSelectCounts {
  int64_t hits = 0, misses = 0, selecting_steps = 0, dense_steps = 0;
};

// What one layer selected in the last step (positions ascending, their vote scores).
struct DeviceSelection {
  std::vector<int32_t> positions;
  std::vector<float> votes;
};

// Attention whose KV cache and selection live in the backend's device memory (CUDA): the
// forward pass hands it each layer's q, k and v instead of kv_store, the host policy and
// attention over the host KvCache.
class DeviceAttention {
 public:
  virtual ~DeviceAttention() = default;
  virtual void configure(const DeviceSelectConfig& c) = 0;  // also drops cached selections
  // Before the layers of a step of m tokens at cache index t0.
  virtual void begin_step(int64_t t0, int64_t m) = 0;
  // Stores the step's k and v (m rows of n_kv_heads x head_dim, before RoPE) and writes the
  // attention of q (m x n_heads x head_dim, before RoPE) into out; feeds as for Backend::rmsnorm.
  virtual void layer(int32_t il, const float* q, const float* k, const float* v, int64_t m, int64_t t0, float* out,
                     const Weight* feeds) = 0;
  virtual void truncate(int64_t n) = 0;  // the cache keeps [0, n): cached selections are dropped
  // One layer's cached K and V of tokens [0, n), head-major fp16 ([kv_head][n][head_dim]),
  // copied out of the device or into it (session state files); synchronise.
  virtual void read_kv(int32_t layer, int64_t n, uint16_t* k, uint16_t* v) = 0;
  virtual void write_kv(int32_t layer, int64_t n, const uint16_t* k, const uint16_t* v) = 0;
  // The counts since configure(); synchronises.
  virtual DeviceSelectCounts select_counts() = 0;
  // Every layer's last selection (empty where the layer attended densely); synchronises.
  virtual std::vector<DeviceSelection> last_selection() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  virtual float* alloc(size_t n_floats) = 0;
  virtual void free(float* p) = 0;

  // y[m x n_out] = x[m x n_in] . W^T
  virtual void matmul(const Weight& w, const float* x, int64_t m, float* y) = 0;
  // Several matmuls of the same input (Q/K/V, gate/up) in one pass: ys[i] = x . ws[i]^T.
  virtual void matmul_many(const Weight* const* ws, float* const* ys, int n, const float* x, int64_t m) {
    for (int i = 0; i < n; ++i) matmul(*ws[i], x, m, ys[i]);
  }
  // y[i] = row ids[i] of W, dequantised (embedding lookup).
  virtual void get_rows(const Weight& w, const int32_t* ids, int64_t m, float* y) = 0;
  // y[i] = x[i] / rms(x[i]) * weight, over rows of n. feeds: the weight whose matmul reads y
  // next, or null; a backend may prepare that input (quantise it) in the same pass.
  virtual void rmsnorm(const float* x, const float* weight, int64_t m, int64_t n, float eps, float* y,
                       const Weight* feeds) = 0;
  // x[i] += bias, over rows of n.
  virtual void add_bias(float* x, const float* bias, int64_t m, int64_t n) = 0;
  // y += x, n elements.
  virtual void add(float* y, const float* x, int64_t n) = 0;
  // The residual step between sublayers: x += d, then y = rmsnorm(x) (rows of n; y may be d).
  // One pass on backends that fuse it; the same arithmetic either way.
  virtual void add_rmsnorm(float* x, const float* d, const float* weight, int64_t m, int64_t n, float eps, float* y,
                           const Weight* feeds) {
    add(x, d, m * n);
    rmsnorm(x, weight, m, n, eps, y, feeds);
  }
  // gate = silu(gate) * up, n elements; feeds as for rmsnorm.
  virtual void swiglu(float* gate, const float* up, int64_t n, const Weight* feeds) = 0;
  // Append m tokens' K (before RoPE) and V, row-major [m][n_kv_heads*head_dim], at cache index t0.
  virtual void kv_store(const KvLayerView& kv, int64_t t0, int64_t m, const float* k, const float* v) = 0;
  virtual void attention(const AttentionArgs& args) = 0;
  // TokenSelect criticality: scores[h * n + j] = qbar[h] . K_{h / group}(c0 + j) * scale for
  // candidates j in [0, n = c1 - c0), with keys before RoPE. Reads each key once per KV head.
  virtual void selection_scores(const KvLayerView& kv, const float* qbar, int32_t n_heads, int64_t c0, int64_t c1,
                                float scale, float* scores) = 0;

  // Non-null when attention runs in the backend's own memory (see DeviceAttention).
  virtual DeviceAttention* device_attention() { return nullptr; }
  // Runs one forward step's operations. A backend may record a one-token step and replay the
  // recording for later ones (CUDA graphs), so `ops` must depend only on the tokens and t0
  // given here and on buffers that stay put; `kind` tells recordings apart.
  virtual void run_step(std::span<const int32_t> tokens, int64_t t0, int kind, const std::function<void()>& ops) {
    (void)tokens, (void)t0, (void)kind;
    ops();
  }
  // n floats of backend memory readable on the host (valid until the next call; synchronises).
  virtual const float* host_view(const float* p, size_t n) {
    (void)n;
    return p;
  }
};

// The CPU backend (always available). n_threads <= 0: all hardware threads.
std::unique_ptr<Backend> make_cpu_backend(int n_threads);

}  // namespace ts
