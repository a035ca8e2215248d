#include <cmath>
#include <cstring>

#include "cpu/exact_ops.hpp"

namespace ts::kernels::generic {
#include "cpu/exact_ops_impl.inc"
}
