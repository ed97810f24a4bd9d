// Unit tests of src/ionmsm/lag_selection.hpp: the rule on hand-made timescales, and the lag it
// selects on a lattice walk whose implied timescales are biased at short lags in closed form.
#include "ionmsm/lag_selection.hpp"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "ionmsm/timescales.hpp"

namespace {

using ionmsm::LagItsInput;
using ionmsm::LagSelectionStatus;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

LagItsInput lag(std::int64_t steps, std::vector<double> t, std::vector<double> sd = {},
                double ck = kNaN) {
  LagItsInput l;
  l.lag_steps = steps;
  l.lag_time = static_cast<double>(steps);
  l.timescales = std::move(t);
  l.timescale_sd = std::move(sd);
  l.ck_error = ck;
  return l;
}

// t = 50, 80, 95, 100, 100, 100 at lags 1 ... 32 (one mode): from lag 4 every later value is
// within 10 % (100 / 95 - 1 = 5.3 %), from lag 2 not (100 / 80 - 1 = 25 %).
TEST(LagSelection, ShortestLagBeyondWhichTimescalesStayWithinTolerance) {
  std::vector<LagItsInput> in = {lag(1, {50}),   lag(2, {80}),   lag(4, {95}),
                                 lag(8, {100}), lag(16, {100}), lag(32, {100})};
  ionmsm::ItsConvergenceOptions o;
  o.n_timescales = 1;
  const auto r = ionmsm::select_lag_by_its(in, o);
  EXPECT_EQ(r.status, LagSelectionStatus::Converged);
  EXPECT_EQ(r.index, 2);
  EXPECT_NEAR(r.lags[1].max_relative_change, 0.25, 1e-12);
  EXPECT_NEAR(r.lags[2].max_relative_change, 100.0 / 95.0 - 1.0, 1e-12);
  EXPECT_EQ(r.lags[2].n_compared, 3u);
  // one longer lag is not a plateau (min_compared = 2): lag 16 does not qualify
  EXPECT_EQ(r.lags[4].max_relative_change, 0.0);
  EXPECT_FALSE(r.lags[4].converged);
  EXPECT_FALSE(r.lags[5].converged);  // nothing longer to compare with
  // a tighter tolerance moves the choice to lag 8 (exactly flat beyond)
  o.relative_tolerance = 0.01;
  EXPECT_EQ(ionmsm::select_lag_by_its(in, o).index, 3);
}

// Bootstrap sd: at lag 2 the change 20 is 25 % of t, but within 2 combined sd when sd = 10 at
// both lags (20 / sqrt(200) = 1.41 <= 2): lag 2 qualifies, not lag 1 (change 50 = 3.5 sd).
TEST(LagSelection, ChangesWithinTheBootstrapErrorCountAsConverged) {
  std::vector<LagItsInput> in = {lag(1, {50}, {10}), lag(2, {80}, {10}), lag(4, {100}, {10}),
                                 lag(8, {100}, {10})};
  ionmsm::ItsConvergenceOptions o;
  o.n_timescales = 1;
  const auto r = ionmsm::select_lag_by_its(in, o);
  EXPECT_EQ(r.index, 1);
  EXPECT_NEAR(r.lags[1].max_change_in_sd, 20.0 / std::sqrt(200.0), 1e-12);
  EXPECT_NEAR(r.lags[0].max_change_in_sd, 50.0 / std::sqrt(200.0), 1e-12);
}

// Timescales no longer than the lag are not resolved: they are neither selected nor compared.
// The CK check skips a qualifying lag whose error is too large; if all fail, the shortest.
TEST(LagSelection, ResolutionAndCkCheck) {
  std::vector<LagItsInput> in = {lag(1, {10}, {}, 0.5), lag(2, {10}, {}, 0.05),
                                 lag(4, {10}, {}, 0.5), lag(8, {10}), lag(16, {12})};
  ionmsm::ItsConvergenceOptions o;
  o.n_timescales = 1;
  auto r = ionmsm::select_lag_by_its(in, o);
  EXPECT_EQ(r.status, LagSelectionStatus::Converged);
  EXPECT_EQ(r.index, 1);  // lag 1 converged but CK 0.5 > 0.1
  EXPECT_FALSE(r.lags[4].resolved);  // 12 < 16 steps
  EXPECT_EQ(r.lags[0].n_compared, 3u);
  in[1].ck_error = 0.3;
  r = ionmsm::select_lag_by_its(in, o);
  EXPECT_EQ(r.status, LagSelectionStatus::ConvergedCkFailed);
  EXPECT_EQ(r.index, 0);
  // timescales as long as the run (max_timescale) are not resolved by the data either
  o.max_timescale = 10.0;
  r = ionmsm::select_lag_by_its(in, o);
  EXPECT_EQ(r.status, LagSelectionStatus::TooFewLags);
  EXPECT_FALSE(r.lags[0].resolved);
}

TEST(LagSelection, NotConvergedTooFewLagsAndBadInput) {
  ionmsm::ItsConvergenceOptions o;
  o.n_timescales = 2;
  // the second mode keeps growing by 30 % per lag
  auto r = ionmsm::select_lag_by_its(
      {lag(1, {100, 10}), lag(2, {100, 13}), lag(4, {100, 17}), lag(8, {100, 22})}, o);
  EXPECT_EQ(r.status, LagSelectionStatus::NotConverged);
  EXPECT_EQ(r.index, -1);
  EXPECT_EQ(r.n_timescales, 2);
  // one lag with a model (the other has none): nothing to compare
  r = ionmsm::select_lag_by_its({lag(1, {100, 10}), lag(2, {})}, o);
  EXPECT_EQ(r.status, LagSelectionStatus::TooFewLags);
  EXPECT_THROW(ionmsm::select_lag_by_its({lag(2, {1}), lag(1, {1})}), std::invalid_argument);
  o.relative_tolerance = 0.0;
  EXPECT_THROW(ionmsm::select_lag_by_its({lag(1, {1})}, o), std::invalid_argument);
}

// ------------------------------------------------------------------ lattice walk with flicker
// A symmetric walk on a ring of N sites (hop to each neighbour with probability h per step),
// observed through an assignment that flickers: each sample independently reports a neighbour
// of the true site with probability e/2 each (as nearest-site assignment does near a boundary).
// Counts at lag tau >= 1 are exactly C_obs = E^T diag(pi) P^tau E (E: the flicker kernel,
// independent at different times). Both P and E are circulant, so the Fourier modes q = 2 pi k/N
// diagonalise the observed MSM with eigenvalue |eps_q|^2 lambda_q^tau, where
// lambda_q = 1 - 2h (1 - cos q) and eps_q = 1 - e (1 - cos q). The implied timescale is
//   t(tau) = -tau / (tau ln lambda_q + 2 ln eps_q) = t_inf / (1 + 2 |ln eps_q| t_inf / tau),
// biased low at short lags and flat within a fraction b beyond tau_b = 2 |ln eps_q| t_inf / b.
// N = 16, h = 0.1, e = 0.2: for q = 2 pi / 16 (degenerate pair, m = 2) the bias is
// 2 |ln eps| t_inf = 2.0 steps, so t(tau) = t_inf / (1 + 2.0 / tau): 33 % at tau = 1, 80 % at
// tau = 8, 89 % at 16, 94 % at 32.
TEST(LagSelection, FlickeringRingWalkSelectsTheStartOfThePlateau) {
  const int n = 16;
  const double h = 0.1, e = 0.2;
  Eigen::MatrixXd P = Eigen::MatrixXd::Zero(n, n), E = Eigen::MatrixXd::Zero(n, n);
  for (int i = 0; i < n; ++i) {
    P(i, i) = 1.0 - 2.0 * h;
    P(i, (i + 1) % n) = P(i, (i + n - 1) % n) = h;
    E(i, i) = 1.0 - e;
    E(i, (i + 1) % n) = E(i, (i + n - 1) % n) = e / 2.0;
  }
  const double q = 2.0 * M_PI / n;
  const double lam = 1.0 - 2.0 * h * (1.0 - std::cos(q)), eps = 1.0 - e * (1.0 - std::cos(q));
  const double t_inf = -1.0 / std::log(lam);
  const std::vector<std::int64_t> lags = {1, 2, 4, 8, 16, 32, 48};
  std::vector<ionmsm::LagItsInput> in;
  Eigen::MatrixXd Pt = Eigen::MatrixXd::Identity(n, n);
  std::int64_t done = 0;
  for (std::int64_t L : lags) {
    for (; done < L; ++done) Pt = Pt * P;
    // row-stochastic observed T(tau) = E^T P^tau E (pi uniform); the MSM's M is its transpose
    const Eigen::MatrixXd T = E.transpose() * Pt * E;
    Eigen::VectorXcd ev = T.transpose().eigenvalues();
    std::sort(ev.data(), ev.data() + ev.size(),
              [](auto a, auto b) { return std::abs(a) > std::abs(b); });
    const auto ts = ionmsm::implied_timescales(ev, static_cast<double>(L));
    LagItsInput li = lag(L, {});
    for (std::size_t k = 1; k < ts.size(); ++k) li.timescales.push_back(ts[k].timescale);
    // the closed form above, for the degenerate slowest pair
    const double want = -L / (L * std::log(lam) + 2.0 * std::log(eps));
    EXPECT_NEAR(li.timescales[0], want, 1e-8 * want);
    EXPECT_NEAR(li.timescales[1], want, 1e-8 * want);
    in.push_back(li);
  }
  ionmsm::ItsConvergenceOptions o;
  o.n_timescales = 2;
  const auto r = ionmsm::select_lag_by_its(in, o);
  ASSERT_EQ(r.status, LagSelectionStatus::Converged);
  // the plateau (within 10 % of the longest resolved lag) begins at 16 steps: t(16) = 0.89
  // t_inf is within 10 % of t(48) = 0.96 t_inf, t(8) = 0.80 t_inf is not
  EXPECT_EQ(lags[static_cast<std::size_t>(r.index)], 16);
  EXPECT_GT(in[static_cast<std::size_t>(r.index)].timescales[0], 0.85 * t_inf);
  EXPECT_LT(in[static_cast<std::size_t>(r.index) - 1].timescales[0], 0.85 * t_inf);
}

}  // namespace
