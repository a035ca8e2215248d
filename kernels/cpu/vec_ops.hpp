// Float vector primitives for attention and elementwise work. Each has a portable and an
// AVX2/FMA/F16C build of the same source (vec_ops_impl.inc), picked once at run time.
#pragma once
#include <cstdint>

namespace ts::kernels {

struct VecOps {
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float* y, float a, const float* x, int64_t n);         // y += a*x
  void (*fp16_to_f32)(const uint16_t* x, float* y, int64_t n);
  void (*f32_to_fp16)(const float* x, uint16_t* y, int64_t n);
  // x[i] = exp(x[i] - m); returns the sum (softmax numerators). ~1 ulp from expf.
  float (*exp_sub_sum)(float* x, float m, int64_t n);
};

const VecOps& vec_ops();

namespace generic { extern const VecOps vec_ops_table; }
namespace avx2 { extern const VecOps vec_ops_table; }

}  // namespace ts::kernels
