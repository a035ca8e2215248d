#include <cmath>
#include <cstring>

#include "cpu/vec_ops.hpp"
#include "util/fp16.hpp"

namespace ts::kernels::generic {
#include "cpu/vec_ops_impl.inc"
}
