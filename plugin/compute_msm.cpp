/* ----------------------------------------------------------------------
   ionmsm: compute msm -- LAMMPS glue. Reads the counts of a fix msm:
     global vector (3): samples taken, total counts and fraction of site changes at the lag
     global array (nsites x nsites): C[i][j] = transitions from site j to site i at the lag
     local array (7 columns): lag_steps from to shift_x shift_y shift_z count (all lags,
       0-based sites, rows held by rank 0 after the reduction over ranks)
------------------------------------------------------------------------- */

#include "compute_msm.h"

#include "comm.h"
#include "error.h"
#include "fix_msm.h"
#include "memory.h"
#include "modify.h"
#include "update.h"

#include <cstring>

using namespace LAMMPS_NS;

namespace {
constexpr int kMaxArraySites = 2048;
}

ComputeMSM::ComputeMSM(LAMMPS *lmp, int narg, char **arg) :
    Compute(lmp, narg, arg), lag_steps(-1), ilag(0), nsites(0), fix(nullptr), vec(nullptr),
    carray(nullptr), alocal(nullptr), nmax_local(0)
{
  const char *usage = "compute ID group-ID msm FIX-ID [lag L]";
  if (narg < 4) error->all(FLERR, "Illegal compute msm command: missing FIX-ID; usage: {}", usage);
  fix_id = arg[3];
  int iarg = 4;
  while (iarg < narg) {
    if (strcmp(arg[iarg], "lag") == 0) {
      if (iarg + 1 >= narg) error->all(FLERR, "Compute msm keyword 'lag' needs a value");
      lag_steps = utils::bnumeric(FLERR, arg[iarg + 1], false, lmp);
      iarg += 2;
    } else {
      error->all(FLERR, "Unknown compute msm keyword '{}'; usage: {}", arg[iarg], usage);
    }
  }
  fix = find_fix();
  nsites = fix->num_sites();
  if (lag_steps < 0) lag_steps = fix->lag_steps(0);
  ilag = fix->find_lag(lag_steps);
  if (ilag < 0)
    error->all(FLERR, "Compute msm lag {} is not one of the lags of fix msm '{}'", lag_steps,
               fix_id);

  vector_flag = 1;
  size_vector = 3;
  extvector = 0;
  memory->create(vec, 3, "compute_msm:vector");
  vector = vec;
  if (nsites <= kMaxArraySites) {
    array_flag = 1;
    size_array_rows = nsites;
    size_array_cols = nsites;
    extarray = 0;
    memory->create(carray, nsites, nsites, "compute_msm:array");
    array = carray;
  }
  local_flag = 1;
  size_local_cols = 7;
  size_local_rows = 0;
}

ComputeMSM::~ComputeMSM()
{
  memory->destroy(vec);
  memory->destroy(carray);
  memory->destroy(alocal);
}

FixMSM *ComputeMSM::find_fix()
{
  auto *f = modify->get_fix_by_id(fix_id);
  if (!f) error->all(FLERR, "Compute msm: fix ID '{}' does not exist", fix_id);
  auto *m = dynamic_cast<FixMSM *>(f);
  if (!m || strcmp(f->style, "msm") != 0)
    error->all(FLERR, "Compute msm: fix '{}' is a fix {}, not a fix msm", fix_id, f->style);
  return m;
}

void ComputeMSM::init()
{
  fix = find_fix();
  if (fix->num_sites() != nsites)
    error->all(FLERR, "Compute msm: fix msm '{}' changed its number of sites", fix_id);
  ilag = fix->find_lag(lag_steps);
  if (ilag < 0)
    error->all(FLERR, "Compute msm lag {} is not one of the lags of fix msm '{}'", lag_steps,
               fix_id);
}

void ComputeMSM::compute_vector()
{
  invoked_vector = update->ntimestep;
  fix->reduced_matrix(ilag, dense);
  double total = 0.0, stay = 0.0;
  for (int i = 0; i < nsites; ++i)
    for (int j = 0; j < nsites; ++j) {
      const double c = dense[static_cast<std::size_t>(i) * nsites + j];
      total += c;
      if (i == j) stay += c;
    }
  vec[0] = static_cast<double>(fix->num_samples());
  vec[1] = total;
  vec[2] = total > 0.0 ? (total - stay) / total : 0.0;
}

void ComputeMSM::compute_array()
{
  invoked_array = update->ntimestep;
  fix->reduced_matrix(ilag, dense);
  for (int i = 0; i < nsites; ++i)
    for (int j = 0; j < nsites; ++j) carray[i][j] = dense[static_cast<std::size_t>(i) * nsites + j];
}

void ComputeMSM::compute_local()
{
  invoked_local = update->ntimestep;
  std::vector<bigint> rows = fix->reduced_rows();    // collective; rows on rank 0
  int nrows = 0;
  if (comm->me == 0) nrows = static_cast<int>((rows.size() - nsites) / 7);
  if (nrows > nmax_local) {
    memory->destroy(alocal);
    nmax_local = nrows;
    memory->create(alocal, nmax_local, 7, "compute_msm:local");
  }
  size_local_rows = nrows;
  for (int r = 0; r < nrows; ++r) {
    const bigint *row = rows.data() + nsites + 7 * static_cast<std::size_t>(r);
    alocal[r][0] = static_cast<double>(fix->lag_steps(static_cast<int>(row[0])));
    for (int c = 1; c < 7; ++c) alocal[r][c] = static_cast<double>(row[c]);
  }
  array_local = alocal;
}

double ComputeMSM::memory_usage()
{
  return (static_cast<double>(nsites) * nsites * 2 + 7.0 * nmax_local + 3) * sizeof(double);
}
