/* ----------------------------------------------------------------------
   ionmsm plugin entry point: registers fix msm and compute msm.
   Refuses to load into a LAMMPS other than the one it was compiled against (LAMMPS
   itself only prints a note), because the plugin uses LAMMPS's C++ classes directly.
------------------------------------------------------------------------- */

#include "lammpsplugin.h"

#include "compute_msm.h"
#include "error.h"
#include "fix_msm.h"
#include "lammps.h"
#include "version.h"

#include <cstring>

using namespace LAMMPS_NS;

#ifndef IONMSM_EXPECTED_LAMMPS_VERSION
#define IONMSM_EXPECTED_LAMMPS_VERSION LAMMPS_VERSION
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
  if (strcmp(lmp->version, IONMSM_EXPECTED_LAMMPS_VERSION) != 0)
    lmp->error->all(FLERR,
                    "ionmsm plugin was built for LAMMPS version '{}' but was loaded into LAMMPS "
                    "version '{}'; rebuild ionmsmplugin.so against this LAMMPS "
                    "(cmake -DLAMMPS_SOURCE_DIR=/path/to/its/src, see README)",
                    IONMSM_EXPECTED_LAMMPS_VERSION, lmp->version);

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
