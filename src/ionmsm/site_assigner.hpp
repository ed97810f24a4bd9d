#pragma once
// Fast exact site assignment for atoms that stay near their previous site (docs/theory.md).
//
// Fast path. If an atom is closer to the image of its previous site than half the shortest
// distance between any two distinct site images (other sites, and other periodic images of the
// same site), that image is provably the unique nearest one:
//   |x - q| >= |p - q| - |x - p| >= d_min - |x - p| > |x - p|   for every other site image q.
// d_min >= min(min_site_separation, smallest face distance), because any nonzero lattice
// translation H n has a component n_k != 0 and so a length >= face_distance(k).
//
// Neighbour path. Otherwise, with r = |x - p| for the previous site image p, every site image q
// at least as close to x as p satisfies |q - p| <= |q - x| + |x - p| <= 2 r; any q with
// |q - p| > 2 r is strictly farther than p (|x - q| >= |q - p| - r > r). So the nearest site
// image (and every image tying with it) is among p and the site images within 2 r of p. For
// each site s a list of its neighbour site images (t, m) -- site t at image m relative to s at
// image 0 -- within a radius rn_s of the reference cell is precomputed, sorted by distance;
// if 2 r (plus a rounding margin) is within the list, the list prefix up to 2 r is scanned
// with the same distance formula and tie rule as SiteLocator::locate. rn is chosen for about
// kTargetNeighbours neighbours per site (from the site density), at least 2 d_min, and each
// list is truncated at kMaxNeighbours entries (rn_s then stops below the first dropped one).
// Memory: 8 bytes per entry (32 entries per site on a simple cubic lattice: 256 B per site).
// Otherwise SiteLocator::locate runs (full grid search).
//
// Box changes. When the cell changes (NPT), distances in the new cell H' = A H_ref are >=
// sigma_min(A) times those in the reference cell, so both bounds follow the box without a
// recomputation (the safe radius scales by sigma_min; the neighbour lists cover 2 r when
// 2 r / sigma_min <= rn_s). Both are recomputed for the current cell when sigma_min drops
// below 0.9.
// The answer always equals SiteLocator::locate(x) exactly (same tie rule, same distances).
#include <cstdint>
#include <vector>

#include "ionmsm/geometry.hpp"

namespace ionmsm {

class SiteAssigner {
 public:
  /// Average number of neighbour site images stored per site, and the cap per site.
  static constexpr int kTargetNeighbours = 40;
  static constexpr int kMaxNeighbours = 64;

  /// Keeps a pointer to the locator: call refresh() after every locator.set_box().
  explicit SiteAssigner(const SiteLocator& locator);

  /// Updates the bounds for the locator's current cell.
  void refresh();

  /// Nearest site image to the unwrapped position x. `previous` is the atom's last assignment
  /// (site < 0: none): if x is within the safe radius of that site image, it is returned
  /// without a search; if it is within half the neighbour radius, only the previous site's
  /// neighbour list is searched.
  SiteImage assign(const Eigen::Vector3d& x, const SiteImage& previous) const;

  /// The fast path alone, for callers that keep an atom's previous site image as its shifted
  /// fractional coordinates g = f_site + image (shifted_fractional()): true if x is within the
  /// safe radius of that image, which is then the nearest site image to x (what assign()
  /// returns). Not counted in fast_hits().
  bool stays(const Eigen::Vector3d& x, const Eigen::Vector3d& g) const {
    return shifted_distance2(locator_->box(), g, x) < safe_radius2_;
  }
  /// f_site + image for a site image (site in range).
  Eigen::Vector3d shifted_fractional(const SiteImage& s) const {
    return ionmsm::shifted_fractional(locator_->fractional(s.site), s.image);
  }

  /// Half the guaranteed minimum separation of distinct site images in the current cell.
  double safe_radius() const { return safe_radius_; }
  /// Neighbour-list radius of the reference cell (before the per-site truncation).
  double neighbour_radius() const { return rn_ref_; }
  /// Number of stored neighbour entries (all sites).
  std::size_t neighbour_entries() const { return nb_.size(); }
  /// Number of assign() calls answered by the fast path / by the neighbour list / by a full
  /// search (for benchmarks and tests).
  std::uint64_t fast_hits() const { return fast_hits_; }
  std::uint64_t neighbour_hits() const { return neighbour_hits_; }
  std::uint64_t searches() const { return searches_; }
  /// Number of neighbour entries whose distance to x was computed (all neighbour-path calls).
  std::uint64_t neighbour_candidates() const { return neighbour_candidates_; }

 private:
  struct Neighbour {  // 8 bytes
    SiteIndex site;
    std::int8_t image[3];  // relative to the image of the list's site
    std::uint8_t dist;     // floor(reference-cell distance * 255 / rn): a lower bound
  };
  void recompute_reference();
  void build_neighbours();
  const SiteLocator* locator_;
  Eigen::Matrix3d h_ref_inverse_ = Eigen::Matrix3d::Identity();
  double d_min_ref_ = 0.0;
  double safe_radius_ = 0.0;
  double safe_radius2_ = 0.0;
  double sigma_ = 1.0;          // sigma_min(A) of the current cell relative to the reference
  double rn_ref_ = 0.0;         // neighbour radius of the reference cell
  double qscale_ = 0.0;         // 255 / rn_ref_
  double nb_quick2_ = 0.0;      // (sigma max_s rn_s / 2)^2: beyond it no list can be used
  double tol_scale_ = 0.0;      // |o|_1 + |H|_1 of the current cell (rounding margin)
  std::vector<double> rn_;      // per site: the list holds every neighbour within rn_[s]
  std::vector<std::int64_t> nb_start_;  // CSR over sites
  std::vector<Neighbour> nb_;
  mutable std::uint64_t fast_hits_ = 0;
  mutable std::uint64_t neighbour_hits_ = 0;
  mutable std::uint64_t searches_ = 0;
  mutable std::uint64_t neighbour_candidates_ = 0;
};

}  // namespace ionmsm
