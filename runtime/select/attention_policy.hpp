// The hook through which a selection policy tells the forward pass which cached keys each
// layer attends to and at which RoPE positions (DESIGN.md "TokenSelect — the algorithm").
#pragma once
#include <cstdint>

#include "backend/backend.hpp"

namespace ts {

struct AttentionSet {
  const int32_t* keys = nullptr;  // ascending cache indices; null: all of [0, n_keys)
  int64_t n_keys = 0;
  const int32_t* key_pos = nullptr;  // null: true positions
  const int32_t* q_pos = nullptr;
};

class AttentionPolicy {
 public:
  virtual ~AttentionPolicy() = default;
  // Called once per forward step before the layers: m new tokens at cache index t0.
  virtual void begin_step(int64_t t0, int64_t m) = 0;
  // q: the step's queries before RoPE (m x n_heads x head_dim); the layer's K/V for the step
  // are already in `kv`, so T = q_first + m keys are cached. Pointers stay valid until the
  // next plan() call.
  virtual AttentionSet plan(int32_t layer, const float* q, int64_t m, int32_t n_heads, const KvLayerView& kv,
                            int64_t q_first) = 0;
};

}  // namespace ts
