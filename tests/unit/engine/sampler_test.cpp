// Sampling against what each option must do on small hand-made distributions.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "engine/sampler.hpp"
#include "util/error.hpp"

namespace ts {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.9f, -1.0f, 0.5f};

TEST(Sampler, GreedyIsArgmax) {
  SamplerOptions o;
  o.temperature = 0;
  Sampler s(o);
  EXPECT_EQ(s.sample(kLogits.data(), 5, {}), 1);
}

TEST(Sampler, TopKOneIsGreedyAtAnyTemperature) {
  SamplerOptions o;
  o.temperature = 5;
  o.top_k = 1;
  Sampler s(o);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(kLogits.data(), 5, {}), 1);
}

TEST(Sampler, SameSeedSameSequence) {
  SamplerOptions o;
  o.temperature = 1.5f;
  o.top_k = 0;
  o.top_p = 1;
  o.min_p = 0;
  Sampler a(o), b(o);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(kLogits.data(), 5, {}), b.sample(kLogits.data(), 5, {}));
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  // Probabilities at T=1: token 1 and 2 hold ~0.83 together; top_p 0.6 keeps just those two.
  SamplerOptions o;
  o.temperature = 1;
  o.top_k = 0;
  o.top_p = 0.6f;
  o.min_p = 0;
  Sampler s(o);
  std::map<int, int> seen;
  for (int i = 0; i < 400; ++i) ++seen[s.sample(kLogits.data(), 5, {})];
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_GT(seen[1], 100);
  EXPECT_GT(seen[2], 100);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  SamplerOptions o;
  o.temperature = 1;
  o.top_k = 0;
  o.top_p = 1;
  o.min_p = 0.5f;  // keeps tokens with p >= 0.5 * p(max): tokens 1 and 2
  Sampler s(o);
  for (int i = 0; i < 200; ++i) {
    const int t = s.sample(kLogits.data(), 5, {});
    EXPECT_TRUE(t == 1 || t == 2) << t;
  }
}

TEST(Sampler, RepetitionPenaltyChangesTheGreedyChoice) {
  SamplerOptions o;
  o.temperature = 0;
  o.repeat_penalty = 1.2f;  // 3.0 / 1.2 = 2.5 < 2.9
  Sampler s(o);
  const std::vector<int32_t> history = {1};
  EXPECT_EQ(s.sample(kLogits.data(), 5, history), 2);
}

TEST(Sampler, InvalidOptionsNameTheField) {
  auto expect_bad = [](SamplerOptions o, const char* field) {
    try {
      Sampler s(o);
      ADD_FAILURE() << "accepted bad " << field;
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), Status::invalid_arg);
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  SamplerOptions o;
  o.temperature = -1;
  expect_bad(o, "temperature");
  o = {};
  o.top_p = 0;
  expect_bad(o, "top_p");
  o = {};
  o.min_p = 2;
  expect_bad(o, "min_p");
  o = {};
  o.top_k = -3;
  expect_bad(o, "top_k");
  o = {};
  o.repeat_penalty = 0;
  expect_bad(o, "repeat_penalty");
}

}  // namespace
}  // namespace ts
