// TokenSelect on the default model: with k covering every candidate it must equal dense
// attention; with a real budget it must stay close to dense; the selection cache must hit on
// decode steps; and the KV cache must cost what its layout says (DESIGN.md "TokenSelect").
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "e2e_support.hpp"
#include "tokenizer/tokenizer.hpp"

namespace ts {
namespace {

constexpr int64_t kLongest = 1700;

// Varied real text: Genesis from chapter 2 on (past the header), tokenized, BOS first when the
// model wants one.
std::vector<int32_t> genesis_tokens(const Model& m, int64_t n) {
  // assets/docs next to assets/models (TS_DEFAULT_MODEL is a path under the source tree).
  std::ifstream in(std::filesystem::path(TS_DEFAULT_MODEL).parent_path().parent_path() / "docs" / "genesis-kjv.txt");
  if (!in) throw std::runtime_error("cannot open genesis-kjv.txt");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const size_t start = text.find("Chapter 2");
  std::vector<int32_t> t;
  if (m.tokenizer().add_bos()) t.push_back(m.tokenizer().bos());
  const std::vector<int32_t> body = m.tokenizer().encode(text.substr(start, size_t(n) * 8), false);
  t.insert(t.end(), body.begin(), body.end());
  if (int64_t(t.size()) < n) throw std::runtime_error("genesis text too short");
  t.resize(size_t(n));
  return t;
}

class TokenSelectModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = test::default_model_path();
    if (path.empty()) return;
    model_ = Model::load(path);
    tokens_ = genesis_tokens(*model_, kLongest);
  }
  static void TearDownTestSuite() {
    model_.reset();
    dense_top1_.clear();
  }
  void SetUp() override {
    if (!model_) GTEST_SKIP() << "default model missing: run packaging/fetch-model.sh";
  }

  static SessionOptions select_options(int32_t k, PositionMode pos) {
    SessionOptions o;
    o.n_ctx = kLongest + 64;
    o.n_threads = 2;
    o.device = Device::cpu;
    o.chunk = 64;
    o.select.mode = AttentionMode::tokenselect;
    o.select.n_init = 16;
    o.select.n_local = 64;
    o.select.k = k;
    o.select.positions = pos;
    return o;
  }

  static std::shared_ptr<const Model> model_;
  static std::vector<int32_t> tokens_;
  static std::vector<int32_t> dense_top1_;  // dense argmax per position of tokens_ (filled by Equivalence)
};
std::shared_ptr<const Model> TokenSelectModel::model_;
std::vector<int32_t> TokenSelectModel::tokens_;
std::vector<int32_t> TokenSelectModel::dense_top1_;

// (9) k covering every candidate, selection forced on every step: the attention set is every
// cached key in order, so logits equal dense ones at every position (true and remapped
// positions coincide because every rank equals the cache index). Sessions run in lockstep,
// 64 tokens at a time, so the whole 1700-token logit matrix is never held.
TEST_F(TokenSelectModel, EquivalentToDenseWhenKCoversEverything) {
  const int32_t nv = model_->hparams().n_vocab;
  SessionOptions dense_o = test::dense_options(kLongest + 64);
  dense_o.chunk = 64;
  Session dense(model_, dense_o);
  SessionOptions ts_true = select_options(1 << 20, PositionMode::true_pos);
  ts_true.select.always_select = true;
  // No selection cache: a reused selection deliberately omits the tokens that left the local
  // window since it was made (contract step 6), so only fresh selections cover every key.
  ts_true.select.cache = false;
  SessionOptions ts_remap = ts_true;
  ts_remap.select.positions = PositionMode::remap;
  Session s_true(model_, ts_true), s_remap(model_, ts_remap);

  // Report the worst difference up to each of several lengths.
  const int64_t marks[] = {300, 900, kLongest};
  double max_true = 0, max_remap = 0;
  size_t mark = 0;
  dense_top1_.clear();
  for (int64_t done = 0; done < kLongest; done += 64) {
    const int64_t n = std::min<int64_t>(64, kLongest - done);
    const std::span<const int32_t> piece(tokens_.data() + done, size_t(n));
    const std::vector<float> ld = dense.eval_all(piece);
    const std::vector<float> lt = s_true.eval_all(piece);
    // Remapped positions only to 900 tokens (runtime); true positions to the end.
    const bool remap_on = done < 900;
    const std::vector<float> lr = remap_on ? s_remap.eval_all(piece) : std::vector<float>();
    for (int64_t i = 0; i < n; ++i) {
      const float* d = ld.data() + i * nv;
      dense_top1_.push_back(test::argmax(d, nv));
      for (int32_t x = 0; x < nv; ++x) {
        ASSERT_TRUE(std::isfinite(lt[size_t(i * nv + x)]));
        max_true = std::max(max_true, double(std::abs(lt[size_t(i * nv + x)] - d[x])));
        if (remap_on) max_remap = std::max(max_remap, double(std::abs(lr[size_t(i * nv + x)] - d[x])));
      }
      if (done + i + 1 == marks[mark]) {
        std::printf("[equivalence] first %lld tokens: max |logit diff| true_pos %.3g, remap %.3g\n",
                    (long long)marks[mark], max_true, max_remap);
        EXPECT_LT(max_true, 1e-3) << "true_pos, length " << marks[mark];
        EXPECT_LT(max_remap, 1e-3) << "remap, length " << marks[mark];
        ++mark;
      }
    }
  }
  EXPECT_EQ(mark, std::size(marks));
  // The selection path really ran, on every layer-step, and the dense one never did.
  const SelectStats& st = s_true.policy().stats();
  const int64_t steps = (kLongest + 63) / 64 * model_->hparams().n_layer;
  EXPECT_EQ(st.selecting_steps, steps);
  EXPECT_EQ(st.dense_steps, 0);
  EXPECT_EQ(dense.policy().stats().selecting_steps, 0);
}

// (10) A real budget (k = 256 of up to ~1400 candidates, remapped positions) stays close to
// dense; then single-token decode steps reuse selections through the selection cache.
TEST_F(TokenSelectModel, SelectingStaysCloseToDenseAndCacheHitsOnDecode) {
  const int64_t N = 1500;
  const int32_t nv = model_->hparams().n_vocab;
  if (int64_t(dense_top1_.size()) < N) {  // run alone: make the dense reference here
    SessionOptions o = test::dense_options(N + 64);
    o.chunk = 64;
    Session dense(model_, o);
    const std::vector<float> l = dense.eval_all(std::span<const int32_t>(tokens_.data(), size_t(N)));
    dense_top1_.clear();
    for (int64_t i = 0; i < N; ++i) dense_top1_.push_back(test::argmax(l.data() + i * nv, nv));
  }
  // Prefill with fresh selections every chunk (the quality of the selection itself); the
  // selection cache is switched on for the decode steps below.
  SessionOptions so = select_options(256, PositionMode::remap);
  so.select.cache = false;
  Session s(model_, so);
  int64_t agree = 0, late_agree = 0, late = 0;
  const int64_t budget = 16 + 256 + 64;
  for (int64_t done = 0; done < N; done += 64) {
    const int64_t n = std::min<int64_t>(64, N - done);
    const std::vector<float> l = s.eval_all(std::span<const int32_t>(tokens_.data() + done, size_t(n)));
    for (int64_t i = 0; i < n; ++i) {
      const float* row = l.data() + i * nv;
      for (int32_t x = 0; x < nv; ++x) ASSERT_TRUE(std::isfinite(row[x])) << "position " << done + i;
      const bool same = test::argmax(row, nv) == dense_top1_[size_t(done + i)];
      agree += same;
      if (done + i >= budget) {
        ++late;
        late_agree += same;
      }
    }
  }
  const SelectStats prefill_stats = s.policy().stats();
  const double rate = double(agree) / double(N), late_rate = double(late_agree) / double(late);
  std::printf("[selecting] top-1 agreement with dense over %lld positions: %.3f (%.3f past the budget of %lld);"
              " prefill layer-steps selecting %lld, dense %lld, cache hits %lld, misses %lld\n",
              (long long)N, rate, late_rate, (long long)budget, (long long)prefill_stats.selecting_steps,
              (long long)prefill_stats.dense_steps, (long long)prefill_stats.cache_hits,
              (long long)prefill_stats.cache_misses);
  EXPECT_GT(late_rate, 0.6);
  EXPECT_GT(prefill_stats.selecting_steps, 0);
  EXPECT_GT(prefill_stats.dense_steps, 0);  // the first chunks fit the budget

  EXPECT_EQ(prefill_stats.cache_hits, 0);

  // Greedy decode, one token per step, selection cache on at tau 0.9.
  SelectOptions dec = s.options().select;
  dec.cache = true;
  dec.tau = 0.9f;
  s.set_select_options(dec);
  s.policy().reset_stats();
  const int decode = 20;
  for (int i = 0; i < decode; ++i) {
    const float* l = s.logits();
    ASSERT_NE(l, nullptr);
    for (int32_t x = 0; x < nv; ++x) ASSERT_TRUE(std::isfinite(l[x]));
    const int32_t next = test::argmax(l, nv);
    s.prefill(std::span<const int32_t>(&next, 1));
  }
  const SelectStats& st = s.policy().stats();
  const int64_t L = model_->hparams().n_layer;
  EXPECT_EQ(st.selecting_steps, decode * L);
  EXPECT_EQ(st.cache_hits + st.cache_misses, decode * L);
  const double hit_rate = double(st.cache_hits) / double(decode * L);
  std::printf("[selecting] decode %d tokens at tau 0.9: cache hits %lld, misses %lld, hit rate %.3f\n", decode,
              (long long)st.cache_hits, (long long)st.cache_misses, hit_rate);
  EXPECT_GT(st.cache_hits, 0);
  EXPECT_EQ(s.kv().size(), N + decode);
}

// (11) K and V in fp16 per layer and KV head: 30 * 2 * 3 * 64 * 2 bytes per token for SmolLM2-135M.
TEST_F(TokenSelectModel, KvBytesPerTokenMatchLayout) {
  const HParams& hp = model_->hparams();
  EXPECT_EQ(model_->kv_bytes_per_token(), size_t(hp.n_layer) * 2 * size_t(hp.n_head_kv) * size_t(hp.head_dim) * 2);
  EXPECT_EQ(hp.n_layer, 30);
  EXPECT_EQ(hp.n_head_kv, 3);
  EXPECT_EQ(hp.head_dim, 64);
  EXPECT_EQ(model_->kv_bytes_per_token(), size_t(23040));
  Session s(model_, select_options(256, PositionMode::remap));
  EXPECT_EQ(s.kv().bytes_used(), size_t(0));
  EXPECT_EQ(s.kv().bytes_per_token(), size_t(23040));
  s.prefill(std::span<const int32_t>(tokens_.data(), 100));
  EXPECT_EQ(s.kv().size(), 100);
  EXPECT_EQ(s.kv().bytes_used(), size_t(100) * 23040);
  const int32_t one = tokens_[100];
  s.prefill(std::span<const int32_t>(&one, 1));
  EXPECT_EQ(s.kv().bytes_used(), size_t(101) * 23040);
  s.truncate(40);
  EXPECT_EQ(s.kv().bytes_used(), size_t(40) * 23040);
}

}  // namespace
}  // namespace ts
