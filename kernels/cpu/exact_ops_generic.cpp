#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cpu/exact_ops.hpp"

namespace ts::kernels::generic {
#include "cpu/exact_ops_impl.inc"
}
