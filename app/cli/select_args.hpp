// Attention (TokenSelect) options shared by the tokenselect subcommands.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "engine/session.hpp"
#include "select/select_options.hpp"

namespace cli {

struct SelectArgs {
  std::string attention = "tokenselect";  // tokenselect | full
  std::string positions = "remap";        // remap | true
  int32_t k = 2048;
  int32_t n_init = 128;
  int32_t n_local = 512;
  float tau = 0.9f;
  bool no_cache = false;

  // with_attention = false for commands that pick the mode themselves (--modes).
  void add_to(CLI::App& app, bool with_attention = true);
  ts::SelectOptions select_options() const;  // validated
  // Sets o.select; lowers o.chunk to n_local under TokenSelect (a chunk must fit the window).
  void apply(ts::SessionOptions& o) const;
};

ts::AttentionMode parse_attention_mode(const std::string& s);  // throws ts::Error(invalid_arg)
const char* attention_mode_name(ts::AttentionMode m);
// "tokenselect,full" -> modes, in order, without duplicates.
std::vector<ts::AttentionMode> parse_modes(const std::vector<std::string>& names);

}  // namespace cli
