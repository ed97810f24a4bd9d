#pragma once
// The Chapman-Kolmogorov test err(n) = ||M(tau)^n - M(n tau)||_2 (paper sec. 2.1) and the
// matrix 2-norm it uses. Conventions: msm.hpp.
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ionmsm/estimators.hpp"

namespace ionmsm {

/// Matrix 2-norm (largest singular value). min(rows, cols) <= dense_svd_max: BDCSVD singular
/// values; larger: Lanczos (Spectra) on A^T A / ||A||_F^2 with tolerance 1e-13, falling back
/// to BDCSVD if it does not converge. Zero for an empty or all-zero matrix.
double matrix_two_norm(const Eigen::MatrixXd& a, std::size_t dense_svd_max = 500);

/// A transition matrix at one lag, with the original site index of each row/column.
struct LagTransitionMatrix {
  std::int64_t lag_steps = 0;
  std::vector<std::size_t> sites;     ///< strictly increasing; empty means 0 .. n-1
  Eigen::MatrixXd transition_matrix;  ///< column-stochastic (|column sum - 1| <= 1e-8)
};
LagTransitionMatrix lag_transition_matrix(const MarkovModel& model);

struct CkRecord {
  std::int64_t lag_steps = 0;  ///< base lag tau
  int n = 0;                   ///< the test compares M(tau)^n with M_sampled(n tau)
  double err = 0.0;            ///< eq. 6; NaN when the common site set is empty or not converged
  std::size_t n_sites = 0;     ///< sites in the common set
  bool matrix_free = false;    ///< err from the matrix-free path (see CkOptions)
  bool converged = true;       ///< false: the matrix-free Lanczos did not converge (err NaN)
};

struct CkOptions {
  int max_n = 0;  ///< largest n tested; 0 = no limit
  std::size_t dense_svd_max = 500;  ///< see matrix_two_norm (dense path only)
  /// Common sets with at most this many sites use the dense path (M(tau)^n by repeated dense
  /// products, matrix_two_norm). Larger ones are tested matrix-free: M^n is never formed;
  /// ||A||_2 for A = S - M^n (S = M_sampled(n tau)) is sqrt of the largest eigenvalue of
  /// A^T A by Lanczos (Spectra::SymEigsSolver), applying A x = S x - M(M(...M x)) with n
  /// sparse products and A^T y likewise with the transposes; ||S||_2 the same way. Cost
  /// O((n + 1) nnz) per Lanczos step instead of O(n k^3).
  std::size_t dense_max_sites = 200;
  double lanczos_tolerance = 1e-12;  ///< Spectra relative tolerance of the matrix-free path
};

/// Eq. 6 for every base lag tau in `models` and every n >= 2 with n * tau also in `models`:
///     err(n) = ||M_sampled(n tau) - M(tau)^n||_2 / ||M_sampled(n tau)||_2.
/// Common site set: both matrices are restricted to S = sites(tau) ∩ sites(n tau) and each
/// column is renormalised to sum 1 (the process conditioned on staying in S; for the
/// non-reversible MLE this equals re-estimating from the counts restricted to S). Sites whose
/// column has no weight left in S in either matrix are removed, repeatedly, until none is left.
/// When both models kept the same sites (the usual case) nothing changes. Records are sorted by
/// (lag_steps, n). Dense path: powers are accumulated by repeated multiplication; large common
/// sets: matrix-free (CkOptions::dense_max_sites). Throws
/// std::invalid_argument for duplicate or non-positive lags, inconsistent sizes, unsorted
/// sites, or a matrix that is not column-stochastic.
std::vector<CkRecord> chapman_kolmogorov_test(const std::vector<LagTransitionMatrix>& models,
                                              const CkOptions& options = {});
std::vector<CkRecord> chapman_kolmogorov_test(const std::vector<MarkovModel>& models,
                                              const CkOptions& options = {});

}  // namespace ionmsm
