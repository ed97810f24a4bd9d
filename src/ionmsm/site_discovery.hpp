#pragma once
// Sites as the peaks of a periodic ion density (docs/site-discovery.md).
//
//  1. Maxima: a grid cell is a maximum when it beats its 26 periodic neighbours in the order
//     (density, then lower flat index); cells of zero density are never maxima.
//  2. Basins: every cell of positive density follows its steepest ascent (the best neighbour in
//     the same order) to a maximum; the occupancy of a maximum is the integral of the density
//     over its basin, i.e. the mean number of ions there.
//  3. Position: maximum of a quadratic fitted (least squares, weights = density) to
//     log(density) on the 3x3x3 block around the maximum -- exact for a Gaussian peak sampled at
//     points. The cell centre is kept when a block value is zero, the fit is not concave, or
//     its maximum lies more than one cell away.
//  4. Merging: seeds first, then maxima by decreasing peak density; a maximum closer than
//     min_separation (Cartesian, periodic) to a kept site joins the nearest one (its basin
//     adds to that site's occupancy), otherwise it becomes a new site.
//  5. Dropping: found (non-seed) sites whose occupancy is below min_occupancy, or whose peak
//     density is below min_contrast times the mean density of the grid, are dropped. The
//     contrast test removes what sampling noise makes in weakly structured regions: there,
//     merging gathers many noise maxima into "sites" with sizeable occupancy but a peak close
//     to the mean density.
#include <Eigen/Dense>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ionmsm/density_grid.hpp"

namespace ionmsm {

struct SiteDiscoveryOptions {
  double min_separation = 0.0;  ///< length units; 0 merges nothing
  double min_occupancy = 0.0;   ///< mean number of ions in the site's basins
  double min_contrast = 0.0;    ///< peak density / mean density of the grid
  /// Known sites (fractional coordinates), kept whatever their occupancy, listed first.
  std::vector<Eigen::Vector3d> seeds_fractional;
};

struct DiscoveredSite {
  Eigen::Vector3d fractional = Eigen::Vector3d::Zero();  ///< wrapped into [0,1)
  double occupancy = 0.0;     ///< mean number of ions in its basins
  double peak_density = 0.0;  ///< density of its highest maximum (0 for a seed without one)
  double contrast = 0.0;      ///< peak_density / mean density of the grid
  int n_maxima = 0;           ///< grid maxima merged into it
  int seed = -1;              ///< index into seeds_fractional, -1 for a found site
};

struct SiteDiscovery {
  std::vector<DiscoveredSite> sites;  ///< seeds in their order, then found sites
  std::size_t n_maxima = 0;           ///< grid maxima before merging
  std::vector<DiscoveredSite> dropped;  ///< found sites below min_occupancy or min_contrast
  double kept_occupancy = 0.0;          ///< ions in the kept sites' basins
  double dropped_occupancy = 0.0;       ///< ions in the dropped sites' basins
  double total_number = 0.0;            ///< integral of the density (mean number of ions)
  double mean_density = 0.0;            ///< total_number / cell volume
};

/// Throws std::invalid_argument for a grid with fewer than 3 cells along an axis, a negative
/// min_separation, min_occupancy or min_contrast, or a non-finite seed.
SiteDiscovery discover_sites(const DensityGrid& grid, const SiteDiscoveryOptions& options);

/// Fraction of the density (of grid.total_number()) in cells whose centre lies within `radius`
/// of one of `sites_fractional` (periodic): the share of ion positions inside the cores of
/// `fix msm ... assign core radius`, estimated from the grid. 0 for an empty grid. Throws
/// std::invalid_argument for no sites or radius < 0.
double fraction_within(const DensityGrid& grid, const std::vector<Eigen::Vector3d>& sites_fractional,
                       double radius);

// ------------------------------------------------------------- steps, exposed for the tests

/// Flat indices of the grid maxima (rule 1), ascending.
std::vector<std::size_t> grid_maxima(const DensityGrid& grid);
/// For every cell the index into `maxima` its steepest ascent reaches (-1 for zero density).
std::vector<std::int32_t> grid_basins(const DensityGrid& grid,
                                      const std::vector<std::size_t>& maxima);
/// Refined fractional position of the peak at cell `index` (rule 3), not wrapped.
Eigen::Vector3d refine_peak(const DensityGrid& grid, std::size_t index);
/// Shortest Cartesian distance between two points given in fractional coordinates, over
/// periodic images (exact for any cell).
double periodic_distance(const Box& box, const Eigen::Vector3d& fa, const Eigen::Vector3d& fb);

}  // namespace ionmsm
