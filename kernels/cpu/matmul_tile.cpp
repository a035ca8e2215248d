// Public entry points of quant.hpp for the dot products and tiles: pick the kernel set once
// (AVX2 when the CPU has AVX2+FMA+F16C, unless TS_CPU_KERNELS=generic) and forward to it.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "dispatch.hpp"
#include "quant.hpp"

namespace ts::kernels {
namespace detail {
namespace {

Isa initial_isa() {
  const char* env = std::getenv("TS_CPU_KERNELS");
  if (env && std::strcmp(env, "generic") == 0) return Isa::generic;
  return cpu_has_avx2() ? Isa::avx2 : Isa::generic;
}

std::atomic<Isa>& isa_slot() {
  static std::atomic<Isa> slot{initial_isa()};
  return slot;
}

}  // namespace

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c");
  return has;
}

Isa current_isa() { return isa_slot().load(std::memory_order_relaxed); }

bool set_isa(Isa isa) {
  if (isa == Isa::avx2 && !cpu_has_avx2()) return false;
  isa_slot().store(isa, std::memory_order_relaxed);
  return true;
}

}  // namespace detail

void matmul_tile(GgmlType wt, int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0,
                 int64_t r1, const uint8_t* a, size_t a_row_bytes, int64_t m, float* y,
                 int64_t ldy) {
  if (!detail::supported_weight(wt)) throw std::invalid_argument("matmul_tile: unsupported type");
  if (n % traits(wt).block_elems != 0)
    throw std::invalid_argument("matmul_tile: row length not a multiple of the block size");
  if (r1 <= r0 || m <= 0) return;
  if (detail::current_isa() == detail::Isa::avx2)
    detail::matmul_tile_avx2(wt, n, w, w_row_bytes, r0, r1, a, a_row_bytes, m, y, ldy);
  else
    detail::matmul_tile_generic(wt, n, w, w_row_bytes, r0, r1, a, a_row_bytes, m, y, ldy);
}

float vec_dot(GgmlType wt, int64_t n, const void* w_row, const void* a_row) {
  if (!detail::supported_weight(wt)) throw std::invalid_argument("vec_dot: unsupported type");
  if (n % traits(wt).block_elems != 0)
    throw std::invalid_argument("vec_dot: row length not a multiple of the block size");
  return detail::current_isa() == detail::Isa::avx2 ? detail::vec_dot_avx2(wt, n, w_row, a_row)
                                                    : detail::vec_dot_generic(wt, n, w_row, a_row);
}

const char* active_isa() { return detail::current_isa() == detail::Isa::avx2 ? "avx2" : "generic"; }

}  // namespace ts::kernels
