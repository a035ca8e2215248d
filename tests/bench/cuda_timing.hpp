// Timing helpers of the GPU benchmarks: the median of event-timed runs, and the
// device-to-device copy rate every bandwidth figure is compared with.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "cuda/decode_kernels.hpp"

namespace ts::bench {

using ts::cuda::check;

// Median ms of `reps` runs of f, timed with events after 3 warm-ups.
template <class F>
double median_ms(cudaStream_t s, int reps, F&& f) {
  for (int i = 0; i < 3; ++i) f();
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "cudaEventCreate");
  check(cudaEventCreate(&b), "cudaEventCreate");
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    check(cudaEventRecord(a, s), "cudaEventRecord");
    f();
    check(cudaEventRecord(b, s), "cudaEventRecord");
    check(cudaEventSynchronize(b), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
    t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

// GB/s of a large device-to-device copy, counting bytes read and written.
inline double copy_gbps() {
  const size_t n = size_t(4) << 30;
  void *x, *y;
  check(cudaMalloc(&x, n), "cudaMalloc");
  check(cudaMalloc(&y, n), "cudaMalloc");
  check(cudaMemset(x, 1, n), "cudaMemset");
  const double ms = median_ms(nullptr, 10, [&] { check(cudaMemcpyAsync(y, x, n, cudaMemcpyDeviceToDevice, nullptr), "copy"); });
  cudaFree(x);
  cudaFree(y);
  return 2.0 * double(n) / (ms * 1e-3) / 1e9;
}

}  // namespace ts::bench
