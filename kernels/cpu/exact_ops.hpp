// Float operations in a fixed order: the order of llama.cpp's CPU build (AVX2, FMA, F16C, no
// AVX-512), so that attention, norms and activations — and with them every logit — reproduce
// it bit for bit. A model with 8-bit activations amplifies any last-bit difference: it flips
// activation-quantisation roundings downstream, so "close" is not enough to reproduce the
// reference's greedy choices. The portable and the AVX2 builds of exact_ops_impl.inc give
// identical bits (both compiled with -ffp-contract=off: no fused multiply-add but the written ones).
#pragma once
#include <cstdint>

namespace ts::kernels {

struct ExactOps {
  // Prefill form (m x n products of length k, k % 8 == 0):
  //   C[j*ldc + i] = fold8(lane sums), lane t = sum over l = t, t+8, ... of A[i][l] * B[j][l]
  //   as one fused multiply-add chain in l order; fold8 = ((t0+t4) + (t2+t6)) + ((t1+t5) + (t3+t7)).
  void (*dot_lanes8)(int64_t m, int64_t n, int64_t k, const float* A, int64_t lda, const float* B, int64_t ldb,
                     float* C, int64_t ldc);
  // Single-query form: 32 chains (group g = (l/8) % 4, lane t = l % 8), groups folded
  // (g0+g2) + (g1+g3), then lanes ((t0+t4) + (t1+t5)) + ((t2+t6) + (t3+t7)); the n % 32 tail is
  // added in double. Returns the dot of a and b over n.
  float (*dot_lanes32)(const float* a, const float* b, int64_t n);
  // The single-query form with the key index as l, for P.V: acc[32][d] holds the 32 chains of
  // d outputs; acc[j % 32][:] = fma(p, v[:], acc[j % 32][:]) for keys j in order, then
  // fold_lanes32 writes out[d] (no double tail: callers pad keys to a multiple of 32 with zeros).
  void (*fma_row)(float* acc, float p, const float* v, int64_t d);
  void (*fold_lanes32)(const float* acc, int64_t d, float* out);
  // Softmax of s[0, visible) in place, s[visible, n) set to 0: e = exp(x - max) by the
  // reference's polynomial, sum of 8-element blocks (folded like fold8) accumulated in double,
  // p = e * float(1 / sum).
  void (*softmax)(float* s, int64_t visible, int64_t n);
  // RoPE on one head vector with c/s from RopeTable (cos, signed sin; partner j^1 or j +- d/2):
  // the first of a pair is fma(x, c, partner*s), the second fma(partner, s, x*c), each with the
  // other product rounded — the reference's fused x0*cos - x1*sin, x0*sin + x1*cos.
  void (*rope)(float* x, const float* c, const float* s, int64_t d, bool adjacent);
  // RMSNorm's 1 / sqrt(mean(x^2) + eps): float squares summed in double in order, the mean
  // rounded to float.
  float (*rms_scale)(const float* x, int64_t n, float eps);
  // g = silu(g) * u with silu(x) = x / (1 + exp(-x)) by the softmax's exp.
  void (*silu_mul)(float* g, const float* u, int64_t n);
};

const ExactOps& exact_ops();

namespace generic { extern const ExactOps exact_ops_table; }
namespace avx2 { extern const ExactOps exact_ops_table; }

}  // namespace ts::kernels
