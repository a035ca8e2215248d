// tokenselect eval passkey: passkey retrieval at several lengths and depths, TokenSelect against
// dense attention in the same run (DESIGN.md "How we know it works").
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "passkey.hpp"
#include "select_args.hpp"

namespace cli {
namespace {

struct PasskeyArgs {
  ModelArgs model;
  SelectArgs select;
  std::vector<int64_t> lengths{4096, 8192, 16384, 32768};
  std::vector<double> depths{0, 0.25, 0.5, 0.75, 1};
  int n_depths = 0;  // > 0: that many depths evenly spread over [0, 1], replacing --depths
  std::vector<std::string> modes{"tokenselect", "full"};
  int trials = 1;
  int gen = 8;
  int split_last = 0;  // > 0: prefill the last N prompt tokens as their own chunk
  uint64_t seed = 42;
  bool json = false;
  bool verbose = false;
  bool quiet = false;
};

struct Trial {
  int64_t length = 0;  // requested
  int64_t tokens = 0;  // actual prompt tokens
  double depth = 0;
  int depth_index = 0;
  ts_attention mode{};
  int trial = 0;
  int key = 0;
  std::string output;
  bool correct = false;
  double prefill_s = 0;
};

std::vector<double> resolve_depths(const PasskeyArgs& a) {
  if (a.n_depths <= 0) return a.depths;
  if (a.n_depths == 1) return {0.5};
  std::vector<double> d;
  for (int i = 0; i < a.n_depths; ++i) d.push_back(double(i) / double(a.n_depths - 1));
  return d;
}

// What ends a greedy continuation: EOS and the control tokens that end a turn in the chat
// formats we know (the runtime's end-of-generation set).
std::vector<int32_t> end_tokens(const ts_model* m) {
  std::vector<int32_t> end;
  if (const int32_t eos = model_info(m).eos_token; eos >= 0) end.push_back(eos);
  for (const char* text : {"<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>", "<end_of_turn>",
                           "<|eom_id|>"}) {
    const std::vector<int32_t> ids = tokenize(m, text, TS_TOKENIZE_PARSE_SPECIAL);
    // A control token renders as nothing without RENDER_SPECIAL.
    if (ids.size() == 1 && detokenize(m, ids, 0).empty()) end.push_back(ids[0]);
  }
  return end;
}

// Greedy continuation of whatever the session holds, up to n tokens or an end token.
std::string greedy(const ts_model* m, ts_session* s, const std::vector<int32_t>& end, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t next = argmax_token(s);
    if (std::find(end.begin(), end.end(), next) != end.end()) break;
    out.push_back(next);
    const ts_session_stats st = session_stats(s);
    if (i + 1 < n && st.n_tokens < st.n_ctx) check(ts_session_prefill_tokens(s, &next, 1, nullptr, nullptr));
    else break;
  }
  return detokenize(m, out, 0);
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '|') c = ' ';
  return s;
}

void passkey_eval(const PasskeyArgs& a) {
  for (int64_t len : a.lengths)
    if (len < 64) throw Error(TS_ERR_INVALID_ARG, "eval passkey: lengths must be >= 64");
  if (a.trials < 1) throw Error(TS_ERR_INVALID_ARG, "eval passkey: --trials must be >= 1");
  if (a.gen < 1) throw Error(TS_ERR_INVALID_ARG, "eval passkey: --gen must be >= 1");
  const std::vector<double> depths = resolve_depths(a);
  for (double d : depths)
    if (!(d >= 0 && d <= 1)) throw Error(TS_ERR_INVALID_ARG, "eval passkey: depths must be in [0, 1]");
  const std::vector<ts_attention> modes = parse_modes(a.modes);
  const bool progress_on = !a.quiet;

  ModelPtr model = load_model(a.model.model, a.quiet);
  const ts_model* m = model.get();
  const std::vector<int32_t> end = end_tokens(m);
  const passkey::TokenizeFn tokenize_prompt = [m](const std::string& text) {
    return tokenize(m, text, TS_TOKENIZE_ADD_BOS | TS_TOKENIZE_PARSE_SPECIAL);
  };
  std::vector<Trial> results;

  for (int64_t len : a.lengths) {
    // The prompts of this length, shared by every mode (same keys, same text).
    std::vector<passkey::Prompt> prompts;
    std::vector<Trial> proto;
    int64_t longest = 0;
    for (size_t di = 0; di < depths.size(); ++di)
      for (int t = 0; t < a.trials; ++t) {
        const int key = passkey::make_key(a.seed, len, int(di), t);
        prompts.push_back(passkey::build(tokenize_prompt, len, depths[di], key));
        Trial tr;
        tr.length = len;
        tr.tokens = int64_t(prompts.back().tokens.size());
        tr.depth = depths[di];
        tr.depth_index = int(di);
        tr.trial = t;
        tr.key = key;
        proto.push_back(tr);
        longest = std::max(longest, tr.tokens);
      }
    for (ts_attention mode : modes) {
      SessionPtr session = open_session(m, a.model, a.select, mode, longest + a.gen + 64);
      ts_session* s = session.get();
      InterruptTarget target(s);
      for (size_t i = 0; i < prompts.size(); ++i) {
        Trial tr = proto[i];
        tr.mode = mode;
        if (progress_on)
          fmt::print(stderr, "passkey: length {} ({} tokens) {} depth {:.2f} trial {}\n", len, tr.tokens,
                     attention_mode_name(mode), tr.depth, tr.trial + 1);
        check(ts_session_truncate_tokens(s, 0));
        ProgressLine progress(progress_on);
        const double t0 = now_seconds();
        const std::vector<int32_t>& all = prompts[i].tokens;
        const size_t tail = a.split_last > 0 ? std::min(size_t(a.split_last), all.size() - 1) : 0;
        progress.total_override = int64_t(all.size());
        progress.update(0, int64_t(all.size()));
        const ts_status ps = ts_session_prefill_tokens(s, all.data(), all.size() - tail, ProgressLine::callback, &progress);
        progress.finish();
        check(ps);
        if (tail > 0) check(ts_session_prefill_tokens(s, all.data() + all.size() - tail, tail, nullptr, nullptr));
        tr.prefill_s = now_seconds() - t0;
        tr.output = greedy(m, s, end, a.gen);
        tr.correct = passkey::found(tr.output, tr.key);
        if (progress_on)
          fmt::print(stderr, "  key {} -> \"{}\" {} ({:.1f} s prefill)\n", tr.key, one_line(tr.output),
                     tr.correct ? "FOUND" : "missed", tr.prefill_s);
        results.push_back(tr);
      }
    }
  }

  // (length, mode) -> correct, total
  auto tally = [&](int64_t len, ts_attention mode, int depth_index) {
    std::pair<int, int> c{0, 0};
    for (const Trial& t : results)
      if (t.length == len && t.mode == mode && (depth_index < 0 || t.depth_index == depth_index)) {
        c.first += t.correct;
        c.second += 1;
      }
    return c;
  };

  if (a.json) {
    nlohmann::json summary = nlohmann::json::array(), trials = nlohmann::json::array();
    for (int64_t len : a.lengths)
      for (ts_attention mode : modes) {
        const auto [c, n] = tally(len, mode, -1);
        summary.push_back({{"length", len}, {"mode", attention_mode_name(mode)}, {"correct", c}, {"total", n},
                           {"accuracy", n ? double(c) / n : 0.0}});
      }
    for (const Trial& t : results)
      trials.push_back({{"length", t.length},
                        {"prompt_tokens", t.tokens},
                        {"depth", t.depth},
                        {"mode", attention_mode_name(t.mode)},
                        {"trial", t.trial},
                        {"key", t.key},
                        {"output", t.output},
                        {"correct", t.correct},
                        {"prefill_s", t.prefill_s}});
    std::cout << nlohmann::json{{"model", a.model.model},
                                {"trained_context", model_info(m).n_ctx_train},
                                {"split_last", a.split_last},
                                {"summary", summary},
                                {"trials", trials}}
                     .dump(2)
              << "\n";
    return;
  }

  fmt::print("| length |");
  for (ts_attention mode : modes) fmt::print(" {} |", attention_mode_name(mode));
  fmt::print("\n|-------:|");
  for (size_t i = 0; i < modes.size(); ++i) fmt::print("------:|");
  fmt::print("\n");
  for (int64_t len : a.lengths) {
    fmt::print("| {} |", len);
    for (ts_attention mode : modes) {
      const auto [c, n] = tally(len, mode, -1);
      fmt::print(" {}/{} |", c, n);
    }
    fmt::print("\n");
  }
  fmt::print("\npasskey retrieval, correct/total over {} depth(s) x {} trial(s); model trained context {}.\n",
             depths.size(), a.trials, model_info(m).n_ctx_train);
  if (a.split_last > 0) fmt::print("the last {} prompt tokens were prefilled as their own chunk.\n", a.split_last);

  if (a.verbose) {
    fmt::print("\n| length | depth |");
    for (ts_attention mode : modes) fmt::print(" {} |", attention_mode_name(mode));
    fmt::print("\n|-------:|------:|");
    for (size_t i = 0; i < modes.size(); ++i) fmt::print("------|");
    fmt::print("\n");
    for (int64_t len : a.lengths)
      for (size_t di = 0; di < depths.size(); ++di) {
        fmt::print("| {} | {:.2f} |", len, depths[di]);
        for (ts_attention mode : modes) {
          const auto [c, n] = tally(len, mode, int(di));
          std::string cell = fmt::format("{}/{}", c, n);
          if (a.trials == 1)
            for (const Trial& t : results)
              if (t.length == len && t.mode == mode && t.depth_index == int(di))
                cell += fmt::format(" (key {}: \"{}\")", t.key, one_line(t.output));
          fmt::print(" {} |", cell);
        }
        fmt::print("\n");
      }
  }
}

}  // namespace

void add_eval_command(CLI::App& app) {
  CLI::App* eval = app.add_subcommand("eval", "accuracy evaluations (passkey retrieval)");
  eval->require_subcommand(1);
  auto args = std::make_shared<PasskeyArgs>();
  CLI::App* cmd = eval->add_subcommand("passkey", "find a 5-digit key hidden in filler text, TokenSelect vs dense");
  args->model.add_to(*cmd);
  args->select.add_to(*cmd, /*with_attention=*/false);
  cmd->add_option("--lengths", args->lengths, "prompt lengths in tokens")->delimiter(',')->capture_default_str();
  cmd->add_option("--depths", args->depths, "needle depths in [0, 1]")->delimiter(',')->capture_default_str();
  cmd->add_option("--n-depths", args->n_depths, "that many depths evenly over [0, 1] (replaces --depths)");
  cmd->add_option("--modes", args->modes, "attention modes to compare: tokenselect, full")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--trials", args->trials, "keys per (length, depth)")->capture_default_str();
  cmd->add_option("--gen", args->gen, "tokens generated greedily after the question")->capture_default_str();
  cmd->add_option("--split-last", args->split_last,
                  "prefill the last N prompt tokens (the question) as a chunk of their own, so TokenSelect's "
                  "chunk fingerprint is the question's (0: one ordinary chunked prefill)")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "seed for the keys")->capture_default_str();
  cmd->add_flag("--json", args->json, "JSON output (summary and every trial)");
  cmd->add_flag("-v,--verbose", args->verbose, "also print per-depth results with the generated text");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress on stderr");
  cmd->callback([args] { passkey_eval(*args); });
}

}  // namespace cli
