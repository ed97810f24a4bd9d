// Unit tests of src/ionmsm/timescales.hpp. Conventions: C(i,j) = transitions j -> i, column-stochastic
// M(i,j) = P(j -> i). Every expected value is derived by hand or in closed form in a comment.
#include "ionmsm/timescales.hpp"

#include "ionmsm/leading_spectrum.hpp"

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


// =============================================================================== timescales

// Flip-flop chains: M = [[0,1],[1,0]] has eigenvalues 1 and -1 (equal modulus: 1 first);
// C = [[1,9],[9,1]] gives M = [[.1,.9],[.9,.1]] with eigenvalues 1 and -0.8.
TEST(MsmTimescales, FlipFlopIsNonPositive) {
  for (double stay : {0.0, 1.0}) {
    Eigen::MatrixXd c(2, 2);
    c << stay, 9, 9, stay;
    const Eigen::MatrixXd m = ionmsm::nonreversible_mle(c);
    const double lambda2 = stay == 0.0 ? -1.0 : -0.8;
    const Eigen::VectorXd pi = Eigen::Vector2d(0.5, 0.5);
    for (int path = 0; path < 2; ++path) {
      const ionmsm::Spectrum sp = path == 0 ? ionmsm::compute_spectrum(m)
                                            : ionmsm::compute_reversible_spectrum(m, pi);
      ASSERT_EQ(sp.eigenvalues.size(), 2);
      EXPECT_NEAR(sp.eigenvalues(0).real(), 1.0, 1e-14);
      EXPECT_NEAR(sp.eigenvalues(1).real(), lambda2, 1e-14);
      const auto ts = ionmsm::implied_timescales(sp.eigenvalues, 0.5);
      EXPECT_EQ(ts[0].status, TimescaleStatus::Stationary);
      EXPECT_EQ(ts[1].status, TimescaleStatus::NonPositive);
      // |lambda| = 1 has no decay time; |lambda| = 0.8 decays: t = -tau / ln 0.8
      if (stay == 0.0)
        EXPECT_TRUE(std::isnan(ts[1].timescale));
      else
        EXPECT_NEAR(ts[1].timescale, -0.5 / std::log(0.8), 1e-12);  // lambda2 = -0.8 +- 1e-14
    }
  }
}


// 3-cycle with staying probability 1/2: M = I/2 + P/2 with P the cyclic shift; eigenvalues
// 1/2 + omega^k / 2, omega = exp(2 pi i / 3): 1 and 1/4 +- i sqrt(3)/4 (modulus 1/2).
TEST(MsmTimescales, ThreeCycleIsComplex) {
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(3, 3);
  for (int j = 0; j < 3; ++j) {
    c(j, j) = 5;
    c((j + 1) % 3, j) = 5;
  }
  const Eigen::MatrixXd m = ionmsm::nonreversible_mle(c);
  const ionmsm::Spectrum sp = ionmsm::compute_spectrum(m);
  ASSERT_EQ(sp.eigenvalues.size(), 3);
  EXPECT_NEAR(std::abs(sp.eigenvalues(0) - std::complex<double>(1.0, 0.0)), 0.0, 1e-14);
  EXPECT_NEAR(std::abs(sp.eigenvalues(1) - std::complex<double>(0.25, std::sqrt(3.0) / 4)), 0.0,
              1e-14);
  EXPECT_NEAR(std::abs(sp.eigenvalues(2) - std::complex<double>(0.25, -std::sqrt(3.0) / 4)), 0.0,
              1e-14);
  const auto ts = ionmsm::implied_timescales(sp.eigenvalues, 1.0);
  EXPECT_EQ(ts[0].status, TimescaleStatus::Stationary);
  for (int k = 1; k < 3; ++k) {
    EXPECT_EQ(ts[k].status, TimescaleStatus::Complex);
    EXPECT_NEAR(ts[k].timescale, -1.0 / std::log(0.5), 1e-13);  // modulus 1/2
  }
  // Not reversible (circulating flux): the symmetric path refuses it.
  EXPECT_THROW(ionmsm::compute_reversible_spectrum(m, Eigen::Vector3d::Constant(1.0 / 3)),
               std::invalid_argument);
}


// Hand-made timescale lists: sets are consecutive, the stationary mode and NaN are skipped.
TEST(MsmTimescales, DegenerateSets) {
  Eigen::VectorXcd ev(7);
  ev << std::complex<double>(1.0, 0.0), std::complex<double>(0.9, 0.01),
      std::complex<double>(0.9, -0.01), std::complex<double>(0.9, 0.0),
      std::complex<double>(0.5, 0.0), std::complex<double>(0.0, 0.0),
      std::complex<double>(0.2, 0.0);
  const auto ts = ionmsm::implied_timescales(ev, 1.0);
  const auto sets = ionmsm::degenerate_sets(ts, 0.01);
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_EQ(sets[0].first, 1u);
  EXPECT_EQ(sets[0].multiplicity, 3u);
  // |0.9 +- 0.01 i| = 0.900056: the three timescales differ by 0.06 %, inside 1 %
  const double t_pair = -1.0 / std::log(std::abs(ev(1))), t_real = -1.0 / std::log(0.9);
  EXPECT_NEAR(sets[0].timescale, (2 * t_pair + t_real) / 3, 1e-12);
  EXPECT_NEAR(sets[0].timescale_spread, t_pair - t_real, 1e-12);
  EXPECT_NEAR(sets[0].modulus, (2 * std::abs(ev(1)) + 0.9) / 3, 1e-14);
  EXPECT_EQ(sets[1].first, 4u);
  EXPECT_EQ(sets[1].multiplicity, 1u);
  EXPECT_EQ(sets[2].first, 6u);  // lambda = 0 (index 5) has no timescale
  EXPECT_EQ(ionmsm::degenerate_sets(ts, 0.0).size(), 4u);  // exact ties only: the pair
  EXPECT_THROW(ionmsm::degenerate_sets(ts, 1.0), std::invalid_argument);
  EXPECT_THROW(ionmsm::degenerate_sets(ts, -0.1), std::invalid_argument);
}


// Random walk on a periodic L^3 simple cubic lattice (L = 4), staying with probability 1/2 and
// hopping to each of the 6 neighbours with probability 1/12 per step. Exact eigenvalues
// lambda(q) = 1/2 + (cos qx + cos qy + cos qz) / 6, q = 2 pi n / L: the slowest set is q one
// unit along +-x, +-y, +-z (6-fold), lambda = 1/2 + (2 + 0) / 6 = 5/6, t = -1 / ln(5/6) steps.
// Finite sampling splits the 6-fold set (the non-reversible estimate gives complex pairs);
// every mode must still have a timescale, and the set must match t within its statistical
// error, estimated from independent simulations.
TEST(MsmTimescales, PeriodicCubicWalkDegenerateSlowModes) {
  const int L = 4, n = L * L * L, walkers = 64, steps = 20000, runs = 6;
  const double t_exact = -1.0 / std::log(5.0 / 6.0);
  auto site = [L](int x, int y, int z) {
    return ((x + L) % L) + L * (((y + L) % L) + L * ((z + L) % L));
  };
  std::vector<double> set_t;
  for (int run = 0; run < runs; ++run) {
    Rng rng(1000 + static_cast<std::uint64_t>(run));
    Eigen::MatrixXd c = Eigen::MatrixXd::Zero(n, n);
    for (int w = 0; w < walkers; ++w) {
      int x = w % L, y = (w / L) % L, z = w / (L * L);
      for (int s = 0; s < steps; ++s) {
        const int from = site(x, y, z);
        const auto r = rng.below(12);  // 0..5: stay, 6..11: one of the 6 neighbours
        if (r == 6) ++x;
        if (r == 7) --x;
        if (r == 8) ++y;
        if (r == 9) --y;
        if (r == 10) ++z;
        if (r == 11) --z;
        x = (x + L) % L, y = (y + L) % L, z = (z + L) % L;
        c(site(x, y, z), from) += 1.0;
      }
    }
    const ionmsm::MarkovModel model =
        ionmsm::estimate_markov_model(lag_from_matrix(1, c), n, ionmsm::MsmOptions{});
    const ionmsm::Spectrum sp =
        ionmsm::leading_spectrum(model, ionmsm::Estimator::NonReversible, 10);
    const auto ts = ionmsm::implied_timescales(sp.eigenvalues, 1.0);
    ASSERT_GE(ts.size(), 8u);
    for (std::size_t k = 1; k <= 6; ++k) {
      EXPECT_TRUE(std::isfinite(ts[k].timescale)) << "run " << run << " k " << k + 1;
      EXPECT_GT(ts[k].timescale, 0.0);
    }
    const auto sets = ionmsm::degenerate_sets(ts);
    ASSERT_FALSE(sets.empty());
    EXPECT_EQ(sets[0].first, 1u) << "run " << run;
    EXPECT_EQ(sets[0].multiplicity, 6u) << "run " << run;
    set_t.push_back(sets[0].timescale);
  }
  double mean = 0.0, var = 0.0;
  for (double t : set_t) mean += t / runs;
  for (double t : set_t) var += (t - mean) * (t - mean) / (runs - 1);
  const double sem = std::sqrt(var / runs);
  EXPECT_GT(sem, 0.0);
  EXPECT_NEAR(mean, t_exact, 4.0 * sem) << "mean " << mean << " sem " << sem;
  for (double t : set_t) EXPECT_NEAR(t, t_exact, 4.0 * std::sqrt(var)) << t;
}


TEST(MsmTimescales, StatusRules) {
  Eigen::VectorXcd ev(9);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ev << std::complex<double>(1.0, 0.0), std::complex<double>(1.0 - 1e-13, 0.0),
      std::complex<double>(0.9, 0.0), std::complex<double>(0.0, 0.0),
      std::complex<double>(-0.3, 0.0), std::complex<double>(0.5, 1e-12),
      std::complex<double>(0.5, 1e-3), std::complex<double>(1.1, 0.0),
      std::complex<double>(nan, 0.0);
  const auto ts = ionmsm::implied_timescales(ev, 2.0);
  const TimescaleStatus want[] = {TimescaleStatus::Stationary, TimescaleStatus::Stationary,
                                  TimescaleStatus::Ok,         TimescaleStatus::NonPositive,
                                  TimescaleStatus::NonPositive, TimescaleStatus::Ok,
                                  TimescaleStatus::Complex,    TimescaleStatus::Invalid,
                                  TimescaleStatus::Invalid};
  for (int k = 0; k < 9; ++k) EXPECT_EQ(ts[k].status, want[k]) << k;
  EXPECT_TRUE(std::isinf(ts[0].timescale) && ts[0].timescale > 0);
  EXPECT_DOUBLE_EQ(ts[2].timescale, -2.0 / std::log(0.9));  // 18.98... in the lag-time unit
  EXPECT_DOUBLE_EQ(ts[5].timescale, -2.0 / std::log(0.5));
  // flagged modes keep a timescale from their modulus; |lambda| = 0 or > 1 has none
  EXPECT_DOUBLE_EQ(ts[4].timescale, -2.0 / std::log(0.3));
  EXPECT_DOUBLE_EQ(ts[6].timescale, -2.0 / std::log(std::abs(ev(6))));
  for (int k : {3, 7, 8}) EXPECT_TRUE(std::isnan(ts[k].timescale)) << k;
  EXPECT_STREQ(ionmsm::timescale_status_name(TimescaleStatus::NonPositive), "non-positive");
  EXPECT_THROW(ionmsm::implied_timescales(ev, 0.0), std::invalid_argument);
  EXPECT_THROW(ionmsm::implied_timescales(ev, -1.0), std::invalid_argument);
}


// An exactly Markov ring (p = 1/8) sampled at lags 1, 2, 4 steps: counts K M^L with
// K = 40960 are exact integers (M^L has denominators 8^L <= 4096), so every lag gives
// t_k = -L dt / ln(lambda_k^L) = -dt / ln(lambda_k), the same for all lags. Site 8 is never
// visited and must be dropped silently.
TEST(MsmTimescales, ImpliedTimescalesOverLags) {
  const int n = 8;
  const double p = 0.125, dt = 0.25;
  const Eigen::MatrixXd m = ring_matrix(n, p);
  std::vector<LagCounts> lags;
  Eigen::MatrixXd power = Eigen::MatrixXd::Identity(n, n);
  for (int l = 1; l <= 4; ++l) {
    power = (power * m).eval();
    if (l == 3) continue;
    Eigen::MatrixXd c = Eigen::MatrixXd::Zero(n + 1, n + 1);
    c.topLeftCorner(n, n) = 40960.0 * power;
    ASSERT_EQ(c, c.array().round().matrix());
    lags.push_back(lag_from_matrix(l, c));
  }
  const std::vector<double> ev = ring_eigenvalues_sorted(n, p);
  for (auto est : {ionmsm::Estimator::NonReversible, ionmsm::Estimator::Reversible}) {
    ionmsm::ItsOptions opt;
    opt.msm.estimator = est;
    const auto its = ionmsm::implied_timescales_over_lags(lags, n + 1, dt, opt);
    ASSERT_EQ(its.size(), 3u);
    const std::int64_t want_lags[] = {1, 2, 4};
    for (std::size_t a = 0; a < 3; ++a) {
      EXPECT_EQ(its[a].lag_steps, want_lags[a]);
      EXPECT_DOUBLE_EQ(its[a].lag_time, dt * static_cast<double>(want_lags[a]));
      EXPECT_EQ(its[a].n_kept, static_cast<std::size_t>(n));
      EXPECT_EQ(its[a].estimator_status, ionmsm::ReversibleMleStatus::Converged);
      ASSERT_EQ(its[a].timescales.size(), static_cast<std::size_t>(n));
      EXPECT_EQ(its[a].timescales[0].status, TimescaleStatus::Stationary);
      for (int k = 1; k < n; ++k) {
        const double t = -dt / std::log(ev[k]);
        ASSERT_EQ(its[a].timescales[k].status, TimescaleStatus::Ok) << a << " " << k;
        EXPECT_NEAR(its[a].timescales[k].timescale, t, 1e-9 * t) << a << " " << k;
      }
    }
  }
  EXPECT_THROW(ionmsm::implied_timescales_over_lags(lags, n + 1, 0.0), std::invalid_argument);
}
