// Hyperparameters of a Llama-family model, read from GGUF metadata and checked for sanity.
#pragma once
#include <cstdint>
#include <string>

#include "backend/backend.hpp"

namespace ts::gguf { class File; }

namespace ts {

enum class Arch { llama, qwen2 };

struct HParams {
  Arch arch = Arch::llama;
  std::string arch_name;
  int32_t n_vocab = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t n_ff = 0;
  int32_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.f;
  RopeStyle rope_style = RopeStyle::adjacent;
  std::string name;  // general.name

  int32_t q_dim() const { return n_head * head_dim; }
  int32_t kv_dim() const { return n_head_kv * head_dim; }

  // Throws ts::Error(format / unsupported) naming the offending key.
  static HParams read(const gguf::File& f);
};

}  // namespace ts
