#pragma once
// Periodic simulation cells and the nearest-site search.
//
// Conventions (docs/theory.md):
//  * A cell is given by its origin o and the matrix H whose COLUMNS are the cell vectors a, b, c
//    (LAMMPS: a = (xprd,0,0), b = (xy,yprd,0), c = (xz,yz,zprd)). Cartesian x = o + H f.
//  * Sites are stored in fractional coordinates, so they follow the box (NPT, deformation).
//  * locate() takes an UNWRAPPED Cartesian position x_u and returns the site s and the integer
//    image n (a 3-vector) minimising |x_u - (o + H (f_s + n))|. The lattice shift of a
//    transition s(t) -> s(t+L) is n(t+L) - n(t); the site-projected displacement is
//    H (f_to - f_from + shift).
//  * Ties: smallest squared distance, then lowest site index, then lexicographically smallest
//    image. Both the fast grid search and the brute-force reference obey the same rule.
#include <Eigen/Dense>
#include <array>
#include <cstdint>
#include <vector>

namespace ionmsm {

using SiteIndex = std::int32_t;
using Image = std::array<std::int32_t, 3>;

class Box {
 public:
  Box() = default;
  /// h: columns are the cell vectors. Throws std::invalid_argument if h is singular or has a
  /// non-finite entry.
  Box(const Eigen::Vector3d& origin, const Eigen::Matrix3d& h);
  /// LAMMPS convention: boxlo, boxhi, tilt factors xy, xz, yz.
  static Box from_lammps(const double lo[3], const double hi[3], double xy, double xz, double yz);

  const Eigen::Vector3d& origin() const { return origin_; }
  const Eigen::Matrix3d& h() const { return h_; }
  const Eigen::Matrix3d& h_inverse() const { return h_inv_; }
  /// Fractional coordinates of a Cartesian point (not wrapped).
  Eigen::Vector3d to_fractional(const Eigen::Vector3d& x) const { return h_inv_ * (x - origin_); }
  Eigen::Vector3d to_cartesian(const Eigen::Vector3d& f) const { return origin_ + h_ * f; }
  /// Distance between the two faces of the cell perpendicular to fractional axis k.
  double face_distance(int k) const;
  double volume() const { return std::abs(h_.determinant()); }
  bool is_orthogonal() const;

 private:
  Eigen::Vector3d origin_ = Eigen::Vector3d::Zero();
  Eigen::Matrix3d h_ = Eigen::Matrix3d::Identity();
  Eigen::Matrix3d h_inv_ = Eigen::Matrix3d::Identity();
};

struct SiteImage {
  SiteIndex site = -1;
  Image image{0, 0, 0};
  double distance2 = 0.0;  ///< squared Cartesian distance to that image of the site
};

/// Nearest periodic image of the nearest site. Exact for any cell (the search widens until no
/// unsearched site image can be closer). Uses a bin grid in fractional space.
class SiteLocator {
 public:
  SiteLocator() = default;
  /// sites_fractional: fractional coordinates (any real values; they are wrapped into [0,1)).
  /// Throws std::invalid_argument on an empty site list or a non-finite coordinate.
  SiteLocator(const std::vector<Eigen::Vector3d>& sites_fractional, const Box& box);

  /// Change the cell (sites keep their fractional coordinates). Cheap when the cell is unchanged.
  void set_box(const Box& box);
  const Box& box() const { return box_; }

  /// Nearest site to an unwrapped Cartesian position.
  SiteImage locate(const Eigen::Vector3d& x_unwrapped) const;

  std::size_t size() const { return frac_.size(); }
  /// Wrapped fractional coordinates of site s (in [0,1)).
  const Eigen::Vector3d& fractional(SiteIndex s) const { return frac_[static_cast<std::size_t>(s)]; }
  /// Cartesian position of site s in the current cell (image 0).
  Eigen::Vector3d cartesian(SiteIndex s) const { return box_.to_cartesian(fractional(s)); }
  /// Shortest distance between two distinct sites under periodic boundaries (0 if 1 site).
  double min_site_separation() const;

  /// Nearest periodic image of ONE given site to an unwrapped Cartesian position: the image n
  /// minimising |x - (o + H (f_s + n))|, exact for any cell (ties: lexicographically smallest
  /// image). Throws std::invalid_argument for a site out of range or a non-finite position.
  SiteImage nearest_image(SiteIndex site, const Eigen::Vector3d& x_unwrapped) const;

 private:
  void build_grid();
  /// Chooses the number of bins per axis for the current cell and site count.
  std::array<int, 3> choose_bins() const;
  /// Exact nearest (site, image) to x, ignoring every image of site `exclude` (-1: none).
  SiteImage search(const Eigen::Vector3d& x, SiteIndex exclude) const;
  Box box_;
  std::array<double, 3> face_{1.0, 1.0, 1.0};  // face distances of box_
  std::vector<Eigen::Vector3d> frac_;
  std::array<int, 3> nbins_{1, 1, 1};
  std::vector<int> bin_start_;  // CSR over bins
  std::vector<SiteIndex> bin_sites_;
};

/// Length of the shortest nonzero lattice vector H n of a cell (exact: enumerates every n that
/// can beat the shortest cell vector).
double shortest_lattice_vector(const Box& box);

/// Core-set (milestoning) assignment, `fix msm ... assign core R` (docs/fix_msm.rst):
///  * if x is within `radius` (distance <= radius) of an image of some site, that site is
///    committed and the result is that (site, image) -- `in_core` is true. With radius below
///    half the minimum site separation at most one site's cores can contain x;
///  * otherwise, if no site is committed yet (`committed` < 0: the atom's first sample), the
///    nearest site is committed (outside every core);
///  * otherwise the committed site is kept and its image is the one nearest to x
///    (SiteLocator::nearest_image). Entering the core of ANOTHER image of the committed site is
///    therefore no event of its own: that image is already the nearest one.
/// `committed` is updated in place. Throws std::invalid_argument for radius <= 0 or a committed
/// site out of range.
struct CoreAssignment {
  SiteImage where;
  bool in_core = false;
};
CoreAssignment assign_core(const SiteLocator& locator, double radius, SiteIndex& committed,
                           const Eigen::Vector3d& x_unwrapped);

/// Largest admissible core radius: cores must not overlap, so R must be below half of
/// min_site_separation() (with one site: half the shortest lattice vector). Returns that
/// half-separation.
double max_core_radius(const SiteLocator& locator);

/// Reference implementation: loops over all sites (ascending) and all images n with
/// floor(f) - range <= n <= floor(f) + range componentwise, f = fractional coordinates of x.
/// Site coordinates are wrapped into [0,1) exactly as SiteLocator does. Used by tests;
/// O(N (2 range + 1)^3). Throws std::invalid_argument on no sites or range < 0.
SiteImage locate_brute_force(const std::vector<Eigen::Vector3d>& sites_fractional, const Box& box,
                             const Eigen::Vector3d& x_unwrapped, int range = 2);

/// Fractional coordinates g = f + n of image n of a site at f.
inline Eigen::Vector3d shifted_fractional(const Eigen::Vector3d& f, const Image& n) {
  return {f[0] + n[0], f[1] + n[1], f[2] + n[2]};
}

/// Squared distance from x to the point with (shifted) fractional coordinates g.
inline double shifted_distance2(const Box& box, const Eigen::Vector3d& g,
                                const Eigen::Vector3d& x) {
  return (x - box.to_cartesian(g)).squaredNorm();
}

/// Squared distance from x to image n of the site with fractional coordinates f (the one formula
/// every search uses, so that ties resolve identically).
inline double image_distance2(const Box& box, const Eigen::Vector3d& f, const Image& n,
                              const Eigen::Vector3d& x) {
  return shifted_distance2(box, shifted_fractional(f, n), x);
}

/// Strict ordering used for ties: (d2, site, image) lexicographic.
inline bool better_than(const SiteImage& a, const SiteImage& b) {
  if (a.distance2 != b.distance2) return a.distance2 < b.distance2;
  if (a.site != b.site) return a.site < b.site;
  return a.image < b.image;
}

}  // namespace ionmsm
