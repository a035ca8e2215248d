// Q8_0 / Q8_1 activation blocks on the device (kernels/cpu/quantize_act.cpp, bit for bit): the
// one implementation behind launch_quantize_act and the kernels that quantise their own one-row
// results for the matmul that reads them next (RMSNorm, SwiGLU, the attention's combine).
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

namespace ts::cuda {

// Quantises part c (values N*c .. N*c+N-1) of a row into its 32-value block at
// row + (c / L) block bytes, L = 32 / N lanes holding the block's parts (lanes lane ^ 1, ^ 2, ..
// ^ L/2 hold the others; callers keep c % L == lane % L). d = amax / 127,
// q = round-half-even(x * (127 / amax)) (the CPU's magic-number rounding of the rounded
// product); d, and for Q8_1 (S) s = d * sum(q), as fp16. Every lane of the warp must call it
// (the shuffles span the warp); only lanes with `store` write.
template <bool S, int N>
__device__ __forceinline__ void quantize_q8_part(const float (&v)[N], int64_t c, uint8_t* row, bool store) {
  constexpr unsigned kFull = 0xffffffffu;
  constexpr int L = 32 / N;
  float amax = 0.f;
#pragma unroll
  for (int i = 0; i < N; ++i) amax = fmaxf(amax, fabsf(v[i]));
#pragma unroll
  for (int o = 1; o < L; o <<= 1) amax = fmaxf(amax, __shfl_xor_sync(kFull, amax, o));
  const float d = __fdiv_rn(amax, 127.0f), id = amax != 0 ? __fdiv_rn(127.0f, amax) : 0.0f;
  int q[N], sum = 0;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    q[i] = __float2int_rn(__fmul_rn(v[i], id));
    sum += q[i];
  }
  if (S)
#pragma unroll
    for (int o = 1; o < L; o <<= 1) sum += __shfl_xor_sync(kFull, sum, o);
  if (!store) return;
  constexpr int kHead = S ? 4 : 2;  // fp16 d (and s) before the 32 values
  uint8_t* blk = row + (c / L) * (kHead + 32);
  const int sub = int(c % L);
#pragma unroll
  for (int i = 0; i < N; ++i) blk[kHead + N * sub + i] = uint8_t(q[i]);
  if (sub == 0) {
    reinterpret_cast<uint16_t*>(blk)[0] = __half_as_ushort(__float2half_rn(d));
    if (S) reinterpret_cast<uint16_t*>(blk)[1] = __half_as_ushort(__float2half_rn(__fmul_rn(d, float(sum))));
  }
}

// Four values held as a float4 (8 lanes per block).
template <bool S>
__device__ __forceinline__ void quantize_q8_quad(float4 v, int64_t c, uint8_t* row, bool store) {
  const float a[4] = {v.x, v.y, v.z, v.w};
  quantize_q8_part<S, 4>(a, c, row, store);
}

}  // namespace ts::cuda
