# Which LAMMPS versions the ionmsm plugin accepts (included from the top-level CMakeLists.txt).
#
# Oldest: 23 Jun 2022, the first stable release with both things the plugin relies on:
#   - Modify::get_fix_by_id() (compute msm finds its fix msm; added in the 27 Oct 2021 feature
#     release, absent from 29 Sep 2021 stable and Debian bookworm's package of it);
#   - loading *plugin.so from LAMMPS_PLUGIN_PATH at start-up (24 Mar 2022 feature release),
#     which scripts/lmp, the tests and the examples use instead of a `plugin load` line.
# Older LAMMPS is refused here (configure) and, for a plugin built some other way, when it is
# loaded (plugin/ionmsm_plugin.cpp). Tested: the versions README.md lists ("LAMMPS versions");
# a version between the oldest and the newest tested one builds and loads, with a warning that
# it is untested.
set(IONMSM_MIN_LAMMPS_STRING "23 Jun 2022")
set(IONMSM_MIN_LAMMPS_NUMBER 20220623)
set(IONMSM_TESTED_LAMMPS "4 Feb 2025" "4 Jul 2026")
list(JOIN IONMSM_TESTED_LAMMPS ", " IONMSM_TESTED_LAMMPS_STRING)

# ionmsm_lammps_date_number(<"4 Jul 2026"> <out>): yyyymmdd as LAMMPS's utils::date2num does,
# or "" when the text is not "<day> <Mon> <year>".
function(ionmsm_lammps_date_number text out)
  set(${out} "" PARENT_SCOPE)
  if(NOT text MATCHES "^([0-9]+) ([A-Za-z][a-z][a-z])[a-z]* ([0-9][0-9][0-9][0-9])$")
    return()
  endif()
  set(day ${CMAKE_MATCH_1})
  set(year ${CMAKE_MATCH_3})
  string(TOLOWER "${CMAKE_MATCH_2}" mon)
  list(FIND _ionmsm_months "${mon}" idx)
  if(idx LESS 0 OR day LESS 1 OR day GREATER 31)
    return()
  endif()
  math(EXPR num "${year} * 10000 + (${idx} + 1) * 100 + ${day}")
  set(${out} ${num} PARENT_SCOPE)
endfunction()
set(_ionmsm_months jan feb mar apr may jun jul aug sep oct nov dec)

# ionmsm_lammps_version(<version.h> <out_string> <out_number>)
function(ionmsm_lammps_version version_h out_str out_num)
  file(STRINGS "${version_h}" line REGEX "define LAMMPS_VERSION ")
  if(NOT line MATCHES "LAMMPS_VERSION \"([^\"]+)\"")
    message(FATAL_ERROR "${version_h}: no '#define LAMMPS_VERSION \"<day> <Mon> <year>\"' line; "
      "is LAMMPS_SOURCE_DIR a LAMMPS src directory?")
  endif()
  set(str "${CMAKE_MATCH_1}")
  ionmsm_lammps_date_number("${str}" num)
  if(num STREQUAL "")
    message(FATAL_ERROR "${version_h}: LAMMPS_VERSION '${str}' is not a date like '4 Jul 2026'")
  endif()
  set(${out_str} "${str}" PARENT_SCOPE)
  set(${out_num} ${num} PARENT_SCOPE)
endfunction()

# ionmsm_check_lammps_version(<string> <number> <source dir> <out_tested>): stops configuring
# for a LAMMPS older than the oldest supported one; out_tested = 1 or 0.
function(ionmsm_check_lammps_version str num srcdir out_tested)
  if(num LESS IONMSM_MIN_LAMMPS_NUMBER)
    message(FATAL_ERROR "LAMMPS '${str}' in ${srcdir} is older than the oldest LAMMPS the ionmsm "
      "plugin supports, ${IONMSM_MIN_LAMMPS_STRING} (stable): it lacks Modify::get_fix_by_id "
      "(added in 27 Oct 2021) and LAMMPS_PLUGIN_PATH auto-loading (24 Mar 2022). Tested "
      "versions: ${IONMSM_TESTED_LAMMPS_STRING}. Use a newer LAMMPS, or "
      "-DIONMSM_BUILD_PLUGIN=OFF to build only the ionmsm tool.")
  endif()
  list(FIND IONMSM_TESTED_LAMMPS "${str}" idx)
  if(idx LESS 0)
    message(WARNING "LAMMPS '${str}' is supported (not older than ${IONMSM_MIN_LAMMPS_STRING}) "
      "but ionmsm was not tested with it (tested: ${IONMSM_TESTED_LAMMPS_STRING}); run "
      "the integration tests (README.md, 'LAMMPS versions')")
    set(${out_tested} 0 PARENT_SCOPE)
  else()
    set(${out_tested} 1 PARENT_SCOPE)
  endif()
endfunction()
