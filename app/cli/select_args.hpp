// Attention (TokenSelect) options shared by the tokenselect subcommands, and the one place
// that turns the command-line flags into a session.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cli_common.hpp"

namespace cli {

struct SelectArgs {
  std::string attention = "tokenselect";  // tokenselect | full
  std::string positions = "remap";        // remap | true
  int32_t k = 2048;
  int32_t n_init = 128;
  int32_t n_local = 512;
  float tau = 0.9f;
  bool no_cache = false;
  std::string scoring_keys = "cached";  // cached | fp8

  // with_attention = false for commands that pick the mode themselves (--modes).
  void add_to(CLI::App& app, bool with_attention = true);
  ts_select_settings settings() const;  // validated by the library when the session opens
};

ts_attention parse_attention_mode(const std::string& s);  // throws Error(TS_ERR_INVALID_ARG)
const char* attention_mode_name(ts_attention m);
// "tokenselect,full" -> modes, in order, without duplicates.
std::vector<ts_attention> parse_modes(const std::vector<std::string>& names);

// A session with the command's flags; run and chat also pass their system prompt and chat format.
SessionPtr open_session(const ts_model* m, const ModelArgs& ma, const SelectArgs& sa, const GenArgs* gen = nullptr);
// bench and eval: the same flags with the attention mode and context of one measurement.
SessionPtr open_session(const ts_model* m, const ModelArgs& ma, const SelectArgs& sa, ts_attention mode,
                        int64_t n_ctx);

}  // namespace cli
