// Dot products and matmul tiles of every weight type against float references, the AVX2 and
// generic kernel sets against each other, and the dequantisation of float specials.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "cpu/blocks.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/quant.hpp"
#include "util/fp16.hpp"

namespace ts::kernels {
namespace {
using namespace detail;

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                           GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

std::string type_label(const testing::TestParamInfo<GgmlType>& info) {
  return traits(info.param).name;
}

uint16_t half_in(std::mt19937& rng, float lo, float hi) {
  return fp32_to_fp16(std::uniform_real_distribution<float>(lo, hi)(rng));
}

// `rows` rows of `n` weights: random quant bytes with sane finite scales written on top.
std::vector<uint8_t> random_weights(GgmlType t, int64_t rows, int64_t n, std::mt19937& rng) {
  const int64_t rb = row_bytes(t, n);
  std::vector<uint8_t> w(size_t(rows * rb) + 64);  // slack: kernels must not read past rows
  std::normal_distribution<float> normal(0.f, 1.f);
  if (t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16) {
    for (int64_t i = 0; i < rows * n; ++i) {
      const float v = normal(rng) * 0.1f;
      if (t == GgmlType::F32) std::memcpy(&w[size_t(4 * i)], &v, 4);
      const uint16_t h = t == GgmlType::F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
      if (t != GgmlType::F32) std::memcpy(&w[size_t(2 * i)], &h, 2);
    }
    return w;
  }
  for (auto& b : w) b = uint8_t(rng());
  const int64_t be = traits(t).block_elems, bb = traits(t).block_bytes;
  for (int64_t k = 0; k < rows * n / be; ++k) {
    uint8_t* p = w.data() + k * bb;
    const uint16_t d = half_in(rng, 0.001f, 0.02f), m = half_in(rng, -0.15f, 0.05f);
    const uint16_t dk = half_in(rng, 0.0005f, 0.004f), dmin = half_in(rng, 0.0f, 0.004f);
    switch (t) {
      case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: std::memcpy(p, &d, 2); break;
      case GgmlType::Q4_1: case GgmlType::Q5_1: std::memcpy(p, &d, 2), std::memcpy(p + 2, &m, 2); break;
      case GgmlType::Q4_K: case GgmlType::Q5_K:
        std::memcpy(p, &dk, 2), std::memcpy(p + 2, &dmin, 2);
        break;
      case GgmlType::Q6_K: std::memcpy(p + 208, &dk, 2); break;
      default: break;
    }
  }
  return w;
}

std::vector<float> random_acts(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = normal(rng);
  x[size_t(rng() % n)] = 9.5f;  // an outlier, as real activations have
  return x;
}

// The activation row as the kernels see it, back in float; plus, for Q8_1, the per-block
// difference between the stored s and d*sum(q) (s is rounded to half).
std::vector<float> dequant_act(GgmlType wt, const uint8_t* a, int64_t n, std::vector<float>* s_err) {
  std::vector<float> x(static_cast<size_t>(n));
  const size_t bytes = act_row_bytes(wt, n);
  if (bytes == size_t(4 * n)) {
    std::memcpy(x.data(), a, bytes);
  } else if (bytes == size_t(row_bytes(GgmlType::Q8_0, n))) {
    dequantize_row(GgmlType::Q8_0, a, x.data(), n);
  } else if (bytes == size_t(row_bytes(GgmlType::Q8_1, n))) {
    const auto* b = reinterpret_cast<const BlockQ8_1*>(a);
    for (int64_t i = 0; i < n / 32; ++i) {
      int sum = 0;
      for (int j = 0; j < 32; ++j) x[size_t(32 * i + j)] = h2f(b[i].d) * b[i].qs[j], sum += b[i].qs[j];
      if (s_err) s_err->push_back(h2f(b[i].s) - double(h2f(b[i].d)) * sum);
    }
  } else {
    const auto* b = reinterpret_cast<const BlockQ8_K*>(a);
    for (int64_t i = 0; i < n / 256; ++i)
      for (int j = 0; j < 256; ++j) x[size_t(256 * i + j)] = b[i].d * b[i].qs[j];
  }
  return x;
}

// Per-block min of Q4_1 / Q5_1 weights (the factor of Q8_1's s in the dot product).
std::vector<float> block_mins(GgmlType t, const uint8_t* w, int64_t n) {
  std::vector<float> m;
  if (t != GgmlType::Q4_1 && t != GgmlType::Q5_1) return m;
  const int64_t bb = traits(t).block_bytes;
  for (int64_t i = 0; i < n / 32; ++i) {
    uint16_t h;
    std::memcpy(&h, w + i * bb + 2, 2);
    m.push_back(h2f(h));
  }
  return m;
}

struct Ref {
  double exact;   // dequant(W) . dequant(quantised act), with Q8_1's stored s
  double scale;   // sum |w_i * a_i|, for relative tolerances
  double quant;   // dequant(W) . x (unquantised activations)
  double q_tol;   // bound on |exact - quant| from activation rounding
};

Ref reference(GgmlType t, int64_t n, const uint8_t* w, const uint8_t* a, const float* x) {
  std::vector<float> wf(static_cast<size_t>(n));
  dequantize_row(t, w, wf.data(), n);
  std::vector<float> s_err;
  const std::vector<float> af = dequant_act(t, a, n, &s_err);
  const std::vector<float> mins = block_mins(t, w, n);
  Ref r{0, 0, 0, 0};
  const int64_t qb = act_row_bytes(t, n) == size_t(4 * n) ? 1 : (traits(t).block_elems == 256 ? 256 : 32);
  for (int64_t i = 0; i < n; ++i) {
    r.exact += double(wf[size_t(i)]) * af[size_t(i)];
    r.scale += std::fabs(double(wf[size_t(i)]) * af[size_t(i)]);
    if (x) r.quant += double(wf[size_t(i)]) * x[i];
  }
  for (size_t b = 0; b < mins.size(); ++b) r.exact += double(mins[b]) * s_err[b];
  // Activation rounding: at most half a step (amax / 127 / 2) per element, plus s rounding.
  for (int64_t b0 = 0; x && b0 < n; b0 += qb) {
    float amax = 0;
    double wsum = 0;
    for (int64_t i = b0; i < b0 + qb; ++i) amax = std::max(amax, std::fabs(x[i])), wsum += std::fabs(wf[size_t(i)]);
    r.q_tol += qb == 1 ? 0 : wsum * amax / 254.0 * 1.001;
  }
  for (size_t b = 0; b < mins.size(); ++b) r.q_tol += std::fabs(mins[b] * s_err[b]);
  r.q_tol += 1e-4 * r.scale + 1e-6;
  return r;
}

double tight_tol(const Ref& r) { return 2e-5 * r.scale + 1e-6; }

class QuantKernels : public testing::TestWithParam<GgmlType> {};

TEST_P(QuantKernels, VecDotMatchesFloatReference) {
  const GgmlType t = GetParam();
  std::mt19937 rng(1234 + uint32_t(t));
  for (int64_t n : {256, 768, 4096}) {
    const auto w = random_weights(t, 1, n, rng);
    const auto x = random_acts(n, rng);
    std::vector<uint8_t> a(act_row_bytes(t, n));
    quantize_act_row(t, x.data(), a.data(), n);
    const Ref r = reference(t, n, w.data(), a.data(), x.data());
    const float g = vec_dot_generic(t, n, w.data(), a.data());
    EXPECT_NEAR(g, r.exact, tight_tol(r)) << "generic n=" << n;
    EXPECT_NEAR(g, r.quant, r.q_tol) << "generic vs float activations, n=" << n;
    if (cpu_has_avx2()) {
      const float v = vec_dot_avx2(t, n, w.data(), a.data());
      EXPECT_NEAR(v, r.exact, tight_tol(r)) << "avx2 n=" << n;
      EXPECT_NEAR(v, g, tight_tol(r)) << "avx2 vs generic n=" << n;
    }
    EXPECT_EQ(vec_dot(t, n, w.data(), a.data()),
              current_isa() == Isa::avx2 ? vec_dot_avx2(t, n, w.data(), a.data()) : g);
  }
}

TEST_P(QuantKernels, MatmulTileMatchesVecDot) {
  const GgmlType t = GetParam();
  std::mt19937 rng(99 + uint32_t(t));
  const int64_t n = 512, rows = 23;
  const size_t wrb = size_t(row_bytes(t, n)), arb = act_row_bytes(t, n);
  const auto w = random_weights(t, rows, n, rng);
  for (int64_t m : {1, 3, 4, 5, 17}) {
    std::vector<uint8_t> a(arb * size_t(m) + 64);
    std::vector<Ref> refs;
    for (int64_t j = 0; j < m; ++j) {
      const auto x = random_acts(n, rng);
      quantize_act_row(t, x.data(), a.data() + j * arb, n);
    }
    const int64_t ranges[][2] = {{0, rows}, {3, 14}, {7, 8}, {1, 22}};
    for (const auto& rg : ranges) {
      for (Isa isa : {Isa::generic, Isa::avx2}) {
        if (isa == Isa::avx2 && !cpu_has_avx2()) continue;
        const int64_t ldy = rows + 5;
        const float sentinel = -12345.f;
        std::vector<float> y(size_t(ldy * m), sentinel);
        if (isa == Isa::avx2)
          matmul_tile_avx2(t, n, w.data(), wrb, rg[0], rg[1], a.data(), arb, m, y.data(), ldy);
        else
          matmul_tile_generic(t, n, w.data(), wrb, rg[0], rg[1], a.data(), arb, m, y.data(), ldy);
        for (int64_t j = 0; j < m; ++j) {
          for (int64_t r = 0; r < ldy; ++r) {
            const float got = y[size_t(j * ldy + r)];
            if (r < rg[0] || r >= rg[1]) {
              ASSERT_EQ(got, sentinel) << "wrote outside the tile: r=" << r << " j=" << j;
              continue;
            }
            const uint8_t* wr = w.data() + r * wrb;
            const uint8_t* ar = a.data() + j * arb;
            const Ref ref = reference(t, n, wr, ar, nullptr);
            ASSERT_NEAR(got, ref.exact, tight_tol(ref))
                << (isa == Isa::avx2 ? "avx2" : "generic") << " m=" << m << " r=" << r << " j=" << j
                << " range " << rg[0] << ".." << rg[1];
          }
        }
      }
    }
  }
}

// Crosses the AVX2 tile's row blocks (32 rows) and activation chunks (128 rows).
TEST_P(QuantKernels, LargeTileMatchesGeneric) {
  const GgmlType t = GetParam();
  std::mt19937 rng(31 + uint32_t(t));
  const int64_t n = 256, rows = 70, m = 131;
  const size_t wrb = size_t(row_bytes(t, n)), arb = act_row_bytes(t, n);
  const auto w = random_weights(t, rows, n, rng);
  std::vector<uint8_t> a(arb * m);
  for (int64_t j = 0; j < m; ++j) quantize_act_row(t, random_acts(n, rng).data(), a.data() + j * arb, n);
  std::vector<float> yg(rows * m), yv(rows * m);
  matmul_tile_generic(t, n, w.data(), wrb, 1, rows, a.data(), arb, m, yg.data(), rows);
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2";
  matmul_tile_avx2(t, n, w.data(), wrb, 1, rows, a.data(), arb, m, yv.data(), rows);
  for (int64_t j = 0; j < m; ++j)
    for (int64_t r = 1; r < rows; ++r) {
      const Ref ref = reference(t, n, w.data() + r * wrb, a.data() + j * arb, nullptr);
      ASSERT_NEAR(yv[j * rows + r], yg[j * rows + r], 2 * tight_tol(ref)) << "r=" << r << " j=" << j;
    }
}

TEST_P(QuantKernels, PublicTileFollowsIsaSwitch) {
  const GgmlType t = GetParam();
  std::mt19937 rng(7);
  const int64_t n = 256, rows = 6, m = 2;
  const auto w = random_weights(t, rows, n, rng);
  const size_t wrb = size_t(row_bytes(t, n)), arb = act_row_bytes(t, n);
  std::vector<uint8_t> a(arb * m);
  for (int64_t j = 0; j < m; ++j) quantize_act_row(t, random_acts(n, rng).data(), a.data() + j * arb, n);
  const Isa saved = current_isa();
  std::vector<float> y1(rows * m), y2(rows * m);
  ASSERT_TRUE(set_isa(Isa::generic));
  EXPECT_STREQ(active_isa(), "generic");
  matmul_tile(t, n, w.data(), wrb, 0, rows, a.data(), arb, m, y1.data(), rows);
  matmul_tile_generic(t, n, w.data(), wrb, 0, rows, a.data(), arb, m, y2.data(), rows);
  EXPECT_EQ(y1, y2);
  if (set_isa(Isa::avx2)) {
    EXPECT_STREQ(active_isa(), "avx2");
    matmul_tile(t, n, w.data(), wrb, 0, rows, a.data(), arb, m, y1.data(), rows);
    matmul_tile_avx2(t, n, w.data(), wrb, 0, rows, a.data(), arb, m, y2.data(), rows);
    EXPECT_EQ(y1, y2);
  }
  set_isa(saved);
}

TEST(QuantIsa, FollowsCpuAndEnvironment) {
  const char* env = std::getenv("TS_CPU_KERNELS");
  if (env && std::string(env) == "generic")
    EXPECT_STREQ(active_isa(), "generic");
  else
    EXPECT_STREQ(active_isa(), cpu_has_avx2() ? "avx2" : "generic");
}

INSTANTIATE_TEST_SUITE_P(AllTypes, QuantKernels, testing::ValuesIn(kTypes), type_label);

TEST(QuantAct, Q8_1StoresScaledSum) {
  std::mt19937 rng(5);
  const auto x = random_acts(64, rng);
  std::vector<uint8_t> a(act_row_bytes(GgmlType::Q4_1, 64));
  ASSERT_EQ(a.size(), 72u);
  quantize_act_row(GgmlType::Q4_1, x.data(), a.data(), 64);
  const auto* b = reinterpret_cast<const BlockQ8_1*>(a.data());
  for (int i = 0; i < 2; ++i) {
    int sum = 0, amax = 0;
    for (int j = 0; j < 32; ++j) sum += b[i].qs[j], amax = std::max(amax, std::abs(int(b[i].qs[j])));
    EXPECT_EQ(amax, 127);
    // s = d * sum(q) with the unrounded d (as llama.cpp), so only close to half(d) * sum.
    const float expect = h2f(b[i].d) * float(sum);
    EXPECT_NEAR(h2f(b[i].s), expect, std::fabs(expect) * 2e-3f + 1e-6f) << "block " << i;
  }
}

TEST(QuantAct, Q8_KBlockSumsAndZeros) {
  std::vector<float> x(512, 0.0f);
  std::mt19937 rng(11);
  const auto r = random_acts(256, rng);
  std::copy(r.begin(), r.end(), x.begin() + 256);  // first block all zero
  std::vector<uint8_t> a(act_row_bytes(GgmlType::Q6_K, 512));
  ASSERT_EQ(a.size(), 2 * sizeof(BlockQ8_K));
  quantize_act_row(GgmlType::Q6_K, x.data(), a.data(), 512);
  const auto* b = reinterpret_cast<const BlockQ8_K*>(a.data());
  EXPECT_EQ(b[0].d, 0.0f);
  for (int g = 0; g < 16; ++g) {
    int s = 0;
    for (int l = 0; l < 16; ++l) s += b[1].qs[16 * g + l];
    EXPECT_EQ(b[1].bsums[g], s);
  }
  for (int j = 0; j < 256; ++j) EXPECT_NEAR(b[1].d * b[1].qs[j], x[256 + j], std::fabs(b[1].d) * 0.5f + 1e-6f);
}

TEST(QuantAct, FloatWeightsTakeFloatActivations) {
  const float x[3] = {1.5f, -2.0f, 0.25f};
  float out[3];
  EXPECT_EQ(act_row_bytes(GgmlType::BF16, 3), 12u);
  quantize_act_row(GgmlType::F16, x, out, 3);
  EXPECT_EQ(0, std::memcmp(x, out, sizeof x));
  // Odd lengths work for float weights in both kernel sets (scalar tails).
  const float w[3] = {2.f, 1.f, 4.f};
  EXPECT_FLOAT_EQ(vec_dot_generic(GgmlType::F32, 3, w, x), 2.f);
  if (cpu_has_avx2()) {
    EXPECT_FLOAT_EQ(vec_dot_avx2(GgmlType::F32, 3, w, x), 2.f);
  }
}

TEST(Dequantize, HalfSpecials) {
  const uint16_t h[] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff,
                        0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xc000};
  float out[std::size(h)];
  dequantize_row(GgmlType::F16, h, out, std::size(h));
  EXPECT_EQ(std::bit_cast<uint32_t>(out[0]), 0u);
  EXPECT_EQ(std::bit_cast<uint32_t>(out[1]), 0x80000000u);
  EXPECT_EQ(out[2], std::ldexp(1.0f, -24));            // smallest subnormal
  EXPECT_EQ(out[3], std::ldexp(1023.0f, -24));         // largest subnormal
  EXPECT_EQ(out[4], std::ldexp(1.0f, -14));            // smallest normal
  EXPECT_EQ(out[5], 1.0f);
  EXPECT_EQ(out[6], 65504.0f);
  EXPECT_EQ(out[7], std::numeric_limits<float>::infinity());
  EXPECT_EQ(out[8], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(out[9]));
  EXPECT_EQ(std::bit_cast<uint32_t>(out[10]), 0x7f802000u);  // signalling NaN payload kept
  EXPECT_EQ(out[11], -2.0f);
}

TEST(Dequantize, BF16Specials) {
  const uint16_t b[] = {0x0000, 0x8000, 0x0001, 0x3f80, 0x7f80, 0xff80, 0x7fc0, 0x7f81, 0xc040};
  float out[std::size(b)];
  dequantize_row(GgmlType::BF16, b, out, std::size(b));
  for (size_t i = 0; i < std::size(b); ++i)
    EXPECT_EQ(std::bit_cast<uint32_t>(out[i]), uint32_t(b[i]) << 16) << i;
  EXPECT_EQ(out[3], 1.0f);
  EXPECT_EQ(out[2], std::ldexp(1.0f, -133));  // subnormal
  EXPECT_EQ(out[8], -3.0f);
}

// Hand-built blocks with known values pin down the nibble / bit order.
TEST(Dequantize, LegacyBlockLayouts) {
  BlockQ4_1 q41{};
  q41.d = fp32_to_fp16(0.5f), q41.m = fp32_to_fp16(-1.0f);
  for (int j = 0; j < 16; ++j) q41.qs[j] = uint8_t(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(GgmlType::Q4_1, &q41, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * j - 1.0f);
    EXPECT_EQ(y[j + 16], 0.5f * (15 - j) - 1.0f);
  }
  BlockQ5_0 q50{};
  q50.d = fp32_to_fp16(2.0f);
  const uint32_t qh = 0x80000001u;  // fifth bit of elements 0 and 31
  std::memcpy(q50.qh, &qh, 4);
  dequantize_row(GgmlType::Q5_0, &q50, y, 32);
  EXPECT_EQ(y[0], 0.0f);    // (16 - 16) * 2
  EXPECT_EQ(y[1], -32.0f);  // (0 - 16) * 2
  EXPECT_EQ(y[31], 0.0f);
  BlockQ8_0 q80{};
  q80.d = fp32_to_fp16(0.25f);
  for (int j = 0; j < 32; ++j) q80.qs[j] = int8_t(j - 16);
  dequantize_row(GgmlType::Q8_0, &q80, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.25f * (j - 16));
}

TEST(Dequantize, RejectsPartialBlocks) {
  float y[64];
  uint8_t w[64] = {};
  EXPECT_THROW(dequantize_row(GgmlType::Q4_0, w, y, 31), std::invalid_argument);
  EXPECT_THROW(quantize_act_row(GgmlType::Q4_K, y, w, 32), std::invalid_argument);
  EXPECT_THROW(vec_dot(GgmlType::Q6_K, 64, w, w), std::invalid_argument);
  EXPECT_THROW(matmul_tile(GgmlType::Q4_1, 48, w, 30, 0, 1, w, 54, 1, y, 1), std::invalid_argument);
  EXPECT_THROW(vec_dot(GgmlType::Q8_K, 256, w, w), std::invalid_argument);  // not a weight type
}

}  // namespace
}  // namespace ts::kernels
