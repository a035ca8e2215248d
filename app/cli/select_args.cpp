#include "select_args.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace cli {

void SelectArgs::add_to(CLI::App& app, bool with_attention) {
  if (with_attention)
    app.add_option("--attention", attention, "attention policy: tokenselect or full (dense)")
        ->check(CLI::IsMember({"tokenselect", "full"}))
        ->capture_default_str();
  app.add_option("--k", k, "TokenSelect: tokens selected per layer per step")->capture_default_str();
  app.add_option("--n-init", n_init, "TokenSelect: initial tokens (sinks) always attended")->capture_default_str();
  app.add_option("--n-local", n_local, "TokenSelect: recent tokens always attended")->capture_default_str();
  app.add_option("--tau", tau, "TokenSelect: cosine threshold for reusing the last selection")->capture_default_str();
  app.add_flag("--no-select-cache", no_cache, "TokenSelect: select afresh at every step");
  app.add_option("--scoring-keys", scoring_keys,
                 "TokenSelect: keys the selection scores, cached (the cache's) or fp8 (GPU: an fp8 copy, half the "
                 "bytes, +25% KV memory)")
      ->check(CLI::IsMember({"cached", "fp8"}))
      ->capture_default_str();
  app.add_option("--positions", positions, "TokenSelect RoPE positions: remap (rank in the attention set) or true")
      ->check(CLI::IsMember({"remap", "true"}))
      ->capture_default_str();
}

ts_attention parse_attention_mode(const std::string& s) {
  if (s == "tokenselect") return TS_ATTENTION_TOKENSELECT;
  if (s == "full" || s == "dense") return TS_ATTENTION_FULL;
  throw Error(TS_ERR_INVALID_ARG, fmt::format("unknown attention mode '{}' (tokenselect or full)", s));
}

const char* attention_mode_name(ts_attention m) { return m == TS_ATTENTION_FULL ? "full" : "tokenselect"; }

std::vector<ts_attention> parse_modes(const std::vector<std::string>& names) {
  std::vector<ts_attention> out;
  for (const std::string& n : names) {
    const ts_attention m = parse_attention_mode(n);
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  }
  if (out.empty()) throw Error(TS_ERR_INVALID_ARG, "--modes: give at least one of tokenselect, full");
  return out;
}

ts_select_settings SelectArgs::settings() const {
  ts_select_settings s;
  ts_select_settings_init(&s);
  s.attention = parse_attention_mode(attention);
  s.positions = positions == "true" ? TS_POSITIONS_TRUE : TS_POSITIONS_REMAP;  // CLI11 checked the value
  s.k = k;
  s.n_init = n_init;
  s.n_local = n_local;
  s.cache_threshold = tau;
  s.select_cache = no_cache ? 0 : 1;
  s.scoring_keys = scoring_keys == "fp8" ? TS_SCORING_KEYS_FP8 : TS_SCORING_KEYS_CACHED;  // CLI11 checked the value
  return s;
}

SessionPtr open_session(const ts_model* m, const ModelArgs& ma, const SelectArgs& sa, const GenArgs* gen) {
  const ts_select_settings sel = sa.settings();
  ts_session_options o;
  ts_session_options_init(&o);
  o.n_ctx = ma.ctx;
  o.n_threads = ma.threads;
  o.chunk = ma.chunk;  // the library runs TokenSelect chunks of at most n_local
  o.key_precision = ma.cache_type_k == "f32" ? TS_KEYS_F32 : TS_KEYS_F16;
  o.device = ma.device == "cpu" ? TS_DEVICE_CPU : ma.device == "cuda" ? TS_DEVICE_CUDA : TS_DEVICE_AUTO;
  o.select = &sel;
  if (gen && !gen->system.empty()) o.system_prompt = gen->system.c_str();  // else the model's own
  if (gen && !gen->chat_format.empty()) o.chat_format = gen->chat_format.c_str();
  ts_session* s = nullptr;
  check(ts_session_create(m, &o, &s));
  return SessionPtr(s);
}

SessionPtr open_session(const ts_model* m, const ModelArgs& ma, const SelectArgs& sa, ts_attention mode,
                        int64_t n_ctx) {
  ModelArgs model = ma;
  model.ctx = n_ctx;
  SelectArgs select = sa;
  select.attention = attention_mode_name(mode);
  return open_session(m, model, select);
}

}  // namespace cli
