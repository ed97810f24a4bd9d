// Unit tests of src/ionmsm/diffusion.hpp: the exact diffusion tensor, correlation factor, drift and class weights.
// CountsData is built by hand (no file I/O).
#include "ionmsm/diffusion.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <stdexcept>
#include <string>

#include "transport_test_util.hpp"

using namespace transport_test;

TEST(TransportLattice, ExactDiffusionMatchesAnalytic) {
  const Lattice L;
  const CountsData data = make_lattice(L);
  const auto stats = ionmsm::build_transport_statistics(data, 0);
  ASSERT_EQ(stats.nstates(), 60u);
  EXPECT_TRUE(stats.excluded_sites.empty());
  EXPECT_EQ(stats.dropped_count, 0u);
  EXPECT_EQ(stats.pairs.size(), 60u * 7u);

  const auto m = ionmsm::transition_matrix(stats);
  const Eigen::VectorXd colsum = Eigen::RowVectorXd::Ones(60) * m;
  for (int j = 0; j < 60; ++j) EXPECT_NEAR(colsum[j], 1.0, 1e-14);

  const double tau = 0.5;
  const auto res = ionmsm::exact_diffusion_tensor(stats, tau);
  ASSERT_EQ(res.classes.size(), 1u);
  EXPECT_EQ(res.n_transient_states, 0u);
  for (int a = 0; a < 3; ++a) {
    const double expected = L.p[a] * L.a[a] * L.a[a] / tau;
    EXPECT_NEAR(res.D_tensor(a, a), expected, 1e-12 * expected) << "axis " << a;
    EXPECT_NEAR(res.D0_tensor(a, a), expected, 1e-12 * expected) << "axis " << a;
    EXPECT_NEAR(res.correlation_factor[a], 1.0, 1e-12);
    for (int b = 0; b < 3; ++b)
      if (a != b) {
        EXPECT_NEAR(res.D_tensor(a, b), 0.0, 1e-14);
        EXPECT_NEAR(res.D0_tensor(a, b), 0.0, 1e-14);
      }
  }
  EXPECT_NEAR(res.correlation_factor_total, 1.0, 1e-12);
  EXPECT_LT(res.drift_velocity.norm(), 1e-14);
  EXPECT_LT(res.max_stationary_residual, 1e-14);
  for (double pi : res.limiting_distribution) EXPECT_NEAR(pi, 1.0 / 60.0, 1e-14);
  const double dtot = (L.p[0] * 4.0 + L.p[1] * 2.25 + L.p[2] * 9.0) / tau / 3.0;
  EXPECT_NEAR(res.D_total, dtot, 1e-12 * dtot);
}

TEST(TransportCorrelated, TwoSublatticeChainHasCorrelationFactorBelowOne) {
  const Chain ch;
  const auto stats = ionmsm::build_transport_statistics(make_chain(ch), 0);
  const double tau = 2.0;
  const auto res = ionmsm::exact_diffusion_tensor(stats, tau);
  const double D = ch.pA * ch.pB * ch.Lc * ch.Lc / (2.0 * (ch.pA + ch.pB) * tau);
  const double D0 = ch.pA * ch.pB * (ch.s * ch.s + (ch.Lc - ch.s) * (ch.Lc - ch.s)) /
                    ((ch.pA + ch.pB) * tau);
  EXPECT_NEAR(res.D_tensor(0, 0), D, 1e-12 * D);
  EXPECT_NEAR(res.D0_tensor(0, 0), D0, 1e-12 * D0);
  EXPECT_NEAR(res.correlation_factor[0], D / D0, 1e-12);
  EXPECT_LT(res.correlation_factor[0], 0.9);
  EXPECT_LT(res.correlation_factor_total, 1.0);
  EXPECT_TRUE(std::isnan(res.correlation_factor[1]));
  EXPECT_TRUE(std::isnan(res.correlation_factor[2]));
  EXPECT_EQ(res.D_tensor(1, 1), 0.0);
  EXPECT_NEAR(res.limiting_distribution[0], 0.25, 1e-14);
  EXPECT_NEAR(res.limiting_distribution[1], 0.75, 1e-14);
  EXPECT_LT(res.drift_velocity.norm(), 1e-15);

  // long moment propagation: slope of the last half matches the exact formula
  ionmsm::MsdOptions opt;
  opt.n_max = 400;
  const auto c = ionmsm::propagate_msd(stats, tau, opt);
  const auto fit = ionmsm::fit_einstein(c);
  EXPECT_NEAR(fit.D_axes[0], res.D_tensor(0, 0), 1e-6 * D);
  EXPECT_NEAR(fit.D_total, res.D_total, 1e-6 * D);
  // ... and is clearly not D0
  EXPECT_GT(std::abs(fit.D_axes[0] - D0), 0.1 * D0);

  // the sparse solver path gives the same numbers
  ionmsm::DiffusionSolverOptions sparse;
  sparse.dense_max_states = 0;
  const auto rs = ionmsm::exact_diffusion_tensor(stats, tau, sparse);
  EXPECT_TRUE(rs.used_sparse_solver);
  EXPECT_FALSE(res.used_sparse_solver);
  EXPECT_LT((rs.D_tensor - res.D_tensor).norm(), 1e-13);
}

TEST(TransportCorrelated, StartDistributionOptions) {
  const Chain ch;
  ionmsm::MsdOptions opt;
  opt.n_max = 3;
  // occupancy, and the fallback to origins per site when there is no occupancy
  for (bool occ : {true, false}) {
    const auto stats = ionmsm::build_transport_statistics(make_chain(ch, occ), 0);
    const auto c = ionmsm::propagate_msd(stats, 1.0, opt);
    EXPECT_NEAR(c.start_probability[0], 0.25, 1e-15);
    EXPECT_NEAR(c.start_probability[1], 0.75, 1e-15);
  }
  CountsData d = make_chain(ch);
  d.occupancy = {1, 1};
  const auto stats = ionmsm::build_transport_statistics(d, 0);
  opt.start = ionmsm::MsdStart::occupancy;
  EXPECT_NEAR(ionmsm::propagate_msd(stats, 1.0, opt).start_probability[0], 0.5, 1e-15);
  opt.start = ionmsm::MsdStart::stationary;
  EXPECT_NEAR(ionmsm::propagate_msd(stats, 1.0, opt).start_probability[0], 0.25, 1e-14);
  opt.start = ionmsm::MsdStart::uniform;
  EXPECT_NEAR(ionmsm::propagate_msd(stats, 1.0, opt).start_probability[1], 0.5, 1e-15);
}

TEST(TransportRandom, ReversibleChainHasNoDriftAndStationaryFromCounts) {
  const int n = 6;
  const auto stats = ionmsm::build_transport_statistics(make_random(n, 777u, true), 0);
  const auto res = ionmsm::exact_diffusion_tensor(stats, 0.3);
  ASSERT_EQ(res.classes.size(), 1u);
  EXPECT_LT(res.drift_velocity.norm(), 1e-13);
  // symmetric counts: pi_j proportional to the counts leaving j
  double total = 0.0;
  for (auto c : stats.outgoing_count) total += double(c);
  for (int j = 0; j < n; ++j)
    EXPECT_NEAR(res.limiting_distribution[j], double(stats.outgoing_count[j]) / total, 1e-13);
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(res.D_tensor);
  EXPECT_GT(es.eigenvalues().minCoeff(), 0.0);
  EXPECT_LT((res.D_tensor - res.D_tensor.transpose()).norm(), 1e-15);
  EXPECT_LT(res.max_stationary_residual, 1e-14);
  // moments MSD slope agrees with the exact D
  ionmsm::MsdOptions opt;
  opt.n_max = 300;
  const auto fit = ionmsm::fit_einstein(ionmsm::propagate_msd(stats, 0.3, opt));
  for (int a = 0; a < 3; ++a)
    EXPECT_NEAR(fit.D_axes[a], res.D_tensor(a, a), 1e-6 * res.D_tensor(a, a));
}

TEST(TransportRandom, DriftingChainCovarianceGrowthMatchesExactD) {
  const int n = 7;
  const auto stats = ionmsm::build_transport_statistics(make_random(n, 2024u, false), 0);
  const double tau = 0.7;
  const auto res = ionmsm::exact_diffusion_tensor(stats, tau);
  ASSERT_EQ(res.classes.size(), 1u) << "test chain should be irreducible";
  EXPECT_GT(res.drift_velocity.norm(), 1e-3);
  ionmsm::MsdOptions opt;
  opt.n_max = 300;
  opt.start = ionmsm::MsdStart::stationary;
  const auto c = ionmsm::propagate_msd(stats, tau, opt);
  const std::size_t N = c.n_lags.size();
  // stationary start: mean displacement = n m exactly
  EXPECT_LT((c.mean_displacement[N - 1] / c.time[N - 1] - res.drift_velocity).norm(),
            1e-10 * res.drift_velocity.norm());
  auto cov = [&](std::size_t k) {
    return Eigen::Matrix3d(c.msd_tensor[k] -
                           c.mean_displacement[k] * c.mean_displacement[k].transpose());
  };
  const Eigen::Matrix3d growth = (cov(N - 1) - cov(N - 2)) / (2.0 * tau);
  EXPECT_LT((growth - res.D_tensor).norm(), 1e-8 * res.D_tensor.norm());
  // D without the correlation term would be wrong here
  EXPECT_GT((res.D0_tensor - res.D_tensor).norm(), 1e-3 * res.D_tensor.norm());
  // sparse path
  ionmsm::DiffusionSolverOptions sparse;
  sparse.dense_max_states = 1;
  const auto rs = ionmsm::exact_diffusion_tensor(stats, tau, sparse);
  EXPECT_TRUE(rs.used_sparse_solver);
  EXPECT_LT((rs.D_tensor - res.D_tensor).norm(), 1e-12 * res.D_tensor.norm());
  EXPECT_LT((rs.drift_velocity - res.drift_velocity).norm(), 1e-13);
}

TEST(TransportStates, DisconnectedChannelsAndTransientSiteAreWeighted) {
  // channel 1: 3-site ring along x (spacing 2, p1); channel 2: 4-site ring along y (spacing 1.5,
  // p2); site 7 is transient: stays 50 %, enters channel 1 with 30 %, channel 2 with 20 %.
  const double a = 2.0, b = 1.5, p1 = 0.2, p2 = 0.1;
  CountsData d;
  d.box_h = Eigen::Vector3d(3 * a, 4 * b, 7.0).asDiagonal();
  RowMap r;
  for (int k = 0; k < 3; ++k) {
    d.site_fractional.emplace_back(k / 3.0, 0.0, 0.0);
    d.occupancy.push_back(100);
    r.add(k, (k + 1) % 3, {k == 2 ? 1 : 0, 0, 0}, std::uint64_t(p1 * 1000));
    r.add(k, (k + 2) % 3, {k == 0 ? -1 : 0, 0, 0}, std::uint64_t(p1 * 1000));
    r.add(k, k, {0, 0, 0}, std::uint64_t((1 - 2 * p1) * 1000 + 0.5));
  }
  for (int k = 0; k < 4; ++k) {
    d.site_fractional.emplace_back(0.5, k / 4.0, 0.5);
    d.occupancy.push_back(200);
    r.add(3 + k, 3 + (k + 1) % 4, {0, k == 3 ? 1 : 0, 0}, std::uint64_t(p2 * 1000 + 0.5));
    r.add(3 + k, 3 + (k + 3) % 4, {0, k == 0 ? -1 : 0, 0}, std::uint64_t(p2 * 1000 + 0.5));
    r.add(3 + k, 3 + k, {0, 0, 0}, std::uint64_t((1 - 2 * p2) * 1000 + 0.5));
  }
  d.site_fractional.emplace_back(0.5, 0.5, 0.0);
  d.occupancy.push_back(100);
  r.add(7, 7, {0, 0, 0}, 500);
  r.add(7, 0, {0, 0, 0}, 300);
  r.add(7, 3, {0, 0, 0}, 200);
  d.lags.push_back(r.lag(1));
  const auto s = ionmsm::build_transport_statistics(d, 0);
  const double tau = 1.0;
  for (std::size_t dense : {std::size_t(500), std::size_t(0)}) {
    ionmsm::DiffusionSolverOptions o;
    o.dense_max_states = dense;
    const auto res = ionmsm::exact_diffusion_tensor(s, tau, o);
    ASSERT_EQ(res.classes.size(), 2u);
    EXPECT_EQ(res.n_transient_states, 1u);
    // weights: (300 + 100 * 0.6) / 1200 and (800 + 100 * 0.4) / 1200
    EXPECT_NEAR(res.classes[0].weight, 0.3, 1e-14);
    EXPECT_NEAR(res.classes[1].weight, 0.7, 1e-14);
    EXPECT_EQ(res.classes[0].sites, (std::vector<ionmsm::SiteIndex>{0, 1, 2}));
    EXPECT_NEAR(res.classes[0].D_tensor(0, 0), p1 * a * a / tau, 1e-13);
    EXPECT_NEAR(res.classes[1].D_tensor(1, 1), p2 * b * b / tau, 1e-13);
    EXPECT_NEAR(res.D_tensor(0, 0), 0.3 * p1 * a * a / tau, 1e-13);
    EXPECT_NEAR(res.D_tensor(1, 1), 0.7 * p2 * b * b / tau, 1e-13);
    EXPECT_NEAR(res.D_tensor(2, 2), 0.0, 1e-15);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(res.limiting_distribution[k], 0.1, 1e-14);
    for (int k = 3; k < 7; ++k) EXPECT_NEAR(res.limiting_distribution[k], 0.175, 1e-14);
    EXPECT_EQ(res.limiting_distribution[7], 0.0);
    EXPECT_EQ(res.used_sparse_solver, dense == 0);
  }
}

// Entries at or below relative * scale become exactly 0; larger ones, and signs, are kept.
TEST(TransportRoundoff, ZeroBelowRoundoff) {
  Eigen::Matrix3d m;
  m << 0.05, 6.2e-17, -1e-12, 6.2e-17, -3.5e-15, 0.0, -1e-12, 0.0, 2e-11;
  const Eigen::Matrix3d z = ionmsm::zero_below_roundoff(m, 0.05, 1e-10);  // cut 5e-12
  Eigen::Matrix3d want;
  want << 0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2e-11;
  EXPECT_EQ(z, want);
  EXPECT_EQ(ionmsm::zero_below_roundoff(Eigen::Matrix3d::Zero(), 0.0), Eigen::Matrix3d::Zero());
  EXPECT_EQ(ionmsm::zero_below_roundoff(m, 0.05, 0.0), m);  // only exact zeros at relative 0
  // a matrix of round-off only, against the scale of another (D against D0): all zero
  EXPECT_EQ(ionmsm::zero_below_roundoff(Eigen::Matrix3d::Constant(1e-17), 0.06),
            Eigen::Matrix3d::Zero());
  EXPECT_THROW(ionmsm::zero_below_roundoff(m, 1.0, -1.0), std::invalid_argument);
  EXPECT_THROW(ionmsm::zero_below_roundoff(m, -1.0), std::invalid_argument);
  // the exact D of the chain (hops along x only): D_yy, D_zz and every off-diagonal entry are
  // exactly 0 and f_y, f_z undefined, not round-off
  const auto stats = ionmsm::build_transport_statistics(make_chain(Chain{}), 0);
  const auto res = ionmsm::exact_diffusion_tensor(stats, 2.0);
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b)
      if (a + b > 0) EXPECT_EQ(res.D_tensor(a, b), 0.0) << a << b;
}
