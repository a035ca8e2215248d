// Our forward pass, greedy decoding and tokenizer against llama.cpp's outputs on the same
// GGUF files (goldens made by tests/reference/make_model_goldens.py and make_tiny_models.py).
#include <cmath>
#include <cstdio>

#include "e2e_support.hpp"
#include "tokenizer/tokenizer.hpp"

namespace ts {
namespace {

struct Golden {
  std::string json;   // path of the golden file
  std::string model;  // path of the model it was made from
};

Golden golden_for(const std::string& name) {
  if (name == "smollm2") return {std::string(TS_TEST_DATA) + "/reference/smollm2.json", test::default_model_path()};
  return {std::string(TS_TEST_DATA) + "/reference/" + name + ".json",
          std::string(TS_TEST_DATA) + "/models/" + name + ".gguf"};
}

class ReferenceModel : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    g_ = golden_for(GetParam());
    if (g_.model.empty()) GTEST_SKIP() << "default model missing: run packaging/fetch-model.sh";
    ref_ = test::read_json(g_.json);
    model_ = Model::load(g_.model);
  }
  Golden g_;
  nlohmann::json ref_;
  std::shared_ptr<const Model> model_;
};

// llama.cpp's own two attention paths (flash and default) disagree on 1-7% of top-1 ids of
// this model: its activations are quantised to 8 bits, so float summation order in attention
// flips rounding decisions downstream. We match llama.cpp bit for bit before attention mixes
// tokens (the first positions), and assert top-1 agreement where llama.cpp's decision is clear.
constexpr double kClearMargin = 0.5;  // top-1 minus top-2 logit in the reference
constexpr int kExactPositions = 1;    // position 0: no attention mixing, so no summation-order effects

TEST_P(ReferenceModel, LogitsMatchLlamaCpp) {
  const int32_t nv = model_->hparams().n_vocab;
  int64_t positions = 0, agree = 0, clear = 0, clear_agree = 0, compared = 0;
  double max_diff = 0, sum_diff = 0, early_max = 0;
  for (const auto& c : ref_["logits"]) {
    const std::vector<int32_t> tokens = c["tokens"].get<std::vector<int32_t>>();
    Session s(model_, test::dense_options(int64_t(tokens.size()) + 8));
    const std::vector<float> logits = s.eval_all(tokens);
    int64_t case_agree = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const float* row = logits.data() + i * size_t(nv);
      const auto& top = c["top"][i];
      const bool same = test::argmax(row, nv) == top[0][0].get<int32_t>();
      case_agree += same;
      if (top[0][1].get<double>() - top[1][1].get<double>() >= kClearMargin) {
        ++clear;
        clear_agree += same;
      }
      for (const auto& pair : top) {
        const double d = std::fabs(double(row[pair[0].get<int32_t>()]) - pair[1].get<double>());
        max_diff = std::max(max_diff, d);
        if (i < size_t(kExactPositions)) early_max = std::max(early_max, d);
        sum_diff += d;
        ++compared;
      }
    }
    for (size_t f = 0; f < c["full_positions"].size(); ++f) {
      const size_t i = c["full_positions"][f].get<size_t>();
      const auto& full = c["full"][f];
      for (int32_t v = 0; v < nv; ++v) {
        const double d = std::fabs(double(logits[i * size_t(nv) + size_t(v)]) - full[size_t(v)].get<double>());
        max_diff = std::max(max_diff, d);
        if (i < size_t(kExactPositions)) early_max = std::max(early_max, d);
        sum_diff += d;
        ++compared;
      }
    }
    std::printf("[ %s ] %-14s %5zu positions, top-1 agreement %.2f%%\n", GetParam().c_str(),
                c["name"].get<std::string>().c_str(), tokens.size(), 100.0 * double(case_agree) / double(tokens.size()));
    positions += int64_t(tokens.size());
    agree += case_agree;
  }
  const double rate = double(agree) / double(positions), clear_rate = double(clear_agree) / double(clear);
  const double mean_diff = sum_diff / double(compared);
  std::printf("[ %s ] top-1 agreement %.2f%% of %lld positions, %.2f%% of the %lld with a clear reference decision; "
              "|logit diff| max %.4f mean %.4f; first %d positions max %.5f\n",
              GetParam().c_str(), 100 * rate, (long long)positions, 100 * clear_rate, (long long)clear, max_diff,
              mean_diff, kExactPositions, early_max);
  RecordProperty("top1_agreement", std::to_string(rate));
  RecordProperty("top1_agreement_clear", std::to_string(clear_rate));
  RecordProperty("max_abs_diff", std::to_string(max_diff));
  RecordProperty("mean_abs_diff", std::to_string(mean_diff));
  // Q8_0/Q4_1 weights take 8-bit activations in both engines: bit-identical before attention.
  // (The tiny models' F16/BF16 weights take f16/bf16 activations in llama.cpp, f32 here.)
  if (GetParam() == "smollm2") {
    EXPECT_LT(early_max, 2e-3);  // the 4 decimals the golden keeps
  }
  EXPECT_GE(clear_rate, 0.98);
  EXPECT_GE(rate, 0.95);
  EXPECT_LT(mean_diff, 0.25);
}

// Greedy decoding: identical to llama.cpp until the first step where our own top-2 logits are
// within kClearMargin (a near-tie that either engine may break either way) in 8 of 10 prompts.
TEST_P(ReferenceModel, GreedyGenerationMatchesLlamaCpp) {
  const int32_t nv = model_->hparams().n_vocab;
  int identical = 0, consistent = 0, cases = 0;
  for (const auto& c : ref_["greedy"]) {
    const std::vector<int32_t> prompt = c["prompt_tokens"].get<std::vector<int32_t>>();
    std::vector<int32_t> want = c["generated"].get<std::vector<int32_t>>();
    const int first_eog = c["first_eog"].get<int>();
    if (first_eog >= 0) want.resize(size_t(first_eog) + 1);
    Session s(model_, test::dense_options(int64_t(prompt.size() + want.size()) + 8));
    s.prefill(prompt);
    std::vector<int32_t> got;
    size_t first_tie = want.size();
    while (got.size() < want.size()) {
      std::vector<float> row(s.logits(), s.logits() + nv);
      const int32_t next = test::argmax(row.data(), nv);
      const float best = row[size_t(next)];
      row[size_t(next)] = -INFINITY;
      if (best - *std::max_element(row.begin(), row.end()) < kClearMargin) first_tie = std::min(first_tie, got.size());
      got.push_back(next);
      if (got.size() < want.size()) s.prefill(std::span<const int32_t>(&next, 1));
    }
    size_t same = 0;
    while (same < want.size() && got[same] == want[same]) ++same;
    const bool ok = same == want.size() || same >= first_tie;
    std::printf("[ %s ] greedy %-16s %2zu/%2zu tokens identical%s\n", GetParam().c_str(),
                c["name"].get<std::string>().c_str(), same, want.size(),
                same == want.size() ? "" : (ok ? " (diverged at or after a near-tie)" : " (DIVERGED at a clear decision)"));
    identical += same == want.size();
    consistent += ok;
    ++cases;
  }
  std::printf("[ %s ] greedy: %d of %d identical to llama.cpp, %d of %d identical up to the first near-tie\n",
              GetParam().c_str(), identical, cases, consistent, cases);
  EXPECT_GE(consistent * 10, cases * 8);  // at least 8 of 10
}

TEST_P(ReferenceModel, TokenizerReproducesGoldenIds) {
  const Tokenizer& tok = model_->tokenizer();
  int checked = 0;
  for (const auto& c : ref_["logits"]) {
    if (!c["text"].is_string()) continue;
    std::vector<int32_t> want = c["tokens"].get<std::vector<int32_t>>();
    std::vector<int32_t> got;
    if (tok.add_bos()) got.push_back(tok.bos());
    const std::vector<int32_t> body = tok.encode(c["text"].get<std::string>(), true);
    got.insert(got.end(), body.begin(), body.end());
    EXPECT_EQ(got, want) << c["name"];
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(Goldens, ReferenceModel, ::testing::Values("smollm2", "tiny-qwen2", "tiny-llama-spm"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace ts
