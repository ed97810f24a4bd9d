#include "ionmsm/site_assigner.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace ionmsm {

namespace {

std::int64_t floor_div(std::int64_t a, std::int64_t b) {  // b > 0
  const std::int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

/// The sites binned in (wrapped) fractional space, nbin[k] bins along axis k, members listed
/// by bin (CSR: members[start[b] .. start[b + 1])). A displacement of length <= rn changes f_k
/// by at most rn / face_k, i.e. by at most reach[k] bins.
struct SiteBins {
  int nbin[3], reach[3];
  std::vector<int> bin_of, start, members;
};

SiteBins bin_sites(const SiteLocator& locator, const double face[3], double rn) {
  SiteBins bins;
  const std::size_t n = locator.size();
  for (int k = 0; k < 3; ++k) {
    bins.nbin[k] = static_cast<int>(std::clamp(std::floor(face[k] / rn), 1.0, 64.0));
    bins.reach[k] = static_cast<int>(std::ceil(rn * bins.nbin[k] / face[k]));
  }
  const int* nbin = bins.nbin;
  const std::size_t nbins = static_cast<std::size_t>(nbin[0]) * nbin[1] * nbin[2];
  bins.bin_of.resize(n);
  bins.start.assign(nbins + 1, 0);
  bins.members.resize(n);
  for (std::size_t s = 0; s < n; ++s) {
    const Eigen::Vector3d& f = locator.fractional(static_cast<SiteIndex>(s));
    int b[3];
    for (int k = 0; k < 3; ++k) b[k] = std::min(nbin[k] - 1, static_cast<int>(f[k] * nbin[k]));
    bins.bin_of[s] = (b[0] * nbin[1] + b[1]) * nbin[2] + b[2];
    ++bins.start[static_cast<std::size_t>(bins.bin_of[s]) + 1];
  }
  for (std::size_t b = 0; b < nbins; ++b) bins.start[b + 1] += bins.start[b];
  std::vector<int> fill(bins.start.begin(), bins.start.end() - 1);
  for (std::size_t s = 0; s < n; ++s)
    bins.members[static_cast<std::size_t>(fill[static_cast<std::size_t>(bins.bin_of[s])]++)] =
        static_cast<int>(s);
  return bins;
}

/// A neighbour candidate: site image `site` + `image` at distance `dist`.
struct Cand {
  double dist;
  SiteIndex site;
  std::int8_t image[3];
};

/// Every site image t + m (m a lattice shift) with |H (f_t + m) - H f_s|^2 <= rn2, except s
/// itself, from the bins within reach of s's bin. cart: H f of every site.
void gather_candidates(const SiteBins& bins, const std::vector<Eigen::Vector3d>& cart,
                       const Eigen::Matrix3d& h, std::size_t s, double rn2,
                       std::vector<Cand>& cand) {
  cand.clear();
  const int* nbin = bins.nbin;
  const int* reach = bins.reach;
  const Eigen::Vector3d& ps = cart[s];
  const int b0 = bins.bin_of[s] / (nbin[1] * nbin[2]);
  const int b1 = (bins.bin_of[s] / nbin[2]) % nbin[1];
  const int b2 = bins.bin_of[s] % nbin[2];
  for (int d0 = -reach[0]; d0 <= reach[0]; ++d0)
    for (int d1 = -reach[1]; d1 <= reach[1]; ++d1)
      for (int d2 = -reach[2]; d2 <= reach[2]; ++d2) {
        const std::int64_t B[3] = {b0 + d0, b1 + d1, b2 + d2};
        std::int64_t m[3], w[3];
        for (int k = 0; k < 3; ++k) {
          m[k] = floor_div(B[k], nbin[k]);
          w[k] = B[k] - m[k] * nbin[k];
        }
        const Eigen::Vector3d shift =
            h * Eigen::Vector3d(static_cast<double>(m[0]), static_cast<double>(m[1]),
                                static_cast<double>(m[2])) - ps;
        const std::size_t bin = static_cast<std::size_t>((w[0] * nbin[1] + w[1]) * nbin[2] + w[2]);
        for (int i = bins.start[bin]; i < bins.start[bin + 1]; ++i) {
          const int t = bins.members[static_cast<std::size_t>(i)];
          const Eigen::Vector3d dv = cart[static_cast<std::size_t>(t)] + shift;
          const double dist2 = dv.squaredNorm();
          if (!(dist2 <= rn2)) continue;
          if (t == static_cast<int>(s) && m[0] == 0 && m[1] == 0 && m[2] == 0) continue;
          cand.push_back({std::sqrt(dist2), static_cast<SiteIndex>(t),
                          {static_cast<std::int8_t>(m[0]), static_cast<std::int8_t>(m[1]),
                           static_cast<std::int8_t>(m[2])}});
        }
      }
}

/// Sorts the candidates by (distance, site, image) and keeps at most max_kept of them: every
/// one strictly closer than the first dropped one. Returns the radius the list is complete to.
double sort_and_cap(std::vector<Cand>& cand, double rn, int max_kept) {
  std::sort(cand.begin(), cand.end(), [](const Cand& a, const Cand& b) {
    if (a.dist != b.dist) return a.dist < b.dist;
    if (a.site != b.site) return a.site < b.site;
    return std::lexicographical_compare(a.image, a.image + 3, b.image, b.image + 3);
  });
  if (cand.size() <= static_cast<std::size_t>(max_kept)) return rn;
  const double rs = cand[static_cast<std::size_t>(max_kept)].dist * (1.0 - 1e-9);
  std::size_t keep = static_cast<std::size_t>(max_kept);
  while (keep > 0 && cand[keep - 1].dist > rs) --keep;
  cand.resize(keep);
  return rs;
}

}  // namespace

SiteAssigner::SiteAssigner(const SiteLocator& locator) : locator_(&locator) {
  recompute_reference();
}

void SiteAssigner::recompute_reference() {
  const Box& box = locator_->box();
  double d = std::min({box.face_distance(0), box.face_distance(1), box.face_distance(2)});
  if (locator_->size() > 1) d = std::min(d, locator_->min_site_separation());
  d_min_ref_ = d;
  h_ref_inverse_ = box.h_inverse();
  sigma_ = 1.0;
  safe_radius_ = 0.5 * d_min_ref_;
  // a relative margin keeps the strict inequality safe against rounding in the distances
  safe_radius2_ = safe_radius_ * safe_radius_ * (1.0 - 1e-9);
  build_neighbours();
}

void SiteAssigner::build_neighbours() {
  const Box& box = locator_->box();
  const std::size_t n = locator_->size();
  const double face[3] = {box.face_distance(0), box.face_distance(1), box.face_distance(2)};
  const double fmin = std::min({face[0], face[1], face[2]});
  // about kTargetNeighbours site images per sphere, at least 2 d_min, images within int8
  const double density = static_cast<double>(n) / box.volume();
  double rn = std::cbrt(3.0 * kTargetNeighbours / (4.0 * 3.14159265358979323846 * density));
  rn = std::min(std::max(rn, 2.0 * d_min_ref_), 100.0 * fmin);
  rn_ref_ = rn;
  qscale_ = 255.0 / rn;
  rn_.assign(n, 0.0);
  nb_start_.assign(n + 1, 0);
  nb_.clear();
  const SiteBins bins = bin_sites(*locator_, face, rn);
  const Eigen::Matrix3d& h = box.h();
  std::vector<Eigen::Vector3d> cart(n);  // H f (origin omitted: only differences matter)
  for (std::size_t s = 0; s < n; ++s) cart[s] = h * locator_->fractional(static_cast<SiteIndex>(s));
  std::vector<Cand> cand;
  for (std::size_t s = 0; s < n; ++s) {
    gather_candidates(bins, cart, h, s, rn * rn, cand);
    rn_[s] = sort_and_cap(cand, rn, kMaxNeighbours);
    for (const Cand& c : cand) {
      Neighbour e;
      e.site = c.site;
      for (int k = 0; k < 3; ++k) e.image[k] = c.image[k];
      // rounded down, so that "stored > cutoff" implies "distance > cutoff"
      e.dist = static_cast<std::uint8_t>(
          std::clamp(std::floor(c.dist * qscale_ * (1.0 - 1e-9)), 0.0, 255.0));
      nb_.push_back(e);
    }
    nb_start_[s + 1] = static_cast<std::int64_t>(nb_.size());
  }
  double rmax = 0.0;
  for (double r : rn_) rmax = std::max(rmax, r);
  nb_quick2_ = 0.25 * sigma_ * sigma_ * rmax * rmax;
  tol_scale_ = box.origin().cwiseAbs().sum() + box.h().cwiseAbs().sum();
}

void SiteAssigner::refresh() {
  const Eigen::Matrix3d a = locator_->box().h() * h_ref_inverse_;
  if ((a - Eigen::Matrix3d::Identity()).cwiseAbs().maxCoeff() == 0.0) {
    if (sigma_ != 1.0) {  // back to the reference cell
      sigma_ = 1.0;
      safe_radius_ = 0.5 * d_min_ref_;
      safe_radius2_ = safe_radius_ * safe_radius_ * (1.0 - 1e-9);
      double rmax = 0.0;
      for (double r : rn_) rmax = std::max(rmax, r);
      nb_quick2_ = 0.25 * rmax * rmax;
    }
    tol_scale_ = locator_->box().origin().cwiseAbs().sum() + locator_->box().h().cwiseAbs().sum();
    return;
  }
  // smallest singular value of A = sqrt of the smallest eigenvalue of A^T A
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(a.transpose() * a, Eigen::EigenvaluesOnly);
  const double sigma_min = std::sqrt(std::max(0.0, es.eigenvalues()(0)));
  if (!(sigma_min >= 0.9)) {
    recompute_reference();
    return;
  }
  // a tiny relative margin against the rounding of the eigenvalue
  sigma_ = sigma_min * (1.0 - 1e-12);
  safe_radius_ = 0.5 * sigma_min * d_min_ref_;
  safe_radius2_ = safe_radius_ * safe_radius_ * (1.0 - 1e-9);
  double rmax = 0.0;
  for (double r : rn_) rmax = std::max(rmax, r);
  nb_quick2_ = 0.25 * sigma_ * sigma_ * rmax * rmax;
  tol_scale_ = locator_->box().origin().cwiseAbs().sum() + locator_->box().h().cwiseAbs().sum();
}

SiteImage SiteAssigner::assign(const Eigen::Vector3d& x, const SiteImage& previous) const {
  if (previous.site >= 0 && static_cast<std::size_t>(previous.site) < locator_->size()) {
    const Box& box = locator_->box();
    const double d2 =
        image_distance2(box, locator_->fractional(previous.site), previous.image, x);
    if (d2 < safe_radius2_) {
      ++fast_hits_;
      SiteImage out = previous;
      out.distance2 = d2;
      return out;
    }
    if (d2 < nb_quick2_) {
      // Every site image at least as close as p lies within 2 r of p (current cell), i.e.
      // within 2 r / sigma of p in the reference cell. Margins: relative 1e-6 and an absolute
      // one far above the rounding of image_distance2 for these coordinates.
      const std::size_t s = static_cast<std::size_t>(previous.site);
      const double r = std::sqrt(d2);
      const double n1 = std::abs(static_cast<double>(previous.image[0])) +
                         std::abs(static_cast<double>(previous.image[1])) +
                         std::abs(static_cast<double>(previous.image[2]));
      const double tol =
          1e-9 * (std::abs(x[0]) + std::abs(x[1]) + std::abs(x[2]) + tol_scale_ * (n1 + 3.0));
      const double cut = (2.0 * r * (1.0 + 1e-6) + tol) / sigma_;
      const std::int64_t lim = std::numeric_limits<std::int32_t>::max() - 128;
      if (cut <= rn_[s] * (1.0 - 1e-9) && std::abs(static_cast<std::int64_t>(previous.image[0])) < lim &&
          std::abs(static_cast<std::int64_t>(previous.image[1])) < lim &&
          std::abs(static_cast<std::int64_t>(previous.image[2])) < lim) {
        // Distances first (no data-dependent branch but the end of the prefix), then the
        // winner among the candidates at the smallest distance, by the tie rule.
        const Neighbour* const first = nb_.data() + nb_start_[s];
        const Neighbour* const end = nb_.data() + nb_start_[s + 1];
        double dist2[kMaxNeighbours];
        double dmin = d2;
        int cnt = 0;
        // stored dist q: q rn / 255 <= distance; q > cut 255 / rn => distance > cut
        const double qcut = cut * qscale_ * (1.0 + 1e-12);
        for (const Neighbour* e = first; e != end && static_cast<double>(e->dist) <= qcut; ++e) {
          const Image img{previous.image[0] + e->image[0], previous.image[1] + e->image[1],
                          previous.image[2] + e->image[2]};
          dist2[cnt] = image_distance2(box, locator_->fractional(e->site), img, x);
          dmin = std::min(dmin, dist2[cnt]);
          ++cnt;
        }
        SiteImage best = previous;
        best.distance2 = d2;
        for (int i = 0; i < cnt; ++i) {
          if (!(dist2[i] == dmin)) continue;
          const Neighbour& e = first[i];
          SiteImage c;
          c.site = e.site;
          c.image = {previous.image[0] + e.image[0], previous.image[1] + e.image[1],
                     previous.image[2] + e.image[2]};
          c.distance2 = dist2[i];
          if (better_than(c, best)) best = c;
        }
        neighbour_candidates_ += static_cast<std::uint64_t>(cnt);
        ++neighbour_hits_;
        return best;
      }
    }
  }
  ++searches_;
  return locator_->locate(x);
}

}  // namespace ionmsm
