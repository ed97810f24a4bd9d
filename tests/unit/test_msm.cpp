// Unit tests for src/ionmsm/msm.hpp. Conventions: C(i,j) = transitions j -> i, column-stochastic
// M(i,j) = P(j -> i). Every expected value is derived by hand or in closed form in a comment.
#include "ionmsm/msm.hpp"

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

namespace {

using ionmsm::LagCounts;
using ionmsm::TimescaleStatus;
using SpMat = Eigen::SparseMatrix<double>;
constexpr double kPi = 3.14159265358979323846;

// Deterministic uniform [0,1) from mt19937_64 (std::uniform_real_distribution is not
// reproducible across standard libraries).
struct Rng {
  explicit Rng(std::uint64_t seed) : g(seed) {}
  double uniform() { return static_cast<double>(g() >> 11) * 0x1.0p-53; }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(uniform() * n); }
  std::mt19937_64 g;
};

// LagCounts from an integer-valued count matrix (C(to, from)); `split` spreads each entry over
// two lattice shifts so that the site-level matrix must sum them.
LagCounts lag_from_matrix(std::int64_t lag_steps, const Eigen::MatrixXd& c, bool split = false) {
  LagCounts lag;
  lag.lag_steps = lag_steps;
  for (Eigen::Index from = 0; from < c.cols(); ++from)
    for (Eigen::Index to = 0; to < c.rows(); ++to) {
      const auto n = static_cast<std::uint64_t>(std::llround(c(to, from)));
      if (n == 0) continue;
      ionmsm::TransitionCount r;
      r.from = static_cast<ionmsm::SiteIndex>(from);
      r.to = static_cast<ionmsm::SiteIndex>(to);
      if (split && n >= 2) {
        r.count = n / 2;
        lag.rows.push_back(r);
        r.shift = {1, 0, -1};
        r.count = n - n / 2;
      } else {
        r.count = n;
      }
      lag.rows.push_back(r);
    }
  return lag;
}

// Ring of n sites, hop probability p to each neighbour per lag.
Eigen::MatrixXd ring_matrix(int n, double p) {
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(n, n);
  for (int j = 0; j < n; ++j) {
    m(j, j) = 1.0 - 2.0 * p;
    m((j + 1) % n, j) += p;
    m((j + n - 1) % n, j) += p;
  }
  return m;
}

// Closed form for the ring: lambda_k = 1 - 2p + 2p cos(2 pi k / n), sorted decreasingly by
// modulus (ties by real part, which are equal for the degenerate k / n-k pairs).
std::vector<double> ring_eigenvalues_sorted(int n, double p) {
  std::vector<double> ev;
  for (int k = 0; k < n; ++k) ev.push_back(1.0 - 2.0 * p + 2.0 * p * std::cos(2.0 * kPi * k / n));
  std::sort(ev.begin(), ev.end(), [](double a, double b) {
    if (std::abs(std::abs(a) - std::abs(b)) > 1e-12) return std::abs(a) > std::abs(b);
    return a > b;
  });
  return ev;
}

Eigen::MatrixXd random_counts(int n, Rng& rng, double zero_fraction, int max_count) {
  Eigen::MatrixXd c(n, n);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i)
      c(i, j) = rng.uniform() < zero_fraction ? 0.0 : std::floor(1.0 + rng.uniform() * max_count);
  for (int j = 0; j < n; ++j) c(j, j) += 1.0;  // every column non-empty
  return c;
}

Eigen::MatrixXd column_normalise(const Eigen::MatrixXd& c) {
  Eigen::MatrixXd m = c;
  for (Eigen::Index j = 0; j < c.cols(); ++j) m.col(j) /= c.col(j).sum();
  return m;
}

double max_detailed_balance_violation(const Eigen::MatrixXd& m, const Eigen::VectorXd& pi) {
  double v = 0.0;
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j)
      v = std::max(v, std::abs(pi(j) * m(i, j) - pi(i) * m(j, i)));
  return v;
}

double log_likelihood(const Eigen::MatrixXd& c, const Eigen::MatrixXd& m) {
  double l = 0.0;
  for (Eigen::Index i = 0; i < c.rows(); ++i)
    for (Eigen::Index j = 0; j < c.cols(); ++j)
      if (c(i, j) > 0.0) l += c(i, j) * std::log(m(i, j));
  return l;
}

}  // namespace

// =============================================================================== count matrices

TEST(MsmCounts, SumsOverShiftsWithToFromOrientation) {
  LagCounts lag;
  lag.lag_steps = 10;
  auto add = [&](int from, int to, ionmsm::Image shift, std::uint64_t n) {
    ionmsm::TransitionCount r;
    r.from = from;
    r.to = to;
    r.shift = shift;
    r.count = n;
    lag.rows.push_back(r);
  };
  add(0, 1, {0, 0, 0}, 3);
  add(0, 1, {1, 0, 0}, 4);
  add(0, 1, {0, -1, 0}, 5);
  add(1, 0, {0, 0, 0}, 2);
  add(1, 2, {0, 0, 1}, 1);
  add(2, 2, {0, 0, 0}, 7);
  const Eigen::MatrixXd d = ionmsm::count_matrix_dense(lag, 4);
  Eigen::MatrixXd expected = Eigen::MatrixXd::Zero(4, 4);
  expected(1, 0) = 12.0;  // 0 -> 1 over three shifts: 3 + 4 + 5
  expected(0, 1) = 2.0;
  expected(2, 1) = 1.0;
  expected(2, 2) = 7.0;
  EXPECT_EQ(d, expected);
  const SpMat s = ionmsm::count_matrix_sparse(lag, 4);
  EXPECT_EQ(s.nonZeros(), 4);
  EXPECT_EQ(Eigen::MatrixXd(s), expected);

  LagCounts bad = lag;
  bad.rows.back().to = 4;
  EXPECT_THROW(ionmsm::count_matrix_dense(bad, 4), std::invalid_argument);
  EXPECT_THROW(ionmsm::count_matrix_sparse(bad, 4), std::invalid_argument);
  bad.rows.back().to = 0;
  bad.rows.back().from = -1;
  EXPECT_THROW(ionmsm::count_matrix_sparse(bad, 4), std::invalid_argument);
}

TEST(MsmCounts, RestrictToSites) {
  Eigen::MatrixXd a(3, 3);
  a << 1, 2, 3, 4, 5, 6, 7, 8, 9;
  Eigen::MatrixXd expected(2, 2);
  expected << 9, 7, 3, 1;  // sites {2, 0}: A(2,2) A(2,0); A(0,2) A(0,0)
  EXPECT_EQ(ionmsm::restrict_to_sites(a, {2, 0}), expected);
  const SpMat s = a.sparseView();
  EXPECT_EQ(Eigen::MatrixXd(ionmsm::restrict_to_sites(s, {2, 0})), expected);
  EXPECT_THROW(ionmsm::restrict_to_sites(a, {0, 0}), std::invalid_argument);
  EXPECT_THROW(ionmsm::restrict_to_sites(a, {3}), std::invalid_argument);
}

// =============================================================================== connectivity

// Sites: {0,1,2} strongly connected; one-way bridge 2 -> 3; {3,4} strongly connected; 4 -> 6
// one way (6 only receives); 5 never visited. Components among visited sites: {0,1,2}, {3,4},
// {6}. Largest: {0,1,2}.
TEST(MsmConnectivity, OneWayBridgeAndUnvisitedSite) {
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(7, 7);
  c(0, 0) = 10;
  c(1, 0) = 5;  // 0 -> 1
  c(0, 1) = 5;  // 1 -> 0
  c(2, 1) = 3;
  c(1, 2) = 4;
  c(3, 2) = 1;  // bridge 2 -> 3, never back
  c(4, 3) = 2;
  c(3, 4) = 2;
  c(6, 4) = 1;  // 4 -> 6
  for (int pass = 0; pass < 2; ++pass) {
    const ionmsm::ConnectedSet cs =
        pass == 0 ? ionmsm::largest_connected_set(c)
                  : ionmsm::largest_connected_set(SpMat(c.sparseView()));
    EXPECT_EQ(cs.n_sites, 7u);
    EXPECT_EQ(cs.kept, (std::vector<std::size_t>{0, 1, 2}));
    ASSERT_EQ(cs.dropped.size(), 4u);
    EXPECT_EQ(cs.dropped[0].site, 3u);
    EXPECT_EQ(cs.dropped[0].reason, ionmsm::DropReason::NotStronglyConnected);
    EXPECT_EQ(cs.dropped[1].site, 4u);
    EXPECT_EQ(cs.dropped[1].reason, ionmsm::DropReason::NotStronglyConnected);
    EXPECT_EQ(cs.dropped[2].site, 5u);
    EXPECT_EQ(cs.dropped[2].reason, ionmsm::DropReason::NeverVisited);
    EXPECT_EQ(cs.dropped[3].site, 6u);
    EXPECT_EQ(cs.dropped[3].reason, ionmsm::DropReason::NotStronglyConnected);
    EXPECT_EQ(cs.n_components, 3u);
    EXPECT_FALSE(cs.all_kept());
  }
  EXPECT_STREQ(ionmsm::drop_reason_name(ionmsm::DropReason::NeverVisited), "never visited");

  // The full pipeline on these counts: no NaN anywhere, both estimators.
  const LagCounts lag = lag_from_matrix(5, c, true);
  for (auto est : {ionmsm::Estimator::NonReversible, ionmsm::Estimator::Reversible}) {
    ionmsm::MsmOptions opt;
    opt.estimator = est;
    const ionmsm::MarkovModel model = ionmsm::estimate_markov_model(lag, 7, opt);
    EXPECT_EQ(model.connectivity.kept, (std::vector<std::size_t>{0, 1, 2}));
    const Eigen::MatrixXd m(model.transition_matrix);
    ASSERT_EQ(m.rows(), 3);
    EXPECT_TRUE(m.allFinite());
    EXPECT_TRUE(model.stationary.allFinite());
    EXPECT_TRUE((m.colwise().sum().array() - 1.0).abs().maxCoeff() < 1e-14);
    EXPECT_TRUE(model.estimator_info.converged());
    // Counts restricted to the kept set: the bridge count 2 -> 3 is gone.
    EXPECT_DOUBLE_EQ(Eigen::MatrixXd(model.counts).sum(), 10 + 5 + 5 + 3 + 4);
  }
}

TEST(MsmConnectivity, TieBreaksAndDegenerateGraphs) {
  // Two 2-site components; the one with more internal counts wins ...
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(4, 4);
  c(1, 0) = c(0, 1) = 1;
  c(3, 2) = c(2, 3) = 5;
  EXPECT_EQ(ionmsm::largest_connected_set(c).kept, (std::vector<std::size_t>{2, 3}));
  // ... with equal counts the lower site index wins.
  c(3, 2) = c(2, 3) = 1;
  EXPECT_EQ(ionmsm::largest_connected_set(c).kept, (std::vector<std::size_t>{0, 1}));
  // A single site with self-transitions only.
  Eigen::MatrixXd one = Eigen::MatrixXd::Zero(3, 3);
  one(1, 1) = 4;
  const ionmsm::ConnectedSet s1 = ionmsm::largest_connected_set(one);
  EXPECT_EQ(s1.kept, (std::vector<std::size_t>{1}));
  EXPECT_EQ(s1.dropped[0].reason, ionmsm::DropReason::NeverVisited);
  // One transition 0 -> 1 only: two singleton components without internal counts: nothing can
  // be kept (an MSM on either site would divide by zero).
  Eigen::MatrixXd hop = Eigen::MatrixXd::Zero(2, 2);
  hop(1, 0) = 1;
  const ionmsm::ConnectedSet s2 = ionmsm::largest_connected_set(hop);
  EXPECT_TRUE(s2.kept.empty());
  EXPECT_EQ(s2.dropped.size(), 2u);
  EXPECT_EQ(s2.dropped[0].reason, ionmsm::DropReason::NotStronglyConnected);
  EXPECT_THROW(ionmsm::estimate_markov_model(lag_from_matrix(1, hop), 2), std::invalid_argument);
  // No counts at all.
  const ionmsm::ConnectedSet s3 = ionmsm::largest_connected_set(Eigen::MatrixXd::Zero(3, 3).eval());
  EXPECT_TRUE(s3.kept.empty());
  EXPECT_EQ(s3.n_components, 0u);
  EXPECT_THROW(ionmsm::estimate_markov_model(LagCounts{}, 3), std::invalid_argument);
  // Invalid counts.
  Eigen::MatrixXd neg = Eigen::MatrixXd::Identity(2, 2);
  neg(0, 1) = -1;
  EXPECT_THROW(ionmsm::largest_connected_set(neg), std::invalid_argument);
  EXPECT_THROW(ionmsm::largest_connected_set(Eigen::MatrixXd::Ones(2, 3).eval()),
               std::invalid_argument);
}

// A directed ring of 200,000 sites is one strongly connected set reached through a DFS path of
// length 200,000 (a recursive Tarjan would overflow the stack); cutting one edge leaves only
// singletons.
TEST(MsmConnectivity, DeepGraphsNeedNoRecursion) {
  const int n = 200000;
  std::vector<Eigen::Triplet<double>> t;
  for (int j = 0; j < n; ++j) t.emplace_back((j + 1) % n, j, 1.0);
  SpMat c(n, n);
  c.setFromTriplets(t.begin(), t.end());
  const ionmsm::ConnectedSet all = ionmsm::largest_connected_set(c);
  EXPECT_EQ(all.kept.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(all.n_components, 1u);
  c.coeffRef(0, n - 1) = 0.0;  // cut n-1 -> 0 (explicit zero must be ignored)
  c.coeffRef(7, 7) = 2.0;      // a self-transition makes site 7 the only eligible singleton
  const ionmsm::ConnectedSet cut = ionmsm::largest_connected_set(c);
  EXPECT_EQ(cut.kept, (std::vector<std::size_t>{7}));
  EXPECT_EQ(cut.n_components, static_cast<std::size_t>(n));
  EXPECT_EQ(cut.dropped.size(), static_cast<std::size_t>(n - 1));
}

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
      if (want[k] == TimescaleStatus::NonPositive) {
        EXPECT_TRUE(std::isnan(ts[k].timescale)) << k;
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
  std::vector<Eigen::Triplet<double>> t;
  for (int j = 0; j < n; ++j) {
    t.emplace_back(j, j, (j == 0 || j == n - 1) ? 3.0 : 2.0);
    if (j > 0) t.emplace_back(j - 1, j, 1.0);
    if (j + 1 < n) t.emplace_back(j + 1, j, 1.0);
  }
  SpMat c(n, n);
  c.setFromTriplets(t.begin(), t.end());
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
    std::vector<Eigen::Triplet<double>> t;
    for (int j = 0; j < n; ++j) {
      t.emplace_back(j, j, (j == 0 || j == n - 1) ? 3.0 : 2.0);
      if (j > 0) t.emplace_back(j - 1, j, 1.0);
      if (j + 1 < n) t.emplace_back(j + 1, j, 1.0);
    }
    SpMat c(n, n);
    c.setFromTriplets(t.begin(), t.end());
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
      EXPECT_TRUE(std::isnan(ts[1].timescale));
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
    EXPECT_TRUE(std::isnan(ts[k].timescale));
  }
  // Not reversible (circulating flux): the symmetric path refuses it.
  EXPECT_THROW(ionmsm::compute_reversible_spectrum(m, Eigen::Vector3d::Constant(1.0 / 3)),
               std::invalid_argument);
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
  for (int k : {3, 4, 6, 7, 8}) EXPECT_TRUE(std::isnan(ts[k].timescale)) << k;
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
