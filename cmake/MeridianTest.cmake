# meridian_test(NAME SOURCES src... LIBS lib... [LABELS l...] [TIMEOUT s] [ARGS a...])
# Builds one test program and registers it with ctest.
function(meridian_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE mr_testlib ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  # 77: every case that ran was skipped (tests/test.h): ctest reports "Skipped".
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}" SKIP_RETURN_CODE 77
    ENVIRONMENT "MERIDIAN_BIN=$<TARGET_FILE:meridian>;ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endfunction()


# meridian_optional_subdir(dir): add_subdirectory when the folder has a
# CMakeLists.txt. Layers still under construction may be absent from a commit;
# set MERIDIAN_STRICT=ON (CI does) to make a missing folder an error.
option(MERIDIAN_STRICT "Fail when a layer folder is missing" OFF)
function(meridian_optional_subdir d)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${d}/CMakeLists.txt)
    add_subdirectory(${d})
  elseif(MERIDIAN_STRICT)
    message(FATAL_ERROR "${CMAKE_CURRENT_SOURCE_DIR}/${d} has no CMakeLists.txt")
  else()
    message(STATUS "skipping ${CMAKE_CURRENT_SOURCE_DIR}/${d}: not present")
  endif()
endfunction()
