// Passkey retrieval at 4k tokens on the default model (the short CI version of
// `tokenselect eval passkey`): TokenSelect with its defaults must find the key at two depths;
// dense attention runs on the same prompts as the baseline. Four prefills of 4k tokens.
#include <fmt/format.h>

#include <algorithm>

#include "../../app/cli/passkey.hpp"
#include "e2e_support.hpp"
#include "tokenizer/tokenizer.hpp"

namespace {
using namespace ts;

std::string greedy(Session& s, int n) {
  const Tokenizer& tok = s.model().tokenizer();
  const int32_t nv = s.model().hparams().n_vocab;
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t next = test::argmax(s.logits(), nv);
    if (tok.is_end_of_generation(next)) break;
    out.push_back(next);
    if (i + 1 < n) s.prefill(std::span<const int32_t>(&next, 1));
  }
  return tok.decode(out, false);
}

TEST(Passkey, FindsKeyAt4kTokenSelectAndDense) {
  TS_REQUIRE_DEFAULT_MODEL(path);
  auto model = Model::load(path);
  const int64_t length = 4096;
  const std::vector<double> depths{0.25, 0.75};
  const Tokenizer& tok = model->tokenizer();
  const passkey::TokenizeFn tokenize = [&](const std::string& text) {
    std::vector<int32_t> ids;
    if (tok.add_bos() && tok.bos() >= 0) ids.push_back(tok.bos());
    const std::vector<int32_t> body = tok.encode(text, /*parse_special=*/true);
    ids.insert(ids.end(), body.begin(), body.end());
    return ids;
  };
  std::vector<passkey::Prompt> prompts;
  for (size_t i = 0; i < depths.size(); ++i) {
    prompts.push_back(passkey::build(tokenize, length, depths[i], passkey::make_key(42, length, int(i), 0)));
    const int64_t n = int64_t(prompts.back().tokens.size());
    EXPECT_NEAR(double(n), double(length), 16.0) << "the builder should hit the target length";
  }
  for (AttentionMode mode : {AttentionMode::tokenselect, AttentionMode::full}) {
    SessionOptions so;
    so.n_ctx = length + 128;
    so.n_threads = 2;
    so.device = Device::cpu;
    so.select.mode = mode;
    Session s(model, so);
    const char* name = mode == AttentionMode::full ? "full" : "tokenselect";
    for (size_t i = 0; i < depths.size(); ++i) {
      s.truncate(0);
      s.policy().reset_stats();
      s.prefill(prompts[i].tokens);
      const std::string out = greedy(s, 8);
      const bool ok = passkey::found(out, prompts[i].key);
      fmt::print("passkey {} tokens depth {:.2f} {}: key {} -> \"{}\" {} (selection cache hits {} misses {})\n",
                 prompts[i].tokens.size(), depths[i], name, prompts[i].key, out, ok ? "FOUND" : "missed",
                 s.policy().stats().cache_hits, s.policy().stats().cache_misses);
      if (mode == AttentionMode::tokenselect) {
        EXPECT_GT(s.policy().stats().selecting_steps, 0) << "4k tokens exceed the budget: TokenSelect must select";
        EXPECT_TRUE(ok) << "TokenSelect missed the key at depth " << depths[i] << ": \"" << out << "\"";
      } else {
        EXPECT_TRUE(ok) << "dense attention missed the key at depth " << depths[i] << ": \"" << out << "\"";
      }
    }
  }
}

}  // namespace
