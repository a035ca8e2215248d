#include "backend/cuda/cuda_backend.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_decode_attention.hpp"
#include "backend/cuda/cuda_prefill_attention.hpp"
#include "backend/cuda/device_buffer.hpp"
#include "cpu/quant.hpp"
#include "cuda/elementwise_kernels.hpp"
#include "cuda/exact_kernels.hpp"
#include "cuda/matmul_kernels.hpp"
#include "util/error.hpp"

namespace ts {
namespace {

// Device memory that grows on demand and keeps its largest size.
template <class T>
struct Scratch {
  DeviceBuffer<T> buf;
  T* get(size_t n) {
    if (buf.size() < n) buf = DeviceBuffer<T>(n);
    return buf.get();
  }
};

// Pinned host memory, for copies a recorded graph replays.
template <class T>
class Pinned {
 public:
  Pinned() = default;
  explicit Pinned(size_t n) : n_(n) { cuda::check(cudaMallocHost(reinterpret_cast<void**>(&p_), n * sizeof(T)), "cudaMallocHost"); }
  Pinned(Pinned&& o) noexcept { *this = std::move(o); }
  Pinned& operator=(Pinned&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~Pinned() {
    if (p_) cudaFreeHost(p_);
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

constexpr size_t kTileBytes = size_t(128) << 20;  // dequantised fp16 weight rows per GEMM
// Rows of at least this many inputs go through cuBLAS's fp16 tensor-core GEMM in a prefill
// chunk; smaller ones (small models, bound by latency more than arithmetic) keep the CPU's
// 8-bit activations and its operation order (exact_kernels.hpp), as does the prefill attention
// of models whose attention is that narrow, so that their logits equal the CPU's.
constexpr int64_t kTensorCoreMinInputs = 2048;

cuda::SelectConfig to_kernels(const DeviceSelectConfig& c) {
  cuda::SelectConfig k;
  k.n_init = c.n_init;
  k.n_local = c.n_local;
  k.k = c.k;
  k.tau = c.tau;
  k.cache = c.cache ? 1 : 0;
  k.remap = c.remap ? 1 : 0;
  k.full = c.full ? 1 : 0;
  k.fp8_keys = c.fp8_keys ? 1 : 0;
  return k;
}

void cublas_check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail(Status::internal, fmt::format("CUDA backend: {} failed (cuBLAS status {})", what, int(s)));
}

class CudaBackend final : public Backend, public DeviceAttention {
 public:
  CudaBackend(const CudaBackendShape& s, const DeviceSelectConfig& cfg)
      : shape_(s),
        k_max_(cfg.k),
        attn_(CudaDecodeShape{s.n_layers, s.n_heads, s.n_kv_heads, s.head_dim, s.capacity, s.rope}, to_kernels(cfg)),
        prefill_(attn_.stream(), int64_t(s.n_heads) * s.head_dim < kTensorCoreMinInputs) {
    stream_ = attn_.stream();
    cublas_check(cublasCreate(&blas_), "cublasCreate");
    cublas_check(cublasSetStream(blas_, stream_), "cublasSetStream");
    for (Slot& sl : slots_) {
      sl.host = Pinned<int32_t>(size_t(s.max_batch) + 1);
      sl.dev = DeviceBuffer<int32_t>(size_t(s.max_batch) + 1);
      cuda::check(cudaEventCreateWithFlags(&sl.done, cudaEventDisableTiming), "cudaEventCreate");
    }
    configure(cfg);
  }

  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    for (auto& g : graphs_)
      if (g.exec) cudaGraphExecDestroy(g.exec);
    for (Slot& sl : slots_) cudaEventDestroy(sl.done);
    cublasDestroy(blas_);
  }

  std::string name() const override { return "cuda"; }

  float* alloc(size_t n) override {
    float* p = nullptr;
    if (cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(n, 1) * sizeof(float)) != cudaSuccess) {
      cudaGetLastError();
      fail(Status::out_of_memory, fmt::format("CUDA backend: out of GPU memory allocating {} MiB", (n * 4) >> 20));
    }
    return p;
  }
  void free(float* p) override {
    drop_graphs();  // a recording may name the buffer
    cudaStreamSynchronize(stream_);
    cudaFree(p);
  }

  void matmul(const Weight& w, const float* x, int64_t m, float* y) override {
    const Weight* ws[1] = {&w};
    matmul_many(ws, &y, 1, x, m);
  }

  // Weights that share an activation format (Q/K/V, gate/up) share one quantisation of x; for
  // one row, consecutive weights of one type also share one launch.
  void matmul_many(const Weight* const* ws, float* const* ys, int n, const float* x, int64_t m) override {
    const ReadyAct ready = std::exchange(ready_, {});
    const bool use_ready = ready.x == x && m == 1;
    const void* act = use_ready ? ready.act : nullptr;
    GgmlType act_for = use_ready ? ready.type : GgmlType{};  // the weight type act was quantised for
    for (int i = 0; i < n;) {
      const Weight& w = *ws[i];
      if (m > cuda::kGemvMaxRows && w.n_in >= kTensorCoreMinInputs) {
        gemm_f16(w, x, m, ys[i++]);
        continue;
      }
      if (!act || !kernels::same_activation_format(act_for, w.type)) {
        void* a = act_buffer(w);
        cuda::launch_quantize_act(w.type, x, m, w.n_in, a, stream_);
        act = a;
        act_for = w.type;
      }
      if (m == 1) {
        cuda::GemvTarget ts[cuda::kGemvMaxTargets];
        int k = 0;
        for (; k < cuda::kGemvMaxTargets && i + k < n && ws[i + k]->type == w.type; ++k)
          ts[k] = {device_weight(*ws[i + k]), ws[i + k]->n_out, ys[i + k]};
        cuda::launch_gemv_row(w.type, w.row_bytes, w.n_in, ts, k, act, stream_);
        i += k;
        continue;
      }
      if (w.n_in < kTensorCoreMinInputs && cuda::gemv_exact_supports(w.type))
        cuda::launch_gemv_exact(w.type, device_weight(w), w.row_bytes, w.n_in, w.n_out, act, m, ys[i], w.n_out, stream_);
      else
        cuda::launch_gemv(w.type, device_weight(w), w.row_bytes, w.n_in, w.n_out, act, m, ys[i], w.n_out, stream_);
      ++i;
    }
  }

  // Prefill rows of large weights on the tensor cores: fp16 activations against fp16 tiles of
  // dequantised rows, fp32 accumulation.
  void gemm_f16(const Weight& w, const float* x, int64_t m, float* y) {
    const uint8_t* dw = device_weight(w);
    uint16_t* x16 = x16_.get(size_t(m * w.n_in));
    cuda::launch_f32_to_f16(x, x16, m * w.n_in, stream_);
    const int64_t tile = std::clamp<int64_t>(int64_t(kTileBytes / (size_t(w.n_in) * 2)), 1, w.n_out);
    uint16_t* w16 = w16_.get(size_t(tile * w.n_in));
    const float one = 1.f, zero = 0.f;
    for (int64_t r0 = 0; r0 < w.n_out; r0 += tile) {
      const int64_t rows = std::min(tile, w.n_out - r0);
      cuda::launch_dequantize_f16(w.type, dw, w.row_bytes, w.n_in, r0, r0 + rows, w16, stream_);
      // Row-major Y (m x n_out) is column-major n_out x m: Y[r0.., :] = W_tile . X^T.
      cublas_check(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(rows), int(m), int(w.n_in), &one, w16, CUDA_R_16F,
                                int(w.n_in), x16, CUDA_R_16F, int(w.n_in), &zero, y + r0, CUDA_R_32F, int(w.n_out),
                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   "cublasGemmEx");
    }
  }

  void get_rows(const Weight& w, const int32_t* ids, int64_t m, float* y) override {
    for (int64_t i = 0; i < m; ++i)
      if (ids[i] < 0 || ids[i] >= w.n_out)
        fail(Status::invalid_arg, "token id " + std::to_string(ids[i]) + " outside the vocabulary");
    if (m > shape_.max_batch) fail(Status::invalid_arg, "CUDA backend: more rows than the step holds");
    ready_ = {};
    Slot& sl = slots_[slot_];
    std::memcpy(sl.host.get() + 1, ids, size_t(m) * 4);
    cuda::check(cudaMemcpyAsync(sl.dev.get() + 1, sl.host.get() + 1, size_t(m) * 4, cudaMemcpyHostToDevice, stream_),
                "cudaMemcpyAsync");
    cuda::launch_get_rows(w.type, device_weight(w), w.row_bytes, w.n_in, sl.dev.get() + 1, m, y, stream_);
  }

  // The producers of a matmul's input quantise one row for it in their own pass where they can
  // (ready_); every other operation that writes floats drops that.
  void rmsnorm(const float* x, const float* weight, int64_t m, int64_t n, float eps, float* y,
               const Weight* feeds) override {
    const cuda::RowQuantOut q = row_quant(feeds, m, n);
    ready(y, feeds, q, cuda::launch_rmsnorm(x, device_floats(weight, size_t(n)), m, n, eps, y, q, stream_));
  }
  void add_rmsnorm(float* x, const float* d, const float* weight, int64_t m, int64_t n, float eps, float* y,
                   const Weight* feeds) override {
    const cuda::RowQuantOut q = row_quant(feeds, m, n);
    ready(y, feeds, q, cuda::launch_add_rmsnorm(x, d, device_floats(weight, size_t(n)), m, n, eps, y, q, stream_));
  }
  void swiglu(float* gate, const float* up, int64_t n, const Weight* feeds) override {
    const cuda::RowQuantOut q = row_quant(feeds, 1, n);
    ready(gate, feeds, q, cuda::launch_swiglu(gate, up, n, q, stream_));
  }
  void add_bias(float* x, const float* bias, int64_t m, int64_t n) override {
    ready_ = {};
    cuda::launch_add_bias(x, device_floats(bias, size_t(n)), m, n, stream_);
  }
  void add(float* y, const float* x, int64_t n) override {
    ready_ = {};
    cuda::launch_add(y, x, n, stream_);
  }

  // Host-cache operations: attention here runs through DeviceAttention.
  void kv_store(const KvLayerView&, int64_t, int64_t, const float*, const float*) override { host_cache_op(); }
  void attention(const AttentionArgs&) override { host_cache_op(); }
  void selection_scores(const KvLayerView&, const float*, int32_t, int64_t, int64_t, float, float*) override {
    host_cache_op();
  }

  DeviceAttention* device_attention() override { return this; }

  void run_step(std::span<const int32_t> tokens, int64_t t0, int kind, const std::function<void()>& ops) override {
    const int64_t m = int64_t(tokens.size());
    // Counted here, not in layer(): a replayed step runs no host code per layer.
    (cfg_.full || t0 + m <= budget() ? steps_.dense_steps : steps_.selecting_steps) += shape_.n_layers;
    Graph* g = m == 1 && kind >= 0 && kind < int(graphs_.size()) ? &graphs_[size_t(kind)] : nullptr;
    // A recorded step reads its inputs from the slot it was recorded with.
    slot_ = g && g->exec ? g->slot : (slot_ + 1) % slots_.size();
    Slot& sl = slots_[slot_];
    cuda::check(cudaEventSynchronize(sl.done), "cudaEventSynchronize");  // its last step has read it
    sl.host.get()[0] = int32_t(t0 + m);
    std::memcpy(sl.host.get() + 1, tokens.data(), size_t(m) * 4);
    if (g && g->exec) {
      cuda::check(cudaGraphLaunch(g->exec, stream_), "cudaGraphLaunch");
    } else if (g && g->warm) {
      // The second one-token step of this kind is recorded (the first one uploaded what it needed).
      cudaGraph_t graph = nullptr;
      cuda::check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
      try {
        ops();
      } catch (...) {
        cudaStreamEndCapture(stream_, &graph);
        if (graph) cudaGraphDestroy(graph);
        throw;
      }
      cuda::check(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
      cuda::check(cudaGraphInstantiate(&g->exec, graph, 0), "cudaGraphInstantiate");
      cudaGraphDestroy(graph);
      g->slot = slot_;
      cuda::check(cudaGraphLaunch(g->exec, stream_), "cudaGraphLaunch");
    } else {
      ops();
      if (g) g->warm = true;
    }
    cuda::check(cudaEventRecord(sl.done, stream_), "cudaEventRecord");
  }

  const float* host_view(const float* p, size_t n) override {
    if (host_out_.size() < n) host_out_ = Pinned<float>(n);
    cuda::check(cudaMemcpyAsync(host_out_.get(), p, n * 4, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync");
    cuda::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    return host_out_.get();
  }

  // DeviceAttention
  void configure(const DeviceSelectConfig& c) override {
    if (c.k > k_max_ && c.k < shape_.capacity)
      fail(Status::invalid_arg, fmt::format("attention settings: k {} exceeds the {} this GPU session was made for "
                                            "(its selection buffers); create the session with the larger k",
                                            c.k, k_max_));
    cuda::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    try {
      attn_.set_config(to_kernels(c));
    } catch (const std::runtime_error& e) {  // the old settings stay
      if (!c.fp8_keys) throw;
      cudaGetLastError();  // a failed cudaMalloc must not surface as a later launch's error
      fail(Status::out_of_memory, std::string("CUDA backend: no room for the keys' fp8 copy: ") + e.what());
    }
    cfg_ = c;
    steps_ = {};
    attn_.plan_splits(c.full ? shape_.capacity : std::min<int64_t>(shape_.capacity, budget() + c.n_local));
    drop_graphs();
  }

  void begin_step(int64_t, int64_t) override {
    Slot& sl = slots_[slot_];
    cuda::check(cudaMemcpyAsync(sl.dev.get(), sl.host.get(), 4, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
    attn_.set_tokens_from(sl.dev.get());
  }

  void layer(int32_t il, const float* q, const float* k, const float* v, int64_t m, int64_t t0, float* out,
             const Weight* feeds) override {
    ready_ = {};
    if (m == 1) {
      const cuda::RowQuantOut oq = row_quant(feeds, 1, int64_t(shape_.n_heads) * shape_.head_dim);
      attn_.attend(il, q, out, k, v, oq);
      ready(out, feeds, oq, oq.format != cuda::RowQuant::none);
      return;
    }
    cuda::launch_kv_store(attn_.kv(il), t0, m, k, v, stream_);
    const int64_t T = t0 + m;
    PrefillAttentionArgs a;
    a.kv = attn_.kv(il);
    a.rope = attn_.rope_tables();
    a.q = q;
    a.m = m;
    a.q_first = t0;
    a.n_heads = shape_.n_heads;
    a.scale = 1.f / std::sqrt(float(shape_.head_dim));
    a.out = out;
    if (cfg_.full || T <= budget()) {
      a.n_keys = T;
      a.remap = false;
    } else {
      // The chunk's mean query selects (as on the CPU); the set is sinks + selection + window.
      const int64_t hd = int64_t(shape_.n_heads) * shape_.head_dim;
      float* qmean = qmean_.get(size_t(hd));
      cuda::launch_mean_rows(q, m, hd, qmean, stream_);
      attn_.select_chunk(il, qmean);
      const int64_t sink_end = std::min<int64_t>(cfg_.n_init, T);
      const int64_t local_start = std::max(sink_end, T - cfg_.n_local);
      const int64_t n = sink_end + std::min<int64_t>(cfg_.k, local_start - sink_end) + (T - local_start);
      int32_t* keys = keys_.get(size_t(n));
      attn_.write_key_set(il, keys, n);
      a.keys = keys;
      a.n_keys = n;
      a.remap = cfg_.remap;
    }
    prefill_.run(a);
  }

  void truncate(int64_t) override { configure(cfg_); }

  void read_kv(int32_t layer, int64_t n, uint16_t* k, uint16_t* v) override {
    attn_.download_kv(layer, k, v, n, n);
  }
  void write_kv(int32_t layer, int64_t n, const uint16_t* k, const uint16_t* v) override {
    attn_.upload_kv(layer, k, v, n, n);
  }

  DeviceSelectCounts select_counts() override {
    const CudaDecodeAttention::Stats s = attn_.stats();
    DeviceSelectCounts c = steps_;
    c.hits = s.hits;
    c.misses = s.misses;
    return c;
  }

  std::vector<DeviceSelection> last_selection() override {
    std::vector<DeviceSelection> out(size_t(shape_.n_layers));
    for (int l = 0; l < shape_.n_layers; ++l) {
      CudaDecodeAttention::Selection s = attn_.selection(l);
      out[size_t(l)].positions = std::move(s.positions);
      out[size_t(l)].votes = std::move(s.votes);
    }
    return out;
  }

 private:
  struct Slot {
    Pinned<int32_t> host;  // [0]: T after the step; [1..]: the step's token ids
    DeviceBuffer<int32_t> dev;
    cudaEvent_t done = nullptr;
  };
  // A one-row matmul input that the kernel which computed it also quantised, for weights of
  // `type`'s activation format.
  struct ReadyAct {
    const float* x = nullptr;
    GgmlType type{};
    const void* act = nullptr;
  };
  struct Graph {
    bool warm = false;
    cudaGraphExec_t exec = nullptr;
    size_t slot = 0;
  };

  int64_t budget() const { return int64_t(cfg_.n_init) + cfg_.k + cfg_.n_local; }

  [[noreturn]] static void host_cache_op() {
    fail(Status::internal, "CUDA backend: attention runs on the device (DeviceAttention), not over a host cache");
  }

  // Sized for the most rows, so that a recorded step's buffer never moves.
  void* act_buffer(const Weight& w) {
    const int64_t rows = std::max<int64_t>(shape_.max_batch, cuda::kGemvMaxRows);
    return act_.get(size_t(rows) * cuda::act_row_bytes(w.type, w.n_in));
  }
  // The quantisation a producer of one row for `feeds` can write (Q8_0 / Q8_1 partners only).
  cuda::RowQuantOut row_quant(const Weight* feeds, int64_t m, int64_t n) {
    if (!feeds || m != 1 || feeds->n_in != n) return {};
    cuda::RowQuant f = cuda::RowQuant::none;
    if (kernels::same_activation_format(feeds->type, GgmlType::Q4_0)) f = cuda::RowQuant::q8_0;
    if (kernels::same_activation_format(feeds->type, GgmlType::Q4_1)) f = cuda::RowQuant::q8_1;
    if (f == cuda::RowQuant::none) return {};
    return {f, act_buffer(*feeds)};
  }
  void ready(const float* y, const Weight* feeds, const cuda::RowQuantOut& q, bool written) {
    ready_ = written ? ReadyAct{y, feeds->type, q.dst} : ReadyAct{};
  }

  void drop_graphs() {
    for (Graph& g : graphs_) {
      if (g.exec) cudaGraphExecDestroy(g.exec);
      g = Graph{};
    }
  }

  void* upload(const void* host, size_t bytes, const char* what) {
    auto it = uploads_.find(host);
    if (it != uploads_.end()) return it->second.get();
    DeviceBuffer<uint8_t> d;
    try {
      d = DeviceBuffer<uint8_t>(bytes);
    } catch (const std::exception&) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      fail(Status::out_of_memory, fmt::format("CUDA backend: out of GPU memory uploading {} ({:.1f} MiB; {:.1f} MiB free)",
                                              what, double(bytes) / (1 << 20), double(free_b) / (1 << 20)));
    }
    // On our stream: a plain cudaMemcpy from pageable memory may return before its DMA lands,
    // and nothing would order it before this stream's kernels. The host data is the mapped
    // model file (or its vectors), alive as long as the model.
    cuda::check(cudaMemcpyAsync(d.get(), host, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
    void* p = d.get();
    uploads_.emplace(host, std::move(d));
    return p;
  }
  const uint8_t* device_weight(const Weight& w) {
    return static_cast<const uint8_t*>(upload(w.data, size_t(w.n_out) * w.row_bytes, "a weight matrix"));
  }
  const float* device_floats(const float* host, size_t n) {
    return static_cast<const float*>(upload(host, n * sizeof(float), "a norm or bias vector"));
  }

  CudaBackendShape shape_;
  int32_t k_max_;  // the k the selection buffers hold
  DeviceSelectCounts steps_;  // selecting and dense layer-steps (hits and misses: on the device)
  DeviceSelectConfig cfg_;
  CudaDecodeAttention attn_;
  CudaPrefillAttention prefill_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  std::unordered_map<const void*, DeviceBuffer<uint8_t>> uploads_;
  Scratch<uint8_t> act_;
  ReadyAct ready_;
  Scratch<uint16_t> x16_, w16_;
  Scratch<float> qmean_;
  Scratch<int32_t> keys_;
  std::array<Slot, 2> slots_;
  size_t slot_ = 0;
  std::array<Graph, 3> graphs_;  // per LogitsMode
  Pinned<float> host_out_;
};

}  // namespace

std::string cuda_backend_unavailable(const CudaBackendShape& s) {
  std::string why;
  if (!cuda_device_available(&why)) return "no usable CUDA device (" + why + ")";
  if (s.capacity > (int64_t(1) << 30)) return "the CUDA KV cache holds at most 2^30 tokens";
  if (s.head_dim != 64 && s.head_dim != 128)
    return fmt::format("the CUDA kernels take head sizes 64 and 128 (this model: {})", s.head_dim);
  if (s.n_kv_heads < 1 || s.n_heads % s.n_kv_heads != 0 || s.n_heads / s.n_kv_heads > cuda::kMaxGroup)
    return fmt::format("the CUDA kernels take up to {} query heads per KV head (this model: {} / {})", cuda::kMaxGroup,
                       s.n_heads, s.n_kv_heads);
  return {};
}

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendShape& s, const DeviceSelectConfig& cfg) {
  const std::string why = cuda_backend_unavailable(s);
  if (!why.empty()) fail(Status::unsupported, "CUDA backend: " + why);
  // The KV cache is allocated whole on the device: say so before cudaMalloc fails. Bytes per
  // value: fp16 K and V, and the keys' fp8 copy when the selection scores on it.
  const double per_value = cfg.fp8_keys && !cfg.full ? 5.0 : 4.0;
  const double kv = double(s.capacity) * s.n_layers * s.n_kv_heads * s.head_dim * per_value;
  size_t free_b = 0, total_b = 0;
  cuda::check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  if (kv > 0.9 * double(free_b))
    fail(Status::out_of_memory,
         fmt::format("CUDA backend: a KV cache of {} tokens needs {:.2f} GiB of GPU memory but {:.2f} GiB is free; "
                     "lower the context size",
                     s.capacity, kv / double(1 << 30), double(free_b) / double(1 << 30)));
  try {
    return std::make_unique<CudaBackend>(s, cfg);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(Status::internal, std::string("CUDA backend: ") + e.what());
  }
}

}  // namespace ts
