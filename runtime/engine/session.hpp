// One conversation over a shared model: a KV cache, the tokens in it, chunked prefill,
// decode, generation with stop conditions, and cancel. One thread at a time may call a
// Session, except cancel(), which any thread may call.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.hpp"
#include "engine/sampler.hpp"
#include "kv/kv_cache.hpp"
#include "model/forward.hpp"
#include "model/model.hpp"
#include "select/token_select.hpp"

namespace ts {

// Where a session computes: the CUDA backend when this build has it and a GPU can run the
// model (automatic), or as asked (cuda fails with the reason when it cannot).
enum class Device { automatic, cpu, cuda };

struct SessionOptions {
  int64_t n_ctx = 0;      // maximum tokens in the cache; 0: the trained context (full) or 64k (tokenselect)
  int32_t n_threads = 0;  // 0: all hardware threads
  int32_t chunk = 512;    // prefill chunk size; TokenSelect runs chunks of at most n_local
  SelectOptions select;   // attention policy: TokenSelect (default) or full
  KeyPrecision keys = KeyPrecision::f16;  // cached keys; f32 reproduces llama.cpp's logits bit for bit (CPU)
  Device device = Device::automatic;

  void validate() const;
};

// Monotonic clock in seconds, for the statistics.
double now_seconds();

// done/total tokens of the current prefill; called after every chunk.
using ProgressFn = std::function<void(int64_t done, int64_t total)>;
// A piece of generated text (always whole UTF-8) and the token that completed it; return
// false to stop.
using PieceFn = std::function<bool(std::string_view piece, int32_t token)>;

struct GenerateOptions {
  int32_t max_tokens = 256;
  SamplerOptions sampler;
  std::vector<std::string> stop;  // stop strings (not included in the output)
};

enum class StopReason { end_of_generation, stop_string, max_tokens, callback, cancelled, context_full };
const char* stop_reason_name(StopReason r);

struct GenerateResult {
  std::string text;
  std::vector<int32_t> tokens;
  StopReason reason = StopReason::max_tokens;
};

struct SessionStats {
  int64_t prefill_tokens = 0;
  double prefill_seconds = 0;
  int64_t decode_tokens = 0;
  double decode_seconds = 0;
  double first_token_seconds = 0;  // last generate(): from its prefill start to the first token
};

class Session {
 public:
  Session(std::shared_ptr<const Model> model, const SessionOptions& opts);
  ~Session();

  const Model& model() const { return *model_; }
  const SessionOptions& options() const { return opts_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int64_t n_ctx() const { return kv_.capacity(); }
  const KvCache& kv() const { return kv_; }
  // KV-cache bytes a token takes, and in use: the cache's, plus the GPU's fp8 copy of the keys
  // while TokenSelect scores on it (ScoringKeys::fp8).
  uint64_t kv_bytes_per_token() const;
  uint64_t kv_bytes_used() const { return kv_bytes_per_token() * uint64_t(kv_.size()); }
  const SessionStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

  // Appends and runs tokens in chunks (the last 64 of a long prompt in a chunk of their own,
  // so a question after a document steers the selection). On cancel (Status::cancelled) or any error the session
  // is rolled back to the tokens it had before the call, so it stays consistent.
  void prefill(std::span<const int32_t> tokens, const ProgressFn& progress = {});
  // Logits after the last prefill/decode (n_vocab floats); null when none yet.
  const float* logits() const { return has_logits_ ? last_logits_.data() : nullptr; }
  // Keep only the first n tokens.
  void truncate(int64_t n);
  // Samples from the current logits and runs the sampled tokens until a stop condition.
  GenerateResult generate(const GenerateOptions& opts, const PieceFn& on_piece = {});

  // Any thread: makes the running prefill/generate return within one chunk or step. A request
  // stays pending until it stops something or clear_cancel() drops it; callers clear it when a
  // user-level operation starts, so a stale request does not cancel the next one.
  void cancel() { cancel_.store(true); }
  void clear_cancel() { cancel_.store(false); }

  // Logits for every position of `tokens` appended to the cache (for tests and evaluation).
  std::vector<float> eval_all(std::span<const int32_t> tokens);

  // Attention settings; validated, and they take effect from the next step.
  void set_select_options(const SelectOptions& o);
  // The prefill chunk in use: the requested one, at most n_local under TokenSelect so every
  // query of a chunk sits in the local window and attends to its own chunk.
  int32_t chunk() const;
  const TokenSelectPolicy& policy() const { return *policy_; }
  TokenSelectPolicy& policy() { return *policy_; }
  // Selection-cache hits and misses, from whichever device selects.
  SelectStats select_stats() const;
  void reset_select_stats();
  // "cpu" or "cuda".
  std::string backend_name() const { return backend_->name(); }

 private:
  friend class Generation;
  friend class SessionState;
  void step(std::span<const int32_t> tokens, LogitsMode mode);
  // With recording on, a step's selections are copied from the device into the policy (the
  // CPU policy records its own).
  void fetch_selection();

  std::shared_ptr<const Model> model_;
  SessionOptions opts_;
  std::unique_ptr<Backend> backend_;
  KvCache kv_;
  std::unique_ptr<Forward> forward_;
  std::unique_ptr<TokenSelectPolicy> policy_;
  std::vector<int32_t> tokens_;
  std::vector<float> last_logits_;
  bool has_logits_ = false;
  std::atomic<bool> cancel_{false};
  SessionStats stats_;
  DeviceSelectCounts device_stats_base_;  // device counts at the last reset
};

}  // namespace ts
