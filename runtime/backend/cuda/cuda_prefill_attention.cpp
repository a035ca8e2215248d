// CudaPrefillAttention: gather the set once, then per query sub-block rotate the queries,
// S = Q . K^T, masked softmax into fp16 P, O = P . V (cuBLAS, or the CPU's lane chains), scatter
// O to the output.
#include "backend/cuda/cuda_prefill_attention.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/decode_kernels.hpp"
#include "cuda/exact_kernels.hpp"
#include "cuda/prefill_kernels.hpp"

namespace ts {
namespace {

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string(what) + ": " + cublasGetStatusString(s));
}

// The CPU's order costs CUDA-core products and a serial sum per score row: sets past this many
// keys (dense attention over long contexts) take the tensor cores.
constexpr int64_t kCpuOrderMaxKeys = 8192;

int to_int(int64_t x) {
  if (x > INT_MAX) throw std::runtime_error("CUDA prefill attention: a product dimension exceeds int");
  return int(x);
}

}  // namespace

CudaPrefillAttention::CudaPrefillAttention(cudaStream_t stream, bool cpu_order, size_t scratch_bytes)
    : stream_(stream), cpu_order_(cpu_order), scratch_bytes_(scratch_bytes) {
  check_cublas(cublasCreate(&cublas_), "cublasCreate");
  try {
    check_cublas(cublasSetStream(cublas_, stream_), "cublasSetStream");
    check_cublas(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  } catch (...) {
    cublasDestroy(cublas_);
    throw;
  }
}

CudaPrefillAttention::~CudaPrefillAttention() { cublasDestroy(cublas_); }

// Grows b to hold n elements, by half again at least (up to cap), so that a set that grows
// chunk by chunk reallocates rarely. Queued work may still read the old buffer: drain first.
template <class T>
void CudaPrefillAttention::grow(DeviceBuffer<T>& b, size_t n, size_t cap) {
  if (b.size() >= n) return;
  const size_t target = std::max(n, std::min(cap, b.size() + b.size() / 2));
  cuda::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  b = DeviceBuffer<T>();  // free before allocating: the old and new never coexist
  b = DeviceBuffer<T>(target);
}

void CudaPrefillAttention::run(const PrefillAttentionArgs& a) {
  const int32_t D = a.kv.head_dim, Hkv = a.kv.n_kv_heads, H = a.n_heads;
  if (D != 64 && D != 128) throw std::runtime_error("CUDA prefill attention: head_dim must be 64 or 128");
  if (Hkv < 1 || H % Hkv != 0 || H / Hkv > cuda::kMaxGroup)
    throw std::runtime_error("CUDA prefill attention: unsupported head layout");
  if (a.m <= 0) return;
  const size_t row = size_t(H) * size_t(D);  // one query's q / out values
  if (a.n_keys <= 0) {  // nothing visible: zero output, as on the CPU
    cuda::check(cudaMemsetAsync(a.out, 0, size_t(a.m) * row * sizeof(float), stream_), "cudaMemsetAsync");
    return;
  }
  const int G = H / Hkv;
  const cuda::PrefillSet set{a.keys, a.n_keys, (a.n_keys + 7) / 8 * 8, a.remap ? 1 : 0};
  const size_t n_pad = size_t(set.n_pad);
  // One query's score rows, S (f32) and P (fp16), over all heads.
  const size_t per_query = size_t(H) * n_pad * (sizeof(float) + sizeof(uint16_t));
  const int64_t mb = std::clamp<int64_t>(int64_t(scratch_bytes_ / per_query), 1, a.m);
  const size_t score_cap = scratch_bytes_ / (sizeof(float) + sizeof(uint16_t));

  grow(kg_, size_t(Hkv) * n_pad * size_t(D), SIZE_MAX);
  grow(vg_, size_t(Hkv) * n_pad * size_t(D), SIZE_MAX);
  grow(qg_, size_t(mb) * row, SIZE_MAX);
  grow(o_, size_t(mb) * row, SIZE_MAX);
  grow(s_, size_t(H) * size_t(mb) * n_pad, score_cap);
  grow(p_, size_t(H) * size_t(mb) * n_pad, score_cap);
  cuda::launch_prefill_gather(a.kv, a.rope, set, kg_.get(), vg_.get(), stream_);

  const float one = 1.f, zero = 0.f;
  const int ld = to_int(set.n_pad);
  const long long kv_stride = (long long)(n_pad) * D;
  for (int64_t i0 = 0; i0 < a.m; i0 += mb) {
    const cuda::PrefillBlock b{std::min(mb, a.m - i0), a.q_first + i0, H, D};
    // The set's indices are distinct and ascending, so the block's last query (cache index
    // q_first + mb - 1) sees at most q_first + mb of them: later columns are not computed.
    const int cols = to_int(std::min(set.n_pad, (std::min(a.n_keys, b.q_first + b.mb) + 7) / 8 * 8));
    const int rows = to_int(G * b.mb);  // KV head g's rows of Qg, S, P, O: (g * G + r) * mb + i
    cuda::launch_prefill_queries(a.q + size_t(i0) * row, b, a.rope, set, qg_.get(), stream_);

    if (cpu_order_ && a.n_keys <= kCpuOrderMaxKeys) {
      // ExactOps::dot_lanes8 as the CPU's tiles use it: S[row][key] over the head dimension with
      // the keys as A; O[row][x] over the keys with V^T (column-major Vg) as A.
      const long long rows_d = (long long)(rows) * D, rows_ld = (long long)(rows) * ld;
      cuda::launch_lanes8_products({kg_.get(), kv_stride, D, 1, qg_.get(), rows_d, D, s_.get(), rows_ld, ld}, cols,
                                   rows, D, Hkv, stream_);
      cuda::launch_prefill_softmax_exact(s_.get(), b, set, ld, cols, a.scale, p_.get(), stream_);
      cuda::launch_lanes8_products({vg_.get(), kv_stride, 1, D, p_.get(), rows_ld, ld, o_.get(), rows_d, D}, D, rows,
                                   cols, Hkv, stream_);
    } else {
      // S = Q . K^T, row-major rows x ld, is column-major ld x rows: S^T = K . Q^T. Kg row-major
      // (n_pad x D) reads column-major as K^T (D x n_pad), hence op T; Qg row-major (rows x D)
      // reads as Q^T (D x rows), op N.
      check_cublas(cublasGemmStridedBatchedEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, cols, rows, D, &one, kg_.get(),
                                              CUDA_R_16F, D, kv_stride, qg_.get(), CUDA_R_16F, D,
                                              (long long)(rows) * D, &zero, s_.get(), CUDA_R_32F, ld,
                                              (long long)(rows) * ld, Hkv, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   "cublasGemmStridedBatchedEx (Q.K^T)");
      cuda::launch_prefill_softmax(s_.get(), b, set, ld, cols, a.scale, p_.get(), stream_);

      // O = P . V, row-major rows x D, is column-major D x rows: O^T = V^T . P^T. Vg row-major
      // (n_pad x D) reads as V^T (D x n_pad) and P row-major (rows x ld) as P^T (ld x rows): both
      // op N, summed over the first `cols` keys.
      check_cublas(cublasGemmStridedBatchedEx(cublas_, CUBLAS_OP_N, CUBLAS_OP_N, D, rows, cols, &one, vg_.get(),
                                              CUDA_R_16F, D, kv_stride, p_.get(), CUDA_R_16F, ld,
                                              (long long)(rows) * ld, &zero, o_.get(), CUDA_R_32F, D,
                                              (long long)(rows) * D, Hkv, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   "cublasGemmStridedBatchedEx (P.V)");
    }
    cuda::launch_prefill_scatter(o_.get(), b, a.out + size_t(i0) * row, stream_);
  }
}

}  // namespace ts
