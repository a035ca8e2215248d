// Internal: the two kernel sets behind quant.hpp and the switch between them. The public entry
// points call whichever set is active; tests call both sets directly to compare them.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gguf/gguf_types.hpp"

namespace ts::kernels::detail {

enum class Isa { generic, avx2 };

bool cpu_has_avx2();  // AVX2 + FMA + F16C present on this CPU
Isa current_isa();    // chosen once from the CPU and TS_CPU_KERNELS; changeable by set_isa
bool set_isa(Isa);    // for tests; false (and no change) if the CPU lacks the ISA

bool supported_weight(GgmlType t);

// Portable scalar kernels.
float vec_dot_generic(GgmlType wt, int64_t n, const void* w, const void* a);
void matmul_tile_generic(GgmlType wt, int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0,
                         int64_t r1, const uint8_t* a, size_t a_row_bytes, int64_t m, float* y,
                         int64_t ldy);

// AVX2/FMA/F16C kernels (dot_avx2.cpp, tile_avx2.cpp); only call when cpu_has_avx2().
float vec_dot_avx2(GgmlType wt, int64_t n, const void* w, const void* a);
void matmul_tile_avx2(GgmlType wt, int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0,
                      int64_t r1, const uint8_t* a, size_t a_row_bytes, int64_t m, float* y,
                      int64_t ldy);
float dot32_avx2(GgmlType wt, int64_t n, const void* w, const void* a);  // Q4_0..Q8_0 only

}  // namespace ts::kernels::detail
