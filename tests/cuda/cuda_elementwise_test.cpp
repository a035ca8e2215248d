// The CUDA row operations (cuda/elementwise_kernels.hpp) against the CPU's arithmetic
// (cpu/exact_ops, cpu/quant): RMSNorm, alone and fused with the residual add, on the vectorised
// path (row widths of the supported models) and on the general one (widths that are not a
// multiple of 4, wider than the registers hold, or misaligned rows); SwiGLU; and the activation
// blocks both write for the next matmul in the same pass, byte for byte. Skips without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cuda/device_buffer.hpp"
#include "cpu/exact_ops.hpp"
#include "cpu/quant.hpp"
#include "cuda/elementwise_kernels.hpp"
#include "cuda_test_support.hpp"

namespace ts {
namespace {

using test::download;
using test::upload;

// Distance in units in the last place between two finite floats of the same sign.
int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::llabs(int64_t(ia) - int64_t(ib));
}

// The weight types whose activation format a row operation can write, and that format.
struct QuantCase {
  GgmlType weight;
  cuda::RowQuant format;
};
const QuantCase kQuants[] = {{GgmlType::F32, cuda::RowQuant::none},
                             {GgmlType::Q4_0, cuda::RowQuant::q8_0},
                             {GgmlType::Q4_1, cuda::RowQuant::q8_1}};

// The quantised row the kernel wrote equals the CPU's quantisation of the float row it wrote.
void expect_quantised(const QuantCase& qc, const DeviceBuffer<uint8_t>& q, const float* y, int64_t n) {
  std::vector<uint8_t> want(kernels::act_row_bytes(qc.weight, n));
  kernels::quantize_act_row(qc.weight, y, want.data(), n);
  std::vector<uint8_t> got = download(q);
  got.resize(want.size());
  EXPECT_EQ(got, want);
}

// RMSNorm of m rows of n (the float rows start `offset` floats into their buffers); with add,
// the residual step x += d first, writing y over d as the forward pass does; with a quantised
// format, also the row's activation blocks.
void check_rmsnorm(int64_t m, int64_t n, int64_t offset, bool add, const QuantCase& qc) {
  SCOPED_TRACE(::testing::Message() << "m " << m << ", n " << n << ", offset " << offset << ", add " << add
                                    << ", format " << int(qc.format));
  std::mt19937 rng(uint32_t(n * 7 + m));
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(size_t(m * n + offset)), d(x.size()), w(size_t(n + offset));
  for (float& v : x) v = nd(rng) * std::exp(nd(rng));  // magnitudes spread over decades
  for (float& v : d) v = nd(rng);
  for (float& v : w) v = 1.f + 0.1f * nd(rng);
  DeviceBuffer<float> dx = upload(x), dd = upload(d), dw = upload(w), dy(x.size());
  DeviceBuffer<uint8_t> dq(size_t(n) * 2);
  const cuda::RowQuantOut q{qc.format, dq.get()};
  const bool wrote = add ? cuda::launch_add_rmsnorm(dx.get() + offset, dd.get() + offset, dw.get() + offset, m, n,
                                                    1e-5f, dd.get() + offset, q, nullptr)
                         : cuda::launch_rmsnorm(dx.get() + offset, dw.get() + offset, m, n, 1e-5f, dy.get() + offset,
                                                q, nullptr);
  const std::vector<float> gx = download(dx), gy = add ? download(dd) : download(dy);
  if (add)
    for (size_t i = size_t(offset); i < x.size(); ++i) x[i] += d[i];
  EXPECT_EQ(gx, x);  // the residual stream exactly (and untouched without add)
  int64_t worst = 0;
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x.data() + offset + i * n;
    const float s = kernels::exact_ops().rms_scale(xi, n, 1e-5f);
    for (int64_t j = 0; j < n; ++j)
      worst = std::max(worst, ulps(gy[size_t(offset + i * n + j)], xi[j] * s * w[size_t(offset + j)]));
  }
  // The sum of squares is added in another order (in double): the scale may differ in its last bit.
  EXPECT_LE(worst, 1);
  // Quantised in the same pass for one row on the vectorised path (multiples of 32, aligned).
  const bool can = qc.format != cuda::RowQuant::none && m == 1 && n % 32 == 0 && n <= 8192 && offset == 0;
  EXPECT_EQ(wrote, can);
  if (can) expect_quantised(qc, dq, gy.data(), n);
}

TEST(CudaElementwise, RmsNormMatchesCpu) {
  TS_SKIP_WITHOUT_GPU();
  for (bool add : {false, true})
    for (const QuantCase& qc : kQuants) {
      for (int64_t n : {576, 896, 3584, 4096, 8192})  // vectorised: SmolLM2, Qwen2-0.5B, Qwen2-7B, Llama 3
        for (int64_t m : {1, 3}) check_rmsnorm(m, n, 0, add, qc);
      check_rmsnorm(1, 8196, 0, add, qc);  // wider than 8 float4s per thread
      check_rmsnorm(2, 1001, 0, add, qc);  // not a multiple of 4
      check_rmsnorm(1, 4096, 1, add, qc);  // rows off 16-byte alignment
    }
}

TEST(CudaElementwise, SwigluMatchesCpu) {
  TS_SKIP_WITHOUT_GPU();
  for (const QuantCase& qc : kQuants)
    for (int64_t n : {1536, 14336, 1000}) {  // SmolLM2's and Llama 3's n_ff; one off the block size
      SCOPED_TRACE(::testing::Message() << "n " << n << ", format " << int(qc.format));
      std::mt19937 rng(static_cast<uint32_t>(n));
      std::normal_distribution<float> nd(0.f, 2.f);
      std::vector<float> g(static_cast<size_t>(n)), u(g.size());
      for (float& v : g) v = nd(rng);
      for (float& v : u) v = nd(rng);
      DeviceBuffer<float> dg = upload(g), du = upload(u);
      DeviceBuffer<uint8_t> dq(size_t(n) * 2);
      const bool wrote = cuda::launch_swiglu(dg.get(), du.get(), n, {qc.format, dq.get()}, nullptr);
      kernels::exact_ops().silu_mul(g.data(), u.data(), n);
      const std::vector<float> got = download(dg);
      EXPECT_EQ(got, g);
      EXPECT_EQ(wrote, qc.format != cuda::RowQuant::none && n % 32 == 0);
      if (wrote) expect_quantised(qc, dq, got.data(), n);
    }
}

}  // namespace
}  // namespace ts
