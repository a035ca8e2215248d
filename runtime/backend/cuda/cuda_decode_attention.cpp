#include "backend/cuda/cuda_decode_attention.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "backend/cpu/rope_table.hpp"
#include "cuda/decode_kernels.hpp"
#include "util/fp16.hpp"

namespace ts {

bool cuda_device_available(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    if (why) *why = e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device";
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return false;
  }
  return true;
}


CudaDecodeAttention::CudaDecodeAttention(const CudaDecodeShape& s, const cuda::SelectConfig& cfg)
    : shape_(s), cfg_(cfg) {
  if (s.head_dim != 64 && s.head_dim != 128)
    throw std::runtime_error("CUDA attention: head_dim must be 64 or 128 (got " + std::to_string(s.head_dim) + ")");
  if (s.n_kv_heads < 1 || s.n_heads % s.n_kv_heads != 0 || s.n_heads / s.n_kv_heads > cuda::kMaxGroup)
    throw std::runtime_error("CUDA attention: unsupported head layout");
  if (s.capacity < 1 || s.capacity > (int64_t(1) << 30)) throw std::runtime_error("CUDA attention: bad capacity");
  int dev = 0;
  cuda::check(cudaGetDevice(&dev), "cudaGetDevice");
  cuda::check(cudaDeviceGetAttribute(&n_sms_, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  cuda::check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");

  const int64_t page = int64_t(1) << cuda::kPageShift;
  pages_ = (s.capacity + page - 1) / page;
  const size_t layer_elems = size_t(pages_ * page * s.n_kv_heads * s.head_dim);
  k_ = DeviceBuffer<uint16_t>(layer_elems * size_t(s.n_layers));
  v_ = DeviceBuffer<uint16_t>(layer_elems * size_t(s.n_layers));
  page_table_ = DeviceBuffer<int32_t>(size_t(pages_));
  states_ = DeviceBuffer<cuda::StepState>(size_t(s.n_layers));
  std::vector<int32_t> identity(static_cast<size_t>(pages_));
  std::iota(identity.begin(), identity.end(), 0);
  set_page_order(identity);

  // Every position a key or query can take (remapped ranks stay below the capacity), and at
  // least the offsets inside a pair of tiles that the attention turns keys by.
  const int64_t positions = std::max<int64_t>(s.capacity + 1, cuda::kRopeOffsets);
  std::vector<float> cs(size_t(positions) * size_t(s.head_dim));
  cpu::rope_angles(s.rope, 0, positions, cs.data());
  std::vector<uint32_t> offsets16(size_t(cuda::kRopeOffsets) * size_t(s.head_dim / 2));
  for (size_t i = 0; i < offsets16.size(); ++i)
    offsets16[i] = uint32_t(fp32_to_fp16(cs[2 * i])) | uint32_t(fp32_to_fp16(cs[2 * i + 1])) << 16;
  rope_cs_ = DeviceBuffer<float>(cs.size());
  rope_offsets16_ = DeviceBuffer<uint32_t>(offsets16.size());
  // On stream_ (a plain cudaMemcpy from pageable memory is not ordered before its kernels);
  // set_config() below waits for them, while the vectors are alive.
  cuda::check(cudaMemcpyAsync(rope_cs_.get(), cs.data(), cs.size() * 4, cudaMemcpyHostToDevice, stream_),
              "cudaMemcpyAsync");
  cuda::check(cudaMemcpyAsync(rope_offsets16_.get(), offsets16.data(), offsets16.size() * 4, cudaMemcpyHostToDevice,
                              stream_),
              "cudaMemcpyAsync");

  const size_t hd = size_t(s.n_heads) * size_t(s.head_dim);
  fingerprints_ = DeviceBuffer<float>(hd * size_t(s.n_layers));
  queries_ = DeviceBuffer<float>(hd * size_t(s.n_layers));
  const size_t k_max = size_t(std::max<int64_t>(1, std::min<int64_t>(cfg.k, s.capacity)));
  selected_ = DeviceBuffer<int32_t>(k_max * size_t(s.n_layers));
  selected_votes_ = DeviceBuffer<float>(k_max * size_t(s.n_layers));
  selected_slots_ = DeviceBuffer<int32_t>(k_max * size_t(s.n_layers));

  scratch_.capacity = s.capacity;
  scratch_.blocks = cuda::select_blocks(s.head_dim, s.n_heads / s.n_kv_heads, s.n_kv_heads, n_sms_);
  scores_ = DeviceBuffer<float>(size_t(s.n_heads) * size_t(s.capacity));
  votes_ = DeviceBuffer<float>(size_t(s.capacity));
  partials_ = DeviceBuffer<float2>(size_t(scratch_.blocks / s.n_kv_heads) * size_t(s.n_heads));
  hist_ = DeviceBuffer<uint32_t>(cuda::kSelectHistBins);
  block_counts_ = DeviceBuffer<int2>(size_t(scratch_.blocks));
  scratch_.scores = scores_.get();
  scratch_.partials = partials_.get();
  scratch_.votes = votes_.get();
  scratch_.hist = hist_.get();
  scratch_.block_counts = block_counts_.get();

  // One wave of the split kernel at most: more splits only lengthen the combine.
  const int resident = cuda::attend_blocks_per_sm(s.head_dim, s.n_heads / s.n_kv_heads) * n_sms_;
  max_splits_ = std::max(1, resident / s.n_kv_heads);
  part_o_ = DeviceBuffer<float>(size_t(max_splits_) * hd);
  part_ml_ = DeviceBuffer<float2>(size_t(max_splits_) * size_t(s.n_heads));
  plan_splits(s.capacity);
  set_config(cfg);
}

CudaDecodeAttention::~CudaDecodeAttention() {
  if (stream_) {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
}

void CudaDecodeAttention::set_config(const cuda::SelectConfig& cfg) {
  if (int64_t(cfg.k) > int64_t(selected_.size() / size_t(shape_.n_layers)) && cfg.k < shape_.capacity)
    throw std::runtime_error("CUDA attention: k grew past the buffers made for it");
  // The keys' fp8 copy exists while a selecting configuration scores on it; made from the
  // cached keys when it starts.
  if (cfg.fp8_keys && !cfg.full) {
    if (!k8_.get()) {
      k8_ = DeviceBuffer<uint8_t>(k_.size());
      cuda::launch_keys_to_fp8(k_.get(), k8_.get(), int64_t(k_.size()), stream_);
    }
  } else {
    k8_ = {};
  }
  cfg_ = cfg;
  reset_states();
}

void CudaDecodeAttention::reset_states() {
  std::vector<cuda::StepState> fresh(size_t(shape_.n_layers));
  cuda::check(cudaMemcpyAsync(states_.get(), fresh.data(), fresh.size() * sizeof(cuda::StepState),
                              cudaMemcpyHostToDevice, stream_),
              "cudaMemcpyAsync");
  cuda::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

void CudaDecodeAttention::set_page_order(const std::vector<int32_t>& order) {
  if (int64_t(order.size()) != pages_) throw std::runtime_error("CUDA attention: page order has the wrong size");
  std::vector<int32_t> seen(order.size(), 0);
  for (int32_t p : order)
    if (p < 0 || p >= pages_ || seen[size_t(p)]++) throw std::runtime_error("CUDA attention: page order is not a permutation");
  cuda::check(cudaMemcpyAsync(page_table_.get(), order.data(), order.size() * 4, cudaMemcpyHostToDevice, stream_),
              "cudaMemcpyAsync");
  host_pages_ = order;
  reset_states();  // the selections' cache slots followed the old order: select afresh
}

cuda::PagedKv CudaDecodeAttention::kv(int layer) const {
  const size_t layer_elems = size_t(pages_) * (size_t(1) << cuda::kPageShift) * size_t(shape_.n_kv_heads) *
                             size_t(shape_.head_dim);
  cuda::PagedKv kv;
  kv.k = k_.get() + layer_elems * size_t(layer);
  kv.v = v_.get() + layer_elems * size_t(layer);
  kv.k8 = k8_.get() ? k8_.get() + layer_elems * size_t(layer) : nullptr;
  kv.page_table = page_table_.get();
  kv.n_kv_heads = shape_.n_kv_heads;
  kv.head_dim = shape_.head_dim;
  return kv;
}

cuda::RopeTables CudaDecodeAttention::rope_tables() const {
  return {rope_cs_.get(), shape_.rope.style == RopeStyle::neox ? 1 : 0, rope_offsets16_.get()};
}

cuda::LayerSelectBuffers CudaDecodeAttention::layer_buffers(int layer) const {
  const size_t hd = size_t(shape_.n_heads) * size_t(shape_.head_dim);
  const size_t k_max = selected_.size() / size_t(shape_.n_layers);
  return {states_.get() + layer,
          fingerprints_.get() + hd * size_t(layer),
          selected_.get() + k_max * size_t(layer),
          selected_votes_.get() + k_max * size_t(layer),
          selected_slots_.get() + k_max * size_t(layer),
          queries_.get() + hd * size_t(layer)};
}

void CudaDecodeAttention::copy_kv(int layer, uint16_t* k, uint16_t* v, int64_t n_tokens, int64_t host_capacity,
                                  cudaMemcpyKind kind) const {
  if (n_tokens > shape_.capacity || n_tokens > host_capacity) throw std::runtime_error("CUDA attention: copy too large");
  const cuda::PagedKv d = kv(layer);
  const bool up = kind == cudaMemcpyHostToDevice;
  const int64_t page = int64_t(1) << cuda::kPageShift, D = shape_.head_dim;
  for (int32_t g = 0; g < shape_.n_kv_heads; ++g)
    for (int64_t t0 = 0; t0 < n_tokens; t0 += page) {
      const int64_t n = std::min(page, n_tokens - t0);
      const int64_t phys = host_pages_[size_t(t0 / page)];
      const size_t dev = size_t(((phys * shape_.n_kv_heads + g) * page) * D);
      const size_t host = size_t((g * host_capacity + t0) * D);
      const auto copy = [&](uint16_t* d_pool, uint16_t* h) {
        const size_t bytes = size_t(n * D) * 2;
        cuda::check(cudaMemcpyAsync(up ? d_pool + dev : h + host, up ? h + host : d_pool + dev, bytes, kind, stream_),
                    "cudaMemcpyAsync");
      };
      copy(d.k, k);
      copy(d.v, v);
    }
  if (up && d.k8) cuda::launch_keys_to_fp8(d.k, d.k8, int64_t(pages_ << cuda::kPageShift) * shape_.n_kv_heads * D, stream_);
  cuda::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

void CudaDecodeAttention::upload_kv(int layer, const uint16_t* k, const uint16_t* v, int64_t n_tokens,
                                    int64_t host_capacity) {
  // Only read from: the copy's direction is host to device.
  copy_kv(layer, const_cast<uint16_t*>(k), const_cast<uint16_t*>(v), n_tokens, host_capacity, cudaMemcpyHostToDevice);
}

void CudaDecodeAttention::download_kv(int layer, uint16_t* k, uint16_t* v, int64_t n_tokens,
                                      int64_t host_capacity) const {
  copy_kv(layer, k, v, n_tokens, host_capacity, cudaMemcpyDeviceToHost);
}

void CudaDecodeAttention::fill_random_kv(uint32_t seed, float scale) {
  cuda::launch_fill_random_half(k_.get(), int64_t(k_.size()), seed, scale, stream_);
  cuda::launch_fill_random_half(v_.get(), int64_t(v_.size()), seed + 1, scale, stream_);
  if (k8_.get()) cuda::launch_keys_to_fp8(k_.get(), k8_.get(), int64_t(k_.size()), stream_);
  cuda::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

void CudaDecodeAttention::set_tokens(int32_t T) {
  if (T < 1 || T > shape_.capacity) throw std::runtime_error("CUDA attention: T out of range");
  cuda::launch_set_tokens(states_.get(), shape_.n_layers, T, stream_);
}

void CudaDecodeAttention::advance_tokens(int32_t delta) { cuda::launch_advance_tokens(states_.get(), shape_.n_layers, delta, stream_); }

void CudaDecodeAttention::set_tokens_from(const int32_t* T_dev) {
  cuda::launch_set_tokens_from(states_.get(), shape_.n_layers, T_dev, stream_);
}

void CudaDecodeAttention::select_chunk(int layer, const float* qmean) {
  cuda::SelectConfig fresh = cfg_;
  fresh.fresh = 1;
  cuda::launch_step(kv(layer), layer_buffers(layer), qmean, shape_.n_heads, 1.f / std::sqrt(float(shape_.head_dim)),
                    fresh, scratch_, nullptr, nullptr, stream_);
}

void CudaDecodeAttention::write_key_set(int layer, int32_t* keys, int64_t n) {
  cuda::launch_write_key_set(layer_buffers(layer).state, layer_buffers(layer).selected, keys, n, stream_);
}

void CudaDecodeAttention::plan_splits(int64_t max_keys) {
  splits_ = int(std::clamp<int64_t>((max_keys + 63) / 64, 1, max_splits_));
}

void CudaDecodeAttention::attend(int layer, const float* q_dev, float* out_dev, const float* k_dev,
                                 const float* v_dev, const cuda::RowQuantOut& out_q) {
  plan_and_select(layer, q_dev, k_dev, v_dev);
  attend_planned(layer, out_dev, out_q);
}

void CudaDecodeAttention::plan_and_select(int layer, const float* q_dev, const float* k_dev, const float* v_dev) {
  const cuda::PagedKv kvl = kv(layer);
  const cuda::StepKv step{kvl, k_dev, v_dev};
  const cuda::RopeTables rope = rope_tables();
  cuda::launch_step(kvl, layer_buffers(layer), q_dev, shape_.n_heads, 1.f / std::sqrt(float(shape_.head_dim)), cfg_,
                    scratch_, k_dev ? &step : nullptr, &rope, stream_);
}

void CudaDecodeAttention::attend_planned(int layer, float* out_dev, const cuda::RowQuantOut& out_q) {
  const cuda::LayerSelectBuffers lb = layer_buffers(layer);
  cuda::AttendArgs a;
  a.kv = kv(layer);
  a.state = lb.state;
  a.selected = lb.selected;
  a.selected_slots = lb.selected_slots;
  a.q = lb.query;
  a.n_heads = shape_.n_heads;
  a.rope = rope_tables();
  a.remap = cfg_.full ? 0 : cfg_.remap;
  a.splits = splits_;
  a.part_o = part_o_.get();
  a.part_ml = part_ml_.get();
  a.out = out_dev;
  a.out_q = out_q;
  cuda::launch_attend(a, stream_);
}

void CudaDecodeAttention::score_only(int layer, const float* q_dev) {
  cuda::launch_scores_only(kv(layer), layer_buffers(layer), q_dev, shape_.n_heads,
                           1.f / std::sqrt(float(shape_.head_dim)), cfg_, scratch_, stream_);
}

CudaDecodeAttention::Stats CudaDecodeAttention::stats() const {
  std::vector<cuda::StepState> st(size_t(shape_.n_layers));
  cuda::check(cudaMemcpyAsync(st.data(), states_.get(), st.size() * sizeof(cuda::StepState), cudaMemcpyDeviceToHost,
                              stream_),
              "cudaMemcpyAsync");
  cuda::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  Stats s;
  for (const cuda::StepState& x : st) {
    s.hits += x.hits;
    s.misses += x.misses;
  }
  return s;
}

CudaDecodeAttention::Selection CudaDecodeAttention::selection(int layer) const {
  const cuda::LayerSelectBuffers lb = layer_buffers(layer);
  cuda::StepState st;
  cuda::check(cudaMemcpyAsync(&st, lb.state, sizeof st, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync");
  cuda::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  Selection sel;
  sel.plan = st.plan;
  if (st.plan == cuda::kPlanDense) return sel;
  sel.positions.resize(size_t(st.n_sel));
  sel.votes.resize(size_t(st.n_sel));
  cuda::check(cudaMemcpy(sel.positions.data(), lb.selected, size_t(st.n_sel) * 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
  cuda::check(cudaMemcpy(sel.votes.data(), lb.selected_votes, size_t(st.n_sel) * 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
  return sel;
}

}  // namespace ts
