// Unit tests of src/ionmsm/propagation.hpp: MSD propagation (moments, minimum image, replicated) and Einstein fits.
// CountsData is built by hand (no file I/O).
#include "ionmsm/propagation.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <stdexcept>
#include <string>

#include "transport_test_util.hpp"

using namespace transport_test;

TEST(TransportLattice, MomentMsdIsExactlyLinearAndEinsteinFitRecoversD) {
  const Lattice L;
  const auto stats = ionmsm::build_transport_statistics(make_lattice(L), 0);
  const double tau = 0.25;
  ionmsm::MsdOptions opt;
  opt.method = ionmsm::MsdMethod::moments;
  opt.n_max = 50;
  const auto c = ionmsm::propagate_msd(stats, tau, opt);
  ASSERT_EQ(c.msd_xx.size(), 50u);
  for (std::size_t k = 0; k < 50; ++k) {
    const double n = double(k + 1);
    EXPECT_DOUBLE_EQ(c.time[k], n * tau);
    EXPECT_EQ(c.n_lags[k], std::int64_t(k + 1));
    const double* comps[3] = {&c.msd_xx[k], &c.msd_yy[k], &c.msd_zz[k]};
    double total = 0.0;
    for (int a = 0; a < 3; ++a) {
      const double expected = 2.0 * L.p[a] * L.a[a] * L.a[a] * n;  // 2 D t, D = p a^2 / tau
      EXPECT_NEAR(*comps[a], expected, 1e-12 * expected) << "n=" << n << " axis " << a;
      total += expected;
    }
    EXPECT_NEAR(c.msd_total[k], total, 1e-12 * total);
    EXPECT_NEAR(c.msd_tensor[k](0, 1), 0.0, 1e-12);
    EXPECT_NEAR(c.msd_tensor[k](0, 2), 0.0, 1e-12);
    EXPECT_NEAR(c.msd_tensor[k](1, 2), 0.0, 1e-12);
    EXPECT_LT(c.mean_displacement[k].norm(), 1e-12);
  }
  const auto fit = ionmsm::fit_einstein(c);
  EXPECT_EQ(fit.first_point, 25u);
  EXPECT_EQ(fit.n_points, 25u);
  for (int a = 0; a < 3; ++a) {
    const double expected = L.p[a] * L.a[a] * L.a[a] / tau;
    EXPECT_NEAR(fit.D_axes[a], expected, 1e-10 * expected);
    EXPECT_NEAR(fit.intercept[a], 0.0, 1e-9);
  }
  const auto exact = ionmsm::exact_diffusion_tensor(stats, tau);
  EXPECT_NEAR(fit.D_total, exact.D_total, 1e-10 * exact.D_total);
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
  EXPECT_NEAR(c.msd_total[0], mom.msd_total[0], 1e-12);
  // plateau = average squared minimum-image distance of the uniform distribution on a ring:
  // 4 sites -> (0+1+4+1)/4 a^2, 3 sites -> (0+1+1)/3 a^2, 5 sites -> (0+1+4+4+1)/5 a^2
  const double plateau[3] = {1.5 * 4.0, 2.0 / 3.0 * 2.25, 2.0 * 9.0};
  const std::vector<double>* comps[3] = {&c.msd_xx, &c.msd_yy, &c.msd_zz};
  double bound_total = 0.0;
  for (int a = 0; a < 3; ++a) {
    const double half_box = 0.5 * L.n[a] * L.a[a];
    bound_total += half_box * half_box;
    for (double v : *comps[a]) EXPECT_LE(v, half_box * half_box + 1e-12);
    EXPECT_NEAR(comps[a]->back(), plateau[a], 1e-8) << "axis " << a;
    EXPECT_NEAR(comps[a]->back(), (*comps[a])[1000], 1e-8);
  }
  for (double v : c.msd_total) EXPECT_LE(v, bound_total + 1e-12);
  // ... while the unfolded MSD keeps growing
  EXPECT_GT(mom.msd_total.back(), 0.0);
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
    EXPECT_NEAR(rep.msd_total[k], mom.msd_total[k], 1e-10 * mom.msd_total[k]);
    const double tensor_dev = (rep.msd_tensor[k] - mom.msd_tensor[k]).norm();
    const double tol = 1e-10 * mom.msd_total[k];
    EXPECT_LT(tensor_dev, tol);
  }
  ro.replicas = {1, 1, 1};
  mo.method = ionmsm::MsdMethod::minimum_image;
  const auto r1 = ionmsm::propagate_msd(stats, 0.1, ro);
  const auto mi = ionmsm::propagate_msd(stats, 0.1, mo);
  for (std::size_t k = 0; k < 10; ++k) {
    const double tensor_dev = (r1.msd_tensor[k] - mi.msd_tensor[k]).norm();
    EXPECT_LT(tensor_dev, 1e-12);
  }
  // a replicated plateau lies above the minimum-image one (checked at a wrap-free R = 2 in x)
  ro.replicas = {2, 1, 1};
  ro.n_max = 400;
  mo.n_max = 400;
  const auto r2 = ionmsm::propagate_msd(stats, 0.1, ro);
  const auto m2 = ionmsm::propagate_msd(stats, 0.1, mo);
  EXPECT_GT(r2.msd_xx.back(), m2.msd_xx.back() + 1.0);
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
    const double tensor_dev = (mom.msd_tensor[k] - expected[k]).norm();
    EXPECT_LT(tensor_dev, 1e-10 * scale) << "n=" << k + 1;
    EXPECT_LT((mom.mean_displacement[k] - expected_mean[k]).norm(), 1e-10 * std::sqrt(scale));
  }

  // replicated supercell large enough that nothing wraps within 2 steps
  ionmsm::MsdOptions ro;
  ro.method = ionmsm::MsdMethod::replicated;
  ro.replicas = {16, 16, 16};
  ro.n_max = 2;
  const auto rep = ionmsm::propagate_msd(stats, 1.0, ro);
  for (int k = 0; k < 2; ++k) {
    const double tensor_dev = (rep.msd_tensor[k] - expected[k]).norm();
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
    const double tensor_dev = (mi.msd_tensor[k] - e).norm();
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
  ASSERT_EQ(mi.msd_tensor.size(), 20u);
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
    const double tensor_deviation = (mi.msd_tensor[k] - e).norm();
    const double mean_deviation = (mi.mean_displacement[k] - m).norm();
    EXPECT_LT(tensor_deviation, 1e-12 * e.trace()) << "n=" << k + 1;
    EXPECT_LT(mean_deviation, 1e-12 * std::sqrt(e.trace())) << k + 1;
  }
}

// A drifting chain (no detailed balance): the second moment grows as 2 D t + v v^T t^2, so an
// Einstein fit of the raw moments MSD is biased by the drift; the drift-centred curve (the
// displacement covariance) grows as 2 D t + const once the start has relaxed, and its fit
// recovers the exact D.
TEST(TransportRandom, DriftCentredEinsteinFitRecoversExactD) {
  const auto stats = ionmsm::build_transport_statistics(make_random(7, 2024u, false), 0);
  const double tau = 0.7;
  const auto exact = ionmsm::exact_diffusion_tensor(stats, tau);
  ASSERT_GT(exact.drift_velocity.norm(), 1e-3);
  ionmsm::MsdOptions opt;
  opt.n_max = 200;
  const auto raw = ionmsm::propagate_msd(stats, tau, opt);
  const auto centred = ionmsm::drift_centred(raw);
  for (std::size_t k : {std::size_t(0), std::size_t(199)}) {
    const Eigen::Vector3d& m = raw.mean_displacement[k];
    EXPECT_NEAR(centred.msd_xx[k], raw.msd_xx[k] - m[0] * m[0], 1e-12 * raw.msd_xx[k]);
    EXPECT_NEAR(centred.msd_total[k], raw.msd_total[k] - m.squaredNorm(), 1e-12 * raw.msd_total[k]);
    EXPECT_EQ(centred.mean_displacement[k].norm(), 0.0);
  }
  const auto fit = ionmsm::fit_einstein(centred);
  EXPECT_NEAR(fit.D_total, exact.D_total, 1e-6 * exact.D_total);
  for (int a = 0; a < 3; ++a)
    EXPECT_NEAR(fit.D_axes[a], exact.D_tensor(a, a), 1e-6 * exact.D_total);
  // the raw fit carries the drift: slope of v^2 t^2 over the last half is 2 v^2 t_mid
  const auto biased = ionmsm::fit_einstein(raw);
  EXPECT_GT(biased.D_total - exact.D_total, 0.5 * exact.drift_velocity.squaredNorm() / 6.0 *
                                                2.0 * raw.time[100]);
  ionmsm::MsdCurve broken = raw;
  broken.mean_displacement.pop_back();
  EXPECT_THROW(ionmsm::drift_centred(broken), std::invalid_argument);
}
