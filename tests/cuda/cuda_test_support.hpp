// Shared by the CUDA tests: the skip without a GPU, head layouts, a random host KV cache in the
// CPU backend's layout (the reference every kernel is compared with), and host <-> device copies.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cuda/cuda_decode_attention.hpp"
#include "backend/cuda/device_buffer.hpp"
#include "cpu/vec_ops.hpp"

#define TS_SKIP_WITHOUT_GPU()                                                    \
  do {                                                                           \
    std::string why;                                                             \
    if (!ts::cuda_device_available(&why)) GTEST_SKIP() << "no CUDA device: " << why; \
  } while (0)

namespace ts::test {

struct Shape {
  int H, Hkv, D;
  RopeStyle style;
};

// A head-major fp16 cache [kv_head][cap][D] of random keys (normal, times key_scale) and values.
struct HostKv {
  int64_t cap;
  Shape s;
  std::vector<uint16_t> k, v;
  HostKv(Shape sh, int64_t capacity, uint32_t seed, float key_scale) : cap(capacity), s(sh) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> f(size_t(sh.Hkv * cap * sh.D));
    for (float& x : f) x = nd(rng) * key_scale;
    k.resize(f.size());
    kernels::vec_ops().f32_to_fp16(f.data(), k.data(), int64_t(f.size()));
    for (float& x : f) x = nd(rng);
    v.resize(f.size());
    kernels::vec_ops().f32_to_fp16(f.data(), v.data(), int64_t(f.size()));
  }
  KvLayerView view() {
    KvLayerView w;
    w.k = k.data(), w.v = v.data(), w.capacity = cap, w.n_kv_heads = s.Hkv, w.head_dim = s.D;
    return w;
  }
};

// Host vectors to and from device buffers (synchronous; the download waits for the device).
template <class T>
DeviceBuffer<T> upload(const std::vector<T>& h) {
  DeviceBuffer<T> d(h.size());
  cuda::check(cudaMemcpy(d.get(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy");
  return d;
}
template <class T>
std::vector<T> download(const DeviceBuffer<T>& d) {
  std::vector<T> h(d.size());
  cuda::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  cuda::check(cudaMemcpy(h.data(), d.get(), h.size() * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy");
  return h;
}

}  // namespace ts::test
