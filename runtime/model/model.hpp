// An immutable loaded model: the mapped GGUF file, hyperparameters, weights and tokenizer.
// Shareable across threads and sessions.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "model/hparams.hpp"

namespace ts::gguf { class File; }

namespace ts {

class Tokenizer;

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> bq, bk, bv;  // qwen2 only; empty otherwise
  Weight wq, wk, wv, wo, w_gate, w_up, w_down;
};

struct ModelWeights {
  Weight token_embd;
  Weight output;  // token_embd when the model ties embeddings
  std::vector<float> output_norm;
  std::vector<float> rope_freqs;  // empty unless rope_freqs.weight is present
  std::vector<LayerWeights> layers;
};

class Model {
 public:
  // Maps and validates the file, checks every tensor's presence, type and shape against the
  // hyperparameters, and loads the tokenizer. Throws ts::Error with a precise message.
  // Reads the file into memory first, reporting progress(done, total bytes); progress returning
  // false cancels with Error(cancelled).
  using LoadProgressFn = std::function<bool(uint64_t done, uint64_t total)>;
  static std::shared_ptr<const Model> load(const std::string& path, const LoadProgressFn& progress = {});
  static std::shared_ptr<const Model> from_file(std::shared_ptr<const gguf::File> file);

  const HParams& hparams() const { return hp_; }
  const ModelWeights& weights() const { return w_; }
  const Tokenizer& tokenizer() const { return *tok_; }
  const gguf::File& file() const { return *file_; }
  RopeParams rope_params() const;
  // Bytes of KV cache one token takes (all layers, K before RoPE and V, fp16).
  size_t kv_bytes_per_token() const;

  ~Model();

 private:
  Model() = default;
  std::shared_ptr<const gguf::File> file_;
  HParams hp_;
  ModelWeights w_;
  std::unique_ptr<Tokenizer> tok_;
};

}  // namespace ts
