#pragma once
// Fast exact site assignment for atoms that stay near their previous site (docs/theory.md).
//
// If an atom is closer to the image of its previous site than half the shortest distance
// between any two distinct site images (other sites, and other periodic images of the same
// site), that image is provably the unique nearest one:
//   |x - q| >= |p - q| - |x - p| >= d_min - |x - p| > |x - p|   for every other site image q.
// d_min >= min(min_site_separation, smallest face distance), because any nonzero lattice
// translation H n has a component n_k != 0 and so a length >= face_distance(k).
// When the cell changes (NPT), distances in the new cell H' = A H_ref are >= sigma_min(A) times
// those in the reference cell, so the bound follows the box without a full recomputation
// (it is recomputed when sigma_min drops below 0.9).
// The answer always equals SiteLocator::locate(x) exactly (same tie rule, same distances).
#include "ionmsm/geometry.hpp"

namespace ionmsm {

class SiteAssigner {
 public:
  /// Keeps a pointer to the locator: call refresh() after every locator.set_box().
  explicit SiteAssigner(const SiteLocator& locator);

  /// Updates the safe radius for the locator's current cell.
  void refresh();

  /// Nearest site image to the unwrapped position x. `previous` is the atom's last assignment
  /// (site < 0: none): if x is within the safe radius of that site image, it is returned
  /// without a search.
  SiteImage assign(const Eigen::Vector3d& x, const SiteImage& previous) const;

  /// Half the guaranteed minimum separation of distinct site images in the current cell.
  double safe_radius() const { return safe_radius_; }
  /// Number of assign() calls answered by the fast path / by a full search (for benchmarks).
  std::uint64_t fast_hits() const { return fast_hits_; }
  std::uint64_t searches() const { return searches_; }

 private:
  void recompute_reference();
  const SiteLocator* locator_;
  Eigen::Matrix3d h_ref_inverse_ = Eigen::Matrix3d::Identity();
  double d_min_ref_ = 0.0;
  double safe_radius_ = 0.0;
  double safe_radius2_ = 0.0;
  mutable std::uint64_t fast_hits_ = 0;
  mutable std::uint64_t searches_ = 0;
};

}  // namespace ionmsm
