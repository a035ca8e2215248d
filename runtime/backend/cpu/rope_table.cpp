#include "backend/cpu/rope_table.hpp"

#include <cmath>

namespace ts::cpu {

void RopeTable::ensure(const RopeParams& p, int64_t n_positions) {
  const int32_t half = p.head_dim / 2;
  if (half != half_ || p.freq_base != base_ || p.freq_factors != factors_) {
    half_ = half;
    base_ = p.freq_base;
    factors_ = p.freq_factors;
    n_ = 0;
    cos_.clear();
    sin_.clear();
  }
  if (n_positions <= n_) return;
  int64_t n = std::max<int64_t>(n_positions, n_ * 2);
  cos_.resize(size_t(n * half));
  sin_.resize(size_t(n * half));
  // theta_i = pos * base^(-2i/d) as a running float product, the way GGUF runtimes compute it,
  // so rotated keys round the same way as theirs.
  const float theta_scale = std::pow(base_, -2.0f / float(p.head_dim));
  for (int64_t pos = n_; pos < n; ++pos) {
    float theta = float(pos);
    for (int32_t i = 0; i < half; ++i) {
      const float t = p.freq_factors ? theta / p.freq_factors[i] : theta;
      cos_[size_t(pos * half + i)] = std::cos(t);
      sin_[size_t(pos * half + i)] = std::sin(t);
      theta *= theta_scale;
    }
  }
  n_ = n;
}

void rope_apply(const RopeTable& t, RopeStyle style, int32_t head_dim, int64_t pos, float* x) {
  const float* c = t.cos_at(pos);
  const float* s = t.sin_at(pos);
  const int32_t half = head_dim / 2;
  if (style == RopeStyle::adjacent) {
    for (int32_t i = 0; i < half; ++i) {
      const float a = x[2 * i], b = x[2 * i + 1];
      x[2 * i] = a * c[i] - b * s[i];
      x[2 * i + 1] = a * s[i] + b * c[i];
    }
  } else {
    for (int32_t i = 0; i < half; ++i) {
      const float a = x[i], b = x[i + half];
      x[i] = a * c[i] - b * s[i];
      x[i + half] = a * s[i] + b * c[i];
    }
  }
}

}  // namespace ts::cpu
