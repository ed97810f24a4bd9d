// The effective transport cell from the MD site-projected moments: see effective_cell.hpp.
#include "ionmsm/effective_cell.hpp"

#include <Eigen/Eigenvalues>
#include <cmath>
#include <stdexcept>

namespace ionmsm {

namespace {

/// A^{power} of a symmetric positive definite A (power = 1/2 or -1/2).
Eigen::Matrix3d spd_power(const Eigen::Matrix3d& a, double power) {
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(a);
  const Eigen::Vector3d w = es.eigenvalues().array().pow(power);
  return es.eigenvectors() * w.asDiagonal() * es.eigenvectors().transpose();
}

/// <delta delta^T> of the counted transitions of `lc` in the cell `h`.
Eigen::Matrix3d second_moment(const CountsData& data, const LagCounts& lc,
                              const Eigen::Matrix3d& h) {
  Eigen::Matrix3d b = Eigen::Matrix3d::Zero();
  for (const TransitionCount& r : lc.rows) {
    const Eigen::Vector3d df = data.site_fractional[static_cast<std::size_t>(r.to)] -
                               data.site_fractional[static_cast<std::size_t>(r.from)] +
                               Eigen::Vector3d(r.shift[0], r.shift[1], r.shift[2]);
    const Eigen::Vector3d d = h * df;
    b += static_cast<double>(r.count) * d * d.transpose();
  }
  return b / static_cast<double>(lc.total());
}

}  // namespace

const char* cell_status_name(CellStatus status) {
  switch (status) {
    case CellStatus::Applied: return "applied";
    case CellStatus::Constant: return "constant";
    case CellStatus::NoMoments: return "no moments";
    case CellStatus::NotThreeDimensional: return "not three-dimensional";
  }
  return "unknown";
}

EffectiveCell effective_cell(const CountsData& data) {
  EffectiveCell c;
  c.box_h = data.box_h;
  if (!data.box_h.allFinite() || !(std::abs(data.box_h.determinant()) > 0.0))
    throw std::invalid_argument("effective_cell: the cell matrix is singular or not finite");
  if (!data.has_displacement) return c;
  const LagCounts* lc = nullptr;
  for (const auto& l : data.lags)
    if (l.total() > 0) {
      lc = &l;
      break;
    }
  if (!lc) return c;
  c.lag_steps = lc->lag_steps;
  const Eigen::Matrix3d b = second_moment(data, *lc, data.box_h);
  const Eigen::Matrix3d q = lc->displacement_sq_sum / static_cast<double>(lc->total());
  if (!q.allFinite() || q.trace() < 0.0)
    throw std::invalid_argument("effective_cell: the displacement moments are not finite");
  c.relative_mismatch = b.norm() > 0.0 ? (q - b).norm() / b.norm() : 0.0;
  c.status = CellStatus::Constant;
  if (c.relative_mismatch <= kConstantCellTolerance) return c;
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> eb(b), eq(q);
  const double bmax = eb.eigenvalues().maxCoeff();
  if (!(eb.eigenvalues().minCoeff() > 1e-10 * bmax) ||
      !(eq.eigenvalues().minCoeff() > 1e-10 * eq.eigenvalues().maxCoeff())) {
    c.status = CellStatus::NotThreeDimensional;
    return c;
  }
  const Eigen::Matrix3d bh = spd_power(b, 0.5), bmh = spd_power(b, -0.5);
  const Eigen::Matrix3d x = spd_power(Eigen::Matrix3d(bh * q * bh), 0.5);
  c.strain = bmh * x * bmh;
  c.strain = 0.5 * (c.strain + c.strain.transpose());
  c.box_h = c.strain * data.box_h;
  c.status = CellStatus::Applied;
  return c;
}

}  // namespace ionmsm
