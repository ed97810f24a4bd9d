// Sites as the peaks of a periodic ion density (site_discovery.hpp).
#include "ionmsm/site_discovery.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace ionmsm {

namespace {

int wrap(int i, int n) { return ((i % n) + n) % n; }

// Flat index of the neighbour of `c` at offset (dx, dy, dz), periodic.
std::size_t neighbour(const DensityGrid& g, const std::array<int, 3>& c, int dx, int dy, int dz) {
  return g.index(wrap(c[0] + dx, g.n[0]), wrap(c[1] + dy, g.n[1]), wrap(c[2] + dz, g.n[2]));
}

// The total order of rule 1: higher density first, then the lower index.
bool higher(const DensityGrid& g, std::size_t a, std::size_t b) {
  if (g.density[a] != g.density[b]) return g.density[a] > g.density[b];
  return a < b;
}

// The best of the 26 neighbours of cell i, or i itself if none beats it.
std::size_t steepest_neighbour(const DensityGrid& g, std::size_t i) {
  const std::array<int, 3> c = g.cell(i);
  std::size_t best = i;
  for (int dz = -1; dz <= 1; ++dz)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        if (dx == 0 && dy == 0 && dz == 0) continue;
        const std::size_t j = neighbour(g, c, dx, dy, dz);
        if (higher(g, j, best)) best = j;
      }
  return best;
}

Eigen::Vector3d wrapped(const Eigen::Vector3d& f) {
  Eigen::Vector3d w;
  for (int k = 0; k < 3; ++k) {
    w[k] = f[k] - std::floor(f[k]);
    if (w[k] >= 1.0) w[k] = 0.0;  // -1e-17 - floor(...) rounds to 1
  }
  return w;
}

void check_grid(const DensityGrid& g) {
  for (int k = 0; k < 3; ++k)
    if (g.n[static_cast<std::size_t>(k)] < 3)
      throw std::invalid_argument("site discovery needs at least 3 grid cells along each axis, "
                                  "got " + std::to_string(g.n[0]) + " x " +
                                  std::to_string(g.n[1]) + " x " + std::to_string(g.n[2]));
  if (g.density.size() != static_cast<std::size_t>(g.n[0]) * g.n[1] * g.n[2])
    throw std::invalid_argument("density grid: " + std::to_string(g.density.size()) +
                                " values for a grid of " + std::to_string(g.n[0]) + " x " +
                                std::to_string(g.n[1]) + " x " + std::to_string(g.n[2]));
}

// Index of the kept site nearest to f within `radius`, or -1.
int nearest_within(const Box& box, const std::vector<DiscoveredSite>& kept,
                   const Eigen::Vector3d& f, double radius) {
  int best = -1;
  double best_d = radius;
  for (std::size_t s = 0; s < kept.size(); ++s) {
    // Cheap lower bound first: no image is closer than |wrapped d_k| times the face distance.
    bool far = false;
    for (int k = 0; k < 3 && !far; ++k) {
      double d = f[k] - kept[s].fractional[k];
      d -= std::round(d);
      far = std::abs(d) * box.face_distance(k) > best_d;
    }
    if (far) continue;
    const double d = periodic_distance(box, f, kept[s].fractional);
    if (d <= best_d) {
      if (d < best_d || best < 0) best = static_cast<int>(s);
      best_d = d;
    }
  }
  return best;
}

}  // namespace

std::vector<std::size_t> grid_maxima(const DensityGrid& grid) {
  check_grid(grid);
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < grid.size(); ++i)
    if (grid.density[i] > 0.0 && steepest_neighbour(grid, i) == i) out.push_back(i);
  return out;
}

std::vector<std::int32_t> grid_basins(const DensityGrid& grid,
                                      const std::vector<std::size_t>& maxima) {
  check_grid(grid);
  constexpr std::int32_t kUnknown = -2;
  std::vector<std::int32_t> basin(grid.size(), kUnknown);
  for (std::size_t m = 0; m < maxima.size(); ++m) basin[maxima[m]] = static_cast<std::int32_t>(m);
  std::vector<std::size_t> path;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    if (grid.density[i] <= 0.0) basin[i] = -1;
    if (basin[i] != kUnknown) continue;
    // Climb until a cell with a known basin, then label the path (each cell climbs once).
    std::size_t j = i;
    path.clear();
    while (basin[j] == kUnknown) {
      path.push_back(j);
      const std::size_t up = steepest_neighbour(grid, j);
      if (up == j)
        throw std::invalid_argument("grid_basins: cell " + std::to_string(j) +
                                    " is a maximum missing from the list");
      j = up;
    }
    for (std::size_t p : path) basin[p] = basin[j];
  }
  return basin;
}

Eigen::Vector3d refine_peak(const DensityGrid& grid, std::size_t index) {
  check_grid(grid);
  const std::array<int, 3> c = grid.cell(index);
  const Eigen::Vector3d centre((c[0] + 0.5) / grid.n[0], (c[1] + 0.5) / grid.n[1],
                               (c[2] + 0.5) / grid.n[2]);
  // Weighted least-squares quadratic q(x) = c + g.x + x^T H x / 2 of log(density) over the block,
  // x in {-1,0,1}^3 (units of grid cells); weights = density, as the variance of the log of a
  // count is about 1/count. Exact for a quadratic.
  Eigen::Matrix<double, 27, 10> a;
  Eigen::Matrix<double, 27, 1> b;
  int row = 0;
  for (int dx = -1; dx <= 1; ++dx)
    for (int dy = -1; dy <= 1; ++dy)
      for (int dz = -1; dz <= 1; ++dz, ++row) {
        const double rho = grid.density[neighbour(grid, c, dx, dy, dz)];
        if (!(rho > 0.0)) return centre;
        const double w = std::sqrt(rho);
        a.row(row) << 1, dx, dy, dz, dx * dx, dy * dy, dz * dz, dx * dy, dx * dz, dy * dz;
        a.row(row) *= w;
        b[row] = w * std::log(rho);
      }
  const Eigen::Matrix<double, 10, 1> q = a.colPivHouseholderQr().solve(b);
  const Eigen::Vector3d g(q[1], q[2], q[3]);
  Eigen::Matrix3d h;
  h << 2 * q[4], q[7], q[8], q[7], 2 * q[5], q[9], q[8], q[9], 2 * q[6];
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> eig(h);
  if (eig.info() != Eigen::Success || eig.eigenvalues().maxCoeff() >= 0.0) return centre;
  const Eigen::Vector3d step = -h.ldlt().solve(g);
  if (!step.allFinite() || step.cwiseAbs().maxCoeff() > 1.0) return centre;
  return {centre[0] + step[0] / grid.n[0], centre[1] + step[1] / grid.n[1],
          centre[2] + step[2] / grid.n[2]};
}

double periodic_distance(const Box& box, const Eigen::Vector3d& fa, const Eigen::Vector3d& fb) {
  Eigen::Vector3d d = fa - fb;
  for (int k = 0; k < 3; ++k) d[k] -= std::round(d[k]);
  double best = (box.h() * d).norm();
  // An image n can only be closer if |d_k + n_k| face_k < best for every k.
  int range[3];
  for (int k = 0; k < 3; ++k)
    range[k] = static_cast<int>(std::ceil(best / box.face_distance(k) + 0.5));
  for (int i = -range[0]; i <= range[0]; ++i)
    for (int j = -range[1]; j <= range[1]; ++j)
      for (int k = -range[2]; k <= range[2]; ++k)
        best = std::min(best, (box.h() * (d + Eigen::Vector3d(i, j, k))).norm());
  return best;
}

SiteDiscovery discover_sites(const DensityGrid& grid, const SiteDiscoveryOptions& options) {
  check_grid(grid);
  if (!(options.min_separation >= 0.0) || !std::isfinite(options.min_separation))
    throw std::invalid_argument("min_separation must be a finite number >= 0");
  if (!(options.min_occupancy >= 0.0) || !std::isfinite(options.min_occupancy))
    throw std::invalid_argument("min_occupancy must be a finite number >= 0");
  if (!(options.min_contrast >= 0.0) || !std::isfinite(options.min_contrast))
    throw std::invalid_argument("min_contrast must be a finite number >= 0");
  SiteDiscovery out;
  out.total_number = grid.total_number();
  out.mean_density = out.total_number / grid.box.volume();
  std::vector<DiscoveredSite> kept;
  for (std::size_t s = 0; s < options.seeds_fractional.size(); ++s) {
    if (!options.seeds_fractional[s].allFinite())
      throw std::invalid_argument("seed site " + std::to_string(s) + " is not finite");
    DiscoveredSite site;
    site.fractional = wrapped(options.seeds_fractional[s]);
    site.seed = static_cast<int>(s);
    kept.push_back(site);
  }

  const std::vector<std::size_t> maxima = grid_maxima(grid);
  const std::vector<std::int32_t> basin = grid_basins(grid, maxima);
  out.n_maxima = maxima.size();
  std::vector<double> basin_number(maxima.size(), 0.0);
  for (std::size_t i = 0; i < grid.size(); ++i)
    if (basin[i] >= 0) basin_number[static_cast<std::size_t>(basin[i])] += grid.density[i];
  for (double& b : basin_number) b *= grid.cell_volume();

  std::vector<std::size_t> order(maxima.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return higher(grid, maxima[a], maxima[b]); });
  for (std::size_t m : order) {
    const Eigen::Vector3d f = wrapped(refine_peak(grid, maxima[m]));
    const double peak = grid.density[maxima[m]];
    const int into = nearest_within(grid.box, kept, f, options.min_separation);
    if (into >= 0) {
      DiscoveredSite& s = kept[static_cast<std::size_t>(into)];
      s.occupancy += basin_number[m];
      s.peak_density = std::max(s.peak_density, peak);
      ++s.n_maxima;
      continue;
    }
    DiscoveredSite site;
    site.fractional = f;
    site.occupancy = basin_number[m];
    site.peak_density = peak;
    site.n_maxima = 1;
    kept.push_back(site);
  }
  for (DiscoveredSite& s : kept) {
    s.contrast = out.mean_density > 0.0 ? s.peak_density / out.mean_density : 0.0;
    if (s.seed < 0 && (s.occupancy < options.min_occupancy ||
                       s.peak_density < options.min_contrast * out.mean_density)) {
      out.dropped.push_back(s);
      out.dropped_occupancy += s.occupancy;
    } else {
      out.sites.push_back(s);
      out.kept_occupancy += s.occupancy;
    }
  }
  return out;
}

double fraction_within(const DensityGrid& grid, const std::vector<Eigen::Vector3d>& sites_fractional,
                       double radius) {
  if (!(radius >= 0.0)) throw std::invalid_argument("fraction_within: radius must be >= 0");
  const SiteLocator locator(sites_fractional, grid.box);  // throws for no sites
  double inside = 0.0, total = 0.0;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    if (grid.density[i] <= 0.0) continue;
    total += grid.density[i];
    const SiteImage hit = locator.locate(grid.box.to_cartesian(grid.cell_center(i)));
    if (hit.distance2 <= radius * radius) inside += grid.density[i];
  }
  return total > 0.0 ? inside / total : 0.0;
}

}  // namespace ionmsm
