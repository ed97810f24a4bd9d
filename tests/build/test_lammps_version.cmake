# Tests of cmake/LammpsVersion.cmake (run with cmake -P; label `build`, needs no LAMMPS):
#   - LAMMPS version strings become yyyymmdd numbers like LAMMPS's utils::date2num, and
#     malformed ones are rejected;
#   - configuring the project against a LAMMPS source tree older than the oldest supported
#     version stops with a message naming both versions and the missing API, while the oldest
#     supported version itself configures (with a warning: it is not a tested version).
# Variables: SRC (project source dir), WORK (scratch dir).
cmake_minimum_required(VERSION 3.16)
include(${SRC}/cmake/LammpsVersion.cmake)

set(failures 0)
macro(expect_number text expected)
  ionmsm_lammps_date_number("${text}" got)
  if(NOT "${got}" STREQUAL "${expected}")
    message(SEND_ERROR "'${text}' -> '${got}', expected '${expected}'")
    math(EXPR failures "${failures} + 1")
  else()
    message(STATUS "ok: '${text}' -> '${got}'")
  endif()
endmacro()
expect_number("4 Jul 2026" 20260704)
expect_number("4 Feb 2025" 20250204)
expect_number("29 Sep 2021" 20210929)
expect_number("23 Jun 2022" 20220623)
expect_number("31 Dec 1999" 19991231)
expect_number("2 August 2023" 20230802)
expect_number("4 Jul" "")
expect_number("Jul 4 2026" "")
expect_number("4 Jux 2026" "")
expect_number("0 Jul 2026" "")
expect_number("32 Jul 2026" "")

# ordering of the numbers is the ordering of the dates
ionmsm_lammps_date_number("29 Sep 2021" a)
ionmsm_lammps_date_number("${IONMSM_MIN_LAMMPS_STRING}" m)
if(NOT m EQUAL IONMSM_MIN_LAMMPS_NUMBER)
  message(SEND_ERROR "IONMSM_MIN_LAMMPS_NUMBER ${IONMSM_MIN_LAMMPS_NUMBER} does not match '${IONMSM_MIN_LAMMPS_STRING}' (${m})")
  math(EXPR failures "${failures} + 1")
endif()
foreach(v IN LISTS IONMSM_TESTED_LAMMPS)
  ionmsm_lammps_date_number("${v}" n)
  if(n LESS m OR n STREQUAL "")
    message(SEND_ERROR "tested version '${v}' is older than the oldest supported one")
    math(EXPR failures "${failures} + 1")
  endif()
endforeach()

# configure against fake LAMMPS source trees (lammps.h + version.h only): the plugin target is
# only declared, so configuring does not need real headers
function(configure_against version out_rc out_text)
  set(fake ${WORK}/lammps-${version}/src)
  string(REPLACE " " "_" fake "${fake}")
  file(MAKE_DIRECTORY ${fake})
  file(WRITE ${fake}/lammps.h "// fake\n")
  file(WRITE ${fake}/version.h "#define LAMMPS_VERSION \"${version}\"\n")
  string(REPLACE " " "_" bdir "${WORK}/build-${version}")
  file(REMOVE_RECURSE ${bdir})
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC} -B ${bdir} -DLAMMPS_SOURCE_DIR=${fake}
    -DIONMSM_BUILD_TESTS=OFF -DIONMSM_BUILD_BENCH=OFF
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(REGEX REPLACE "[ \n]+" " " text "${out}${err}")
  set(${out_rc} ${rc} PARENT_SCOPE)
  set(${out_text} "${text}" PARENT_SCOPE)
endfunction()

configure_against("29 Sep 2021" rc text)
if(rc EQUAL 0)
  message(SEND_ERROR "configuring against LAMMPS 29 Sep 2021 succeeded; expected a refusal")
  math(EXPR failures "${failures} + 1")
endif()
foreach(needle "LAMMPS '29 Sep 2021'" "older than the oldest LAMMPS the ionmsm plugin supports, ${IONMSM_MIN_LAMMPS_STRING}"
               "Modify::get_fix_by_id" "-DIONMSM_BUILD_PLUGIN=OFF")
  string(FIND "${text}" "${needle}" pos)
  if(pos LESS 0)
    message(SEND_ERROR "refusal message lacks '${needle}':\n${text}")
    math(EXPR failures "${failures} + 1")
  endif()
endforeach()
message(STATUS "ok: LAMMPS 29 Sep 2021 refused at configure time")

configure_against("${IONMSM_MIN_LAMMPS_STRING}" rc text)
string(FIND "${text}" "is supported" pos2)
if(NOT rc EQUAL 0 OR pos2 LESS 0)
  message(SEND_ERROR "configuring against LAMMPS ${IONMSM_MIN_LAMMPS_STRING} failed or gave no 'untested' warning (rc ${rc}):\n${text}")
  math(EXPR failures "${failures} + 1")
else()
  message(STATUS "ok: LAMMPS ${IONMSM_MIN_LAMMPS_STRING} configures, with an 'untested' warning")
endif()

if(failures GREATER 0)
  message(FATAL_ERROR "${failures} check(s) failed")
endif()
message(STATUS "PASS")
