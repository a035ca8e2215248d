// CPU kernels over GGUF weight blocks: dequantisation, activation quantisation, and the
// quantised dot products / matrix tiles the CPU backend's matmul is built from.
//
// A weight row of type W is multiplied with an activation row quantised to W's partner
// format (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants, plain f32 for
// F32/F16/BF16), the same pairing llama.cpp uses, so results match it closely.
// AVX2/FMA/F16C code paths are chosen at run time; a portable path is always present.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gguf/gguf_types.hpp"

namespace ts::kernels {

// Dequantise `n` elements (a multiple of the block size) of type `t`.
void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);

// Bytes of `n` activations quantised as the partner format of weight type `wt`.
size_t act_row_bytes(GgmlType wt, int64_t n);
// True when weight types a and b multiply the same activation format (one quantisation serves both).
bool same_activation_format(GgmlType a, GgmlType b);
// Quantise `n` floats into the partner format of weight type `wt`.
void quantize_act_row(GgmlType wt, const float* x, void* dst, int64_t n);

// y[j * ldy + r] = dot(W row r, activation row j) for r in [r0, r1), j in [0, m).
// W rows are `w_row_bytes` apart; activation rows `a_row_bytes` apart (act_row_bytes).
// Blocked over rows and activations so weights stay in cache during multi-token prefill.
void matmul_tile(GgmlType wt, int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0,
                 int64_t r1, const uint8_t* a, size_t a_row_bytes, int64_t m, float* y,
                 int64_t ldy);

// One dot product (tests and odd shapes).
float vec_dot(GgmlType wt, int64_t n, const void* w_row, const void* a_row);

// Which code path is active ("avx2" or "generic"); TS_CPU_KERNELS=generic forces the fallback.
const char* active_isa();

}  // namespace ts::kernels
