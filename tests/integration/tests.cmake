# Integration tests: run the real lmp with the plugin (included from tests/CMakeLists.txt).
find_program(SYSTEM_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT SYSTEM_PYTHON3)
  message(FATAL_ERROR "integration tests need Debian's /usr/bin/python3 (python3-numpy, python3-h5py)")
endif()

# Plugin variants for the load-time checks (plugin/ionmsm_plugin.cpp): one that claims to be
# built for another LAMMPS version, one whose oldest accepted LAMMPS is newer than this one.
ionmsm_add_plugin(ionmsmplugin_badversion ${IONMSM_MIN_LAMMPS_NUMBER} "${IONMSM_MIN_LAMMPS_STRING}"
  IONMSM_EXPECTED_LAMMPS_VERSION="1 Jan 2000")
ionmsm_add_plugin(ionmsmplugin_tooold 20990101 "1 Jan 2099")
foreach(_variant badversion tooold)
  set_target_properties(ionmsmplugin_${_variant} PROPERTIES EXCLUDE_FROM_ALL ON
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/${_variant} OUTPUT_NAME ionmsmplugin)
endforeach()
add_custom_target(ionmsm_test_plugins ALL DEPENDS ionmsmplugin_badversion ionmsmplugin_tooold)

set(_itest ${CMAKE_CURRENT_SOURCE_DIR}/integration/itest.py)
foreach(case md_vs_slow rerun_ranks triclinic compute every version_check bad_input cli
             li13si4_example restart npt
             restart_multitau multitau core append kill blocks restart_blocks
             append_blocks group_changes dynamic_group)
  add_test(NAME integration.${case}
    COMMAND ${SYSTEM_PYTHON3} ${_itest} ${case}
      --lmp ${LAMMPS_BINARY} --plugin-dir ${CMAKE_BINARY_DIR} --ionmsm $<TARGET_FILE:ionmsm>
      --work ${CMAKE_CURRENT_BINARY_DIR}/work/${case}
      --bad-plugin ${CMAKE_CURRENT_BINARY_DIR}/badversion/ionmsmplugin.so
      --old-plugin ${CMAKE_CURRENT_BINARY_DIR}/tooold/ionmsmplugin.so)
  set_tests_properties(integration.${case} PROPERTIES LABELS integration TIMEOUT 1200)
endforeach()
set_tests_properties(integration.rerun_ranks PROPERTIES PROCESSORS 2)

# Production faults (issue 21): full and read-only disks (a tiny tmpfs; skipped, exit 77, where
# mounting is not permitted), vanished directories, locked and damaged files, two writers on one
# file, overwrite policy, restart messages and the quiet path after read_restart.
foreach(case disk_full disk_errors vanished locked two_writers overwrite restart_quiet sites
             damaged)
  add_test(NAME faults.${case}
    COMMAND ${SYSTEM_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_faults.py ${case}
      --lmp ${LAMMPS_BINARY} --plugin-dir ${CMAKE_BINARY_DIR} --ionmsm $<TARGET_FILE:ionmsm>
      --work ${CMAKE_CURRENT_BINARY_DIR}/work/faults_${case})
  set_tests_properties(faults.${case} PROPERTIES LABELS integration TIMEOUT 900
    SKIP_RETURN_CODE 77)
endforeach()
# Site discovery (ionmsm sites): Brownian ions among known Gaussian wells, bad input
set(_stest ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_sites.py)
foreach(case wells errors)
  add_test(NAME integration.sites_${case}
    COMMAND ${SYSTEM_PYTHON3} ${_stest} ${case}
      --lmp ${LAMMPS_BINARY} --plugin-dir ${CMAKE_BINARY_DIR} --ionmsm $<TARGET_FILE:ionmsm>
      --src ${PROJECT_SOURCE_DIR} --work ${CMAKE_CURRENT_BINARY_DIR}/work/sites_${case})
  set_tests_properties(integration.sites_${case} PROPERTIES LABELS integration TIMEOUT 600)
endforeach()
set_tests_properties(integration.sites_wells PROPERTIES PROCESSORS 2)
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
