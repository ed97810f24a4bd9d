// Unit tests of src/ionmsm/effective_cell.hpp: the effective transport cell recovered from MD
// site-projected moments made with a known strain of the last cell.
#include "ionmsm/effective_cell.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "ionmsm/transport.hpp"
#include "transport_test_util.hpp"

using namespace transport_test;

namespace {

// <delta delta^T> of the lattice's counts in the cell h (the test's own slow sum).
Eigen::Matrix3d moment(const ionmsm::CountsData& d, const Eigen::Matrix3d& h) {
  Eigen::Matrix3d q = Eigen::Matrix3d::Zero();
  double n = 0.0;
  for (const auto& r : d.lags[0].rows) {
    const Eigen::Vector3d df = d.site_fractional[r.to] - d.site_fractional[r.from] +
                               Eigen::Vector3d(r.shift[0], r.shift[1], r.shift[2]);
    q += double(r.count) * (h * df) * (h * df).transpose();
    n += double(r.count);
  }
  return q / n;
}

}  // namespace

// The MD moments of a cell S0 H_last (S0 symmetric positive definite, off-diagonal entries
// included) are exactly those of H_eff = S0 H_last: S B S = Q has the unique SPD solution S0.
// Transport in H_eff then reproduces the MD second moment at that lag.
TEST(EffectiveCell, RecoversAKnownStrainOfTheLastCell) {
  Lattice L;
  ionmsm::CountsData d = make_lattice(L);
  Eigen::Matrix3d s0;
  s0 << 1.05, 0.02, -0.01, 0.02, 0.97, 0.015, -0.01, 0.015, 1.02;
  d.has_displacement = true;
  d.lags[0].displacement_sq_sum = moment(d, s0 * d.box_h) * double(d.lags[0].total());
  const ionmsm::EffectiveCell c = ionmsm::effective_cell(d);
  ASSERT_EQ(c.status, ionmsm::CellStatus::Applied);
  EXPECT_EQ(c.lag_steps, 10);
  EXPECT_LT((c.strain - s0).norm(), 1e-12);
  EXPECT_LT((c.box_h - s0 * d.box_h).norm(), 1e-11 * d.box_h.norm());
  EXPECT_GT(c.relative_mismatch, 0.01);
  // isotropic scaling s: S = s I
  d.lags[0].displacement_sq_sum = moment(d, 1.1 * d.box_h) * double(d.lags[0].total());
  EXPECT_LT((ionmsm::effective_cell(d).strain - 1.1 * Eigen::Matrix3d::Identity()).norm(), 1e-12);
}

TEST(EffectiveCell, ConstantCellNoMomentsAndLowerDimensionalHops) {
  Lattice L;
  ionmsm::CountsData d = make_lattice(L);
  EXPECT_EQ(ionmsm::effective_cell(d).status, ionmsm::CellStatus::NoMoments);
  d.has_displacement = true;
  d.lags[0].displacement_sq_sum = moment(d, d.box_h) * double(d.lags[0].total());
  ionmsm::EffectiveCell c = ionmsm::effective_cell(d);
  EXPECT_EQ(c.status, ionmsm::CellStatus::Constant);
  EXPECT_EQ(c.box_h, d.box_h);
  // hops along x only (p_y = p_z = 0): B has rank 1, S is undetermined
  const double p[3] = {0.1, 0.0, 0.0};
  ionmsm::CountsData x = make_lattice(L, p);
  x.has_displacement = true;
  x.lags[0].displacement_sq_sum = moment(x, 1.1 * x.box_h) * double(x.lags[0].total());
  c = ionmsm::effective_cell(x);
  EXPECT_EQ(c.status, ionmsm::CellStatus::NotThreeDimensional);
  EXPECT_EQ(c.box_h, x.box_h);
  x.box_h(0, 0) = 0.0;
  EXPECT_THROW(ionmsm::effective_cell(x), std::invalid_argument);
}
