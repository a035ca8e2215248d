#include "select_args.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "util/error.hpp"

namespace cli {

void SelectArgs::add_to(CLI::App& app, bool with_attention) {
  if (with_attention)
    app.add_option("--attention", attention, "attention policy: tokenselect or full (dense)")
        ->check(CLI::IsMember({"tokenselect", "full"}))
        ->capture_default_str();
  app.add_option("--k", k, "TokenSelect: tokens selected per layer per step")->capture_default_str();
  app.add_option("--n-init", n_init, "TokenSelect: initial tokens (sinks) always attended")->capture_default_str();
  app.add_option("--n-local", n_local, "TokenSelect: recent tokens always attended")->capture_default_str();
  app.add_option("--tau", tau, "TokenSelect: cosine threshold for reusing the last selection")->capture_default_str();
  app.add_flag("--no-select-cache", no_cache, "TokenSelect: select afresh at every step");
  app.add_option("--positions", positions, "TokenSelect RoPE positions: remap (rank in the attention set) or true")
      ->check(CLI::IsMember({"remap", "true"}))
      ->capture_default_str();
}

ts::AttentionMode parse_attention_mode(const std::string& s) {
  if (s == "tokenselect") return ts::AttentionMode::tokenselect;
  if (s == "full" || s == "dense") return ts::AttentionMode::full;
  throw ts::Error(ts::Status::invalid_arg, fmt::format("unknown attention mode '{}' (tokenselect or full)", s));
}

const char* attention_mode_name(ts::AttentionMode m) { return m == ts::AttentionMode::full ? "full" : "tokenselect"; }

std::vector<ts::AttentionMode> parse_modes(const std::vector<std::string>& names) {
  std::vector<ts::AttentionMode> out;
  for (const std::string& n : names) {
    const ts::AttentionMode m = parse_attention_mode(n);
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  }
  if (out.empty()) throw ts::Error(ts::Status::invalid_arg, "--modes: give at least one of tokenselect, full");
  return out;
}

ts::SelectOptions SelectArgs::select_options() const {
  ts::SelectOptions o;
  o.mode = parse_attention_mode(attention);
  if (positions == "remap")
    o.positions = ts::PositionMode::remap;
  else if (positions == "true" || positions == "true_pos")
    o.positions = ts::PositionMode::true_pos;
  else
    throw ts::Error(ts::Status::invalid_arg, fmt::format("unknown --positions '{}' (remap or true)", positions));
  o.k = k;
  o.n_init = n_init;
  o.n_local = n_local;
  o.tau = tau;
  o.cache = !no_cache;
  o.validate();
  return o;
}

void SelectArgs::apply(ts::SessionOptions& o) const {
  o.select = select_options();
  if (o.select.mode == ts::AttentionMode::tokenselect && o.chunk > o.select.n_local) o.chunk = o.select.n_local;
}

}  // namespace cli
