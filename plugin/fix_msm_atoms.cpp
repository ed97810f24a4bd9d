/* ----------------------------------------------------------------------
   ionmsm: fix msm -- per-atom records (the assignment prefix and the counter's history record,
   see fix_msm.h), which migrate with their atoms and go into restart files, the quiet rows,
   and the global restart state (ionmsm::RestartState).
------------------------------------------------------------------------- */

#include "fix_msm.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "memory.h"

#include "ionmsm/blocks.hpp"
#include "ionmsm/counting.hpp"
#include "ionmsm/site_assigner.hpp"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <sys/mman.h>

using namespace LAMMPS_NS;

double FixMSM::memory_usage()
{
  return static_cast<double>(atom->nmax) * static_cast<double>(row_stride()) * sizeof(double) +
         static_cast<double>(quiet.capacity()) * sizeof(QuietRow) +
         static_cast<double>(in_group.capacity()) * sizeof(int);
}

void FixMSM::grow_arrays(int nmax)
{
  // One block, allocated here rather than by memory->grow: rows are read at a stride of
  // ndoubles * 8 bytes (every atom at every sample with assign core or history multitau, atoms
  // with an event otherwise), which with 4 KB pages costs a TLB miss every few atoms. A block
  // of 2 MB or more is aligned to 2 MB and asks for transparent huge pages (a hint the kernel
  // may ignore); bench/README.md has the measured effect. Rows start on a 64-byte cache line
  // (stride rounded up to 8 doubles), so a record's header always spans the same two lines.
  const std::size_t row = row_stride();
  const std::size_t rows = static_cast<std::size_t>(std::max(nmax, 1));
  const std::size_t bytes = rows * row * sizeof(double);
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  const std::size_t align = bytes >= kHuge ? kHuge : 64;
  const std::size_t total = (bytes + align - 1) / align * align;
  auto *data = static_cast<double *>(std::aligned_alloc(align, total));
  if (!data)
    error->one(FLERR, "Fix msm: cannot allocate {} bytes for the per-atom records", total);
#ifdef MADV_HUGEPAGE
  if (align == kHuge) madvise(data, total, MADV_HUGEPAGE);
#endif
  const std::size_t keep = std::min<std::size_t>(static_cast<std::size_t>(hist_rows), rows);
  if (hist_data && keep) std::memcpy(data, hist_data, keep * row * sizeof(double));
  std::free(hist_data);
  hist_data = data;
  hist = static_cast<double **>(memory->srealloc(hist, rows * sizeof(double *), "fix_msm:hist"));
  for (std::size_t i = 0; i < rows; ++i) hist[i] = data + i * row;
  hist_rows = static_cast<int>(rows);
  if (use_quiet) quiet.resize(rows, QuietRow{{-1.0, -1.0, -1.0}, -1.0});
}

void FixMSM::copy_arrays(int i, int j, int delflag)
{
  // LAMMPS overwrites atom j with atom i. With delflag, atom j leaves this rank: migrating
  // atoms were packed by pack_exchange just before (their counts travel with the record);
  // any other is deleted (delete_atoms, fix evaporate, ...) and its pairs must stop here.
  if (delflag && j != exchanged && j < atom->nmax) {
    try {
      bring_up_to_date(j, latest_sample_index());
      counter->drop_atom(hist[j] + assign_ndoubles);
    } catch (std::exception &e) {
      error->one(FLERR, "Fix msm: deleting atom {}: {}", atom->tag[j], e.what());
    }
  }
  if (delflag) exchanged = -1;
  std::memcpy(hist[j], hist[i], sizeof(double) * ndoubles);
  if (use_quiet) quiet[static_cast<std::size_t>(j)] = quiet[static_cast<std::size_t>(i)];
}

/* ----------------------------------------------------------------------
   an atom on the quiet path has skipped the samples since its last event: write the last of
   them into its record before the record is read, packed or dropped (between samples:
   last = the latest sample; inside sample(): the one before the current)
------------------------------------------------------------------------- */

bigint FixMSM::latest_sample_index() const
{
  return counter->has_sample() ? counter->current_sample() : -1;
}

void FixMSM::bring_up_to_date(int i, bigint last)
{
  if (!use_quiet) return;
  if (quiet[static_cast<std::size_t>(i)].until < 0.0) return;
  try {
    counter->mark_quiet(hist[i] + assign_ndoubles, last);
  } catch (std::exception &e) {
    error->one(FLERR, "Fix msm: atom {}: {}", atom->tag[i], e.what());
  }
}

/* ----------------------------------------------------------------------
   quiet rows of atoms whose rows were reset (read from a restart file, migrated): an atom
   recorded at the latest sample takes the quiet path again from the next sample on, exactly as
   in an uninterrupted run (its record holds its site image and its next event)
------------------------------------------------------------------------- */

void FixMSM::rebuild_quiet_rows()
{
  if (!use_quiet || !counter->has_sample()) return;
  for (int i = 0; i < atom->nlocal; ++i) {
    if (quiet[static_cast<std::size_t>(i)].until >= 0.0) continue;
    const double *h = hist[i];
    if (h[NearestPrefix::kSite] < 0.0) continue;
    const std::int64_t until = counter->quiet_until(h + assign_ndoubles);
    if (until >= 0) set_quiet_row(i, last_assignment(h), until);
  }
}

void FixMSM::set_quiet_row(int i, const ionmsm::SiteImage &last, std::int64_t until)
{
  QuietRow &q = quiet[static_cast<std::size_t>(i)];
  const Eigen::Vector3d g = assigner->shifted_fractional(last);
  for (int d = 0; d < 3; ++d) q.g[d] = g[d];
  q.until = static_cast<double>(until);
}

// assign nearest: the prefix holds the last assignment {site, n_x, n_y, n_z}
ionmsm::SiteImage FixMSM::last_assignment(const double *h)
{
  ionmsm::SiteImage last;
  last.site = static_cast<ionmsm::SiteIndex>(h[NearestPrefix::kSite]);
  for (int d = 0; d < 3; ++d)
    last.image[d] = static_cast<std::int32_t>(h[NearestPrefix::kImage + d]);
  return last;
}

void FixMSM::store_assignment(double *h, const ionmsm::SiteImage &now)
{
  h[NearestPrefix::kSite] = now.site;
  for (int d = 0; d < 3; ++d) h[NearestPrefix::kImage + d] = now.image[d];
}

void FixMSM::set_arrays(int i)
{
  for (int k = 0; k < assign_ndoubles; ++k) hist[i][k] = 0.0;
  // no committed site (core) / no previous assignment (nearest) yet
  hist[i][config.assign == ionmsm::AssignMode::Core ? CorePrefix::kCommitted
                                                    : NearestPrefix::kSite] = -1.0;
  counter->clear_history(hist[i] + assign_ndoubles);
  if (use_quiet) quiet[static_cast<std::size_t>(i)].until = -1.0;
}

int FixMSM::pack_exchange(int i, double *buf)
{
  exchanged = i;
  bring_up_to_date(i, latest_sample_index());
  std::memcpy(buf, hist[i], sizeof(double) * ndoubles);
  return ndoubles;
}

int FixMSM::unpack_exchange(int nlocal, double *buf)
{
  std::memcpy(hist[nlocal], buf, sizeof(double) * ndoubles);
  if (use_quiet) quiet[static_cast<std::size_t>(nlocal)].until = -1.0;
  return ndoubles;
}

int FixMSM::pack_restart(int i, double *buf)
{
  buf[0] = ndoubles + 1;
  bring_up_to_date(i, latest_sample_index());
  std::memcpy(buf + 1, hist[i], sizeof(double) * ndoubles);
  return ndoubles + 1;
}

void FixMSM::unpack_restart(int nlocal, int nth)
{
  double **extra = atom->extra;
  int m = 0;
  for (int i = 0; i < nth; i++) m += static_cast<int>(extra[nlocal][m]);
  const int n = static_cast<int>(extra[nlocal][m]) - 1;
  if (n != ndoubles)
    error->one(FLERR, "Fix msm restart: per-atom history has {} values, this fix expects {} "
               "(lags, history or assign changed?)", n, ndoubles);
  std::memcpy(hist[nlocal], &extra[nlocal][m + 1], sizeof(double) * ndoubles);
  if (use_quiet) quiet[static_cast<std::size_t>(nlocal)].until = -1.0;
}

int FixMSM::size_restart(int)
{
  return ndoubles + 1;
}

int FixMSM::maxsize_restart()
{
  return ndoubles + 1;
}

/* ----------------------------------------------------------------------
   global restart state: configuration (checked on restart), sites, clock, counts
------------------------------------------------------------------------- */

void FixMSM::write_restart(FILE *fp)
{
  std::vector<bigint> rows = reduced_rows();    // collective
  std::vector<double> moments;
  bigint outside_total = 0;
  reduced_extras(moments, outside_total);       // collective
  if (comm->me != 0) return;
  const std::vector<std::int64_t> buf = restart_state(rows, moments, outside_total).pack();
  int size = static_cast<int>(buf.size() * sizeof(std::int64_t));
  fwrite(&size, sizeof(int), 1, fp);
  fwrite(buf.data(), sizeof(std::int64_t), buf.size(), fp);
}

// rank 0: the state to save, with the counts of all ranks (reduced_rows layout: occupancy,
// then rows of 7)
ionmsm::RestartState FixMSM::restart_state(const std::vector<bigint> &rows,
                                           const std::vector<double> &moments, bigint outside)
{
  ionmsm::RestartState s;
  s.config = config;
  s.site_fractional = site_frac;
  s.last_sampled = last_sampled;
  s.first_sampled = first_sampled;
  s.dt_used = dt_used;
  s.site_raw = site_raw;
  s.base_first_step = base_first_step;
  s.base_last_step = base_last_step;
  s.n_outside = outside;
  s.moments = moments;
  s.clock = counter->pack_clock();
  const std::size_t ns = counter->nsites();
  s.counts = {static_cast<std::int64_t>(ns), static_cast<std::int64_t>((rows.size() - ns) / 7)};
  s.counts.insert(s.counts.end(), rows.begin(), rows.end());
  if (recorder) s.blocks = recorder->pack();
  return s;
}

void FixMSM::restart(char *raw)
{
  // LAMMPS passes the state without its size; no state is larger than what LAMMPS can store
  // (its size is an int of bytes), and every length inside is checked against that
  constexpr std::size_t kMaxValues = INT_MAX / sizeof(std::int64_t);
  ionmsm::RestartState s;
  try {
    s = ionmsm::RestartState::unpack(reinterpret_cast<const std::int64_t *>(raw), kMaxValues);
  } catch (std::exception &e) {
    error->all(FLERR, "Fix msm {}: {}", id, e.what());
  }
  const std::string mismatch = ionmsm::restart_mismatch(s.config, config);
  if (!mismatch.empty()) error->all(FLERR, "Fix msm restart: {}", mismatch);
  if (s.site_fractional.size() != site_frac.size())
    error->all(FLERR, "Fix msm restart: the restart file has {} sites but sites {} '{}' gives {}",
               s.site_fractional.size() / 3, ionmsm::sites_source_name(config.sites),
               config.sites_arg, num_sites());
  site_frac = s.site_fractional;    // sites taken once: the restart's sites win
  if (config.sites == ionmsm::SitesSource::Group)
    site_labels.assign(site_frac.size() / 3, std::string());
  build_locator();
  if (config.sites == ionmsm::SitesSource::File && s.site_raw != site_raw)
    error->all(FLERR, "Fix msm restart: the coordinates in sites file '{}' differ from those the "
               "counts in the restart file were taken with", config.sites_arg);
  last_sampled = s.last_sampled;
  first_sampled = s.first_sampled;
  dt_used = s.dt_used;
  base_first_step = s.base_first_step;
  base_last_step = s.base_last_step;
  restore_counter(s);
  const std::string blocks = ionmsm::blocks_mismatch(s.config, config);
  if (!blocks.empty()) error->all(FLERR, "Fix msm restart: {}", blocks);
  counting_started = last_sampled >= 0;
  restored = true;
}

// The restart holds everything counted so far (also counts appended from OUT.h5 when the fix
// was first defined): start from zero, whatever 'append' added in the constructor. Rank 0
// restores the summed counts; other ranks start from zero.
void FixMSM::restore_counter(const ionmsm::RestartState &s)
{
  try {
    counter->clear_counts();
    n_outside = 0;
    counter->set_site_fractional(site_fractional());
    counter->unpack_clock(s.clock.data(), s.clock.size());
    if (comm->me == 0) {
      counter->add_packed_counts(s.counts.data(), s.counts.size());
      counter->add_packed_moments(s.moments.data(), s.moments.size());
      n_outside = s.n_outside;
    }
    if (recorder && s.config.block_steps == config.block_steps) {
      // every rank tracks the open block; only rank 0 keeps the stored blocks
      recorder->unpack(s.blocks.data(), s.blocks.size());
      if (comm->me != 0) recorder->clear_data();
    }
  } catch (std::exception &e) {
    error->all(FLERR, "Fix msm restart: {}", e.what());
  }
}
