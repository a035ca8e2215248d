# The Python binding (capi/python/tokenselect.py, ctypes) against this build's libtokenselect and
# the default model; the test exits 77 (skipped) when the model file is missing.
if(TARGET tokenselect_lib AND Python3_Interpreter_FOUND AND NOT TS_FUZZ)
  add_test(NAME capi.python_binding
           COMMAND ${Python3_EXECUTABLE} tests/capi/test_python_binding.py
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(capi.python_binding PROPERTIES
                       LABELS "capi;model"
                       SKIP_RETURN_CODE 77
                       TIMEOUT 300
                       ENVIRONMENT "TOKENSELECT_LIBRARY=$<TARGET_FILE:tokenselect_lib>;TS_DEFAULT_MODEL=${TS_DEFAULT_MODEL};PYTHONPATH=${PROJECT_SOURCE_DIR}/capi/python")
endif()
