#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cpu/exact_ops.hpp"

namespace ts::kernels::avx2 {
#include "cpu/exact_ops_impl.inc"
}
