#include "model/hparams.hpp"

#include <fmt/format.h>

#include "gguf/gguf_file.hpp"
#include "util/error.hpp"

namespace ts {
namespace {

int32_t read_dim(const gguf::File& f, const std::string& key, int64_t lo, int64_t hi,
                 std::optional<int64_t> fallback = std::nullopt) {
  auto v = f.get_i64(key);
  if (!v) {
    if (fallback) return int32_t(*fallback);
    fail(Status::format, fmt::format("{}: missing metadata key '{}'", f.name(), key));
  }
  if (*v < lo || *v > hi)
    fail(Status::format, fmt::format("{}: metadata '{}' = {} is outside [{}, {}]", f.name(), key, *v, lo, hi));
  return int32_t(*v);
}

}  // namespace

HParams HParams::read(const gguf::File& f) {
  HParams h;
  auto arch = f.get_string("general.architecture");
  if (!arch) fail(Status::format, f.name() + ": missing metadata key 'general.architecture'");
  h.arch_name = std::string(*arch);
  if (h.arch_name == "llama") {
    h.arch = Arch::llama;
    h.rope_style = RopeStyle::adjacent;  // the converter permuted Q/K rows into pair order
  } else if (h.arch_name == "qwen2") {
    h.arch = Arch::qwen2;
    h.rope_style = RopeStyle::neox;
  } else {
    fail(Status::unsupported, fmt::format("{}: architecture '{}' is not supported (llama, qwen2)", f.name(), h.arch_name));
  }
  const std::string a = h.arch_name + ".";
  h.n_embd = read_dim(f, a + "embedding_length", 1, 1 << 16);
  h.n_layer = read_dim(f, a + "block_count", 1, 1024);
  h.n_head = read_dim(f, a + "attention.head_count", 1, 1024);
  h.n_head_kv = read_dim(f, a + "attention.head_count_kv", 1, h.n_head, h.n_head);
  h.n_ff = read_dim(f, a + "feed_forward_length", 1, 1 << 20);
  h.n_ctx_train = read_dim(f, a + "context_length", 1, 1 << 30, 4096);
  h.head_dim = read_dim(f, a + "attention.key_length", 2, 1024, h.n_embd / h.n_head);
  if (auto vl = f.get_i64(a + "attention.value_length"); vl && *vl != h.head_dim)
    fail(Status::unsupported, f.name() + ": value_length different from key_length is not supported");
  if (h.n_head % h.n_head_kv != 0)
    fail(Status::format, fmt::format("{}: head_count {} is not a multiple of head_count_kv {}", f.name(), h.n_head, h.n_head_kv));
  if (h.head_dim % 2 != 0) fail(Status::format, f.name() + ": attention head size must be even for RoPE");
  const int32_t rope_dims = read_dim(f, a + "rope.dimension_count", 2, 1024, h.head_dim);
  if (rope_dims != h.head_dim)
    fail(Status::unsupported, fmt::format("{}: partial RoPE ({} of {} dims) is not supported", f.name(), rope_dims, h.head_dim));
  if (auto s = f.get_string(a + "rope.scaling.type"); s && *s != "none")
    fail(Status::unsupported, fmt::format("{}: rope scaling '{}' is not supported", f.name(), *s));
  if (auto eps = f.get_f64(a + "attention.layer_norm_rms_epsilon")) h.rms_eps = float(*eps);
  if (auto base = f.get_f64(a + "rope.freq_base")) h.rope_base = float(*base);
  if (!(h.rms_eps > 0) || !(h.rope_base > 1))
    fail(Status::format, f.name() + ": rms epsilon or rope base out of range");
  auto tokens = f.find("tokenizer.ggml.tokens");
  h.n_vocab = tokens ? int32_t(tokens->count) : 0;
  if (auto nv = f.get_i64(a + "vocab_size"); nv && tokens && *nv != int64_t(tokens->count))
    fail(Status::format, fmt::format("{}: vocab_size {} differs from {} tokenizer tokens", f.name(), *nv, tokens->count));
  if (auto name = f.get_string("general.name")) h.name = std::string(*name);
  return h;
}

}  // namespace ts
