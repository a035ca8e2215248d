// tokenselect bench: prefill and decode speed at several context lengths, printed as a table.
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "cli_common.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"

namespace cli {
namespace {

struct BenchArgs {
  ModelArgs model;
  std::vector<int64_t> contexts{512, 2048, 8192};
  int gen = 32;
  bool json = false;
};

struct Row {
  int64_t context;
  double prefill_tps, ttft_s, decode_tps;
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

Row measure(const std::shared_ptr<const ts::Model>& m, const BenchArgs& a, int64_t ctx) {
  ts::SessionOptions so = a.model.session_options();
  so.n_ctx = ctx + a.gen + 1;
  ts::Session s(m, so);
  const std::vector<int32_t> prompt = bench_tokens(m->tokenizer(), ctx);
  const int32_t nv = m->hparams().n_vocab;
  const double t0 = now_seconds();
  s.prefill(prompt);
  int32_t next = int32_t(std::max_element(s.logits(), s.logits() + nv) - s.logits());
  const double t1 = now_seconds();
  for (int i = 0; i < a.gen; ++i) {
    s.prefill(std::span<const int32_t>(&next, 1));
    next = int32_t(std::max_element(s.logits(), s.logits() + nv) - s.logits());
  }
  const double t2 = now_seconds();
  return Row{ctx, double(ctx) / (t1 - t0), t1 - t0, a.gen / (t2 - t1)};
}

void bench(const BenchArgs& a) {
  auto m = load_model(a.model.model, a.json);
  std::vector<Row> rows;
  for (int64_t ctx : a.contexts) {
    if (ctx < 1) throw ts::Error(ts::Status::invalid_arg, "bench: contexts must be >= 1");
    if (!a.json) fmt::print(stderr, "context {} ...\n", ctx);
    rows.push_back(measure(m, a, ctx));
  }
  if (a.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const Row& r : rows)
      j.push_back({{"context", r.context}, {"prefill_tokens_per_s", r.prefill_tps}, {"time_to_first_token_s", r.ttft_s},
                   {"decode_tokens_per_s", r.decode_tps}});
    std::cout << j.dump(2) << "\n";
    return;
  }
  fmt::print("| context | prefill tok/s | time to first token (s) | decode tok/s |\n");
  fmt::print("|--------:|--------------:|------------------------:|-------------:|\n");
  for (const Row& r : rows)
    fmt::print("| {:>7} | {:>13.1f} | {:>23.3f} | {:>12.2f} |\n", r.context, r.prefill_tps, r.ttft_s, r.decode_tps);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "measure prefill and decode speed");
  args->model.add_to(*cmd);
  cmd->add_option("--contexts", args->contexts, "context lengths to measure")->delimiter(',')->capture_default_str();
  cmd->add_option("--gen", args->gen, "tokens to decode at each length")->capture_default_str();
  cmd->add_flag("--json", args->json, "JSON output");
  cmd->callback([args] { bench(*args); });
}

}  // namespace cli
