# Integration tests: run the real lmp with the plugin (included from tests/CMakeLists.txt).
find_program(SYSTEM_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT SYSTEM_PYTHON3)
  message(FATAL_ERROR "integration tests need Debian's /usr/bin/python3 (python3-numpy, python3-h5py)")
endif()

# A plugin variant that claims to be built for another LAMMPS version (for the load-time check).
add_library(ionmsmplugin_badversion MODULE EXCLUDE_FROM_ALL ${IONMSM_PLUGIN_SOURCES})
target_include_directories(ionmsmplugin_badversion PRIVATE ${LAMMPS_SOURCE_DIR})
target_link_libraries(ionmsmplugin_badversion PRIVATE ionmsm_core MPI::MPI_CXX)
target_compile_definitions(ionmsmplugin_badversion PRIVATE LAMMPS_SMALLBIG
  IONMSM_VERSION_STRING="${PROJECT_VERSION}" IONMSM_EXPECTED_LAMMPS_VERSION="1 Jan 2000")
set_target_properties(ionmsmplugin_badversion PROPERTIES PREFIX "" SUFFIX ".so"
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/badversion OUTPUT_NAME ionmsmplugin)
add_custom_target(ionmsm_test_plugins ALL DEPENDS ionmsmplugin_badversion)

set(_itest ${CMAKE_CURRENT_SOURCE_DIR}/integration/itest.py)
foreach(case md_vs_slow rerun_ranks triclinic compute every version_check bad_input cli
             li13si4_example restart npt
             restart_multitau multitau core append kill blocks restart_blocks
             append_blocks group_changes dynamic_group)
  add_test(NAME integration.${case}
    COMMAND ${SYSTEM_PYTHON3} ${_itest} ${case}
      --lmp ${LAMMPS_BINARY} --plugin-dir ${CMAKE_BINARY_DIR} --ionmsm $<TARGET_FILE:ionmsm>
      --work ${CMAKE_CURRENT_BINARY_DIR}/work/${case}
      --bad-plugin ${CMAKE_CURRENT_BINARY_DIR}/badversion/ionmsmplugin.so)
  set_tests_properties(integration.${case} PROPERTIES LABELS integration TIMEOUT 1200)
endforeach()
set_tests_properties(integration.rerun_ranks PROPERTIES PROCESSORS 2)
include(${CMAKE_CURRENT_LIST_DIR}/examples.cmake)

# MACE tests (label `mace`, tests/integration/test_mace.py): pair_style mace from the stack that
# scripts/setup-mace builds, next to fix msm. Without that stack every case exits 77 with a
# message naming what is missing, and CTest reports it as skipped. mace.model makes the small
# model the others load (a fixture).
set(_mtest ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_mace.py)
foreach(case model load serial dd)
  add_test(NAME mace.${case}
    COMMAND ${SYSTEM_PYTHON3} ${_mtest} ${case}
      --lmp ${LAMMPS_BINARY} --plugin-dir ${CMAKE_BINARY_DIR} --ionmsm $<TARGET_FILE:ionmsm>
      --work ${CMAKE_CURRENT_BINARY_DIR}/work/mace/${case}
      --model-dir ${CMAKE_CURRENT_BINARY_DIR}/work/mace/model)
  set_tests_properties(mace.${case} PROPERTIES LABELS mace SKIP_RETURN_CODE 77 TIMEOUT 900)
endforeach()
set_tests_properties(mace.model PROPERTIES FIXTURES_SETUP mace_model)
set_tests_properties(mace.load mace.serial mace.dd PROPERTIES FIXTURES_REQUIRED mace_model)
set_tests_properties(mace.dd PROPERTIES PROCESSORS 2)
