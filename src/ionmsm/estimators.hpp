#pragma once
// Transition-matrix estimators (paper eq. 5 and the reversible maximum likelihood), the
// stationary distribution and the Markov model of one lag. Conventions: msm.hpp.
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ionmsm/connectivity.hpp"

namespace ionmsm {

/// Non-reversible maximum-likelihood estimate (eq. 5): M(i,j) = C(i,j) / sum_k C(k,j).
/// Throws std::invalid_argument if a column has no counts (restrict to largest_connected_set
/// first), or for negative / non-finite counts.
Eigen::MatrixXd nonreversible_mle(const Eigen::MatrixXd& counts);
Eigen::SparseMatrix<double> nonreversible_mle(const Eigen::SparseMatrix<double>& counts);

/// Stationary distribution of an irreducible column-stochastic matrix. The last site is pinned
/// (pi_last = 1) and the remaining equations (I - M_sub) x = M(sub, last) are solved, where
/// M_sub is M without the last row and column: a nonsingular M-matrix for irreducible M, and
/// it keeps the sparsity (no dense normalisation row). Dense: partial-pivoting LU plus one step
/// of iterative refinement; sparse: SparseLU with COLAMD ordering (a few seconds for 10^4 sites
/// on a 3D lattice). Then normalised to sum 1; round-off negatives are set to 0. Throws
/// std::invalid_argument if M is empty, not square, not column-stochastic (|column sum - 1| >
/// 1e-8), or reducible (singular system / clearly negative solution / residual check).
Eigen::VectorXd stationary_distribution(const Eigen::MatrixXd& transition_matrix);
Eigen::VectorXd stationary_distribution(const Eigen::SparseMatrix<double>& transition_matrix);

enum class ReversibleMleStatus {
  Converged,         ///< relative fixed-point residual of pi in the last update <= tolerance
  NotConverged,      ///< iteration cap reached first (matrix is reversible but not the MLE)
  NumericalFailure,  ///< a non-finite value appeared (matrix/pi then hold the last finite pi)
};
const char* reversible_mle_status_name(ReversibleMleStatus status);

struct ReversibleMleOptions {
  /// Stop when the fixed-point residual max_i |F(pi)_i - pi_i| / F(pi)_i <= tolerance, where F
  /// is one fixed-point update (for the plain iteration this is the relative change of pi
  /// between two iterations; relative, so small-weight sites converge as well). Must be > 0.
  double tolerance = 1e-12;
  int max_iterations = 100000;  ///< fixed-point updates F allowed, >= 1
  /// Anderson acceleration of the fixed-point iteration (in log pi, so pi stays positive),
  /// mixing the last `anderson_depth` updates; 0 = the plain iteration. The fixed point is the
  /// same; the plain iteration converges linearly with a rate set by the slowest mode of the
  /// site network and can need 10^5+ iterations for 10^4 heterogeneous sites, Anderson(5)
  /// typically 10-100x fewer. A step that produces a non-positive / non-finite pi or a
  /// residual 100x worse than the previous one is replaced by the plain update and the history
  /// is cleared.
  int anderson_depth = 5;
};

/// How an estimate was obtained. The reversible MLE fills it from its fixed-point iteration; the
/// non-reversible estimator (a closed form) reports Converged after 0 iterations.
struct EstimatorInfo {
  ReversibleMleStatus status = ReversibleMleStatus::Converged;
  int iterations = 0;         ///< fixed-point updates F performed
  double final_change = 0.0;  ///< max_i |F(pi)_i - pi_i| / F(pi)_i in the last update
  double tolerance = 0.0;     ///< copied from the options
  int max_iterations = 0;     ///< copied from the options
  std::string message;        ///< human-readable summary; says what to do when not converged
  bool converged() const { return status == ReversibleMleStatus::Converged; }
};

template <typename MatrixType>
struct ReversibleMleResult : EstimatorInfo {
  MatrixType transition_matrix;  ///< column-stochastic, detailed balance w.r.t. `stationary`
  Eigen::VectorXd stationary;    ///< pi, sum 1
};

/// Reversible maximum-likelihood estimate (Bowman 2009; Trendelkamp-Schroer et al. 2015).
/// With c_j = sum_k C(k,j) (transitions out of j) and the symmetric part S = C + C^T, the
/// reversible MLE has the form X(i,j) = S(i,j) / (c_i/pi_i + c_j/pi_j), M(i,j) = X(i,j) /
/// sum_k X(k,j), where pi is the fixed point of
///     F(pi)_i = sum_j S(i,j) / (c_i/pi_i + c_j/pi_j),  then normalised to sum 1,
/// started from pi_i proportional to sum_j S(i,j) (exact for symmetric counts), iterated plainly
/// or with Anderson acceleration (options.anderson_depth). Cost O(nnz) per update (plus
/// O(n depth^2) for the acceleration). The returned pi is the last update F(pi). Whatever the
/// status, the returned matrix is built from the final pi through X, so it is exactly
/// column-stochastic and satisfies detailed balance with `stationary` = column sums of X
/// (normalised) up to round-off; only the maximum-likelihood property needs convergence.
/// Throws std::invalid_argument for invalid options, negative / non-finite counts, a site with
/// no outgoing counts, or a graph of S that is not connected (restrict to
/// largest_connected_set first). The dense overload converts to sparse internally (O(n^2) once).
ReversibleMleResult<Eigen::MatrixXd> reversible_mle(const Eigen::MatrixXd& counts,
                                                    const ReversibleMleOptions& options = {});
ReversibleMleResult<Eigen::SparseMatrix<double>> reversible_mle(
    const Eigen::SparseMatrix<double>& counts, const ReversibleMleOptions& options = {});

enum class Estimator { NonReversible, Reversible };

struct MsmOptions {
  Estimator estimator = Estimator::NonReversible;
  ReversibleMleOptions reversible;
};

/// One MSM at one lag, on the largest connected set.
struct MarkovModel {
  std::int64_t lag_steps = 0;
  Estimator estimator = Estimator::NonReversible;
  ConnectedSet connectivity;                      ///< kept / dropped sites of this lag
  Eigen::SparseMatrix<double> counts;             ///< kept x kept count matrix
  Eigen::SparseMatrix<double> transition_matrix;  ///< kept x kept, column-stochastic
  Eigen::VectorXd stationary;                     ///< pi on the kept sites
  /// Reversible estimator: the MLE status. Non-reversible: Converged, 0 iterations.
  EstimatorInfo estimator_info;
};

/// count_matrix_sparse -> largest_connected_set -> restriction -> estimator (+ stationary).
/// Dropped sites never enter any division, so no NaN can appear. Throws
/// std::invalid_argument if the lag has no counts at all.
MarkovModel estimate_markov_model(const LagCounts& lag, std::size_t nsites,
                                  const MsmOptions& options = {});

}  // namespace ionmsm
