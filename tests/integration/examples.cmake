# Example tests (label `examples`): the examples in shortened form, run through their index
# variables and script options (tests/integration/test_examples.py). Included from tests.cmake.
set(_etest ${CMAKE_CURRENT_LIST_DIR}/test_examples.py)
foreach(case li12si7_short finite_size_tiny temperature_tiny arrhenius_fit aimd_rerun)
  add_test(NAME examples.${case}
    COMMAND ${SYSTEM_PYTHON3} ${_etest} ${case}
      --lmp ${LAMMPS_BINARY} --plugin-dir ${CMAKE_BINARY_DIR} --ionmsm $<TARGET_FILE:ionmsm>
      --src ${PROJECT_SOURCE_DIR} --work ${CMAKE_CURRENT_BINARY_DIR}/work/examples/${case})
  set_tests_properties(examples.${case} PROPERTIES LABELS examples TIMEOUT 600)
endforeach()
# examples/landscape/run.sh, shortened (tests/integration/test_sites.py example)
add_test(NAME examples.landscape_tiny
  COMMAND ${SYSTEM_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_sites.py example
    --lmp ${LAMMPS_BINARY} --plugin-dir ${CMAKE_BINARY_DIR} --ionmsm $<TARGET_FILE:ionmsm>
    --src ${PROJECT_SOURCE_DIR} --work ${CMAKE_CURRENT_BINARY_DIR}/work/examples/landscape_tiny)
set_tests_properties(examples.landscape_tiny PROPERTIES LABELS examples TIMEOUT 600)
