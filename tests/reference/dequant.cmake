# Bit-exact dequantisation against gguf.quants.dequantize (the Python gguf package):
# make_dequant_cases.py writes random blocks and gguf's output into a GGUF file (fixture), and
# ts_check_dequant compares dequantize_row with it. Skipped (77) without python3 / gguf.
add_executable(ts_check_dequant ${CMAKE_CURRENT_LIST_DIR}/check_dequant.cpp)
target_link_libraries(ts_check_dequant PRIVATE ts_kernels_cpu ts_gguf)

set(TS_DEQUANT_CASES ${CMAKE_CURRENT_BINARY_DIR}/dequant_cases.gguf)
if(Python3_EXECUTABLE)
  add_test(NAME reference.dequant.make_cases
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/make_dequant_cases.py
                   ${TS_DEQUANT_CASES})
  set_tests_properties(reference.dequant.make_cases PROPERTIES
                       FIXTURES_SETUP ts_dequant_cases LABELS reference SKIP_RETURN_CODE 77)
  add_test(NAME reference.dequant.check COMMAND ts_check_dequant ${TS_DEQUANT_CASES})
  set_tests_properties(reference.dequant.check PROPERTIES
                       FIXTURES_REQUIRED ts_dequant_cases LABELS reference SKIP_RETURN_CODE 77)
else()
  add_test(NAME reference.dequant.check COMMAND sh -c "echo 'python3 not found'; exit 77")
  set_tests_properties(reference.dequant.check PROPERTIES LABELS reference SKIP_RETURN_CODE 77)
endif()
