// Unit tests of src/ionmsm/leading_spectrum.hpp: the solver choice returns the leading
// eigenvalues of the full dense spectrum, for reversible and non-reversible models, small
// (dense) and large (sparse) ones.
#include "ionmsm/leading_spectrum.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include <Eigen/Eigenvalues>

#include "msm_test_util.hpp"

using namespace ionmsm;
using namespace msm_test;

namespace {

/// Moduli of every eigenvalue of the dense transition matrix, decreasing: the reference.
std::vector<double> dense_moduli(const MarkovModel& m) {
  const Eigen::MatrixXd t(m.transition_matrix);
  Eigen::EigenSolver<Eigen::MatrixXd> es(t, false);
  std::vector<double> out;
  for (Eigen::Index k = 0; k < es.eigenvalues().size(); ++k)
    out.push_back(std::abs(es.eigenvalues()(k)));
  std::sort(out.begin(), out.end(), std::greater<>());
  return out;
}

MarkovModel model_of(const Eigen::MatrixXd& counts, Estimator e = Estimator::NonReversible) {
  MsmOptions o;
  o.estimator = e;
  return estimate_markov_model(lag_from_matrix(1, counts), static_cast<std::size_t>(counts.rows()),
                               o);
}

void expect_leading(const MarkovModel& m, const Spectrum& sp, std::size_t k) {
  const std::vector<double> want = dense_moduli(m);
  ASSERT_GE(static_cast<std::size_t>(sp.eigenvalues.size()), k);
  for (std::size_t i = 0; i < k; ++i)
    EXPECT_NEAR(std::abs(sp.eigenvalues(static_cast<Eigen::Index>(i))), want[i], 1e-8) << i;
}

}  // namespace

TEST(LeadingSpectrum, ExactBalanceOnlyForSymmetricCounts) {
  Rng rng(5);
  const Eigen::MatrixXd c = random_counts(12, rng, 0.0, 20);
  EXPECT_TRUE(exactly_balanced(model_of(c + c.transpose())));
  EXPECT_FALSE(exactly_balanced(model_of(c)));
  // a ring with drift (per 100: stay 60, forward 30, backward 10) is never balanced; the
  // symmetric ring is
  Eigen::MatrixXd drift = Eigen::MatrixXd::Zero(8, 8);
  for (int j = 0; j < 8; ++j) {
    drift(j, j) = 60;
    drift((j + 1) % 8, j) = 30;
    drift((j + 7) % 8, j) = 10;
  }
  EXPECT_FALSE(exactly_balanced(model_of(drift)));
  EXPECT_TRUE(exactly_balanced(model_of(ring_matrix(8, 0.2) * 100.0)));
}

TEST(LeadingSpectrum, SmallModelsGetEveryEigenvalue) {
  Rng rng(7);
  const Eigen::MatrixXd c = random_counts(40, rng, 0.2, 30);
  const MarkovModel m = model_of(c);
  const Spectrum sp = leading_spectrum(m, Estimator::NonReversible, 5);
  EXPECT_EQ(sp.method_used, SpectrumMethod::Dense);
  EXPECT_EQ(sp.eigenvalues.size(), m.transition_matrix.rows());
  expect_leading(m, sp, 40);
}

TEST(LeadingSpectrum, LargeModelsGetTheLeadingEigenvaluesSparsely) {
  Rng rng(9);
  const Eigen::MatrixXd c = random_counts(400, rng, 0.97, 50) +
                            50.0 * Eigen::MatrixXd::Identity(400, 400);
  for (const Eigen::MatrixXd& counts : {Eigen::MatrixXd(c), Eigen::MatrixXd(c + c.transpose())}) {
    for (Estimator e : {Estimator::NonReversible, Estimator::Reversible}) {
      const MarkovModel m = model_of(counts, e);
      const Spectrum sp = leading_spectrum(m, e, 6);
      EXPECT_EQ(sp.method_used, SpectrumMethod::Sparse);
      EXPECT_EQ(sp.eigenvalues.size(), kDefaultSparseEigenvalues);  // max(6, default)
      expect_leading(m, sp, static_cast<std::size_t>(kDefaultSparseEigenvalues));
    }
  }
}
