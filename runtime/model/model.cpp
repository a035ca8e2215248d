#include "model/model.hpp"

#include <fmt/format.h>

#include "cpu/quant.hpp"
#include "gguf/gguf_file.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"

namespace ts {
namespace {

class Loader {
 public:
  explicit Loader(const gguf::File& f) : f_(f) {}

  const gguf::TensorInfo& tensor(const std::string& name) const {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    if (!t) fail(Status::format, fmt::format("{}: missing tensor '{}'", f_.name(), name));
    return *t;
  }

  void expect_shape(const gguf::TensorInfo& t, int64_t ne0, int64_t ne1) const {
    const int64_t n_dims_expected = ne1 == 1 ? 1 : 2;
    const bool ok = t.ne[0] == ne0 && t.ne[1] == ne1 && t.ne[2] == 1 && t.ne[3] == 1 &&
                    int64_t(t.n_dims) <= std::max<int64_t>(n_dims_expected, 2);
    if (!ok)
      fail(Status::format, fmt::format("{}: tensor '{}' has shape [{}, {}, {}, {}], expected [{}, {}]", f_.name(),
                                       t.name, t.ne[0], t.ne[1], t.ne[2], t.ne[3], ne0, ne1));
  }

  Weight matrix(const std::string& name, int64_t n_in, int64_t n_out) const {
    const gguf::TensorInfo& t = tensor(name);
    expect_shape(t, n_in, n_out);
    const TypeTraits* tt = type_traits(uint32_t(t.type));
    if (!tt || !tt->weight_supported)
      fail(Status::unsupported, fmt::format("{}: tensor '{}' has type {}, which is not supported for weights",
                                            f_.name(), name, type_name(uint32_t(t.type))));
    return Weight{t.type, n_in, n_out, size_t(row_bytes(t.type, n_in)), t.data};
  }

  std::vector<float> vector(const std::string& name, int64_t n) const {
    const gguf::TensorInfo& t = tensor(name);
    expect_shape(t, n, 1);
    if (t.type != GgmlType::F32 && t.type != GgmlType::F16 && t.type != GgmlType::BF16)
      fail(Status::unsupported, fmt::format("{}: tensor '{}' must be F32, F16 or BF16, not {}", f_.name(), name,
                                            type_name(uint32_t(t.type))));
    std::vector<float> v(static_cast<size_t>(n));
    kernels::dequantize_row(t.type, t.data, v.data(), n);
    return v;
  }

  bool has(const std::string& name) const { return f_.find_tensor(name) != nullptr; }

 private:
  const gguf::File& f_;
};

}  // namespace

Model::~Model() = default;

std::shared_ptr<const Model> Model::load(const std::string& path, const LoadProgressFn& progress) {
  std::shared_ptr<const gguf::File> file = gguf::File::open(path);
  if (!file->prefault(progress)) fail(Status::cancelled, fmt::format("{}: loading cancelled", path));
  return from_file(std::move(file));
}

std::shared_ptr<const Model> Model::from_file(std::shared_ptr<const gguf::File> file) {
  std::shared_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  const gguf::File& f = *m->file_;
  m->hp_ = HParams::read(f);
  m->tok_ = Tokenizer::load(f);
  HParams& h = m->hp_;
  if (h.n_vocab != m->tok_->n_vocab()) h.n_vocab = m->tok_->n_vocab();

  Loader L(f);
  ModelWeights& w = m->w_;
  w.token_embd = L.matrix("token_embd.weight", h.n_embd, h.n_vocab);
  w.output = L.has("output.weight") ? L.matrix("output.weight", h.n_embd, h.n_vocab) : w.token_embd;
  w.output_norm = L.vector("output_norm.weight", h.n_embd);
  if (L.has("rope_freqs.weight")) w.rope_freqs = L.vector("rope_freqs.weight", h.head_dim / 2);
  const bool bias = h.arch == Arch::qwen2;
  for (int32_t i = 0; i < h.n_layer; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    LayerWeights lw;
    lw.attn_norm = L.vector(p + "attn_norm.weight", h.n_embd);
    lw.ffn_norm = L.vector(p + "ffn_norm.weight", h.n_embd);
    lw.wq = L.matrix(p + "attn_q.weight", h.n_embd, h.q_dim());
    lw.wk = L.matrix(p + "attn_k.weight", h.n_embd, h.kv_dim());
    lw.wv = L.matrix(p + "attn_v.weight", h.n_embd, h.kv_dim());
    lw.wo = L.matrix(p + "attn_output.weight", h.q_dim(), h.n_embd);
    lw.w_gate = L.matrix(p + "ffn_gate.weight", h.n_embd, h.n_ff);
    lw.w_up = L.matrix(p + "ffn_up.weight", h.n_embd, h.n_ff);
    lw.w_down = L.matrix(p + "ffn_down.weight", h.n_ff, h.n_embd);
    if (bias) {
      lw.bq = L.vector(p + "attn_q.bias", h.q_dim());
      lw.bk = L.vector(p + "attn_k.bias", h.kv_dim());
      lw.bv = L.vector(p + "attn_v.bias", h.kv_dim());
    }
    w.layers.push_back(std::move(lw));
  }
  return m;
}

RopeParams Model::rope_params() const {
  return RopeParams{hp_.rope_style, hp_.head_dim, hp_.rope_base,
                    w_.rope_freqs.empty() ? nullptr : w_.rope_freqs.data()};
}

size_t Model::kv_bytes_per_token() const {
  return size_t(hp_.n_layer) * 2 * size_t(hp_.kv_dim()) * sizeof(uint16_t);  // K and V, fp16
}

}  // namespace ts
