// Compiled with -std=c++17 -Wall -Wextra -pedantic -Werror: the header alone must be clean C++.
#include "tokenselect.h"

// The declarations have C linkage and fixed-width fields.
static_assert(sizeof(ts_model_info{}.n_params) == 8, "uint64_t fields");
int ts_header_cxx17_check() { return TS_VERSION_NUMBER + static_cast<int>(sizeof(ts_session_options)); }
