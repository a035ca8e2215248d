// tokenselect info: what a model file holds.
#include <fmt/format.h>

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "gguf/gguf_file.hpp"
#include "tokenizer/tokenizer.hpp"

namespace cli {
namespace {

struct InfoArgs {
  std::string model = "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  bool json = false;
};

void info(const InfoArgs& a) {
  auto m = ts::Model::load(a.model);
  const ts::HParams& h = m->hparams();
  std::map<std::string, int> types;
  uint64_t weight_bytes = 0;
  for (const auto& t : m->file().tensors()) {
    ++types[ts::type_name(uint32_t(t.type))];
    weight_bytes += t.nbytes;
  }
  const ts::Tokenizer& tok = m->tokenizer();
  nlohmann::json j = {
      {"file", a.model},
      {"name", h.name},
      {"architecture", h.arch_name},
      {"gguf_version", m->file().version()},
      {"layers", h.n_layer},
      {"embedding", h.n_embd},
      {"heads", h.n_head},
      {"kv_heads", h.n_head_kv},
      {"head_dim", h.head_dim},
      {"feed_forward", h.n_ff},
      {"vocab", h.n_vocab},
      {"trained_context", h.n_ctx_train},
      {"rope_base", h.rope_base},
      {"rope_style", h.rope_style == ts::RopeStyle::adjacent ? "adjacent pairs" : "neox halves"},
      {"tied_embeddings", m->weights().output.data == m->weights().token_embd.data},
      {"tensors", m->file().tensors().size()},
      {"tensor_types", types},
      {"weight_bytes", weight_bytes},
      {"kv_cache_bytes_per_token", m->kv_bytes_per_token()},
      {"bos", tok.bos()},
      {"eos", tok.eos()},
      {"add_bos", tok.add_bos()},
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
