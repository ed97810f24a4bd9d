#include "ionmsm/site_assigner.hpp"

#include <algorithm>
#include <cmath>

namespace ionmsm {

SiteAssigner::SiteAssigner(const SiteLocator& locator) : locator_(&locator) {
  recompute_reference();
}

void SiteAssigner::recompute_reference() {
  const Box& box = locator_->box();
  double d = std::min({box.face_distance(0), box.face_distance(1), box.face_distance(2)});
  if (locator_->size() > 1) d = std::min(d, locator_->min_site_separation());
  d_min_ref_ = d;
  h_ref_inverse_ = box.h_inverse();
  safe_radius_ = 0.5 * d_min_ref_;
  // a relative margin keeps the strict inequality safe against rounding in the distances
  safe_radius2_ = safe_radius_ * safe_radius_ * (1.0 - 1e-9);
}

void SiteAssigner::refresh() {
  const Eigen::Matrix3d a = locator_->box().h() * h_ref_inverse_;
  if ((a - Eigen::Matrix3d::Identity()).cwiseAbs().maxCoeff() == 0.0) return;
  // smallest singular value of A = sqrt of the smallest eigenvalue of A^T A
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(a.transpose() * a, Eigen::EigenvaluesOnly);
  const double sigma_min = std::sqrt(std::max(0.0, es.eigenvalues()(0)));
  if (!(sigma_min >= 0.9)) {
    recompute_reference();
    return;
  }
  safe_radius_ = 0.5 * sigma_min * d_min_ref_;
  safe_radius2_ = safe_radius_ * safe_radius_ * (1.0 - 1e-9);
}

SiteImage SiteAssigner::assign(const Eigen::Vector3d& x, const SiteImage& previous) const {
  if (previous.site >= 0 && static_cast<std::size_t>(previous.site) < locator_->size()) {
    const double d2 =
        image_distance2(locator_->box(), locator_->fractional(previous.site), previous.image, x);
    if (d2 < safe_radius2_) {
      ++fast_hits_;
      SiteImage out = previous;
      out.distance2 = d2;
      return out;
    }
  }
  ++searches_;
  return locator_->locate(x);
}

}  // namespace ionmsm
