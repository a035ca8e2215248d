// The decode-step attention of every layer on the GPU: a paged fp16 KV cache in device memory
// (keys before RoPE; optionally an fp8 copy of the keys that the selection scores on) and, per
// layer and step, TokenSelect's plan, selection and sparse attention — or dense attention for
// the `full` baseline — with no host round trip, so a step can be captured in a CUDA graph and
// replayed. The CPU backend is its reference (tests/cuda/).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cuda/device_buffer.hpp"
#include "cuda/decode_types.hpp"

namespace ts {

struct CudaDecodeShape {
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;   // 64 or 128
  int64_t capacity = 0;   // tokens per layer (in pages of 2^cuda::kPageShift)
  RopeParams rope;
};

// True when a CUDA device is usable; otherwise `why` says what is missing.
bool cuda_device_available(std::string* why = nullptr);

class CudaDecodeAttention {
 public:
  CudaDecodeAttention(const CudaDecodeShape& shape, const cuda::SelectConfig& cfg);
  ~CudaDecodeAttention();
  CudaDecodeAttention(const CudaDecodeAttention&) = delete;
  CudaDecodeAttention& operator=(const CudaDecodeAttention&) = delete;

  const CudaDecodeShape& shape() const { return shape_; }
  cudaStream_t stream() const { return stream_; }
  // Clears the selection caches and counters; makes or drops the keys' fp8 copy (cfg.fp8_keys).
  void set_config(const cuda::SelectConfig& cfg);

  // Maps logical page p of every layer to physical page order[p] (a permutation); clears the
  // selection caches and token counts (set_tokens again).
  void set_page_order(const std::vector<int32_t>& order);
  // Copies n_tokens tokens of a head-major host cache ([kv_head][host_capacity][head_dim] fp16)
  // into the layer's pages, or out of them (download_kv); synchronise.
  void upload_kv(int layer, const uint16_t* k, const uint16_t* v, int64_t n_tokens, int64_t host_capacity);
  void download_kv(int layer, uint16_t* k, uint16_t* v, int64_t n_tokens, int64_t host_capacity) const;
  // Fills every layer's K and V with reproducible random values (speed work).
  void fill_random_kv(uint32_t seed, float scale);

  // Sets the number of cached tokens T of every layer, or adds delta (a decode step); async.
  void set_tokens(int32_t T);
  void advance_tokens(int32_t delta);
  void set_tokens_from(const int32_t* T_dev);  // T read from device memory when the kernel runs
  // Splits of the attention per KV head, chosen for at most max_keys attended keys.
  void plan_splits(int64_t max_keys);
  int splits() const { return splits_; }

  // One layer of a decode step: q and out are device arrays of n_heads x head_dim (q before
  // RoPE); k and v (n_kv_heads x head_dim) the step's K/V, stored first (in the plan's launch),
  // or null when they are already cached (uploaded); out_q: out also quantised (as one row).
  // Async, capturable.
  void attend(int layer, const float* q_dev, float* out_dev, const float* k_dev = nullptr,
              const float* v_dev = nullptr, const cuda::RowQuantOut& out_q = {});
  // attend() in its two halves: the plan (and, when it says so, the selection; and the query
  // turned for the attention), then the attention over the planned set.
  void plan_and_select(int layer, const float* q_dev, const float* k_dev = nullptr, const float* v_dev = nullptr);
  void attend_planned(int layer, float* out_dev, const cuda::RowQuantOut& out_q = {});
  // A prefill chunk: the plan (no reuse) and, above the budget, the selection by the chunk's
  // mean query qmean (n_heads x head_dim); then the attended set as n cache indices (n as the
  // host computes it from T and the settings).
  void select_chunk(int layer, const float* qmean);
  void write_key_set(int layer, int32_t* keys, int64_t n);
  // The scoring kernel alone over the layer's current candidates (benchmark only).
  void score_only(int layer, const float* q_dev);

  // The layer's paged cache and the RoPE tables, for the prefill attention over the same pages.
  cuda::PagedKv kv(int layer) const;
  cuda::RopeTables rope_tables() const;

  struct Stats {
    int64_t hits = 0, misses = 0;
  };
  Stats stats() const;  // synchronises
  struct Selection {
    int32_t plan = 0;  // cuda::StepPlan of the last step
    std::vector<int32_t> positions;
    std::vector<float> votes;
  };
  Selection selection(int layer) const;  // synchronises

 private:
  cuda::LayerSelectBuffers layer_buffers(int layer) const;
  // Page by page between a head-major host cache (k, v) and the layer's pages, in direction kind.
  void copy_kv(int layer, uint16_t* k, uint16_t* v, int64_t n_tokens, int64_t host_capacity, cudaMemcpyKind kind) const;
  void reset_states();  // every layer's step state fresh: no tokens, no cached selection

  CudaDecodeShape shape_;
  cuda::SelectConfig cfg_;
  cudaStream_t stream_ = nullptr;
  int n_sms_ = 0;
  int64_t pages_ = 0;
  std::vector<int32_t> host_pages_;  // physical page of each logical page
  int splits_ = 1, max_splits_ = 1;
  DeviceBuffer<uint16_t> k_, v_;  // n_layers x pages x n_kv_heads x page x head_dim
  DeviceBuffer<uint8_t> k8_;      // the keys as fp8 (cfg.fp8_keys), same layout; else empty
  DeviceBuffer<int32_t> page_table_;
  DeviceBuffer<float> rope_cs_;  // (capacity + 1) x head_dim / 2 x (cos, sin)
  DeviceBuffer<uint32_t> rope_offsets16_;  // its first kRopeOffsets rows in fp16 (RopeTables::offsets16)
  DeviceBuffer<cuda::StepState> states_;
  DeviceBuffer<float> fingerprints_, selected_votes_, queries_;
  DeviceBuffer<int32_t> selected_, selected_slots_;
  DeviceBuffer<float> scores_, votes_, part_o_;
  DeviceBuffer<float2> partials_, part_ml_;
  DeviceBuffer<uint32_t> hist_;
  DeviceBuffer<int2> block_counts_;
  cuda::SelectScratch scratch_;
};

}  // namespace ts
