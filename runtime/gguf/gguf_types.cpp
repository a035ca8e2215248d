#include "gguf/gguf_types.hpp"

namespace ts {

const TypeTraits* type_traits(uint32_t id) noexcept {
  static const TypeTraits f32{"F32", 1, 4, true}, f16{"F16", 1, 2, true}, bf16{"BF16", 1, 2, true},
      q4_0{"Q4_0", 32, 18, true}, q4_1{"Q4_1", 32, 20, true}, q5_0{"Q5_0", 32, 22, true},
      q5_1{"Q5_1", 32, 24, true}, q8_0{"Q8_0", 32, 34, true}, q8_1{"Q8_1", 32, 36, false},
      q2_k{"Q2_K", 256, 84, false}, q3_k{"Q3_K", 256, 110, false}, q4_k{"Q4_K", 256, 144, true},
      q5_k{"Q5_K", 256, 176, true}, q6_k{"Q6_K", 256, 210, true}, q8_k{"Q8_K", 256, 292, false};
  switch (id) {
    case 0: return &f32;
    case 1: return &f16;
    case 2: return &q4_0;
    case 3: return &q4_1;
    case 6: return &q5_0;
    case 7: return &q5_1;
    case 8: return &q8_0;
    case 9: return &q8_1;
    case 10: return &q2_k;
    case 11: return &q3_k;
    case 12: return &q4_k;
    case 13: return &q5_k;
    case 14: return &q6_k;
    case 15: return &q8_k;
    case 30: return &bf16;
    default: return nullptr;
  }
}

const char* type_name(uint32_t id) noexcept {
  const TypeTraits* t = type_traits(id);
  return t ? t->name : "unknown";
}

}  // namespace ts
