// Launch wrappers of the CUDA decode-step kernels: TokenSelect's plan, scoring, soft vote and
// radix top-k, and split ("flash-decoding") attention over the attended set with RoPE applied on
// the fly. Everything reads the per-layer StepState from device memory, so a step can be
// captured in a CUDA graph once and replayed. All calls are asynchronous on `stream`.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "decode_types.hpp"

namespace ts::cuda {

// Throws std::runtime_error naming the call when a CUDA call or launch failed.
void check(cudaError_t e, const char* what);

// Scratch of one selection (shared by all layers: steps run one layer at a time).
struct SelectScratch {
  float* scores = nullptr;       // n_heads x capacity
  int64_t capacity = 0;          // candidates the buffers hold
  int32_t blocks = 0;            // the selection's grid (select_blocks)
  float2* partials = nullptr;    // blocks / n_kv_heads x n_heads (max, sum of exp)
  float* votes = nullptr;        // capacity
  uint32_t* hist = nullptr;      // 2048 + 2048 + 1024 bins (the three radix digits)
  int2* block_counts = nullptr;  // blocks x (greater, equal)
};
constexpr int kSelectHistBins = 2048 + 2048 + 1024;

// Per layer, what a step writes and keeps: the fingerprint (n_heads x head_dim), the selection
// (k positions ascending, their votes and their cache slots), and the step state.
struct LayerSelectBuffers {
  StepState* state = nullptr;
  float* fingerprint = nullptr;
  int32_t* selected = nullptr;
  float* selected_votes = nullptr;
  int32_t* selected_slots = nullptr;  // kv_slot of each: the attention skips the page table
  // The step's query scaled and rotated at its position in the attention (its rank in the set,
  // or T - 1), n_heads x head_dim: written by the step launch for the attention kernel.
  float* query = nullptr;
};

// Sets T of n_layers step states to `T` (set) or adds `delta` (advance: one decode step).
void launch_set_tokens(StepState* states, int n_layers, int32_t T, cudaStream_t stream);
void launch_advance_tokens(StepState* states, int n_layers, int32_t delta, cudaStream_t stream);
// Sets T of n_layers step states to *T (device memory: a recorded step reads its own T).
void launch_set_tokens_from(StepState* states, int n_layers, const int32_t* T, cudaStream_t stream);
// Writes the first n entries of the layer's attended set (as the attention kernel forms it from
// the step state: all of [0, T), or sinks + selection + [tail, T)) as cache indices.
void launch_write_key_set(const StepState* state, const int32_t* selected, int32_t* keys, int64_t n,
                          cudaStream_t stream);

// A decode step's new K (before RoPE) and V (fp32, [n_kv_heads][head_dim]), for cache index
// T - 1 of kv.
struct StepKv {
  PagedKv kv;
  const float* k = nullptr;
  const float* v = nullptr;
};

// A decode step's plan (dense / reuse / select) from T and, with the cache on, the cosine
// between the query (the fingerprint of a one-query step) and the cached fingerprint; when the
// plan is `select`, the selection: scores (of kv.k8, the keys' fp8 copy, when kv has one),
// per-head softmax statistics, soft vote and top-k of the candidates, written into the layer's
// selection (positions ascending) and state. One cooperative launch of scratch.blocks (a step
// that reuses its selection costs that launch only); with cfg.full, n_kv_heads plain blocks.
// With `append`, the launch also stores the step's K/V; with `rope`, it writes layer.query (q
// scaled and rotated for the attention kernel). q (and every device array here) must be 16-byte
// aligned, as cudaMalloc gives.
void launch_step(const PagedKv& kv, const LayerSelectBuffers& layer, const float* q, int32_t n_heads, float scale,
                 const SelectConfig& cfg, const SelectScratch& scratch, const StepKv* append, const RopeTables* rope,
                 cudaStream_t stream);
// The selection's grid on this device: every block resident, a multiple of n_kv_heads.
int select_blocks(int head_dim, int group, int n_kv_heads, int n_sms);

// Split attention of the step's query over the attended set (the plan's: all of [0, T), or
// sinks + selection + [tail, T)); `splits` blocks per KV head
// write partial results into part_o (splits x n_heads x head_dim) and part_ml (splits x
// n_heads), then a combine kernel writes out (n_heads x head_dim).
struct AttendArgs {
  PagedKv kv;
  const StepState* state = nullptr;
  const int32_t* selected = nullptr;
  const int32_t* selected_slots = nullptr;
  const float* q = nullptr;  // scaled and rotated by the step launch (LayerSelectBuffers::query)
  int32_t n_heads = 0;
  RopeTables rope;
  int32_t remap = 1;
  int32_t splits = 1;
  float* part_o = nullptr;
  float2* part_ml = nullptr;
  float* out = nullptr;
  RowQuantOut out_q;  // out quantised as well (n_heads x head_dim as one row), when a format
};
void launch_attend(const AttendArgs& a, cudaStream_t stream);
// Resident blocks per multiprocessor of the split kernel for this head_dim and group size.
int attend_blocks_per_sm(int head_dim, int group);

// The scoring phase alone (for the benchmark's bandwidth figure): as inside launch_step.
void launch_scores_only(const PagedKv& kv, const LayerSelectBuffers& layer, const float* q, int32_t n_heads,
                        float scale, const SelectConfig& cfg, const SelectScratch& scratch, cudaStream_t stream);

// k8[i] = k[i] as fp8 e4m3, i < n (the keys' scoring copy of keys stored without it).
void launch_keys_to_fp8(const uint16_t* k, uint8_t* k8, int64_t n, cudaStream_t stream);

// Fills n fp16 values with a hash of (seed, index), uniform in [-scale, scale).
void launch_fill_random_half(uint16_t* x, int64_t n, uint32_t seed, float scale, cudaStream_t stream);

}  // namespace ts::cuda
