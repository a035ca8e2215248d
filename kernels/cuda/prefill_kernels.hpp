// Launch wrappers of the element kernels around the two cuBLAS products of prefill (chunk)
// attention: gather the attended K/V (keys rotated), rotate the queries, masked softmax, and
// scatter the output back. All calls are asynchronous on `stream`.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "decode_types.hpp"

namespace ts::cuda {

// The attended set: ascending cache indices (null: all of [0, n_keys)), gathered into n_pad
// rows per KV head (n_keys rounded up to 8 for the tensor cores). RoPE positions are ranks in
// the set (remap) or the cache indices.
struct PrefillSet {
  const int32_t* keys = nullptr;
  int64_t n_keys = 0;
  int64_t n_pad = 0;
  int32_t remap = 1;
};

// A sub-block of mb queries at cache indices q_first .. q_first + mb - 1. The per-head buffers
// of the products are "head-major": row h * mb + i holds query i, head h, so KV head g's rows
// (its G query heads) are contiguous.
struct PrefillBlock {
  int64_t mb = 0;
  int64_t q_first = 0;
  int32_t n_heads = 0;
  int32_t head_dim = 0;
};

// kg, vg [n_kv_heads][n_pad][head_dim] fp16: the set's keys rotated at their positions, and its
// values; rows n_keys .. n_pad - 1 are zero (they meet zero probabilities in P . V).
void launch_prefill_gather(const PagedKv& kv, const RopeTables& rope, const PrefillSet& set, uint16_t* kg,
                           uint16_t* vg, cudaStream_t stream);

// qg [n_heads][mb][head_dim] fp16: q (mb x n_heads x head_dim f32, before RoPE) rotated at each
// query's position (its rank in the set, or its cache index).
void launch_prefill_queries(const float* q, const PrefillBlock& b, const RopeTables& rope, const PrefillSet& set,
                            uint16_t* qg, cudaStream_t stream);

// p [n_heads * mb][ld] fp16 = softmax(scale * s) of each row of s (f32, same shape) over the keys
// its query sees (cache index <= its own), normalised; columns [visible, cols) are zero.
void launch_prefill_softmax(const float* s, const PrefillBlock& b, const PrefillSet& set, int64_t ld, int64_t cols,
                            float scale, uint16_t* p, cudaStream_t stream);

// The same in the CPU's operation order, bit for bit (ExactOps::softmax: polynomial exp, blocks
// of 8 summed in double in order); leaves the unnormalised exponentials in s.
void launch_prefill_softmax_exact(float* s, const PrefillBlock& b, const PrefillSet& set, int64_t ld, int64_t cols,
                                  float scale, uint16_t* p, cudaStream_t stream);

// out[i][h][:] = o[h][i][:] (f32), for the block's mb queries.
void launch_prefill_scatter(const float* o, const PrefillBlock& b, float* out, cudaStream_t stream);

}  // namespace ts::cuda
