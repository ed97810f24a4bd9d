/* ----------------------------------------------------------------------
   ionmsm: fix msm -- output: the counts file (one writer per file, append, overwrite,
   checkpoints every Nout, the write at the end of a run), blocks, and the reduction of the
   counts over ranks (rank 0 writes).
------------------------------------------------------------------------- */

#include "fix_msm.h"

#include "comm.h"
#include "error.h"
#include "group.h"
#include "modify.h"
#include "update.h"

#include "ionmsm/blocks.hpp"
#include "ionmsm/counting.hpp"
#include "ionmsm/counts_file.hpp"
#include "ionmsm/site_assigner.hpp"
#include "ionmsm/sites_file.hpp"
#include "ionmsm/version.hpp"

#include <cstring>
#include <exception>
#include <filesystem>
#include <unistd.h>

using namespace LAMMPS_NS;

namespace {
// one row {lag_index, from, to, sx, sy, sz, count} of FixMSM::reduced_rows() (lag index unused)
ionmsm::TransitionCount count_row(const bigint *r)
{
  ionmsm::TransitionCount t;
  t.from = static_cast<ionmsm::SiteIndex>(r[1]);
  t.to = static_cast<ionmsm::SiteIndex>(r[2]);
  t.shift = {static_cast<std::int32_t>(r[3]), static_cast<std::int32_t>(r[4]),
             static_cast<std::int32_t>(r[5])};
  t.count = static_cast<std::uint64_t>(r[6]);
  return t;
}
// Modify keeps the fix states read from a restart file protected until the first run; fix msm
// lists the fix msm IDs among them to name an ID that changed since the restart was written.
struct RestartStates : Modify {
  static std::vector<std::string> msm_ids(Modify *m, const char *except)
  {
    char **Modify::*ids = &RestartStates::id_restart_global;
    char **Modify::*styles = &RestartStates::style_restart_global;
    int *Modify::*used = &RestartStates::used_restart_global;
    std::vector<std::string> out;
    for (int i = 0; i < m->nfix_restart_global; ++i)
      if (std::strcmp((m->*styles)[i], "msm") == 0 && std::strcmp((m->*ids)[i], except) != 0 &&
          !(m->*used)[i])
        out.emplace_back((m->*ids)[i]);
    return out;
  }
};

// the output path with its directory resolved: two spellings of one file compare equal
std::string resolved_path(const std::string &path)
{
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path abs = fs::absolute(fs::path(path), ec);
  if (ec) return path;
  fs::path canon = fs::weakly_canonical(abs, ec);
  return ec ? abs.lexically_normal().string() : canon.string();
}
}    // namespace

/* ----------------------------------------------------------------------
   at the fix command: the output directory is writable, no other fix msm writes the file,
   and with append yes the existing file's counts are read (so that a file that cannot be
   appended to is refused at once; what happens to the file is reported at the first run,
   after a restart file had its say)
------------------------------------------------------------------------- */

void FixMSM::prepare_output()
{
  check_output_path();
  resolved_outfile = resolved_path(config.outfile);
  check_one_writer();
  unused_restart_ids = RestartStates::msm_ids(modify, id);
  if (config.append) append_existing();
}

void FixMSM::check_output_path()
{
  int ok = 1;
  std::string dir = ".";
  if (comm->me == 0) {
    auto slash = config.outfile.find_last_of('/');
    if (slash != std::string::npos) dir = slash == 0 ? "/" : config.outfile.substr(0, slash);
    if (access(dir.c_str(), W_OK) != 0) ok = 0;
  }
  MPI_Bcast(&ok, 1, MPI_INT, 0, world);
  if (!ok)
    error->all(FLERR, "Fix msm cannot write output file '{}': directory '{}' does not exist or "
               "is not writable", config.outfile, dir);
}

/* ----------------------------------------------------------------------
   append yes: rank 0 adds the counts of an existing OUT.h5 to this run's
------------------------------------------------------------------------- */

void FixMSM::append_existing()
{
  int ok = 1, found = 0;
  std::string msg;
  if (comm->me == 0 && access(config.outfile.c_str(), F_OK) == 0) {
    found = 1;
    try {
      const ionmsm::CountsData old = ionmsm::read_counts_file(config.outfile);
      ionmsm::CountsData now;
      fill_config(now);
      now.timestep = update->dt;
      ionmsm::check_appendable(old, now);
      add_existing_counts(old);
      if (old.n_samples > 0) {
        base_first_step = old.first_step;
        base_last_step = old.last_step;
      }
    } catch (std::exception &e) {
      ok = 0;
      msg = e.what();
    }
  }
  stop_unless_ok_on_rank0(ok, msg,
                          "Fix msm append yes: cannot append to '" + config.outfile + "': ");
  MPI_Bcast(&found, 1, MPI_INT, 0, world);
  MPI_Bcast(&base_first_step, 1, MPI_LMP_BIGINT, 0, world);
  MPI_Bcast(&base_last_step, 1, MPI_LMP_BIGINT, 0, world);
  appended_samples = found ? static_cast<bigint>(counter->n_samples()) : -1;
  MPI_Bcast(&appended_samples, 1, MPI_LMP_BIGINT, 0, world);
}

// rank 0: the existing file's counts, totals, moments, blocks and outside-core count
void FixMSM::add_existing_counts(const ionmsm::CountsData &old)
{
  std::vector<std::int64_t> buf = {static_cast<std::int64_t>(old.nsites()), 0};
  for (auto o : old.occupancy) buf.push_back(static_cast<std::int64_t>(o));
  std::int64_t nrows = 0;
  std::vector<std::uint64_t> origins;
  std::vector<double> moments;
  for (std::size_t l = 0; l < old.lags.size(); ++l) {
    origins.push_back(old.lags[l].n_origins);
    for (auto &r : old.lags[l].rows) {
      buf.insert(buf.end(), {static_cast<std::int64_t>(l), r.from, r.to, r.shift[0],
                             r.shift[1], r.shift[2], static_cast<std::int64_t>(r.count)});
      ++nrows;
    }
    const auto &d = old.lags[l].displacement_sum;
    const auto &q = old.lags[l].displacement_sq_sum;
    moments.insert(moments.end(), {d[0], d[1], d[2]});
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) moments.push_back(q(a, b));
  }
  buf[1] = nrows;
  counter->add_packed_counts(buf.data(), buf.size());
  counter->add_totals(old.n_samples, origins);
  counter->add_packed_moments(moments.data(), moments.size());
  if (recorder) recorder->set_base(old.blocks, ionmsm::totals_block(old));
  n_outside += static_cast<bigint>(old.n_outside_core);
}

/* ----------------------------------------------------------------------
   one writer per file: another fix msm writing the same file (after resolving the path) would
   overwrite this one's counts at every write
------------------------------------------------------------------------- */

void FixMSM::check_one_writer()
{
  for (Fix *f : modify->get_fix_by_style("^msm$")) {
    auto *other = dynamic_cast<FixMSM *>(f);
    if (!other || other == this || std::strcmp(other->id, id) == 0) continue;
    if (other->output_path() != resolved_outfile) continue;
    if (config.append)
      error->all(FLERR, "Fix msm {}: append yes cannot add to '{}': fix msm {} writes that file "
                 "in this run (both resolve to '{}'), and each write would replace the other's "
                 "counts; give each fix its own file", id, config.outfile, other->id,
                 resolved_outfile);
    error->all(FLERR, "Fix msm {} and fix msm {} both write the counts file '{}' (resolved: "
               "'{}'): each write would replace the other's counts; give each fix its own file",
               other->id, id, config.outfile, resolved_outfile);
  }
}

/* ----------------------------------------------------------------------
   the first run decides what happens to an existing output file (after restart() had its
   chance to restore the state): continue a restart, append, replace on request, or refuse
------------------------------------------------------------------------- */

void FixMSM::note_unused_restart_state()
{
  // a fix msm state in the restart file that no fix msm continues (its ID changed?)
  std::vector<std::string> orphans;
  for (auto &old : unused_restart_ids)
    if (!dynamic_cast<FixMSM *>(modify->get_fix_by_id(old))) orphans.push_back(old);
  unused_restart_ids = orphans;
  if (orphans.empty() || comm->me != 0) return;
  error->warning(FLERR, "Fix msm {}: the restart file holds the counts of fix msm '{}', which no "
                 "fix continues; fix msm {} starts counting from zero (to continue those counts, "
                 "define the fix with ID '{}')", id, utils::join_words(orphans, "', '"), id,
                 orphans.front());
}

void FixMSM::decide_output()
{
  if (output_decided) return;
  output_decided = true;
  if (restored) {
    if (comm->me == 0)
      utils::logmesg(lmp, "Fix msm {}: continuing the counts of the restart file ({} samples, "
                     "steps {} to {}); {} will hold them together with this run's counts{}\n",
                     id, counter->n_samples(),
                     base_first_step >= 0 ? base_first_step : first_sampled,
                     last_sampled, config.outfile,
                     config.append ? " (append yes adds nothing: the restart file already holds "
                                     "the counts appended when the fix was first defined)"
                                   : "");
    return;
  }
  note_unused_restart_state();
  if (config.append) {
    if (comm->me == 0 && appended_samples >= 0)
      utils::logmesg(lmp, "Fix msm {}: adding this run's counts to the {} samples (steps {} to {}) "
                     "in {} (append yes)\n", id, appended_samples, base_first_step,
                     base_last_step, config.outfile);
    else if (comm->me == 0)
      utils::logmesg(lmp, "Fix msm {}: {} does not exist yet: starting a new counts file "
                     "(append yes)\n", id, config.outfile);
    return;
  }
  int exists = 0;
  if (comm->me == 0) exists = access(config.outfile.c_str(), F_OK) == 0 ? 1 : 0;
  MPI_Bcast(&exists, 1, MPI_INT, 0, world);
  if (!exists) return;
  if (config.overwrite) {
    if (comm->me == 0)
      utils::logmesg(lmp, "Fix msm {}: replacing the existing counts file {} (overwrite yes)\n",
                     id, config.outfile);
    return;
  }
  const std::string hint = unused_restart_ids.empty() ? std::string() :
      fmt::format(" (the restart file holds the counts of fix msm '{}': to continue them, "
                  "define the fix with ID '{}')", unused_restart_ids.front(),
                  unused_restart_ids.front());
  error->all(FLERR, "Fix msm {}: the counts file '{}' already exists and fix msm never replaces "
             "counts without an explicit choice: add 'append yes' to add this run's counts to "
             "it, 'overwrite yes' to replace it, or choose another file name{}", id,
             config.outfile, hint);
}

/* ----------------------------------------------------------------------
   rank 0 did something that may have failed (reading a file, writing the counts): every rank
   learns the outcome, and on failure all ranks stop with rank 0's message
------------------------------------------------------------------------- */

void FixMSM::stop_unless_ok_on_rank0(int ok, std::string msg, const std::string &context)
{
  MPI_Bcast(&ok, 1, MPI_INT, 0, world);
  if (ok) return;
  int len = static_cast<int>(msg.size());
  MPI_Bcast(&len, 1, MPI_INT, 0, world);
  msg.resize(len);
  MPI_Bcast(msg.data(), len, MPI_CHAR, 0, world);
  error->all(FLERR, "{}{}", context, msg);
}

/* ----------------------------------------------------------------------
   reduction over ranks: rank 0 receives every rank's packed counts
------------------------------------------------------------------------- */

std::vector<bigint> FixMSM::reduced_rows()
{
  std::vector<std::int64_t> mine = counter->pack_counts();
  int n = static_cast<int>(mine.size());
  std::vector<int> counts(comm->nprocs), displs(comm->nprocs);
  MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, world);
  std::vector<std::int64_t> all;
  if (comm->me == 0) {
    long total = 0;
    for (int p = 0; p < comm->nprocs; ++p) {
      displs[p] = static_cast<int>(total);
      total += counts[p];
    }
    all.resize(total);
  }
  MPI_Gatherv(mine.data(), n, MPI_LMP_BIGINT, all.data(), counts.data(), displs.data(),
              MPI_LMP_BIGINT, 0, world);
  std::vector<bigint> out;
  if (comm->me != 0) return out;
  ionmsm::TransitionCounter merged(counter->nsites(), counter->lags());
  for (int p = 0; p < comm->nprocs; ++p)
    merged.add_packed_counts(all.data() + displs[p], static_cast<std::size_t>(counts[p]));
  // layout for callers: occupancy first (nsites values), then rows of 7
  for (auto o : merged.occupancy()) out.push_back(static_cast<bigint>(o));
  for (std::size_t l = 0; l < merged.num_lags(); ++l)
    for (auto &r : merged.table(l).rows())
      out.insert(out.end(), {static_cast<bigint>(l), r.from, r.to, r.shift[0], r.shift[1],
                             r.shift[2], static_cast<bigint>(r.count)});
  return out;
}

void FixMSM::reduced_extras(std::vector<double> &moments, bigint &outside)
{
  const std::vector<double> mine = counter->pack_moments();
  moments.assign(mine.size(), 0.0);
  MPI_Reduce(mine.data(), moments.data(), static_cast<int>(mine.size()), MPI_DOUBLE, MPI_SUM, 0,
             world);
  outside = 0;
  MPI_Reduce(&n_outside, &outside, 1, MPI_LMP_BIGINT, MPI_SUM, 0, world);
}

void FixMSM::reduced_matrix(int ilag, std::vector<double> &out)
{
  const std::size_t ns = counter->nsites();
  std::vector<double> local(ns * ns, 0.0);
  // a rank's share of a count may be "negative" (atoms that migrated take their pairs along,
  // see counting_full.hpp): read it as a signed value; the sum over ranks is the count
  for (auto &r : counter->table(ilag).rows())
    local[static_cast<std::size_t>(r.to) * ns + r.from] +=
        static_cast<double>(static_cast<std::int64_t>(r.count));
  out.assign(ns * ns, 0.0);
  MPI_Allreduce(local.data(), out.data(), static_cast<int>(ns * ns), MPI_DOUBLE, MPI_SUM, world);
}

int FixMSM::num_sites() const
{
  return static_cast<int>(site_frac.size() / 3);
}
int FixMSM::num_lags() const
{
  return static_cast<int>(config.lag_steps.size());
}
bigint FixMSM::lag_steps(int ilag) const
{
  return config.lag_steps[ilag];
}
bigint FixMSM::num_samples() const
{
  return static_cast<bigint>(counter->n_samples());
}
int FixMSM::find_lag(bigint L) const
{
  for (std::size_t k = 0; k < config.lag_steps.size(); ++k)
    if (config.lag_steps[k] == L) return static_cast<int>(k);
  return -1;
}

/* ---------------------------------------------------------------------- */

void FixMSM::fill_config(ionmsm::CountsData &d)
{
  d.units = update->unit_style;
  d.timestep = dt_used > 0.0 ? dt_used : update->dt;
  d.timestep_ps = d.timestep * ionmsm::time_unit_in_ps(d.units);
  d.nevery = config.nevery_steps;
  d.site_fractional = site_fractional();
  d.lags.clear();
  for (std::size_t l = 0; l < config.lag_steps.size(); ++l) {
    ionmsm::LagCounts lc;
    lc.lag_steps = config.lag_steps[l];
    lc.level = counter->lag_level(l);
    d.lags.push_back(lc);
  }
  d.has_levels = true;
  // M is recorded for multitau only (0 for full)
  d.history = config.history.mode == ionmsm::HistoryConfig::Mode::MultiTau
                  ? config.history
                  : ionmsm::HistoryConfig::full();
  d.doubles_per_atom = ndoubles;
  d.assign = config.assign;
  d.core_radius = config.assign == ionmsm::AssignMode::Core ? config.core_radius : 0.0;
  d.has_displacement = true;
  d.block_steps = config.block_steps;
}

void FixMSM::fill_counts_data(ionmsm::CountsData &d, const std::vector<bigint> &rows,
                              const std::vector<double> &moments, bigint outside)
{
  fill_config(d);
  d.ionmsm_version = ionmsm::kVersion;
  d.lammps_version = lmp->version;
  d.command = command_line;
  d.first_step = base_first_step >= 0 ? base_first_step : first_sampled;
  d.last_step = last_sampled >= 0 ? last_sampled : base_last_step;
  d.n_outside_core = static_cast<std::uint64_t>(outside);
  d.n_samples = counter->n_samples();
  d.n_atoms = natoms_group;
  const auto &box = locator->box();
  d.box_origin = box.origin();
  d.box_h = box.h();
  const std::size_t ns = counter->nsites();
  d.site_labels = site_labels;
  bool any_label = false;
  for (auto &l : site_labels) any_label = any_label || !l.empty();
  if (!any_label) d.site_labels.clear();
  d.occupancy.assign(rows.begin(), rows.begin() + ns);
  for (std::size_t l = 0; l < config.lag_steps.size(); ++l) {
    ionmsm::LagCounts &lc = d.lags[l];
    lc.n_origins = counter->n_origins(l);
    const double *m = moments.data() + 12 * l;
    lc.displacement_sum = Eigen::Vector3d(m[0], m[1], m[2]);
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) lc.displacement_sq_sum(a, b) = m[3 + 3 * a + b];
  }
  for (std::size_t k = ns; k + 7 <= rows.size(); k += 7)
    d.lags[static_cast<std::size_t>(rows[k])].rows.push_back(count_row(rows.data() + k));
}

/* ----------------------------------------------------------------------
   blocks Nb: the open block ends; rank 0 stores the counts taken since the last block ended
------------------------------------------------------------------------- */

void FixMSM::close_block()
{
  std::vector<bigint> rows = reduced_rows();    // collective
  if (comm->me != 0) {
    recorder->close_without_data();
    return;
  }
  int ok = 1;
  std::string msg;
  try {
    const std::size_t ns = counter->nsites();
    ionmsm::CountBlock cum = ionmsm::empty_block(ns, config.lag_steps.size(), -1);
    cum.n_samples = counter->n_samples();
    for (std::size_t s = 0; s < ns; ++s) cum.occupancy[s] = static_cast<std::uint64_t>(rows[s]);
    for (std::size_t l = 0; l < config.lag_steps.size(); ++l)
      cum.n_origins[l] = counter->n_origins(l);
    for (std::size_t k = ns; k + 7 <= rows.size(); k += 7)
      cum.rows[static_cast<std::size_t>(rows[k])].push_back(count_row(rows.data() + k));
    recorder->close(cum);
  } catch (std::exception &e) {
    ok = 0;
    msg = e.what();
  }
  // rank 0 only: a failure here is an internal inconsistency, never bad input
  if (!ok) error->one(FLERR, "Fix msm: cannot store the finished block: {}", msg);
}

void FixMSM::write_counts(bool final)
{
  natoms_group = group->count(igroup);
  std::vector<bigint> rows = reduced_rows();
  std::vector<double> moments;
  bigint outside = 0;
  reduced_extras(moments, outside);
  int ok = 1;
  std::string msg;
  if (comm->me == 0) {
    try {
      ionmsm::CountsData d;
      fill_counts_data(d, rows, moments, outside);
      if (recorder) d.blocks = recorder->blocks(ionmsm::totals_block(d));
      warn_early_occupancy(d);
      ionmsm::write_counts_file(config.outfile, d);
    } catch (std::exception &e) {
      ok = 0;
      msg = e.what();
    }
  }
  if (!final) {
    report_checkpoint(ok, msg);
    return;
  }
  if (comm->me == 0 && ok) report_checkpoint(ok, msg);
  if (!ok)
    msg += fmt::format("; '{}' keeps the counts of the last successful write", config.outfile);
  stop_unless_ok_on_rank0(ok, msg, fmt::format("Fix msm {}: the write at the end of the run "
                                               "failed: ", id));
}

// rank 0, at the first write with samples: warn if few sites were occupied
void FixMSM::warn_early_occupancy(const ionmsm::CountsData &d)
{
  if (occupancy_checked || d.n_samples == 0) return;
  occupancy_checked = true;
  const std::string w = ionmsm::check_early_occupancy(d.occupancy, d.n_atoms);
  if (!w.empty())
    error->warning(FLERR, "Fix msm {}: {} (sites {} '{}')", id, w,
                   ionmsm::sites_source_name(config.sites), config.sites_arg);
}

/* ----------------------------------------------------------------------
   a checkpoint (every Nout) that fails is a warning: the counts stay in memory, the previous
   file stays, the next checkpoint tries again; repeated failures are reported in one line
------------------------------------------------------------------------- */

void FixMSM::report_checkpoint(int ok, const std::string &msg)
{
  if (comm->me != 0) return;
  const bigint step = update->ntimestep;
  if (ok) {
    if (failed_checkpoints > 0)
      utils::logmesg(lmp, "Fix msm {}: counts file {} written again at step {} after {} failed "
                     "checkpoint(s)\n", id, config.outfile, step, failed_checkpoints);
    failed_checkpoints = 0;
    last_failure.clear();
    return;
  }
  ++failed_checkpoints;
  // the cause: errno's text after the last ": " (sizes in the message may change between tries)
  const std::string cause = msg.substr(msg.rfind(": ") == std::string::npos ? 0 : msg.rfind(": "));
  if (failed_checkpoints == 1 || cause != last_failure)
    error->warning(FLERR, "Fix msm {}: checkpoint at step {} failed: {}; the counts stay in "
                   "memory, the previous counts file stays as it was, and the next checkpoint "
                   "(step {}) tries again", id, step, msg, step + config.every_steps);
  else
    error->warning(FLERR, "Fix msm {}: checkpoint at step {} failed as well ({} in a row, same "
                   "cause)", id, step, failed_checkpoints);
  last_failure = cause;
}

