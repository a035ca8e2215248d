// tokenselect info: what a model file holds.
#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"

namespace cli {
namespace {

struct InfoArgs {
  std::string model = "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  bool json = false;
};

// The GGUF header's version and tensor count (bytes 4..24; the library validated the file).
std::pair<uint32_t, uint64_t> gguf_header(const std::string& path) {
  char h[24] = {};
  std::ifstream(path, std::ios::binary).read(h, sizeof h);
  uint32_t version = 0;
  uint64_t n_tensors = 0;
  std::memcpy(&version, h + 4, 4);
  std::memcpy(&n_tensors, h + 8, 8);
  return {version, n_tensors};
}

void info(const InfoArgs& a) {
  ModelPtr m = load_model(a.model, true);
  const ts_model_info h = model_info(m.get());
  const std::string arch = h.arch;
  const auto rope_base = metadata(m.get(), (arch + ".rope.freq_base").c_str());
  const auto [version, n_tensors] = gguf_header(a.model);
  nlohmann::json j = {
      {"file", a.model},
      {"name", h.name},
      {"architecture", arch},
      {"gguf_version", version},
      {"layers", h.n_layer},
      {"embedding", h.n_embd},
      {"heads", h.n_head},
      {"kv_heads", h.n_head_kv},
      {"head_dim", h.head_dim},
      {"feed_forward", h.n_ff},
      {"vocab", h.n_vocab},
      {"trained_context", h.n_ctx_train},
      {"rope_base", rope_base ? std::stof(*rope_base) : 10000.f},  // the runtime's default
      // llama GGUFs store Q/K rows permuted into pairs; qwen2 rotates halves (NeoX).
      {"rope_style", arch == "qwen2" ? "neox halves" : "adjacent pairs"},
      {"tensors", n_tensors},
      {"parameters", h.n_params},
      {"file_bytes", h.file_size},
      {"kv_cache_bytes_per_token", h.kv_bytes_per_token},
      {"chat_format", h.chat_format},
      {"bos", h.bos_token},
      {"eos", h.eos_token},
      // Tokenizing nothing with ADD_BOS yields BOS exactly when the model asks for it.
      {"add_bos", !tokenize(m.get(), "", TS_TOKENIZE_ADD_BOS).empty()},
  };
  if (a.json) {
    std::cout << j.dump(2) << "\n";
    return;
  }
  for (auto& [k, v] : j.items()) fmt::print("{:<26} {}\n", k, v.is_string() ? v.get<std::string>() : v.dump());
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* cmd = app.add_subcommand("info", "print a model's metadata");
  cmd->add_option("-m,--model", args->model, "GGUF model file")->capture_default_str();
  cmd->add_flag("--json", args->json, "JSON output");
  cmd->callback([args] { info(*args); });
}

}  // namespace cli
