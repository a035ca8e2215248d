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
  ts_attention mode{};
  double prefill_tps = 0, ttft_s = 0, decode_tps = 0;
  double step_ms = 0;       // mean decode step
  double attention_ms = 0;  // step_ms minus the step at base_context, same mode
  std::optional<double> hit_rate;  // selection cache, over the decode steps; none when nothing was selected
  int64_t cache_hits = 0, cache_misses = 0, selecting_steps = 0, dense_steps = 0;
  uint64_t kv_bytes_per_token = 0;
  bool gpu = false;
};

// Ordinary (non-control) tokens, those that render as text without RENDER_SPECIAL, in a fixed
// pseudo-random order: speed depends on shapes, not text.
std::vector<int32_t> bench_tokens(const ts_model* m, int64_t n) {
  std::vector<int32_t> pool;
  const int32_t n_vocab = model_info(m).n_vocab;
  for (int32_t i = 0; i < n_vocab; ++i)
    if (!detokenize(m, {i}, 0).empty()) pool.push_back(i);
  std::mt19937 rng(1234);
  std::vector<int32_t> out(static_cast<size_t>(n));
  for (auto& t : out) t = pool[rng() % pool.size()];
  return out;
}

Row measure(const ts_model* m, const BenchArgs& a, const std::vector<int32_t>& tokens, int64_t ctx, ts_attention mode) {
  SessionPtr session = open_session(m, a.model, a.select, mode, ctx + a.gen + 1);
  ts_session* s = session.get();
  InterruptTarget target(s);
  const double t0 = now_seconds();
  check(ts_session_prefill_tokens(s, tokens.data(), size_t(ctx), nullptr, nullptr));
  int32_t next = argmax_token(s);
  const double t1 = now_seconds();
  check(ts_session_reset_stats(s));  // the selection counters below cover the decode steps only
  for (int i = 0; i < a.gen; ++i) {
    check(ts_session_prefill_tokens(s, &next, 1, nullptr, nullptr));
    next = argmax_token(s);
  }
  const double t2 = now_seconds();
  Row r;
  r.context = ctx;
  r.mode = mode;
  r.prefill_tps = double(ctx) / (t1 - t0);
  r.ttft_s = t1 - t0;
  r.decode_tps = a.gen / (t2 - t1);
  r.step_ms = 1000.0 * (t2 - t1) / a.gen;
  const ts_session_stats st = session_stats(s);
  r.cache_hits = st.select_cache_hits;
  r.cache_misses = st.select_cache_misses;
  r.selecting_steps = st.selecting_steps;
  r.dense_steps = st.dense_steps;
  if (mode == TS_ATTENTION_TOKENSELECT && st.select_cache_hits + st.select_cache_misses > 0)
    r.hit_rate = double(st.select_cache_hits) / double(st.select_cache_hits + st.select_cache_misses);
  r.kv_bytes_per_token = st.kv_bytes_per_token;
  r.gpu = st.device == TS_DEVICE_CUDA;
  return r;
}

void bench(const BenchArgs& a) {
  if (a.gen < 1) throw Error(TS_ERR_INVALID_ARG, "bench: --gen must be >= 1");
  for (int64_t ctx : a.contexts)
    if (ctx < 1) throw Error(TS_ERR_INVALID_ARG, "bench: contexts must be >= 1");
  const std::vector<ts_attention> modes = parse_modes(a.modes);
  ModelPtr model = load_model(a.model.model, a.json);
  const ts_model* m = model.get();
  int64_t longest = a.base_context;
  for (int64_t ctx : a.contexts) longest = std::max(longest, ctx);
  const std::vector<int32_t> tokens = bench_tokens(m, longest);  // each row prefills a prefix

  // Decode step time at a tiny context, per mode: what a step costs with (almost) no attention.
  std::vector<double> base_ms;
  for (ts_attention mode : modes) {
    fmt::print(stderr, "baseline: context {} {} ...\n", a.base_context, attention_mode_name(mode));
    base_ms.push_back(measure(m, a, tokens, a.base_context, mode).step_ms);
  }
  std::vector<Row> rows;
  for (int64_t ctx : a.contexts)
    for (size_t i = 0; i < modes.size(); ++i) {
      fmt::print(stderr, "context {} {} ...\n", ctx, attention_mode_name(modes[i]));
      Row r = measure(m, a, tokens, ctx, modes[i]);
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
                   {"kv_bytes_per_token", r.kv_bytes_per_token},
                   {"device", r.gpu ? "cuda" : "cpu"}});
    std::cout << j.dump(2) << "\n";
    return;
  }
  fmt::print("computed on the {}\n\n", !rows.empty() && rows[0].gpu ? "GPU (CUDA backend)" : "CPU");
  fmt::print(
      "| context | attention   | prefill tok/s | time to first token (s) | decode tok/s | attention ms/decode step* | "
      "selection-cache hit rate | KV bytes/token |\n");
  fmt::print(
      "|--------:|:------------|--------------:|------------------------:|-------------:|--------------------------:|"
      "-------------------------:|---------------:|\n");
  for (const Row& r : rows) {
    const std::string hit = r.hit_rate ? fmt::format("{:.1f}%", 100.0 * *r.hit_rate)
                                       : (r.mode == TS_ATTENTION_FULL ? "-" : "n/a (dense)");
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
