// matmul_tile throughput, one thread: weight types x shapes x m (1 = decode, 512 = prefill) x
// kernel set. Counters: GFLOP/s (2*n*rows*m per call) and weight GB/s (weight bytes per call).
//   ts_bench_kernels --benchmark_filter='Q4_1'
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/dispatch.hpp"
#include "cpu/quant.hpp"

namespace {
using namespace ts;
using namespace ts::kernels;

// Random valid rows: random quant bytes with the scales overwritten by small halves.
std::vector<uint8_t> weights(GgmlType t, int64_t rows, int64_t n) {
  std::vector<uint8_t> w(size_t(rows * row_bytes(t, n)));
  std::mt19937 rng(1);
  for (auto& b : w) b = uint8_t(rng());
  const int64_t be = traits(t).block_elems, bb = traits(t).block_bytes;
  const uint16_t h = 0x1c00;  // 2^-8
  if (be > 1)
    for (int64_t k = 0; k < rows * n / be; ++k) {
      uint8_t* p = w.data() + k * bb + (t == GgmlType::Q6_K ? 208 : 0);
      std::memcpy(p, &h, 2);
      if (t == GgmlType::Q4_1 || t == GgmlType::Q5_1 || t == GgmlType::Q4_K || t == GgmlType::Q5_K)
        std::memcpy(p + 2, &h, 2);
    }
  return w;
}

void bench_tile(benchmark::State& st, GgmlType t, int64_t n, int64_t rows, int64_t m,
                detail::Isa isa) {
  if (!detail::set_isa(isa)) {
    st.SkipWithError("ISA not available");
    return;
  }
  const auto w = weights(t, rows, n);
  const size_t arb = act_row_bytes(t, n);
  std::vector<uint8_t> a(arb * size_t(m));
  std::mt19937 rng(2);
  std::normal_distribution<float> nd;
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t j = 0; j < m; ++j) {
    for (auto& v : x) v = nd(rng);
    quantize_act_row(t, x.data(), a.data() + j * arb, n);
  }
  std::vector<float> y(static_cast<size_t>(rows * m));
  for (auto _ : st) {
    matmul_tile(t, n, w.data(), size_t(row_bytes(t, n)), 0, rows, a.data(), arb, m, y.data(), rows);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double calls = double(st.iterations());
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * rows * m * calls / 1e9, benchmark::Counter::kIsRate);
  st.counters["wGB/s"] = benchmark::Counter(double(w.size()) * calls / 1e9, benchmark::Counter::kIsRate);
}

void register_all() {
  const GgmlType types[] = {GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K,
                            GgmlType::Q6_K, GgmlType::F16};
  const int64_t shapes[][2] = {{576, 1536}, {1536, 576}};  // {n (row length), rows}
  for (GgmlType t : types)
    for (const auto& s : shapes)
      for (int64_t m : {1, 512})
        for (auto isa : {detail::Isa::avx2, detail::Isa::generic}) {
          const std::string name = std::string(traits(t).name) + "/n" + std::to_string(s[0]) + "x" +
                                   std::to_string(s[1]) + "/m" + std::to_string(m) + "/" +
                                   (isa == detail::Isa::avx2 ? "avx2" : "generic");
          benchmark::RegisterBenchmark(name.c_str(), bench_tile, t, s[0], s[1], m, isa)
              ->Unit(benchmark::kMicrosecond);
        }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
