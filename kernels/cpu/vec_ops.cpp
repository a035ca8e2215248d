#include "cpu/vec_ops.hpp"

#include "cpu/exact_ops.hpp"

#include <cstdlib>
#include <cstring>

namespace ts::kernels {

const VecOps& vec_ops() {
  static const VecOps& ops = [&]() -> const VecOps& {
    const char* force = std::getenv("TS_CPU_KERNELS");
    const bool generic_only = force && std::strcmp(force, "generic") == 0;
    __builtin_cpu_init();
    if (!generic_only && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
      return avx2::vec_ops_table;
    return generic::vec_ops_table;
  }();
  return ops;
}

const ExactOps& exact_ops() {
  return &vec_ops() == &avx2::vec_ops_table ? avx2::exact_ops_table : generic::exact_ops_table;
}

}  // namespace ts::kernels
