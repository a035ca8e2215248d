# Plain C99 tests of every function in capi/include/tokenselect.h: one executable per area,
# each built as strict C99 (-Wall -Wextra -pedantic -Werror) and linked only to libtokenselect,
# so they also prove the header is usable from C. All but test_basics need the default model
# (skipped, exit 77, when it has not been fetched).
if(NOT TARGET tokenselect_lib)
  return()
endif()

# name:timeout in seconds (generous: the CI machine may have 2 busy cores).
set(TS_CAPI_C_TESTS basics:30 model:60 tokens:60 session:240 heatmap:180 state:180 cancel:180 misuse:120)

foreach(entry ${TS_CAPI_C_TESTS})
  string(REPLACE ":" ";" entry ${entry})
  list(GET entry 0 name)
  list(GET entry 1 timeout)
  set(target ts_capi_c_${name})
  add_executable(${target} ${CMAKE_CURRENT_LIST_DIR}/test_${name}.c)
  target_link_libraries(${target} PRIVATE tokenselect::tokenselect Threads::Threads m)
  set_target_properties(${target} PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
  target_compile_options(${target} PRIVATE -Wall -Wextra -pedantic -Werror)
  target_compile_definitions(${target} PRIVATE TS_DEFAULT_MODEL="${TS_DEFAULT_MODEL}"
                             TS_TEST_DATA="${TS_TEST_DATA}" TS_DOCS_DIR="${PROJECT_SOURCE_DIR}/assets/docs")
  add_test(NAME capi_c_${name} COMMAND ${target})
  set_tests_properties(capi_c_${name} PROPERTIES LABELS "capi;model" TIMEOUT ${timeout} SKIP_RETURN_CODE 77)
endforeach()
