// The Llama-family forward pass, written once over Backend operations.
#pragma once
#include <cstdint>
#include <span>

#include "backend/backend.hpp"
#include "kv/kv_cache.hpp"
#include "model/model.hpp"

namespace ts {

class AttentionPolicy;

enum class LogitsMode { none, last, all };

class Forward {
 public:
  // max_batch: the most tokens one run() may take (the prefill chunk size).
  Forward(const Model& model, Backend& backend, int64_t max_batch);
  ~Forward();
  Forward(const Forward&) = delete;
  Forward& operator=(const Forward&) = delete;

  // Which keys each layer attends to; null means dense causal attention over the whole cache.
  // Unused with a backend that attends on its own device (DeviceAttention).
  void set_policy(AttentionPolicy* policy) { policy_ = policy; }

  // Appends tokens at cache indices [kv.size(), kv.size() + n) and runs them through the
  // model. Returns logits: none, the last token's (n_vocab floats) or all n rows; the pointer
  // is valid until the next run().
  const float* run(std::span<const int32_t> tokens, KvCache& kv, LogitsMode mode);

  int64_t max_batch() const { return max_batch_; }

 private:
  void layer(int32_t il, int64_t m, KvCache& kv, int64_t t0);
  // kv_store, the policy's plan and attention over the host KvCache (CPU backend).
  void host_attention(int32_t il, int64_t m, KvCache& kv, int64_t t0);

  const Model& model_;
  Backend& be_;
  int64_t max_batch_;
  AttentionPolicy* policy_ = nullptr;
  float *x_, *xn_, *q_, *k_, *v_, *att_, *gate_, *up_, *logits_;
  int64_t logits_rows_ = 0;
};

}  // namespace ts
