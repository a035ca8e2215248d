// Prefill (chunk) attention on the GPU: m queries over an attended set of the paged fp16 cache,
// with the CPU backend's contract and rounding (AttentionArgs; fp16 rotated keys and queries,
// fp16 normalised probabilities). Both products run on the tensor cores through cuBLAS, or, in
// the CPU's order (cpu_order) over sets of up to 8,192 keys, on the CUDA cores with the CPU's
// bits (exact_kernels.hpp).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/device_buffer.hpp"
#include "cuda/decode_types.hpp"

namespace ts {

struct PrefillAttentionArgs {
  cuda::PagedKv kv;               // the layer's pages (device)
  cuda::RopeTables rope;          // device tables (CudaDecodeAttention::rope_tables())
  const int32_t* keys = nullptr;  // device: ascending cache indices of the attended set; null = all of [0, n_keys)
  int64_t n_keys = 0;
  bool remap = true;              // RoPE positions = ranks in the set (else true cache indices)
  const float* q = nullptr;       // device: m x n_heads x head_dim, before RoPE
  int64_t m = 0;
  int64_t q_first = 0;            // cache index of query 0
  int32_t n_heads = 0;            // query heads; kv.n_kv_heads divides it (group G = n_heads / n_kv_heads, <= 8)
  float scale = 1.f;
  float* out = nullptr;           // device: m x n_heads x head_dim (f32)
};

class CudaPrefillAttention {
 public:
  // scratch_bytes: most device memory the score matrices may take at once; queries are
  // processed in sub-blocks that fit (one query at least).
  CudaPrefillAttention(cudaStream_t stream, bool cpu_order, size_t scratch_bytes = size_t(1) << 30);
  ~CudaPrefillAttention();
  CudaPrefillAttention(const CudaPrefillAttention&) = delete;
  CudaPrefillAttention& operator=(const CudaPrefillAttention&) = delete;

  // Asynchronous on the stream; synchronises only when a scratch buffer has to grow.
  void run(const PrefillAttentionArgs& a);

 private:
  template <class T>
  void grow(DeviceBuffer<T>& b, size_t n, size_t cap);

  cudaStream_t stream_;
  bool cpu_order_;
  size_t scratch_bytes_;
  cublasHandle_t cublas_ = nullptr;
  DeviceBuffer<uint16_t> kg_, vg_;  // gathered set: n_kv_heads x n_pad x head_dim
  DeviceBuffer<uint16_t> qg_, p_;   // per sub-block: n_heads x mb x head_dim; n_heads x mb x n_pad
  DeviceBuffer<float> s_, o_;       // n_heads x mb x n_pad; n_heads x mb x head_dim
};

}  // namespace ts
