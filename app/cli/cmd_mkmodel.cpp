// tokenselect mkmodel: a GGUF with random weights in a named model's shape, for speed work
// where carrying the real weights is impractical (weights change speed only through shape and
// type). The tokenizer is byte-level (256 byte tokens, the ChatML specials, unused fillers up
// to the shape's vocabulary), so prompts run; the text is noise.
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <map>

#include "cli_common.hpp"
#include "gguf_writer.hpp"

namespace cli {
namespace {

struct Shape {
  const char* arch;
  const char* pre;  // tokenizer.ggml.pre
  int32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
  float rope_base, rms_eps;
  bool qkv_bias, tied_output;
};

const std::map<std::string, Shape> kShapes = {
    {"smollm2-135m", {"llama", "smollm", 576, 30, 9, 3, 1536, 49152, 8192, 100000.f, 1e-5f, false, true}},
    {"llama3-8b", {"llama", "llama-bpe", 4096, 32, 32, 8, 14336, 128256, 8192, 500000.f, 1e-5f, false, false}},
    {"qwen2-7b", {"qwen2", "qwen2", 3584, 28, 28, 4, 18944, 152064, 32768, 1000000.f, 1e-6f, true, false}},
};

const std::map<std::string, TensorType> kTypes = {
    {"f16", TensorType::F16}, {"q8_0", TensorType::Q8_0}, {"q4_0", TensorType::Q4_0}};

struct MkArgs {
  std::string shape = "smollm2-135m";
  std::string type = "q8_0";
  std::string out;
  int32_t layers = 0;  // 0: the shape's
  uint64_t seed = 1;
};

// splitmix64: fast, seedable, good enough for noise weights.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  void fill(uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
      const uint64_t r = next();
      std::memcpy(p + i, &r, std::min<size_t>(8, n - i));
    }
  }
};

// fp16 bits of a positive normal float (the block scales below).
uint16_t half_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return uint16_t(((((u >> 23) & 0xff) - 127 + 15) << 10) | ((u >> 13) & 0x3ff));
}

// Weights of about +-0.04 (std ~0.02, a typical initialisation), so activations stay finite
// through every layer: Q8_0 d = 3e-4 with random int8; Q4_0 d = 5e-3 with random nibbles;
// F16 random signs with magnitudes in [2^-12, 2^-5).
void fill_random(const TensorSpec& t, Rng& rng, uint8_t* out) {
  const uint64_t n = t.bytes();
  switch (t.type) {
    case TensorType::F32: {  // norms: 1; biases: small
      const bool norm = t.name.find("norm") != std::string::npos;
      for (uint64_t i = 0; i < n / 4; ++i) {
        const float v = norm ? 1.f : float(int64_t(rng.next() % 2001) - 1000) * 2e-5f;
        std::memcpy(out + 4 * i, &v, 4);
      }
      return;
    }
    case TensorType::F16:
      for (uint64_t i = 0; i < n / 2; ++i) {
        const uint64_t r = rng.next();
        const uint16_t h = uint16_t(((r & 1) << 15) | ((3 + (r >> 1) % 7) << 10) | ((r >> 8) & 0x3ff));
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case TensorType::Q8_0:
    case TensorType::Q4_0: {
      const uint64_t bb = t.type == TensorType::Q8_0 ? 34 : 18;
      const uint16_t d = half_bits(t.type == TensorType::Q8_0 ? 3e-4f : 5e-3f);
      rng.fill(out, n);
      for (uint64_t b = 0; b < n; b += bb) std::memcpy(out + b, &d, 2);
      return;
    }
  }
}

// GPT-2's byte-to-unicode map: printable bytes stand for themselves, the rest are shifted
// past 255 — the byte tokens of a byte-level BPE vocabulary.
std::vector<std::string> byte_tokens() {
  std::vector<std::string> out(256);
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + shifted++);
    std::string s;
    if (cp < 0x80) s += char(cp);
    else s += char(0xC0 | (cp >> 6)), s += char(0x80 | (cp & 0x3F));
    out[size_t(b)] = s;
  }
  return out;
}

GgufWriter describe(const std::string& shape_name, const Shape& s, TensorType wt, int32_t layers) {
  GgufWriter w;
  const std::string a = s.arch;
  const int32_t head_dim = s.n_embd / s.n_head;
  w.add("general.architecture", std::string(a));
  w.add("general.name", fmt::format("synthetic {} ({} random weights)", shape_name, wt == TensorType::F16 ? "F16" : wt == TensorType::Q8_0 ? "Q8_0" : "Q4_0"));
  w.add(a + ".context_length", uint32_t(s.n_ctx));
  w.add(a + ".embedding_length", uint32_t(s.n_embd));
  w.add(a + ".block_count", uint32_t(layers));
  w.add(a + ".feed_forward_length", uint32_t(s.n_ff));
  w.add(a + ".attention.head_count", uint32_t(s.n_head));
  w.add(a + ".attention.head_count_kv", uint32_t(s.n_head_kv));
  w.add(a + ".attention.layer_norm_rms_epsilon", s.rms_eps);
  w.add(a + ".rope.freq_base", s.rope_base);
  w.add(a + ".rope.dimension_count", uint32_t(head_dim));
  w.add(a + ".vocab_size", uint32_t(s.n_vocab));

  std::vector<std::string> tokens = byte_tokens();
  std::vector<int32_t> types(256, 1);  // normal
  for (const char* special : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    tokens.emplace_back(special);
    types.push_back(3);  // control
  }
  while (int32_t(tokens.size()) < s.n_vocab) {
    tokens.push_back(fmt::format("<|unused_{}|>", tokens.size()));
    types.push_back(5);  // unused
  }
  w.add("tokenizer.ggml.model", std::string("gpt2"));
  w.add("tokenizer.ggml.pre", std::string(s.pre));
  w.add("tokenizer.ggml.tokens", MetaArray{std::move(tokens)});
  w.add("tokenizer.ggml.token_type", MetaArray{std::move(types)});
  w.add("tokenizer.ggml.merges", MetaArray{std::vector<std::string>{}});
  w.add("tokenizer.ggml.bos_token_id", uint32_t(256));
  w.add("tokenizer.ggml.eos_token_id", uint32_t(258));
  w.add("tokenizer.ggml.add_bos_token", false);
  w.add("tokenizer.chat_template",
        std::string("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"));

  const uint64_t E = uint64_t(s.n_embd), Q = uint64_t(s.n_head) * uint64_t(head_dim),
                 KV = uint64_t(s.n_head_kv) * uint64_t(head_dim), F = uint64_t(s.n_ff), V = uint64_t(s.n_vocab);
  w.add_tensor({"token_embd.weight", {E, V}, wt});
  w.add_tensor({"output_norm.weight", {E}, TensorType::F32});
  if (!s.tied_output) w.add_tensor({"output.weight", {E, V}, wt});
  for (int32_t i = 0; i < layers; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    w.add_tensor({p + "attn_norm.weight", {E}, TensorType::F32});
    w.add_tensor({p + "attn_q.weight", {E, Q}, wt});
    w.add_tensor({p + "attn_k.weight", {E, KV}, wt});
    w.add_tensor({p + "attn_v.weight", {E, KV}, wt});
    if (s.qkv_bias) {
      w.add_tensor({p + "attn_q.bias", {Q}, TensorType::F32});
      w.add_tensor({p + "attn_k.bias", {KV}, TensorType::F32});
      w.add_tensor({p + "attn_v.bias", {KV}, TensorType::F32});
    }
    w.add_tensor({p + "attn_output.weight", {Q, E}, wt});
    w.add_tensor({p + "ffn_norm.weight", {E}, TensorType::F32});
    w.add_tensor({p + "ffn_gate.weight", {E, F}, wt});
    w.add_tensor({p + "ffn_up.weight", {E, F}, wt});
    w.add_tensor({p + "ffn_down.weight", {F, E}, wt});
  }
  return w;
}

void mkmodel(const MkArgs& a) {
  const Shape& s = kShapes.at(a.shape);
  const TensorType wt = kTypes.at(a.type);
  const int32_t layers = a.layers > 0 ? a.layers : s.n_layer;
  const GgufWriter w = describe(a.shape, s, wt, layers);
  uint64_t total = 0;
  for (const TensorSpec& t : w.tensors()) total += t.bytes();
  fmt::print(stderr, "writing {} ({} layers, {} tensors, {:.2f} GiB of {} weights)\n", a.out, layers,
             w.tensors().size(), double(total) / double(1ull << 30), a.type);
  Rng rng{a.seed};
  w.write(
      a.out, [&](size_t i, uint8_t* out) { fill_random(w.tensors()[i], rng, out); },
      [&](size_t done, size_t n) {
        if (interrupted()) throw Error(TS_CANCELLED, "interrupted; the partial file was removed");
        fmt::print(stderr, "\r  {}/{} tensors", done, n);
        if (done == n) fmt::print(stderr, "\n");
      });
}

}  // namespace

void add_mkmodel_command(CLI::App& app) {
  auto args = std::make_shared<MkArgs>();
  CLI::App* cmd = app.add_subcommand("mkmodel", "write a GGUF with random weights in a named model's shape (speed work)");
  std::vector<std::string> shapes, types;
  for (const auto& [name, _] : kShapes) shapes.push_back(name);
  for (const auto& [name, _] : kTypes) types.push_back(name);
  cmd->add_option("--shape", args->shape, "model shape")->check(CLI::IsMember(shapes))->capture_default_str();
  cmd->add_option("--type", args->type, "weight type of the matrices")->check(CLI::IsMember(types))->capture_default_str();
  cmd->add_option("-o,--out", args->out, "output .gguf file")->required();
  cmd->add_option("--layers", args->layers, "layers (0: the shape's; fewer for quick tests)")->capture_default_str();
  cmd->add_option("--seed", args->seed, "seed of the random weights")->capture_default_str();
  cmd->callback([args] { mkmodel(*args); });
}

}  // namespace cli
