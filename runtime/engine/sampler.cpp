#include "engine/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_set>

#include "util/error.hpp"

namespace ts {

void SamplerOptions::validate() const {
  auto bad = [](const std::string& what) { fail(Status::invalid_arg, "sampler: " + what); };
  if (!(temperature >= 0) || !std::isfinite(temperature)) bad("temperature must be >= 0");
  if (top_k < 0) bad("top_k must be >= 0");
  if (!(top_p > 0 && top_p <= 1)) bad("top_p must be in (0, 1]");
  if (!(min_p >= 0 && min_p <= 1)) bad("min_p must be in [0, 1]");
  if (!(repeat_penalty > 0) || !std::isfinite(repeat_penalty)) bad("repeat_penalty must be > 0");
  if (repeat_last_n < 0) bad("repeat_last_n must be >= 0");
}

Sampler::Sampler(const SamplerOptions& opts) : o_(opts), rng_(opts.seed) { o_.validate(); }

int32_t Sampler::sample(const float* logits, int32_t n_vocab, std::span<const int32_t> history) {
  cand_.resize(size_t(n_vocab));
  for (int32_t i = 0; i < n_vocab; ++i) cand_[size_t(i)] = {logits[i], i};

  if (o_.repeat_penalty != 1.f && o_.repeat_last_n > 0) {
    const size_t n = std::min(history.size(), size_t(o_.repeat_last_n));
    std::unordered_set<int32_t> seen(history.end() - ptrdiff_t(n), history.end());
    for (int32_t id : seen) {
      if (id < 0 || id >= n_vocab) continue;
      float& l = cand_[size_t(id)].first;
      l = l > 0 ? l / o_.repeat_penalty : l * o_.repeat_penalty;
    }
  }

  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  if (o_.temperature <= 0) return std::min_element(cand_.begin(), cand_.end(), by_logit)->second;

  size_t n = cand_.size();
  if (o_.top_k > 0 && size_t(o_.top_k) < n) {
    std::partial_sort(cand_.begin(), cand_.begin() + o_.top_k, cand_.end(), by_logit);
    n = size_t(o_.top_k);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  // Softmax at the temperature over the kept candidates (sorted, largest first).
  const float mx = cand_[0].first;
  std::vector<float> p(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += p[i] = std::exp((cand_[i].first - mx) / o_.temperature);
  for (float& x : p) x = float(x / sum);
  if (o_.min_p > 0) {
    const float cut = p[0] * o_.min_p;
    size_t keep = 1;
    while (keep < n && p[keep] >= cut) ++keep;
    n = keep;
  }
  if (o_.top_p < 1) {
    double acc = 0;
    size_t keep = 0;
    while (keep < n) {
      acc += p[keep++];
      if (acc >= o_.top_p) break;
    }
    n = keep;
  }
  std::discrete_distribution<size_t> dist(p.begin(), p.begin() + ptrdiff_t(n));
  return cand_[dist(rng_)].second;
}

}  // namespace ts
