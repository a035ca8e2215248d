// ggml tensor type ids and their block geometry (FORMATS.md "ggml type ids and blocks").
#pragma once
#include <cstdint>

namespace ts {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};

struct TypeTraits {
  const char* name;
  int64_t block_elems;  // elements per block (1 for float types)
  int64_t block_bytes;  // bytes per block
  bool weight_supported;  // the runtime can compute with weights of this type
};

// Traits for a raw type id, or nullptr if the id is unknown to the runtime.
const TypeTraits* type_traits(uint32_t type_id) noexcept;
inline const TypeTraits& traits(GgmlType t) noexcept { return *type_traits(uint32_t(t)); }
const char* type_name(uint32_t type_id) noexcept;  // "Q4_1", or "unknown"

// Bytes of one row of `n` elements; n must be a multiple of the block size.
inline int64_t row_bytes(GgmlType t, int64_t n) noexcept {
  const TypeTraits& tt = traits(t);
  return n / tt.block_elems * tt.block_bytes;
}

}  // namespace ts
