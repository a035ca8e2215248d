// Models: loading with progress and cancel, metadata, tokenize/detokenize.
#include <fmt/format.h>

#include "capi_internal.hpp"
#include "gguf/gguf_file.hpp"
#include "tokenizer/chat_template.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/utf8.hpp"

namespace {

constexpr size_t kModelOptionsMin = offsetof(ts_model_options, progress) + sizeof(ts_progress_fn);
constexpr size_t kModelInfoMin = offsetof(ts_model_info, n_vocab) + sizeof(int32_t);

// GGUF strings come from the file and may be invalid UTF-8; the API hands out whole UTF-8 only.
std::string valid_utf8(std::string_view s) {
  std::string out;
  while (auto bad = ts::find_invalid_utf8(s)) {
    out.append(s.substr(0, *bad)).append("\xEF\xBF\xBD");
    s.remove_prefix(*bad + 1);
  }
  return out.append(s);
}

std::string meta_text(const ts::gguf::MetaValue& v) {
  using T = ts::gguf::ValueType;
  switch (v.type) {
    case T::U8: case T::U16: case T::U32: case T::U64: return std::to_string(v.u);
    case T::I8: case T::I16: case T::I32: case T::I64: return std::to_string(v.i);
    case T::F32: case T::F64: return fmt::format("{}", v.f);
    case T::BOOL: return v.u ? "true" : "false";
    case T::STRING: return valid_utf8(v.str);
    case T::ARRAY: return fmt::format("[{} items]", v.count);
  }
  return "";
}

const ts::Model& model_of(const ts_model* m) {
  capi::require(m, "model");
  return *m->model;
}

}  // namespace

extern "C" {

TS_API void ts_model_options_init(ts_model_options* o) {
  if (!o) return;
  *o = ts_model_options{};
  o->struct_size = sizeof(ts_model_options);
  o->log_level = TS_LOG_INFO;
}

TS_API ts_status ts_model_load(const char* path, const ts_model_options* options, ts_model** out_model) {
  if (out_model) *out_model = nullptr;
  return capi::guard("ts_model_load", [&] {
    capi::require(out_model, "out_model");
    capi::require(path, "path");
    const ts_model_options o = capi::read_options(options, ts_model_options_init, kModelOptionsMin, "ts_model_options");
    auto m = std::make_unique<ts_model>();
    m->log = o.log, m->log_user_data = o.log_user_data, m->log_level = o.log_level;
    ts::Model::LoadProgressFn progress;
    if (o.progress)
      progress = [&](uint64_t done, uint64_t total) {
        return o.progress(int64_t(done), int64_t(total), o.progress_user_data) == TS_CONTINUE;
      };
    try {
      m->model = ts::Model::load(path, progress);
    } catch (const ts::Error& e) {
      capi::log(m.get(), TS_LOG_ERROR, e.what());
      throw;
    }
    const ts::HParams& hp = m->model->hparams();
    m->arch = hp.arch_name;
    m->name = valid_utf8(hp.name);
    try {
      m->chat_format = ts::chat_format_name(ts::ChatTemplate::from_model(m->model->tokenizer().chat_template()).format());
    } catch (const ts::Error&) {
      m->chat_format.clear();  // unrecognised: sessions then need an explicit chat_format
    }
    for (const auto& t : m->model->file().tensors()) m->n_params += uint64_t(t.n_elements());
    capi::log(m.get(), TS_LOG_INFO,
              fmt::format("loaded {}: {} '{}', {} layers, {} parameters", path, m->arch, m->name, hp.n_layer, m->n_params));
    *out_model = m.release();
    return TS_OK;
  });
}

TS_API void ts_model_free(ts_model* model) { delete model; }

TS_API ts_status ts_model_get_info(const ts_model* model, ts_model_info* info) {
  return capi::guard("ts_model_get_info", [&] {
    const ts::Model& m = model_of(model);
    const ts::HParams& hp = m.hparams();
    ts_model_info full{};
    full.struct_size = sizeof full;
    full.n_vocab = hp.n_vocab, full.n_embd = hp.n_embd, full.n_layer = hp.n_layer, full.n_head = hp.n_head;
    full.n_head_kv = hp.n_head_kv, full.head_dim = hp.head_dim, full.n_ff = hp.n_ff, full.n_ctx_train = hp.n_ctx_train;
    full.bos_token = m.tokenizer().bos(), full.eos_token = m.tokenizer().eos();
    full.n_params = model->n_params;
    full.file_size = m.file().bytes().size();
    full.kv_bytes_per_token = m.kv_bytes_per_token();
    full.arch = model->arch.c_str(), full.name = model->name.c_str(), full.chat_format = model->chat_format.c_str();
    capi::write_struct(info, full, kModelInfoMin, "info");
    return TS_OK;
  });
}

TS_API ts_status ts_model_get_metadata(const ts_model* model, const char* key, char* buf, size_t capacity,
                                       size_t* needed) {
  return capi::guard("ts_model_get_metadata", [&] {
    const ts::Model& m = model_of(model);
    capi::require(key, "key");
    const ts::gguf::MetaValue* v = m.file().find(key);
    if (!v) capi::invalid(fmt::format("no metadata key '{}'", key));
    return capi::put_text(meta_text(*v), buf, capacity, needed);
  });
}

TS_API ts_status ts_tokenize(const ts_model* model, const char* text, size_t len, uint32_t flags, int32_t* tokens,
                             size_t capacity, size_t* needed) {
  return capi::guard("ts_tokenize", [&] {
    const ts::Tokenizer& tok = model_of(model).tokenizer();
    if (len > 0) capi::require(text, "text");
    if (flags & ~uint32_t(TS_TOKENIZE_ADD_BOS | TS_TOKENIZE_PARSE_SPECIAL)) capi::invalid(fmt::format("unknown flags {:#x}", flags));
    std::vector<int32_t> ids;
    if ((flags & TS_TOKENIZE_ADD_BOS) && tok.add_bos() && tok.bos() >= 0) ids.push_back(tok.bos());
    const std::vector<int32_t> body = tok.encode(std::string_view(text ? text : "", len), flags & TS_TOKENIZE_PARSE_SPECIAL);
    ids.insert(ids.end(), body.begin(), body.end());
    return capi::put_array(ids.data(), ids.size(), tokens, capacity, needed);
  });
}

TS_API ts_status ts_detokenize(const ts_model* model, const int32_t* tokens, size_t n_tokens, uint32_t flags, char* buf,
                               size_t capacity, size_t* needed) {
  return capi::guard("ts_detokenize", [&] {
    const ts::Tokenizer& tok = model_of(model).tokenizer();
    if (n_tokens > 0) capi::require(tokens, "tokens");
    if (flags & ~uint32_t(TS_DETOKENIZE_RENDER_SPECIAL)) capi::invalid(fmt::format("unknown flags {:#x}", flags));
    ts::TokenStreamDecoder dec(tok, flags & TS_DETOKENIZE_RENDER_SPECIAL);
    std::string text;
    for (size_t i = 0; i < n_tokens; ++i) {
      if (tokens[i] < 0 || tokens[i] >= tok.n_vocab())
        capi::invalid(fmt::format("token {} (index {}) is outside the vocabulary [0, {})", tokens[i], i, tok.n_vocab()));
      text += dec.push(tokens[i]);
    }
    text += dec.flush();
    return capi::put_text(text, buf, capacity, needed);
  });
}

}  // extern "C"
