// Per-session attention settings (DESIGN.md "TokenSelect — the algorithm contract").
#pragma once
#include <cstdint>

namespace ts {

enum class AttentionMode { tokenselect, full };  // full: dense causal attention, true positions
enum class PositionMode { remap, true_pos };     // remap: a key's RoPE position is its rank
// The keys the selection scores: the cache's own, or (GPU) an fp8 e4m3 copy, half the bytes to
// read per candidate for 25% more KV memory. The CPU always scores the cache's keys.
enum class ScoringKeys { cached, fp8 };

struct SelectOptions {
  AttentionMode mode = AttentionMode::tokenselect;
  PositionMode positions = PositionMode::remap;
  int32_t n_init = 128;   // attention sinks always attended
  int32_t n_local = 512;  // most recent tokens always attended
  int32_t k = 2048;       // tokens selected per layer per step
  bool cache = true;      // reuse the last selection when the fingerprint barely moved
  float tau = 0.9f;       // cosine threshold for that reuse
  bool always_select = false;  // testing: run the selection path even when T fits the budget
  ScoringKeys scoring = ScoringKeys::cached;

  // Throws ts::Error(invalid_arg) naming the bad field.
  void validate() const;
  int64_t budget() const { return int64_t(n_init) + k + n_local; }
};

}  // namespace ts
