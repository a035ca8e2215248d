// Passkey retrieval prompts (the shape used by the TokenSelect / InfLLM / Landmark Attention
// evaluations): filler sentences, at a given depth "The pass key is NNNNN. Remember it. NNNNN is
// the pass key.", more filler, then "What is the pass key? The pass key is". Plain text, no chat
// template. Header-only and free of library types, so tests/e2e (on the runtime) and the CLI
// (on the C API) share it.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace passkey {

inline constexpr const char* kIntro =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there.";
inline constexpr const char* kFiller[] = {"The grass is green.", "The sky is blue.", "The sun is yellow.",
                                          "Here we go.", "There and back again."};
inline constexpr int kFillerCount = 5;
inline constexpr const char* kQuestion = "What is the pass key? The pass key is";

// A 5-digit key, the same for every attention mode at a given (seed, length, depth index, trial).
inline int make_key(uint64_t seed, int64_t length, int depth_index, int trial) {
  std::seed_seq sq{uint32_t(seed), uint32_t(seed >> 32), uint32_t(length), uint32_t(depth_index), uint32_t(trial)};
  std::mt19937 rng(sq);
  return 10000 + int(rng() % 90000);
}

inline std::string needle(int key) {
  const std::string k = std::to_string(key);
  return "The pass key is " + k + ". Remember it. " + k + " is the pass key.";
}

// The prompt text with n_filler filler sentences, the needle after round(depth * n_filler) of them.
inline std::string prompt_text(int64_t n_filler, double depth, int key) {
  const int64_t before = std::clamp<int64_t>(std::llround(depth * double(n_filler)), 0, n_filler);
  std::string s = kIntro;
  for (int64_t i = 0; i < n_filler; ++i) {
    if (i == before) (s += ' ') += needle(key);
    (s += ' ') += kFiller[i % kFillerCount];
  }
  if (before == n_filler) (s += ' ') += needle(key);
  (s += ' ') += kQuestion;
  return s;
}

// A prompt's tokens: BOS when the model wants it, then the text with special tokens parsed.
using TokenizeFn = std::function<std::vector<int32_t>(const std::string&)>;

struct Prompt {
  std::vector<int32_t> tokens;
  int key = 0;
  int64_t n_filler = 0;  // filler sentences used
};

// A prompt of about target_tokens tokens (within one filler sentence, ~5 tokens, of it).
inline Prompt build(const TokenizeFn& tokenize, int64_t target_tokens, double depth, int key) {
  // Tokens per filler sentence, measured on one round of all five (" " + sentence), less the BOS.
  std::string round;
  for (const char* f : kFiller) (round += ' ') += f;
  const size_t bos = tokenize("").size();
  const double per_sentence = double(tokenize(round).size() - bos) / kFillerCount;
  const int64_t fixed = int64_t(tokenize(prompt_text(0, depth, key)).size());
  Prompt p;
  p.key = key;
  p.n_filler = std::max<int64_t>(0, std::llround(double(target_tokens - fixed) / per_sentence));
  for (int iter = 0; iter < 4; ++iter) {
    p.tokens = tokenize(prompt_text(p.n_filler, depth, key));
    const int64_t diff = target_tokens - int64_t(p.tokens.size());
    const int64_t step = std::llround(double(diff) / per_sentence);
    if (step == 0 || p.n_filler + step < 0) break;
    p.n_filler += step;
  }
  return p;
}

// Whether the generated text contains the key.
inline bool found(const std::string& generated, int key) {
  return generated.find(std::to_string(key)) != std::string::npos;
}

}  // namespace passkey
