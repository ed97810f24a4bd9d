// Unit tests of src/ionmsm/estimators.hpp. Conventions: C(i,j) = transitions j -> i, column-stochastic
// M(i,j) = P(j -> i). Every expected value is derived by hand or in closed form in a comment.
#include "ionmsm/estimators.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "msm_test_util.hpp"

using namespace msm_test;


// =============================================================================== estimators

TEST(MsmEstimators, NonReversibleIsColumnNormalisation) {
  Rng rng(11);
  const Eigen::MatrixXd c = random_counts(6, rng, 0.4, 30);
  const Eigen::MatrixXd m = ionmsm::nonreversible_mle(c);
  const Eigen::MatrixXd ms(ionmsm::nonreversible_mle(SpMat(c.sparseView())));
  for (int j = 0; j < 6; ++j) {
    double s = 0.0;
    for (int i = 0; i < 6; ++i) s += c(i, j);
    for (int i = 0; i < 6; ++i) {
      EXPECT_NEAR(m(i, j), c(i, j) / s, 1e-16) << i << "," << j;
      EXPECT_NEAR(ms(i, j), c(i, j) / s, 1e-16) << i << "," << j;
    }
  }
  Eigen::MatrixXd bad = c;
  bad.col(3).setZero();
  EXPECT_THROW(ionmsm::nonreversible_mle(bad), std::invalid_argument);
  EXPECT_THROW(ionmsm::nonreversible_mle(SpMat(bad.sparseView())), std::invalid_argument);
}


// Birth-death chain M = [[.5,.25,0],[.5,.5,.5],[0,.25,.5]]: flux balance pi0*.5 = pi1*.25 and
// pi1*.25 = pi2*.5 gives pi = (1,2,1)/4.
TEST(MsmEstimators, StationaryDistribution) {
  Eigen::MatrixXd m(3, 3);
  m << 0.5, 0.25, 0.0, 0.5, 0.5, 0.5, 0.0, 0.25, 0.5;
  const Eigen::Vector3d expected(0.25, 0.5, 0.25);
  const double dense_dev = (ionmsm::stationary_distribution(m) - expected).cwiseAbs().maxCoeff();
  const double sparse_dev =
      (ionmsm::stationary_distribution(SpMat(m.sparseView())) - expected).cwiseAbs().maxCoeff();
  EXPECT_LT(dense_dev, 1e-15);
  EXPECT_LT(sparse_dev, 1e-15);
  // A random non-reversible chain: M pi = pi.
  Rng rng(5);
  const Eigen::MatrixXd mr = column_normalise(random_counts(9, rng, 0.3, 20));
  const Eigen::VectorXd pi = ionmsm::stationary_distribution(mr);
  EXPECT_LT((mr * pi - pi).cwiseAbs().maxCoeff(), 1e-15);
  EXPECT_NEAR(pi.sum(), 1.0, 1e-15);
  const double random_sparse_dev =
      (ionmsm::stationary_distribution(SpMat(mr.sparseView())) - pi).cwiseAbs().maxCoeff();
  EXPECT_LT(random_sparse_dev, 1e-14);
  // Reducible (two absorbing blocks) and non-stochastic matrices are rejected.
  EXPECT_THROW(ionmsm::stationary_distribution(Eigen::MatrixXd::Identity(3, 3).eval()),
               std::invalid_argument);
  EXPECT_THROW(ionmsm::stationary_distribution(SpMat(Eigen::MatrixXd::Identity(3, 3).sparseView())),
               std::invalid_argument);
  EXPECT_THROW(ionmsm::stationary_distribution((2.0 * m).eval()), std::invalid_argument);
}


// Detailed-balance violation, relative to the largest flux. The 3-site ring
//   M = [[r, q, p], [p, r, q], [q, p, r]]  (column-stochastic, p + q + r = 1)
// has pi uniform, fluxes F_ij = M_ij / 3, so the violation is |p - q| / max(p, q, r). The
// 3-site chain of StationaryDistribution is reversible (every 3-state birth-death chain is).
TEST(MsmEstimators, DetailedBalanceViolation) {
  const Eigen::Vector3d uniform = Eigen::Vector3d::Constant(1.0 / 3.0);
  for (const auto& [p, q] : {std::pair{0.5, 0.25}, std::pair{0.1, 0.6}, std::pair{0.3, 0.3}}) {
    const double r = 1.0 - p - q;
    Eigen::MatrixXd m(3, 3);
    m << r, q, p, p, r, q, q, p, r;
    const double v = ionmsm::detailed_balance_violation(SpMat(m.sparseView()), uniform);
    EXPECT_NEAR(v, std::abs(p - q) / std::max({p, q, r}), 1e-15) << "p = " << p << ", q = " << q;
    // pi is normalised first: any positive multiple gives the same value
    EXPECT_NEAR(ionmsm::detailed_balance_violation(SpMat(m.sparseView()), 7.0 * uniform), v,
                1e-15);
  }
  Eigen::MatrixXd chain(3, 3);
  chain << 0.5, 0.25, 0.0, 0.5, 0.5, 0.5, 0.0, 0.25, 0.5;
  EXPECT_LT(ionmsm::detailed_balance_violation(SpMat(chain.sparseView()),
                                               Eigen::Vector3d(0.25, 0.5, 0.25)),
            1e-16);
  // A random chain is not reversible; its column normalisation of symmetric counts is.
  Rng rng(11);
  const Eigen::MatrixXd c = random_counts(12, rng, 0.4, 30);
  const Eigen::MatrixXd mr = column_normalise(c);
  EXPECT_GT(ionmsm::detailed_balance_violation(SpMat(mr.sparseView()),
                                               ionmsm::stationary_distribution(mr)),
            1e-3);
  const Eigen::MatrixXd cs = c + c.transpose();
  const Eigen::MatrixXd ms = column_normalise(cs);
  EXPECT_LT(ionmsm::detailed_balance_violation(SpMat(ms.sparseView()),
                                               ionmsm::stationary_distribution(ms)),
            1e-13);
  // misuse
  EXPECT_THROW(ionmsm::detailed_balance_violation(SpMat(chain.sparseView()),
                                                  Eigen::Vector2d(0.5, 0.5)),
               std::invalid_argument);
  EXPECT_THROW(ionmsm::detailed_balance_violation(SpMat(chain.sparseView()),
                                                  Eigen::Vector3d(0.5, 0.0, 0.5)),
               std::invalid_argument);
  EXPECT_THROW(ionmsm::detailed_balance_violation(SpMat(3, 3), uniform), std::invalid_argument);
}


// Above 2000 sites the sparse stationary solve is iterative (BiCGSTAB, residual-checked):
// Metropolis chain on a 2500-site ring with a random target pi has exactly that pi.
TEST(MsmEstimators, LargeSparseStationaryDistributionIsIterativeAndExact) {
  Rng rng(5);
  const int n = 2500;
  Eigen::VectorXd pi(n);
  for (int i = 0; i < n; ++i) pi(i) = 0.5 + rng.uniform();
  pi /= pi.sum();
  std::vector<Eigen::Triplet<double>> t;
  for (int j = 0; j < n; ++j) {
    double stay = 1.0;
    for (int d : {-1, 1}) {
      const int i = (j + d + n) % n;
      const double p = 0.25 * std::min(1.0, pi(i) / pi(j));  // proposal 1/4 each side
      t.emplace_back(i, j, p);
      stay -= p;
    }
    t.emplace_back(j, j, stay);
  }
  SpMat m(n, n);
  m.setFromTriplets(t.begin(), t.end());
  const Eigen::VectorXd got = ionmsm::stationary_distribution(m);
  EXPECT_LT((got - pi).cwiseAbs().maxCoeff() / pi.maxCoeff(), 1e-9);
}


// Two states. Stationarity of any 2-state column-stochastic M gives
//   pi_0 = pi_0 M00 + pi_1 M01  =>  pi_0 (1 - M00) = pi_1 M01  =>  pi_0 M10 = pi_1 M01,
// i.e. detailed balance holds automatically. The reversibility constraint is therefore void
// and the reversible MLE equals the unconstrained one:
//   M10 = C10 / (C00 + C10),  M01 = C01 / (C01 + C11),  pi_0 = M01 / (M01 + M10).
// (Check with the fixed point: X01 = (C01 + C10) / (c_0/pi_0 + c_1/pi_1) with c_0 = C00 + C10,
// c_1 = C01 + C11 gives X01/x_0 = M10 for these pi.)
TEST(MsmReversible, TwoStateClosedForm) {
  Eigen::MatrixXd c(2, 2);
  c << 90, 7, 13, 40;  // C00 = 90, C01 = 7 (1 -> 0), C10 = 13 (0 -> 1), C11 = 40
  const double m10 = 13.0 / 103.0, m01 = 7.0 / 47.0;
  const double pi0 = m01 / (m01 + m10);
  ionmsm::ReversibleMleOptions opt;
  opt.tolerance = 1e-14;
  const auto r = ionmsm::reversible_mle(c, opt);
  ASSERT_EQ(r.status, ionmsm::ReversibleMleStatus::Converged) << r.message;
  EXPECT_NEAR(r.transition_matrix(1, 0), m10, 1e-12);
  EXPECT_NEAR(r.transition_matrix(0, 1), m01, 1e-12);
  EXPECT_NEAR(r.transition_matrix(0, 0), 1.0 - m10, 1e-12);
  EXPECT_NEAR(r.transition_matrix(1, 1), 1.0 - m01, 1e-12);
  EXPECT_NEAR(r.stationary(0), pi0, 1e-12);
  EXPECT_NEAR(r.stationary(1), 1.0 - pi0, 1e-12);
  EXPECT_LE(r.final_change, 1e-14);
  EXPECT_EQ(r.tolerance, 1e-14);
}


// Symmetric counts C = F (an integer flux matrix) are exactly reversible: the MLE is the column
// normalisation of F and pi_j = sum_i F(i,j) / sum F.
TEST(MsmReversible, SymmetricCountsGiveTheExactChain) {
  Eigen::MatrixXd f(4, 4);
  f << 50, 3, 0, 7,  //
      3, 20, 9, 0,   //
      0, 9, 40, 2,   //
      7, 0, 2, 10;
  const auto r = ionmsm::reversible_mle(f);
  ASSERT_TRUE(r.converged()) << r.message;
  const Eigen::MatrixXd m = column_normalise(f);
  const Eigen::VectorXd pi = f.colwise().sum().transpose() / f.sum();
  EXPECT_LT((r.transition_matrix - m).cwiseAbs().maxCoeff(), 1e-14);
  EXPECT_LT((r.stationary - pi).cwiseAbs().maxCoeff(), 1e-14);
}


// Counts sampled from a trajectory of a reversible 4-state chain (pi known) are NOT symmetric,
// so the estimator must iterate.
TEST(MsmReversible, SampledReversibleChain) {
  Eigen::MatrixXd f(4, 4);  // symmetric flux => M reversible w.r.t. pi = column sums / total
  f << 6, 2, 0, 1,  //
      2, 8, 3, 0,   //
      0, 3, 4, 1,   //
      1, 0, 1, 3;
  const Eigen::MatrixXd m_true = column_normalise(f);
  const Eigen::VectorXd pi_true = f.colwise().sum().transpose() / f.sum();
  Rng rng(2024);
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(4, 4);
  int s = 0;
  const int steps = 200000;
  for (int t = 0; t < steps; ++t) {
    double u = rng.uniform();
    int next = 3;
    for (int i = 0; i < 4; ++i) {
      if (u < m_true(i, s)) {
        next = i;
        break;
      }
      u -= m_true(i, s);
    }
    c(next, s) += 1.0;
    s = next;
  }
  ASSERT_GT((c - c.transpose()).cwiseAbs().maxCoeff(), 0.0);
  const auto r = ionmsm::reversible_mle(c);
  ASSERT_EQ(r.status, ionmsm::ReversibleMleStatus::Converged) << r.message;
  EXPECT_GT(r.iterations, 1);
  const Eigen::MatrixXd& m = r.transition_matrix;
  EXPECT_LT(max_detailed_balance_violation(m, r.stationary), 1e-10);
  EXPECT_LT((m.colwise().sum().array() - 1.0).abs().maxCoeff(), 1e-12);
  EXPECT_NEAR(r.stationary.sum(), 1.0, 1e-14);
  EXPECT_LT((m * r.stationary - r.stationary).cwiseAbs().maxCoeff(), 1e-14);
  // Statistics: 2e5 steps of a chain that mixes in a few steps give a standard error of pi of
  // roughly sqrt(pi (1 - pi) * 2 tau_int / T) ~ 0.003; 0.015 is about 5 standard errors.
  EXPECT_LT((r.stationary - pi_true).cwiseAbs().maxCoeff(), 0.015);
  EXPECT_LT((m - m_true).cwiseAbs().maxCoeff(), 0.02);

  // Maximum likelihood among reversible matrices: symmetric perturbations of the flux
  // F_ij = pi_j M_ij on its support give reversible matrices of lower likelihood.
  const double l_best = log_likelihood(c, m);
  Eigen::MatrixXd flux = m * r.stationary.asDiagonal();
  flux = 0.5 * (flux + flux.transpose()).eval();
  for (int trial = 0; trial < 20; ++trial) {
    Eigen::MatrixXd e = Eigen::MatrixXd::Zero(4, 4);
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j <= i; ++j)
        if (flux(i, j) > 0.0) e(i, j) = e(j, i) = (rng.uniform() - 0.5) * 2e-3 * flux(i, j);
    const Eigen::MatrixXd mp = column_normalise(flux + e);
    EXPECT_LT(log_likelihood(c, mp), l_best + 1e-9 * std::abs(l_best)) << trial;
  }
  // ... and the unconstrained MLE is at least as likely.
  EXPECT_GE(log_likelihood(c, ionmsm::nonreversible_mle(c)), l_best - 1e-9 * std::abs(l_best));

  // Sparse overload: the same numbers.
  const auto rs = ionmsm::reversible_mle(SpMat(c.sparseView()));
  EXPECT_EQ(rs.iterations, r.iterations);
  EXPECT_LT((Eigen::MatrixXd(rs.transition_matrix) - m).cwiseAbs().maxCoeff(), 1e-15);
}


TEST(MsmReversible, NotConvergedWhenCappedAtOneIteration) {
  Eigen::MatrixXd c(3, 3);  // strongly non-symmetric, so the initial guess is far from the MLE
  c << 1000, 1, 50,  //
      300, 10, 1,    //
      1, 200, 5;
  ionmsm::ReversibleMleOptions opt;
  opt.max_iterations = 1;
  const auto r = ionmsm::reversible_mle(c, opt);
  EXPECT_EQ(r.status, ionmsm::ReversibleMleStatus::NotConverged);
  EXPECT_FALSE(r.converged());
  EXPECT_EQ(r.iterations, 1);
  EXPECT_EQ(r.max_iterations, 1);
  EXPECT_GT(r.final_change, r.tolerance);
  EXPECT_NE(r.message.find("did NOT converge"), std::string::npos) << r.message;
  // Still reversible and stochastic, by construction.
  EXPECT_LT(max_detailed_balance_violation(r.transition_matrix, r.stationary), 1e-15);
  EXPECT_LT((r.transition_matrix.colwise().sum().array() - 1.0).abs().maxCoeff(), 1e-14);

  const auto full = ionmsm::reversible_mle(c);
  EXPECT_EQ(full.status, ionmsm::ReversibleMleStatus::Converged) << full.message;
  EXPECT_GT(full.iterations, 1);
  EXPECT_LE(full.final_change, full.tolerance);
  EXPECT_GT((full.stationary - r.stationary).cwiseAbs().maxCoeff(), 1e-6);

  ionmsm::ReversibleMleOptions bad;
  bad.max_iterations = 0;
  EXPECT_THROW(ionmsm::reversible_mle(c, bad), std::invalid_argument);
  bad = {};
  bad.tolerance = 0.0;
  EXPECT_THROW(ionmsm::reversible_mle(c, bad), std::invalid_argument);
  Eigen::MatrixXd disconnected = Eigen::MatrixXd::Identity(3, 3);
  EXPECT_THROW(ionmsm::reversible_mle(disconnected), std::invalid_argument);
  Eigen::MatrixXd never_left = c;
  never_left.col(2).setZero();
  EXPECT_THROW(ionmsm::reversible_mle(never_left), std::invalid_argument);
}


// A harder case: 6x6x6 periodic lattice, random site energies (sd 2 kT), Metropolis hops;
// counts = noisy, rounded multiples of the exact fluxes (so not symmetric). The plain
// fixed-point iteration converges linearly and slowly; Anderson acceleration must reach the
// same fixed point with far fewer updates.
TEST(MsmReversible, AndersonAccelerationReachesTheSameFixedPoint) {
  const int l = 6, n = l * l * l;
  Rng rng(17);
  Eigen::VectorXd e(n);
  for (int i = 0; i < n; ++i) e(i) = 4.0 * (rng.uniform() - 0.5) * 1.7;  // sd ~ 2 kT
  Eigen::VectorXd pi = (-e).array().exp();
  pi /= pi.sum();
  auto id = [&](int x, int y, int z) { return ((x + l) % l) * l * l + ((y + l) % l) * l + (z + l) % l; };
  std::vector<Eigen::Triplet<double>> t;
  for (int x = 0; x < l; ++x)
    for (int y = 0; y < l; ++y)
      for (int z = 0; z < l; ++z) {
        const int j = id(x, y, z);
        double stay = 1.0;
        for (int i : {id(x + 1, y, z), id(x - 1, y, z), id(x, y + 1, z), id(x, y - 1, z),
                      id(x, y, z + 1), id(x, y, z - 1)}) {
          const double hop = 0.02 * std::min(1.0, std::exp(e(j) - e(i)));
          stay -= hop;
          t.emplace_back(i, j, std::round(1e7 * pi(j) * hop * (0.8 + 0.4 * rng.uniform())) + 1.0);
        }
        t.emplace_back(j, j, std::round(1e7 * pi(j) * stay));
      }
  SpMat c(n, n);
  c.setFromTriplets(t.begin(), t.end());
  ionmsm::ReversibleMleOptions plain_opt;
  plain_opt.anderson_depth = 0;
  plain_opt.tolerance = 1e-14;
  plain_opt.max_iterations = 2000000;
  const auto plain = ionmsm::reversible_mle(c, plain_opt);
  ASSERT_EQ(plain.status, ionmsm::ReversibleMleStatus::Converged) << plain.message;
  ionmsm::ReversibleMleOptions aa_opt;
  aa_opt.tolerance = 1e-14;
  const auto aa = ionmsm::reversible_mle(c, aa_opt);
  ASSERT_EQ(aa.status, ionmsm::ReversibleMleStatus::Converged) << aa.message;
  EXPECT_LT(aa.iterations * 5, plain.iterations) << aa.iterations << " vs " << plain.iterations;
  // The plain iteration's error is ~ tolerance / (1 - rate), i.e. well below 1e-8 here.
  EXPECT_LT(((aa.stationary - plain.stationary).array() / plain.stationary.array()).abs().maxCoeff(),
            1e-8);
  EXPECT_LT((Eigen::MatrixXd(aa.transition_matrix) - Eigen::MatrixXd(plain.transition_matrix))
                .cwiseAbs()
                .maxCoeff(),
            1e-9);
  // Both reversible and stochastic; the fixed-point residual of the result is tiny.
  const Eigen::MatrixXd m(aa.transition_matrix);
  EXPECT_LT(max_detailed_balance_violation(m, aa.stationary), 1e-15);
  EXPECT_LT((m.colwise().sum().array() - 1.0).abs().maxCoeff(), 1e-13);
}
