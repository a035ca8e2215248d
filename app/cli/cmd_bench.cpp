// tokenselect bench: prefill and decode speed at several context lengths, TokenSelect against
// dense attention in the same run, printed as one table (DESIGN.md "How we know it works").
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "cli_common.hpp"
#include "select_args.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"

namespace cli {
namespace {

struct BenchArgs {
  ModelArgs model;
  SelectArgs select;
  std::vector<int64_t> contexts{512, 2048, 8192};
  std::vector<std::string> modes{"tokenselect", "full"};
  int gen = 32;
  int64_t base_context = 64;  // reference context for the attention-time estimate
  bool json = false;
};

struct Row {
  int64_t context = 0;
  ts::AttentionMode mode{};
  double prefill_tps = 0, ttft_s = 0, decode_tps = 0;
  double step_ms = 0;       // mean decode step
  double attention_ms = 0;  // step_ms minus the step at base_context, same mode
  std::optional<double> hit_rate;  // selection cache, over the decode steps; none when nothing was selected
  int64_t cache_hits = 0, cache_misses = 0, selecting_steps = 0, dense_steps = 0;
  size_t kv_bytes_per_token = 0;
};

// Ordinary (non-special) tokens in a fixed pseudo-random order: speed depends on shapes, not text.
std::vector<int32_t> bench_tokens(const ts::Tokenizer& tok, int64_t n) {
  std::vector<int32_t> pool;
  for (int32_t i = 0; i < tok.n_vocab(); ++i)
    if (tok.type(i) == ts::TokenType::normal) pool.push_back(i);
  std::mt19937 rng(1234);
  std::vector<int32_t> out(static_cast<size_t>(n));
  for (auto& t : out) t = pool[rng() % pool.size()];
  return out;
}

Row measure(const std::shared_ptr<const ts::Model>& m, const BenchArgs& a, int64_t ctx, ts::AttentionMode mode) {
  ts::SessionOptions so = a.model.session_options();
  SelectArgs sel = a.select;
  sel.attention = attention_mode_name(mode);
  sel.apply(so);
  so.n_ctx = ctx + a.gen + 1;
  ts::Session s(m, so);
  set_interrupt_target(&s);
  const std::vector<int32_t> prompt = bench_tokens(m->tokenizer(), ctx);
  const int32_t nv = m->hparams().n_vocab;
  const double t0 = now_seconds();
  s.prefill(prompt);
  int32_t next = int32_t(std::max_element(s.logits(), s.logits() + nv) - s.logits());
  const double t1 = now_seconds();
  s.policy().reset_stats();
  for (int i = 0; i < a.gen; ++i) {
    s.prefill(std::span<const int32_t>(&next, 1));
    next = int32_t(std::max_element(s.logits(), s.logits() + nv) - s.logits());
  }
  const double t2 = now_seconds();
  set_interrupt_target(nullptr);
  Row r;
  r.context = ctx;
  r.mode = mode;
  r.prefill_tps = double(ctx) / (t1 - t0);
  r.ttft_s = t1 - t0;
  r.decode_tps = a.gen / (t2 - t1);
  r.step_ms = 1000.0 * (t2 - t1) / a.gen;
  const ts::SelectStats& st = s.policy().stats();
  r.cache_hits = st.cache_hits;
  r.cache_misses = st.cache_misses;
  r.selecting_steps = st.selecting_steps;
  r.dense_steps = st.dense_steps;
  if (mode == ts::AttentionMode::tokenselect && st.cache_hits + st.cache_misses > 0)
    r.hit_rate = double(st.cache_hits) / double(st.cache_hits + st.cache_misses);
  r.kv_bytes_per_token = m->kv_bytes_per_token();
  return r;
}

void bench(const BenchArgs& a) {
  if (a.gen < 1) throw ts::Error(ts::Status::invalid_arg, "bench: --gen must be >= 1");
  for (int64_t ctx : a.contexts)
    if (ctx < 1) throw ts::Error(ts::Status::invalid_arg, "bench: contexts must be >= 1");
  const std::vector<ts::AttentionMode> modes = parse_modes(a.modes);
  auto m = load_model(a.model.model, a.json);

  // Decode step time at a tiny context, per mode: what a step costs with (almost) no attention.
  std::vector<double> base_ms;
  for (ts::AttentionMode mode : modes) {
    fmt::print(stderr, "baseline: context {} {} ...\n", a.base_context, attention_mode_name(mode));
    base_ms.push_back(measure(m, a, a.base_context, mode).step_ms);
  }
  std::vector<Row> rows;
  for (int64_t ctx : a.contexts)
    for (size_t i = 0; i < modes.size(); ++i) {
      fmt::print(stderr, "context {} {} ...\n", ctx, attention_mode_name(modes[i]));
      Row r = measure(m, a, ctx, modes[i]);
      r.attention_ms = std::max(0.0, r.step_ms - base_ms[i]);
      rows.push_back(r);
    }

  if (a.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const Row& r : rows)
      j.push_back({{"context", r.context},
                   {"attention", attention_mode_name(r.mode)},
                   {"prefill_tokens_per_s", r.prefill_tps},
                   {"time_to_first_token_s", r.ttft_s},
                   {"decode_tokens_per_s", r.decode_tps},
                   {"decode_step_ms", r.step_ms},
                   {"attention_ms_per_decode_step", r.attention_ms},
                   {"attention_ms_method", fmt::format("decode step at this context minus at context {}", a.base_context)},
                   {"selection_cache_hit_rate", r.hit_rate ? nlohmann::json(*r.hit_rate) : nlohmann::json(nullptr)},
                   {"selection_cache_hits", r.cache_hits},
                   {"selection_cache_misses", r.cache_misses},
                   {"selecting_layer_steps", r.selecting_steps},
                   {"dense_layer_steps", r.dense_steps},
                   {"kv_bytes_per_token", r.kv_bytes_per_token}});
    std::cout << j.dump(2) << "\n";
    return;
  }
  fmt::print(
      "| context | attention   | prefill tok/s | time to first token (s) | decode tok/s | attention ms/decode step* | "
      "selection-cache hit rate | KV bytes/token |\n");
  fmt::print(
      "|--------:|:------------|--------------:|------------------------:|-------------:|--------------------------:|"
      "-------------------------:|---------------:|\n");
  for (const Row& r : rows) {
    const std::string hit = r.hit_rate ? fmt::format("{:.1f}%", 100.0 * *r.hit_rate)
                                       : (r.mode == ts::AttentionMode::full ? "-" : "n/a (dense)");
    fmt::print("| {:>7} | {:<11} | {:>13.1f} | {:>23.3f} | {:>12.2f} | {:>25.2f} | {:>24} | {:>14} |\n", r.context,
               attention_mode_name(r.mode), r.prefill_tps, r.ttft_s, r.decode_tps, r.attention_ms, hit,
               r.kv_bytes_per_token);
  }
  fmt::print("\n* estimated: mean decode step at this context minus the mean decode step at context {} in the same mode",
             a.base_context);
  for (size_t i = 0; i < modes.size(); ++i)
    fmt::print("{}{} {:.2f} ms", i ? ", " : " (", attention_mode_name(modes[i]), base_ms[i]);
  fmt::print("); {} decode steps per row. Hit rate: selection-cache hits / (hits + misses) over the decode steps;\n"
             "n/a (dense) where the context fits n_init + k + n_local and TokenSelect attends everything.\n",
             a.gen);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "measure prefill and decode speed, TokenSelect vs dense");
  args->model.add_to(*cmd);
  args->select.add_to(*cmd, /*with_attention=*/false);
  cmd->add_option("--contexts", args->contexts, "context lengths to measure")->delimiter(',')->capture_default_str();
  cmd->add_option("--modes", args->modes, "attention modes: tokenselect, full")->delimiter(',')->capture_default_str();
  cmd->add_option("--gen", args->gen, "tokens to decode at each length")->capture_default_str();
  cmd->add_option("--base-context", args->base_context, "context of the reference decode step for attention time")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "JSON output (array of rows)");
  cmd->callback([args] { bench(*args); });
}

}  // namespace cli
