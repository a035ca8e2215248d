// TokenSelect policy, selection scoring and CPU attention against small straightforward
// references written here (DESIGN.md "TokenSelect — the algorithm contract").
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "kv/kv_cache.hpp"
#include "select/select_options.hpp"
#include "select/token_select.hpp"
#include "util/error.hpp"
#include "util/fp16.hpp"

namespace ts {
namespace {

constexpr int32_t kHeads = 6, kKvHeads = 2, kDim = 16;

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

// A KV cache of n_layers layers filled with seeded random keys and values.
struct RandomKv {
  RandomKv(int32_t n_layers, int64_t tokens, uint32_t seed, float key_scale = 1.f)
      : cache(n_layers, kKvHeads, kDim, tokens) {
    for (int32_t l = 0; l < n_layers; ++l) {
      const KvLayerView v = cache.layer(l);
      const std::vector<float> k = randn(size_t(kKvHeads * tokens * kDim), seed + 17u * uint32_t(l), key_scale);
      const std::vector<float> val = randn(size_t(kKvHeads * tokens * kDim), seed + 1000u + 17u * uint32_t(l));
      for (int32_t h = 0; h < kKvHeads; ++h)
        for (int64_t t = 0; t < tokens; ++t)
          for (int32_t x = 0; x < kDim; ++x) {
            const size_t i = size_t((int64_t(h) * tokens + t) * kDim + x);
            v.k_at(h, t)[x] = fp32_to_fp16(k[i]);
            v.v_at(h, t)[x] = fp32_to_fp16(val[i]);
          }
    }
    cache.set_size(tokens);
  }
  KvLayerView layer(int32_t l) const { return cache.layer(l); }
  KvCache cache;
};

// Naive q̄_h · K_{h/group}(j) / sqrt(d), in double.
std::vector<double> ref_scores(const KvLayerView& kv, const std::vector<double>& qbar, int32_t H, int64_t c0,
                               int64_t c1) {
  const int32_t group = H / kv.n_kv_heads;
  const int64_t n = c1 - c0;
  std::vector<double> s(size_t(H * n));
  for (int32_t h = 0; h < H; ++h)
    for (int64_t j = 0; j < n; ++j) {
      double dot = 0;
      const uint16_t* k = kv.k_at(h / group, c0 + j);
      for (int32_t x = 0; x < kv.head_dim; ++x) dot += qbar[size_t(h * kv.head_dim + x)] * double(fp16_to_fp32(k[x]));
      s[size_t(h * n + j)] = dot / std::sqrt(double(kv.head_dim));
    }
  return s;
}

std::vector<double> mean_queries(const std::vector<float>& q, int64_t m, int32_t H) {
  std::vector<double> qbar(size_t(H * kDim), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (size_t x = 0; x < qbar.size(); ++x) qbar[x] += q[size_t(i) * qbar.size() + x];
  for (double& x : qbar) x /= double(m);
  return qbar;
}

struct RefSelection {
  std::vector<int32_t> positions;
  std::vector<double> votes;
  double boundary_gap = 1e9;  // vote of the k-th best minus the (k+1)-th (tie check)
};

// Softmax per head over the candidates, summed over heads, full sort, top k, by position.
RefSelection ref_select(const KvLayerView& kv, const std::vector<double>& qbar, int32_t H, const SelectOptions& o,
                        int64_t T) {
  const int64_t c0 = std::min<int64_t>(o.n_init, T), c1 = std::max<int64_t>(c0, T - o.n_local);
  const int64_t n = c1 - c0;
  RefSelection r;
  if (n <= 0) return r;
  const std::vector<double> s = ref_scores(kv, qbar, H, c0, c1);
  std::vector<double> vote(size_t(n), 0.0);
  for (int32_t h = 0; h < H; ++h) {
    double mx = -1e300, sum = 0;
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, s[size_t(h * n + j)]);
    for (int64_t j = 0; j < n; ++j) sum += std::exp(s[size_t(h * n + j)] - mx);
    for (int64_t j = 0; j < n; ++j) vote[size_t(j)] += std::exp(s[size_t(h * n + j)] - mx) / sum;
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return vote[size_t(a)] > vote[size_t(b)]; });
  const int64_t k = std::min<int64_t>(o.k, n);
  if (k < n) r.boundary_gap = vote[size_t(order[size_t(k - 1)])] - vote[size_t(order[size_t(k)])];
  order.resize(size_t(k));
  std::sort(order.begin(), order.end());
  for (int64_t j : order) {
    r.positions.push_back(int32_t(c0 + j));
    r.votes.push_back(vote[size_t(j)]);
  }
  return r;
}

SelectOptions small_options() {
  SelectOptions o;
  o.n_init = 4;
  o.n_local = 8;
  o.k = 10;
  o.cache = false;
  return o;
}

// ---------------------------------------------------------------------------------------------
// (1) selection_scores

TEST(TokenSelectScores, MatchNaiveWithGqaMapping) {
  auto be = make_cpu_backend(2);
  RandomKv kv(1, 200, 11);
  const std::vector<float> qbar = randn(size_t(kHeads * kDim), 5);
  const std::vector<double> qd(qbar.begin(), qbar.end());
  for (auto [c0, c1] : {std::pair<int64_t, int64_t>{0, 200}, {5, 90}, {37, 38}}) {
    const int64_t n = c1 - c0;
    std::vector<float> got(size_t(kHeads * n), NAN);
    be->selection_scores(kv.layer(0), qbar.data(), kHeads, c0, c1, 1.f / std::sqrt(float(kDim)), got.data());
    const std::vector<double> want = ref_scores(kv.layer(0), qd, kHeads, c0, c1);
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::abs(want[i]))) << "c0 " << c0 << " index " << i;
  }
  // The GQA mapping really matters: heads 0..2 read KV head 0, heads 3..5 KV head 1.
  std::vector<float> got(size_t(kHeads * 10));
  be->selection_scores(kv.layer(0), qbar.data(), kHeads, 0, 10, 1.f, got.data());
  std::vector<double> q3(qd.size(), 0.0);
  std::copy_n(qd.begin() + 3 * kDim, kDim, q3.begin() + 3 * kDim);
  double dot = 0;
  for (int32_t x = 0; x < kDim; ++x) dot += q3[size_t(3 * kDim + x)] * fp16_to_fp32(kv.layer(0).k_at(1, 4)[x]);
  EXPECT_NEAR(got[3 * 10 + 4], dot, 1e-4);
}

// ---------------------------------------------------------------------------------------------
// (2) soft vote + top-k

void expect_selection_matches(int64_t T, int64_t m, uint32_t seed, const SelectOptions& o) {
  auto be = make_cpu_backend(2);
  RandomKv kv(1, T, seed, 2.f);  // larger keys: sharper per-head softmax, a meaningful vote
  TokenSelectPolicy p(*be, 1, kHeads, kDim, o);
  p.set_recording(true);
  const std::vector<float> q = randn(size_t(m * kHeads * kDim), seed + 99);
  const int64_t q_first = T - m;
  p.begin_step(q_first, m);
  const AttentionSet set = p.plan(0, q.data(), m, kHeads, kv.layer(0), q_first);
  ASSERT_NE(set.keys, nullptr);

  const RefSelection ref = ref_select(kv.layer(0), mean_queries(q, m, kHeads), kHeads, o, T);
  ASSERT_GT(ref.boundary_gap, 1e-5) << "test data has a near tie at the top-k boundary";
  const LayerSelection& got = p.last_selection()[0];
  EXPECT_EQ(got.positions, ref.positions);
  ASSERT_EQ(got.votes.size(), ref.votes.size());
  for (size_t i = 0; i < ref.votes.size(); ++i) EXPECT_NEAR(got.votes[i], ref.votes[i], 1e-5) << i;
  EXPECT_EQ(p.stats().selecting_steps, 1);
  EXPECT_EQ(p.stats().cache_misses, 1);
}

TEST(TokenSelectVote, DecodeStepMatchesReference) {
  SelectOptions o = small_options();
  expect_selection_matches(100, 1, 21, o);
  o.k = 1;
  expect_selection_matches(100, 1, 22, o);
  o.k = 40;
  o.n_init = 0;
  o.n_local = 1;
  expect_selection_matches(300, 1, 23, o);
}

TEST(TokenSelectVote, ChunkUsesMeanOfQueriesAsFingerprint) {
  SelectOptions o = small_options();
  expect_selection_matches(120, 5, 31, o);
  o.n_local = 16;
  o.k = 25;
  expect_selection_matches(400, 16, 32, o);
}

TEST(TokenSelectVote, KLargerThanCandidatesSelectsAll) {
  SelectOptions o = small_options();
  o.k = 1 << 20;
  o.always_select = true;
  auto be = make_cpu_backend(2);
  RandomKv kv(1, 50, 41);
  TokenSelectPolicy p(*be, 1, kHeads, kDim, o);
  p.set_recording(true);
  const std::vector<float> q = randn(size_t(kHeads * kDim), 42);
  p.begin_step(49, 1);
  const AttentionSet set = p.plan(0, q.data(), 1, kHeads, kv.layer(0), 49);
  std::vector<int32_t> cand(50 - 4 - 8);
  std::iota(cand.begin(), cand.end(), 4);
  EXPECT_EQ(p.last_selection()[0].positions, cand);
  ASSERT_NE(set.keys, nullptr);
  ASSERT_EQ(set.n_keys, 50);
  for (int32_t i = 0; i < 50; ++i) EXPECT_EQ(set.keys[i], i);
  // Votes over all candidates sum to the number of heads (one softmax per head).
  const auto& v = p.last_selection()[0].votes;
  EXPECT_NEAR(std::accumulate(v.begin(), v.end(), 0.0), double(kHeads), 1e-4);
}

// ---------------------------------------------------------------------------------------------
// (3) attention-set assembly and positions

TEST(TokenSelectAttentionSet, SinksSelectionLocalAndRemappedPositions) {
  const int64_t T = 150, m = 6, q_first = T - m;
  for (PositionMode pm : {PositionMode::remap, PositionMode::true_pos}) {
    SelectOptions o = small_options();
    o.positions = pm;
    auto be = make_cpu_backend(2);
    RandomKv kv(1, T, 51, 2.f);
    TokenSelectPolicy p(*be, 1, kHeads, kDim, o);
    p.set_recording(true);
    const std::vector<float> q = randn(size_t(m * kHeads * kDim), 52);
    p.begin_step(q_first, m);
    const AttentionSet set = p.plan(0, q.data(), m, kHeads, kv.layer(0), q_first);
    ASSERT_NE(set.keys, nullptr);

    const RefSelection ref = ref_select(kv.layer(0), mean_queries(q, m, kHeads), kHeads, o, T);
    std::vector<int32_t> want;
    for (int32_t t = 0; t < o.n_init; ++t) want.push_back(t);
    want.insert(want.end(), ref.positions.begin(), ref.positions.end());
    for (int64_t t = T - o.n_local; t < T; ++t) want.push_back(int32_t(t));
    const std::vector<int32_t> got(set.keys, set.keys + set.n_keys);
    EXPECT_EQ(got, want);
    EXPECT_EQ(set.n_keys, o.budget());
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
    EXPECT_EQ(std::adjacent_find(got.begin(), got.end()), got.end()) << "duplicate key";
    for (int32_t s : p.last_selection()[0].positions) {
      EXPECT_GE(s, o.n_init);
      EXPECT_LT(s, T - o.n_local);
    }

    if (pm == PositionMode::true_pos) {
      EXPECT_EQ(set.key_pos, nullptr);
      EXPECT_EQ(set.q_pos, nullptr);
      continue;
    }
    ASSERT_NE(set.key_pos, nullptr);
    ASSERT_NE(set.q_pos, nullptr);
    for (int64_t j = 0; j < set.n_keys; ++j) EXPECT_EQ(set.key_pos[j], j);
    for (int64_t i = 0; i < m; ++i) {
      const auto it = std::find(got.begin(), got.end(), int32_t(q_first + i));
      ASSERT_NE(it, got.end());
      EXPECT_EQ(set.q_pos[i], int32_t(it - got.begin())) << "query " << i;
      EXPECT_EQ(set.q_pos[i], set.n_keys - m + i);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// (4) dense path

TEST(TokenSelectDense, WithinBudgetAndFullModeAreDense) {
  auto be = make_cpu_backend(2);
  RandomKv kv(1, 300, 61);
  const std::vector<float> q = randn(size_t(kHeads * kDim), 62);
  SelectOptions o = small_options();  // budget 22
  TokenSelectPolicy p(*be, 1, kHeads, kDim, o);
  for (int64_t T : {1, 10, 21, 22}) {
    p.begin_step(T - 1, 1);
    const AttentionSet s = p.plan(0, q.data(), 1, kHeads, kv.layer(0), T - 1);
    EXPECT_EQ(s.keys, nullptr) << T;
    EXPECT_EQ(s.n_keys, T);
    EXPECT_EQ(s.key_pos, nullptr);
    EXPECT_EQ(s.q_pos, nullptr);
  }
  EXPECT_EQ(p.stats().dense_steps, 4);
  EXPECT_EQ(p.stats().selecting_steps, 0);
  p.begin_step(22, 1);
  EXPECT_NE(p.plan(0, q.data(), 1, kHeads, kv.layer(0), 22).keys, nullptr);  // T = 23 > budget
  EXPECT_EQ(p.stats().selecting_steps, 1);

  o.mode = AttentionMode::full;
  p.set_options(o);
  p.reset_stats();
  for (int64_t T : {5, 23, 300}) {
    p.begin_step(T - 1, 1);
    const AttentionSet s = p.plan(0, q.data(), 1, kHeads, kv.layer(0), T - 1);
    EXPECT_EQ(s.keys, nullptr);
    EXPECT_EQ(s.n_keys, T);
    EXPECT_EQ(s.key_pos, nullptr);
    EXPECT_EQ(s.q_pos, nullptr);
  }
  o.always_select = true;  // full mode stays dense even so
  p.set_options(o);
  p.begin_step(299, 1);
  EXPECT_EQ(p.plan(0, q.data(), 1, kHeads, kv.layer(0), 299).keys, nullptr);
  EXPECT_EQ(p.stats().dense_steps, 4);
  EXPECT_EQ(p.stats().selecting_steps, 0);
}

// ---------------------------------------------------------------------------------------------
// (5) selection cache

struct CacheFixture {
  CacheFixture() : be(make_cpu_backend(2)), kv(1, 200, 71, 2.f) {}
  AttentionSet step(TokenSelectPolicy& p, const std::vector<float>& q, int64_t T) {
    p.begin_step(T - 1, 1);
    return p.plan(0, q.data(), 1, kHeads, kv.layer(0), T - 1);
  }
  std::unique_ptr<Backend> be;
  RandomKv kv;
};

std::vector<float> orthogonal_to(const std::vector<float>& a, uint32_t seed) {
  std::vector<float> b = randn(a.size(), seed);
  double ab = 0, aa = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
  }
  for (size_t i = 0; i < a.size(); ++i) b[i] -= float(ab / aa * a[i]);
  return b;
}

TEST(TokenSelectCache, HitOnSameFingerprintMissOnOrthogonal) {
  CacheFixture f;
  SelectOptions o = small_options();
  o.cache = true;
  o.tau = 0.9f;
  TokenSelectPolicy p(*f.be, 1, kHeads, kDim, o);
  p.set_recording(true);
  const std::vector<float> q = randn(size_t(kHeads * kDim), 72);
  f.step(p, q, 150);
  EXPECT_EQ(p.stats().cache_misses, 1);
  EXPECT_EQ(p.stats().cache_hits, 0);
  const std::vector<int32_t> first = p.last_selection()[0].positions;

  // Same fingerprint, one token later: the cached selection is reused.
  const AttentionSet s = f.step(p, q, 151);
  EXPECT_EQ(p.stats().cache_hits, 1);
  EXPECT_EQ(p.stats().cache_misses, 1);
  EXPECT_EQ(p.last_selection()[0].positions, first);
  // The local window moved with T and still holds the new token; no duplicates.
  const std::vector<int32_t> keys(s.keys, s.keys + s.n_keys);
  EXPECT_EQ(keys.back(), 150);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end());
  for (int64_t t = 151 - o.n_local; t < 151; ++t) EXPECT_TRUE(std::binary_search(keys.begin(), keys.end(), int32_t(t)));

  // A nearby fingerprint (cos well above tau) also hits; an orthogonal one misses.
  std::vector<float> q_near = q;
  for (float& x : q_near) x *= 1.5f;  // scaling keeps the cosine at 1
  f.step(p, q_near, 152);
  EXPECT_EQ(p.stats().cache_hits, 2);
  const std::vector<float> q_orth = orthogonal_to(q, 73);
  f.step(p, q_orth, 153);
  EXPECT_EQ(p.stats().cache_hits, 2);
  EXPECT_EQ(p.stats().cache_misses, 2);
  const RefSelection ref = ref_select(f.kv.layer(0), mean_queries(q_orth, 1, kHeads), kHeads, o, 153);
  EXPECT_EQ(p.last_selection()[0].positions, ref.positions);

  // truncate() invalidates the cached selection.
  p.truncate(140);
  f.step(p, q_orth, 140);
  EXPECT_EQ(p.stats().cache_hits, 2);
  EXPECT_EQ(p.stats().cache_misses, 3);
  f.step(p, q_orth, 141);
  EXPECT_EQ(p.stats().cache_hits, 3);
  // set_options() clears it too.
  p.set_options(o);
  f.step(p, q_orth, 142);
  EXPECT_EQ(p.stats().cache_misses, 4);
}

TEST(TokenSelectCache, TauOneNearlyAlwaysMissesAndCacheOffNeverHits) {
  CacheFixture f;
  SelectOptions o = small_options();
  o.cache = true;
  o.tau = 1.0f;
  TokenSelectPolicy p(*f.be, 1, kHeads, kDim, o);
  std::vector<float> q = randn(size_t(kHeads * kDim), 74);
  const std::vector<float> noise = randn(q.size(), 75, 1e-2f);
  for (int i = 0; i < 10; ++i) {
    for (size_t x = 0; x < q.size(); ++x) q[x] += noise[(x + size_t(i)) % q.size()];  // small drift
    f.step(p, q, 150 + i);
  }
  EXPECT_EQ(p.stats().cache_hits, 0);
  EXPECT_EQ(p.stats().cache_misses, 10);

  o.cache = false;
  o.tau = 0.f;
  p.set_options(o);
  p.reset_stats();
  for (int i = 0; i < 5; ++i) f.step(p, q, 160 + i);  // identical fingerprints
  EXPECT_EQ(p.stats().cache_hits, 0);
  EXPECT_EQ(p.stats().cache_misses, 5);
  EXPECT_EQ(p.stats().selecting_steps, 5);
}

TEST(TokenSelectCache, PerLayerCaches) {
  auto be = make_cpu_backend(2);
  RandomKv kv(2, 200, 76, 2.f);
  SelectOptions o = small_options();
  o.cache = true;
  TokenSelectPolicy p(*be, 2, kHeads, kDim, o);
  const std::vector<float> qa = randn(size_t(kHeads * kDim), 77);
  const std::vector<float> qb = orthogonal_to(qa, 78);
  p.begin_step(149, 1);
  p.plan(0, qa.data(), 1, kHeads, kv.layer(0), 149);
  p.plan(1, qb.data(), 1, kHeads, kv.layer(1), 149);
  EXPECT_EQ(p.stats().cache_misses, 2);
  p.begin_step(150, 1);
  p.plan(0, qa.data(), 1, kHeads, kv.layer(0), 150);
  p.plan(1, qb.data(), 1, kHeads, kv.layer(1), 150);
  EXPECT_EQ(p.stats().cache_hits, 2);
}

// ---------------------------------------------------------------------------------------------
// (6) validation

void expect_invalid(const SelectOptions& o, const std::string& field) {
  try {
    o.validate();
    ADD_FAILURE() << "no error for " << field;
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::invalid_arg);
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
  }
}

TEST(TokenSelectOptions, ValidateNamesTheBadField) {
  EXPECT_NO_THROW(SelectOptions{}.validate());
  SelectOptions o;
  o.k = 0;
  expect_invalid(o, "k");
  o = {};
  o.k = -5;
  expect_invalid(o, "k");
  o = {};
  o.n_local = 0;
  expect_invalid(o, "n_local");
  o = {};
  o.n_init = -1;
  expect_invalid(o, "n_init");
  for (float tau : {-0.01f, 1.01f, NAN}) {
    o = {};
    o.tau = tau;
    expect_invalid(o, "tau");
  }
  o = {};
  o.n_init = 0;
  o.k = 1;
  o.n_local = 1;
  o.tau = 0.f;
  EXPECT_NO_THROW(o.validate());
  o.tau = 1.f;
  EXPECT_NO_THROW(o.validate());
  // The policy validates too.
  auto be = make_cpu_backend(1);
  SelectOptions bad;
  bad.k = 0;
  EXPECT_THROW(TokenSelectPolicy(*be, 1, kHeads, kDim, bad), Error);
  TokenSelectPolicy p(*be, 1, kHeads, kDim, SelectOptions{});
  EXPECT_THROW(p.set_options(bad), Error);
  EXPECT_EQ(p.options().k, SelectOptions{}.k);
}

// ---------------------------------------------------------------------------------------------
// (7) recording

TEST(TokenSelectRecording, OffByDefault) {
  auto be = make_cpu_backend(2);
  RandomKv kv(1, 100, 81);
  TokenSelectPolicy p(*be, 1, kHeads, kDim, small_options());
  EXPECT_FALSE(p.recording());
  const std::vector<float> q = randn(size_t(kHeads * kDim), 82);
  p.begin_step(99, 1);
  p.plan(0, q.data(), 1, kHeads, kv.layer(0), 99);
  EXPECT_TRUE(p.selection_counts().empty());
  EXPECT_TRUE(p.last_selection()[0].positions.empty());
}

TEST(TokenSelectRecording, CountsAccumulateOverLayersAndSteps) {
  const int32_t L = 3;
  auto be = make_cpu_backend(2);
  RandomKv kv(L, 120, 83, 2.f);
  SelectOptions o = small_options();
  TokenSelectPolicy p(*be, L, kHeads, kDim, o);
  p.set_recording(true);
  std::vector<uint32_t> want(120, 0);
  int64_t steps = 0;
  for (int64_t T = 90; T <= 120; T += 6, ++steps) {
    const int64_t m = 3;
    p.begin_step(T - m, m);
    EXPECT_GE(p.selection_counts().size(), size_t(T));
    for (int32_t l = 0; l < L; ++l) {
      const std::vector<float> q = randn(size_t(m * kHeads * kDim), uint32_t(1000 + T * 7 + l));
      p.plan(l, q.data(), m, kHeads, kv.layer(l), T - m);
      const RefSelection ref = ref_select(kv.layer(l), mean_queries(q, m, kHeads), kHeads, o, T);
      EXPECT_EQ(p.last_selection()[size_t(l)].positions, ref.positions) << "layer " << l << " T " << T;
      for (int32_t pos : ref.positions) ++want[size_t(pos)];
    }
  }
  std::vector<uint32_t> got = p.selection_counts();
  got.resize(want.size(), 0);
  EXPECT_EQ(got, want);
  EXPECT_EQ(std::accumulate(got.begin(), got.end(), uint64_t(0)), uint64_t(steps * L * o.k));

  // Binned summaries: positions [0, 120) in 7 bins; bin of p is floor(p * 7 / 120).
  const int32_t bins = 7;
  std::vector<uint64_t> want_bins(bins, 0);
  for (int64_t pos = 0; pos < 120; ++pos) want_bins[size_t(pos * bins / 120)] += want[size_t(pos)];
  EXPECT_EQ(p.binned_counts(120, bins), want_bins);
  const std::vector<float> votes = p.binned_votes(120, bins);
  ASSERT_EQ(votes.size(), size_t(L * bins));
  for (int32_t l = 0; l < L; ++l) {
    std::vector<float> row(bins, 0.f);
    const LayerSelection& sel = p.last_selection()[size_t(l)];
    for (size_t j = 0; j < sel.positions.size(); ++j) row[size_t(sel.positions[j] * bins / 120)] += sel.votes[j];
    for (int32_t b = 0; b < bins; ++b) EXPECT_FLOAT_EQ(votes[size_t(l * bins + b)], row[size_t(b)]);
  }
  EXPECT_THROW(p.binned_votes(120, 0), Error);
  p.reset_counts();
  for (uint32_t c : p.selection_counts()) EXPECT_EQ(c, 0u);
  p.truncate(50);
  EXPECT_LE(p.selection_counts().size(), size_t(50));
}

// ---------------------------------------------------------------------------------------------
// (8) CPU attention with an explicit key list and positions

void rope_adjacent(std::vector<double>& x, double pos, double base) {
  const size_t d = x.size();
  for (size_t i = 0; i < d / 2; ++i) {
    const double th = pos * std::pow(base, -2.0 * double(i) / double(d));
    const double a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = a * std::cos(th) - b * std::sin(th);
    x[2 * i + 1] = a * std::sin(th) + b * std::cos(th);
  }
}

// out[i][h] = softmax_j(rot(q_i,h) . rot(k_j,g) * scale) V_j over keys with cache index <= q_first+i.
std::vector<double> ref_attention(const AttentionArgs& a) {
  const int32_t d = a.kv.head_dim, H = a.n_heads, group = H / a.kv.n_kv_heads;
  std::vector<double> out(size_t(a.m * H * d), 0.0);
  for (int64_t i = 0; i < a.m; ++i)
    for (int32_t h = 0; h < H; ++h) {
      std::vector<double> q(a.q + (i * H + h) * d, a.q + (i * H + h + 1) * d);
      rope_adjacent(q, a.q_pos ? a.q_pos[i] : double(a.q_first + i), a.rope.freq_base);
      std::vector<double> s;
      std::vector<int64_t> idx;
      for (int64_t j = 0; j < a.n_keys; ++j) {
        const int64_t t = a.keys ? a.keys[j] : j;
        if (t > a.q_first + i) continue;
        const uint16_t* kp = a.kv.k_at(h / group, t);
        std::vector<double> k(static_cast<size_t>(d));
        for (int32_t x = 0; x < d; ++x) k[size_t(x)] = fp16_to_fp32(kp[x]);
        rope_adjacent(k, a.key_pos ? a.key_pos[j] : double(t), a.rope.freq_base);
        double dot = 0;
        for (int32_t x = 0; x < d; ++x) dot += q[size_t(x)] * k[size_t(x)];
        s.push_back(dot * a.scale);
        idx.push_back(t);
      }
      const double mx = *std::max_element(s.begin(), s.end());
      double sum = 0;
      for (double& v : s) sum += (v = std::exp(v - mx));
      double* o = out.data() + (i * H + h) * d;
      for (size_t j = 0; j < s.size(); ++j)
        for (int32_t x = 0; x < d; ++x) o[x] += s[j] / sum * fp16_to_fp32(a.kv.v_at(h / group, idx[j])[x]);
    }
  return out;
}

void expect_attention_matches(const AttentionArgs& a) {
  const std::vector<double> want = ref_attention(a);
  double max_ref = 0;
  for (double v : want) max_ref = std::max(max_ref, std::abs(v));
  for (size_t x = 0; x < want.size(); ++x)
    ASSERT_NEAR(a.out[x], want[x], 1e-2 * max_ref) << "element " << x;
}

TEST(TokenSelectCpuAttention, ExplicitKeysAndPositionsMatchNaive) {
  auto be = make_cpu_backend(2);
  RandomKv kv(1, 64, 91);
  const int64_t m = 4, q_first = 20;  // queries at cache indices 20..23
  const std::vector<float> q = randn(size_t(m * kHeads * kDim), 92);
  const std::vector<int32_t> keys = {0, 1, 5, 9, 13, 20, 21, 22, 23};
  std::vector<float> out(size_t(m * kHeads * kDim), NAN);
  AttentionArgs a;
  a.q = q.data();
  a.m = m;
  a.n_heads = kHeads;
  a.kv = kv.layer(0);
  a.q_first = q_first;
  a.rope.style = RopeStyle::adjacent;
  a.rope.head_dim = kDim;
  a.rope.freq_base = 10000.f;
  a.scale = 1.f / std::sqrt(float(kDim));
  a.out = out.data();

  // Explicit keys at true positions.
  a.keys = keys.data();
  a.n_keys = int64_t(keys.size());
  be->attention(a);
  expect_attention_matches(a);

  // Remapped positions: ranks for keys, the queries' own ranks.
  std::vector<int32_t> key_pos(keys.size()), q_pos = {5, 6, 7, 8};
  std::iota(key_pos.begin(), key_pos.end(), 0);
  a.key_pos = key_pos.data();
  a.q_pos = q_pos.data();
  be->attention(a);
  expect_attention_matches(a);
  const std::vector<float> remapped = out;

  // Large arbitrary positions (RoPE really applied: results differ from the remapped ones).
  std::vector<int32_t> far_pos = {3, 100, 250, 251, 777, 1000, 1001, 1002, 1003};
  std::vector<int32_t> far_q = {1000, 1001, 1002, 1003};
  a.key_pos = far_pos.data();
  a.q_pos = far_q.data();
  be->attention(a);
  expect_attention_matches(a);
  double diff = 0;
  for (size_t x = 0; x < out.size(); ++x) diff = std::max(diff, double(std::abs(out[x] - remapped[x])));
  EXPECT_GT(diff, 1e-2);

  // Dense over [0, 24) with a causal chunk: query 20 must not see keys 21..23.
  a.keys = nullptr;
  a.key_pos = nullptr;
  a.q_pos = nullptr;
  a.n_keys = q_first + m;
  be->attention(a);
  expect_attention_matches(a);
}

TEST(TokenSelectCpuAttention, CausalMaskWithinChunk) {
  auto be = make_cpu_backend(2);
  RandomKv kv(1, 16, 93);
  const int64_t m = 3, q_first = 5;
  const std::vector<float> q = randn(size_t(m * kHeads * kDim), 94);
  std::vector<float> out(size_t(m * kHeads * kDim));
  AttentionArgs a;
  a.q = q.data();
  a.m = m;
  a.n_heads = kHeads;
  a.kv = kv.layer(0);
  a.q_first = q_first;
  a.n_keys = q_first + m;
  a.rope.head_dim = kDim;
  a.scale = 0.25f;
  a.out = out.data();
  be->attention(a);
  const std::vector<float> before = out;
  // Changing the values of key 7 (future for queries 5 and 6) changes only query 7's output.
  KvLayerView v = kv.layer(0);
  for (int32_t h = 0; h < kKvHeads; ++h)
    for (int32_t x = 0; x < kDim; ++x) v.v_at(h, 7)[x] = fp32_to_fp16(50.f);
  be->attention(a);
  const size_t row = size_t(kHeads * kDim);
  for (size_t x = 0; x < 2 * row; ++x) EXPECT_EQ(out[x], before[x]) << x;
  double changed = 0;
  for (size_t x = 2 * row; x < 3 * row; ++x) changed = std::max(changed, double(std::abs(out[x] - before[x])));
  EXPECT_GT(changed, 1e-3);
  expect_attention_matches(a);
}

// A prefill-sized chunk (the backend may take a blocked/GEMM path from a few queries on): an
// explicit key list covering everything equals the null (dense) key list exactly, and a sparse
// list with remapped positions matches the naive reference.
TEST(TokenSelectCpuAttention, LargeChunkExplicitKeysMatchDenseAndReference) {
  auto be = make_cpu_backend(2);
  const int64_t T = 300;
  RandomKv kv(1, T, 95);
  for (int64_t m : {8, 64, 100}) {
    const int64_t q_first = T - m;
    const std::vector<float> q = randn(size_t(m * kHeads * kDim), uint32_t(96 + m));
    std::vector<float> dense(size_t(m * kHeads * kDim), NAN), all(dense.size(), NAN), sparse(dense.size(), NAN);
    AttentionArgs a;
    a.q = q.data();
    a.m = m;
    a.n_heads = kHeads;
    a.kv = kv.layer(0);
    a.q_first = q_first;
    a.rope.head_dim = kDim;
    a.scale = 1.f / std::sqrt(float(kDim));
    a.n_keys = T;
    a.out = dense.data();
    be->attention(a);
    expect_attention_matches(a);

    std::vector<int32_t> keys(static_cast<size_t>(T));
    std::iota(keys.begin(), keys.end(), 0);
    a.keys = keys.data();
    a.out = all.data();
    be->attention(a);
    for (size_t x = 0; x < dense.size(); ++x) ASSERT_EQ(all[x], dense[x]) << "m " << m << " element " << x;
    a.key_pos = keys.data();  // positions equal to the cache indices, given explicitly
    std::vector<int32_t> qp(static_cast<size_t>(m));
    std::iota(qp.begin(), qp.end(), int32_t(q_first));
    a.q_pos = qp.data();
    be->attention(a);
    for (size_t x = 0; x < dense.size(); ++x) ASSERT_EQ(all[x], dense[x]) << "m " << m << " element " << x;

    // Sinks, every third older token, then the chunk; remapped to ranks.
    std::vector<int32_t> sk;
    for (int32_t t = 0; t < q_first; ++t)
      if (t < 4 || t % 3 == 0) sk.push_back(t);
    for (int64_t t = q_first; t < T; ++t) sk.push_back(int32_t(t));
    std::vector<int32_t> kp(sk.size()), qr(static_cast<size_t>(m));
    std::iota(kp.begin(), kp.end(), 0);
    std::iota(qr.begin(), qr.end(), int32_t(sk.size() - size_t(m)));
    a.keys = sk.data();
    a.n_keys = int64_t(sk.size());
    a.key_pos = kp.data();
    a.q_pos = qr.data();
    a.out = sparse.data();
    be->attention(a);
    expect_attention_matches(a);
  }
}

}  // namespace
}  // namespace ts
