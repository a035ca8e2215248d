// The CUDA backend: weights resident on the GPU in their GGUF types (dequantise-GEMV for a few
// rows, cuBLAS on dequantised fp16 tiles for prefill chunks), the paged KV cache and
// TokenSelect's selection on the device (DeviceAttention), and decode steps recorded once as
// CUDA graphs and replayed.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.hpp"

namespace ts {

struct CudaBackendShape {
  int32_t n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int64_t capacity = 0;   // KV cache tokens
  int64_t max_batch = 0;  // most tokens of one step (the prefill chunk)
  RopeParams rope;
};

// Why the CUDA backend cannot run this shape here (no device, head size, memory), or empty.
std::string cuda_backend_unavailable(const CudaBackendShape& shape);

// Throws ts::Error (unsupported, out_of_memory) with a precise message.
std::unique_ptr<Backend> make_cuda_backend(const CudaBackendShape& shape, const DeviceSelectConfig& cfg);

}  // namespace ts
