// Unit tests of src/ionmsm/spectrum.hpp. Conventions: C(i,j) = transitions j -> i, column-stochastic
// M(i,j) = P(j -> i). Every expected value is derived by hand or in closed form in a comment.
#include "ionmsm/spectrum.hpp"

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

namespace {

// Counts of the path of n sites with reflecting ends: per site 2 stays (3 at the ends) and 1
// hop to each neighbour (p = 1/4 per neighbour).
SpMat reflecting_path_counts(int n) {
  std::vector<Eigen::Triplet<double>> t;
  for (int j = 0; j < n; ++j) {
    t.emplace_back(j, j, (j == 0 || j == n - 1) ? 3.0 : 2.0);
    if (j > 0) t.emplace_back(j - 1, j, 1.0);
    if (j + 1 < n) t.emplace_back(j + 1, j, 1.0);
  }
  SpMat c(n, n);
  c.setFromTriplets(t.begin(), t.end());
  return c;
}

}  // namespace

// =============================================================================== spectrum

// Ring of 10 sites, p = 1/8: counts 800 * M are exact integers (600 stay, 100 per hop), so the
// estimate is M exactly and lambda_k = 3/4 + cos(2 pi k / 10) / 4 (all positive). Backward
// stable eigensolvers give |d lambda| <~ n eps ||M|| ~ 1e-14; we allow 1e-12. Timescales:
// |dt / t| = |d lambda| / (lambda |ln lambda|) <~ 1e-12 for lambda in [0.5, 0.953].
TEST(MsmSpectrum, RingClosedForm) {
  const int n = 10;
  const double p = 0.125;
  const Eigen::MatrixXd c = 800.0 * ring_matrix(n, p);
  const ionmsm::MarkovModel model = ionmsm::estimate_markov_model(lag_from_matrix(10, c), n);
  const Eigen::MatrixXd m(model.transition_matrix);
  EXPECT_EQ(m, ring_matrix(n, p));
  const std::vector<double> expected = ring_eigenvalues_sorted(n, p);

  ionmsm::SpectrumOptions so;
  so.right_vectors = so.left_vectors = true;
  const ionmsm::Spectrum general = ionmsm::compute_spectrum(m, so);
  const ionmsm::Spectrum sym = ionmsm::compute_reversible_spectrum(m, model.stationary, so);
  EXPECT_FALSE(general.symmetrized);
  EXPECT_TRUE(sym.symmetrized);
  for (const ionmsm::Spectrum* sp : {&general, &sym}) {
    ASSERT_EQ(sp->eigenvalues.size(), n);
    EXPECT_EQ(sp->method_used, ionmsm::SpectrumMethod::Dense);
    EXPECT_EQ(sp->status, ionmsm::SpectrumStatus::Ok);
    for (int k = 0; k < n; ++k) {
      EXPECT_NEAR(sp->eigenvalues(k).real(), expected[k], 1e-12) << k;
      EXPECT_NEAR(sp->eigenvalues(k).imag(), 0.0, 1e-12) << k;
    }
    const Eigen::MatrixXcd& r = sp->right_vectors;
    const Eigen::MatrixXcd& l = sp->left_vectors;
    const Eigen::MatrixXcd mc = m.cast<std::complex<double>>();
    EXPECT_LT((mc * r - r * sp->eigenvalues.asDiagonal()).cwiseAbs().maxCoeff(), 1e-12);
    EXPECT_LT((l.transpose() * mc - sp->eigenvalues.asDiagonal() * l.transpose())
                  .cwiseAbs()
                  .maxCoeff(),
              1e-12);
    // Biorthonormal for the symmetric path; for the general path the degenerate pairs come
    // from R^{-1}, which is biorthonormal as well.
    EXPECT_LT((l.transpose() * r - Eigen::MatrixXcd::Identity(n, n)).cwiseAbs().maxCoeff(), 1e-10);
    EXPECT_LT((r.col(0).real() - Eigen::VectorXd::Constant(n, 0.1)).cwiseAbs().maxCoeff(), 1e-13);
    EXPECT_LT((l.col(0).real() - Eigen::VectorXd::Ones(n)).cwiseAbs().maxCoeff(), 1e-12);
  }

  const double lag_time = 10 * 0.05;  // 10 steps of 0.05 ps
  const auto ts = ionmsm::implied_timescales(sym.eigenvalues, lag_time);
  ASSERT_EQ(ts.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(ts[0].status, TimescaleStatus::Stationary);
  EXPECT_TRUE(std::isinf(ts[0].timescale));
  for (int k = 1; k < n; ++k) {
    EXPECT_EQ(ts[k].status, TimescaleStatus::Ok) << k;
    const double t = -lag_time / std::log(expected[k]);
    EXPECT_NEAR(ts[k].timescale, t, 1e-10 * t) << k;
  }
  // k = 1: lambda = 3/4 + cos(36 deg)/4 = 0.95225425, -ln(lambda) = 0.04892321,
  // t = 0.5 / 0.04892321 = 10.2201 ps
  EXPECT_NEAR(ts[1].timescale, 10.2201, 1e-3);
}


// p = 3/8: lambda_k = 1/4 + 3/4 cos(2 pi k / 10) = 1, 0.857 (x2), 0.482 (x2), 0.018 (x2),
// -0.357 (x2), -0.5. By modulus: 1, 0.857, 0.857, -0.5, 0.482, 0.482, -0.357, -0.357, 0.018,
// 0.018. Negative ones must come out as NonPositive with NaN timescales.
TEST(MsmSpectrum, RingWithNegativeEigenvalues) {
  const int n = 10;
  const double p = 0.375;
  const Eigen::MatrixXd m = ionmsm::nonreversible_mle((800.0 * ring_matrix(n, p)).eval());
  const std::vector<double> expected = ring_eigenvalues_sorted(n, p);
  ASSERT_NEAR(expected[3], -0.5, 1e-15);
  const Eigen::VectorXd pi = Eigen::VectorXd::Constant(n, 1.0 / n);
  for (int path = 0; path < 2; ++path) {
    const ionmsm::Spectrum sp = path == 0 ? ionmsm::compute_spectrum(m)
                                          : ionmsm::compute_reversible_spectrum(m, pi);
    ASSERT_EQ(sp.eigenvalues.size(), n);
    for (int k = 0; k < n; ++k) EXPECT_NEAR(sp.eigenvalues(k).real(), expected[k], 1e-12) << k;
    const auto ts = ionmsm::implied_timescales(sp.eigenvalues, 1.0);
    const TimescaleStatus want[] = {TimescaleStatus::Stationary, TimescaleStatus::Ok,
                                    TimescaleStatus::Ok,         TimescaleStatus::NonPositive,
                                    TimescaleStatus::Ok,         TimescaleStatus::Ok,
                                    TimescaleStatus::NonPositive, TimescaleStatus::NonPositive,
                                    TimescaleStatus::Ok,         TimescaleStatus::Ok};
    for (int k = 0; k < n; ++k) {
      EXPECT_EQ(ts[k].status, want[k]) << "path " << path << " k " << k;
      if (want[k] == TimescaleStatus::NonPositive) {  // flagged, timescale from |lambda|
        const double t = -1.0 / std::log(std::abs(expected[k]));
        EXPECT_NEAR(ts[k].timescale, t, 1e-9 * t) << k;
      }
      if (want[k] == TimescaleStatus::Ok) {
        const double t = -1.0 / std::log(expected[k]);
        EXPECT_NEAR(ts[k].timescale, t, 1e-9 * t) << k;
      }
    }
  }
}


// Random non-reversible chain: M R = R Lambda, L^T M = Lambda L^T, L^T R = I, r_1 = pi, l_1 = 1.
TEST(MsmSpectrum, GeneralPathLeftAndRightVectors) {
  Rng rng(77);
  const Eigen::MatrixXd m = column_normalise(random_counts(6, rng, 0.2, 9));
  ionmsm::SpectrumOptions so;
  so.right_vectors = so.left_vectors = true;
  const ionmsm::Spectrum sp = ionmsm::compute_spectrum(m, so);
  ASSERT_EQ(sp.status, ionmsm::SpectrumStatus::Ok) << sp.message;
  const Eigen::MatrixXcd mc = m.cast<std::complex<double>>();
  const Eigen::MatrixXcd& r = sp.right_vectors;
  const Eigen::MatrixXcd& l = sp.left_vectors;
  EXPECT_LT((mc * r - r * sp.eigenvalues.asDiagonal()).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_LT((l.transpose() * mc - sp.eigenvalues.asDiagonal() * l.transpose()).cwiseAbs().maxCoeff(),
            1e-12);
  EXPECT_LT((l.transpose() * r - Eigen::MatrixXcd::Identity(6, 6)).cwiseAbs().maxCoeff(), 1e-10);
  EXPECT_NEAR(sp.eigenvalues(0).real(), 1.0, 1e-13);
  const Eigen::VectorXd pi = ionmsm::stationary_distribution(m);
  EXPECT_LT((r.col(0) - pi.cast<std::complex<double>>()).cwiseAbs().maxCoeff(), 1e-13);
  EXPECT_LT((l.col(0) - Eigen::VectorXcd::Ones(6)).cwiseAbs().maxCoeff(), 1e-12);
  for (int k = 1; k < 6; ++k)
    EXPECT_LE(std::abs(sp.eigenvalues(k)), std::abs(sp.eigenvalues(k - 1)) + 1e-10);

  so.num_eigenvalues = 3;
  const ionmsm::Spectrum three = ionmsm::compute_spectrum(m, so);
  ASSERT_EQ(three.eigenvalues.size(), 3);
  EXPECT_EQ(three.right_vectors.cols(), 3);
  EXPECT_LT((three.eigenvalues - sp.eigenvalues.head(3)).cwiseAbs().maxCoeff(), 1e-14);
  // The Spectra path on a tiny matrix (full Krylov space) gives the same eigenvalues; it has
  // no left vectors.
  so.method = ionmsm::SpectrumMethod::Sparse;
  EXPECT_THROW(ionmsm::compute_spectrum(m, so), std::invalid_argument);
  so.left_vectors = false;
  const ionmsm::Spectrum sparse = ionmsm::compute_spectrum(m, so);
  EXPECT_EQ(sparse.method_used, ionmsm::SpectrumMethod::Sparse);
  ASSERT_EQ(sparse.eigenvalues.size(), 3);
  EXPECT_LT((sparse.eigenvalues - sp.eigenvalues.head(3)).cwiseAbs().maxCoeff(), 1e-10);
  // Reversible path refuses a non-reversible matrix.
  EXPECT_THROW(ionmsm::compute_reversible_spectrum(m, pi), std::invalid_argument);
}


// 2500-site reversible chain made of 5 metastable clusters of 500 sites (random sparse
// intra-cluster hops, weak inter-cluster links): 5 eigenvalues close to 1, well separated from
// the bulk. Auto uses Spectra for n > 2000; the leading eigenvalues must equal the dense ones.
TEST(MsmSpectrum, SparsePathMatchesDenseOn2500Sites) {
  const int clusters = 5, per = 500, n = clusters * per;
  Rng rng(99);
  std::vector<Eigen::Triplet<double>> t;
  auto link = [&](int a, int b, double w) {
    t.emplace_back(a, b, w);
    t.emplace_back(b, a, w);
  };
  for (int cl = 0; cl < clusters; ++cl) {
    const int base = cl * per;
    for (int k = 0; k < per; ++k) {
      const int a = base + k;
      t.emplace_back(a, a, 0.5 + rng.uniform());
      link(a, base + (k + 1) % per, 0.5 + rng.uniform());
      for (int e = 0; e < 3; ++e) link(a, base + static_cast<int>(rng.below(per)), 0.5 + rng.uniform());
    }
    if (cl + 1 < clusters)
      for (int e = 0; e < 3; ++e)
        link(base + static_cast<int>(rng.below(per)), base + per + static_cast<int>(rng.below(per)),
             1e-3 * (0.5 + rng.uniform()));
  }
  SpMat f(n, n);
  f.setFromTriplets(t.begin(), t.end());  // symmetric flux
  ionmsm::MarkovModel model;
  {
    const auto r = ionmsm::reversible_mle(f);  // symmetric counts: exact in one step
    ASSERT_TRUE(r.converged()) << r.message;
    model.transition_matrix = r.transition_matrix;
    model.stationary = r.stationary;
  }
  const SpMat& m = model.transition_matrix;
  const Eigen::VectorXd& pi = model.stationary;

  ionmsm::SpectrumOptions so;
  so.num_eigenvalues = 5;
  so.right_vectors = true;
  const ionmsm::Spectrum sparse = ionmsm::compute_reversible_spectrum(m, pi, so);
  EXPECT_EQ(sparse.method_used, ionmsm::SpectrumMethod::Sparse);
  ASSERT_EQ(sparse.status, ionmsm::SpectrumStatus::Ok) << sparse.message;
  ASSERT_EQ(sparse.eigenvalues.size(), 5);

  ionmsm::SpectrumOptions dense_opt;
  dense_opt.method = ionmsm::SpectrumMethod::Dense;
  const ionmsm::Spectrum dense = ionmsm::compute_reversible_spectrum(m, pi, dense_opt);
  ASSERT_EQ(dense.eigenvalues.size(), n);
  EXPECT_EQ(dense.method_used, ionmsm::SpectrumMethod::Dense);
  for (int k = 0; k < 5; ++k)
    EXPECT_NEAR(sparse.eigenvalues(k).real(), dense.eigenvalues(k).real(), 1e-8) << k;
  EXPECT_NEAR(dense.eigenvalues(0).real(), 1.0, 1e-12);
  EXPECT_GT(dense.eigenvalues(4).real(), 0.99);  // metastable modes
  EXPECT_LT(std::abs(dense.eigenvalues(5)), 0.95);

  // Eigenvectors of the sparse path: M r = lambda r, r_1 = pi.
  const Eigen::MatrixXd r = sparse.right_vectors.real();
  for (int k = 0; k < 5; ++k)
    EXPECT_LT((m * r.col(k) - sparse.eigenvalues(k).real() * r.col(k)).cwiseAbs().maxCoeff(), 1e-9);
  // r_1 vs pi: an eigenvector is only accurate to ~ residual / gap, and the gap between
  // lambda_1 = 1 and the metastable lambda_2 is ~1e-6 here (Spectra residual tolerance 1e-12
  // relative => |d u| <~ 1e-6 in norm, |d r_i| = sqrt(pi_i) |d u_i| <~ 1e-9).
  EXPECT_LT((r.col(0) - pi).cwiseAbs().maxCoeff(), 1e-9);

  // Both sparse modes (shift-invert, the default, and plain largest-modulus), on both the
  // symmetric (Lanczos) and the general (Arnoldi) path, give the same leading eigenvalues.
  so.right_vectors = false;
  for (auto mode : {ionmsm::SparseMode::ShiftInvert, ionmsm::SparseMode::LargestModulus}) {
    so.sparse_mode = mode;
    for (int path = 0; path < 2; ++path) {
      const ionmsm::Spectrum sp = path == 0 ? ionmsm::compute_reversible_spectrum(m, pi, so)
                                            : ionmsm::compute_spectrum(m, so);
      EXPECT_EQ(sp.method_used, ionmsm::SpectrumMethod::Sparse);
      ASSERT_EQ(sp.status, ionmsm::SpectrumStatus::Ok) << sp.message;
      ASSERT_EQ(sp.eigenvalues.size(), 5);
      for (int k = 0; k < 5; ++k) {
        EXPECT_NEAR(sp.eigenvalues(k).real(), dense.eigenvalues(k).real(), 1e-8) << path << k;
        EXPECT_NEAR(sp.eigenvalues(k).imag(), 0.0, 1e-8) << path << k;
      }
    }
  }
}


// Path of 3000 sites (reflecting ends, p = 1/4 per neighbour, ends stay with 3/4): the
// eigenvalues 1 - 2p (1 - cos(pi k / N)), k = 0..N-1, are non-degenerate but cluster at 1
// (1 - lambda_1 = 2.7e-7, 1 - lambda_5 = 6.9e-6): diffusive modes of a large cell. Counts
// 4 M are exact integers. Shift-invert resolves them; the plain largest-modulus mode cannot
// within a few restarts and must say so through its status.
TEST(MsmSpectrum, ShiftInvertResolvesClusteredSlowModes) {
  const int n = 3000;
  const double p = 0.25;
  const SpMat c = reflecting_path_counts(n);
  const SpMat m = ionmsm::nonreversible_mle(c);
  const Eigen::VectorXd pi = ionmsm::stationary_distribution(m);
  // uniform up to the conditioning of the pinned system (condition ~ the mean hitting time of
  // the pinned end, ~n^2 = 9e6, times machine epsilon: ~1e-9 relative; measured 2e-10 with
  // AVX-512 kernels, below 3e-12 with SSE2)
  EXPECT_LT((pi.array() * n - 1.0).abs().maxCoeff(), 1e-8);
  const int k = 6;
  ionmsm::SpectrumOptions so;
  so.num_eigenvalues = k;
  const double dt = 0.01;
  for (int path = 0; path < 2; ++path) {
    const ionmsm::Spectrum sp = path == 0 ? ionmsm::compute_reversible_spectrum(m, pi, so)
                                          : ionmsm::compute_spectrum(m, so);
    EXPECT_EQ(sp.method_used, ionmsm::SpectrumMethod::Sparse);
    ASSERT_EQ(sp.status, ionmsm::SpectrumStatus::Ok) << sp.message;
    ASSERT_EQ(sp.eigenvalues.size(), k);
    const auto ts = ionmsm::implied_timescales(sp.eigenvalues, dt);
    for (int a = 0; a < k; ++a) {
      const double lambda = 1.0 - 2.0 * p * (1.0 - std::cos(kPi * a / n));
      EXPECT_NEAR(sp.eigenvalues(a).real(), lambda, 1e-12) << path << " " << a;
      if (a == 0) continue;
      // |dt/t| = |d lambda| / (lambda |ln lambda|) <~ 1e-13 / 2.7e-7 ~ 4e-7
      const double t_exact = -dt / std::log(lambda);
      ASSERT_EQ(ts[a].status, TimescaleStatus::Ok);
      EXPECT_NEAR(ts[a].timescale, t_exact, 2e-6 * t_exact) << path << " " << a;
    }
  }
  so.sparse_mode = ionmsm::SparseMode::LargestModulus;
  so.sparse_max_restarts = 10;
  const ionmsm::Spectrum plain = ionmsm::compute_reversible_spectrum(m, pi, so);
  EXPECT_EQ(plain.status, ionmsm::SpectrumStatus::NotConverged);
  EXPECT_NE(plain.message.find("converged after"), std::string::npos) << plain.message;
  EXPECT_LT(plain.eigenvalues.size(), k);
}


// SparseMode::Auto: the regular (matrix-vector) mode is used only when its result is provably
// the shift-invert set and has no degenerate eigenvalue; otherwise shift-invert, same numbers.
TEST(MsmSpectrum, AutoModeFallsBackToShiftInvertWhenUnsafe) {
  auto spectra = [](const SpMat& m, ionmsm::SparseMode mode, int k) {
    ionmsm::SpectrumOptions so;
    so.method = ionmsm::SpectrumMethod::Sparse;
    so.num_eigenvalues = k;
    so.sparse_mode = mode;
    return ionmsm::compute_spectrum(m, so);
  };
  // (a) random sparse network, symmetric integer counts (real, non-degenerate spectrum with
  // large gaps): the regular mode is taken and agrees with shift-invert.
  {
    const int n = 400;
    std::mt19937 gen(7);
    std::uniform_int_distribution<int> site(0, n - 1), cnt(1, 50);
    std::vector<Eigen::Triplet<double>> t;
    for (int j = 0; j < n; ++j) {
      t.emplace_back(j, j, 200.0 + cnt(gen));
      t.emplace_back((j + 1) % n, j, cnt(gen));
      for (int e = 0; e < 4; ++e) t.emplace_back(site(gen), j, cnt(gen));
    }
    SpMat c(n, n);
    c.setFromTriplets(t.begin(), t.end());
    const SpMat m = ionmsm::nonreversible_mle(SpMat(c + SpMat(c.transpose())));
    const ionmsm::Spectrum si = spectra(m, ionmsm::SparseMode::ShiftInvert, 8);
    const ionmsm::Spectrum au = spectra(m, ionmsm::SparseMode::Auto, 8);
    ASSERT_EQ(si.status, ionmsm::SpectrumStatus::Ok) << si.message;
    ASSERT_EQ(au.status, ionmsm::SpectrumStatus::Ok) << au.message;
    EXPECT_EQ(si.sparse_mode_used, ionmsm::SparseMode::ShiftInvert);
    EXPECT_EQ(au.sparse_mode_used, ionmsm::SparseMode::LargestModulus);
    ASSERT_EQ(au.eigenvalues.size(), 8);
    ASSERT_EQ(si.eigenvalues.size(), 8);
    for (int a = 0; a < 8; ++a) EXPECT_LT(std::abs(au.eigenvalues(a) - si.eigenvalues(a)), 1e-10) << a;
  }
  // (b) periodic 6x6x6 lattice, symmetric hops: 6-fold degenerate slow modes. Auto must not
  // trust the regular mode (a single-vector Krylov method finds extra copies of a degenerate
  // eigenvalue only through round-off, so its multiplicities may differ from shift-invert's):
  // it falls back and gives exactly the shift-invert numbers.
  {
    const int l = 6, n = l * l * l;
    const double p = 0.01;
    std::vector<Eigen::Triplet<double>> t;
    for (int z = 0; z < l; ++z)
      for (int y = 0; y < l; ++y)
        for (int x = 0; x < l; ++x) {
          const int s = x + l * (y + l * z);
          t.emplace_back(s, s, 1.0 - 6.0 * p);
          const int nb[6] = {(x + 1) % l + l * (y + l * z), (x + l - 1) % l + l * (y + l * z),
                             x + l * ((y + 1) % l + l * z), x + l * ((y + l - 1) % l + l * z),
                             x + l * (y + l * ((z + 1) % l)), x + l * (y + l * ((z + l - 1) % l))};
          for (int q : nb) t.emplace_back(q, s, p);
        }
    SpMat m(n, n);
    m.setFromTriplets(t.begin(), t.end());
    const ionmsm::Spectrum au = spectra(m, ionmsm::SparseMode::Auto, 7);
    const ionmsm::Spectrum si = spectra(m, ionmsm::SparseMode::ShiftInvert, 7);
    ASSERT_EQ(au.status, ionmsm::SpectrumStatus::Ok) << au.message;
    EXPECT_EQ(au.sparse_mode_used, ionmsm::SparseMode::ShiftInvert);
    ASSERT_EQ(au.eigenvalues.size(), 7);
    const double lambda1 = 1.0 - 2.0 * p * (1.0 - std::cos(2.0 * kPi / l));
    EXPECT_NEAR(au.eigenvalues(0).real(), 1.0, 1e-12);
    EXPECT_NEAR(au.eigenvalues(1).real(), lambda1, 1e-12);
    for (int a = 0; a < 7; ++a) EXPECT_EQ(au.eigenvalues(a), si.eigenvalues(a)) << a;
  }
  // (c) the clustered 3000-site path (see ShiftInvertResolvesClusteredSlowModes): the regular
  // mode cannot converge within its restart budget; Auto still returns the right values.
  {
    const int n = 3000;
    const SpMat c = reflecting_path_counts(n);
    const SpMat m = ionmsm::nonreversible_mle(c);
    ionmsm::SpectrumOptions so;
    so.num_eigenvalues = 4;
    so.sparse_mode = ionmsm::SparseMode::Auto;
    so.sparse_auto_restarts = 5;
    const Eigen::VectorXd pi = Eigen::VectorXd::Constant(n, 1.0 / n);
    for (int path = 0; path < 2; ++path) {
      const ionmsm::Spectrum sp = path == 0 ? ionmsm::compute_reversible_spectrum(m, pi, so)
                                            : ionmsm::compute_spectrum(m, so);
      ASSERT_EQ(sp.status, ionmsm::SpectrumStatus::Ok) << sp.message;
      EXPECT_EQ(sp.sparse_mode_used, ionmsm::SparseMode::ShiftInvert) << path;
      ASSERT_EQ(sp.eigenvalues.size(), 4);
      for (int a = 0; a < 4; ++a)
        EXPECT_NEAR(sp.eigenvalues(a).real(), 1.0 - 0.5 * (1.0 - std::cos(kPi * a / n)), 1e-12)
            << path << " " << a;
    }
    so.sparse_auto_restarts = 0;
    EXPECT_THROW(ionmsm::compute_spectrum(m, so), std::invalid_argument);
  }
}


// SparseMode::Auto on a realistic model: a periodic 8x8x8 lattice whose hop counts are perturbed
// per (site, direction) (no exact degeneracy, non-reversible: complex-conjugate pairs). The
// number of eigenvalues is chosen so that the cut splits a complex-conjugate pair (the trial
// computes a few more than k, so it can still prove its k values are the shift-invert set).
// Also: on the unperturbed lattice (every column the same values) Auto skips the trial.
TEST(MsmSpectrum, AutoModeAcceptsNoisyLatticeEvenWhenTheCutSplitsAConjugatePair) {
  const int l = 8, n = l * l * l;
  auto lattice = [&](double noise) {
    std::mt19937 gen(11);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    std::vector<Eigen::Triplet<double>> t;
    for (int z = 0; z < l; ++z)
      for (int y = 0; y < l; ++y)
        for (int x = 0; x < l; ++x) {
          const int s = x + l * (y + l * z);
          const int nb[6] = {(x + 1) % l + l * (y + l * z), (x + l - 1) % l + l * (y + l * z),
                             x + l * ((y + 1) % l + l * z), x + l * ((y + l - 1) % l + l * z),
                             x + l * (y + l * ((z + 1) % l)), x + l * (y + l * ((z + l - 1) % l))};
          double hops = 0.0;
          for (int q : nb) {
            const double c = std::round(20000.0 * (1.0 + noise * u(gen)));
            hops += c;
            t.emplace_back(q, s, c);
          }
          t.emplace_back(s, s, 1000000.0 - hops);
        }
    SpMat c(n, n);
    c.setFromTriplets(t.begin(), t.end());
    return ionmsm::nonreversible_mle(c);
  };
  auto spectrum = [](const SpMat& m, ionmsm::SparseMode mode, int k) {
    ionmsm::SpectrumOptions so;
    so.method = ionmsm::SpectrumMethod::Sparse;
    so.num_eigenvalues = k;
    so.sparse_mode = mode;
    return ionmsm::compute_spectrum(m, so);
  };
  const SpMat m = lattice(0.05);
  const ionmsm::Spectrum wide = spectrum(m, ionmsm::SparseMode::ShiftInvert, 30);
  ASSERT_EQ(wide.status, ionmsm::SpectrumStatus::Ok) << wide.message;
  int k = 0;  // eigenvalues k-1 and k (0-based) are a conjugate pair: the cut at k splits it
  for (int i = 10; i + 1 < 30 && k == 0; ++i)
    if (wide.eigenvalues(i).imag() != 0.0 &&
        std::abs(wide.eigenvalues(i + 1) - std::conj(wide.eigenvalues(i))) < 1e-12)
      k = i + 1;
  ASSERT_GT(k, 0) << "no complex-conjugate pair among the 30 slowest eigenvalues";
  const ionmsm::Spectrum si = spectrum(m, ionmsm::SparseMode::ShiftInvert, k);
  const ionmsm::Spectrum au = spectrum(m, ionmsm::SparseMode::Auto, k);
  ASSERT_EQ(si.status, ionmsm::SpectrumStatus::Ok) << si.message;
  ASSERT_EQ(au.status, ionmsm::SpectrumStatus::Ok) << au.message;
  EXPECT_EQ(au.sparse_mode_used, ionmsm::SparseMode::LargestModulus);
  ASSERT_EQ(au.eigenvalues.size(), k);
  ASSERT_EQ(si.eigenvalues.size(), k);
  for (int a = 0; a < k; ++a) {
    // the member of the pair at the cut is arbitrary for both methods
    const double d = std::min(std::abs(au.eigenvalues(a) - si.eigenvalues(a)),
                              std::abs(au.eigenvalues(a) - std::conj(si.eigenvalues(a))));
    EXPECT_LT(d, 1e-10) << a;
  }

  const SpMat sym = lattice(0.0);
  const ionmsm::Spectrum sym_au = spectrum(sym, ionmsm::SparseMode::Auto, 10);
  const ionmsm::Spectrum sym_si = spectrum(sym, ionmsm::SparseMode::ShiftInvert, 10);
  ASSERT_EQ(sym_au.status, ionmsm::SpectrumStatus::Ok) << sym_au.message;
  EXPECT_EQ(sym_au.sparse_mode_used, ionmsm::SparseMode::ShiftInvert);
  EXPECT_EQ(sym_au.sparse_restarts, sym_si.sparse_restarts);
  for (int a = 0; a < 10; ++a) EXPECT_EQ(sym_au.eigenvalues(a), sym_si.eigenvalues(a)) << a;

  // sparse_auto_fallback = false: the trial's result or nothing (the caller falls back itself)
  ionmsm::SpectrumOptions so;
  so.method = ionmsm::SpectrumMethod::Sparse;
  so.num_eigenvalues = 10;
  so.sparse_mode = ionmsm::SparseMode::Auto;
  so.sparse_auto_fallback = false;
  const ionmsm::Spectrum none = ionmsm::compute_spectrum(sym, so);
  EXPECT_EQ(none.status, ionmsm::SpectrumStatus::NotConverged);
  EXPECT_EQ(none.eigenvalues.size(), 0);
  EXPECT_NE(none.message.find("Auto trial rejected"), std::string::npos) << none.message;
  const Eigen::VectorXd pi = Eigen::VectorXd::Constant(n, 1.0 / n);
  const ionmsm::Spectrum none_rev = ionmsm::compute_reversible_spectrum(sym, pi, so);
  EXPECT_EQ(none_rev.status, ionmsm::SpectrumStatus::NotConverged);
  EXPECT_EQ(none_rev.eigenvalues.size(), 0);
  so.num_eigenvalues = k;
  const ionmsm::Spectrum noisy = ionmsm::compute_spectrum(m, so);
  ASSERT_EQ(noisy.status, ionmsm::SpectrumStatus::Ok) << noisy.message;
  EXPECT_EQ(noisy.sparse_mode_used, ionmsm::SparseMode::LargestModulus);
}
