// The decode GEMV kernels alone: one activation row against the Llama-3-8B-shaped weight
// matrices, alone and fused as the decode step launches them (Q/K/V, gate/up), per weight
// type, in GB/s of weights read against a measured device-to-device copy; and the 8-row group
// that prefill of small models uses. Launches run back to back (as in a replayed decode graph)
// over enough copies of the weights that none is still in L2 when it is read again. Weights
// hold a fixed byte pattern: speed depends on shapes and types, not values.
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <vector>

#include "cuda/matmul_kernels.hpp"
#include "cuda_timing.hpp"
#include "gguf/gguf_types.hpp"

using ts::GgmlType;
using ts::bench::median_ms;
using ts::cuda::check;

namespace {

constexpr int kBatch = 20;                       // back-to-back launches per timing
constexpr size_t kRotateBytes = size_t(384) << 20;  // weight copies cycled through: several times L2

// One decode launch: weights of n_in columns with these row counts.
struct Shape {
  const char* name;
  int64_t n_in;
  std::vector<int64_t> n_out;
};
const Shape kShapes[] = {{"q / o 4096x4096", 4096, {4096}},
                         {"gate / up 14336x4096", 4096, {14336}},
                         {"down 4096x14336", 14336, {4096}},
                         {"k / v 1024x4096", 4096, {1024}},
                         {"q+k+v fused", 4096, {4096, 1024, 1024}},
                         {"gate+up fused", 4096, {14336, 14336}}};
const GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K,
                           GgmlType::F16};

}  // namespace

int main() {
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, 0), "cudaGetDeviceProperties");
  const double copy = ts::bench::copy_gbps();
  fmt::print("device: {}, L2 {} MB, device-to-device copy {:.0f} GB/s (read + write)\n\n", p.name, p.l2CacheSize >> 20,
             copy);
  fmt::print("| type | weights | MB | 1 row us | GB/s (% copy) | 8 rows us |\n|---|---|--:|--:|--:|--:|\n");
  // 1 row: launch_gemv_row, as a decode step launches it; 8 rows: launch_gemv (small-model prefill).
  cudaStream_t s;
  check(cudaStreamCreate(&s), "cudaStreamCreate");
  for (GgmlType t : kTypes)
    for (const Shape& sh : kShapes) {
      const ts::TypeTraits& tt = ts::traits(t);
      const size_t row_bytes = size_t(sh.n_in / tt.block_elems) * tt.block_bytes;
      size_t bytes = 0;
      for (int64_t r : sh.n_out) bytes += row_bytes * size_t(r);
      const int copies = int(std::max<size_t>(1, (kRotateBytes + bytes - 1) / bytes));
      uint8_t* w;
      void* act;
      float *x, *y;
      check(cudaMalloc(&w, bytes * copies), "cudaMalloc");
      check(cudaMemset(w, 0x11, bytes * copies), "cudaMemset");  // fp16 scales 0x1111: small, finite
      check(cudaMalloc(&x, size_t(8 * sh.n_in) * 4), "cudaMalloc");
      check(cudaMemset(x, 0, size_t(8 * sh.n_in) * 4), "cudaMemset");
      check(cudaMalloc(&act, 8 * ts::cuda::act_row_bytes(t, sh.n_in)), "cudaMalloc");
      check(cudaMalloc(&y, size_t(8 * 32768) * 4), "cudaMalloc");
      ts::cuda::launch_quantize_act(t, x, 8, sh.n_in, act, s);
      int next = 0;
      auto one_row = [&] {
        for (int b = 0; b < kBatch; ++b, next = (next + 1) % copies) {
          ts::cuda::GemvTarget ts[ts::cuda::kGemvMaxTargets];
          const uint8_t* wc = w + bytes * size_t(next);
          for (size_t i = 0; i < sh.n_out.size(); ++i) {
            ts[i] = {wc, sh.n_out[i], y + 32768 * i};
            wc += row_bytes * size_t(sh.n_out[i]);
          }
          ts::cuda::launch_gemv_row(t, row_bytes, sh.n_in, ts, int(sh.n_out.size()), act, s);
        }
      };
      auto eight_rows = [&] {
        for (int b = 0; b < kBatch; ++b, next = (next + 1) % copies)
          ts::cuda::launch_gemv(t, w + bytes * size_t(next), row_bytes, sh.n_in, sh.n_out[0], act, 8, y,
                                sh.n_out[0], s);
      };
      const double one = median_ms(s, 15, one_row) / kBatch;
      const double eight = sh.n_out.size() == 1 ? median_ms(s, 5, eight_rows) / kBatch : 0.0;
      const double gbps = double(bytes) / (one * 1e-3) / 1e9;
      fmt::print("| {} | {} | {:.1f} | {:.1f} | {:.0f} ({:.0f}%) | {} |\n", ts::type_name(uint32_t(t)), sh.name,
                 double(bytes) / 1e6, one * 1e3, gbps, 100 * gbps / copy,
                 eight > 0 ? fmt::format("{:.1f}", eight * 1e3) : "-");
      cudaFree(w), cudaFree(x), cudaFree(act), cudaFree(y);
    }
  return 0;
}
