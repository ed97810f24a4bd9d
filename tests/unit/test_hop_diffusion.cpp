// Unit tests of src/ionmsm/hop_diffusion.hpp: the tracer correlation factor f_tracer =
// D(tau) / D_hop on walks simulated here and counted with sliding windows, against closed forms.
#include "ionmsm/hop_diffusion.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "ionmsm/transport.hpp"
#include "transport_test_util.hpp"

namespace {

using Point = std::array<long, 3>;  // unwrapped lattice coordinates

long floor_div(long x, long n) { return x >= 0 ? x / n : -((-x + n - 1) / n); }

// Counts of unwrapped lattice trajectories (n[a] sites of spacing a[a] per axis, periodic) at
// the given lags from every origin: site = wrapped coordinates, shift = change of the cell.
ionmsm::CountsData count_walks(const std::vector<std::vector<Point>>& walks,
                               const std::array<long, 3>& n, const std::array<double, 3>& a,
                               const std::vector<std::int64_t>& lags) {
  ionmsm::CountsData d;
  d.units = "metal";
  d.timestep_ps = 0.001;
  d.box_h = Eigen::Vector3d(n[0] * a[0], n[1] * a[1], n[2] * a[2]).asDiagonal();
  auto site = [&](const Point& p) {
    return static_cast<int>(((p[0] - floor_div(p[0], n[0]) * n[0]) * n[1] +
                             (p[1] - floor_div(p[1], n[1]) * n[1])) * n[2] +
                            (p[2] - floor_div(p[2], n[2]) * n[2]));
  };
  for (long x = 0; x < n[0]; ++x)
    for (long y = 0; y < n[1]; ++y)
      for (long z = 0; z < n[2]; ++z)
        d.site_fractional.emplace_back(double(x) / n[0], double(y) / n[1], double(z) / n[2]);
  d.occupancy.assign(d.site_fractional.size(), 0);
  for (const auto& w : walks)
    for (const Point& p : w) ++d.occupancy[static_cast<std::size_t>(site(p))];
  for (std::int64_t L : lags) {
    transport_test::RowMap rows;
    std::uint64_t origins = 0;
    for (const auto& w : walks)
      for (std::size_t t = 0; t + static_cast<std::size_t>(L) < w.size(); ++t) {
        const Point& p = w[t];
        const Point& q = w[t + static_cast<std::size_t>(L)];
        ionmsm::Image s;
        for (int ax = 0; ax < 3; ++ax)
          s[ax] = static_cast<int>(floor_div(q[ax], n[ax]) - floor_div(p[ax], n[ax]));
        rows.add(site(p), site(q), s, 1);
        ++origins;
      }
    d.lags.push_back(rows.lag(L));
    d.lags.back().n_origins = origins;
  }
  return d;
}

ionmsm::TracerCorrelation tracer_of(const ionmsm::CountsData& d, std::size_t sel) {
  const double dt = d.timestep_ps;
  const auto s1 = ionmsm::build_transport_statistics(d, 0);
  const auto d1 = ionmsm::exact_diffusion_tensor(s1, dt * d.lags[0].lag_steps);
  const auto ss = ionmsm::build_transport_statistics(d, sel);
  const auto ds = ionmsm::exact_diffusion_tensor(ss, dt * d.lags[sel].lag_steps);
  return ionmsm::tracer_correlation(ds, d1, s1);
}

// Non-interacting walkers on a simple cubic lattice (6^3 sites, spacing 2 A): per step of
// 1 fs each walker stays with probability 0.7 or hops to one of the 6 neighbours (0.05 each).
// Hops are uncorrelated: D_hop_aa = (1/2) * 2 * 0.05 * a^2 / dt = 0.2 A^2/fs = 200 A^2/ps,
// site-change probability 0.3, and f_tracer = 1 at every lag (D(10 dt) = D_hop). Statistical
// error: about 4e5 independent 10-step windows per axis, relative sd of D ~ 0.3 %.
TEST(HopDiffusion, UncorrelatedWalkersHaveTracerFactorOne) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<std::vector<Point>> walks(20);
  for (auto& w : walks) {
    Point p{static_cast<long>(rng() % 6), static_cast<long>(rng() % 6),
            static_cast<long>(rng() % 6)};
    for (int t = 0; t < 200000; ++t) {
      w.push_back(p);
      const double r = u(rng);
      if (r < 0.3) p[static_cast<std::size_t>(r / 0.1)] += (r - 0.1 * std::floor(r / 0.1)) < 0.05 ? 1 : -1;
    }
  }
  const auto d = count_walks(walks, {6, 6, 6}, {2.0, 2.0, 2.0}, {1, 10});
  const auto t = tracer_of(d, 1);
  EXPECT_EQ(t.hop_lag_steps, 1);
  EXPECT_EQ(t.lag_steps, 10);
  EXPECT_NEAR(t.site_change_probability, 0.3, 0.003);
  for (int a = 0; a < 3; ++a) {
    EXPECT_NEAR(t.D_hop(a, a), 200.0, 200.0 * 0.02) << "axis " << a;
    EXPECT_NEAR(t.f[a], 1.0, 0.03) << "axis " << a;
  }
  EXPECT_NEAR(t.f_total, 1.0, 0.02);
}

// A 1D chain (40 sites, spacing 1 A, along x) where the walker hops every step and reverses its
// previous hop with probability p = 0.7 (continues with 0.3): successive hops have the
// correlation c = <d_n d_{n+1}> / a^2 = (1 - p) - p = 1 - 2p = -0.4, and <d_n d_{n+k}> = c^k a^2.
// Hence Var(S_tau) = a^2 [tau + 2 sum_{k=1}^{tau-1} (tau - k) c^k], and the Markov model of lag
// tau (blocks of tau steps taken as independent; the chain is symmetric, so no drift and no
// correlation term) has D(tau) = Var(S_tau) / (2 tau dt). D_hop = a^2 / (2 dt) (one hop per step
// of length a) and f_tracer(tau) = Var(S_tau) / (tau a^2), which tends to the classic
// (1 + c) / (1 - c) = (1 - p) / p = 3/7 for long tau; at tau = 20: 3/7 - 2c (1 - c^20) /
// (20 (1 - c)^2) = 0.4490. The shortest lag
// itself is uncorrelated by construction (f_lag(1) = 1), so only f_tracer reveals f < 1.
TEST(HopDiffusion, BackHopBiasedChainHasTheClosedFormTracerFactor) {
  const double p = 0.7, c = 1.0 - 2.0 * p;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<std::vector<Point>> walks(10);
  for (auto& w : walks) {
    Point x{static_cast<long>(rng() % 40), 0, 0};
    long dir = u(rng) < 0.5 ? 1 : -1;
    for (int t = 0; t < 200000; ++t) {
      w.push_back(x);
      if (u(rng) < p) dir = -dir;
      x[0] += dir;
    }
  }
  const std::int64_t tau = 20;
  const auto d = count_walks(walks, {40, 1, 1}, {1.0, 5.0, 5.0}, {1, tau});
  const auto t = tracer_of(d, 1);
  double var = tau;
  for (std::int64_t k = 1; k < tau; ++k) var += 2.0 * double(tau - k) * std::pow(c, double(k));
  const double f_want = var / double(tau);
  EXPECT_NEAR(f_want, 0.4490, 1e-4);
  EXPECT_NEAR(t.site_change_probability, 1.0, 1e-12);
  EXPECT_NEAR(t.D_hop(0, 0), 0.5 / 0.001, 1e-9);
  EXPECT_NEAR(t.f[0], f_want, 0.03 * f_want);
  EXPECT_NEAR(t.f_total, f_want, 0.03 * f_want);
  EXPECT_TRUE(std::isnan(t.f[1]) && std::isnan(t.f[2]));  // no hops along y, z
}

}  // namespace
