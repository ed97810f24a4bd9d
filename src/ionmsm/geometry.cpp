// Periodic cells and the exact nearest-site search (see geometry.hpp for the conventions).
#include "ionmsm/geometry.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

namespace ionmsm {

namespace {

// Images are int32; we refuse positions whose cell index gets anywhere near that range.
constexpr double kMaxCell = 1.0e9;

std::string vec_str(const Eigen::Vector3d& v) {
  std::ostringstream os;
  os.precision(17);
  os << "(" << v[0] << ", " << v[1] << ", " << v[2] << ")";
  return os.str();
}

// Wraps a fractional coordinate into [0,1). f - floor(f) can round to exactly 1 for tiny
// negative f; that case is mapped to 0.
double wrap_unit(double f) {
  double w = f - std::floor(f);
  if (w >= 1.0) w = 0.0;
  if (w < 0.0) w = 0.0;
  return w;
}

Eigen::Vector3d wrap_frac(const Eigen::Vector3d& f) {
  return Eigen::Vector3d(wrap_unit(f[0]), wrap_unit(f[1]), wrap_unit(f[2]));
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {  // b > 0
  std::int64_t q = a / b;
  if ((a % b) != 0 && a < 0) --q;
  return q;
}

std::vector<Eigen::Vector3d> checked_wrapped_sites(const std::vector<Eigen::Vector3d>& sites,
                                                   const char* who) {
  if (sites.empty()) throw std::invalid_argument(std::string(who) + ": the site list is empty");
  if (sites.size() > static_cast<std::size_t>(std::numeric_limits<SiteIndex>::max())) {
    throw std::invalid_argument(std::string(who) + ": too many sites (" +
                                std::to_string(sites.size()) + ")");
  }
  std::vector<Eigen::Vector3d> out;
  out.reserve(sites.size());
  for (std::size_t i = 0; i < sites.size(); ++i) {
    if (!sites[i].allFinite()) {
      throw std::invalid_argument(std::string(who) + ": site " + std::to_string(i) +
                                  " has a non-finite fractional coordinate " + vec_str(sites[i]));
    }
    out.push_back(wrap_frac(sites[i]));
  }
  return out;
}

}  // namespace

// ------------------------------------------------------------------------------------------ Box

Box::Box(const Eigen::Vector3d& origin, const Eigen::Matrix3d& h) {
  if (!origin.allFinite()) {
    throw std::invalid_argument("Box: non-finite origin " + vec_str(origin));
  }
  if (!h.allFinite()) throw std::invalid_argument("Box: the cell matrix has a non-finite entry");
  const double det = h.determinant();
  const double scale = h.col(0).norm() * h.col(1).norm() * h.col(2).norm();
  if (!std::isfinite(det) || det == 0.0 || !(std::abs(det) > 1e-12 * scale)) {
    std::ostringstream os;
    os.precision(17);
    os << "Box: the cell matrix is singular (determinant " << det
       << "; cell vectors a = " << vec_str(h.col(0)) << ", b = " << vec_str(h.col(1))
       << ", c = " << vec_str(h.col(2)) << ")";
    throw std::invalid_argument(os.str());
  }
  origin_ = origin;
  h_ = h;
  h_inv_ = h.inverse();
  if (!h_inv_.allFinite()) throw std::invalid_argument("Box: the cell matrix cannot be inverted");
}

Box Box::from_lammps(const double lo[3], const double hi[3], double xy, double xz, double yz) {
  for (int k = 0; k < 3; ++k) {
    if (!std::isfinite(lo[k]) || !std::isfinite(hi[k])) {
      throw std::invalid_argument("Box::from_lammps: non-finite box bound");
    }
    if (!(hi[k] > lo[k])) {
      throw std::invalid_argument("Box::from_lammps: boxhi must exceed boxlo in dimension " +
                                  std::to_string(k));
    }
  }
  if (!std::isfinite(xy) || !std::isfinite(xz) || !std::isfinite(yz)) {
    throw std::invalid_argument("Box::from_lammps: non-finite tilt factor");
  }
  Eigen::Matrix3d h;
  h << hi[0] - lo[0], xy, xz,  //
      0.0, hi[1] - lo[1], yz,  //
      0.0, 0.0, hi[2] - lo[2];
  return Box(Eigen::Vector3d(lo[0], lo[1], lo[2]), h);
}

double Box::face_distance(int k) const {
  if (k < 0 || k > 2) {
    throw std::invalid_argument("Box::face_distance: axis must be 0, 1 or 2, got " +
                                std::to_string(k));
  }
  return 1.0 / h_inv_.row(k).norm();
}

bool Box::is_orthogonal() const {
  const Eigen::Vector3d a = h_.col(0), b = h_.col(1), c = h_.col(2);
  const double tol = 1e-12;
  return std::abs(a.dot(b)) <= tol * a.norm() * b.norm() &&
         std::abs(a.dot(c)) <= tol * a.norm() * c.norm() &&
         std::abs(b.dot(c)) <= tol * b.norm() * c.norm();
}

// ---------------------------------------------------------------------------------- SiteLocator

SiteLocator::SiteLocator(const std::vector<Eigen::Vector3d>& sites_fractional, const Box& box)
    : box_(box), frac_(checked_wrapped_sites(sites_fractional, "SiteLocator")) {
  for (int k = 0; k < 3; ++k) face_[static_cast<std::size_t>(k)] = box_.face_distance(k);
  nbins_ = choose_bins();
  build_grid();
}

std::array<int, 3> SiteLocator::choose_bins() const {
  // Bins are slabs of the cell: along fractional axis k there are n_k bins of perpendicular
  // width face_k / n_k. Aim at ~2 sites per bin with roughly equal perpendicular widths.
  std::array<int, 3> n{1, 1, 1};
  const double target_bins = static_cast<double>(frac_.size()) / 2.0;
  if (target_bins <= 1.0) return n;
  const double prod_face = face_[0] * face_[1] * face_[2];
  const double t = std::cbrt(target_bins / prod_face);  // bins per unit length
  for (std::size_t k = 0; k < 3; ++k) {
    const double want = std::round(face_[k] * t);
    n[k] = static_cast<int>(std::clamp(want, 1.0, 1024.0));
  }
  // Never more bins than sites (thin axes clamped to 1 can push the others up via rounding).
  while (static_cast<double>(n[0]) * n[1] * n[2] > static_cast<double>(frac_.size())) {
    std::size_t kmax = 0;
    for (std::size_t k = 1; k < 3; ++k)
      if (n[k] > n[kmax]) kmax = k;
    if (n[kmax] == 1) break;
    --n[kmax];
  }
  return n;
}

void SiteLocator::build_grid() {
  const int n0 = nbins_[0], n1 = nbins_[1], n2 = nbins_[2];
  const std::size_t nb = static_cast<std::size_t>(n0) * n1 * n2;
  std::vector<int> bin_of(frac_.size());
  bin_start_.assign(nb + 1, 0);
  for (std::size_t s = 0; s < frac_.size(); ++s) {
    int b[3];
    for (int k = 0; k < 3; ++k) {
      const int nk = nbins_[static_cast<std::size_t>(k)];
      b[k] = std::min(nk - 1, static_cast<int>(frac_[s][k] * nk));
    }
    bin_of[s] = (b[0] * n1 + b[1]) * n2 + b[2];
    ++bin_start_[static_cast<std::size_t>(bin_of[s]) + 1];
  }
  for (std::size_t i = 0; i < nb; ++i) bin_start_[i + 1] += bin_start_[i];
  bin_sites_.assign(frac_.size(), 0);
  std::vector<int> fill(bin_start_.begin(), bin_start_.end() - 1);
  // Ascending site order inside each bin (not needed for correctness; nicer for caches).
  for (std::size_t s = 0; s < frac_.size(); ++s) {
    bin_sites_[static_cast<std::size_t>(fill[static_cast<std::size_t>(bin_of[s])]++)] =
        static_cast<SiteIndex>(s);
  }
}

void SiteLocator::set_box(const Box& box) {
  const bool same_cell = (box.h() == box_.h());
  box_ = box;
  if (same_cell) return;
  for (int k = 0; k < 3; ++k) face_[static_cast<std::size_t>(k)] = box_.face_distance(k);
  if (frac_.empty()) return;
  const std::array<int, 3> n = choose_bins();
  if (n != nbins_) {
    nbins_ = n;
    build_grid();
  }
  // With unchanged bin counts the grid (in fractional space) is still valid.
}

SiteImage SiteLocator::locate(const Eigen::Vector3d& x_unwrapped) const {
  return search(x_unwrapped, -1);
}

namespace {

/// Where a point with fractional coordinates f falls: its cell (the periodic image of the box
/// holding it), its position r in [0, 1)^3 inside that cell, and its bin q there.
struct GridPoint {
  std::int64_t cell[3];
  double r[3];
  int q[3];
};

GridPoint grid_point(const Eigen::Vector3d& f, const Eigen::Vector3d& x,
                     const std::array<int, 3>& nbins) {
  GridPoint p;
  for (int k = 0; k < 3; ++k) {
    double c = std::floor(f[k]);
    if (!(std::abs(c) < kMaxCell)) {
      throw std::invalid_argument("SiteLocator::locate: position " + vec_str(x) +
                                  " is too many cells away from the box");
    }
    double rk = f[k] - c;
    if (rk >= 1.0) {
      rk = 0.0;
      c += 1.0;
    }
    if (rk < 0.0) rk = 0.0;
    p.cell[k] = static_cast<std::int64_t>(c);
    p.r[k] = rk;
    const int nk = nbins[static_cast<std::size_t>(k)];
    p.q[k] = std::min(nk - 1, static_cast<int>(rk * nk));
  }
  return p;
}

/// The face of the searched block of bins (q + d, -lo[k] <= d[k] <= hi[k]) closest to the
/// point: its distance `gap` (through face spacings), axis and side.
struct NearestFace {
  double gap = std::numeric_limits<double>::infinity();
  int axis = 0;
  bool upper = true;
};

NearestFace nearest_face(const GridPoint& p, const int lo[3], const int hi[3],
                         const std::array<int, 3>& nbins, const std::array<double, 3>& face) {
  NearestFace out;
  for (int k = 0; k < 3; ++k) {
    const double fk = face[static_cast<std::size_t>(k)];
    const int nk = nbins[static_cast<std::size_t>(k)];
    const double g_hi = (static_cast<double>(p.q[k] + hi[k] + 1) / nk - p.r[k]) * fk;
    const double g_lo = (p.r[k] - static_cast<double>(p.q[k] - lo[k]) / nk) * fk;
    if (g_hi < out.gap) {
      out.gap = g_hi;
      out.axis = k;
      out.upper = true;
    }
    if (g_lo < out.gap) {
      out.gap = g_lo;
      out.axis = k;
      out.upper = false;
    }
  }
  return out;
}

}  // namespace

SiteImage SiteLocator::search(const Eigen::Vector3d& x, SiteIndex exclude) const {
  if (frac_.empty()) throw std::invalid_argument("SiteLocator::locate: the locator has no sites");
  if (!x.allFinite()) {
    throw std::invalid_argument("SiteLocator::locate: non-finite position " + vec_str(x));
  }
  const Eigen::Vector3d f = box_.to_fractional(x);
  const GridPoint p = grid_point(f, x, nbins_);
  // Safety margin for the lower bound: image_distance2 and the gaps are computed in floating
  // point; shrink the bound by far more than any rounding so that candidates that tie (or
  // nearly tie) with the best one are always examined.
  const double hnorm = box_.h().norm();
  const double abs_tol =
      1e-12 * (x.norm() + box_.origin().norm() + hnorm * (f.cwiseAbs().maxCoeff() + 2.0));
  SiteImage best;
  best.site = -1;
  best.distance2 = std::numeric_limits<double>::infinity();
  const int n1 = nbins_[1], n2 = nbins_[2];
  auto scan_bin = [&](int d0, int d1, int d2) {
    const std::int64_t B[3] = {p.q[0] + d0, p.q[1] + d1, p.q[2] + d2};
    Image img;
    int b[3];
    for (int k = 0; k < 3; ++k) {
      const std::int64_t nk = nbins_[static_cast<std::size_t>(k)];
      const std::int64_t m = floor_div(B[k], nk);
      b[k] = static_cast<int>(B[k] - m * nk);
      img[static_cast<std::size_t>(k)] = static_cast<std::int32_t>(p.cell[k] + m);
    }
    const std::size_t bin = static_cast<std::size_t>((b[0] * n1 + b[1]) * n2 + b[2]);
    for (int i = bin_start_[bin]; i < bin_start_[bin + 1]; ++i) {
      const SiteIndex s = bin_sites_[static_cast<std::size_t>(i)];
      if (s == exclude) continue;
      SiteImage cand;
      cand.site = s;
      cand.image = img;
      cand.distance2 = image_distance2(box_, frac_[static_cast<std::size_t>(s)], img, x);
      if (better_than(cand, best)) best = cand;
    }
  };
  // The searched region is the block of bins q + d with -lo[k] <= d[k] <= hi[k]. It grows one
  // layer at a time on the side whose face is closest to x, until no point outside the block
  // can be as close as the best candidate.
  int lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
  scan_bin(0, 0, 0);
  for (;;) {
    const NearestFace g = nearest_face(p, lo, hi, nbins_, face_);
    const double bound = g.gap * (1.0 - 1e-9) - abs_tol;
    if (best.site >= 0 && bound > 0.0 && best.distance2 < bound * bound) break;
    // Grow the block by one layer on (axis, side) and scan the new layer.
    int dlo[3] = {-lo[0], -lo[1], -lo[2]}, dhi[3] = {hi[0], hi[1], hi[2]};
    const int layer = g.upper ? ++hi[g.axis] : -(++lo[g.axis]);
    dlo[g.axis] = dhi[g.axis] = layer;
    for (int d0 = dlo[0]; d0 <= dhi[0]; ++d0)
      for (int d1 = dlo[1]; d1 <= dhi[1]; ++d1)
        for (int d2 = dlo[2]; d2 <= dhi[2]; ++d2) scan_bin(d0, d1, d2);
  }
  return best;
}

double SiteLocator::min_site_separation() const {
  if (frac_.size() < 2) return 0.0;
  double best2 = std::numeric_limits<double>::infinity();
  for (std::size_t s = 0; s < frac_.size(); ++s) {
    const SiteIndex si = static_cast<SiteIndex>(s);
    const SiteImage other = search(cartesian(si), si);
    best2 = std::min(best2, other.distance2);
  }
  return std::sqrt(best2);
}

// ------------------------------------------------------------------ single-site nearest image

SiteImage SiteLocator::nearest_image(SiteIndex site, const Eigen::Vector3d& x) const {
  if (site < 0 || static_cast<std::size_t>(site) >= frac_.size()) {
    throw std::invalid_argument("SiteLocator::nearest_image: site index " + std::to_string(site) +
                                " out of range (" + std::to_string(frac_.size()) + " sites)");
  }
  if (!x.allFinite()) {
    throw std::invalid_argument("SiteLocator::nearest_image: non-finite position " + vec_str(x));
  }
  const Eigen::Vector3d& fs = fractional(site);
  const Eigen::Vector3d g = box_.to_fractional(x) - fs;
  Image n0;
  for (int k = 0; k < 3; ++k) {
    const double r = std::round(g[k]);
    if (!(std::abs(r) < kMaxCell)) {
      throw std::invalid_argument("SiteLocator::nearest_image: position " + vec_str(x) +
                                  " is too many cells away from the box");
    }
    n0[static_cast<std::size_t>(k)] = static_cast<std::int32_t>(r);
  }
  SiteImage best;
  best.site = site;
  best.image = n0;
  best.distance2 = image_distance2(box_, fs, n0, x);
  // Any image with |g_k - n_k| * face_k > d cannot beat a candidate at distance d.
  const double d = std::sqrt(best.distance2);
  std::int64_t lo[3], hi[3];
  for (int k = 0; k < 3; ++k) {
    lo[k] = static_cast<std::int64_t>(std::ceil(g[k] - d / face_[static_cast<std::size_t>(k)]));
    hi[k] = static_cast<std::int64_t>(std::floor(g[k] + d / face_[static_cast<std::size_t>(k)]));
  }
  for (std::int64_t i = lo[0]; i <= hi[0]; ++i)
    for (std::int64_t j = lo[1]; j <= hi[1]; ++j)
      for (std::int64_t k = lo[2]; k <= hi[2]; ++k) {
        SiteImage c;
        c.site = site;
        c.image = {static_cast<std::int32_t>(i), static_cast<std::int32_t>(j),
                   static_cast<std::int32_t>(k)};
        c.distance2 = image_distance2(box_, fs, c.image, x);
        if (better_than(c, best)) best = c;
      }
  return best;
}

double shortest_lattice_vector(const Box& box) {
  const Eigen::Matrix3d& h = box.h();
  double best = std::min({h.col(0).norm(), h.col(1).norm(), h.col(2).norm()});
  std::int64_t r[3];
  for (int k = 0; k < 3; ++k) r[k] = static_cast<std::int64_t>(std::floor(best / box.face_distance(k)));
  for (std::int64_t i = -r[0]; i <= r[0]; ++i)
    for (std::int64_t j = -r[1]; j <= r[1]; ++j)
      for (std::int64_t k = -r[2]; k <= r[2]; ++k) {
        if (i == 0 && j == 0 && k == 0) continue;
        const double len = (h * Eigen::Vector3d(static_cast<double>(i), static_cast<double>(j),
                                                static_cast<double>(k)))
                               .norm();
        best = std::min(best, len);
      }
  return best;
}

double max_core_radius(const SiteLocator& locator) {
  if (locator.size() < 2) return 0.5 * shortest_lattice_vector(locator.box());
  return 0.5 * locator.min_site_separation();
}

CoreAssignment assign_core(const SiteLocator& locator, double radius, SiteIndex& committed,
                           const Eigen::Vector3d& x) {
  if (!(radius > 0.0) || !std::isfinite(radius)) {
    throw std::invalid_argument("assign_core: the core radius must be finite and > 0, got " +
                                std::to_string(radius));
  }
  if (committed >= 0 && static_cast<std::size_t>(committed) >= locator.size()) {
    throw std::invalid_argument("assign_core: committed site " + std::to_string(committed) +
                                " out of range (" + std::to_string(locator.size()) + " sites)");
  }
  CoreAssignment out;
  const SiteImage nearest = locator.locate(x);
  if (nearest.distance2 <= radius * radius) {
    committed = nearest.site;
    out.where = nearest;
    out.in_core = true;
  } else if (committed < 0) {
    committed = nearest.site;
    out.where = nearest;
  } else {
    out.where = locator.nearest_image(committed, x);
  }
  return out;
}

// ---------------------------------------------------------------------------------- brute force

SiteImage locate_brute_force(const std::vector<Eigen::Vector3d>& sites_fractional, const Box& box,
                             const Eigen::Vector3d& x_unwrapped, int range) {
  if (range < 0) {
    throw std::invalid_argument("locate_brute_force: range must be >= 0, got " +
                                std::to_string(range));
  }
  const std::vector<Eigen::Vector3d> frac =
      checked_wrapped_sites(sites_fractional, "locate_brute_force");
  if (!x_unwrapped.allFinite()) {
    throw std::invalid_argument("locate_brute_force: non-finite position " + vec_str(x_unwrapped));
  }
  const Eigen::Vector3d f = box.to_fractional(x_unwrapped);
  std::int64_t c[3];
  for (int k = 0; k < 3; ++k) {
    const double fl = std::floor(f[k]);
    if (!(std::abs(fl) < kMaxCell)) {
      throw std::invalid_argument("locate_brute_force: position " + vec_str(x_unwrapped) +
                                  " is too many cells away from the box");
    }
    c[k] = static_cast<std::int64_t>(fl);
  }
  SiteImage best;
  best.site = -1;
  best.distance2 = std::numeric_limits<double>::infinity();
  for (std::size_t s = 0; s < frac.size(); ++s) {
    for (std::int64_t i = c[0] - range; i <= c[0] + range; ++i)
      for (std::int64_t j = c[1] - range; j <= c[1] + range; ++j)
        for (std::int64_t k = c[2] - range; k <= c[2] + range; ++k) {
          SiteImage cand;
          cand.site = static_cast<SiteIndex>(s);
          cand.image = Image{static_cast<std::int32_t>(i), static_cast<std::int32_t>(j),
                             static_cast<std::int32_t>(k)};
          cand.distance2 = image_distance2(box, frac[s], cand.image, x_unwrapped);
          if (better_than(cand, best)) best = cand;
        }
  }
  return best;
}

}  // namespace ionmsm
