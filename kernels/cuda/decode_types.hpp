// Plain structs shared by the CUDA decode-attention kernels and their host callers: the paged KV
// cache, RoPE tables, TokenSelect settings and the per-layer step state that lives in device
// memory (so a captured CUDA graph can replay decode steps without host round trips).
#pragma once
#include <cstdint>

namespace ts::cuda {

constexpr int kMaxGroup = 8;  // query heads per KV head supported by the kernels

// The activation formats an operation can also write for the matmul that reads its result next
// (as launch_quantize_act writes them): Q8_0 (for Q4_0, Q5_0, Q8_0 weights) and Q8_1 (for Q4_1,
// Q5_1), computed from the result in the same pass (quantize_q8.cuh). One row, a multiple of 32.
enum class RowQuant { none, q8_0, q8_1 };
struct RowQuantOut {
  RowQuant format = RowQuant::none;
  void* dst = nullptr;  // act_row_bytes of the row
};

// One layer's KV cache in device memory, in pages of 2^kPageShift tokens. Physical page p holds
// [n_kv_heads][page][head_dim] fp16 values in `k` (keys before RoPE) and in `v`, and, when the
// session scores on it, the same keys as fp8 (e4m3, rounded from the fp16 values) in `k8`;
// page_table maps a logical page (t >> kPageShift) to its physical page. The page size is a
// constant so that the kernels' address arithmetic is shifts and masks.
constexpr int kPageShift = 6;
struct PagedKv {
  uint16_t* k = nullptr;
  uint16_t* v = nullptr;
  uint8_t* k8 = nullptr;  // null: no fp8 copy (scoring reads k)
  const int32_t* page_table = nullptr;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
};

// RoPE as a table of (cos, sin) per position and pair: cs[(p * half + i) * 2 ..] for pair i of
// half = head_dim / 2, holding the CPU backend's values (its running-product angles, so rotated
// keys round to fp16 exactly as the CPU's and llama.cpp's do).
// Key offsets inside a pair of 8-key tiles, by which the attention turns keys (relative RoPE).
constexpr int kRopeOffsets = 16;

struct RopeTables {
  const float* cs = nullptr;  // positions x half x (cos, sin)
  int32_t neox = 0;           // 1: pairs (i, i + d/2) (qwen2); 0: adjacent pairs (2i, 2i+1)
  // Positions 0 .. kRopeOffsets - 1 of cs rounded to fp16, (cos, sin) in one word per pair.
  const uint32_t* offsets16 = nullptr;
};

struct SelectConfig {
  int32_t n_init = 128;
  int32_t n_local = 512;
  int32_t k = 2048;
  float tau = 0.9f;
  int32_t cache = 1;  // reuse the last selection when cos(fingerprint) >= tau
  int32_t remap = 1;  // RoPE positions are ranks in the attention set
  int32_t full = 0;   // dense causal attention with true positions (the baseline)
  int32_t fresh = 0;  // select afresh whatever the cache holds (a prefill chunk)
  int32_t fp8_keys = 0;  // keep an fp8 copy of the keys and score on it (half the bytes)
};

enum StepPlan : int32_t { kPlanDense = 0, kPlanReuse = 1, kPlanSelect = 2 };

// Per-layer state of the current decode step, in device memory; written by the step kernel
// (plan and selection), read by the attention kernel.
struct StepState {
  int32_t T = 0;                // tokens cached, the step's own included
  int32_t plan = kPlanDense;
  int32_t c0 = 0;               // the sinks' end (the candidates start there)
  int32_t n_sel = 0;            // size of the cached selection
  int32_t sel_local_start = 0;  // local-window start when that selection was made
  int32_t fp_valid = 0;         // a fingerprint is cached
  int32_t hits = 0;
  int32_t misses = 0;
};

}  // namespace ts::cuda
