// Tests of transport.hpp: displacement statistics, MSD propagation, exact diffusion tensor,
// Einstein fit, jump network. CountsData is built by hand (no file I/O).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <stdexcept>
#include <string>

#include "ionmsm/transport.hpp"

namespace {

using ionmsm::CountsData;
using ionmsm::Image;
using ionmsm::LagCounts;
using ionmsm::TransitionCount;

std::string invalid_argument_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (...) {
    return "<other exception>";
  }
  return "<no exception>";
}

// Adds count to (from, to, shift) of a lag (merging duplicates).
struct RowMap {
  std::map<std::tuple<int, int, int, int, int>, std::uint64_t> m;
  void add(int from, int to, const Image& s, std::uint64_t c) {
    m[std::make_tuple(from, to, s[0], s[1], s[2])] += c;
  }
  LagCounts lag(std::int64_t lag_steps) const {
    LagCounts l;
    l.lag_steps = lag_steps;
    for (const auto& kv : m) {
      TransitionCount t;
      t.from = std::get<0>(kv.first);
      t.to = std::get<1>(kv.first);
      t.shift = {std::get<2>(kv.first), std::get<3>(kv.first), std::get<4>(kv.first)};
      t.count = kv.second;
      l.rows.push_back(t);
    }
    return l;
  }
};

// ---------------------------------------------------------------- anisotropic lattice walk
struct Lattice {
  int n[3] = {4, 3, 5};
  double a[3] = {2.0, 1.5, 3.0};
  double p[3] = {0.1, 0.05, 0.02};  // per direction (+ and - each)
  std::uint64_t origins = 1000000;  // per site
  int site(int ix, int iy, int iz) const { return (ix * n[1] + iy) * n[2] + iz; }
  int nsites() const { return n[0] * n[1] * n[2]; }
};

CountsData make_lattice(const Lattice& L, const double* p = nullptr) {
  const double* prob = p ? p : L.p;
  CountsData d;
  d.units = "metal";
  d.timestep_ps = 0.001;
  d.box_h = Eigen::Vector3d(L.n[0] * L.a[0], L.n[1] * L.a[1], L.n[2] * L.a[2]).asDiagonal();
  RowMap rows;
  for (int ix = 0; ix < L.n[0]; ++ix)
    for (int iy = 0; iy < L.n[1]; ++iy)
      for (int iz = 0; iz < L.n[2]; ++iz) {
        d.site_fractional.emplace_back(double(ix) / L.n[0], double(iy) / L.n[1],
                                       double(iz) / L.n[2]);
        d.occupancy.push_back(L.origins);
        const int idx[3] = {ix, iy, iz};
        const int from = L.site(ix, iy, iz);
        std::uint64_t moved = 0;
        for (int ax = 0; ax < 3; ++ax)
          for (int sign : {-1, 1}) {
            int j[3] = {idx[0], idx[1], idx[2]};
            Image shift{0, 0, 0};
            j[ax] += sign;
            if (j[ax] < 0) {
              j[ax] += L.n[ax];
              shift[ax] = -1;
            } else if (j[ax] >= L.n[ax]) {
              j[ax] -= L.n[ax];
              shift[ax] = 1;
            }
            const auto c = static_cast<std::uint64_t>(std::llround(prob[ax] * L.origins));
            rows.add(from, L.site(j[0], j[1], j[2]), shift, c);
            moved += c;
          }
        rows.add(from, from, {0, 0, 0}, L.origins - moved);
      }
  d.lags.push_back(rows.lag(10));
  return d;
}

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
    EXPECT_NEAR(res.D_A2_per_ps(a, a), expected, 1e-12 * expected) << "axis " << a;
    EXPECT_NEAR(res.D0_A2_per_ps(a, a), expected, 1e-12 * expected) << "axis " << a;
    EXPECT_NEAR(res.correlation_factor[a], 1.0, 1e-12);
    for (int b = 0; b < 3; ++b)
      if (a != b) {
        EXPECT_NEAR(res.D_A2_per_ps(a, b), 0.0, 1e-14);
        EXPECT_NEAR(res.D0_A2_per_ps(a, b), 0.0, 1e-14);
      }
  }
  EXPECT_NEAR(res.correlation_factor_total, 1.0, 1e-12);
  EXPECT_LT(res.drift_velocity_A_per_ps.norm(), 1e-14);
  EXPECT_LT(res.max_stationary_residual, 1e-14);
  for (double pi : res.limiting_distribution) EXPECT_NEAR(pi, 1.0 / 60.0, 1e-14);
  const double dtot = (L.p[0] * 4.0 + L.p[1] * 2.25 + L.p[2] * 9.0) / tau / 3.0;
  EXPECT_NEAR(res.D_total_A2_per_ps, dtot, 1e-12 * dtot);
}

TEST(TransportLattice, MomentMsdIsExactlyLinearAndEinsteinFitRecoversD) {
  const Lattice L;
  const auto stats = ionmsm::build_transport_statistics(make_lattice(L), 0);
  const double tau = 0.25;
  ionmsm::MsdOptions opt;
  opt.method = ionmsm::MsdMethod::moments;
  opt.n_max = 50;
  const auto c = ionmsm::propagate_msd(stats, tau, opt);
  ASSERT_EQ(c.msd_xx_A2.size(), 50u);
  for (std::size_t k = 0; k < 50; ++k) {
    const double n = double(k + 1);
    EXPECT_DOUBLE_EQ(c.time_ps[k], n * tau);
    EXPECT_EQ(c.n_lags[k], std::int64_t(k + 1));
    const double* comps[3] = {&c.msd_xx_A2[k], &c.msd_yy_A2[k], &c.msd_zz_A2[k]};
    double total = 0.0;
    for (int a = 0; a < 3; ++a) {
      const double expected = 2.0 * L.p[a] * L.a[a] * L.a[a] * n;  // 2 D t, D = p a^2 / tau
      EXPECT_NEAR(*comps[a], expected, 1e-12 * expected) << "n=" << n << " axis " << a;
      total += expected;
    }
    EXPECT_NEAR(c.msd_total_A2[k], total, 1e-12 * total);
    EXPECT_NEAR(c.msd_tensor_A2[k](0, 1), 0.0, 1e-12);
    EXPECT_NEAR(c.msd_tensor_A2[k](0, 2), 0.0, 1e-12);
    EXPECT_NEAR(c.msd_tensor_A2[k](1, 2), 0.0, 1e-12);
    EXPECT_LT(c.mean_displacement_A[k].norm(), 1e-12);
  }
  const auto fit = ionmsm::fit_einstein(c);
  EXPECT_EQ(fit.first_point, 25u);
  EXPECT_EQ(fit.n_points, 25u);
  for (int a = 0; a < 3; ++a) {
    const double expected = L.p[a] * L.a[a] * L.a[a] / tau;
    EXPECT_NEAR(fit.D_A2_per_ps[a], expected, 1e-10 * expected);
    EXPECT_NEAR(fit.intercept_A2[a], 0.0, 1e-9);
  }
  const auto exact = ionmsm::exact_diffusion_tensor(stats, tau);
  EXPECT_NEAR(fit.D_total_A2_per_ps, exact.D_total_A2_per_ps, 1e-10 * exact.D_total_A2_per_ps);
}

TEST(TransportLattice, MinimumImageSaturatesAtHalfBoxPlateau) {
  const Lattice L;
  const auto stats = ionmsm::build_transport_statistics(make_lattice(L), 0);
  ionmsm::MsdOptions opt;
  opt.method = ionmsm::MsdMethod::minimum_image;
  opt.n_max = 1500;
  const auto c = ionmsm::propagate_msd(stats, 1.0, opt);
  const auto mom = ionmsm::propagate_msd(stats, 1.0, ionmsm::MsdOptions{});
  // one hop is shorter than half the box: identical at n = 1
  EXPECT_NEAR(c.msd_total_A2[0], mom.msd_total_A2[0], 1e-12);
  // plateau = average squared minimum-image distance of the uniform distribution on a ring:
  // 4 sites -> (0+1+4+1)/4 a^2, 3 sites -> (0+1+1)/3 a^2, 5 sites -> (0+1+4+4+1)/5 a^2
  const double plateau[3] = {1.5 * 4.0, 2.0 / 3.0 * 2.25, 2.0 * 9.0};
  const std::vector<double>* comps[3] = {&c.msd_xx_A2, &c.msd_yy_A2, &c.msd_zz_A2};
  double bound_total = 0.0;
  for (int a = 0; a < 3; ++a) {
    const double half_box = 0.5 * L.n[a] * L.a[a];
    bound_total += half_box * half_box;
    for (double v : *comps[a]) EXPECT_LE(v, half_box * half_box + 1e-12);
    EXPECT_NEAR(comps[a]->back(), plateau[a], 1e-8) << "axis " << a;
    EXPECT_NEAR(comps[a]->back(), (*comps[a])[1000], 1e-8);
  }
  for (double v : c.msd_total_A2) EXPECT_LE(v, bound_total + 1e-12);
  // ... while the unfolded MSD keeps growing
  EXPECT_GT(mom.msd_total_A2.back(), 0.0);
}

TEST(TransportLattice, ReplicatedMatchesMomentsWhileNoWrapAndMinimumImageForR1) {
  const Lattice L;
  const auto stats = ionmsm::build_transport_statistics(make_lattice(L), 0);
  ionmsm::MsdOptions mo;
  mo.n_max = 10;
  const auto mom = ionmsm::propagate_msd(stats, 0.1, mo);
  ionmsm::MsdOptions ro = mo;
  ro.method = ionmsm::MsdMethod::replicated;
  ro.replicas = {8, 8, 8};  // half supercell: 16, 12, 20 hops > 10 steps
  const auto rep = ionmsm::propagate_msd(stats, 0.1, ro);
  for (std::size_t k = 0; k < 10; ++k) {
    EXPECT_NEAR(rep.msd_total_A2[k], mom.msd_total_A2[k], 1e-10 * mom.msd_total_A2[k]);
    const double tensor_dev = (rep.msd_tensor_A2[k] - mom.msd_tensor_A2[k]).norm();
    const double tol = 1e-10 * mom.msd_total_A2[k];
    EXPECT_LT(tensor_dev, tol);
  }
  ro.replicas = {1, 1, 1};
  mo.method = ionmsm::MsdMethod::minimum_image;
  const auto r1 = ionmsm::propagate_msd(stats, 0.1, ro);
  const auto mi = ionmsm::propagate_msd(stats, 0.1, mo);
  for (std::size_t k = 0; k < 10; ++k) {
    const double tensor_dev = (r1.msd_tensor_A2[k] - mi.msd_tensor_A2[k]).norm();
    EXPECT_LT(tensor_dev, 1e-12);
  }
  // a replicated plateau lies above the minimum-image one (checked at a wrap-free R = 2 in x)
  ro.replicas = {2, 1, 1};
  ro.n_max = 400;
  mo.n_max = 400;
  const auto r2 = ionmsm::propagate_msd(stats, 0.1, ro);
  const auto m2 = ionmsm::propagate_msd(stats, 0.1, mo);
  EXPECT_GT(r2.msd_xx_A2.back(), m2.msd_xx_A2.back() + 1.0);
}

TEST(TransportLattice, JumpNetworkRatesAndProjectionAxes) {
  const Lattice L;
  CountsData data = make_lattice(L);
  // a second, longer lag with other probabilities: the CountsData overload must use lag 0
  const double p2[3] = {0.2, 0.2, 0.2};
  data.lags.push_back(make_lattice(L, p2).lags[0]);
  data.lags[1].lag_steps = 20;
  const double tau = 0.05;
  const auto net = ionmsm::build_jump_network(data, tau);
  EXPECT_EQ(net.lag_steps, 10);
  EXPECT_EQ(net.edges.size(), 180u);  // 60 sites x 6 neighbours / 2
  ASSERT_EQ(net.site_cartesian_A.size(), 60u);
  EXPECT_NEAR((net.site_cartesian_A[L.site(1, 2, 3)] - Eigen::Vector3d(2.0, 3.0, 9.0)).norm(), 0,
              1e-12);
  for (double o : net.occupancy_fraction) EXPECT_NEAR(o, 1.0 / 60.0, 1e-15);
  for (const auto& e : net.edges) {
    ASSERT_LT(e.site_a, e.site_b);
    const Eigen::Vector3d v = e.mean_jump_ab_A.cwiseAbs();
    int axis = 0;
    v.maxCoeff(&axis);
    EXPECT_NEAR(v[axis], L.a[axis], 1e-12);
    EXPECT_NEAR(v.sum() - v[axis], 0.0, 1e-12);
    EXPECT_EQ(e.count_ab, std::uint64_t(L.p[axis] * L.origins + 0.5));
    EXPECT_EQ(e.count_ba, e.count_ab);
    EXPECT_NEAR(e.rate_ab_per_ps, L.p[axis] / tau, 1e-12);
    EXPECT_NEAR(e.rate_ba_per_ps, L.p[axis] / tau, 1e-12);
  }
  for (auto h : net.self_image_hop_count) EXPECT_EQ(h, 0u);

  const auto stats = ionmsm::build_transport_statistics(data, 0);
  const auto ax = ionmsm::most_informative_axes(stats);
  // var_a = p_a a_a^2 / (px + py + pz): 0.4, 0.1125, 0.18 over 0.17
  EXPECT_EQ(ax.axes[0], 0);
  EXPECT_EQ(ax.axes[1], 2);
  for (int a = 0; a < 3; ++a)
    EXPECT_NEAR(ax.jump_variance_A2[a], L.p[a] * L.a[a] * L.a[a] / 0.17, 1e-12);
  EXPECT_EQ(ax.n_jumps, 60u * 2u * 170000u);
}

// ---------------------------------------------------------------- correlated two-sublattice chain
// Sites A at x = 0 and B at x = s in a cell of length Lc along x (no hops along y, z). From A a
// hop to either neighbouring B (distance s or Lc - s) with probability pA each, from B to either
// neighbouring A with pB each. In chain-index space this is a symmetric nearest-neighbour walk
// and x = index * Lc / 2 + bounded, so D = nu (Lc/2)^2 / (2 tau) with the jump frequency
// nu = 2 (piA pA + piB pB) = 4 pA pB / (pA + pB): D = pA pB Lc^2 / (2 (pA + pB) tau), while
// D0 = pA pB (s^2 + (Lc - s)^2) / ((pA + pB) tau): f = Lc^2 / (2 (s^2 + (Lc - s)^2)) < 1.
struct Chain {
  double Lc = 3.0, s = 0.9;
  double pA = 0.3, pB = 0.1;
  std::uint64_t KA = 1000000, KB = 3000000;  // origins (piA = 0.25, piB = 0.75)
};

CountsData make_chain(const Chain& c, bool with_occupancy = true) {
  CountsData d;
  d.box_h = Eigen::Vector3d(c.Lc, 5.0, 5.0).asDiagonal();
  d.site_fractional = {Eigen::Vector3d(0, 0, 0), Eigen::Vector3d(c.s / c.Lc, 0, 0)};
  if (with_occupancy) d.occupancy = {c.KA, c.KB};
  RowMap r;
  const auto hA = static_cast<std::uint64_t>(std::llround(c.pA * c.KA));
  const auto hB = static_cast<std::uint64_t>(std::llround(c.pB * c.KB));
  r.add(0, 1, {0, 0, 0}, hA);   // right, distance s
  r.add(0, 1, {-1, 0, 0}, hA);  // left, distance Lc - s
  r.add(0, 0, {0, 0, 0}, c.KA - 2 * hA);
  r.add(1, 0, {1, 0, 0}, hB);   // right, distance Lc - s
  r.add(1, 0, {0, 0, 0}, hB);   // left, distance s
  r.add(1, 1, {0, 0, 0}, c.KB - 2 * hB);
  d.lags.push_back(r.lag(5));
  return d;
}

TEST(TransportCorrelated, TwoSublatticeChainHasCorrelationFactorBelowOne) {
  const Chain ch;
  const auto stats = ionmsm::build_transport_statistics(make_chain(ch), 0);
  const double tau = 2.0;
  const auto res = ionmsm::exact_diffusion_tensor(stats, tau);
  const double D = ch.pA * ch.pB * ch.Lc * ch.Lc / (2.0 * (ch.pA + ch.pB) * tau);
  const double D0 = ch.pA * ch.pB * (ch.s * ch.s + (ch.Lc - ch.s) * (ch.Lc - ch.s)) /
                    ((ch.pA + ch.pB) * tau);
  EXPECT_NEAR(res.D_A2_per_ps(0, 0), D, 1e-12 * D);
  EXPECT_NEAR(res.D0_A2_per_ps(0, 0), D0, 1e-12 * D0);
  EXPECT_NEAR(res.correlation_factor[0], D / D0, 1e-12);
  EXPECT_LT(res.correlation_factor[0], 0.9);
  EXPECT_LT(res.correlation_factor_total, 1.0);
  EXPECT_TRUE(std::isnan(res.correlation_factor[1]));
  EXPECT_TRUE(std::isnan(res.correlation_factor[2]));
  EXPECT_EQ(res.D_A2_per_ps(1, 1), 0.0);
  EXPECT_NEAR(res.limiting_distribution[0], 0.25, 1e-14);
  EXPECT_NEAR(res.limiting_distribution[1], 0.75, 1e-14);
  EXPECT_LT(res.drift_velocity_A_per_ps.norm(), 1e-15);

  // long moment propagation: slope of the last half matches the exact formula
  ionmsm::MsdOptions opt;
  opt.n_max = 400;
  const auto c = ionmsm::propagate_msd(stats, tau, opt);
  const auto fit = ionmsm::fit_einstein(c);
  EXPECT_NEAR(fit.D_A2_per_ps[0], res.D_A2_per_ps(0, 0), 1e-6 * D);
  EXPECT_NEAR(fit.D_total_A2_per_ps, res.D_total_A2_per_ps, 1e-6 * D);
  // ... and is clearly not D0
  EXPECT_GT(std::abs(fit.D_A2_per_ps[0] - D0), 0.1 * D0);

  // the sparse solver path gives the same numbers
  ionmsm::DiffusionSolverOptions sparse;
  sparse.dense_max_states = 0;
  const auto rs = ionmsm::exact_diffusion_tensor(stats, tau, sparse);
  EXPECT_TRUE(rs.used_sparse_solver);
  EXPECT_FALSE(res.used_sparse_solver);
  EXPECT_LT((rs.D_A2_per_ps - res.D_A2_per_ps).norm(), 1e-13);
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

// ---------------------------------------------------------------- random triclinic model
Eigen::Matrix3d triclinic_h() {
  Eigen::Matrix3d h;
  h << 5.0, 1.2, -0.8,  //
      0.0, 4.5, 0.9,    //
      0.0, 0.0, 6.0;
  return h;
}

// Random sparse counts: every site gets a stay and a few random (to, shift) rows.
CountsData make_random(int nsites, unsigned seed, bool reversible) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uf(0.0, 1.0);
  std::uniform_int_distribution<int> usite(0, nsites - 1), ushift(-1, 1), ucount(1, 1000),
      nrows(2, 4);
  CountsData d;
  d.box_h = triclinic_h();
  d.box_origin = Eigen::Vector3d(0.3, -0.2, 0.1);
  for (int i = 0; i < nsites; ++i) {
    d.site_fractional.emplace_back(uf(rng), uf(rng), uf(rng));
    d.occupancy.push_back(static_cast<std::uint64_t>(ucount(rng)));
  }
  RowMap r;
  for (int j = 0; j < nsites; ++j) {
    r.add(j, j, {0, 0, 0}, static_cast<std::uint64_t>(ucount(rng)));
    const int k = nrows(rng);
    for (int q = 0; q < k; ++q) {
      const int to = usite(rng);
      const Image s{ushift(rng), ushift(rng), ushift(rng)};
      const auto c = static_cast<std::uint64_t>(ucount(rng));
      r.add(j, to, s, c);
      if (reversible) r.add(to, j, {-s[0], -s[1], -s[2]}, c);
    }
  }
  d.lags.push_back(r.lag(1));
  return d;
}

Eigen::Vector3d brute_minimum_image(const Eigen::Matrix3d& h, const Eigen::Vector3d& df) {
  Eigen::Vector3d best = h * df;
  for (int a = -4; a <= 4; ++a)
    for (int b = -4; b <= 4; ++b)
      for (int c = -4; c <= 4; ++c) {
        const Eigen::Vector3d x = h * (df + Eigen::Vector3d(a, b, c));
        if (x.squaredNorm() < best.squaredNorm()) best = x;
      }
  return best;
}

TEST(TransportRandom, MomentsEqualBruteForceOnExplicitLattice) {
  const int n = 4;
  const CountsData data = make_random(n, 12345u, false);
  const auto stats = ionmsm::build_transport_statistics(data, 0);
  ASSERT_EQ(stats.nstates(), std::size_t(n));
  const int n_max = 4;
  ionmsm::MsdOptions opt;
  opt.n_max = n_max;
  const auto mom = ionmsm::propagate_msd(stats, 1.0, opt);

  // brute force on an explicit, unbounded lattice of (site, cell) states, from the raw rows
  std::vector<double> out(n, 0.0), occ(n, 0.0);
  double occ_total = 0.0;
  for (const auto& t : data.lags[0].rows) out[t.from] += double(t.count);
  for (int i = 0; i < n; ++i) occ_total += occ[i] = double(data.occupancy[i]);
  using State = std::array<int, 4>;
  std::vector<Eigen::Matrix3d> expected(n_max, Eigen::Matrix3d::Zero());
  std::vector<Eigen::Vector3d> expected_mean(n_max, Eigen::Vector3d::Zero());
  for (int j = 0; j < n; ++j) {
    std::map<State, double> p{{State{j, 0, 0, 0}, 1.0}};
    for (int step = 0; step < n_max; ++step) {
      std::map<State, double> np;
      for (const auto& [st, pr] : p)
        for (const auto& t : data.lags[0].rows)
          if (t.from == st[0])
            np[State{t.to, st[1] + t.shift[0], st[2] + t.shift[1], st[3] + t.shift[2]}] +=
                pr * double(t.count) / out[t.from];
      p.swap(np);
      for (const auto& [st, pr] : p) {
        const Eigen::Vector3d d =
            data.box_h * (data.site_fractional[st[0]] + Eigen::Vector3d(st[1], st[2], st[3]) -
                          data.site_fractional[j]);
        expected[step] += occ[j] / occ_total * pr * d * d.transpose();
        expected_mean[step] += occ[j] / occ_total * pr * d;
      }
    }
  }
  for (int k = 0; k < n_max; ++k) {
    const double scale = expected[k].trace();
    const double tensor_dev = (mom.msd_tensor_A2[k] - expected[k]).norm();
    EXPECT_LT(tensor_dev, 1e-10 * scale) << "n=" << k + 1;
    EXPECT_LT((mom.mean_displacement_A[k] - expected_mean[k]).norm(), 1e-10 * std::sqrt(scale));
  }

  // replicated supercell large enough that nothing wraps within 2 steps
  ionmsm::MsdOptions ro;
  ro.method = ionmsm::MsdMethod::replicated;
  ro.replicas = {16, 16, 16};
  ro.n_max = 2;
  const auto rep = ionmsm::propagate_msd(stats, 1.0, ro);
  for (int k = 0; k < 2; ++k) {
    const double tensor_dev = (rep.msd_tensor_A2[k] - expected[k]).norm();
    EXPECT_LT(tensor_dev, 1e-10 * expected[k].trace());
  }

  // minimum image (paper eq. 7) against dense powers of M and brute-force images
  Eigen::MatrixXd M = Eigen::MatrixXd(ionmsm::transition_matrix(stats));
  Eigen::MatrixXd Mn = Eigen::MatrixXd::Identity(n, n);
  ionmsm::MsdOptions mo;
  mo.method = ionmsm::MsdMethod::minimum_image;
  mo.n_max = 3;
  const auto mi = ionmsm::propagate_msd(stats, 1.0, mo);
  for (int k = 0; k < 3; ++k) {
    Mn = M * Mn;
    Eigen::Matrix3d e = Eigen::Matrix3d::Zero();
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        const Eigen::Vector3d d = brute_minimum_image(
            data.box_h, data.site_fractional[i] - data.site_fractional[j]);
        e += Mn(i, j) * occ[j] / occ_total * d * d.transpose();
      }
    const double tensor_dev = (mi.msd_tensor_A2[k] - e).norm();
    EXPECT_LT(tensor_dev, 1e-12 * e.trace()) << "n=" << k + 1;
  }
}

// More start sites than one propagation block (64 columns, blocks shared between threads) and
// more steps than one moment chunk (16): minimum image and its mean displacement against dense
// powers of M with brute-force images.
TEST(TransportRandom, MinimumImageManyBlocksEqualsDensePowers) {
  const int n = 150;
  const CountsData data = make_random(n, 4242u, false);
  const auto stats = ionmsm::build_transport_statistics(data, 0);
  ASSERT_EQ(stats.nstates(), std::size_t(n));
  ionmsm::MsdOptions mo;
  mo.method = ionmsm::MsdMethod::minimum_image;
  mo.n_max = 20;
  const auto mi = ionmsm::propagate_msd(stats, 1.0, mo);
  ASSERT_EQ(mi.msd_tensor_A2.size(), 20u);
  std::vector<double> occ(n);
  double occ_total = 0.0;
  for (int i = 0; i < n; ++i) occ_total += occ[i] = double(data.occupancy[i]);
  std::vector<Eigen::Vector3d> d(static_cast<std::size_t>(n * n));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      d[static_cast<std::size_t>(i * n + j)] =
          brute_minimum_image(data.box_h, data.site_fractional[i] - data.site_fractional[j]);
  const Eigen::MatrixXd M = Eigen::MatrixXd(ionmsm::transition_matrix(stats));
  Eigen::MatrixXd Mn = Eigen::MatrixXd::Identity(n, n);
  for (int k = 0; k < 20; ++k) {
    Mn = M * Mn;
    Eigen::Matrix3d e = Eigen::Matrix3d::Zero();
    Eigen::Vector3d m = Eigen::Vector3d::Zero();
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        const Eigen::Vector3d& x = d[static_cast<std::size_t>(i * n + j)];
        const double w = Mn(i, j) * occ[j] / occ_total;
        e += w * x * x.transpose();
        m += w * x;
      }
    const double tensor_deviation = (mi.msd_tensor_A2[k] - e).norm();
    const double mean_deviation = (mi.mean_displacement_A[k] - m).norm();
    EXPECT_LT(tensor_deviation, 1e-12 * e.trace()) << "n=" << k + 1;
    EXPECT_LT(mean_deviation, 1e-12 * std::sqrt(e.trace())) << k + 1;
  }
}

TEST(TransportRandom, ReversibleChainHasNoDriftAndStationaryFromCounts) {
  const int n = 6;
  const auto stats = ionmsm::build_transport_statistics(make_random(n, 777u, true), 0);
  const auto res = ionmsm::exact_diffusion_tensor(stats, 0.3);
  ASSERT_EQ(res.classes.size(), 1u);
  EXPECT_LT(res.drift_velocity_A_per_ps.norm(), 1e-13);
  // symmetric counts: pi_j proportional to the counts leaving j
  double total = 0.0;
  for (auto c : stats.outgoing_count) total += double(c);
  for (int j = 0; j < n; ++j)
    EXPECT_NEAR(res.limiting_distribution[j], double(stats.outgoing_count[j]) / total, 1e-13);
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(res.D_A2_per_ps);
  EXPECT_GT(es.eigenvalues().minCoeff(), 0.0);
  EXPECT_LT((res.D_A2_per_ps - res.D_A2_per_ps.transpose()).norm(), 1e-15);
  EXPECT_LT(res.max_stationary_residual, 1e-14);
  // moments MSD slope agrees with the exact D
  ionmsm::MsdOptions opt;
  opt.n_max = 300;
  const auto fit = ionmsm::fit_einstein(ionmsm::propagate_msd(stats, 0.3, opt));
  for (int a = 0; a < 3; ++a)
    EXPECT_NEAR(fit.D_A2_per_ps[a], res.D_A2_per_ps(a, a), 1e-6 * res.D_A2_per_ps(a, a));
}

TEST(TransportRandom, DriftingChainCovarianceGrowthMatchesExactD) {
  const int n = 7;
  const auto stats = ionmsm::build_transport_statistics(make_random(n, 2024u, false), 0);
  const double tau = 0.7;
  const auto res = ionmsm::exact_diffusion_tensor(stats, tau);
  ASSERT_EQ(res.classes.size(), 1u) << "test chain should be irreducible";
  EXPECT_GT(res.drift_velocity_A_per_ps.norm(), 1e-3);
  ionmsm::MsdOptions opt;
  opt.n_max = 300;
  opt.start = ionmsm::MsdStart::stationary;
  const auto c = ionmsm::propagate_msd(stats, tau, opt);
  const std::size_t N = c.n_lags.size();
  // stationary start: mean displacement = n m exactly
  EXPECT_LT((c.mean_displacement_A[N - 1] / c.time_ps[N - 1] - res.drift_velocity_A_per_ps).norm(),
            1e-10 * res.drift_velocity_A_per_ps.norm());
  auto cov = [&](std::size_t k) {
    return Eigen::Matrix3d(c.msd_tensor_A2[k] -
                           c.mean_displacement_A[k] * c.mean_displacement_A[k].transpose());
  };
  const Eigen::Matrix3d growth = (cov(N - 1) - cov(N - 2)) / (2.0 * tau);
  EXPECT_LT((growth - res.D_A2_per_ps).norm(), 1e-8 * res.D_A2_per_ps.norm());
  // D without the correlation term would be wrong here
  EXPECT_GT((res.D0_A2_per_ps - res.D_A2_per_ps).norm(), 1e-3 * res.D_A2_per_ps.norm());
  // sparse path
  ionmsm::DiffusionSolverOptions sparse;
  sparse.dense_max_states = 1;
  const auto rs = ionmsm::exact_diffusion_tensor(stats, tau, sparse);
  EXPECT_TRUE(rs.used_sparse_solver);
  EXPECT_LT((rs.D_A2_per_ps - res.D_A2_per_ps).norm(), 1e-12 * res.D_A2_per_ps.norm());
  EXPECT_LT((rs.drift_velocity_A_per_ps - res.drift_velocity_A_per_ps).norm(), 1e-13);
}

// ---------------------------------------------------------------- state space and classes
TEST(TransportStates, SitesWithoutOutgoingCountsAreExcluded) {
  CountsData d;
  d.box_h = Eigen::Matrix3d::Identity() * 10.0;
  for (int i = 0; i < 4; ++i) d.site_fractional.emplace_back(0.1 * i, 0, 0);
  d.occupancy = {10, 10, 10, 10};
  RowMap r;
  r.add(0, 0, {0, 0, 0}, 50);
  r.add(0, 1, {0, 0, 0}, 50);
  r.add(1, 0, {0, 0, 0}, 30);
  r.add(1, 1, {0, 0, 0}, 60);
  r.add(1, 2, {0, 0, 0}, 10);  // 2 only leads to 3, and 3 has no outgoing counts
  r.add(2, 3, {0, 0, 0}, 7);
  d.lags.push_back(r.lag(1));
  const auto s = ionmsm::build_transport_statistics(d, 0);
  EXPECT_EQ(s.active_sites, (std::vector<ionmsm::SiteIndex>{0, 1}));
  EXPECT_EQ(s.excluded_sites, (std::vector<ionmsm::SiteIndex>{2, 3}));
  EXPECT_EQ(s.state_of_site, (std::vector<std::int32_t>{0, 1, -1, -1}));
  EXPECT_EQ(s.total_count, 207u);
  EXPECT_EQ(s.dropped_count, 17u);
  EXPECT_EQ(s.outgoing_count[1], 100u);
  const Eigen::MatrixXd M = Eigen::MatrixXd(ionmsm::transition_matrix(s));
  EXPECT_NEAR(M(0, 1), 30.0 / 90.0, 1e-15);
  EXPECT_NEAR(M(1, 1), 60.0 / 90.0, 1e-15);
  EXPECT_EQ(M.col(2).sum() + M.col(3).sum(), 0.0);
  ionmsm::MsdOptions opt;
  opt.n_max = 2;
  const auto c = ionmsm::propagate_msd(s, 1.0, opt);
  EXPECT_NEAR(c.start_probability[0], 0.5, 1e-15);
  EXPECT_EQ(c.start_probability[2], 0.0);
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
    EXPECT_NEAR(res.classes[0].D_A2_per_ps(0, 0), p1 * a * a / tau, 1e-13);
    EXPECT_NEAR(res.classes[1].D_A2_per_ps(1, 1), p2 * b * b / tau, 1e-13);
    EXPECT_NEAR(res.D_A2_per_ps(0, 0), 0.3 * p1 * a * a / tau, 1e-13);
    EXPECT_NEAR(res.D_A2_per_ps(1, 1), 0.7 * p2 * b * b / tau, 1e-13);
    EXPECT_NEAR(res.D_A2_per_ps(2, 2), 0.0, 1e-15);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(res.limiting_distribution[k], 0.1, 1e-14);
    for (int k = 3; k < 7; ++k) EXPECT_NEAR(res.limiting_distribution[k], 0.175, 1e-14);
    EXPECT_EQ(res.limiting_distribution[7], 0.0);
    EXPECT_EQ(res.used_sparse_solver, dense == 0);
  }
}

// ---------------------------------------------------------------- misuse
TEST(TransportErrors, MisuseThrowsInvalidArgumentWithClearMessage) {
  const Chain ch;
  const CountsData good = make_chain(ch);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(good, 1); })
                .find("lag index 1 out of range"),
            std::string::npos);
  CountsData empty = good;
  empty.lags[0].rows.clear();
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(empty, 0); })
                .find("no transition counts"),
            std::string::npos);
  CountsData zero = good;
  for (auto& t : zero.lags[0].rows) t.count = 0;
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(zero, 0); })
                .find("no transition counts"),
            std::string::npos);
  CountsData nolags = good;
  nolags.lags.clear();
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(nolags, 0); })
                .find("no lags"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_jump_network(nolags, 1.0); })
                .find("no lags"),
            std::string::npos);
  CountsData nosites = good;
  nosites.site_fractional.clear();
  nosites.occupancy.clear();
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(nosites, 0); })
                .find("no sites"),
            std::string::npos);
  CountsData badsite = good;
  badsite.lags[0].rows[0].to = 2;
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(badsite, 0); })
                .find("site index out of range"),
            std::string::npos);
  CountsData badocc = good;
  badocc.occupancy.push_back(1);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(badocc, 0); })
                .find("occupancy has 3 entries for 2 sites"),
            std::string::npos);
  CountsData singular = good;
  singular.box_h(2, 2) = 0.0;
  EXPECT_NE(invalid_argument_message([&] { ionmsm::build_transport_statistics(singular, 0); })
                .find("singular"),
            std::string::npos);

  const auto stats = ionmsm::build_transport_statistics(good, 0);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::exact_diffusion_tensor(stats, 0.0); })
                .find("tau_ps must be finite and > 0"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::exact_diffusion_tensor(stats, NAN); })
                .find("tau_ps"),
            std::string::npos);
  ionmsm::MsdOptions opt;
  opt.n_max = 0;
  EXPECT_NE(invalid_argument_message([&] { ionmsm::propagate_msd(stats, 1.0, opt); })
                .find("n_max must be >= 1"),
            std::string::npos);
  opt.n_max = 2;
  opt.method = ionmsm::MsdMethod::replicated;
  opt.replicas = {2, 0, 1};
  EXPECT_NE(invalid_argument_message([&] { ionmsm::propagate_msd(stats, 1.0, opt); })
                .find("replica counts must be >= 1"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::propagate_msd({}, 1.0, {}); })
                .find("empty or inconsistent"),
            std::string::npos);
  ionmsm::MsdCurve one;
  one.time_ps = {1.0};
  one.msd_xx_A2 = one.msd_yy_A2 = one.msd_zz_A2 = one.msd_total_A2 = {1.0};
  EXPECT_NE(invalid_argument_message([&] { ionmsm::fit_einstein(one); })
                .find("at least 2 points"),
            std::string::npos);
  ionmsm::MsdCurve three = one;
  three.time_ps = {1.0, 2.0, 3.0};
  three.msd_xx_A2 = three.msd_yy_A2 = three.msd_zz_A2 = three.msd_total_A2 = {1.0, 2.0, 3.0};
  EXPECT_NE(invalid_argument_message([&] { ionmsm::fit_einstein(three, 1.0); })
                .find("first_fraction must be in [0, 1)"),
            std::string::npos);
  EXPECT_NEAR(ionmsm::fit_einstein(three, 0.9).D_total_A2_per_ps, 1.0 / 6.0, 1e-15);
  EXPECT_NE(invalid_argument_message([&] { ionmsm::parse_msd_method("folded"); })
                .find("unknown MSD method 'folded'"),
            std::string::npos);
  for (auto m : {ionmsm::MsdMethod::minimum_image, ionmsm::MsdMethod::replicated,
                 ionmsm::MsdMethod::moments})
    EXPECT_EQ(ionmsm::parse_msd_method(ionmsm::msd_method_name(m)), m);
}

}  // namespace
