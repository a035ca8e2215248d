// When a launch may use programmatic dependent launch (launch.cuh).
#include <cstdlib>
#include <cstring>

#include "launch.cuh"

namespace ts::cuda {

namespace {

bool pdl_device() {
  static const bool ok = [] {
    const char* env = std::getenv("TS_CUDA_PDL");
    if (env && std::strcmp(env, "0") == 0) return false;
    int dev = 0, major = 0;
    return cudaGetDevice(&dev) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
  }();
  return ok;
}

}  // namespace

bool pdl_allowed(cudaStream_t s) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const cudaGraphNode_t* deps = nullptr;
  size_t n = 0;
  check(cudaStreamGetCaptureInfo(s, &status, nullptr, nullptr, &deps, nullptr, &n), "cudaStreamGetCaptureInfo");
  if (status != cudaStreamCaptureStatusActive || n == 0 || !pdl_device()) return false;
  for (size_t i = 0; i < n; ++i) {
    cudaGraphNodeType type;
    check(cudaGraphNodeGetType(deps[i], &type), "cudaGraphNodeGetType");
    if (type != cudaGraphNodeTypeKernel) return false;
  }
  return true;
}

}  // namespace ts::cuda
