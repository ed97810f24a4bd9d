/* ----------------------------------------------------------------------
   ionmsm: fix msm -- the sites: from a LAMMPS group or a sites file (read on rank 0 and
   broadcast), then the core's SiteLocator and, for assign nearest, its SiteAssigner.
------------------------------------------------------------------------- */

#include "fix_msm.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "group.h"

#include "ionmsm/geometry.hpp"
#include "ionmsm/site_assigner.hpp"
#include "ionmsm/sites_file.hpp"

#include <algorithm>
#include <exception>

using namespace LAMMPS_NS;

void FixMSM::load_sites()
{
  if (config.sites == ionmsm::SitesSource::Group) {
    int igs = group->find(config.sites_arg);
    if (igs < 0) error->all(FLERR, "Fix msm sites group '{}' does not exist", config.sites_arg);
    sites_from_group(igs);
  } else {
    sites_from_file(config.sites_arg);
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
  if (total == 0) error->all(FLERR, "Fix msm sites group '{}' has no atoms", config.sites_arg);
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
  if (config.assign == ionmsm::AssignMode::Nearest) {
    try {
      assigner = std::make_unique<ionmsm::SiteAssigner>(*locator);
    } catch (std::exception &e) {
      error->all(FLERR, "Fix msm sites: {}", e.what());
    }
  }
}

std::vector<Eigen::Vector3d> FixMSM::site_fractional() const
{
  std::vector<Eigen::Vector3d> f;
  for (std::size_t s = 0; s < site_frac.size() / 3; ++s) f.push_back(locator->fractional(s));
  return f;
}
