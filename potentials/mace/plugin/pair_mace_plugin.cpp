/* ----------------------------------------------------------------------
   Registers ACEsuit's `pair_style mace` (src/ML-MACE/pair_mace.{cpp,h} of their LAMMPS fork,
   compiled from the user's checkout, never stored here) as a LAMMPS plugin, so that it runs in
   the LAMMPS that scripts/setup builds, next to ionmsmplugin.so. Built by scripts/setup-mace.
   Like ionmsmplugin.so it refuses to load into a LAMMPS other than the one whose headers it
   was compiled against.
------------------------------------------------------------------------- */

#include "lammpsplugin.h"

#include "error.h"
#include "lammps.h"
#include "pair_mace.h"
#include "version.h"

#include <cstring>

using namespace LAMMPS_NS;

static Pair *pair_mace_creator(LAMMPS *lmp)
{
  return new PairMACE(lmp);
}

extern "C" void lammpsplugin_init(void *lmpptr, void *handle, void *regfunc)
{
  auto *lmp = static_cast<LAMMPS *>(lmpptr);
  if (strcmp(lmp->version, LAMMPS_VERSION) != 0)
    lmp->error->all(FLERR,
                    "pairmaceplugin.so was built for LAMMPS {} but is loaded into LAMMPS {}; "
                    "rebuild it with scripts/setup-mace",
                    LAMMPS_VERSION, lmp->version);

  auto register_plugin = (lammpsplugin_regfunc) regfunc;
  lammpsplugin_t plugin;
  plugin.version = LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "mace";
  plugin.info = "pair_style mace (ACEsuit ML-MACE, libtorch) as a plugin";
  plugin.author = "ACEsuit (pair style); ionmsm (plugin registration)";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &pair_mace_creator;
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);
}
