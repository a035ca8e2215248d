// The decode GEMV kernels alone: one activation row against the Llama-3-8B-shaped weight
// matrices (and the 8-row group that prefill of small models uses), per weight type, in GB/s of
// weights read against a measured device-to-device copy. Weights hold a fixed byte pattern:
// speed depends on shapes and types, not values.
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

struct Matrix {
  const char* name;
  int64_t n_out, n_in;
};
const Matrix kMatrices[] = {{"q / o 4096x4096", 4096, 4096}, {"gate / up 14336x4096", 14336, 4096},
                            {"down 4096x14336", 4096, 14336}, {"k / v 1024x4096", 1024, 4096}};
const GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K,
                           GgmlType::F16};

}  // namespace

int main() {
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, 0), "cudaGetDeviceProperties");
  const double copy = ts::bench::copy_gbps();
  fmt::print("device: {}, device-to-device copy {:.0f} GB/s (read + write)\n\n", p.name, copy);
  fmt::print("| type | matrix | MB | 1 row us | GB/s (% copy) | 8 rows us |\n|---|---|--:|--:|--:|--:|\n");
  cudaStream_t s;
  check(cudaStreamCreate(&s), "cudaStreamCreate");
  for (GgmlType t : kTypes)
    for (const Matrix& m : kMatrices) {
      const ts::TypeTraits& tt = ts::traits(t);
      const size_t row_bytes = size_t(m.n_in / tt.block_elems) * tt.block_bytes, bytes = row_bytes * size_t(m.n_out);
      void *w, *act;
      float *x, *y;
      check(cudaMalloc(&w, bytes), "cudaMalloc");
      check(cudaMemset(w, 0x11, bytes), "cudaMemset");  // fp16 scales 0x1111: small, finite
      check(cudaMalloc(&x, size_t(8 * m.n_in) * 4), "cudaMalloc");
      check(cudaMemset(x, 0, size_t(8 * m.n_in) * 4), "cudaMemset");
      check(cudaMalloc(&act, 8 * ts::cuda::act_row_bytes(t, m.n_in)), "cudaMalloc");
      check(cudaMalloc(&y, size_t(8 * m.n_out) * 4), "cudaMalloc");
      ts::cuda::launch_quantize_act(t, x, 8, m.n_in, act, s);
      const double one = median_ms(s, 50, [&] { ts::cuda::launch_gemv(t, w, row_bytes, m.n_in, m.n_out, act, 1, y, m.n_out, s); });
      const double eight = median_ms(s, 50, [&] { ts::cuda::launch_gemv(t, w, row_bytes, m.n_in, m.n_out, act, 8, y, m.n_out, s); });
      const double gbps = double(bytes) / (one * 1e-3) / 1e9;
      fmt::print("| {} | {} | {:.1f} | {:.1f} | {:.0f} ({:.0f}%) | {:.1f} |\n", ts::type_name(uint32_t(t)), m.name,
                 double(bytes) / 1e6, one * 1e3, gbps, 100 * gbps / copy, eight * 1e3);
      cudaFree(w), cudaFree(x), cudaFree(act), cudaFree(y);
    }
  return 0;
}
