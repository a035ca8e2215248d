#include "backend/cpu/rope_table.hpp"

#include <cmath>
#include <vector>

#include "cpu/exact_ops.hpp"

namespace ts::cpu {

void RopeTable::ensure(const RopeParams& p, int64_t n_positions) {
  if (p.head_dim != dim_ || p.style != style_ || p.freq_base != base_ || p.freq_factors != factors_) {
    dim_ = p.head_dim;
    style_ = p.style;
    base_ = p.freq_base;
    factors_ = p.freq_factors;
    n_ = 0;
    cos_.clear();
    sin_.clear();
  }
  if (n_positions <= n_) return;
  const int64_t n = std::max<int64_t>(n_positions, n_ * 2);
  const int32_t half = dim_ / 2;
  cos_.resize(size_t(n * dim_));
  sin_.resize(size_t(n * dim_));
  std::vector<float> cs(size_t((n - n_) * half * 2));
  rope_angles(p, n_, n - n_, cs.data());
  for (int64_t pos = n_; pos < n; ++pos) {
    float* c = cos_.data() + pos * dim_;
    float* s = sin_.data() + pos * dim_;
    const float* a = cs.data() + (pos - n_) * half * 2;
    for (int32_t i = 0; i < half; ++i) {
      // Element j pairs with j^1 (adjacent) or j +- d/2 (neox); the first of a pair gets -sin.
      const int32_t first = style_ == RopeStyle::adjacent ? 2 * i : i;
      const int32_t second = style_ == RopeStyle::adjacent ? 2 * i + 1 : i + half;
      c[first] = c[second] = a[2 * i];
      s[first] = -a[2 * i + 1];
      s[second] = a[2 * i + 1];
    }
  }
  n_ = n;
}

void rope_angles(const RopeParams& p, int64_t pos0, int64_t n, float* cs) {
  const int32_t half = p.head_dim / 2;
  const float theta_scale = std::pow(p.freq_base, -2.0f / float(p.head_dim));
  for (int64_t pos = pos0; pos < pos0 + n; ++pos) {
    float* out = cs + (pos - pos0) * half * 2;
    float theta = float(pos);
    for (int32_t i = 0; i < half; ++i) {
      const float t = p.freq_factors ? theta / p.freq_factors[i] : theta;
      out[2 * i] = std::cos(t);
      out[2 * i + 1] = std::sin(t);
      theta *= theta_scale;
    }
  }
}

void rope_apply(const RopeTable& t, RopeStyle style, int32_t head_dim, int64_t pos, float* x) {
  kernels::exact_ops().rope(x, t.cos_at(pos), t.sin_at(pos), head_dim, style == RopeStyle::adjacent);
}

}  // namespace ts::cpu
