/* ----------------------------------------------------------------------
   ionmsm plugin entry point: registers fix msm and compute msm.
   Load-time checks, in this order, each an error naming both versions:
   - LAMMPS older than IONMSM_MIN_LAMMPS_STRING (the oldest supported one, set in
     cmake/LammpsVersion.cmake with the API that makes it the oldest) is refused;
   - a LAMMPS other than the one the plugin was compiled against is refused (LAMMPS itself only
     prints a note), because the plugin uses LAMMPS's C++ classes directly.
   Then it logs which LAMMPS it was built against, with a warning when ionmsm was not tested
   with that version (README.md, "LAMMPS versions").
------------------------------------------------------------------------- */

#include "lammpsplugin.h"

#include "comm.h"
#include "compute_msm.h"
#include "error.h"
#include "fix_msm.h"
#include "lammps.h"
#include "utils.h"
#include "version.h"

#include <cstring>

using namespace LAMMPS_NS;

#ifndef IONMSM_EXPECTED_LAMMPS_VERSION
#define IONMSM_EXPECTED_LAMMPS_VERSION LAMMPS_VERSION
#endif
#ifndef IONMSM_MIN_LAMMPS_NUMBER
#error "IONMSM_MIN_LAMMPS_NUMBER/_STRING come from cmake/LammpsVersion.cmake"
#endif
#ifndef IONMSM_LAMMPS_TESTED
#define IONMSM_LAMMPS_TESTED 0
#endif
#ifndef IONMSM_TESTED_LAMMPS_STRING
#define IONMSM_TESTED_LAMMPS_STRING "(see README.md)"
#endif

static Fix *fix_msm_creator(LAMMPS *lmp, int argc, char **argv)
{
  return new FixMSM(lmp, argc, argv);
}

static Compute *compute_msm_creator(LAMMPS *lmp, int argc, char **argv)
{
  return new ComputeMSM(lmp, argc, argv);
}

extern "C" void lammpsplugin_init(void *lmpptr, void *handle, void *regfunc)
{
  auto *lmp = static_cast<LAMMPS *>(lmpptr);
  // num_ver is LAMMPS's own yyyymmdd form of its version string
  if (lmp->num_ver < IONMSM_MIN_LAMMPS_NUMBER)
    lmp->error->all(FLERR,
                    "ionmsm plugin needs LAMMPS {} or newer (Modify::get_fix_by_id, "
                    "LAMMPS_PLUGIN_PATH), but this LAMMPS is version '{}'; tested versions: {}",
                    IONMSM_MIN_LAMMPS_STRING, lmp->version, IONMSM_TESTED_LAMMPS_STRING);
  if (strcmp(lmp->version, IONMSM_EXPECTED_LAMMPS_VERSION) != 0)
    lmp->error->all(FLERR,
                    "ionmsm plugin was built for LAMMPS version '{}' but was loaded into LAMMPS "
                    "version '{}'; rebuild ionmsmplugin.so against this LAMMPS "
                    "(cmake -DLAMMPS_SOURCE_DIR=/path/to/its/src, see README)",
                    IONMSM_EXPECTED_LAMMPS_VERSION, lmp->version);
  utils::logmesg(lmp, "ionmsm plugin {} (fix msm, compute msm) built against LAMMPS {}\n",
                 IONMSM_VERSION_STRING, IONMSM_EXPECTED_LAMMPS_VERSION);
  if (!IONMSM_LAMMPS_TESTED && lmp->comm && lmp->comm->me == 0)
    lmp->error->warning(FLERR, "ionmsm was not tested with LAMMPS {} (tested: {}); run its "
                        "integration tests against it (README.md, 'LAMMPS versions')",
                        lmp->version, IONMSM_TESTED_LAMMPS_STRING);

  auto register_plugin = (lammpsplugin_regfunc) regfunc;
  lammpsplugin_t plugin;
  plugin.version = LAMMPS_VERSION;
  plugin.style = "fix";
  plugin.name = "msm";
  plugin.info = "ionmsm fix msm: in-situ Markov state model transition counting v" IONMSM_VERSION_STRING;
  plugin.author = "ionmsm developers";
  plugin.creator.v2 = (lammpsplugin_factory2 *) &fix_msm_creator;
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);

  plugin.style = "compute";
  plugin.name = "msm";
  plugin.info = "ionmsm compute msm: counts of a fix msm v" IONMSM_VERSION_STRING;
  plugin.creator.v2 = (lammpsplugin_factory2 *) &compute_msm_creator;
  (*register_plugin)(&plugin, lmp);
}
