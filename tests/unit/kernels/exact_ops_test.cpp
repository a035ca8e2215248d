// The fixed-order float operations (cpu/exact_ops.hpp): each against a plain reference written
// here — the same order spelled out with std::fma for the products, double maths for accuracy —
// and the AVX2 build against the portable one, bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/exact_ops.hpp"

namespace ts::kernels {
namespace {

std::vector<float> random_vec(std::mt19937& rng, size_t n, float scale = 1.f) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool have_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

// Lane t accumulates a[l] * b[l] for l = t, t+8, ... with one rounding per step.
float lanes8_reference(const float* a, const float* b, int64_t k) {
  float t[8] = {};
  for (int64_t l = 0; l < k; ++l) t[l % 8] = std::fma(a[l], b[l], t[l % 8]);
  return ((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7]));
}

// Chain c = (l / 8) % 4 * 8 + l % 8; chains folded (g0+g2)+(g1+g3), then lanes in pairs.
float lanes32_reference(const float* a, const float* b, int64_t n) {
  float c[32] = {};
  const int64_t n32 = n - n % 32;
  for (int64_t l = 0; l < n32; ++l) c[l % 32] = std::fma(a[l], b[l], c[l % 32]);
  float w[8];
  for (int t = 0; t < 8; ++t) w[t] = (c[t] + c[16 + t]) + (c[8 + t] + c[24 + t]);
  double s = ((w[0] + w[4]) + (w[1] + w[5])) + ((w[2] + w[6]) + (w[3] + w[7]));
  for (int64_t l = n32; l < n; ++l) s += double(a[l] * b[l]);
  return float(s);
}

TEST(ExactOps, DotLanes8IsTheLaneChainForEveryTileShape) {
  std::mt19937 rng(1);
  for (const auto& [m, n, k] : {std::tuple{1, 1, 8}, {4, 3, 64}, {7, 5, 64}, {13, 11, 136}, {64, 2, 512}, {9, 7, 3000}}) {  // 3000: k in slices
    const auto A = random_vec(rng, size_t(m * k)), B = random_vec(rng, size_t(n * k));
    std::vector<float> C(size_t(m * n));
    exact_ops().dot_lanes8(m, n, k, A.data(), k, B.data(), k, C.data(), m);
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        const float want = lanes8_reference(A.data() + i * k, B.data() + j * k, k);
        ASSERT_EQ(C[size_t(j * m + i)], want) << m << "x" << n << "x" << k << " at " << i << "," << j;
        double exact = 0;
        for (int l = 0; l < k; ++l) exact += double(A[size_t(i * k + l)]) * B[size_t(j * k + l)];
        EXPECT_NEAR(C[size_t(j * m + i)], exact, 1e-5 * std::sqrt(double(k)) * 4);
      }
  }
}

TEST(ExactOps, DotLanes32AndTheKeyChainsAreTheSingleQueryOrder) {
  std::mt19937 rng(2);
  for (int64_t n : {32, 64, 100, 256}) {
    const auto a = random_vec(rng, size_t(n)), b = random_vec(rng, size_t(n));
    EXPECT_EQ(exact_ops().dot_lanes32(a.data(), b.data(), n), lanes32_reference(a.data(), b.data(), n)) << n;
  }
  // P.V form: out[x] = dot over keys j of p[j] * v[j][x], key j feeding chain j % 32.
  const int64_t keys = 96, d = 24;
  const auto p = random_vec(rng, size_t(keys)), v = random_vec(rng, size_t(keys * d));
  std::vector<float> acc(size_t(32 * d), 0.f), out(static_cast<size_t>(d));
  for (int64_t j = 0; j < keys; ++j) exact_ops().fma_row(acc.data() + (j % 32) * d, p[size_t(j)], v.data() + j * d, d);
  exact_ops().fold_lanes32(acc.data(), d, out.data());
  for (int64_t x = 0; x < d; ++x) {
    std::vector<float> col(static_cast<size_t>(keys));
    for (int64_t j = 0; j < keys; ++j) col[size_t(j)] = v[size_t(j * d + x)];
    EXPECT_EQ(out[size_t(x)], lanes32_reference(p.data(), col.data(), keys)) << x;
  }
}

TEST(ExactOps, SoftmaxIsAccurateMasksAndUnderflowsToZero) {
  std::mt19937 rng(3);
  for (int64_t visible : {1, 7, 8, 29, 300}) {
    auto s = random_vec(rng, size_t(visible + 5), 4.f);
    if (visible > 2) s[1] = s[0] - 150.f, s[2] = s[0] - 300.f;  // the |n| > 126 and > 192 paths
    const std::vector<float> in = s;
    exact_ops().softmax(s.data(), visible, int64_t(s.size()));
    double mx = in[0], sum = 0;
    for (int64_t i = 0; i < visible; ++i) mx = std::max<double>(mx, in[size_t(i)]);
    for (int64_t i = 0; i < visible; ++i) sum += std::exp(double(in[size_t(i)]) - mx);
    for (int64_t i = 0; i < visible; ++i) {
      const double want = std::exp(double(in[size_t(i)]) - mx) / sum;
      EXPECT_NEAR(s[size_t(i)], want, 2e-6 * want + 1e-37) << visible << " " << i;
    }
    for (size_t i = size_t(visible); i < s.size(); ++i) EXPECT_EQ(s[i], 0.f);
  }
}

TEST(ExactOps, RopeRotatesLikeTheFormula) {
  std::mt19937 rng(4);
  const int64_t d = 64;
  for (bool adjacent : {true, false}) {
    auto x = random_vec(rng, size_t(d));
    const std::vector<float> in = x;
    std::vector<float> c(static_cast<size_t>(d)), s(static_cast<size_t>(d));
    std::vector<double> th(size_t(d / 2));
    for (int64_t i = 0; i < d / 2; ++i) {
      th[size_t(i)] = 1234.0 * std::pow(10000.0, -2.0 * double(i) / double(d));
      const int64_t a = adjacent ? 2 * i : i, b = adjacent ? 2 * i + 1 : i + d / 2;
      c[size_t(a)] = c[size_t(b)] = std::cos(float(th[size_t(i)]));
      s[size_t(a)] = -std::sin(float(th[size_t(i)]));
      s[size_t(b)] = std::sin(float(th[size_t(i)]));
    }
    exact_ops().rope(x.data(), c.data(), s.data(), d, adjacent);
    for (int64_t i = 0; i < d / 2; ++i) {
      const int64_t a = adjacent ? 2 * i : i, b = adjacent ? 2 * i + 1 : i + d / 2;
      const double x0 = in[size_t(a)], x1 = in[size_t(b)], ct = c[size_t(a)], st = s[size_t(b)];
      EXPECT_NEAR(x[size_t(a)], x0 * ct - x1 * st, 1e-6);
      EXPECT_NEAR(x[size_t(b)], x0 * st + x1 * ct, 1e-6);
      // the fused form: first = fma(x0, cos, -(x1 sin)), second = fma(x0, sin, x1 cos)
      EXPECT_EQ(x[size_t(a)], std::fma(in[size_t(a)], c[size_t(a)], in[size_t(b)] * s[size_t(a)]));
      EXPECT_EQ(x[size_t(b)], std::fma(in[size_t(a)], s[size_t(b)], in[size_t(b)] * c[size_t(b)]));
    }
  }
}

TEST(ExactOps, RmsScaleAndSiluMatchDoubleMaths) {
  std::mt19937 rng(5);
  const auto x = random_vec(rng, 576, 3.f);
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  EXPECT_NEAR(exact_ops().rms_scale(x.data(), 576, 1e-5f), 1.0 / std::sqrt(ss / 576 + 1e-5), 1e-6);
  auto g = random_vec(rng, 1000, 6.f);
  const auto u = random_vec(rng, 1000);
  const std::vector<float> g0 = g;
  exact_ops().silu_mul(g.data(), u.data(), 1000);
  for (size_t i = 0; i < g.size(); ++i) {
    const double want = double(g0[i]) / (1.0 + std::exp(-double(g0[i]))) * u[i];
    EXPECT_NEAR(g[i], want, 1e-6 * std::fabs(want) + 1e-30) << i;
  }
}

TEST(ExactOps, Avx2BuildGivesThePortableBits) {
  if (!have_avx2()) GTEST_SKIP() << "no AVX2/FMA/F16C on this CPU";
  const ExactOps& p = generic::exact_ops_table;
  const ExactOps& v = avx2::exact_ops_table;
  std::mt19937 rng(6);
  const int64_t m = 13, n = 7, k = 72;
  const auto A = random_vec(rng, size_t(m * k)), B = random_vec(rng, size_t(n * k));
  std::vector<float> c1(size_t(m * n)), c2(size_t(m * n));
  p.dot_lanes8(m, n, k, A.data(), k, B.data(), k, c1.data(), m);
  v.dot_lanes8(m, n, k, A.data(), k, B.data(), k, c2.data(), m);
  EXPECT_TRUE(same_bits(c1, c2));
  const int64_t kl = 2056;  // the sliced path
  const auto L1 = random_vec(rng, size_t(5 * kl)), L2 = random_vec(rng, size_t(4 * kl));
  std::vector<float> d1(20), d2(20);
  p.dot_lanes8(5, 4, kl, L1.data(), kl, L2.data(), kl, d1.data(), 5);
  v.dot_lanes8(5, 4, kl, L1.data(), kl, L2.data(), kl, d2.data(), 5);
  EXPECT_TRUE(same_bits(d1, d2));
  EXPECT_EQ(p.dot_lanes32(A.data(), B.data(), 100), v.dot_lanes32(A.data(), B.data(), 100));
  std::vector<float> a1(size_t(32 * 20), 0.f), a2 = a1, o1(20), o2(20);
  for (int j = 0; j < 50; ++j) {
    p.fma_row(a1.data() + (j % 32) * 20, A[size_t(j)], B.data() + j, 20);
    v.fma_row(a2.data() + (j % 32) * 20, A[size_t(j)], B.data() + j, 20);
  }
  p.fold_lanes32(a1.data(), 20, o1.data());
  v.fold_lanes32(a2.data(), 20, o2.data());
  EXPECT_TRUE(same_bits(o1, o2));
  auto s1 = random_vec(rng, 203, 30.f), s2 = s1;  // wide spread: the exp's rescaled paths
  p.softmax(s1.data(), 200, 203);
  v.softmax(s2.data(), 200, 203);
  EXPECT_TRUE(same_bits(s1, s2));
  for (bool adjacent : {true, false}) {
    auto r1 = random_vec(rng, 64), r2 = r1;
    const auto c = random_vec(rng, 64), s = random_vec(rng, 64);
    p.rope(r1.data(), c.data(), s.data(), 64, adjacent);
    v.rope(r2.data(), c.data(), s.data(), 64, adjacent);
    EXPECT_TRUE(same_bits(r1, r2));
  }
  EXPECT_EQ(p.rms_scale(A.data(), 576, 1e-5f), v.rms_scale(A.data(), 576, 1e-5f));
  auto g1 = random_vec(rng, 203, 40.f), g2 = g1;
  p.silu_mul(g1.data(), B.data(), 203);
  v.silu_mul(g2.data(), B.data(), 203);
  EXPECT_TRUE(same_bits(g1, g2));
}

}  // namespace
}  // namespace ts::kernels
