#include "select/token_select.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <numeric>

#include "cpu/vec_ops.hpp"
#include "util/error.hpp"

namespace ts {

void SelectOptions::validate() const {
  auto bad = [](const std::string& m) { fail(Status::invalid_arg, "attention settings: " + m); };
  if (n_init < 0) bad(fmt::format("n_init must be >= 0 (got {})", n_init));
  if (n_local < 1) bad(fmt::format("n_local must be >= 1 (got {})", n_local));
  if (k < 1) bad(fmt::format("k must be >= 1 (got {})", k));
  if (!(tau >= 0.f && tau <= 1.f)) bad(fmt::format("tau (selection-cache threshold) must be in [0, 1] (got {})", tau));
}

TokenSelectPolicy::TokenSelectPolicy(Backend& backend, int32_t n_layers, int32_t n_heads, int32_t head_dim,
                                     const SelectOptions& o)
    : be_(backend), n_heads_(n_heads), head_dim_(head_dim), cache_(size_t(n_layers)), last_(size_t(n_layers)) {
  set_options(o);
}

void TokenSelectPolicy::set_options(const SelectOptions& o) {
  o.validate();
  o_ = o;
  for (LayerCache& c : cache_) c.fingerprint.clear();
}

void TokenSelectPolicy::truncate(int64_t n) {
  for (LayerCache& c : cache_) c.fingerprint.clear();  // its selection may name dropped tokens
  if (int64_t(counts_.size()) > n) counts_.resize(size_t(n));
}

namespace {
template <typename T>
void put(std::string& out, const T* p, size_t n) {
  if (n > 0) out.append(reinterpret_cast<const char*>(p), n * sizeof(T));
}
template <typename T>
void take(std::string_view& in, T* p, size_t n) {
  if (in.size() < n * sizeof(T)) fail(Status::format, "session state: selection cache is truncated");
  if (n > 0) std::memcpy(p, in.data(), n * sizeof(T));
  in.remove_prefix(n * sizeof(T));
}
}  // namespace

std::string TokenSelectPolicy::save_cache() const {
  std::string out;
  for (const LayerCache& c : cache_) {
    const uint64_t nf = c.fingerprint.size(), ns = c.selected.size();
    put(out, &nf, 1);
    put(out, c.fingerprint.data(), nf);
    put(out, &ns, 1);
    put(out, c.selected.data(), ns);
    put(out, c.votes.data(), ns);
    put(out, &c.local_start, 1);
  }
  return out;
}

void TokenSelectPolicy::load_cache(std::string_view in, int64_t n_tokens) {
  std::vector<LayerCache> cache(cache_.size());
  for (LayerCache& c : cache) {
    uint64_t nf = 0, ns = 0;
    take(in, &nf, 1);
    if (nf != 0 && nf != uint64_t(n_heads_) * uint64_t(head_dim_))
      fail(Status::format, "session state: selection cache does not fit the model");
    c.fingerprint.resize(nf);
    take(in, c.fingerprint.data(), nf);
    take(in, &ns, 1);
    if (ns > in.size()) fail(Status::format, "session state: selection cache is truncated");
    c.selected.resize(ns);
    c.votes.resize(ns);
    take(in, c.selected.data(), ns);
    take(in, c.votes.data(), ns);
    take(in, &c.local_start, 1);
    const bool in_range = std::all_of(c.selected.begin(), c.selected.end(), [&](int32_t p) { return p >= 0 && p < n_tokens; });
    if (!in_range || c.local_start < 0 || c.local_start > n_tokens)
      fail(Status::format, "session state: selection cache names tokens outside the cache");
  }
  if (!in.empty()) fail(Status::format, "session state: selection cache has trailing bytes");
  cache_ = std::move(cache);
}

namespace {
// Bin of position p when [0, n) is cut into `bins` equal parts.
int64_t bin_of(int64_t p, int64_t n, int32_t bins) { return std::min<int64_t>(bins - 1, p * bins / n); }

void check_bins(int64_t n_tokens, int32_t n_bins) {
  if (n_tokens < 1 || n_bins < 1)
    fail(Status::invalid_arg, fmt::format("heatmap bins: need n_tokens >= 1 and n_bins >= 1 (got {}, {})", n_tokens, n_bins));
}
}  // namespace

std::vector<float> TokenSelectPolicy::binned_votes(int64_t n_tokens, int32_t n_bins) const {
  check_bins(n_tokens, n_bins);
  std::vector<float> out(last_.size() * size_t(n_bins), 0.f);
  for (size_t l = 0; l < last_.size(); ++l)
    for (size_t j = 0; j < last_[l].positions.size(); ++j)
      if (last_[l].positions[j] < n_tokens)
        out[l * size_t(n_bins) + size_t(bin_of(last_[l].positions[j], n_tokens, n_bins))] += last_[l].votes[j];
  return out;
}

std::vector<uint64_t> TokenSelectPolicy::binned_counts(int64_t n_tokens, int32_t n_bins) const {
  check_bins(n_tokens, n_bins);
  std::vector<uint64_t> out(size_t(n_bins), 0);
  for (int64_t p = 0; p < std::min<int64_t>(n_tokens, int64_t(counts_.size())); ++p)
    out[size_t(bin_of(p, n_tokens, n_bins))] += counts_[size_t(p)];
  return out;
}

void TokenSelectPolicy::record_selection(std::vector<LayerSelection> layers) {
  if (!recording_) return;
  for (const LayerSelection& l : layers)
    for (int32_t p : l.positions)
      if (p >= 0 && size_t(p) < counts_.size()) ++counts_[size_t(p)];
  last_ = std::move(layers);
}

void TokenSelectPolicy::begin_step(int64_t t0, int64_t m) {
  if (recording_ && int64_t(counts_.size()) < t0 + m) counts_.resize(size_t(t0 + m), 0);
}

// Scores every candidate with the layer's query fingerprint, turns each head's scores into a
// softmax over the candidates, sums the heads (soft vote) and keeps the top k by vote.
void TokenSelectPolicy::select(int32_t layer, const KvLayerView& kv, int64_t T) {
  LayerCache& c = cache_[size_t(layer)];
  const int64_t sink_end = std::min<int64_t>(o_.n_init, T);
  const int64_t local_start = std::max(sink_end, T - o_.n_local);
  const int64_t n = local_start - sink_end;  // candidates [sink_end, local_start)
  c.selected.clear();
  c.votes.clear();
  if (n <= 0) return;
  scores_.resize(size_t(n_heads_ * n));
  be_.selection_scores(kv, qbar_.data(), n_heads_, sink_end, local_start, 1.f / std::sqrt(float(head_dim_)),
                       scores_.data());
  vote_.assign(size_t(n), 0.f);
  const kernels::VecOps& ops = kernels::vec_ops();
  for (int32_t h = 0; h < n_heads_; ++h) {
    float* s = scores_.data() + int64_t(h) * n;
    const float mx = *std::max_element(s, s + n);
    const float sum = ops.exp_sub_sum(s, mx, n);
    ops.axpy(vote_.data(), 1.f / sum, s, n);  // soft vote: sum of the heads' softmax
  }
  const int64_t k = std::min<int64_t>(o_.k, n);
  order_.resize(size_t(n));
  std::iota(order_.begin(), order_.end(), 0);
  if (k < n)
    std::nth_element(order_.begin(), order_.begin() + k, order_.end(), [&](int32_t a, int32_t b) {
      return vote_[size_t(a)] > vote_[size_t(b)] || (vote_[size_t(a)] == vote_[size_t(b)] && a < b);
    });
  order_.resize(size_t(k));
  std::sort(order_.begin(), order_.end());
  c.selected.reserve(size_t(k));
  c.votes.reserve(size_t(k));
  for (int32_t j : order_) {
    c.selected.push_back(int32_t(sink_end + j));
    c.votes.push_back(vote_[size_t(j)]);
  }
}

AttentionSet TokenSelectPolicy::plan(int32_t layer, const float* q, int64_t m, int32_t n_heads,
                                     const KvLayerView& kv, int64_t q_first) {
  const int64_t T = q_first + m;
  LayerSelection& last = last_[size_t(layer)];
  if (o_.mode == AttentionMode::full || (T <= o_.budget() && !o_.always_select)) {
    ++stats_.dense_steps;
    if (recording_) {
      last.positions.clear();
      last.votes.clear();
    }
    return AttentionSet{nullptr, T, nullptr, nullptr};
  }
  ++stats_.selecting_steps;

  // Fingerprint: the mean of the step's queries per head, before RoPE.
  const int64_t hd = int64_t(n_heads) * head_dim_;
  qbar_.assign(size_t(hd), 0.f);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t x = 0; x < hd; ++x) qbar_[size_t(x)] += q[i * hd + x];
  for (float& x : qbar_) x /= float(m);

  LayerCache& c = cache_[size_t(layer)];
  bool hit = false;
  // The cache serves decode steps (one query), whose fingerprints move slowly; a prefill
  // chunk always selects afresh.
  if (o_.cache && m == 1 && c.fingerprint.size() == qbar_.size()) {
    double dot = 0, na = 0, nb = 0;
    for (int64_t x = 0; x < hd; ++x) {
      dot += double(qbar_[size_t(x)]) * c.fingerprint[size_t(x)];
      na += double(qbar_[size_t(x)]) * qbar_[size_t(x)];
      nb += double(c.fingerprint[size_t(x)]) * c.fingerprint[size_t(x)];
    }
    hit = na > 0 && nb > 0 && dot / std::sqrt(na * nb) >= double(o_.tau);
  }
  if (hit) {
    ++stats_.cache_hits;
  } else {
    ++stats_.cache_misses;
    select(layer, kv, T);
    c.fingerprint = qbar_;
    c.local_start = std::max(std::min<int64_t>(o_.n_init, T), T - o_.n_local);
  }

  // Attention set: sinks, the selection, the local window (which holds the step's tokens).
  const int64_t sink_end = std::min<int64_t>(o_.n_init, T);
  const int64_t local_start = std::max(sink_end, T - o_.n_local);
  keys_.clear();
  for (int64_t t = 0; t < sink_end; ++t) keys_.push_back(int32_t(t));
  for (int32_t p : c.selected)
    if (p >= sink_end && p < local_start) keys_.push_back(p);
  // A reused selection was chosen when the window started earlier: the tokens that have left
  // the window since then are still attended rather than dropped.
  for (int64_t t = std::max(c.local_start, sink_end); t < local_start; ++t) keys_.push_back(int32_t(t));
  for (int64_t t = local_start; t < T; ++t) keys_.push_back(int32_t(t));

  AttentionSet set{keys_.data(), int64_t(keys_.size()), nullptr, nullptr};
  if (o_.positions == PositionMode::remap) {
    key_pos_.resize(keys_.size());
    std::iota(key_pos_.begin(), key_pos_.end(), 0);
    q_pos_.resize(size_t(m));
    for (int64_t i = 0; i < m; ++i)
      q_pos_[size_t(i)] = int32_t(std::lower_bound(keys_.begin(), keys_.end(), int32_t(q_first + i)) - keys_.begin());
    set.key_pos = key_pos_.data();
    set.q_pos = q_pos_.data();
  }
  if (recording_) {
    last.positions = c.selected;
    last.votes = c.votes;
    for (int32_t p : c.selected) ++counts_[size_t(p)];
  }
  return set;
}

}  // namespace ts
