// The whole default model on the CUDA backend against the CPU backend (the reference): logits of
// every position of the llama.cpp golden prompts (dense attention, prefill path, in the CPU's
// operation order), one-token decode steps (GEMV kernels, decode attention, CUDA graph replay),
// TokenSelect with a small budget so that selection runs on a 2k-token prompt, and session state
// files between the devices. Skips without a GPU or the model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

#include "../e2e/e2e_support.hpp"
#include "backend/cuda/cuda_decode_attention.hpp"
#include "cpu/quant.hpp"
#include "engine/session_state.hpp"

namespace ts {
namespace {

struct Compare {
  int64_t positions = 0, same_top1 = 0, clear = 0, clear_same = 0;
  double max_diff = 0;
};

// Top-1 agreement of two logit matrices (rows of n_vocab), overall and where the CPU's top-2
// margin is at least 0.5 (a clear decision), and the largest difference of a CPU top logit.
void compare_rows(const std::vector<float>& cpu, const std::vector<float>& gpu, int32_t nv, Compare& c) {
  for (size_t r = 0; r < cpu.size() / size_t(nv); ++r) {
    const float* a = cpu.data() + r * size_t(nv);
    const float* b = gpu.data() + r * size_t(nv);
    const int32_t ta = test::argmax(a, nv), tb = test::argmax(b, nv);
    float second = -1e30f;
    for (int32_t j = 0; j < nv; ++j)
      if (j != ta) second = std::max(second, a[j]);
    const bool clear = a[ta] - second >= 0.5f;
    ++c.positions;
    c.same_top1 += ta == tb;
    c.clear += clear;
    c.clear_same += clear && ta == tb;
    c.max_diff = std::max(c.max_diff, double(std::fabs(a[ta] - b[ta])));
  }
}

SessionOptions options(Device d, AttentionMode mode, int64_t n_ctx) {
  SessionOptions o = test::dense_options(n_ctx);
  o.device = d;
  o.select.mode = mode;
  return o;
}

std::vector<int32_t> greedy(Session& s, std::span<const int32_t> prompt, int n) {
  s.prefill(prompt);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t t = test::argmax(s.logits(), s.model().hparams().n_vocab);
    out.push_back(t);
    s.prefill(std::span<const int32_t>(&t, 1));
  }
  return out;
}

class CudaModel : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_device_available(&why)) GTEST_SKIP() << "no CUDA device: " << why;
    path_ = test::default_model_path();
    if (path_.empty()) GTEST_SKIP() << "default model missing: run packaging/fetch-model.sh";
    model_ = Model::load(path_);
    golden_ = test::read_json(std::string(TS_TEST_DATA) + "/reference/smollm2.json");
  }
  // The 2,181-token golden prompt.
  std::vector<int32_t> long_genesis() const {
    for (const auto& p : golden_["logits"])
      if (p["name"] == "long_genesis") return p["tokens"].get<std::vector<int32_t>>();
    return {};
  }
  // TokenSelect with n_init 16, n_local 64 and k, prefilled in chunks of 64.
  static SessionOptions small_budget(Device d, int32_t k) {
    SessionOptions o = options(d, AttentionMode::tokenselect, 4096);
    o.chunk = 64;
    o.select.n_init = 16;
    o.select.n_local = 64;
    o.select.k = k;
    return o;
  }
  std::string path_;
  std::shared_ptr<const Model> model_;
  nlohmann::json golden_;
};

TEST_F(CudaModel, LogitsMatchCpu) {
  const int32_t nv = model_->hparams().n_vocab;
  Session cpu(model_, options(Device::cpu, AttentionMode::full, 4096));
  Session gpu(model_, options(Device::cuda, AttentionMode::full, 4096));
  ASSERT_EQ(gpu.backend_name(), "cuda");
  Compare c;
  for (const auto& p : golden_["logits"]) {
    const std::vector<int32_t> tokens = p["tokens"].get<std::vector<int32_t>>();
    cpu.truncate(0);
    gpu.truncate(0);
    Compare one;
    compare_rows(cpu.eval_all(tokens), gpu.eval_all(tokens), nv, one);
    std::printf("  %-13s %4lld positions, top-1 same at %lld, max |diff| %.4f\n", p["name"].get<std::string>().c_str(),
                (long long)one.positions, (long long)one.same_top1, one.max_diff);
    c.positions += one.positions, c.same_top1 += one.same_top1, c.clear += one.clear, c.clear_same += one.clear_same;
    c.max_diff = std::max(c.max_diff, one.max_diff);
  }
  const double agree = double(c.same_top1) / double(c.positions);
  std::printf("CUDA vs CPU logits: %lld positions, top-1 %.2f%%, where the CPU's margin >= 0.5: %.2f%% of %lld, "
              "max |diff| of the CPU's top logit %.4f\n",
              (long long)c.positions, 100 * agree, 100.0 * double(c.clear_same) / double(c.clear), (long long)c.clear,
              c.max_diff);
  // With 8-bit activations any last-bit difference becomes a whole quantisation step downstream
  // and near-ties flip (~97% whatever the precision: the tensor-core path sat at 97.15%, the CPU
  // with fp16 keys against llama.cpp at 97.4%). Small models therefore run prefill in the CPU's
  // operation order (cuda/exact_kernels.hpp): measured on an H200, every position agrees and
  // the CPU's top logits are equal to 4 decimals. The CPU's order is its AVX2 kernels'.
  if (std::string(kernels::active_isa()) != "avx2") GTEST_SKIP() << "the CPU reference is not its AVX2 build";
  EXPECT_GE(agree, 0.98);
  EXPECT_EQ(c.clear_same, c.clear);
  EXPECT_LE(c.max_diff, 1e-4);
}

// One-token steps (GEMV kernels, decode attention, CUDA graph replay), teacher-forced with the
// CPU's greedy tokens so that one near-tie does not send the two runs down different texts.
TEST_F(CudaModel, DecodeStepsMatchCpu) {
  const int32_t nv = model_->hparams().n_vocab;
  Session cpu(model_, options(Device::cpu, AttentionMode::full, 4096));
  Session gpu(model_, options(Device::cuda, AttentionMode::full, 4096));
  Compare c;
  int identical = 0, prompts = 0;
  for (const auto& g : golden_["greedy"]) {
    const std::vector<int32_t> prompt = g["prompt_tokens"].get<std::vector<int32_t>>();
    cpu.truncate(0);
    gpu.truncate(0);
    cpu.prefill(prompt);
    gpu.prefill(prompt);
    bool same = true;
    for (int i = 0; i < 32; ++i) {
      const std::vector<float> a(cpu.logits(), cpu.logits() + nv), b(gpu.logits(), gpu.logits() + nv);
      const int64_t before = c.same_top1;
      compare_rows(a, b, nv, c);
      same = same && c.same_top1 > before;
      const int32_t t = test::argmax(a.data(), nv);
      cpu.prefill(std::span<const int32_t>(&t, 1));
      gpu.prefill(std::span<const int32_t>(&t, 1));
    }
    identical += same;
    ++prompts;
  }
  const double agree = double(c.same_top1) / double(c.positions);
  std::printf("decode steps, CUDA vs CPU (teacher-forced): top-1 %.2f%% of %lld steps, where the CPU's margin >= 0.5: "
              "%.2f%% of %lld; max |diff| %.4f; all 32 steps the same for %d of %d prompts\n",
              100 * agree, (long long)c.positions, 100.0 * double(c.clear_same) / double(c.clear), (long long)c.clear,
              c.max_diff, identical, prompts);
  EXPECT_GE(agree, 0.95);
  EXPECT_GE(double(c.clear_same), 0.99 * double(c.clear));
}

// What TokenSelect on the GPU must reach against the CPU (which scores the cached fp16 keys).
struct TokenSelectBounds {
  double top1, clear, overlap;
};

// TokenSelect with n_init 16, k 128, n_local 64 on the 2,181-token golden prompt: chunks of 64
// select by their mean query on the device; then 16 decode steps with the selection cache.
void tokenselect_against_cpu(const std::shared_ptr<const Model>& model, const std::vector<int32_t>& tokens,
                             SessionOptions cpu_opts, SessionOptions gpu_opts, const char* what,
                             const TokenSelectBounds& want) {
  const int32_t nv = model->hparams().n_vocab;
  ASSERT_GT(tokens.size(), 2000u);
  Session cpu(model, cpu_opts), gpu(model, gpu_opts);
  Compare c;
  compare_rows(cpu.eval_all(tokens), gpu.eval_all(tokens), nv, c);
  const double agree = double(c.same_top1) / double(c.positions);
  std::printf("%s prefill, CUDA vs CPU: top-1 %.2f%% of %lld positions (clear decisions %.2f%%)\n", what, 100 * agree,
              (long long)c.positions, 100.0 * double(c.clear_same) / double(c.clear));
  EXPECT_GE(agree, want.top1);
  EXPECT_GE(double(c.clear_same), want.clear * double(c.clear));

  // The last chunk's selections, layer by layer: overlap of the selected sets.
  cpu.policy().set_recording(true);
  gpu.policy().set_recording(true);  // copies the device's selections back after each step
  const std::vector<int32_t> tail{tokens.back()};
  cpu.prefill(tail);
  gpu.prefill(tail);
  const auto& a = cpu.policy().last_selection();
  const auto& b = gpu.policy().last_selection();
  ASSERT_EQ(a.size(), b.size());
  double min_overlap = 1, sum_overlap = 0;
  for (size_t l = 0; l < a.size(); ++l) {
    ASSERT_EQ(a[l].positions.size(), b[l].positions.size()) << "layer " << l;
    const std::set<int32_t> sa(a[l].positions.begin(), a[l].positions.end());
    size_t common = 0;
    for (int32_t p : b[l].positions) common += sa.count(p);
    const double o = double(common) / double(std::max<size_t>(1, sa.size()));
    min_overlap = std::min(min_overlap, o);
    sum_overlap += o;
  }
  std::printf("%s selected sets after one decode step: per-layer overlap smallest %.1f%%, mean %.1f%% of %zu tokens\n",
              what, 100 * min_overlap, 100 * sum_overlap / double(std::max<size_t>(1, a.size())),
              a.empty() ? size_t(0) : a[0].positions.size());
  EXPECT_GE(min_overlap, want.overlap);

  const std::vector<int32_t> ga = greedy(cpu, tail, 16), gb = greedy(gpu, tail, 16);
  const size_t same = size_t(std::mismatch(ga.begin(), ga.end(), gb.begin()).first - ga.begin());
  std::printf("%s greedy decode: identical for %zu of 16 tokens; GPU cache hits %lld misses %lld\n", what, same,
              (long long)gpu.select_stats().cache_hits, (long long)gpu.select_stats().cache_misses);
  EXPECT_GT(gpu.select_stats().cache_misses, 0);
}

TEST_F(CudaModel, TokenSelectMatchesCpu) {
  // Measured 93.9% top-1 (selection multiplies the near-ties; 98.9-99.2% of clear decisions),
  // overlap 93%.
  tokenselect_against_cpu(model_, long_genesis(), small_budget(Device::cpu, 128), small_budget(Device::cuda, 128),
                          "TokenSelect", {0.92, 0.98, 0.85});
}

// The GPU scoring the keys' fp8 copy against the CPU scoring fp16 keys: the accuracy cost of
// the copy. Measured on an H200: top-1 90.2%, clear decisions 97.2%, smallest overlap 84.4%
// (mean 90.8%) — near-ties of the vote change sides.
TEST_F(CudaModel, Fp8ScoringKeysAgainstCpu) {
  SessionOptions gpu = small_budget(Device::cuda, 128);
  gpu.select.scoring = ScoringKeys::fp8;
  tokenselect_against_cpu(model_, long_genesis(), small_budget(Device::cpu, 128), gpu, "TokenSelect fp8 scoring",
                          {0.87, 0.95, 0.75});
}

// A session made for k > 2048 (the kernels' default) sizes its selection buffers for that k:
// selecting 2,080 of ~2,100 candidates agrees with the CPU; asking the session for a larger k
// later is refused by name, a smaller one is taken.
TEST_F(CudaModel, SelectionBuffersFollowTheSessionsK) {
  const int32_t nv = model_->hparams().n_vocab;
  const std::vector<int32_t> tokens = long_genesis();
  ASSERT_GT(tokens.size(), 2160u);
  Session cpu(model_, small_budget(Device::cpu, 2080)), gpu(model_, small_budget(Device::cuda, 2080));
  Compare c;
  compare_rows(cpu.eval_all(tokens), gpu.eval_all(tokens), nv, c);
  std::printf("TokenSelect k 2080, CUDA vs CPU: top-1 %.2f%% of %lld positions\n",
              100.0 * double(c.same_top1) / double(c.positions), (long long)c.positions);
  EXPECT_GE(double(c.clear_same), 0.98 * double(c.clear));

  SelectOptions larger = gpu.options().select;
  larger.k = 3000;  // below the context (4096), so it would select
  try {
    gpu.set_select_options(larger);
    ADD_FAILURE() << "a k beyond the session's buffers was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds"), std::string::npos) << e.what();
  }
  EXPECT_EQ(gpu.options().select.k, 2080);  // unchanged
  SelectOptions smaller = gpu.options().select;
  smaller.k = 1024;
  EXPECT_NO_THROW(gpu.set_select_options(smaller));
  const int32_t t = tokens.back();
  EXPECT_NO_THROW(gpu.prefill(std::span<const int32_t>(&t, 1)));
}

// The logits before each of `tokens` is fed (teacher forcing), one row each.
std::vector<float> forced(Session& s, const std::vector<int32_t>& tokens) {
  const int32_t nv = s.model().hparams().n_vocab;
  std::vector<float> out;
  for (int32_t t : tokens) {
    out.insert(out.end(), s.logits(), s.logits() + nv);
    s.prefill(std::span<const int32_t>(&t, 1));
  }
  return out;
}

// Session state files from and into GPU sessions, in the CPU's format (fp16 keys). A loaded GPU
// session continues exactly like the one it was saved from (selection cache off here: a loaded
// GPU session's first step selects afresh, its cached selection is not in the file), and each
// device loads the other's file and then decides as the other device does where the decision is
// clear.
TEST_F(CudaModel, SessionStateFilesRoundTrip) {
  const int32_t nv = model_->hparams().n_vocab;
  const std::vector<int32_t> all = long_genesis();
  ASSERT_GT(all.size(), 800u);
  const std::vector<int32_t> prompt(all.begin(), all.begin() + 700);
  const std::string path = (std::filesystem::temp_directory_path() / "ts_cuda_state.bin").string();
  const auto opts = [](Device d) {
    SessionOptions o = small_budget(d, 128);
    o.select.cache = false;
    return o;
  };
  const auto loaded = [&](Device d) {
    auto s = std::make_unique<Session>(model_, opts(d));
    SessionState::load(*s, path, {});
    return s;
  };
  const auto expect_clear_decisions_agree = [&](const std::vector<float>& ref, const std::vector<float>& other,
                                                const char* what) {
    Compare c;
    compare_rows(ref, other, nv, c);
    EXPECT_GT(c.clear, 0) << what;
    EXPECT_EQ(c.clear_same, c.clear) << what << ": " << c.same_top1 << " of " << c.positions << " top-1 the same";
  };

  Session gpu_saver(model_, opts(Device::cuda));
  greedy(gpu_saver, prompt, 4);
  SessionState::save(gpu_saver, "extra", path);
  Session gpu(model_, opts(Device::cuda));
  std::string extra;
  SessionState::load(gpu, path, [&](const std::string& e) { extra = e; });
  EXPECT_EQ(extra, "extra");
  EXPECT_EQ(gpu.tokens(), gpu_saver.tokens());
  ASSERT_NE(gpu.logits(), nullptr);
  EXPECT_TRUE(std::equal(gpu.logits(), gpu.logits() + nv, gpu_saver.logits()));
  const std::vector<int32_t> next = greedy(gpu_saver, {}, 12);
  EXPECT_EQ(greedy(gpu, {}, 12), next) << "the loaded GPU session continued differently";
  expect_clear_decisions_agree(forced(*loaded(Device::cuda), next), forced(*loaded(Device::cpu), next),
                               "a GPU session's file, continued on the GPU and on the CPU");

  Session cpu_saver(model_, opts(Device::cpu));
  greedy(cpu_saver, prompt, 4);
  SessionState::save(cpu_saver, "", path);
  const std::unique_ptr<Session> from_cpu = loaded(Device::cuda);
  EXPECT_EQ(from_cpu->tokens(), cpu_saver.tokens());
  expect_clear_decisions_agree(forced(cpu_saver, next), forced(*from_cpu, next),
                               "a CPU session's file, continued on the CPU and on the GPU");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ts
