// Kernel launches with programmatic dependent launch (PDL, sm_90+). In a recorded decode step
// each of the launches per layer would otherwise wait for the previous kernel to drain and
// flush before its blocks are even scheduled; with PDL the next kernel's blocks are placed while
// the previous one finishes, and wait on the device (pdl_wait) before touching its results. The
// GEMV also streams its first weight chunks (which no kernel writes) before that wait.
#pragma once
#include <cuda_runtime.h>

#include <utility>

#include "decode_kernels.hpp"

namespace ts::cuda {

// Every kernel started through launch() calls this before it reads or writes memory that an
// earlier kernel of the stream writes or reads. Waiting covers the whole chain: the previous
// kernel finished, and it had waited for its own predecessor. Then it lets the next kernel
// start launching. Without PDL (older devices, eager launches) both are no-ops.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether a launch into s may overlap the kernel before it: only while a graph is recorded (a
// replayed step is where launch gaps add up), on compute capability 9.0 or newer, when every
// node it follows is a kernel (a programmatic edge joins kernels only; after a copy the launch
// stays fully ordered), and unless TS_CUDA_PDL=0 (kept for measuring the difference).
bool pdl_allowed(cudaStream_t s);

template <class... Params, class... Args>
void launch_ex(bool cooperative, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
               Args&&... args) {
  cudaLaunchAttribute attrs[2]{};
  unsigned n = 0;
  if (cooperative) {  // all blocks resident at once: grid-wide barriers are allowed
    attrs[n].id = cudaLaunchAttributeCooperative;
    attrs[n++].val.cooperative = 1;
  }
  if (pdl_allowed(s)) {
    attrs[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cfg.attrs = attrs;
  cfg.numAttrs = n;
  check(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...), "cudaLaunchKernelEx");
}

template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, Args&&... args) {
  launch_ex(false, kernel, grid, block, smem, s, std::forward<Args>(args)...);
}

// A launch whose grid (at most the device's resident blocks) may synchronise grid-wide.
template <class... Params, class... Args>
void launch_cooperative(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                        Args&&... args) {
  launch_ex(true, kernel, grid, block, smem, s, std::forward<Args>(args)...);
}

}  // namespace ts::cuda
