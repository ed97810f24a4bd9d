/* ----------------------------------------------------------------------
   ionmsm: fix msm -- LAMMPS glue only. Parses arguments, hands unwrapped positions to the
   ionmsm core (nearest-site search and transition counting), keeps the per-atom histories
   that migrate with atoms, reduces counts over ranks and writes the counts file on rank 0.
------------------------------------------------------------------------- */

#include "fix_msm.h"

#include "atom.h"
#include "atom_masks.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "group.h"
#include "memory.h"
#include "modify.h"
#include "update.h"

#include "ionmsm/blocks.hpp"
#include "ionmsm/counting.hpp"
#include "ionmsm/counts_file.hpp"
#include "ionmsm/geometry.hpp"
#include "ionmsm/site_assigner.hpp"
#include "ionmsm/sites_file.hpp"
#include "ionmsm/version.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sys/mman.h>
#include <unistd.h>

using namespace LAMMPS_NS;
using namespace FixConst;

namespace {
constexpr std::int64_t kRestartMagic = 0x4d534d4e4f49;    // "IONMSM"
// 3: blocks; 4: event-driven full records; 5: the clock holds the end of the dense window
// (version 4 is read as well: quiet samples then resume one longest lag after the restart)
constexpr std::int64_t kRestartVersion = 5;

std::int64_t bits_of(double v)
{
  std::int64_t i;
  std::memcpy(&i, &v, sizeof(i));
  return i;
}
double double_of(std::int64_t i)
{
  double v;
  std::memcpy(&v, &i, sizeof(v));
  return v;
}
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

/* ---------------------------------------------------------------------- */

FixMSM::FixMSM(LAMMPS *lmp, int narg, char **arg) :
    Fix(lmp, narg, arg), nevery_steps(0), nout(0), ndoubles(0), hist(nullptr), last_sampled(-1),
    first_sampled(-1), natoms_group(0), counting_started(false), drop_outside(true), dt_used(-1.0),
    history_mode("full"), history_m(0), assign_mode("nearest"), core_radius(0.0),
    assign_ndoubles(0), append(false), base_first_step(-1), base_last_step(-1), n_outside(0),
    block_steps(0)
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
  check_history_lags();
  check_core_radius();

  std::vector<std::int64_t> lag_samples;
  for (bigint L : lags) lag_samples.push_back(L / nevery_steps);
  try {
    const auto hc = history_mode == "multitau" ? ionmsm::HistoryConfig::multitau(history_m)
                                               : ionmsm::HistoryConfig::full();
    counter = std::make_unique<ionmsm::TransitionCounter>(site_frac.size() / 3, lag_samples, hc);
    std::vector<Eigen::Vector3d> f;
    for (std::size_t s = 0; s < counter->nsites(); ++s) f.push_back(locator->fractional(s));
    counter->set_site_fractional(f);
    if (block_steps > 0)
      recorder = std::make_unique<ionmsm::BlockRecorder>(block_steps / nevery_steps,
                                                         counter->nsites(), lags.size());
  } catch (std::exception &e) {
    error->all(FLERR, "Fix msm: {}", e.what());
  }
  if (block_steps > 0 && block_steps < lags.back() && comm->me == 0)
    error->warning(FLERR, "Fix msm blocks {} is shorter than the longest lag {}: pairs of one "
                   "block then depend on the previous blocks, and bootstrap error bars come out "
                   "too small (use blocks of at least 10 times the longest lag)",
                   block_steps, lags.back());
  // per-atom prefix before the counter record: core: the committed site; nearest: the last
  // assignment {site, n_x, n_y, n_z}, a hint that lets SiteAssigner skip the search exactly
  assign_ndoubles = assign_mode == "core" ? 1 : 4;
  ndoubles = assign_ndoubles + counter->doubles_per_atom();
  use_quiet = assign_mode != "core" && history_mode != "multitau";

  restart_global = 1;
  restart_peratom = 1;
  create_attribute = 1;    // atoms created during a run get a cleared record (set_arrays)
  dynamic_group_allow = 1; // membership is checked at every sample (see sample())
  nevery = static_cast<int>(nevery_steps);
  maxexchange = ndoubles;
  time_depend = 0;
  // narrow data masks: a Kokkos build syncs only what this fix reads, and nothing back
  datamask_read = X_MASK | IMAGE_MASK | MASK_MASK | TAG_MASK;
  datamask_modify = EMPTY_MASK;

  FixMSM::grow_arrays(atom->nmax);
  atom->add_callback(Atom::GROW);
  atom->add_callback(Atom::RESTART);
  for (int i = 0; i < atom->nlocal; ++i) FixMSM::set_arrays(i);

  check_output_path();
  resolved_outfile = resolved_path(outfile);
  check_one_writer();
  unused_restart_ids = RestartStates::msm_ids(modify, id);
  // read now, so that a file that cannot be appended to is refused at the fix command; what
  // happens to the file is reported at the first run (after a restart file had its say)
  if (append) append_existing();
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
   fix ID group msm Nevery sites group|file ARG lags L1 L2 ... file OUT.h5 [keyword value ...]
   keywords: every Nout | history full|multitau M | assign nearest|core R | append yes|no |
             blocks Nb
------------------------------------------------------------------------- */

void FixMSM::parse_args(int narg, char **arg)
{
  const std::string usage =
      "fix ID group-ID msm Nevery sites group|file ARG lags L1 L2 ... file OUT.h5 [every Nout] "
      "[history full|multitau M] [assign nearest|core R] [append yes|no] [overwrite yes|no] "
      "[blocks Nb]";
  if (narg < 4) error->all(FLERR, "Illegal fix msm command: missing Nevery; usage: {}", usage);
  nevery_steps = utils::bnumeric(FLERR, arg[3], false, lmp);
  if (nevery_steps <= 0)
    error->all(FLERR, "Fix msm Nevery must be a positive integer, got {}", arg[3]);

  bool have_sites = false, have_file = false;
  int iarg = 4;
  while (iarg < narg) {
    const std::string kw = arg[iarg];
    if (kw == "sites") {
      if (iarg + 2 >= narg)
        error->all(FLERR, "Fix msm keyword 'sites' needs two values: 'group GROUP-ID' or 'file FILE'");
      sites_mode = arg[iarg + 1];
      sites_arg = arg[iarg + 2];
      if (sites_mode != "group" && sites_mode != "file")
        error->all(FLERR, "Fix msm keyword 'sites' expects 'group' or 'file', got '{}'",
                   sites_mode);
      have_sites = true;
      iarg += 3;
    } else if (kw == "lags") {
      ++iarg;
      while (iarg < narg && utils::is_integer(arg[iarg])) {
        bigint L = utils::bnumeric(FLERR, arg[iarg], false, lmp);
        if (L <= 0) error->all(FLERR, "Fix msm lag {} must be a positive number of timesteps", L);
        if (L % nevery_steps)
          error->all(FLERR, "Fix msm lag {} is not a multiple of Nevery = {}", L, nevery_steps);
        if (std::find(lags.begin(), lags.end(), L) != lags.end())
          error->all(FLERR, "Fix msm lag {} is given twice", L);
        lags.push_back(L);
        ++iarg;
      }
      if (iarg < narg && lags.empty())
        error->all(FLERR, "Fix msm keyword 'lags' expects positive integers, got '{}'", arg[iarg]);
    } else if (kw == "file") {
      if (iarg + 1 >= narg) error->all(FLERR, "Fix msm keyword 'file' needs an output file name");
      outfile = arg[iarg + 1];
      have_file = true;
      iarg += 2;
    } else if (kw == "every") {
      if (iarg + 1 >= narg) error->all(FLERR, "Fix msm keyword 'every' needs a value Nout");
      nout = utils::bnumeric(FLERR, arg[iarg + 1], false, lmp);
      if (nout <= 0) error->all(FLERR, "Fix msm every Nout must be positive, got {}", nout);
      if (nout % nevery_steps)
        error->all(FLERR, "Fix msm every {} is not a multiple of Nevery = {}", nout, nevery_steps);
      iarg += 2;
    } else if (kw == "history") {
      if (iarg + 1 >= narg)
        error->all(FLERR, "Fix msm keyword 'history' needs a value: 'full' or 'multitau M'");
      const std::string mode = arg[iarg + 1];
      if (mode == "full") {
        history_mode = "full";
        history_m = 0;
        iarg += 2;
      } else if (mode == "multitau") {
        if (iarg + 2 >= narg || !utils::is_integer(arg[iarg + 2]))
          error->all(FLERR, "Fix msm keyword 'history multitau' needs a positive integer M "
                     "(entries per level), got '{}'", iarg + 2 < narg ? arg[iarg + 2] : "");
        history_m = utils::bnumeric(FLERR, arg[iarg + 2], false, lmp);
        if (history_m < 1 || history_m > (1 << 20))
          error->all(FLERR, "Fix msm history multitau M must be in [1, 1048576], got {}",
                     history_m);
        history_mode = "multitau";
        iarg += 3;
      } else {
        error->all(FLERR, "Fix msm keyword 'history' expects 'full' or 'multitau M', got '{}'",
                   mode);
      }
    } else if (kw == "assign") {
      if (iarg + 1 >= narg)
        error->all(FLERR, "Fix msm keyword 'assign' needs a value: 'nearest' or 'core R'");
      const std::string mode = arg[iarg + 1];
      if (mode == "nearest") {
        assign_mode = "nearest";
        iarg += 2;
      } else if (mode == "core") {
        if (iarg + 2 >= narg || !utils::is_double(arg[iarg + 2]))
          error->all(FLERR, "Fix msm keyword 'assign core' needs a core radius R (a number), "
                     "got '{}'", iarg + 2 < narg ? arg[iarg + 2] : "");
        core_radius = utils::numeric(FLERR, arg[iarg + 2], false, lmp);
        if (!(core_radius > 0.0) || !std::isfinite(core_radius))
          error->all(FLERR, "Fix msm assign core radius must be > 0, got {}", arg[iarg + 2]);
        assign_mode = "core";
        iarg += 3;
      } else {
        error->all(FLERR, "Fix msm keyword 'assign' expects 'nearest' or 'core R', got '{}'",
                   mode);
      }
    } else if (kw == "blocks") {
      if (iarg + 1 >= narg)
        error->all(FLERR, "Fix msm keyword 'blocks' needs a block length Nb (timesteps)");
      if (!utils::is_integer(arg[iarg + 1]))
        error->all(FLERR, "Fix msm keyword 'blocks' expects a positive integer number of "
                   "timesteps, got '{}'", arg[iarg + 1]);
      block_steps = utils::bnumeric(FLERR, arg[iarg + 1], false, lmp);
      if (block_steps <= 0)
        error->all(FLERR, "Fix msm blocks Nb must be a positive number of timesteps, got {}",
                   block_steps);
      if (block_steps % nevery_steps)
        error->all(FLERR, "Fix msm blocks {} is not a multiple of Nevery = {}", block_steps,
                   nevery_steps);
      iarg += 2;
    } else if (kw == "overwrite") {
      if (iarg + 1 >= narg)
        error->all(FLERR, "Fix msm keyword 'overwrite' needs a value: yes or no");
      const std::string v = arg[iarg + 1];
      if (v == "yes") overwrite = true;
      else if (v == "no") overwrite = false;
      else error->all(FLERR, "Fix msm keyword 'overwrite' expects 'yes' or 'no', got '{}'", v);
      iarg += 2;
    } else if (kw == "append") {
      if (iarg + 1 >= narg) error->all(FLERR, "Fix msm keyword 'append' needs a value: yes or no");
      const std::string v = arg[iarg + 1];
      if (v == "yes") append = true;
      else if (v == "no") append = false;
      else error->all(FLERR, "Fix msm keyword 'append' expects 'yes' or 'no', got '{}'", v);
      iarg += 2;
    } else {
      error->all(FLERR, "Unknown fix msm keyword '{}'; usage: {}", kw, usage);
    }
  }
  if (!have_sites) error->all(FLERR, "Fix msm needs the 'sites' keyword; usage: {}", usage);
  if (lags.empty()) error->all(FLERR, "Fix msm needs at least one lag ('lags L1 ...'); usage: {}", usage);
  if (!have_file) error->all(FLERR, "Fix msm needs an output file ('file OUT.h5'); usage: {}", usage);
  if (append && overwrite)
    error->all(FLERR, "Fix msm keywords 'append yes' and 'overwrite yes' exclude each other: "
               "append adds this run's counts to the existing file, overwrite replaces it");
  std::sort(lags.begin(), lags.end());
}

/* ---------------------------------------------------------------------- */

void FixMSM::check_output_path()
{
  int ok = 1;
  std::string dir = ".";
  if (comm->me == 0) {
    auto slash = outfile.find_last_of('/');
    if (slash != std::string::npos) dir = slash == 0 ? "/" : outfile.substr(0, slash);
    if (access(dir.c_str(), W_OK) != 0) ok = 0;
  }
  MPI_Bcast(&ok, 1, MPI_INT, 0, world);
  if (!ok)
    error->all(FLERR, "Fix msm cannot write output file '{}': directory '{}' does not exist or "
               "is not writable", outfile, dir);
}

/* ---------------------------------------------------------------------- */

void FixMSM::load_sites()
{
  if (sites_mode == "group") {
    int igs = group->find(sites_arg);
    if (igs < 0) error->all(FLERR, "Fix msm sites group '{}' does not exist", sites_arg);
    sites_from_group(igs);
  } else {
    sites_from_file(sites_arg);
  }
  build_locator();
}

void FixMSM::sites_from_group(int igs)
{
  // positions of the group's atoms now, ordered by atom ID, gathered on every rank
  const int nlocal = atom->nlocal;
  std::vector<double> mine;
  for (int i = 0; i < nlocal; ++i)
    if (atom->mask[i] & group->bitmask[igs]) {
      mine.push_back(static_cast<double>(atom->tag[i]));
      mine.insert(mine.end(), atom->x[i], atom->x[i] + 3);
    }
  int nmine = static_cast<int>(mine.size());
  std::vector<int> counts(comm->nprocs), displs(comm->nprocs);
  MPI_Allgather(&nmine, 1, MPI_INT, counts.data(), 1, MPI_INT, world);
  int total = 0;
  for (int p = 0; p < comm->nprocs; ++p) {
    displs[p] = total;
    total += counts[p];
  }
  if (total == 0) error->all(FLERR, "Fix msm sites group '{}' has no atoms", sites_arg);
  std::vector<double> all(total);
  MPI_Allgatherv(mine.data(), nmine, MPI_DOUBLE, all.data(), counts.data(), displs.data(),
                 MPI_DOUBLE, world);
  std::vector<std::pair<double, int>> order;
  for (int k = 0; k < total; k += 4) order.emplace_back(all[k], k);
  std::sort(order.begin(), order.end());
  const auto box = ionmsm::Box::from_lammps(domain->boxlo, domain->boxhi, domain->xy, domain->xz,
                                            domain->yz);
  site_frac.clear();
  for (auto &o : order) {
    Eigen::Vector3d f = box.to_fractional(Eigen::Vector3d(all[o.second + 1], all[o.second + 2],
                                                          all[o.second + 3]));
    site_frac.insert(site_frac.end(), {f[0], f[1], f[2]});
  }
  site_labels.assign(order.size(), std::string());
}

void FixMSM::sites_from_file(const std::string &path)
{
  // rank 0 reads and parses, then broadcasts the result or the error
  int ok = 1;
  std::string msg;
  std::vector<double> coords;
  int fractional = 0;
  if (comm->me == 0) {
    try {
      auto sf = ionmsm::read_sites_file(path);
      fractional = sf.fractional ? 1 : 0;
      for (auto &c : sf.coords) coords.insert(coords.end(), {c[0], c[1], c[2]});
      site_labels = sf.labels;
    } catch (std::exception &e) {
      ok = 0;
      msg = e.what();
    }
  }
  stop_unless_ok_on_rank0(ok, msg, "Fix msm sites file: ");
  long n = static_cast<long>(coords.size());
  MPI_Bcast(&n, 1, MPI_LONG, 0, world);
  MPI_Bcast(&fractional, 1, MPI_INT, 0, world);
  coords.resize(n);
  MPI_Bcast(coords.data(), static_cast<int>(n), MPI_DOUBLE, 0, world);
  site_raw = coords;
  site_raw.push_back(fractional);
  // labels: joined with '\n' (a label never contains whitespace)
  std::string joined;
  if (comm->me == 0)
    for (auto &l : site_labels) joined += l + "\n";
  int jl = static_cast<int>(joined.size());
  MPI_Bcast(&jl, 1, MPI_INT, 0, world);
  joined.resize(jl);
  MPI_Bcast(joined.data(), jl, MPI_CHAR, 0, world);
  site_labels.clear();
  std::size_t start = 0;
  for (std::size_t k = 0; k < joined.size(); ++k)
    if (joined[k] == '\n') {
      site_labels.push_back(joined.substr(start, k - start));
      start = k + 1;
    }

  const auto box = ionmsm::Box::from_lammps(domain->boxlo, domain->boxhi, domain->xy, domain->xz,
                                            domain->yz);
  site_frac.clear();
  std::vector<Eigen::Vector3d> cartesian;
  for (long k = 0; k < n; k += 3) {
    Eigen::Vector3d c(coords[k], coords[k + 1], coords[k + 2]);
    Eigen::Vector3d f = fractional ? c : box.to_fractional(c);
    site_frac.insert(site_frac.end(), {f[0], f[1], f[2]});
    if (!fractional) cartesian.push_back(c);
  }
  if (comm->me == 0 && !fractional) {
    const double face =
        std::min({box.face_distance(0), box.face_distance(1), box.face_distance(2)});
    const std::string w = ionmsm::check_cartesian_sites(cartesian, face, path);
    if (!w.empty()) error->warning(FLERR, "Fix msm {}: {}", id, w);
  }
}

void FixMSM::build_locator()
{
  const auto box = ionmsm::Box::from_lammps(domain->boxlo, domain->boxhi, domain->xy, domain->xz,
                                            domain->yz);
  std::vector<Eigen::Vector3d> f;
  for (std::size_t k = 0; k < site_frac.size(); k += 3)
    f.emplace_back(site_frac[k], site_frac[k + 1], site_frac[k + 2]);
  try {
    locator = std::make_unique<ionmsm::SiteLocator>(f, box);
  } catch (std::exception &e) {
    error->all(FLERR, "Fix msm sites: {}", e.what());
  }
  // two sites closer than 1e-6 of the shortest cell face distance are duplicates
  double dmin = locator->min_site_separation();
  double scale = std::min({box.face_distance(0), box.face_distance(1), box.face_distance(2)});
  if (f.size() > 1 && dmin < 1e-6 * scale)
    error->all(FLERR, "Fix msm sites: two sites coincide (closest pair {:.3g} apart under "
               "periodic boundaries); remove duplicate sites", dmin);
  // the exact fast path (and its neighbour lists) serves assign nearest only
  assigner.reset();
  if (assign_mode != "core") {
    try {
      assigner = std::make_unique<ionmsm::SiteAssigner>(*locator);
    } catch (std::exception &e) {
      error->all(FLERR, "Fix msm sites: {}", e.what());
    }
  }
}

/* ----------------------------------------------------------------------
   history multitau: every lag must be representable (core rule in counting.hpp)
------------------------------------------------------------------------- */

void FixMSM::check_history_lags()
{
  if (history_mode != "multitau") return;
  for (bigint L : lags) {
    const std::int64_t l = L / nevery_steps;
    if (ionmsm::multitau_level(l, history_m) >= 0) continue;
    const auto nb = ionmsm::multitau_neighbours(l, history_m);
    if (nb.first > 0)
      error->all(FLERR, "Fix msm lag {} ({} samples) cannot be counted exactly with history "
                 "multitau {}; the nearest representable lags are {} and {} timesteps", L, l,
                 history_m, nb.first * nevery_steps, nb.second * nevery_steps);
    error->all(FLERR, "Fix msm lag {} ({} samples) cannot be counted exactly with history "
               "multitau {}; the nearest representable lag is {} timesteps", L, l, history_m,
               nb.second * nevery_steps);
  }
}

void FixMSM::check_core_radius()
{
  if (assign_mode != "core") return;
  const double half = ionmsm::max_core_radius(*locator);
  if (!(core_radius < half))
    error->all(FLERR, "Fix msm assign core radius {} must be less than half the minimum site "
               "separation: {} / 2 = {}", core_radius, 2.0 * half, half);
}

/* ----------------------------------------------------------------------
   append yes: rank 0 adds the counts of an existing OUT.h5 to this run's
------------------------------------------------------------------------- */

void FixMSM::append_existing()
{
  int ok = 1, found = 0;
  std::string msg;
  if (comm->me == 0 && access(outfile.c_str(), F_OK) == 0) {
    found = 1;
    try {
      const ionmsm::CountsData old = ionmsm::read_counts_file(outfile);
      ionmsm::CountsData now;
      fill_config(now);
      now.timestep = update->dt;
      ionmsm::check_appendable(old, now);
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
      if (old.n_samples > 0) {
        base_first_step = old.first_step;
        base_last_step = old.last_step;
      }
    } catch (std::exception &e) {
      ok = 0;
      msg = e.what();
    }
  }
  stop_unless_ok_on_rank0(ok, msg, "Fix msm append yes: cannot append to '" + outfile + "': ");
  MPI_Bcast(&found, 1, MPI_INT, 0, world);
  MPI_Bcast(&base_first_step, 1, MPI_LMP_BIGINT, 0, world);
  MPI_Bcast(&base_last_step, 1, MPI_LMP_BIGINT, 0, world);
  appended_samples = found ? static_cast<bigint>(counter->n_samples()) : -1;
  MPI_Bcast(&appended_samples, 1, MPI_LMP_BIGINT, 0, world);
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
    if (append)
      error->all(FLERR, "Fix msm {}: append yes cannot add to '{}': fix msm {} writes that file "
                 "in this run (both resolve to '{}'), and each write would replace the other's "
                 "counts; give each fix its own file", id, outfile, other->id, resolved_outfile);
    error->all(FLERR, "Fix msm {} and fix msm {} both write the counts file '{}' (resolved: "
               "'{}'): each write would replace the other's counts; give each fix its own file",
               other->id, id, outfile, resolved_outfile);
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
                     id, counter->n_samples(), base_first_step >= 0 ? base_first_step : first_sampled,
                     last_sampled, outfile,
                     append ? " (append yes adds nothing: the restart file already holds the "
                              "counts appended when the fix was first defined)" : "");
    return;
  }
  note_unused_restart_state();
  if (append) {
    if (comm->me == 0 && appended_samples >= 0)
      utils::logmesg(lmp, "Fix msm {}: adding this run's counts to the {} samples (steps {} to {}) "
                     "in {} (append yes)\n", id, appended_samples, base_first_step,
                     base_last_step, outfile);
    else if (comm->me == 0)
      utils::logmesg(lmp, "Fix msm {}: {} does not exist yet: starting a new counts file "
                     "(append yes)\n", id, outfile);
    return;
  }
  int exists = 0;
  if (comm->me == 0) exists = access(outfile.c_str(), F_OK) == 0 ? 1 : 0;
  MPI_Bcast(&exists, 1, MPI_INT, 0, world);
  if (!exists) return;
  if (overwrite) {
    if (comm->me == 0)
      utils::logmesg(lmp, "Fix msm {}: replacing the existing counts file {} (overwrite yes)\n",
                     id, outfile);
    return;
  }
  const std::string hint = unused_restart_ids.empty() ? std::string() :
      fmt::format(" (the restart file holds the counts of fix msm '{}': to continue them, "
                  "define the fix with ID '{}')", unused_restart_ids.front(),
                  unused_restart_ids.front());
  error->all(FLERR, "Fix msm {}: the counts file '{}' already exists and fix msm never replaces "
             "counts without an explicit choice: add 'append yes' to add this run's counts to "
             "it, 'overwrite yes' to replace it, or choose another file name{}", id, outfile, hint);
}

void FixMSM::update_box()
{
  locator->set_box(ionmsm::Box::from_lammps(domain->boxlo, domain->boxhi, domain->xy,
                                            domain->xz, domain->yz));
  if (assigner) assigner->refresh();
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
  const double write_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
                   1e3 * worst[0] / static_cast<double>(run_samples), worst[1], outfile,
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
  if (step % nevery_steps) return;
  if (last_sampled >= 0 && step == last_sampled) return;
  if (last_sampled >= 0 && step < last_sampled)
    error->all(FLERR, "Fix msm: timestep {} is before the last sampled timestep {}; fix msm "
               "needs increasing timesteps (do not reset_timestep backwards)", step, last_sampled);
  if (dt_used < 0.0) dt_used = update->dt;
  if (update->dt != dt_used)
    error->all(FLERR, "Fix msm: the timestep changed from {} to {}; lags are counted in steps, so "
               "counts taken with different timesteps cannot be combined", dt_used, update->dt);
  const auto t_start = std::chrono::steady_clock::now();
  update_box();
  // a sample in a new block: store the finished block first (collective)
  if (recorder && recorder->starts_new_block(step / nevery_steps)) close_block();
  // the sample before this one: an atom on the quiet path was last recorded there
  const bigint prev_index = latest_sample_index();
  try {
    if (recorder) recorder->open(step / nevery_steps);
    counter->begin_sample(step / nevery_steps);
    counter->set_cell(locator->box().h());
  } catch (std::exception &e) {
    error->all(FLERR, "Fix msm: {}", e.what());
  }
  const bool core = assign_mode == "core";

  double **x = atom->x;
  int *mask = atom->mask;
  imageint *image = atom->image;
  const int nlocal = atom->nlocal;
  const bigint t = step / nevery_steps;
  // Outside the group: the atom's pairs stop (a no-op unless it was being recorded). A static
  // group cannot change during a run, so after the run's first sample those atoms are already
  // dropped and are skipped without touching their records (atoms created during the run start
  // unrecorded; migrating atoms carry their records).
  const bool check_outside = drop_outside || group->dynamic[igroup];
  drop_outside = false;
  if (check_outside) {
    for (int i = 0; i < nlocal; ++i) {
      if (mask[i] & groupbit) continue;
      try {
        bring_up_to_date(i, prev_index);
        if (use_quiet) quiet[4 * static_cast<std::size_t>(i) + 3] = -1.0;
        counter->drop_atom(hist[i] + assign_ndoubles);
      } catch (std::exception &e) {
        error->one(FLERR, "Fix msm: atom {} at step {}: {}", atom->tag[i], step, e.what());
      }
    }
  }
  // The group's atoms, listed without a branch per atom (group atoms and others alternate at
  // random in LAMMPS' spatially sorted arrays: a test per atom is mispredicted half the time).
  if (in_group.size() < static_cast<std::size_t>(nlocal)) in_group.resize(nlocal);
  int ngroup = 0;
  for (int i = 0; i < nlocal; ++i) {
    in_group[ngroup] = i;
    ngroup += (mask[i] & groupbit) ? 1 : 0;
  }
  // Quiet path: an atom within the safe radius of its last site image (SiteAssigner::stays,
  // the assigner's own fast path) before its next event has nothing to count; its sample
  // reads x, image and its 32-byte quiet row, all in atom order, and writes nothing.
  const bool quiet_now = use_quiet && counter->quiet_allowed();
  const double tq = static_cast<double>(t);
  double xu[3];
  bigint nquiet = 0;
  for (int k = 0; k < ngroup; ++k) {
    const int i = in_group[k];
    if (use_quiet) {
      if (k + 16 < ngroup)
        __builtin_prefetch(&quiet[4 * static_cast<std::size_t>(in_group[k + 16])], 0);
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
    double *q = use_quiet ? &quiet[4 * static_cast<std::size_t>(i)] : nullptr;
    if (quiet_now && tq < q[3] && assigner->stays(xv, Eigen::Vector3d(q[0], q[1], q[2]))) {
      ++nquiet;
      continue;
    }
    try {
      bring_up_to_date(i, prev_index);
      if (core) {
        auto committed = static_cast<ionmsm::SiteIndex>(hist[i][0]);
        const auto r = ionmsm::assign_core(*locator, core_radius, committed, xv);
        hist[i][0] = committed;
        if (!r.in_core) ++n_outside;
        counter->add_atom_sample(hist[i] + assign_ndoubles, r.where);
      } else {
        double *h = hist[i];
        ionmsm::SiteImage prev;
        prev.site = static_cast<ionmsm::SiteIndex>(h[0]);
        prev.image = {static_cast<std::int32_t>(h[1]), static_cast<std::int32_t>(h[2]),
                      static_cast<std::int32_t>(h[3])};
        const ionmsm::SiteImage now = assigner->assign(xv, prev);
        h[0] = now.site;
        h[1] = now.image[0];
        h[2] = now.image[1];
        h[3] = now.image[2];
        counter->add_atom_sample(h + assign_ndoubles, now);
        if (use_quiet) {
          const Eigen::Vector3d g = assigner->shifted_fractional(now);
          q[0] = g[0];
          q[1] = g[1];
          q[2] = g[2];
          q[3] = static_cast<double>(counter->quiet_until(h + assign_ndoubles));
        }
      }
    } catch (std::exception &e) {
      error->one(FLERR, "Fix msm: atom {} at step {}: {}", atom->tag[i], step, e.what());
    }
  }
  last_sampled = step;
  if (first_sampled < 0) first_sampled = step;
  counting_started = true;
  run_sample_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  ++run_samples;
  run_atom_samples[0] += ngroup;
  run_atom_samples[1] += nquiet;

  if (nout && step % nout == 0) write_counts(false);
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
  // see counting.hpp): read it as a signed value; the sum over ranks is the count
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
  return static_cast<int>(lags.size());
}
bigint FixMSM::lag_steps(int ilag) const
{
  return lags[ilag];
}
bigint FixMSM::num_samples() const
{
  return static_cast<bigint>(counter->n_samples());
}
int FixMSM::find_lag(bigint L) const
{
  for (std::size_t k = 0; k < lags.size(); ++k)
    if (lags[k] == L) return static_cast<int>(k);
  return -1;
}

/* ---------------------------------------------------------------------- */

void FixMSM::fill_config(ionmsm::CountsData &d)
{
  d.units = update->unit_style;
  d.timestep = dt_used > 0.0 ? dt_used : update->dt;
  d.timestep_ps = d.timestep * ionmsm::time_unit_in_ps(d.units);
  d.nevery = nevery_steps;
  d.site_fractional.clear();
  for (std::size_t s = 0; s < counter->nsites(); ++s)
    d.site_fractional.push_back(locator->fractional(s));
  d.lags.clear();
  for (std::size_t l = 0; l < lags.size(); ++l) {
    ionmsm::LagCounts lc;
    lc.lag_steps = lags[l];
    lc.level = counter->lag_level(l);
    d.lags.push_back(lc);
  }
  d.has_levels = true;
  d.history = history_mode;
  d.history_m = history_mode == "multitau" ? history_m : 0;
  d.doubles_per_atom = ndoubles;
  d.assign = assign_mode;
  d.core_radius = assign_mode == "core" ? core_radius : 0.0;
  d.has_displacement = true;
  d.block_steps = block_steps;
}

void FixMSM::fill_counts_data(ionmsm::CountsData &d, const std::vector<bigint> &rows,
                              const std::vector<double> &moments, bigint outside)
{
  fill_config(d);
  d.ionmsm_version = ionmsm::kVersion;
  d.lammps_version = lmp->version;
  d.command = command_line;
  d.units = update->unit_style;
  d.timestep = dt_used > 0.0 ? dt_used : update->dt;
  d.timestep_ps = d.timestep * ionmsm::time_unit_in_ps(d.units);
  d.nevery = nevery_steps;
  d.first_step = base_first_step >= 0 ? base_first_step : first_sampled;
  d.last_step = last_sampled >= 0 ? last_sampled : base_last_step;
  d.n_outside_core = static_cast<std::uint64_t>(outside);
  d.n_samples = counter->n_samples();
  d.n_atoms = natoms_group;
  const auto &box = locator->box();
  d.box_origin = box.origin();
  d.box_h = box.h();
  const std::size_t ns = counter->nsites();
  d.site_fractional.clear();
  for (std::size_t s = 0; s < ns; ++s) d.site_fractional.push_back(locator->fractional(s));
  d.site_labels = site_labels;
  bool any_label = false;
  for (auto &l : site_labels) any_label = any_label || !l.empty();
  if (!any_label) d.site_labels.clear();
  d.occupancy.assign(rows.begin(), rows.begin() + ns);
  for (std::size_t l = 0; l < lags.size(); ++l) {
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
    ionmsm::CountBlock cum = ionmsm::empty_block(ns, lags.size(), -1);
    cum.n_samples = counter->n_samples();
    for (std::size_t s = 0; s < ns; ++s) cum.occupancy[s] = static_cast<std::uint64_t>(rows[s]);
    for (std::size_t l = 0; l < lags.size(); ++l) cum.n_origins[l] = counter->n_origins(l);
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
      if (!occupancy_checked && d.n_samples > 0) {
        occupancy_checked = true;
        const std::string w = ionmsm::check_early_occupancy(d.occupancy, d.n_atoms);
        if (!w.empty())
          error->warning(FLERR, "Fix msm {}: {}{}", id, w,
                         sites_mode == "file" ? fmt::format(" (sites file '{}')", sites_arg)
                                              : fmt::format(" (sites group '{}')", sites_arg));
      }
      ionmsm::write_counts_file(outfile, d);
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
  if (!ok) msg += fmt::format("; '{}' keeps the counts of the last successful write", outfile);
  stop_unless_ok_on_rank0(ok, msg, fmt::format("Fix msm {}: the write at the end of the run "
                                               "failed: ", id));
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
                     "checkpoint(s)\n", id, outfile, step, failed_checkpoints);
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
                   "(step {}) tries again", id, step, msg, step + nout);
  else
    error->warning(FLERR, "Fix msm {}: checkpoint at step {} failed as well ({} in a row, same "
                   "cause)", id, step, failed_checkpoints);
  last_failure = cause;
}

/* ----------------------------------------------------------------------
   per-atom history records
------------------------------------------------------------------------- */

double FixMSM::memory_usage()
{
  return static_cast<double>(atom->nmax) * static_cast<double>(row_stride()) * sizeof(double) +
         static_cast<double>(quiet.capacity()) * sizeof(double) +
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
  if (use_quiet) quiet.resize(4 * rows, -1.0);
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
  if (use_quiet)
    std::memcpy(&quiet[4 * static_cast<std::size_t>(j)], &quiet[4 * static_cast<std::size_t>(i)],
                4 * sizeof(double));
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
  double *q = &quiet[4 * static_cast<std::size_t>(i)];
  if (q[3] < 0.0) return;
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
    double *q = &quiet[4 * static_cast<std::size_t>(i)];
    if (q[3] >= 0.0) continue;
    const double *h = hist[i];
    if (h[0] < 0.0) continue;
    const std::int64_t until = counter->quiet_until(h + assign_ndoubles);
    if (until < 0) continue;
    ionmsm::SiteImage last;
    last.site = static_cast<ionmsm::SiteIndex>(h[0]);
    last.image = {static_cast<std::int32_t>(h[1]), static_cast<std::int32_t>(h[2]),
                  static_cast<std::int32_t>(h[3])};
    const Eigen::Vector3d g = assigner->shifted_fractional(last);
    q[0] = g[0];
    q[1] = g[1];
    q[2] = g[2];
    q[3] = static_cast<double>(until);
  }
}

void FixMSM::set_arrays(int i)
{
  for (int k = 0; k < assign_ndoubles; ++k) hist[i][k] = 0.0;
  hist[i][0] = -1.0;    // no committed site (core) / no previous assignment (nearest) yet
  counter->clear_history(hist[i] + assign_ndoubles);
  if (use_quiet) quiet[4 * static_cast<std::size_t>(i) + 3] = -1.0;
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
  if (use_quiet) quiet[4 * static_cast<std::size_t>(nlocal) + 3] = -1.0;
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
  if (use_quiet) quiet[4 * static_cast<std::size_t>(nlocal) + 3] = -1.0;
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
  std::vector<std::int64_t> buf = {kRestartMagic, kRestartVersion, nevery_steps,
                                   static_cast<std::int64_t>(lags.size())};
  buf.insert(buf.end(), lags.begin(), lags.end());
  buf.push_back(num_sites());
  for (double v : site_frac) buf.push_back(bits_of(v));
  buf.push_back(last_sampled);
  buf.push_back(first_sampled);
  buf.push_back(bits_of(dt_used));
  buf.push_back(static_cast<std::int64_t>(site_raw.size()));
  for (double v : site_raw) buf.push_back(bits_of(v));
  // version 2: history, assignment, appended steps, outside-core count, moments
  buf.push_back(history_mode == "multitau" ? history_m : 0);
  buf.push_back(assign_mode == "core" ? 1 : 0);
  buf.push_back(bits_of(assign_mode == "core" ? core_radius : 0.0));
  buf.push_back(base_first_step);
  buf.push_back(base_last_step);
  buf.push_back(outside_total);
  buf.push_back(static_cast<std::int64_t>(moments.size()));
  for (double v : moments) buf.push_back(bits_of(v));
  auto clock = counter->pack_clock();
  buf.push_back(static_cast<std::int64_t>(clock.size()));
  buf.insert(buf.end(), clock.begin(), clock.end());
  // counts in pack_counts layout
  std::vector<std::int64_t> packed;
  {
    const std::size_t ns = counter->nsites();
    std::size_t nrows = (rows.size() - ns) / 7;
    packed.push_back(static_cast<std::int64_t>(ns));
    packed.push_back(static_cast<std::int64_t>(nrows));
    packed.insert(packed.end(), rows.begin(), rows.end());
  }
  buf.push_back(static_cast<std::int64_t>(packed.size()));
  buf.insert(buf.end(), packed.begin(), packed.end());
  // version 3: blocks (length in steps, then the recorder state; 0 values without blocks)
  buf.push_back(block_steps);
  std::vector<std::int64_t> bstate;
  if (recorder) bstate = recorder->pack();
  buf.push_back(static_cast<std::int64_t>(bstate.size()));
  buf.insert(buf.end(), bstate.begin(), bstate.end());
  int size = static_cast<int>(buf.size() * sizeof(std::int64_t));
  fwrite(&size, sizeof(int), 1, fp);
  fwrite(buf.data(), sizeof(std::int64_t), buf.size(), fp);
}

void FixMSM::restart(char *raw)
{
  // LAMMPS passes the bytes after the size; the layout is ours (see write_restart)
  auto *p = reinterpret_cast<std::int64_t *>(raw);
  std::size_t k = 0;
  if (p[k++] != kRestartMagic)
    error->all(FLERR, "Fix msm restart: the global state of fix {} was not written by fix msm", id);
  const std::int64_t version = p[k++];
  if (version != kRestartVersion && version != 4)
    error->all(FLERR, "Fix msm restart: the restart file holds fix msm state version {}, this "
               "fix msm reads version {} (write the restart with the same ionmsm version)",
               version, kRestartVersion);
  bigint nev = p[k++];
  if (nev != nevery_steps)
    error->all(FLERR, "Fix msm restart: Nevery was {} in the restart file but is {} now; counts "
               "would be corrupted", nev, nevery_steps);
  std::int64_t nl = p[k++];
  std::vector<bigint> old_lags(p + k, p + k + nl);
  k += nl;
  if (old_lags != lags) {
    std::string o, n;
    for (auto L : old_lags) o += " " + std::to_string(L);
    for (auto L : lags) n += " " + std::to_string(L);
    error->all(FLERR, "Fix msm restart: lags were{} in the restart file but are{} now; counts "
               "would be corrupted", o, n);
  }
  std::int64_t ns = p[k++];
  std::vector<double> old_sites;
  for (std::int64_t s = 0; s < 3 * ns; ++s) old_sites.push_back(double_of(p[k++]));
  if (static_cast<std::int64_t>(site_frac.size()) != 3 * ns) {
    error->all(FLERR, "Fix msm restart: the restart file has {} sites but sites {} '{}' gives {}",
               ns, sites_mode, sites_arg, num_sites());
  }
  site_frac = old_sites;    // sites taken once: the restart's sites win
  if (sites_mode == "group") site_labels.assign(ns, std::string());
  build_locator();
  last_sampled = p[k++];
  first_sampled = p[k++];
  dt_used = double_of(p[k++]);
  std::int64_t nraw = p[k++];
  std::vector<double> old_raw;
  for (std::int64_t s = 0; s < nraw; ++s) old_raw.push_back(double_of(p[k++]));
  if (sites_mode == "file" && old_raw != site_raw)
    error->all(FLERR, "Fix msm restart: the coordinates in sites file '{}' differ from those the "
               "counts in the restart file were taken with", sites_arg);
  const std::int64_t old_m = p[k++];
  const std::string old_hist = old_m > 0 ? "multitau " + std::to_string(old_m) : "full";
  const std::string new_hist =
      history_mode == "multitau" ? "multitau " + std::to_string(history_m) : "full";
  if (old_hist != new_hist)
    error->all(FLERR, "Fix msm restart: history was '{}' in the restart file but is '{}' now; "
               "per-atom histories would be corrupted", old_hist, new_hist);
  const std::int64_t old_core = p[k++];
  const double old_radius = double_of(p[k++]);
  const std::string old_assign = old_core ? fmt::format("core {}", old_radius) : "nearest";
  const std::string new_assign =
      assign_mode == "core" ? fmt::format("core {}", core_radius) : "nearest";
  if (old_assign != new_assign)
    error->all(FLERR, "Fix msm restart: assign was '{}' in the restart file but is '{}' now; "
               "counts would be corrupted", old_assign, new_assign);
  base_first_step = p[k++];
  base_last_step = p[k++];
  const std::int64_t outside_total = p[k++];
  const std::int64_t nmom = p[k++];
  std::vector<double> moments;
  for (std::int64_t q = 0; q < nmom; ++q) moments.push_back(double_of(p[k++]));
  std::int64_t nclock = p[k++];
  bigint old_blocks = 0;
  try {
    // the restart holds everything counted so far (also counts appended from OUT.h5 when the
    // fix was first defined): start from zero, whatever 'append' added in the constructor
    counter->clear_counts();
    n_outside = 0;
    std::vector<Eigen::Vector3d> f;
    for (std::size_t s = 0; s < counter->nsites(); ++s) f.push_back(locator->fractional(s));
    counter->set_site_fractional(f);
    counter->unpack_clock(p + k, static_cast<std::size_t>(nclock));
    k += nclock;
    std::int64_t npacked = p[k++];
    // rank 0 restores the summed counts; other ranks start from zero
    if (comm->me == 0) {
      counter->add_packed_counts(p + k, static_cast<std::size_t>(npacked));
      counter->add_packed_moments(moments.data(), moments.size());
      n_outside = outside_total;
    }
    k += npacked;
    old_blocks = p[k++];
    const std::int64_t nblock = p[k++];
    if (recorder && old_blocks == block_steps) {
      // every rank tracks the open block; only rank 0 keeps the stored blocks
      recorder->unpack(p + k, static_cast<std::size_t>(nblock));
      if (comm->me != 0) recorder->clear_data();
    }
  } catch (std::exception &e) {
    error->all(FLERR, "Fix msm restart: {}", e.what());
  }
  if (old_blocks != block_steps) {
    auto name = [](bigint b) {
      return b > 0 ? fmt::format("blocks {}", b) : std::string("no blocks");
    };
    error->all(FLERR, "Fix msm restart: the restart file has {} but the fix now has {}; the "
               "blocks would not add up to the counts", name(old_blocks), name(block_steps));
  }
  counting_started = last_sampled >= 0;
  restored = true;
}
