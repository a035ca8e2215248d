#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "cpu/exact_ops.hpp"

namespace ts::kernels::avx2 {
#include "cpu/exact_ops_impl.inc"
}
