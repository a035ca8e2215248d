#include "model/forward.hpp"

#include <cmath>
#include <fmt/format.h>

#include "select/attention_policy.hpp"
#include "util/error.hpp"

namespace ts {

Forward::Forward(const Model& model, Backend& backend, int64_t max_batch)
    : model_(model), be_(backend), max_batch_(max_batch) {
  const HParams& h = model.hparams();
  const size_t b = size_t(max_batch);
  x_ = be_.alloc(b * h.n_embd);
  xn_ = be_.alloc(b * h.n_embd);
  q_ = be_.alloc(b * h.q_dim());
  k_ = be_.alloc(b * h.kv_dim());
  v_ = be_.alloc(b * h.kv_dim());
  att_ = be_.alloc(b * h.q_dim());
  gate_ = be_.alloc(b * h.n_ff);
  up_ = be_.alloc(b * h.n_ff);
  logits_ = nullptr;
}

Forward::~Forward() {
  for (float* p : {x_, xn_, q_, k_, v_, att_, gate_, up_, logits_})
    if (p) be_.free(p);
}

void Forward::host_attention(int32_t il, int64_t m, KvCache& kv, int64_t t0) {
  const HParams& h = model_.hparams();
  const KvLayerView view = kv.layer(il);
  be_.kv_store(view, t0, m, k_, v_);

  AttentionArgs a;
  a.q = q_;
  a.m = m;
  a.n_heads = h.n_head;
  a.kv = view;
  a.q_first = t0;
  a.n_keys = t0 + m;
  a.rope = model_.rope_params();
  a.scale = 1.f / std::sqrt(float(h.head_dim));
  a.out = att_;
  if (policy_) {
    const AttentionSet s = policy_->plan(il, q_, m, h.n_head, view, t0);
    a.keys = s.keys;
    a.n_keys = s.n_keys;
    a.key_pos = s.key_pos;
    a.q_pos = s.q_pos;
  }
  be_.attention(a);
}

void Forward::layer(int32_t il, int64_t m, KvCache& kv, int64_t t0) {
  const HParams& h = model_.hparams();
  const LayerWeights& w = model_.weights().layers[size_t(il)];
  // The previous layer's FFN output waits in xn_ to be added with this norm (one pass).
  if (il == 0)
    be_.rmsnorm(x_, w.attn_norm.data(), m, h.n_embd, h.rms_eps, xn_, &w.wq);
  else
    be_.add_rmsnorm(x_, xn_, w.attn_norm.data(), m, h.n_embd, h.rms_eps, xn_, &w.wq);
  const Weight* qkv[3] = {&w.wq, &w.wk, &w.wv};
  float* qkv_out[3] = {q_, k_, v_};
  be_.matmul_many(qkv, qkv_out, 3, xn_, m);
  if (!w.bq.empty()) {
    be_.add_bias(q_, w.bq.data(), m, h.q_dim());
    be_.add_bias(k_, w.bk.data(), m, h.kv_dim());
    be_.add_bias(v_, w.bv.data(), m, h.kv_dim());
  }
  if (DeviceAttention* da = be_.device_attention()) {
    da->layer(il, q_, k_, v_, m, t0, att_, &w.wo);
  } else {
    host_attention(il, m, kv, t0);
  }
  be_.matmul(w.wo, att_, m, xn_);
  be_.add_rmsnorm(x_, xn_, w.ffn_norm.data(), m, h.n_embd, h.rms_eps, xn_, &w.w_gate);
  const Weight* gate_up[2] = {&w.w_gate, &w.w_up};
  float* gate_up_out[2] = {gate_, up_};
  be_.matmul_many(gate_up, gate_up_out, 2, xn_, m);
  be_.swiglu(gate_, up_, m * h.n_ff, &w.w_down);
  be_.matmul(w.w_down, gate_, m, xn_);  // added to x_ by the next norm
}

const float* Forward::run(std::span<const int32_t> tokens, KvCache& kv, LogitsMode mode) {
  const HParams& h = model_.hparams();
  const int64_t m = int64_t(tokens.size());
  if (m == 0) fail(Status::invalid_arg, "forward: no tokens");
  if (m > max_batch_) fail(Status::invalid_arg, fmt::format("forward: {} tokens exceed the batch of {}", m, max_batch_));
  const int64_t t0 = kv.size();
  if (t0 + m > kv.capacity())
    fail(Status::context_full, fmt::format("context full: {} tokens cached + {} new exceed the context size {}", t0,
                                           m, kv.capacity()));
  const int64_t rows = mode == LogitsMode::all ? m : mode == LogitsMode::last ? 1 : 0;
  if (rows > 0 && (!logits_ || logits_rows_ < rows)) {
    if (logits_) be_.free(logits_);
    logits_ = be_.alloc(size_t(rows) * size_t(h.n_vocab));
    logits_rows_ = rows;
  }
  DeviceAttention* da = be_.device_attention();
  be_.run_step(tokens, t0, int(mode), [&] {
    be_.get_rows(model_.weights().token_embd, tokens.data(), m, x_);
    if (da)
      da->begin_step(t0, m);
    else if (policy_)
      policy_->begin_step(t0, m);
    for (int32_t il = 0; il < h.n_layer; ++il) layer(il, m, kv, t0);
    if (rows == 0) return;
    // The last FFN output is added only to the rows that get logits: nothing else reads x_ now.
    const int64_t first = mode == LogitsMode::all ? 0 : m - 1;
    be_.add_rmsnorm(x_ + first * h.n_embd, xn_ + first * h.n_embd, model_.weights().output_norm.data(), rows,
                    h.n_embd, h.rms_eps, xn_, &model_.weights().output);
    be_.matmul(model_.weights().output, xn_, rows, logits_);
  });
  kv.set_size(t0 + m);
  return rows == 0 ? nullptr : be_.host_view(logits_, size_t(rows) * size_t(h.n_vocab));
}

}  // namespace ts
