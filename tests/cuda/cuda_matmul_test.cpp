// The CUDA matrix products over GGUF weights (cuda/matmul_kernels.hpp) against the CPU kernels
// (cpu/quant.hpp), for every weight type: activation quantisation byte for byte, the GEMV for
// 1, 3, 8 and 21 activation rows (also with the activations staged in chunks), the prefill
// product in the CPU's order bit for bit (32-element block types), the decode
// launch over three weights at once, fp16 dequantisation and the row lookup exactly, and the
// fp16 conversion. Skips without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_decode_attention.hpp"
#include "backend/cuda/device_buffer.hpp"
#include "cpu/blocks.hpp"
#include "cpu/quant.hpp"
#include "cuda/exact_kernels.hpp"
#include "cuda/matmul_kernels.hpp"
#include "cuda_test_support.hpp"
#include "util/fp16.hpp"

namespace ts {
namespace {

using test::download;
using test::upload;

constexpr int64_t kRows = 37;  // weight rows: odd on purpose

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                           GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

bool is_float(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

// Row lengths per type: 256 and 512, plus one off the usual alignment (100 floats; 5 blocks of
// 32, so that legacy blocks and activation rows start 2 bytes off a word).
std::vector<int64_t> sizes(GgmlType t) {
  if (is_float(t)) return {100, 256, 512};
  if (traits(t).block_elems == 32) return {160, 256, 512};
  return {256, 512};
}

// Offsets of a block's fp16 scales (d, m, dmin).
std::vector<size_t> half_offsets(GgmlType t) {
  using namespace kernels::detail;
  switch (t) {
    case GgmlType::Q4_0: return {offsetof(BlockQ4_0, d)};
    case GgmlType::Q4_1: return {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)};
    case GgmlType::Q5_0: return {offsetof(BlockQ5_0, d)};
    case GgmlType::Q5_1: return {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)};
    case GgmlType::Q8_0: return {offsetof(BlockQ8_0, d)};
    case GgmlType::Q4_K: return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
    case GgmlType::Q5_K: return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
    case GgmlType::Q6_K: return {offsetof(BlockQ6_K, d)};
    default: return {};
  }
}

// `rows` weight rows of n values: random quant (and K-quant scale) bytes with fp16 scales of
// magnitude 1e-2..1e-1 and either sign; float types from normal values.
std::vector<uint8_t> random_weights(GgmlType t, int64_t n, int64_t rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> w(size_t(row_bytes(t, n) * rows));
  if (is_float(t)) {
    std::normal_distribution<float> nd(0.f, 1.f);
    for (int64_t i = 0; i < n * rows; ++i) {
      const float v = nd(rng);
      if (t == GgmlType::F32) std::memcpy(&w[size_t(4 * i)], &v, 4);
      const uint16_t h = t == GgmlType::F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
      if (t != GgmlType::F32) std::memcpy(&w[size_t(2 * i)], &h, 2);
    }
    return w;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& b : w) b = uint8_t(byte(rng));
  std::uniform_real_distribution<float> mag(1e-2f, 1e-1f);
  const size_t bb = size_t(traits(t).block_bytes);
  for (size_t blk = 0; blk < w.size(); blk += bb)
    for (size_t off : half_offsets(t)) {
      const uint16_t h = fp32_to_fp16(byte(rng) & 1 ? mag(rng) : -mag(rng));
      std::memcpy(&w[blk + off], &h, 2);
    }
  return w;
}

// m rows of n normal activations. Row 0 exercises the quantisers' corners: its extreme is -127
// (scale 1, so half-integers round to even), +127 ties it later (the first one sets Q8_K's sign),
// and values 256.. are zero (all-zero blocks; one negative zero).
std::vector<float> activations(int64_t m, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(size_t(m * n));
  for (float& v : x) v = nd(rng);
  const float corner[] = {-127.f, 127.f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, -126.5f};
  std::copy(std::begin(corner), std::end(corner), x.begin());
  if (n >= 512) {
    std::fill(x.begin() + 256, x.begin() + n, 0.f);
    x[300] = -0.f;
  }
  return x;
}

// The CPU's activation rows (kernels::quantize_act_row), act_row_bytes apart.
std::vector<uint8_t> cpu_quantize(GgmlType t, const std::vector<float>& x, int64_t m, int64_t n) {
  const size_t ab = kernels::act_row_bytes(t, n);
  std::vector<uint8_t> a(ab * size_t(m));
  for (int64_t j = 0; j < m; ++j) kernels::quantize_act_row(t, &x[size_t(j * n)], &a[ab * size_t(j)], n);
  return a;
}

std::vector<float> cpu_dequantize(GgmlType t, const std::vector<uint8_t>& w, int64_t n, int64_t r) {
  std::vector<float> y(static_cast<size_t>(n));
  kernels::dequantize_row(t, &w[size_t(row_bytes(t, n) * r)], y.data(), n);
  return y;
}

std::string name(GgmlType t, int64_t n) { return std::string(type_name(uint32_t(t))) + " n " + std::to_string(n); }

TEST(CudaMatmul, QuantizeActMatchesCpuBytes) {
  TS_SKIP_WITHOUT_GPU();
  const int64_t m = cuda::kGemvMaxRows;
  for (GgmlType t : kTypes)
    for (int64_t n : sizes(t)) {
      SCOPED_TRACE(name(t, n));
      ASSERT_EQ(cuda::act_row_bytes(t, n), kernels::act_row_bytes(t, n));
      const std::vector<float> x = activations(m, n, uint32_t(n));
      const DeviceBuffer<float> xd = upload(x);
      DeviceBuffer<uint8_t> ad(cuda::act_row_bytes(t, n) * size_t(m));
      cuda::launch_quantize_act(t, xd.get(), m, n, ad.get(), nullptr);
      const std::vector<uint8_t> gpu = download(ad), cpu = cpu_quantize(t, x, m, n);
      const auto diff = std::mismatch(gpu.begin(), gpu.end(), cpu.begin());
      EXPECT_TRUE(diff.first == gpu.end()) << "first differing byte " << (diff.first - gpu.begin()) << " of "
                                           << gpu.size();
    }
}

// launch_gemv for m activation rows against kernels::vec_dot: within 1e-5 of the sum of
// |w_i x_i| (or 1e-4); y's padding between rows (ldy > n_out) stays untouched.
void check_gemv(GgmlType t, int64_t n, int64_t m) {
  SCOPED_TRACE(name(t, n) + " m " + std::to_string(m));
  const std::vector<uint8_t> w = random_weights(t, n, kRows, uint32_t(n + m));
  const std::vector<float> x = activations(m, n, uint32_t(7 * n + m));
  const std::vector<uint8_t> a = cpu_quantize(t, x, m, n);
  const size_t rb = size_t(row_bytes(t, n)), ab = kernels::act_row_bytes(t, n);
  const DeviceBuffer<uint8_t> wd = upload(w);
  const DeviceBuffer<float> xd = upload(x);
  DeviceBuffer<uint8_t> ad(ab * size_t(m));
  const int64_t ldy = kRows + 3;
  constexpr float kPoison = -7777.f;
  DeviceBuffer<float> yd = upload(std::vector<float>(size_t(m * ldy), kPoison));
  cuda::launch_quantize_act(t, xd.get(), m, n, ad.get(), nullptr);
  cuda::launch_gemv(t, wd.get(), rb, n, kRows, ad.get(), m, yd.get(), ldy, nullptr);
  const std::vector<float> y = download(yd);
  for (int64_t r = 0; r < kRows; ++r) {
    const std::vector<float> wr = cpu_dequantize(t, w, n, r);
    for (int64_t j = 0; j < m; ++j) {
      const float ref = kernels::vec_dot(t, n, &w[rb * size_t(r)], &a[ab * size_t(j)]);
      double mag = 0;
      for (int64_t i = 0; i < n; ++i) mag += std::fabs(double(wr[size_t(i)]) * x[size_t(j * n + i)]);
      EXPECT_NEAR(y[size_t(j * ldy + r)], ref, std::max(1e-4, 1e-5 * mag)) << "row " << r << " act " << j;
    }
  }
  for (int64_t j = 0; j < m; ++j)
    for (int64_t r = kRows; r < ldy; ++r) EXPECT_EQ(y[size_t(j * ldy + r)], kPoison) << "padding overwritten";
}

TEST(CudaMatmul, GemvMatchesCpu) {
  TS_SKIP_WITHOUT_GPU();
  for (GgmlType t : kTypes)
    for (int64_t n : sizes(t))
      for (int64_t m : {1, 3, 8, 21}) check_gemv(t, n, m);  // 21: two groups of 8 side by side, then 5
}

// launch_gemv_exact against the CPU's prefill tiles (kernels::matmul_tile), bit for bit, for m
// activation rows: 2 and 13 (one chunk of the CPU's min-term pass, its last rows unfused), 133
// and 300 (chunks of 128 and a shorter one).
TEST(CudaMatmul, GemvExactEqualsCpuTiles) {
  TS_SKIP_WITHOUT_GPU();
  if (std::string(kernels::active_isa()) != "avx2") GTEST_SKIP() << "the exact order is the CPU's AVX2 tiles'";
  for (GgmlType t : kTypes) {
    if (!cuda::gemv_exact_supports(t)) continue;
    for (int64_t n : sizes(t))
      for (int64_t m : {2, 13, 133, 300}) {
        SCOPED_TRACE(name(t, n) + " m " + std::to_string(m));
        const std::vector<uint8_t> w = random_weights(t, n, kRows, uint32_t(3 * n + m));
        const std::vector<uint8_t> a = cpu_quantize(t, activations(m, n, uint32_t(5 * n + m)), m, n);
        const size_t rb = size_t(row_bytes(t, n)), ab = kernels::act_row_bytes(t, n);
        const int64_t ldy = kRows + 3;
        std::vector<float> want(size_t(m * ldy), -7777.f);
        kernels::matmul_tile(t, n, w.data(), rb, 0, kRows, a.data(), ab, m, want.data(), ldy);
        const DeviceBuffer<uint8_t> wd = upload(w), ad = upload(a);
        DeviceBuffer<float> yd = upload(std::vector<float>(size_t(m * ldy), -7777.f));
        cuda::launch_gemv_exact(t, wd.get(), rb, n, kRows, ad.get(), m, yd.get(), ldy, nullptr);
        const std::vector<float> got = download(yd);
        int64_t differ = 0, first = -1;
        for (size_t i = 0; i < got.size(); ++i)
          if (std::memcmp(&got[i], &want[i], 4) != 0 && differ++ == 0) first = int64_t(i);
        EXPECT_EQ(differ, 0) << "first at act " << first / ldy << " row " << first % ldy << ": "
                             << (first >= 0 ? got[size_t(first)] : 0.f) << " vs " << (first >= 0 ? want[size_t(first)] : 0.f);
      }
  }
}

// The decode launch: three weights of one type in one launch_gemv_row, the first with more rows
// than a device holds warps at once (each warp walks several rows), against kernels::vec_dot.
TEST(CudaMatmul, GemvRowOfThreeWeightsMatchesCpu) {
  TS_SKIP_WITHOUT_GPU();
  const int64_t n = 256, rows[3] = {9001, 37, 1200};
  for (GgmlType t : kTypes) {
    SCOPED_TRACE(name(t, n));
    const std::vector<float> x = activations(1, n, 11);
    const std::vector<uint8_t> a = cpu_quantize(t, x, 1, n);
    const DeviceBuffer<uint8_t> ad = upload(a);
    const size_t rb = size_t(row_bytes(t, n));
    std::vector<std::vector<uint8_t>> w;
    std::vector<DeviceBuffer<uint8_t>> wd;
    std::vector<DeviceBuffer<float>> yd;
    cuda::GemvTarget targets[3];
    for (int i = 0; i < 3; ++i) {
      w.push_back(random_weights(t, n, rows[i], uint32_t(100 + i)));
      wd.push_back(upload(w[size_t(i)]));
      yd.emplace_back(size_t(rows[i]));
      targets[i] = {wd.back().get(), rows[i], yd.back().get()};
    }
    cuda::launch_gemv_row(t, rb, n, targets, 3, ad.get(), nullptr);
    for (int i = 0; i < 3; ++i) {
      const std::vector<float> y = download(yd[size_t(i)]);
      int bad = 0;
      for (int64_t r = 0; r < rows[i]; ++r) {
        const float ref = kernels::vec_dot(t, n, &w[size_t(i)][rb * size_t(r)], a.data());
        const std::vector<float> wr = cpu_dequantize(t, w[size_t(i)], n, r);
        double mag = 0;
        for (int64_t e = 0; e < n; ++e) mag += std::fabs(double(wr[size_t(e)]) * x[size_t(e)]);
        if (std::fabs(y[size_t(r)] - ref) > std::max(1e-4, 1e-5 * mag) && bad++ < 3)
          ADD_FAILURE() << "weight " << i << " row " << r << ": " << y[size_t(r)] << " vs " << ref;
      }
      EXPECT_EQ(bad, 0) << "weight " << i;
    }
  }
}

// 8 rows of 8192 activations exceed one staged chunk (48 KiB of shared memory).
TEST(CudaMatmul, GemvWithChunkedActivations) {
  TS_SKIP_WITHOUT_GPU();
  for (GgmlType t : kTypes) check_gemv(t, 8192, 8);
}

TEST(CudaMatmul, DequantizeF16IsExact) {
  TS_SKIP_WITHOUT_GPU();
  const int64_t r0 = 5, r1 = kRows;
  for (GgmlType t : kTypes)
    for (int64_t n : sizes(t)) {
      SCOPED_TRACE(name(t, n));
      const std::vector<uint8_t> w = random_weights(t, n, kRows, uint32_t(3 * n));
      const DeviceBuffer<uint8_t> wd = upload(w);
      DeviceBuffer<uint16_t> yd(size_t((r1 - r0) * n));
      cuda::launch_dequantize_f16(t, wd.get(), size_t(row_bytes(t, n)), n, r0, r1, yd.get(), nullptr);
      const std::vector<uint16_t> y = download(yd);
      for (int64_t r = r0; r < r1; ++r) {
        const std::vector<float> ref = cpu_dequantize(t, w, n, r);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(y[size_t((r - r0) * n + i)], fp32_to_fp16(ref[size_t(i)])) << "row " << r << " value " << i;
      }
    }
}

TEST(CudaMatmul, GetRowsIsExact) {
  TS_SKIP_WITHOUT_GPU();
  const std::vector<int32_t> ids = {36, 0, 5, 5, 17};
  const DeviceBuffer<int32_t> idd = upload(ids);
  for (GgmlType t : kTypes)
    for (int64_t n : sizes(t)) {
      SCOPED_TRACE(name(t, n));
      const std::vector<uint8_t> w = random_weights(t, n, kRows, uint32_t(5 * n));
      const DeviceBuffer<uint8_t> wd = upload(w);
      DeviceBuffer<float> yd(ids.size() * size_t(n));
      cuda::launch_get_rows(t, wd.get(), size_t(row_bytes(t, n)), n, idd.get(), int64_t(ids.size()), yd.get(),
                            nullptr);
      const std::vector<float> y = download(yd);
      for (size_t i = 0; i < ids.size(); ++i) {
        const std::vector<float> ref = cpu_dequantize(t, w, n, ids[i]);
        ASSERT_EQ(std::memcmp(&y[i * size_t(n)], ref.data(), size_t(n) * 4), 0) << "output row " << i;
      }
    }
}

TEST(CudaMatmul, F32ToF16RoundsToNearestEven) {
  TS_SKIP_WITHOUT_GPU();
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> expo(-30.f, 17.f);
  std::vector<float> x(10000);
  for (float& v : x) v = std::exp2(expo(rng)) * (rng() & 1 ? 1.f : -1.f);  // subnormal halves to overflow
  const DeviceBuffer<float> xd = upload(x);
  DeviceBuffer<uint16_t> yd(x.size());
  cuda::launch_f32_to_f16(xd.get(), yd.get(), int64_t(x.size()), nullptr);
  const std::vector<uint16_t> y = download(yd);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], fp32_to_fp16(x[i])) << x[i];
}

}  // namespace
}  // namespace ts
