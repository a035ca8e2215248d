// Decode-step attention on the GPU, TokenSelect against dense in the same run: for a model shape
// and context, every layer's attention of one decode step (plan, selection, sparse or dense
// attention) replayed from a CUDA graph, over a random fp16 paged KV cache of that many tokens.
// Prints ms per step (all layers), the dense and scoring kernels' GB/s against a measured
// device-to-device copy, and the speed-ups. Weights do not enter: this is attention only.
#include <CLI/CLI.hpp>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend/cuda/cuda_decode_attention.hpp"
#include "cuda/decode_kernels.hpp"
#include "cuda_timing.hpp"

namespace {

using ts::bench::copy_gbps;
using ts::bench::median_ms;
using ts::cuda::check;

struct ModelShape {
  std::string name;
  int layers, H, Hkv, D;
};
const ModelShape kShapes[] = {{"SmolLM2-135M", 30, 9, 3, 64}, {"Llama-3-8B", 32, 32, 8, 128}};


// One graph replay = one decode step's attention in every layer.
class StepGraph {
 public:
  enum Part { whole, plan_only, attend_only, score_only };
  StepGraph(ts::CudaDecodeAttention& att, const std::vector<float*>& q, const std::vector<float*>& out, Part part)
      : s_(att.stream()) {
    check(cudaStreamBeginCapture(s_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    for (int l = 0; l < att.shape().n_layers; ++l) {
      float* ql = q[size_t(l)];
      if (part == whole) att.attend(l, ql, out[size_t(l)]);
      if (part == plan_only) att.plan_and_select(l, ql);
      if (part == attend_only) att.attend_planned(l, out[size_t(l)]);
      if (part == score_only) att.score_only(l, ql);
    }
    check(cudaStreamEndCapture(s_, &g_), "cudaStreamEndCapture");
    check(cudaGraphInstantiate(&e_, g_, 0), "cudaGraphInstantiate");
  }
  ~StepGraph() {
    cudaGraphExecDestroy(e_);
    cudaGraphDestroy(g_);
  }
  void launch() { check(cudaGraphLaunch(e_, s_), "cudaGraphLaunch"); }

 private:
  cudaStream_t s_;
  cudaGraph_t g_{};
  cudaGraphExec_t e_{};
};

struct Row {
  std::string shape;
  int64_t T;
  double dense_ms, dense_gbps, miss_ms, hit_ms, score_gbps;
  double miss8_ms, score8_gbps;  // scoring the keys' fp8 copy
  double hit_rate;
  double hit_plan_ms, hit_attend_ms;  // the hit step's two halves, timed apart
  double miss_select_ms, miss8_select_ms, miss_attend_ms;  // the same for a miss (fp16, fp8 keys)
};

Row run(const ModelShape& m, int64_t T, int reps) {
  ts::CudaDecodeShape shape{m.layers, m.H, m.Hkv, m.D, T, {ts::RopeStyle::adjacent, m.D, 10000.f, nullptr}};
  ts::cuda::SelectConfig cfg;  // n_init 128, n_local 512, k 2048, tau 0.9
  ts::CudaDecodeAttention att(shape, cfg);
  att.fill_random_kv(1, 1.f);
  const size_t hd = size_t(m.H) * size_t(m.D);
  std::vector<float*> q(size_t(m.layers)), out(size_t(m.layers));
  std::vector<float> qh(hd);
  for (size_t i = 0; i < hd; ++i) qh[i] = std::sin(float(i) * 0.37f) * 2.f;
  for (int l = 0; l < m.layers; ++l) {
    check(cudaMalloc(&q[size_t(l)], hd * 4), "cudaMalloc");
    check(cudaMalloc(&out[size_t(l)], hd * 4), "cudaMalloc");
    check(cudaMemcpy(q[size_t(l)], qh.data(), hd * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  const double layers = m.layers;
  const double kv_bytes = double(T) * m.Hkv * m.D * 2 * 2 * layers;  // K and V, fp16
  const int64_t n_cand = std::max<int64_t>(0, T - cfg.n_init - cfg.n_local);
  // Scoring reads each candidate's key (2 bytes a value, 1 from the fp8 copy) and writes its scores.
  const auto key_bytes = [&](int bytes) {
    return double(n_cand) * m.Hkv * m.D * bytes * layers + double(n_cand) * m.H * 4 * layers;
  };
  Row r{};
  r.shape = m.name;
  r.T = T;

  auto time_step = [&](const ts::cuda::SelectConfig& c, int64_t max_keys, StepGraph::Part part) {
    att.set_config(c);
    att.set_tokens(int32_t(T));
    att.plan_splits(max_keys);
    for (int l = 0; l < m.layers; ++l) att.attend(l, q[size_t(l)], out[size_t(l)]);  // the plan the scoring reads
    StepGraph g(att, q, out, part);
    return median_ms(att.stream(), reps, [&] { g.launch(); });
  };
  ts::cuda::SelectConfig dense = cfg;
  dense.full = 1;
  r.dense_ms = time_step(dense, T, StepGraph::whole);
  r.dense_gbps = kv_bytes / (r.dense_ms * 1e-3) / 1e9;
  ts::cuda::SelectConfig miss = cfg;
  miss.cache = 0;
  const int64_t budget = cfg.n_init + cfg.k + cfg.n_local;
  r.miss_ms = time_step(miss, budget, StepGraph::whole);
  r.miss_select_ms = time_step(miss, budget, StepGraph::plan_only);
  r.miss_attend_ms = time_step(miss, budget, StepGraph::attend_only);
  r.hit_ms = time_step(cfg, budget, StepGraph::whole);  // same query each step: hits after the first
  const ts::CudaDecodeAttention::Stats st = att.stats();
  r.hit_plan_ms = time_step(cfg, budget, StepGraph::plan_only);
  r.hit_attend_ms = time_step(cfg, budget, StepGraph::attend_only);
  r.hit_rate = st.hits + st.misses ? double(st.hits) / double(st.hits + st.misses) : 0;
  if (n_cand > 0) r.score_gbps = key_bytes(2) / (time_step(miss, T, StepGraph::score_only) * 1e-3) / 1e9;
  ts::cuda::SelectConfig miss8 = miss;
  miss8.fp8_keys = 1;
  r.miss8_ms = time_step(miss8, budget, StepGraph::whole);
  r.miss8_select_ms = time_step(miss8, budget, StepGraph::plan_only);
  if (n_cand > 0) r.score8_gbps = key_bytes(1) / (time_step(miss8, T, StepGraph::score_only) * 1e-3) / 1e9;
  for (int l = 0; l < m.layers; ++l) {
    cudaFree(q[size_t(l)]);
    cudaFree(out[size_t(l)]);
  }
  return r;
}

std::vector<int64_t> parse_contexts(const std::string& s) {
  std::vector<int64_t> v;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string x = s.substr(i, j - i);
    int64_t mult = 1;
    if (!x.empty() && (x.back() == 'k' || x.back() == 'K')) mult = 1024, x.pop_back();
    if (!x.empty() && (x.back() == 'm' || x.back() == 'M')) mult = 1024 * 1024, x.pop_back();
    v.push_back(std::stoll(x) * mult);
    i = j + 1;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Decode-step attention on the GPU: TokenSelect vs dense"};
  std::string small_ctx = "8k,32k,128k,512k,1m", large_ctx = "8k,32k,128k";
  int reps = 20;
  app.add_option("--small", small_ctx, "contexts for SmolLM2-135M's shape");
  app.add_option("--large", large_ctx, "contexts for Llama-3-8B's shape");
  app.add_option("--reps", reps, "timed replays per figure (median)");
  CLI11_PARSE(app, argc, argv);
  std::string why;
  if (!ts::cuda_device_available(&why)) {
    fmt::print(stderr, "no CUDA device: {}\n", why);
    return 1;
  }
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, 0), "cudaGetDeviceProperties");
  const double copy = copy_gbps();
  fmt::print("device: {} ({} SMs), device-to-device copy {:.0f} GB/s (read + write)\n", p.name, p.multiProcessorCount, copy);
  fmt::print("attention of one decode step, all layers, ms (median of {} CUDA graph replays); TokenSelect n_init 128, k 2048, n_local 512\n\n", reps);
  std::vector<Row> rows;
  for (const ModelShape& m : kShapes)
    for (int64_t T : parse_contexts(&m == &kShapes[0] ? small_ctx : large_ctx)) {
      rows.push_back(run(m, T, reps));
      const Row& r = rows.back();
      fmt::print(stderr, "done {} {}\n", r.shape, r.T);
    }
  fmt::print("| shape | context | dense ms | dense GB/s (% copy) | TS miss ms | x dense | TS hit ms | x dense | hit rate | scoring GB/s (% copy) |\n");
  fmt::print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows)
    fmt::print("| {} | {} | {:.3f} | {:.0f} ({:.0f}%) | {:.3f} | {:.1f} | {:.3f} | {:.1f} | {:.2f} | {:.0f} ({:.0f}%) |\n", r.shape, r.T,
               r.dense_ms, r.dense_gbps, 100 * r.dense_gbps / copy, r.miss_ms, r.dense_ms / r.miss_ms, r.hit_ms,
               r.dense_ms / r.hit_ms, r.hit_rate, r.score_gbps, 100 * r.score_gbps / copy);
  fmt::print("\nScoring the keys' fp8 copy (--scoring-keys fp8), selection cache off:\n\n");
  fmt::print("| shape | context | TS miss ms, fp8 keys | x dense | scoring GB/s (% copy) |\n|---|---:|---:|---:|---:|\n");
  for (const Row& r : rows)
    fmt::print("| {} | {} | {:.3f} | {:.1f} | {:.0f} ({:.0f}%) |\n", r.shape, r.T, r.miss8_ms, r.dense_ms / r.miss8_ms,
               r.score8_gbps, 100 * r.score8_gbps / copy);
  fmt::print("\nTS hit step in two halves, timed apart (ms per step, all layers): plan and selection launch (returning after the plan) | attention\n");
  for (const Row& r : rows) fmt::print("  {} {}: {:.3f} | {:.3f}\n", r.shape, r.T, r.hit_plan_ms, r.hit_attend_ms);
  fmt::print("\nTS miss step in parts, timed apart (ms per step, all layers): selection launch with fp16 keys | with fp8 keys | attention\n");
  for (const Row& r : rows)
    fmt::print("  {} {}: {:.3f} | {:.3f} | {:.3f}\n", r.shape, r.T, r.miss_select_ms, r.miss8_select_ms, r.miss_attend_ms);
  return 0;
}
