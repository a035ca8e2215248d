// Sessions: creation, settings, the conversation, prefill, generation (callback and pull
// styles), raw tokens and logits, statistics.
#include <fmt/format.h>

#include "capi_internal.hpp"
#include "tokenizer/tokenizer.hpp"

namespace {

constexpr size_t kSelectMin = offsetof(ts_select_settings, attention) + sizeof(int32_t);
constexpr size_t kSessionOptionsMin = offsetof(ts_session_options, n_ctx) + sizeof(int64_t);
constexpr size_t kGenerateMin = offsetof(ts_generate_options, max_tokens) + sizeof(int32_t);
constexpr size_t kStatsMin = offsetof(ts_session_stats, n_tokens) + sizeof(int64_t);

// Marks the session busy for a long call, so its callbacks may only use const functions.
struct Busy {
  explicit Busy(ts_session* s) : s_(s) { s_->busy = true; }
  ~Busy() { s_->busy = false; }
  ts_session* s_;
};

ts::SelectOptions to_runtime(const ts_select_settings* in) {
  const ts_select_settings c = capi::read_options(in, ts_select_settings_init, kSelectMin, "ts_select_settings");
  if (c.attention != TS_ATTENTION_TOKENSELECT && c.attention != TS_ATTENTION_FULL)
    capi::invalid(fmt::format("attention settings: attention must be TS_ATTENTION_TOKENSELECT or TS_ATTENTION_FULL (got {})", int(c.attention)));
  if (c.positions != TS_POSITIONS_REMAP && c.positions != TS_POSITIONS_TRUE)
    capi::invalid(fmt::format("attention settings: positions must be TS_POSITIONS_REMAP or TS_POSITIONS_TRUE (got {})", int(c.positions)));
  if (c.scoring_keys != TS_SCORING_KEYS_CACHED && c.scoring_keys != TS_SCORING_KEYS_FP8)
    capi::invalid(fmt::format("attention settings: scoring_keys must be TS_SCORING_KEYS_CACHED or TS_SCORING_KEYS_FP8 (got {})", c.scoring_keys));
  if (c.select_cache != 0 && c.select_cache != 1)
    capi::invalid(fmt::format("attention settings: select_cache must be 0 or 1 (got {})", c.select_cache));
  // The runtime checks these too, but under its own names; the caller knows the C fields.
  if (c.n_init < 0) capi::invalid(fmt::format("attention settings: n_init must be >= 0 (got {})", c.n_init));
  if (c.n_local < 1) capi::invalid(fmt::format("attention settings: n_local must be >= 1 (got {})", c.n_local));
  if (c.k < 1) capi::invalid(fmt::format("attention settings: k must be >= 1 (got {})", c.k));
  if (!(c.cache_threshold >= 0.f && c.cache_threshold <= 1.f))
    capi::invalid(fmt::format("attention settings: cache_threshold must be in [0, 1] (got {})", c.cache_threshold));
  ts::SelectOptions o;
  o.mode = c.attention == TS_ATTENTION_FULL ? ts::AttentionMode::full : ts::AttentionMode::tokenselect;
  o.positions = c.positions == TS_POSITIONS_TRUE ? ts::PositionMode::true_pos : ts::PositionMode::remap;
  o.n_init = c.n_init, o.n_local = c.n_local, o.k = c.k, o.cache = c.select_cache != 0, o.tau = c.cache_threshold;
  o.scoring = c.scoring_keys == TS_SCORING_KEYS_FP8 ? ts::ScoringKeys::fp8 : ts::ScoringKeys::cached;
  o.validate();
  return o;
}

ts_select_settings to_c(const ts::SelectOptions& o) {
  ts_select_settings c;
  ts_select_settings_init(&c);
  c.attention = o.mode == ts::AttentionMode::full ? TS_ATTENTION_FULL : TS_ATTENTION_TOKENSELECT;
  c.positions = o.positions == ts::PositionMode::true_pos ? TS_POSITIONS_TRUE : TS_POSITIONS_REMAP;
  c.n_init = o.n_init, c.n_local = o.n_local, c.k = o.k, c.select_cache = o.cache, c.cache_threshold = o.tau;
  c.scoring_keys = o.scoring == ts::ScoringKeys::fp8 ? TS_SCORING_KEYS_FP8 : TS_SCORING_KEYS_CACHED;
  return c;
}

ts::Conversation& conversation(ts_session* s) {
  if (!s->conversation)
    throw ts::Error(ts::Status::unsupported,
                    "the model's chat template is not recognised; create the session with chat_format set");
  return *s->conversation;
}

// Prefill progress through a C callback; TS_STOP cancels (the prefill rolls back), even after
// the last chunk.
ts::ProgressFn progress_fn(ts_progress_fn fn, void* user) {
  if (!fn) return {};
  return [fn, user](int64_t done, int64_t total) {
    if (fn(done, total, user) != TS_CONTINUE) throw ts::Error(ts::Status::cancelled, "cancelled by the progress callback");
  };
}

ts_generate_options read_generate(const ts_generate_options* in) {
  return capi::read_options(in, ts_generate_options_init, kGenerateMin, "ts_generate_options");
}

ts::GenerateOptions to_runtime(const ts_generate_options& c, const ts::Conversation& conv) {
  ts::GenerateOptions o;
  o.max_tokens = c.max_tokens;
  o.sampler.temperature = c.temperature, o.sampler.top_k = c.top_k, o.sampler.top_p = c.top_p;
  o.sampler.min_p = c.min_p, o.sampler.repeat_penalty = c.repeat_penalty, o.sampler.repeat_last_n = c.repeat_last_n;
  o.sampler.seed = c.seed;
  o.sampler.validate();
  if (c.n_stop > 0) capi::require(c.stop, "stop");
  for (size_t i = 0; i < c.n_stop; ++i) {
    if (!c.stop[i]) capi::invalid(fmt::format("stop[{}] is NULL", i));
    o.stop.emplace_back(c.stop[i]);
  }
  for (const std::string& s : conv.stop_strings())
    if (std::find(o.stop.begin(), o.stop.end(), s) == o.stop.end()) o.stop.push_back(s);
  return o;
}

// Starts an answer: checks the conversation, restarts the selection counts, prefills, and
// returns the Generation (its first-token time counted from the start of the prefill).
std::unique_ptr<ts::Generation> begin_answer(ts_session* s, const ts_generate_options& c) {
  const double t0 = ts::now_seconds();
  ts::Conversation& conv = conversation(s);
  if (s->pull) capi::invalid("a pull-style answer is in progress (finish it or call ts_session_end_answer)");
  if (!conv.ready_to_answer())
    capi::invalid("nothing to answer: the last message must be a user message, after any documents");
  const ts::GenerateOptions o = to_runtime(c, conv);
  s->session->clear_cancel();
  s->session->policy().reset_counts();
  conv.prefill(*s->session, progress_fn(c.progress, c.progress_user_data));
  return std::make_unique<ts::Generation>(*s->session, o, t0);
}

void end_answer(ts_session* s, const ts::Generation& g) {
  s->conversation->add_message("assistant", g.result().text);
  const ts::SessionStats& st = s->session->stats();
  capi::log(s->owner, TS_LOG_DEBUG,
            fmt::format("answer: {} tokens ({}), decode {:.1f} tok/s", g.result().tokens.size(),
                        ts::stop_reason_name(g.result().reason),
                        st.decode_seconds > 0 ? double(st.decode_tokens) / st.decode_seconds : 0.0));
}

}  // namespace

extern "C" {

TS_API void ts_select_settings_init(ts_select_settings* c) {
  if (!c) return;
  const ts::SelectOptions o;
  *c = ts_select_settings{};
  c->struct_size = sizeof(ts_select_settings);
  c->attention = TS_ATTENTION_TOKENSELECT;
  c->positions = TS_POSITIONS_REMAP;
  c->n_init = o.n_init, c->n_local = o.n_local, c->k = o.k, c->select_cache = o.cache, c->cache_threshold = o.tau;
}

TS_API void ts_session_options_init(ts_session_options* o) {
  if (!o) return;
  const ts::SessionOptions d;
  *o = ts_session_options{};
  o->struct_size = sizeof(ts_session_options);
  o->n_ctx = d.n_ctx, o->n_threads = d.n_threads, o->chunk = d.chunk;
}

TS_API void ts_generate_options_init(ts_generate_options* o) {
  if (!o) return;
  *o = ts_generate_options{};
  o->struct_size = sizeof(ts_generate_options);
  o->max_tokens = 512;
  o->temperature = 0.7f, o->top_k = 40, o->top_p = 0.95f, o->min_p = 0.05f;
  o->repeat_penalty = 1.1f, o->repeat_last_n = 64, o->seed = 42;
}

TS_API ts_status ts_session_create(const ts_model* model, const ts_session_options* options, ts_session** out_session) {
  if (out_session) *out_session = nullptr;
  return capi::guard("ts_session_create", [&] {
    capi::require(out_session, "out_session");
    capi::require(model, "model");
    const ts_session_options c = capi::read_options(options, ts_session_options_init, kSessionOptionsMin, "ts_session_options");
    ts::SessionOptions o;
    o.n_ctx = c.n_ctx, o.n_threads = c.n_threads, o.chunk = c.chunk;
    if (c.key_precision != TS_KEYS_F16 && c.key_precision != TS_KEYS_F32)
      ts::fail(ts::Status::invalid_arg, fmt::format("key_precision must be TS_KEYS_F16 or TS_KEYS_F32 (got {})", c.key_precision));
    o.keys = c.key_precision == TS_KEYS_F32 ? ts::KeyPrecision::f32 : ts::KeyPrecision::f16;
    if (c.device != TS_DEVICE_AUTO && c.device != TS_DEVICE_CPU && c.device != TS_DEVICE_CUDA)
      ts::fail(ts::Status::invalid_arg,
               fmt::format("device must be TS_DEVICE_AUTO, TS_DEVICE_CPU or TS_DEVICE_CUDA (got {})", int64_t(c.device)));
    o.device = c.device == TS_DEVICE_CPU ? ts::Device::cpu : c.device == TS_DEVICE_CUDA ? ts::Device::cuda : ts::Device::automatic;
    o.select = to_runtime(c.select);
    o.validate();
    auto s = std::make_unique<ts_session>();
    s->owner = model;
    const std::string format = c.chat_format ? c.chat_format : "";
    try {
      ts::ChatTemplate tmpl = ts::ChatTemplate::from_model(model->model->tokenizer().chat_template(), format);
      s->conversation = std::make_unique<ts::Conversation>(std::move(tmpl), c.system_prompt ? c.system_prompt : "");
    } catch (const ts::Error& e) {
      if (e.status() != ts::Status::unsupported) throw;  // a bad chat_format name
      capi::log(model, TS_LOG_WARN, std::string(e.what()) + "; only raw-token calls will work");
    }
    s->session = std::make_unique<ts::Session>(model->model, o);
    capi::log(model, TS_LOG_DEBUG, fmt::format("session: context {} tokens on the {}", s->session->n_ctx(), s->session->backend_name()));
    *out_session = s.release();
    return TS_OK;
  });
}

TS_API void ts_session_free(ts_session* session) { delete session; }

TS_API void ts_session_cancel(ts_session* session) {
  if (session && session->session) session->session->cancel();
}

TS_API ts_status ts_session_reset(ts_session* session) {
  return capi::guard("ts_session_reset", [&] {
    ts::Session& s = capi::writable(session);
    session->pull.reset();
    if (session->conversation) session->conversation->reset();
    s.truncate(0);
    s.policy().reset_counts();
    return TS_OK;
  });
}

TS_API ts_status ts_session_add_document(ts_session* session, const char* title, const char* text, size_t len,
                                         int32_t* out_document_id) {
  return capi::guard("ts_session_add_document", [&] {
    capi::writable(session);
    if (len > 0) capi::require(text, "text");
    const int32_t id = conversation(session).add_document(title ? title : "", std::string(text ? text : "", len));
    if (out_document_id) *out_document_id = id;
    return TS_OK;
  });
}

TS_API ts_status ts_session_add_message(ts_session* session, int32_t role, const char* text, size_t len) {
  return capi::guard("ts_session_add_message", [&] {
    capi::writable(session);
    if (len > 0) capi::require(text, "text");
    const char* name = role == TS_ROLE_SYSTEM ? "system" : role == TS_ROLE_USER ? "user" : role == TS_ROLE_ASSISTANT ? "assistant" : nullptr;
    if (!name) capi::invalid(fmt::format("unknown role {}", int(role)));
    if (session->pull) capi::invalid("a pull-style answer is in progress (finish it or call ts_session_end_answer)");
    conversation(session).add_message(name, std::string(text ? text : "", len));
    return TS_OK;
  });
}

TS_API ts_status ts_session_message_count(const ts_session* session, int32_t* count) {
  return capi::guard("ts_session_message_count", [&] {
    capi::readable(session);
    capi::require(count, "count");
    *count = session->conversation ? int32_t(session->conversation->messages().size()) : 0;
    return TS_OK;
  });
}

TS_API ts_status ts_session_get_message(const ts_session* session, int32_t index, int32_t* role, char* buf,
                                        size_t capacity, size_t* needed) {
  return capi::guard("ts_session_get_message", [&] {
    capi::readable(session);
    const size_t n = session->conversation ? session->conversation->messages().size() : 0;
    if (index < 0 || size_t(index) >= n) capi::invalid(fmt::format("message index {} is outside [0, {})", index, n));
    const ts::ConversationMessage& m = session->conversation->messages()[size_t(index)];
    if (role) *role = m.role == "system" ? TS_ROLE_SYSTEM : m.role == "user" ? TS_ROLE_USER : TS_ROLE_ASSISTANT;
    return capi::put_text(m.text, buf, capacity, needed);
  });
}

TS_API ts_status ts_session_truncate_messages(ts_session* session, int32_t count) {
  return capi::guard("ts_session_truncate_messages", [&] {
    capi::writable(session);
    if (count < 0) capi::invalid(fmt::format("count must be >= 0 (got {})", count));
    if (session->pull) capi::invalid("a pull-style answer is in progress (finish it or call ts_session_end_answer)");
    conversation(session).truncate_messages(size_t(count));
    return TS_OK;
  });
}

TS_API ts_status ts_session_prefill(ts_session* session, ts_progress_fn progress, void* user_data) {
  return capi::guard("ts_session_prefill", [&] {
    ts::Session& s = capi::writable(session);
    ts::Conversation& conv = conversation(session);
    if (session->pull) capi::invalid("a pull-style answer is in progress (finish it or call ts_session_end_answer)");
    Busy busy(session);
    s.clear_cancel();
    conv.prefill(s, progress_fn(progress, user_data));
    return TS_OK;
  });
}

TS_API ts_status ts_session_generate(ts_session* session, const ts_generate_options* options, ts_token_fn on_token,
                                     void* user_data, int32_t* reason) {
  if (reason) *reason = TS_STOP_NONE;
  return capi::guard("ts_session_generate", [&] {
    capi::writable(session);
    const ts_generate_options c = read_generate(options);
    Busy busy(session);
    std::unique_ptr<ts::Generation> gen;
    try {
      gen = begin_answer(session, c);
    } catch (const ts::Error& e) {
      if (e.status() == ts::Status::cancelled && reason) *reason = TS_STOP_CANCELLED;
      throw;
    }
    ts::Generation& g = *gen;
    while (!g.done()) {
      const ts::Generation::Step st = g.next();
      if (on_token && !st.piece.empty() && on_token(st.piece.data(), st.piece.size(), st.token, user_data) != TS_CONTINUE)
        g.stop(ts::StopReason::callback);
    }
    end_answer(session, g);
    if (reason) *reason = capi::stop_reason(g.result().reason);
    if (g.result().reason == ts::StopReason::cancelled) {
      capi::set_error("ts_session_generate", "cancelled");
      return TS_CANCELLED;
    }
    return TS_OK;
  });
}

TS_API ts_status ts_session_next_token(ts_session* session, const ts_generate_options* options, const char** piece,
                                       size_t* len, int32_t* token, int32_t* reason) {
  return capi::guard("ts_session_next_token", [&] {
    capi::writable(session);
    if (!session->pull) {
      const ts_generate_options c = read_generate(options);
      Busy busy(session);
      session->pull = begin_answer(session, c);
    }
    ts::Generation& g = *session->pull;
    ts::Generation::Step st;
    {
      Busy busy(session);
      st = g.next();
    }
    session->pull_piece = std::move(st.piece);
    const ts_stop_reason r = g.done() ? capi::stop_reason(g.result().reason) : TS_STOP_NONE;
    if (g.done()) {
      end_answer(session, g);
      session->pull.reset();
    }
    if (piece) *piece = session->pull_piece.c_str();
    if (len) *len = session->pull_piece.size();
    if (token) *token = st.token;
    if (reason) *reason = r;
    return TS_OK;
  });
}

TS_API ts_status ts_session_end_answer(ts_session* session) {
  return capi::guard("ts_session_end_answer", [&] {
    capi::writable(session);
    if (session->pull) {
      session->pull->stop(ts::StopReason::callback);
      end_answer(session, *session->pull);
      session->pull.reset();
    }
    return TS_OK;
  });
}

TS_API ts_status ts_session_prefill_tokens(ts_session* session, const int32_t* tokens, size_t n_tokens,
                                           ts_progress_fn progress, void* user_data) {
  return capi::guard("ts_session_prefill_tokens", [&] {
    ts::Session& s = capi::writable(session);
    if (n_tokens > 0) capi::require(tokens, "tokens");
    if (session->pull) capi::invalid("a pull-style answer is in progress (finish it or call ts_session_end_answer)");
    Busy busy(session);
    s.clear_cancel();
    s.prefill(std::span<const int32_t>(tokens, n_tokens), progress_fn(progress, user_data));
    return TS_OK;
  });
}

TS_API ts_status ts_session_get_tokens(const ts_session* session, int32_t* tokens, size_t capacity, size_t* needed) {
  return capi::guard("ts_session_get_tokens", [&] {
    const std::vector<int32_t>& t = capi::readable(session).tokens();
    return capi::put_array(t.data(), t.size(), tokens, capacity, needed);
  });
}

TS_API ts_status ts_session_truncate_tokens(ts_session* session, int64_t n) {
  return capi::guard("ts_session_truncate_tokens", [&] {
    ts::Session& s = capi::writable(session);
    if (session->pull) capi::invalid("a pull-style answer is in progress (finish it or call ts_session_end_answer)");
    s.truncate(n);
    return TS_OK;
  });
}

TS_API ts_status ts_session_get_logits(const ts_session* session, const float** logits, size_t* n_vocab) {
  return capi::guard("ts_session_get_logits", [&] {
    const ts::Session& s = capi::readable(session);
    capi::require(logits, "logits");
    if (!s.logits()) capi::invalid("no logits: nothing has run since the session last changed");
    *logits = s.logits();
    if (n_vocab) *n_vocab = size_t(s.model().hparams().n_vocab);
    return TS_OK;
  });
}

TS_API ts_status ts_session_get_select(const ts_session* session, ts_select_settings* settings) {
  return capi::guard("ts_session_get_select", [&] {
    const ts_select_settings full = to_c(capi::readable(session).options().select);
    capi::write_struct(settings, full, kSelectMin, "settings");
    return TS_OK;
  });
}

TS_API ts_status ts_session_set_select(ts_session* session, const ts_select_settings* settings) {
  return capi::guard("ts_session_set_select", [&] {
    ts::Session& s = capi::writable(session);
    s.set_select_options(to_runtime(settings));  // NULL: the defaults
    return TS_OK;
  });
}

TS_API ts_status ts_session_get_stats(const ts_session* session, ts_session_stats* stats) {
  return capi::guard("ts_session_get_stats", [&] {
    const ts::Session& s = capi::readable(session);
    const ts::SessionStats& st = s.stats();
    const ts::SelectStats sel = s.select_stats();
    ts_session_stats full{};
    full.struct_size = sizeof full;
    full.n_tokens = int64_t(s.tokens().size()), full.n_ctx = s.n_ctx();
    full.device = s.backend_name() == "cuda" ? TS_DEVICE_CUDA : TS_DEVICE_CPU;
    full.kv_bytes_per_token = s.kv_bytes_per_token(), full.kv_bytes_used = s.kv_bytes_used();
    full.prefill_tokens = st.prefill_tokens, full.prefill_seconds = st.prefill_seconds;
    full.decode_tokens = st.decode_tokens, full.decode_seconds = st.decode_seconds;
    full.first_token_seconds = st.first_token_seconds;
    full.select_cache_hits = sel.cache_hits, full.select_cache_misses = sel.cache_misses;
    full.selecting_steps = sel.selecting_steps, full.dense_steps = sel.dense_steps;
    capi::write_struct(stats, full, kStatsMin, "stats");
    return TS_OK;
  });
}

TS_API ts_status ts_session_reset_stats(ts_session* session) {
  return capi::guard("ts_session_reset_stats", [&] {
    ts::Session& s = capi::writable(session);
    s.reset_stats();
    s.reset_select_stats();
    return TS_OK;
  });
}

}  // extern "C"
