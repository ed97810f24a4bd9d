/* ----------------------------------------------------------------------
   ionmsm: fix msm -- LAMMPS glue only. Parses its arguments into an ionmsm::CountingConfig
   (fix_msm_args.cpp), hands unwrapped positions to the ionmsm core (site assignment and
   transition counting), keeps the per-atom records that migrate with atoms
   (fix_msm_atoms.cpp), reduces counts over ranks and writes the counts file on rank 0
   (fix_msm_output.cpp). This file: the fix's lifecycle and one sample.
------------------------------------------------------------------------- */

#include "fix_msm.h"

#include "atom.h"
#include "atom_masks.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "group.h"
#include "memory.h"
#include "update.h"

#include "ionmsm/blocks.hpp"
#include "ionmsm/counting.hpp"
#include "ionmsm/geometry.hpp"
#include "ionmsm/site_assigner.hpp"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>

using namespace LAMMPS_NS;
using namespace FixConst;

/* ---------------------------------------------------------------------- */

FixMSM::FixMSM(LAMMPS *lmp, int narg, char **arg) :
    Fix(lmp, narg, arg), ndoubles(0), assign_ndoubles(0), hist(nullptr), last_sampled(-1),
    first_sampled(-1), natoms_group(0), counting_started(false), drop_outside(true),
    dt_used(-1.0), base_first_step(-1), base_last_step(-1), n_outside(0)
{
  for (int i = 0; i < narg; ++i) command_line += (i ? " " : "") + std::string(arg[i]);
  command_line = "fix " + command_line;
  parse_args(narg, arg);

  if (!domain->xperiodic || !domain->yperiodic || !domain->zperiodic)
    error->all(FLERR, "Fix msm requires a box that is periodic in x, y and z");
  // (a dynamic group is filled when a run starts: it may be empty now)
  if (group->count(igroup) == 0 && !group->dynamic[igroup])
    error->all(FLERR, "Fix msm group '{}' has no atoms", group->names[igroup]);

  load_sites();
  check_core_radius();
  create_counter();

  restart_global = 1;
  restart_peratom = 1;
  create_attribute = 1;    // atoms created during a run get a cleared record (set_arrays)
  dynamic_group_allow = 1; // membership is checked at every sample (see sample())
  nevery = static_cast<int>(config.nevery_steps);
  maxexchange = ndoubles;
  time_depend = 0;
  // narrow data masks: a Kokkos build syncs only what this fix reads, and nothing back
  datamask_read = X_MASK | IMAGE_MASK | MASK_MASK | TAG_MASK;
  datamask_modify = EMPTY_MASK;

  FixMSM::grow_arrays(atom->nmax);
  atom->add_callback(Atom::GROW);
  atom->add_callback(Atom::RESTART);
  for (int i = 0; i < atom->nlocal; ++i) FixMSM::set_arrays(i);

  prepare_output();
}

/* ---------------------------------------------------------------------- */

FixMSM::~FixMSM()
{
  if (copymode) return;
  atom->delete_callback(id, Atom::GROW);
  atom->delete_callback(id, Atom::RESTART);
  std::free(hist_data);
  memory->sfree(hist);
}

/* ----------------------------------------------------------------------
   the counter, the block recorder and the per-atom record size
------------------------------------------------------------------------- */

void FixMSM::create_counter()
{
  const bool blocks = config.block_steps > 0;
  try {
    counter = std::make_unique<ionmsm::TransitionCounter>(site_frac.size() / 3,
                                                          config.lag_samples(), config.history);
    counter->set_site_fractional(site_fractional());
    if (blocks)
      recorder = std::make_unique<ionmsm::BlockRecorder>(
          config.block_steps / config.nevery_steps, counter->nsites(), config.lag_steps.size());
  } catch (std::exception &e) {
    error->all(FLERR, "Fix msm: {}", e.what());
  }
  const bigint longest = config.lag_steps.back();
  if (blocks && config.block_steps < longest && comm->me == 0)
    error->warning(FLERR, "Fix msm blocks {} is shorter than the longest lag {}: pairs of one "
                   "block then depend on the previous blocks, and bootstrap error bars come out "
                   "too small (use blocks of at least 10 times the longest lag)",
                   config.block_steps, longest);
  const bool core = config.assign == ionmsm::AssignMode::Core;
  assign_ndoubles = core ? CorePrefix::kSize : NearestPrefix::kSize;
  ndoubles = assign_ndoubles + counter->doubles_per_atom();
  use_quiet = !core && config.history.mode == ionmsm::HistoryConfig::Mode::Full;
}

void FixMSM::update_box()
{
  locator->set_box(ionmsm::Box::from_lammps(domain->boxlo, domain->boxhi, domain->xy,
                                            domain->xz, domain->yz));
  if (assigner) assigner->refresh();
}

/* ---------------------------------------------------------------------- */

int FixMSM::setmask()
{
  return END_OF_STEP;
}

void FixMSM::init()
{
  if (!domain->xperiodic || !domain->yperiodic || !domain->zperiodic)
    error->all(FLERR, "Fix msm requires a box that is periodic in x, y and z");
  decide_output();
}

void FixMSM::setup(int /*vflag*/)
{
  // The counter integrates the pairs its atoms hold; atoms may have been read from a restart,
  // deleted or created since the last run: rebuild those rates from the per-atom records.
  try {
    // records of atoms on the quiet path are brought up to date before they are read (rows
    // stay valid: what may change between runs -- group, box, positions, atoms deleted,
    // created or migrated -- is checked at each sample or handled where the atom's row is
    // copied or reset)
    counter->reset_rates();
    const bigint last = latest_sample_index();
    for (int i = 0; i < atom->nlocal; ++i) {
      bring_up_to_date(i, last);
      counter->restore_atom(hist[i] + assign_ndoubles);
    }
    rebuild_quiet_rows();
  } catch (std::exception &e) {
    error->one(FLERR, "Fix msm: {}", e.what());
  }
  // the group may have changed since the last run: the first sample drops every atom that
  // left it (dynamic groups: every sample)
  drop_outside = true;
  sample();
}

void FixMSM::end_of_step()
{
  sample();
}

void FixMSM::post_run()
{
  const auto t0 = std::chrono::steady_clock::now();
  write_counts();
  const double write_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // the fix's own cost in this run (slowest rank), for the log: users see what in-situ
  // counting costs next to their force field without a second run
  double mine[2] = {run_sample_seconds, write_s}, worst[2] = {0.0, 0.0};
  MPI_Reduce(mine, worst, 2, MPI_DOUBLE, MPI_MAX, 0, world);
  bigint atom_samples[2] = {0, 0};
  MPI_Reduce(run_atom_samples, atom_samples, 2, MPI_LMP_BIGINT, MPI_SUM, 0, world);
  if (comm->me == 0 && run_samples > 0)
    utils::logmesg(lmp, "Fix msm {}: {} samples in this run, {:.6g} s sampling ({:.4g} ms per "
                   "sample), {:.4g} s writing {} (slowest rank); {} of {} atom-samples on the "
                   "quiet path\n", id, run_samples, worst[0],
                   1e3 * worst[0] / static_cast<double>(run_samples), worst[1], config.outfile,
                   atom_samples[1], atom_samples[0]);
  run_sample_seconds = 0.0;
  run_samples = 0;
  run_atom_samples[0] = run_atom_samples[1] = 0;
}


/* ----------------------------------------------------------------------
   take one sample: every multiple of Nevery, never twice for the same step
------------------------------------------------------------------------- */

void FixMSM::sample()
{
  const bigint step = update->ntimestep;
  if (!sample_due(step)) return;
  const auto t_start = std::chrono::steady_clock::now();
  // the sample before this one: an atom on the quiet path was last recorded there
  const bigint prev_index = begin_sample(step);
  // Outside the group: the atom's pairs stop (a no-op unless it was being recorded). A static
  // group cannot change during a run, so after the run's first sample those atoms are already
  // dropped and are skipped without touching their records (atoms created during the run start
  // unrecorded; migrating atoms carry their records).
  if (drop_outside || group->dynamic[igroup]) drop_atoms_outside_group(step, prev_index);
  drop_outside = false;
  const int ngroup = list_group_atoms();
  const bigint nquiet = sample_group(ngroup, step, prev_index);
  end_sample(step, ngroup, nquiet,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count());
}

// a multiple of Nevery not sampled yet, with the timestep of the counts so far
bool FixMSM::sample_due(bigint step)
{
  if (step % config.nevery_steps) return false;
  if (last_sampled >= 0 && step == last_sampled) return false;
  if (last_sampled >= 0 && step < last_sampled)
    error->all(FLERR, "Fix msm: timestep {} is before the last sampled timestep {}; fix msm "
               "needs increasing timesteps (do not reset_timestep backwards)", step, last_sampled);
  if (dt_used < 0.0) dt_used = update->dt;
  if (update->dt != dt_used)
    error->all(FLERR, "Fix msm: the timestep changed from {} to {}; lags are counted in steps, so "
               "counts taken with different timesteps cannot be combined", dt_used, update->dt);
  return true;
}

// box, block and clock move to this sample; returns the index of the previous sample
bigint FixMSM::begin_sample(bigint step)
{
  const bigint t = step / config.nevery_steps;
  update_box();
  // a sample in a new block: store the finished block first (collective)
  if (recorder && recorder->starts_new_block(t)) close_block();
  const bigint prev_index = latest_sample_index();
  try {
    if (recorder) recorder->open(t);
    counter->begin_sample(t);
    counter->set_cell(locator->box().h());
  } catch (std::exception &e) {
    error->all(FLERR, "Fix msm: {}", e.what());
  }
  return prev_index;
}

void FixMSM::drop_atoms_outside_group(bigint step, bigint prev_index)
{
  for (int i = 0; i < atom->nlocal; ++i) {
    if (atom->mask[i] & groupbit) continue;
    try {
      bring_up_to_date(i, prev_index);
      if (use_quiet) quiet[static_cast<std::size_t>(i)].until = -1.0;
      counter->drop_atom(hist[i] + assign_ndoubles);
    } catch (std::exception &e) {
      error->one(FLERR, "Fix msm: atom {} at step {}: {}", atom->tag[i], step, e.what());
    }
  }
}

// The group's atoms into in_group, listed without a branch per atom (group atoms and others
// alternate at random in LAMMPS' spatially sorted arrays: a test per atom is mispredicted half
// the time). Returns their number.
int FixMSM::list_group_atoms()
{
  const int nlocal = atom->nlocal;
  const int *mask = atom->mask;
  if (in_group.size() < static_cast<std::size_t>(nlocal)) in_group.resize(nlocal);
  int ngroup = 0;
  for (int i = 0; i < nlocal; ++i) {
    in_group[ngroup] = i;
    ngroup += (mask[i] & groupbit) ? 1 : 0;
  }
  return ngroup;
}

// Quiet path: an atom within the safe radius of its last site image (SiteAssigner::stays, the
// assigner's own fast path) before its next event has nothing to count; its sample reads x,
// image and its 32-byte quiet row, all in atom order, and writes nothing. Returns the number
// of atoms that took the quiet path.
bigint FixMSM::sample_group(int ngroup, bigint step, bigint prev_index)
{
  double **x = atom->x;
  imageint *image = atom->image;
  const bool quiet_now = use_quiet && counter->quiet_allowed();
  const double t = static_cast<double>(step / config.nevery_steps);
  double xu[3];
  bigint nquiet = 0;
  for (int k = 0; k < ngroup; ++k) {
    const int i = in_group[k];
    if (use_quiet) {
      if (k + 16 < ngroup)
        __builtin_prefetch(&quiet[static_cast<std::size_t>(in_group[k + 16])], 0);
    } else if (k + 8 < ngroup) {
      // assign core, history multitau: every sample reads the record's first 12 doubles
      // (prefix and header): fetch them a few atoms ahead so that the misses overlap
      __builtin_prefetch(hist[in_group[k + 8]], 1);
      __builtin_prefetch(hist[in_group[k + 8]] + assign_ndoubles + 7, 1);
    }
    domain->unmap(x[i], image[i], xu);
    if (!std::isfinite(xu[0]) || !std::isfinite(xu[1]) || !std::isfinite(xu[2]))
      error->one(FLERR, "Fix msm: atom {} has a non-finite position at step {}", atom->tag[i],
                 step);
    const Eigen::Vector3d xv(xu[0], xu[1], xu[2]);
    if (quiet_now) {
      const QuietRow &q = quiet[static_cast<std::size_t>(i)];
      if (t < q.until && assigner->stays(xv, Eigen::Vector3d(q.g[0], q.g[1], q.g[2]))) {
        ++nquiet;
        continue;
      }
    }
    try {
      sample_atom(i, xv, prev_index);
    } catch (std::exception &e) {
      error->one(FLERR, "Fix msm: atom {} at step {}: {}", atom->tag[i], step, e.what());
    }
  }
  return nquiet;
}

// one atom's site at this sample into its record (core: the committed site; nearest: the
// assignment, and its quiet row)
void FixMSM::sample_atom(int i, const Eigen::Vector3d &xu, bigint prev_index)
{
  bring_up_to_date(i, prev_index);
  double *h = hist[i];
  double *record = h + assign_ndoubles;
  if (config.assign == ionmsm::AssignMode::Core) {
    auto committed = static_cast<ionmsm::SiteIndex>(h[CorePrefix::kCommitted]);
    const auto r = ionmsm::assign_core(*locator, config.core_radius, committed, xu);
    h[CorePrefix::kCommitted] = committed;
    if (!r.in_core) ++n_outside;
    counter->add_atom_sample(record, r.where);
    return;
  }
  const ionmsm::SiteImage now = assigner->assign(xu, last_assignment(h));
  store_assignment(h, now);
  counter->add_atom_sample(record, now);
  if (use_quiet) set_quiet_row(i, now, counter->quiet_until(record));
}

void FixMSM::end_sample(bigint step, int ngroup, bigint nquiet, double seconds)
{
  last_sampled = step;
  if (first_sampled < 0) first_sampled = step;
  counting_started = true;
  run_sample_seconds += seconds;
  ++run_samples;
  run_atom_samples[0] += ngroup;
  run_atom_samples[1] += nquiet;
  if (config.every_steps && step % config.every_steps == 0) write_counts(false);
}
