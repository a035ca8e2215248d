// Prefill operations in the CPU backend's own operation order, bit for bit (small models, whose
// logits should equal the CPU's: with 8-bit activations any last-bit difference flips roundings
// downstream, and near-tie tokens then differ). Asynchronous on `s`, device pointers.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "gguf/gguf_types.hpp"

namespace ts::cuda {

// The 32-element block types the CPU's prefill tiles cover: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
bool gemv_exact_supports(GgmlType wt);

// y[j * ldy + r] for r < n_out, j < m (m > 1): kernels/cpu/tile_avx2.cpp's prefill product of W
// row r and activation row j (act from launch_quantize_act): per block, the integer dot of each
// 4-element quarter-octet as a float times (activation d * weight d), fused into 8 lane chains
// over the blocks, folded; for Q4_1/Q5_1 plus the chain of m * s over the blocks (fused in the
// CPU's groups of 8 activations of each 128-row chunk, unfused for the chunk's last m % 8).
// Rows of up to 4,864 inputs (8 activation rows are staged in 48 KB of shared memory).
void launch_gemv_exact(GgmlType wt, const void* w, size_t row_bytes, int64_t n_in, int64_t n_out, const void* act,
                       int64_t m, float* y, int64_t ldy, cudaStream_t s);

// Products of fp16 operands in ExactOps::dot_lanes8's order, for `batch` independent problems:
//   C[z][j * ldc + i] = fold8(lane t: fused chain over l = t, t+8, ... < k of A(i, l) * B(j, l))
// for i < n_a, j < n_b; A(i, l) = a[z * a_batch + i * a_si + l * a_sl] (row- or column-major),
// B(j, l) = b[z * b_batch + j * ldb + l]. Operands past k read as zero.
struct Lanes8Operands {
  const uint16_t* a;
  int64_t a_batch, a_si, a_sl;
  const uint16_t* b;
  int64_t b_batch, ldb;
  float* c;
  int64_t c_batch, ldc;
};
void launch_lanes8_products(const Lanes8Operands& o, int64_t n_a, int64_t n_b, int64_t k, int batch,
                            cudaStream_t s);

}  // namespace ts::cuda
