/* Compiled with -std=c99 -Wall -Wextra -pedantic -Werror: the header alone must be clean C99. */
#include "tokenselect.h"

/* Something to compile besides the header (ISO C forbids an empty translation unit). */
int ts_header_c99_check(void) { return TS_VERSION_NUMBER + (int)sizeof(ts_model_options); }
