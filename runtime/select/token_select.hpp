// The TokenSelect policy: per layer and step, choose the k most critical cached tokens by a
// per-head softmax soft vote over query-key scores, shared by all heads of the layer, plus
// sinks and the local window; optionally reuse the last selection (selection cache); and
// give the remapped RoPE positions. Also records what it selected for heatmaps.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.hpp"
#include "select/attention_policy.hpp"
#include "select/select_options.hpp"

namespace ts {

struct SelectStats {
  int64_t cache_hits = 0;
  int64_t cache_misses = 0;
  int64_t selecting_steps = 0;  // layer-steps that selected (T above the budget)
  int64_t dense_steps = 0;      // layer-steps attending everything
};

// What one layer selected in the last step: positions ascending, with their vote scores.
struct LayerSelection {
  std::vector<int32_t> positions;
  std::vector<float> votes;
};

class TokenSelectPolicy final : public AttentionPolicy {
 public:
  TokenSelectPolicy(Backend& backend, int32_t n_layers, int32_t n_heads, int32_t head_dim, const SelectOptions& o);

  void set_options(const SelectOptions& o);  // validates; clears the selection cache
  const SelectOptions& options() const { return o_; }
  const SelectStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

  // Heatmap recording costs nothing until enabled. Counts are per cached token, summed over
  // layers and steps since the last reset_counts().
  void set_recording(bool on) { recording_ = on; }
  bool recording() const { return recording_; }
  const std::vector<LayerSelection>& last_selection() const { return last_; }
  // Records a step's selections as a device computed them (its backend selects, not this
  // policy), as plan() records its own: last_selection() and the counts.
  void record_selection(std::vector<LayerSelection> layers);
  const std::vector<uint32_t>& selection_counts() const { return counts_; }
  void reset_counts() { counts_.assign(counts_.size(), 0); }
  // Heatmap summaries over context positions [0, n_tokens) in n_bins equal bins, so a UI never
  // pulls per-token arrays: per layer, the sum of the last step's vote scores in each bin
  // (layers x n_bins, row-major); and the running selection counts summed per bin (n_bins).
  std::vector<float> binned_votes(int64_t n_tokens, int32_t n_bins) const;
  std::vector<uint64_t> binned_counts(int64_t n_tokens, int32_t n_bins) const;
  // Drop cached selections that refer to tokens at or past n (after the cache is truncated).
  void truncate(int64_t n);
  // The selection cache as bytes, for session state files, and back (throws Error(format) for
  // bytes that do not fit this model's layers and heads or n_tokens cached tokens).
  std::string save_cache() const;
  void load_cache(std::string_view bytes, int64_t n_tokens);

  void begin_step(int64_t t0, int64_t m) override;
  AttentionSet plan(int32_t layer, const float* q, int64_t m, int32_t n_heads, const KvLayerView& kv,
                    int64_t q_first) override;

 private:
  void select(int32_t layer, const KvLayerView& kv, int64_t T);

  Backend& be_;
  SelectOptions o_;
  int32_t n_heads_, head_dim_;
  SelectStats stats_;
  bool recording_ = false;

  struct LayerCache {
    std::vector<float> fingerprint;  // n_heads * head_dim, empty when nothing cached
    std::vector<int32_t> selected;   // ascending positions
    std::vector<float> votes;
    int64_t local_start = 0;         // start of the local window when `selected` was chosen
  };
  std::vector<LayerCache> cache_;
  std::vector<LayerSelection> last_;
  std::vector<uint32_t> counts_;

  std::vector<float> qbar_, scores_, vote_;
  std::vector<int32_t> order_, keys_, key_pos_, q_pos_;
};

}  // namespace ts
