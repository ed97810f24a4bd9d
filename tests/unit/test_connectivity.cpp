// Unit tests of the connectivity module: strongly connected components and the largest
// connected set of a count matrix.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "ionmsm/connectivity.hpp"
#include "msm_test_util.hpp"

using namespace ionmsm;
using namespace msm_test;

namespace {

/// Mutual reachability by Floyd-Warshall closure: the definition of a strongly connected
/// component, independent of Tarjan's algorithm.
std::vector<std::vector<char>> reachability(std::size_t n, const std::vector<Edge>& edges) {
  std::vector<std::vector<char>> r(n, std::vector<char>(n, 0));
  for (std::size_t i = 0; i < n; ++i) r[i][i] = 1;
  for (const auto& e : edges) r[e.first][e.second] = 1;
  for (std::size_t k = 0; k < n; ++k)
    for (std::size_t i = 0; i < n; ++i)
      if (r[i][k])
        for (std::size_t j = 0; j < n; ++j)
          if (r[k][j]) r[i][j] = 1;
  return r;
}

}  // namespace

TEST(Scc, MatchesMutualReachabilityOnRandomGraphs) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    const std::size_t n = 1 + rng() % 25;
    const std::size_t m = rng() % (3 * n);
    std::vector<Edge> edges;
    for (std::size_t k = 0; k < m; ++k) edges.emplace_back(rng() % n, rng() % n);
    const StronglyConnectedComponents scc = strongly_connected_components(n, edges);
    ASSERT_EQ(scc.component.size(), n);
    const auto r = reachability(n, edges);
    std::set<std::size_t> labels;
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_LT(scc.component[i], scc.count);
      labels.insert(scc.component[i]);
      for (std::size_t j = 0; j < n; ++j)
        EXPECT_EQ(scc.component[i] == scc.component[j], r[i][j] && r[j][i])
            << "trial " << trial << " nodes " << i << ", " << j;
    }
    EXPECT_EQ(labels.size(), scc.count);
  }
}

TEST(Scc, ChainOfOneMillionNodesNeedsNoRecursion) {
  const std::size_t n = 1000000;
  std::vector<Edge> edges;
  for (std::size_t i = 0; i + 1 < n; ++i) edges.emplace_back(i, i + 1);
  edges.emplace_back(n - 1, 0);  // closes the cycle: one component
  EXPECT_EQ(strongly_connected_components(n, edges).count, 1u);
  edges.pop_back();  // an open chain: every node alone
  EXPECT_EQ(strongly_connected_components(n, edges).count, n);
}

TEST(Scc, EmptyGraphAndBadEdges) {
  EXPECT_EQ(strongly_connected_components(0, {}).count, 0u);
  const StronglyConnectedComponents s = strongly_connected_components(3, {});
  EXPECT_EQ(s.count, 3u);
  EXPECT_THROW(strongly_connected_components(3, {{0, 3}}), std::invalid_argument);
  EXPECT_THROW(strongly_connected_components(3, {{5, 1}}), std::invalid_argument);
}


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

// The ring with a leak (tests/integration/test_analyze.py "ring_leak"): 8 ring sites, an
// absorbing site 8 with stays only, one one-way transition 0 -> 8 and one unvisited site 9.
TEST(WithinComponents, DropsOneWayTransitionsBetweenComponents) {
  LagCounts lag;
  lag.lag_steps = 10;
  lag.n_origins = 1000;
  for (SiteIndex i = 0; i < 8; ++i) {
    lag.rows.push_back({i, i, {0, 0, 0}, 6});
    lag.rows.push_back({i, static_cast<SiteIndex>((i + 1) % 8), {i == 7 ? 1 : 0, 0, 0}, 3});
  }
  lag.rows.push_back({0, 8, {0, 0, 0}, 1});
  lag.rows.push_back({8, 8, {0, 0, 0}, 1000});
  const ComponentCounts cc = within_components(lag, 10);
  EXPECT_EQ(cc.one_way_count, 1u);
  EXPECT_EQ(cc.n_components, 2u);  // the ring and site 8; site 9 was never visited
  EXPECT_EQ(cc.counts.lag_steps, 10);
  EXPECT_EQ(cc.counts.n_origins, 1000u);
  ASSERT_EQ(cc.counts.rows.size(), lag.rows.size() - 1);
  std::uint64_t kept = 0;
  for (const auto& r : cc.counts.rows) {
    EXPECT_FALSE(r.from == 0 && r.to == 8);
    kept += r.count;
  }
  EXPECT_EQ(kept, lag.total() - 1);
  lag.rows.push_back({0, 10, {0, 0, 0}, 1});
  EXPECT_THROW(within_components(lag, 10), std::invalid_argument);
}
