// Float steps of the CPU's fixed operation order (kernels/cpu/exact_ops.hpp) on the device, each
// written with an explicit rounding intrinsic so that no compiler contraction changes a bit.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ts::cuda {

// exp(x) by the CPU's exp_poly: n = round(x / ln2), b = x - n*ln2 in two parts, a degree-5
// polynomial j ~ e^b - 1, 2^n * (1 + j); |n| > 126 rescales in two steps, |n| > 192 saturates.
__device__ __forceinline__ float exp_poly(float x) {
  const float r = 0x1.8p23f;
  const float z = __fmaf_rn(x, 0x1.715476p+0f, r);
  const float n = __fsub_rn(z, r);
  const float b = __fmaf_rn(-n, 0x1.7f7d1cp-20f, __fmaf_rn(-n, 0x1.62e4p-1f, x));
  const uint32_t e = __float_as_uint(z) << 23;
  const float k = __uint_as_float(e + __float_as_uint(1.f));
  const float u = __fmul_rn(b, b);
  const float j = __fmaf_rn(__fmaf_rn(__fmaf_rn(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                      __fmaf_rn(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                            u, __fmul_rn(0x1.ffffecp-1f, b));
  const float an = fabsf(n);
  if (!(an > 126.f)) return __fmaf_rn(j, k, k);
  const uint32_t g = n <= 0.f ? 0x82000000u : 0u;
  const float s1 = __uint_as_float(g + 0x7f000000u);
  if (an > 192.f) return __fmul_rn(s1, s1);
  const float s2 = __uint_as_float(e - g);
  return __fmul_rn(__fmaf_rn(s2, j, s2), s1);
}

// ((t0+t4) + (t2+t6)) + ((t1+t5) + (t3+t7)) of a value held by 8 consecutive lanes (t = lane % 8),
// returned to all 8: the CPU's fold of eight fused-multiply-add chains (float addition commutes
// exactly, so the shuffle partners' order does not matter).
__device__ __forceinline__ float fold8_lanes(float v) {
  v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, 4));
  v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, 2));
  return __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, 1));
}

// The same fold of eight values one thread holds.
__device__ __forceinline__ float fold8(const float (&t)[8]) {
  const float a0 = __fadd_rn(t[0], t[4]), a1 = __fadd_rn(t[1], t[5]), a2 = __fadd_rn(t[2], t[6]),
              a3 = __fadd_rn(t[3], t[7]);
  return __fadd_rn(__fadd_rn(a0, a2), __fadd_rn(a1, a3));
}

}  // namespace ts::cuda
