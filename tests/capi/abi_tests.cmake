# ABI and packaging checks of libtokenselect (label capi); the scripts are in abi/.
set(TS_ABI_DIR ${CMAKE_CURRENT_SOURCE_DIR}/abi)

# The header alone compiles as C99 and as C++17 with warnings as errors: checked at build time.
add_library(ts_capi_header_check OBJECT ${TS_ABI_DIR}/header_c99.c ${TS_ABI_DIR}/header_cxx17.cpp)
target_include_directories(ts_capi_header_check PRIVATE ${PROJECT_SOURCE_DIR}/capi/include)
set_target_properties(ts_capi_header_check PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF
                      CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
target_compile_options(ts_capi_header_check PRIVATE -Wall -Wextra -pedantic -Werror)

# The rest runs the shared library from outside: not in sanitizer or fuzzing builds, whose .so
# needs the sanitizer runtime loaded first (and whose CI stages run unit tests only).
if(TS_SANITIZE OR TS_FUZZ)
  return()
endif()

# Exported symbols == the TS_API declarations of the header.
if(Python3_Interpreter_FOUND)
  if(NOT CMAKE_NM)
    set(CMAKE_NM nm)
  endif()
  add_test(NAME capi_exports COMMAND Python3::Interpreter ${TS_ABI_DIR}/check_exports.py ${CMAKE_NM}
           $<TARGET_FILE:tokenselect_lib> ${PROJECT_SOURCE_DIR}/capi/include/tokenselect.h)
  set_tests_properties(capi_exports PROPERTIES LABELS capi)
endif()

# Out-of-tree consumer: install the build tree into a scratch prefix, then build and run
# abi/consumer/consumer.c through pkg-config and through find_package().
foreach(step install pkgconfig cmake)
  add_test(NAME capi_consumer_${step} COMMAND bash ${TS_ABI_DIR}/consumer.sh ${step})
  set_tests_properties(capi_consumer_${step} PROPERTIES LABELS capi SKIP_RETURN_CODE 77 TIMEOUT 300
    ENVIRONMENT "TS_BUILD_DIR=${PROJECT_BINARY_DIR};TS_WORK=${CMAKE_CURRENT_BINARY_DIR}/consumer;\
TS_CONSUMER_SRC=${TS_ABI_DIR}/consumer;TS_MODEL=${TS_DEFAULT_MODEL};CMAKE_COMMAND=${CMAKE_COMMAND};\
CC=${CMAKE_C_COMPILER};PKG_CONFIG=${PKG_CONFIG_EXECUTABLE}")
endforeach()
set_tests_properties(capi_consumer_install PROPERTIES FIXTURES_SETUP ts_capi_installed)
set_tests_properties(capi_consumer_pkgconfig capi_consumer_cmake PROPERTIES FIXTURES_REQUIRED ts_capi_installed)

# ABI against the committed baseline (packaging/update-abi.sh); skipped without abidiff.
add_test(NAME capi_abidiff COMMAND bash ${TS_ABI_DIR}/abi_check.sh ${PROJECT_SOURCE_DIR}/capi/abi/libtokenselect.abi
         $<TARGET_FILE:tokenselect_lib> ${PROJECT_SOURCE_DIR}/capi/include ${PROJECT_VERSION})
set_tests_properties(capi_abidiff PROPERTIES LABELS capi SKIP_RETURN_CODE 77)
