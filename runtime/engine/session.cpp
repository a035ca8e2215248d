#include "engine/session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "engine/generation.hpp"
#ifdef TS_HAVE_CUDA
#include "backend/cuda/cuda_backend.hpp"
#endif
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"

namespace ts {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

namespace {

// The last tokens of a long prefill get a chunk of their own: TokenSelect picks each chunk's
// keys by the mean of its queries, and the question at the end of a long document must decide
// what the answer attends to, not the document text that shares its chunk.
constexpr size_t kTailChunk = 64;

}  // namespace

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::end_of_generation: return "end_of_generation";
    case StopReason::stop_string: return "stop_string";
    case StopReason::max_tokens: return "max_tokens";
    case StopReason::callback: return "callback";
    case StopReason::cancelled: return "cancelled";
    case StopReason::context_full: return "context_full";
  }
  return "unknown";
}

void SessionOptions::validate() const {
  if (n_ctx < 0) fail(Status::invalid_arg, "session: n_ctx must be >= 0");
  if (chunk < 1) fail(Status::invalid_arg, "session: chunk must be >= 1");
  if (n_threads < 0) fail(Status::invalid_arg, "session: n_threads must be >= 0");
  select.validate();
}

int32_t Session::chunk() const {
  const SelectOptions& s = opts_.select;
  return s.mode == AttentionMode::tokenselect ? std::min(opts_.chunk, s.n_local) : opts_.chunk;
}

static int64_t resolve_ctx(const Model& m, const SessionOptions& o) {
  o.validate();
  if (o.n_ctx > 0) return o.n_ctx;
  return o.select.mode == AttentionMode::full ? m.hparams().n_ctx_train : std::max<int64_t>(65536, m.hparams().n_ctx_train);
}

static DeviceSelectConfig device_config(const SelectOptions& o) {
  DeviceSelectConfig c;
  c.n_init = o.n_init;
  c.n_local = o.n_local;
  c.k = o.k;
  c.tau = o.tau;
  c.cache = o.cache;
  c.remap = o.positions == PositionMode::remap;
  c.full = o.mode == AttentionMode::full;
  c.fp8_keys = o.scoring == ScoringKeys::fp8;
  return c;
}

static std::unique_ptr<Backend> make_backend(const Model& m, const SessionOptions& o) {
  if (o.device == Device::cpu) return make_cpu_backend(o.n_threads);
#ifdef TS_HAVE_CUDA
  const HParams& h = m.hparams();
  CudaBackendShape shape{h.n_layer, h.n_head, h.n_head_kv, h.head_dim, resolve_ctx(m, o), o.chunk, m.rope_params()};
  std::string why = cuda_backend_unavailable(shape);
  if (why.empty() && o.keys == KeyPrecision::f32) why = "the CUDA KV cache holds fp16 keys (f32 keys run on the CPU)";
  if (why.empty()) return make_cuda_backend(shape, device_config(o.select));
  if (o.device == Device::cuda) fail(Status::unsupported, "CUDA backend: " + why);
#else
  (void)m;
  if (o.device == Device::cuda) fail(Status::unsupported, "CUDA backend: this build has no CUDA support");
#endif
  return make_cpu_backend(o.n_threads);
}

Session::Session(std::shared_ptr<const Model> model, const SessionOptions& opts)
    : model_(std::move(model)),
      opts_(opts),
      backend_(make_backend(*model_, opts)),
      kv_(model_->hparams().n_layer, model_->hparams().n_head_kv, model_->hparams().head_dim,
          resolve_ctx(*model_, opts), opts.keys, backend_->device_attention() == nullptr),
      forward_(std::make_unique<Forward>(*model_, *backend_, opts.chunk)),
      policy_(std::make_unique<TokenSelectPolicy>(*backend_, model_->hparams().n_layer, model_->hparams().n_head,
                                                  model_->hparams().head_dim, opts.select)) {
  forward_->set_policy(policy_.get());
}

uint64_t Session::kv_bytes_per_token() const {
  const SelectOptions& o = opts_.select;
  const HParams& h = model_->hparams();
  const bool copy =
      backend_->device_attention() && o.scoring == ScoringKeys::fp8 && o.mode == AttentionMode::tokenselect;
  return kv_.bytes_per_token() + (copy ? uint64_t(h.n_layer) * uint64_t(h.n_head_kv) * uint64_t(h.head_dim) : 0);
}

void Session::set_select_options(const SelectOptions& o) {
  o.validate();
  if (DeviceAttention* da = backend_->device_attention()) {  // first: it may refuse
    da->configure(device_config(o));
    device_stats_base_ = {};
  }
  policy_->set_options(o);
  opts_.select = o;
}

SelectStats Session::select_stats() const {
  DeviceAttention* da = backend_->device_attention();
  if (!da) return policy_->stats();
  const DeviceSelectCounts c = da->select_counts(), &b = device_stats_base_;
  SelectStats s;
  s.cache_hits = c.hits - b.hits;
  s.cache_misses = c.misses - b.misses;
  s.selecting_steps = c.selecting_steps - b.selecting_steps;
  s.dense_steps = c.dense_steps - b.dense_steps;
  return s;
}

void Session::reset_select_stats() {
  policy_->reset_stats();
  if (DeviceAttention* da = backend_->device_attention()) device_stats_base_ = da->select_counts();
}

void Session::fetch_selection() {
  DeviceAttention* da = backend_->device_attention();
  if (!da) return;
  std::vector<LayerSelection> layers;
  for (DeviceSelection& d : da->last_selection()) layers.push_back({std::move(d.positions), std::move(d.votes)});
  policy_->record_selection(std::move(layers));
}

Session::~Session() = default;

void Session::step(std::span<const int32_t> tokens, LogitsMode mode) {
  // A device selects itself: with recording on, its selections are copied into the policy.
  const bool record_device = backend_->device_attention() && policy_->recording();
  if (record_device) policy_->begin_step(int64_t(tokens_.size()), int64_t(tokens.size()));  // sizes the counts
  const float* l = forward_->run(tokens, kv_, mode);
  if (record_device) fetch_selection();
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  if (mode == LogitsMode::last) {
    const int32_t nv = model_->hparams().n_vocab;
    last_logits_.assign(l, l + nv);
    has_logits_ = true;
  } else {
    has_logits_ = false;
  }
}

void Session::truncate(int64_t n) {
  if (n < 0 || n > int64_t(tokens_.size()))
    fail(Status::invalid_arg, fmt::format("truncate: {} is outside [0, {}]", n, tokens_.size()));
  if (n == int64_t(tokens_.size())) return;
  tokens_.resize(size_t(n));
  kv_.set_size(n);
  policy_->truncate(n);
  if (DeviceAttention* da = backend_->device_attention()) {
    da->truncate(n);
    device_stats_base_ = {};
  }
  has_logits_ = false;
}

void Session::prefill(std::span<const int32_t> tokens, const ProgressFn& progress) {
  if (tokens.empty()) return;
  const int64_t before = int64_t(tokens_.size());
  if (before + int64_t(tokens.size()) > kv_.capacity())
    fail(Status::context_full, fmt::format("context full: {} cached + {} new tokens exceed the context size {}",
                                           before, tokens.size(), kv_.capacity()));
  const int32_t nv = model_->hparams().n_vocab;
  for (int32_t t : tokens)
    if (t < 0 || t >= nv) fail(Status::invalid_arg, fmt::format("token id {} outside the vocabulary [0, {})", t, nv));
  const double t_start = now_seconds();
  try {
    const size_t max_chunk = size_t(chunk());
    const size_t tail = tokens.size() > max_chunk ? std::min(kTailChunk, max_chunk) : 0;
    const size_t body = tokens.size() - tail;
    for (size_t done = 0; done < tokens.size();) {
      if (cancel_.exchange(false)) fail(Status::cancelled, "prefill cancelled");
      const size_t n = done < body ? std::min(body - done, max_chunk) : tokens.size() - done;
      const bool last = done + n == tokens.size();
      step(tokens.subspan(done, n), last ? LogitsMode::last : LogitsMode::none);
      done += n;
      if (progress) progress(int64_t(done), int64_t(tokens.size()));
    }
  } catch (...) {
    truncate(before);
    throw;
  }
  stats_.prefill_tokens += int64_t(tokens.size());
  stats_.prefill_seconds += now_seconds() - t_start;
}

std::vector<float> Session::eval_all(std::span<const int32_t> tokens) {
  const int32_t nv = model_->hparams().n_vocab;
  std::vector<float> out;
  out.reserve(tokens.size() * size_t(nv));
  for (size_t done = 0; done < tokens.size();) {
    const size_t n = std::min(tokens.size() - done, size_t(chunk()));
    const float* l = forward_->run(tokens.subspan(done, n), kv_, LogitsMode::all);
    out.insert(out.end(), l, l + n * size_t(nv));
    tokens_.insert(tokens_.end(), tokens.begin() + ptrdiff_t(done), tokens.begin() + ptrdiff_t(done + n));
    done += n;
  }
  last_logits_.assign(out.end() - nv, out.end());
  has_logits_ = true;
  return out;
}

GenerateResult Session::generate(const GenerateOptions& opts, const PieceFn& on_piece) {
  Generation g(*this, opts);
  while (!g.done()) {
    const Generation::Step st = g.next();
    if (on_piece && !st.piece.empty() && !on_piece(st.piece, st.token)) g.stop(StopReason::callback);
  }
  return g.result();
}

}  // namespace ts
