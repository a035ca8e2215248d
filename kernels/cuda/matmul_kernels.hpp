// Launch wrappers of the matrix products over GGUF weights resident on the GPU (F32, F16, BF16,
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K): activation quantisation into each weight
// type's partner format (bit-exact with kernels/cpu/quantize_act.cpp), the decode GEMV with the
// CPU's per-block integer arithmetic (kernels/cpu/dot_generic.cpp; only the order in which block
// results are summed differs), dequantisation to fp16 for the prefill GEMM, and the embedding
// row lookup. All calls are asynchronous on `s` and take device pointers; weights and
// activations must be 4-byte aligned, dequantised outputs 16-byte aligned (cudaMalloc gives 256).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "gguf/gguf_types.hpp"

namespace ts::cuda {

constexpr int kGemvMaxRows = 8;  // activation rows the GEMV kernels take at once

// Bytes of one activation row of n elements in weight type wt's partner format (equal to
// ts::kernels::act_row_bytes).
size_t act_row_bytes(GgmlType wt, int64_t n);

// Quantises m rows of n floats (x rows n apart) into wt's partner format, rows
// act_row_bytes(wt, n) apart in dst. F32/F16/BF16: copies the floats.
void launch_quantize_act(GgmlType wt, const float* x, int64_t m, int64_t n, void* dst, cudaStream_t s);

// y[j * ldy + r] = dot(W row r, activation row j) for r < n_out, j < m; W rows row_bytes apart;
// act from launch_quantize_act. Each group of kGemvMaxRows activation rows reads the weights
// once (m > kGemvMaxRows: the groups run side by side, the prefill path for small models).
void launch_gemv(GgmlType wt, const void* w, size_t row_bytes, int64_t n_in, int64_t n_out, const void* act,
                 int64_t m, float* y, int64_t ldy, cudaStream_t s);

// One weight of a one-row product: y[r] = dot(W row r, act) for r < n_out.
struct GemvTarget {
  const void* w;
  int64_t n_out;
  float* y;
};
constexpr int kGemvMaxTargets = 3;  // weights one launch of launch_gemv_row takes (Q, K, V)

// The decode product: one activation row (from launch_quantize_act) against n <= kGemvMaxTargets
// weights of type wt, all with rows of n_in values row_bytes apart, in one launch.
void launch_gemv_row(GgmlType wt, size_t row_bytes, int64_t n_in, const GemvTarget* targets, int n, const void* act,
                     cudaStream_t s);

// Rows [r0, r1) of W dequantised to fp16, row-major (n_in per row), into dst (for the prefill
// GEMM on cuBLAS).
void launch_dequantize_f16(GgmlType wt, const void* w, size_t row_bytes, int64_t n_in, int64_t r0, int64_t r1,
                           uint16_t* dst, cudaStream_t s);

// y[i * n_in ..] = row ids[i] of W dequantised to f32 (embedding lookup); ids on the device.
void launch_get_rows(GgmlType wt, const void* w, size_t row_bytes, int64_t n_in, const int32_t* ids, int64_t m,
                     float* y, cudaStream_t s);

// n floats to fp16 (round to nearest even).
void launch_f32_to_f16(const float* x, uint16_t* y, int64_t n, cudaStream_t s);

}  // namespace ts::cuda
