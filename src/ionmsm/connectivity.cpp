// Count matrices and connectivity: see connectivity.hpp.
#include "ionmsm/connectivity.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ionmsm/msm_checks.hpp"

namespace ionmsm {

using namespace detail;

Eigen::MatrixXd count_matrix_dense(const LagCounts& lag, std::size_t nsites) {
  check_lag_rows(lag, nsites, "count_matrix_dense");
  const Index n = static_cast<Index>(nsites);
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(n, n);
  for (const TransitionCount& r : lag.rows) c(r.to, r.from) += static_cast<double>(r.count);
  return c;
}

Eigen::SparseMatrix<double> count_matrix_sparse(const LagCounts& lag, std::size_t nsites) {
  check_lag_rows(lag, nsites, "count_matrix_sparse");
  const Index n = static_cast<Index>(nsites);
  std::vector<Eigen::Triplet<double>> t;
  t.reserve(lag.rows.size());
  for (const TransitionCount& r : lag.rows)
    if (r.count > 0) t.emplace_back(r.to, r.from, static_cast<double>(r.count));
  SpMat c(n, n);
  c.setFromTriplets(t.begin(), t.end());  // sums duplicates (rows differing in shift)
  c.makeCompressed();
  return c;
}

Eigen::MatrixXd restrict_to_sites(const Eigen::MatrixXd& a,
                                  const std::vector<std::size_t>& sites) {
  check_square(a.rows(), a.cols(), "restrict_to_sites", "the matrix");
  check_site_list(sites, a.rows(), "restrict_to_sites");
  const Index m = static_cast<Index>(sites.size());
  Eigen::MatrixXd out(m, m);
  for (Index b = 0; b < m; ++b)
    for (Index a2 = 0; a2 < m; ++a2)
      out(a2, b) = a(static_cast<Index>(sites[a2]), static_cast<Index>(sites[b]));
  return out;
}

Eigen::SparseMatrix<double> restrict_to_sites(const Eigen::SparseMatrix<double>& a,
                                              const std::vector<std::size_t>& sites) {
  check_square(a.rows(), a.cols(), "restrict_to_sites", "the matrix");
  check_site_list(sites, a.rows(), "restrict_to_sites");
  std::vector<Index> position(static_cast<std::size_t>(a.rows()), -1);
  for (std::size_t k = 0; k < sites.size(); ++k) position[sites[k]] = static_cast<Index>(k);
  std::vector<Eigen::Triplet<double>> t;
  for (std::size_t b = 0; b < sites.size(); ++b)
    for (SpMat::InnerIterator it(a, static_cast<Index>(sites[b])); it; ++it) {
      const Index p = position[static_cast<std::size_t>(it.row())];
      if (p >= 0) t.emplace_back(p, static_cast<Index>(b), it.value());
    }
  const Index m = static_cast<Index>(sites.size());
  SpMat out(m, m);
  out.setFromTriplets(t.begin(), t.end());
  out.makeCompressed();
  return out;
}

const char* drop_reason_name(DropReason reason) {
  switch (reason) {
    case DropReason::NeverVisited: return "never visited";
    case DropReason::NotStronglyConnected: return "not strongly connected";
  }
  return "unknown";
}

StronglyConnectedComponents strongly_connected_components(std::size_t n,
                                                          const std::vector<Edge>& edges) {
  // compressed adjacency: the targets of node v are adj[head[v] .. head[v + 1])
  std::vector<std::size_t> head(n + 1, 0);
  for (const auto& e : edges) {
    if (e.first >= n || e.second >= n)
      throw std::invalid_argument("strongly_connected_components: edge (" +
                                  std::to_string(e.first) + ", " + std::to_string(e.second) +
                                  ") outside the " + std::to_string(n) + " nodes");
    ++head[e.first + 1];
  }
  for (std::size_t i = 0; i < n; ++i) head[i + 1] += head[i];
  std::vector<std::size_t> adj(edges.size()), fill(head.begin(), head.end() - 1);
  for (const auto& e : edges) adj[fill[e.first]++] = e.second;

  // iterative Tarjan: no recursion, so 10^5+ nodes cannot overflow the stack
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::vector<std::size_t> index(n, kNone), low(n, 0), stack;
  std::vector<char> on_stack(n, 0);
  StronglyConnectedComponents out;
  out.component.assign(n, 0);
  std::vector<std::pair<std::size_t, std::size_t>> call;  // (node, next edge position)
  std::size_t counter = 0;
  auto open = [&](std::size_t v) {
    index[v] = low[v] = counter++;
    stack.push_back(v);
    on_stack[v] = 1;
    call.emplace_back(v, head[v]);
  };
  for (std::size_t s = 0; s < n; ++s) {
    if (index[s] != kNone) continue;
    open(s);
    while (!call.empty()) {
      const std::size_t v = call.back().first;
      if (call.back().second < head[v + 1]) {
        const std::size_t w = adj[call.back().second++];
        if (index[w] == kNone)
          open(w);
        else if (on_stack[w])
          low[v] = std::min(low[v], index[w]);
        continue;
      }
      if (low[v] == index[v]) {
        for (;;) {
          const std::size_t w = stack.back();
          stack.pop_back();
          on_stack[w] = 0;
          out.component[w] = out.count;
          if (w == v) break;
        }
        ++out.count;
      }
      call.pop_back();
      if (!call.empty()) {
        const std::size_t u = call.back().first;
        low[u] = std::min(low[u], low[v]);
      }
    }
  }
  return out;
}

ConnectedSet largest_connected_set(const Eigen::SparseMatrix<double>& counts) {
  const char* fn = "largest_connected_set";
  check_counts(counts, fn);
  const Index n = counts.rows();
  const std::size_t un = static_cast<std::size_t>(n);

  // Edges j -> i (C(i,j) > 0, i != j); visited flags. Sites never visited belong to no
  // component (-1) and are not counted in n_components.
  std::vector<Edge> edges;
  std::vector<char> visited(un, 0);
  edges.reserve(static_cast<std::size_t>(counts.nonZeros()));
  for (Index j = 0; j < n; ++j) {
    for (SpMat::InnerIterator it(counts, j); it; ++it) {
      if (!(it.value() > 0.0)) continue;
      visited[static_cast<std::size_t>(it.row())] = 1;
      visited[static_cast<std::size_t>(j)] = 1;
      if (it.row() != j)
        edges.emplace_back(static_cast<std::size_t>(j), static_cast<std::size_t>(it.row()));
    }
  }
  const StronglyConnectedComponents scc = strongly_connected_components(un, edges);
  // relabel the components of visited sites 0 .. ncomp-1
  std::vector<Index> comp(un, -1), label(scc.count, -1);
  Index ncomp = 0;
  for (std::size_t v = 0; v < un; ++v) {
    if (!visited[v]) continue;
    Index& l = label[scc.component[v]];
    if (l < 0) l = ncomp++;
    comp[v] = l;
  }

  // Pick the largest component with at least one internal count.
  const std::size_t nc = static_cast<std::size_t>(ncomp);
  std::vector<std::size_t> size(nc, 0), lowest(nc, un);
  std::vector<double> internal(nc, 0.0);
  for (std::size_t v = 0; v < un; ++v) {
    if (comp[v] < 0) continue;
    const std::size_t c = static_cast<std::size_t>(comp[v]);
    ++size[c];
    lowest[c] = std::min(lowest[c], v);
  }
  for (Index j = 0; j < n; ++j)
    for (SpMat::InnerIterator it(counts, j); it; ++it) {
      const Index ci = comp[static_cast<std::size_t>(it.row())];
      if (it.value() > 0.0 && ci >= 0 && ci == comp[static_cast<std::size_t>(j)])
        internal[static_cast<std::size_t>(ci)] += it.value();
    }
  Index best = -1;
  for (std::size_t c = 0; c < nc; ++c) {
    if (!(internal[c] > 0.0)) continue;
    if (best < 0) {
      best = static_cast<Index>(c);
      continue;
    }
    const std::size_t b = static_cast<std::size_t>(best);
    if (size[c] > size[b] || (size[c] == size[b] && internal[c] > internal[b]) ||
        (size[c] == size[b] && internal[c] == internal[b] && lowest[c] < lowest[b]))
      best = static_cast<Index>(c);
  }

  ConnectedSet out;
  out.n_sites = un;
  out.n_components = nc;
  for (std::size_t v = 0; v < un; ++v) {
    if (best >= 0 && comp[v] == best) {
      out.kept.push_back(v);
    } else {
      out.dropped.push_back({v, visited[v] ? DropReason::NotStronglyConnected
                                           : DropReason::NeverVisited});
    }
  }
  return out;
}

ConnectedSet largest_connected_set(const Eigen::MatrixXd& counts) {
  check_counts(counts, "largest_connected_set");
  const SpMat s = counts.sparseView();
  return largest_connected_set(s);
}

ComponentCounts within_components(const LagCounts& lag, std::size_t nsites) {
  check_lag_rows(lag, nsites, "within_components");
  std::vector<Edge> edges;
  std::vector<char> visited(nsites, 0);
  for (const auto& r : lag.rows) {
    visited[static_cast<std::size_t>(r.from)] = visited[static_cast<std::size_t>(r.to)] = 1;
    if (r.from != r.to)
      edges.emplace_back(static_cast<std::size_t>(r.from), static_cast<std::size_t>(r.to));
  }
  const std::vector<std::size_t> comp = strongly_connected_components(nsites, edges).component;
  ComponentCounts out;
  std::vector<char> seen(nsites, 0);
  for (std::size_t i = 0; i < nsites; ++i)
    if (visited[i] && !seen[comp[i]]++) ++out.n_components;
  out.counts.lag_steps = lag.lag_steps;
  out.counts.n_origins = lag.n_origins;
  for (const auto& r : lag.rows) {
    if (comp[static_cast<std::size_t>(r.from)] == comp[static_cast<std::size_t>(r.to)])
      out.counts.rows.push_back(r);
    else
      out.one_way_count += r.count;
  }
  return out;
}

}  // namespace ionmsm
