// RoPE rotations per position, computed once and grown on demand: rotating every attended key
// at its (possibly remapped) position must be a table lookup, not sincos calls. Each position
// holds head_dim cosines and signed sines laid out for the model's pairing, so a rotation is
// x*c + partner(x)*s over whole vectors.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.hpp"

namespace ts::cpu {

class RopeTable {
 public:
  // Makes positions [0, n_positions) available. Not thread-safe; call before parallel work.
  void ensure(const RopeParams& p, int64_t n_positions);
  const float* cos_at(int64_t pos) const { return cos_.data() + pos * dim_; }
  const float* sin_at(int64_t pos) const { return sin_.data() + pos * dim_; }

 private:
  int32_t dim_ = 0;
  RopeStyle style_ = RopeStyle::adjacent;
  float base_ = 0;
  const float* factors_ = nullptr;
  int64_t n_ = 0;
  std::vector<float> cos_, sin_;
};

// (cos, sin) of every pair i < head_dim / 2 at positions [pos0, pos0 + n), as n x half x 2
// floats: theta_i = pos * base^(-2i/d) as a running float product, the way GGUF runtimes
// compute it, so rotated keys round the same way as theirs. The CPU table and the GPU's share it.
void rope_angles(const RopeParams& p, int64_t pos0, int64_t n, float* cs);

// Rotates one head vector x[head_dim] in place at position pos.
void rope_apply(const RopeTable& t, RopeStyle style, int32_t head_dim, int64_t pos, float* x);

}  // namespace ts::cpu
