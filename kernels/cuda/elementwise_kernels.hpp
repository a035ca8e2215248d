// Launch wrappers of the CUDA backend's row and element operations: RMSNorm, bias, residual
// add, SwiGLU, storing a chunk's K/V in the paged cache, and the mean query of a chunk (its
// selection fingerprint). Arithmetic follows the CPU backend's (kernels/cpu/exact_ops) so that
// the two agree to the last bit where the order of operations allows. All asynchronous.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "decode_types.hpp"

namespace ts::cuda {

// y[i] = x[i] / rms(x[i]) * w over m rows of n (the sum of squares in double, as the CPU).
// Returns whether it wrote q (it may not: more rows, or rows it does not take in one pass).
bool launch_rmsnorm(const float* x, const float* w, int64_t m, int64_t n, float eps, float* y, RowQuantOut q,
                    cudaStream_t s);
// x += d (m rows of n), then y[i] = x[i] / rms(x[i]) * w; y may be d. Returns whether it wrote q.
bool launch_add_rmsnorm(float* x, const float* d, const float* w, int64_t m, int64_t n, float eps, float* y,
                        RowQuantOut q, cudaStream_t s);
// x[i] += bias over m rows of n.
void launch_add_bias(float* x, const float* bias, int64_t m, int64_t n, cudaStream_t s);
// y += x, n elements.
void launch_add(float* y, const float* x, int64_t n, cudaStream_t s);
// gate = silu(gate) * up with the CPU's polynomial exp. Returns whether it wrote q (n values as
// one row).
bool launch_swiglu(float* gate, const float* up, int64_t n, RowQuantOut q, cudaStream_t s);
// Stores m tokens' K and V (f32 rows of n_kv_heads x head_dim) at cache indices t0.. as fp16
// (and the keys' fp8 copy when kv has one).
void launch_kv_store(const PagedKv& kv, int64_t t0, int64_t m, const float* k, const float* v, cudaStream_t s);
// out[x] = mean over the m rows of q[i][x], x < n.
void launch_mean_rows(const float* q, int64_t m, int64_t n, float* out, cudaStream_t s);

}  // namespace ts::cuda
