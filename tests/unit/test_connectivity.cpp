// Unit tests of the connectivity module: strongly connected components and the largest
// connected set of a count matrix.
#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "ionmsm/msm.hpp"

using namespace ionmsm;

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
