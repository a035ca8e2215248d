#include "backend/cpu/rope_table.hpp"

#include <cmath>

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
  // theta_i = pos * base^(-2i/d) as a running float product, the way GGUF runtimes compute it,
  // so rotated keys round the same way as theirs.
  const float theta_scale = std::pow(base_, -2.0f / float(dim_));
  for (int64_t pos = n_; pos < n; ++pos) {
    float* c = cos_.data() + pos * dim_;
    float* s = sin_.data() + pos * dim_;
    float theta = float(pos);
    for (int32_t i = 0; i < half; ++i) {
      const float t = factors_ ? theta / factors_[i] : theta;
      const float ci = std::cos(t), si = std::sin(t);
      // Element j pairs with j^1 (adjacent) or j +- d/2 (neox); the first of a pair gets -sin.
      const int32_t first = style_ == RopeStyle::adjacent ? 2 * i : i;
      const int32_t second = style_ == RopeStyle::adjacent ? 2 * i + 1 : i + half;
      c[first] = c[second] = ci;
      s[first] = -si;
      s[second] = si;
      theta *= theta_scale;
    }
  }
  n_ = n;
}

void rope_apply(const RopeTable& t, RopeStyle style, int32_t head_dim, int64_t pos, float* x) {
  kernels::exact_ops().rope(x, t.cos_at(pos), t.sin_at(pos), head_dim, style == RopeStyle::adjacent);
}

}  // namespace ts::cpu
