// Unit tests of src/ionmsm/ck.hpp. Conventions: C(i,j) = transitions j -> i, column-stochastic
// M(i,j) = P(j -> i). Every expected value is derived by hand or in closed form in a comment.
#include "ionmsm/ck.hpp"

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


// =============================================================================== Chapman-Kolmogorov

namespace {

// Slow, independent reference for eq. 6.
Eigen::MatrixXd slow_product(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(a.rows(), b.cols());
  for (Eigen::Index i = 0; i < a.rows(); ++i)
    for (Eigen::Index j = 0; j < b.cols(); ++j)
      for (Eigen::Index k = 0; k < a.cols(); ++k) c(i, j) += a(i, k) * b(k, j);
  return c;
}

// ||A||_2 = sqrt(largest eigenvalue of A^T A), by power iteration (20000 steps: the error
// decays like (s2/s1)^(2k), far below 1e-15 for the small random matrices used here).
double slow_two_norm(const Eigen::MatrixXd& a) {
  Eigen::VectorXd v = Eigen::VectorXd::Ones(a.cols());
  for (Eigen::Index i = 0; i < v.size(); ++i) v(i) += 0.1 * static_cast<double>(i);
  v.normalize();
  double lambda = 0.0;
  for (int it = 0; it < 20000; ++it) {
    const Eigen::VectorXd w = a.transpose() * (a * v);
    lambda = v.dot(w);
    const double nw = w.norm();
    if (nw == 0.0) return 0.0;
    v = w / nw;
  }
  return std::sqrt(lambda);
}

// Restrict to the common sites and renormalise columns (the documented convention).
Eigen::MatrixXd slow_restrict(const ionmsm::LagTransitionMatrix& t,
                              const std::vector<std::size_t>& common) {
  std::vector<std::size_t> pos;
  for (std::size_t s : common)
    pos.push_back(static_cast<std::size_t>(
        std::find(t.sites.begin(), t.sites.end(), s) - t.sites.begin()));
  Eigen::MatrixXd r(common.size(), common.size());
  for (std::size_t j = 0; j < common.size(); ++j) {
    double sum = 0.0;
    for (std::size_t i = 0; i < common.size(); ++i) sum += t.transition_matrix(pos[i], pos[j]);
    for (std::size_t i = 0; i < common.size(); ++i)
      r(i, j) = t.transition_matrix(pos[i], pos[j]) / sum;
  }
  return r;
}

}  // namespace

// M(k tau) = M(tau)^k exactly: err = 0 up to round-off of the products (~1e-16).
TEST(MsmCk, ExactlyMarkovChainHasZeroError) {
  Rng rng(3);
  const Eigen::MatrixXd m = column_normalise(random_counts(7, rng, 0.3, 10));
  std::vector<ionmsm::LagTransitionMatrix> models;
  Eigen::MatrixXd power = m;
  for (int k = 1; k <= 4; ++k) {
    models.push_back({5 * k, {}, power});
    power = (power * m).eval();
  }
  std::reverse(models.begin(), models.end());  // input order must not matter
  const auto recs = ionmsm::chapman_kolmogorov_test(models);
  ASSERT_EQ(recs.size(), 4u);  // (5,2) (5,3) (5,4) (10,2)
  const std::int64_t want_lag[] = {5, 5, 5, 10};
  const int want_n[] = {2, 3, 4, 2};
  for (std::size_t a = 0; a < 4; ++a) {
    EXPECT_EQ(recs[a].lag_steps, want_lag[a]);
    EXPECT_EQ(recs[a].n, want_n[a]);
    EXPECT_EQ(recs[a].n_sites, 7u);
    EXPECT_LT(recs[a].err, 1e-12) << a;
    EXPECT_GE(recs[a].err, 0.0);
  }
  ionmsm::CkOptions opt;
  opt.max_n = 3;
  EXPECT_EQ(ionmsm::chapman_kolmogorov_test(models, opt).size(), 3u);
  // Misuse.
  models.push_back(models.front());
  EXPECT_THROW(ionmsm::chapman_kolmogorov_test(models), std::invalid_argument);
  models.pop_back();
  models[0].transition_matrix(0, 0) += 0.1;
  EXPECT_THROW(ionmsm::chapman_kolmogorov_test(models), std::invalid_argument);
}


// Independent random count matrices at lags 2, 4, 6, 8, 12 on different site subsets of 10
// sites; the library must agree with the slow reference (intersection, renormalisation,
// repeated multiplication, power iteration) to 1e-8, on both 2-norm paths.
TEST(MsmCk, AgreesWithSlowReference) {
  Rng rng(8);
  const std::vector<std::pair<std::int64_t, std::vector<std::size_t>>> spec = {
      {2, {0, 1, 2, 3, 4, 5, 6, 7, 8}},
      {4, {1, 2, 3, 4, 5, 6, 7, 8, 9}},
      {6, {0, 1, 2, 3, 4, 6, 7, 8, 9}},
      {8, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
      {12, {0, 1, 2, 3, 4, 5, 6, 7, 8}}};
  std::vector<ionmsm::LagTransitionMatrix> models;
  for (const auto& s : spec) {
    const int k = static_cast<int>(s.second.size());
    models.push_back({s.first, s.second, column_normalise(random_counts(k, rng, 0.5, 50))});
  }
  std::vector<ionmsm::CkRecord> expected;
  for (std::size_t a = 0; a < models.size(); ++a)
    for (std::size_t b = a + 1; b < models.size(); ++b) {
      if (models[b].lag_steps % models[a].lag_steps != 0) continue;
      const int n = static_cast<int>(models[b].lag_steps / models[a].lag_steps);
      std::vector<std::size_t> common;
      std::set_intersection(models[a].sites.begin(), models[a].sites.end(),
                            models[b].sites.begin(), models[b].sites.end(),
                            std::back_inserter(common));
      const Eigen::MatrixXd ma = slow_restrict(models[a], common);
      const Eigen::MatrixXd mb = slow_restrict(models[b], common);
      Eigen::MatrixXd p = ma;
      for (int k = 1; k < n; ++k) p = slow_product(p, ma);
      expected.push_back({models[a].lag_steps, n, slow_two_norm(mb - p) / slow_two_norm(mb),
                          common.size()});
    }
  ASSERT_EQ(expected.size(), 7u);  // 2:(4,6,8,12) 4:(8,12) 6:(12)
  for (std::size_t svd_max : {std::size_t(500), std::size_t(0)}) {  // BDCSVD, then Lanczos
    ionmsm::CkOptions opt;
    opt.dense_svd_max = svd_max;
    const auto recs = ionmsm::chapman_kolmogorov_test(models, opt);
    ASSERT_EQ(recs.size(), expected.size());
    for (std::size_t a = 0; a < recs.size(); ++a) {
      EXPECT_EQ(recs[a].lag_steps, expected[a].lag_steps);
      EXPECT_EQ(recs[a].n, expected[a].n);
      EXPECT_EQ(recs[a].n_sites, expected[a].n_sites);
      EXPECT_GT(expected[a].err, 1e-3);  // not Markov: a non-trivial comparison
      EXPECT_NEAR(recs[a].err, expected[a].err, 1e-8) << "svd_max " << svd_max << " rec " << a;
    }
  }
}


// Common-set rule: in the tau model site 2 jumps only to site 1; site 1 is absent at 2 tau, so
// on {0, 2} site 2's column is empty and site 2 is removed too; {0} remains with err = 0.
TEST(MsmCk, SitesWithoutWeightInTheCommonSetAreRemoved) {
  Eigen::MatrixXd a(3, 3);  // sites {0, 1, 2}
  a << 0.5, 0.5, 0.0,  //
      0.5, 0.0, 1.0,   //
      0.0, 0.5, 0.0;
  Eigen::MatrixXd b(3, 3);  // sites {0, 2, 3}
  b << 0.2, 0.3, 0.1,  //
      0.3, 0.3, 0.4,   //
      0.5, 0.4, 0.5;
  const auto recs = ionmsm::chapman_kolmogorov_test(
      std::vector<ionmsm::LagTransitionMatrix>{{1, {0, 1, 2}, a}, {2, {0, 2, 3}, b}});
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].n_sites, 1u);
  EXPECT_EQ(recs[0].err, 0.0);
  // Disjoint site sets: an explicit NaN record.
  const auto none = ionmsm::chapman_kolmogorov_test(
      std::vector<ionmsm::LagTransitionMatrix>{{1, {0, 1, 2}, a}, {3, {3, 4, 5}, b}});
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].n, 3);
  EXPECT_EQ(none[0].n_sites, 0u);
  EXPECT_TRUE(std::isnan(none[0].err));
}


TEST(MsmCk, TwoNormPaths) {
  Rng rng(1);
  Eigen::MatrixXd a(120, 80);
  for (Eigen::Index j = 0; j < a.cols(); ++j)
    for (Eigen::Index i = 0; i < a.rows(); ++i) a(i, j) = rng.uniform() - 0.3;
  const double svd = Eigen::JacobiSVD<Eigen::MatrixXd>(a).singularValues()(0);
  EXPECT_NEAR(ionmsm::matrix_two_norm(a), svd, 1e-12 * svd);
  EXPECT_NEAR(ionmsm::matrix_two_norm(a, 10), svd, 1e-10 * svd);  // Lanczos path
  EXPECT_EQ(ionmsm::matrix_two_norm(Eigen::MatrixXd::Zero(50, 50).eval(), 10), 0.0);
  EXPECT_EQ(ionmsm::matrix_two_norm(Eigen::MatrixXd()), 0.0);
  Eigen::Matrix2d d;
  d << 3, 0, 0, -4;
  EXPECT_NEAR(ionmsm::matrix_two_norm(d), 4.0, 1e-15);
}


// The MarkovModel overloads: CK straight from estimated models of exactly Markov counts.
TEST(MsmCk, FromEstimatedModels) {
  const int n = 6;
  const Eigen::MatrixXd m = ring_matrix(n, 0.125);
  std::vector<ionmsm::MarkovModel> models;
  Eigen::MatrixXd power = Eigen::MatrixXd::Identity(n, n);
  for (int l = 1; l <= 3; ++l) {
    power = (power * m).eval();
    models.push_back(ionmsm::estimate_markov_model(lag_from_matrix(10 * l, 512.0 * power, true), n));
  }
  const auto recs = ionmsm::chapman_kolmogorov_test(models);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].n, 2);
  EXPECT_EQ(recs[1].n, 3);
  for (const auto& r : recs) EXPECT_LT(r.err, 1e-14);
}


// The matrix-free CK path (sparse products M(M(...M x)) and Lanczos on A^T A, never forming
// M^n) equals the dense path (repeated dense products, SVD) to 1e-8 on random sparse chains
// with different site subsets per lag, and the MarkovModel overload gives the same records.
TEST(MsmCk, MatrixFreePathEqualsDensePath) {
  Rng rng(21);
  const int n = 60;
  std::vector<ionmsm::LagTransitionMatrix> models;
  for (std::int64_t lag : {3, 6, 9, 12, 24}) {
    std::vector<std::size_t> sites;
    for (int s = 0; s < n; ++s)
      if (rng.uniform() > 0.05 || s == 0) sites.push_back(static_cast<std::size_t>(s));
    const int k = static_cast<int>(sites.size());
    models.push_back({lag, sites, column_normalise(random_counts(k, rng, 0.9, 40))});
  }
  ionmsm::CkOptions dense, free;
  dense.dense_max_sites = 1000;
  free.dense_max_sites = 0;
  const auto rd = ionmsm::chapman_kolmogorov_test(models, dense);
  const auto rf = ionmsm::chapman_kolmogorov_test(models, free);
  ASSERT_EQ(rd.size(), 7u);  // 3:(6,9,12,24) 6:(12,24) 12:(24)
  ASSERT_EQ(rf.size(), rd.size());
  for (std::size_t a = 0; a < rd.size(); ++a) {
    EXPECT_FALSE(rd[a].matrix_free);
    EXPECT_TRUE(rf[a].matrix_free);
    EXPECT_TRUE(rf[a].converged);
    EXPECT_EQ(rf[a].lag_steps, rd[a].lag_steps);
    EXPECT_EQ(rf[a].n, rd[a].n);
    EXPECT_EQ(rf[a].n_sites, rd[a].n_sites);
    EXPECT_GT(rd[a].err, 1e-3);
    EXPECT_NEAR(rf[a].err, rd[a].err, 1e-8) << a;
  }
  // Estimated models (sparse input, no dense conversion on the matrix-free path).
  std::vector<ionmsm::MarkovModel> est;
  for (const auto& m : models) {
    Eigen::MatrixXd c = Eigen::MatrixXd::Zero(n, n);
    for (std::size_t j = 0; j < m.sites.size(); ++j)
      for (std::size_t i = 0; i < m.sites.size(); ++i)
        c(static_cast<Eigen::Index>(m.sites[i]), static_cast<Eigen::Index>(m.sites[j])) =
            std::round(1e6 * m.transition_matrix(static_cast<Eigen::Index>(i),
                                                 static_cast<Eigen::Index>(j)));
    est.push_back(ionmsm::estimate_markov_model(lag_from_matrix(m.lag_steps, c, true), n));
  }
  const auto ed = ionmsm::chapman_kolmogorov_test(est, dense);
  const auto ef = ionmsm::chapman_kolmogorov_test(est, free);
  ASSERT_EQ(ed.size(), ef.size());
  for (std::size_t a = 0; a < ed.size(); ++a) EXPECT_NEAR(ef[a].err, ed[a].err, 1e-8) << a;
}
