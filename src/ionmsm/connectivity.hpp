#pragma once
// Count matrices of one lag and their connectivity: strongly connected components and the
// largest strongly connected set of sites (paper arXiv:2511.20863, sec. 2.1). Conventions:
// msm.hpp.
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <cstddef>
#include <utility>
#include <vector>

#include "ionmsm/counts.hpp"

namespace ionmsm {

// ============================================================================ count matrices

/// Dense n x n count matrix of one lag (sum over shifts), C(to, from) += count. nsites must be
/// >= 1 + every site index in `lag`; throws std::invalid_argument naming the lag and row
/// otherwise. Memory is 8 n^2 bytes (800 MB for 10,000 sites): prefer the sparse variant for
/// large site lists.
Eigen::MatrixXd count_matrix_dense(const LagCounts& lag, std::size_t nsites);
/// The same as a compressed column-major sparse matrix (duplicates summed, no explicit zeros).
Eigen::SparseMatrix<double> count_matrix_sparse(const LagCounts& lag, std::size_t nsites);

/// The square submatrix A(sites, sites), in the order of `sites` (indices must be distinct and
/// < A.rows(); throws std::invalid_argument otherwise).
Eigen::MatrixXd restrict_to_sites(const Eigen::MatrixXd& a, const std::vector<std::size_t>& sites);
Eigen::SparseMatrix<double> restrict_to_sites(const Eigen::SparseMatrix<double>& a,
                                              const std::vector<std::size_t>& sites);

// ============================================================================ connectivity

/// A directed edge (from, to) between node indices.
using Edge = std::pair<std::size_t, std::size_t>;

struct StronglyConnectedComponents {
  std::vector<std::size_t> component;  ///< per node, a label in [0, count)
  std::size_t count = 0;               ///< number of components (every node is in one)
};

/// Strongly connected components of the directed graph on `n` nodes with the given edges (self
/// loops and repeated edges allowed). Labels follow the completion order of Tarjan's algorithm
/// (iterative, no recursion: safe for 10^5+ nodes), O(n + edges). Throws std::invalid_argument
/// for an edge outside [0, n).
StronglyConnectedComponents strongly_connected_components(std::size_t n,
                                                          const std::vector<Edge>& edges);

enum class DropReason {
  NeverVisited,          ///< no count at all in its row or column (not even a self-transition)
  NotStronglyConnected,  ///< visited, but not in the largest strongly connected set
};
const char* drop_reason_name(DropReason reason);  ///< "never visited", "not strongly connected"

struct DroppedSite {
  std::size_t site = 0;  ///< index into the original site list
  DropReason reason = DropReason::NeverVisited;
};

struct ConnectedSet {
  std::size_t n_sites = 0;             ///< size of the original site list
  std::vector<std::size_t> kept;       ///< the largest strongly connected set, increasing
  std::vector<DroppedSite> dropped;    ///< every other site, increasing site index
  std::size_t n_components = 0;        ///< strongly connected components among visited sites
  bool all_kept() const { return dropped.empty(); }
};

/// Largest strongly connected set of the directed graph with an edge j -> i wherever
/// C(i, j) > 0. "Largest" = most sites; ties are broken by the larger total count inside the
/// set, then by the smaller lowest site index. Only components with at least one internal
/// count are eligible (a lone site needs a self-transition), so every kept site has a non-empty
/// column in the restricted counts and the estimators never divide by zero. Sites that were
/// never visited are never kept; if nothing is eligible `kept` is empty. Iterative
/// Tarjan algorithm, O(n + nnz) time and memory, no recursion (safe for 10^5+ sites).
/// Throws std::invalid_argument for a non-square matrix or a negative / non-finite count.
ConnectedSet largest_connected_set(const Eigen::SparseMatrix<double>& counts);
ConnectedSet largest_connected_set(const Eigen::MatrixXd& counts);

// ============================================================================ transport trimming

/// A lag's counts restricted to the strongly connected components of its count graph.
struct ComponentCounts {
  LagCounts counts;                 ///< rows whose two sites share a component
  std::uint64_t one_way_count = 0;  ///< counts of the dropped rows (between components)
  std::size_t n_components = 0;     ///< components among the visited sites
};

/// The lag's counts restricted to transitions whose two sites lie in the same strongly
/// connected component of the lag's count graph (an edge j -> i for every counted j -> i,
/// j != i). One-way transitions between components are finite-sampling artifacts that make the
/// chain leak into absorbing sites; `ionmsm analyze --transport-counts components` drops them.
/// Displacement sums are not carried over. Throws std::invalid_argument for a site index
/// outside [0, nsites).
ComponentCounts within_components(const LagCounts& lag, std::size_t nsites);

}  // namespace ionmsm
