// Token sampling: greedy, temperature, top-k, top-p, min-p, repetition penalty, seeded.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace ts {

struct SamplerOptions {
  float temperature = 0.f;  // <= 0: greedy (argmax)
  int32_t top_k = 40;       // 0: off
  float top_p = 0.95f;      // 1: off
  float min_p = 0.05f;      // 0: off
  float repeat_penalty = 1.f;  // 1: off
  int32_t repeat_last_n = 64;
  uint64_t seed = 42;

  void validate() const;  // throws ts::Error(invalid_arg) naming the bad field
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& opts);
  // history: tokens so far (for the repetition penalty).
  int32_t sample(const float* logits, int32_t n_vocab, std::span<const int32_t> history);

 private:
  SamplerOptions o_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> cand_;
};

}  // namespace ts
