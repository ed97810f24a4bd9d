#pragma once
// Eigenvalue spectra of transition matrices (dense and sparse, general and reversible) and
// the detailed-balance check. Conventions: msm.hpp.
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <complex>
#include <cstddef>
#include <string>

namespace ionmsm {

enum class SpectrumMethod {
  Auto,    ///< Dense if n <= sparse_threshold, Sparse otherwise
  Dense,   ///< all eigenvalues, Eigen (SelfAdjointEigenSolver / EigenSolver), O(n^3)
  Sparse,  ///< k eigenvalues by Spectra (Lanczos / Arnoldi with restarts), see SparseMode.
           ///< Falls back to Dense when k is too close to n for Spectra (k > n-2 general,
           ///< k > n-1 reversible); method_used then says Dense.
};

/// Which k eigenvalues the Sparse method computes.
enum class SparseMode {
  /// Opt-in. The ShiftInvert result (the k eigenvalues closest to sigma = 1 + sparse_shift),
  /// computed the cheap way when possible: first the regular mode (matrix-vector products
  /// only, no factorisation), limited to sparse_auto_restarts restarts; it computes a few more
  /// than k largest-modulus eigenvalues, and the k of them closest to sigma are accepted only if
  /// they are provably the k closest to sigma (every chosen |sigma - lambda_i| <=
  /// sigma - min |computed| + tie_tolerance: any eigenvalue not computed has modulus <= that
  /// minimum and so is at least as far from sigma; a tie at the cut only between a
  /// complex-conjugate pair, which shift-invert cannot order either) and no two of them
  /// coincide to 1e-9 relative (a single-vector Krylov method can miss copies of an exactly
  /// degenerate eigenvalue, e.g. on a symmetric lattice). Otherwise (not converged in time, a
  /// negative / strongly complex eigenvalue among them, a degenerate one, or an exception in
  /// the trial) ShiftInvert runs as usual, after the wasted trial. The trial is skipped when
  /// every column of the matrix holds exactly the same multiset of values (a translation-
  /// invariant periodic lattice: degenerate by symmetry, the trial would be rejected). Pays
  /// off for large, noisy (non-degenerate) models: the sparse LU of a 10^4-site 3D lattice
  /// takes seconds and fills in badly, the regular mode needs a few hundred sparse products.
  Auto,
  /// Default. Shift-invert around sigma = 1 + sparse_shift: the k eigenvalues CLOSEST TO 1,
  /// i.e. the slowest processes (for a real spectrum: the k algebraically largest). One sparse
  /// factorisation of (sigma I - M) (reversible path: sparse Cholesky LDLT of the SPD matrix
  /// sigma I - S; general path: SparseLU), then fast convergence even when the slow
  /// eigenvalues cluster near 1 (diffusive modes of large cells), where the regular mode can
  /// stall. Differs from "largest modulus" only if an eigenvalue with negative real part is
  /// larger in modulus than the k-th slowest one; such modes are flagged "non-positive" in the
  /// timescales (an oscillation between sites, not a slow relaxation).
  ShiftInvert,
  /// Regular mode: the k eigenvalues of largest modulus, matrix-vector products only. Can need
  /// many restarts (or fail: status NotConverged) for clustered spectra.
  LargestModulus,
};
enum class SpectrumStatus {
  Ok,
  NotConverged,            ///< Spectra stopped before k eigenvalues converged (fewer returned)
  IllConditionedVectors,   ///< general dense path: eigenvector matrix nearly singular (near
                           ///< defective M); eigenvalues fine, left vectors unreliable
};
const char* spectrum_status_name(SpectrumStatus status);

/// Auto switches to the Spectra path above this many sites.
constexpr std::size_t kSparseSpectrumThreshold = 2000;
/// Eigenvalues computed by the Spectra path when num_eigenvalues <= 0.
constexpr int kDefaultSparseEigenvalues = 10;

struct SpectrumOptions {
  /// Leading eigenvalues to return. <= 0: all (dense) / kDefaultSparseEigenvalues (sparse).
  int num_eigenvalues = 0;
  bool right_vectors = false;
  bool left_vectors = false;  ///< not available on the Sparse non-reversible path (throws)
  SpectrumMethod method = SpectrumMethod::Auto;
  std::size_t sparse_threshold = kSparseSpectrumThreshold;
  SparseMode sparse_mode = SparseMode::ShiftInvert;
  /// SparseMode::Auto: restarts allowed to the regular mode before it gives way to
  /// shift-invert (>= 1; capped by sparse_max_restarts).
  int sparse_auto_restarts = 100;
  /// SparseMode::Auto: false = no shift-invert after a rejected (or skipped) trial; the result
  /// then has status NotConverged, sparse_mode_used ShiftInvert, no eigenvalues and a message
  /// starting with "Auto trial rejected" (for callers that fall back with other options).
  bool sparse_auto_fallback = true;
  /// Shift-invert: sigma = 1 + sparse_shift. Must be > 0; keep it well above the 1e-8
  /// column-sum tolerance (so sigma I - S stays positive definite). Smaller values separate
  /// clustered slow eigenvalues better: 1 - lambda ~ 1e-7 is resolved in a few restarts.
  double sparse_shift = 1e-6;
  int sparse_ncv = 0;             ///< Krylov subspace size; 0: min(n, max(2k + 1, 20))
  int sparse_max_restarts = 1000;
  double sparse_tolerance = 1e-12;  ///< Spectra's relative residual tolerance
  /// Eigenvalues whose moduli differ by at most this are "tied" and ordered by decreasing real
  /// part, then decreasing imaginary part (so lambda = 1 precedes -1, and a + bi precedes
  /// a - bi for b > 0).
  double tie_tolerance = 1e-10;
  /// Reversible path: max |pi_j M_ij - pi_i M_ji| allowed, relative to max_ij pi_j M_ij.
  double detailed_balance_tolerance = 1e-10;
};

struct Spectrum {
  /// Sorted by decreasing modulus (ties: see SpectrumOptions::tie_tolerance).
  Eigen::VectorXcd eigenvalues;
  /// Right / left eigenvectors as columns, in the order of `eigenvalues` (empty unless asked).
  /// Normalisation: l_k^T r_k = 1. Reversible path: r_k = D^{1/2} u_k, l_k = D^{-1/2} u_k with
  /// D = diag(pi) and u_k orthonormal (so l_k^T r_m = delta_km, r_1 = pi, l_1 = 1); sign: the
  /// largest |u_k| component positive. General paths: r_k unit 2-norm with its largest-modulus
  /// component real positive, except that a leading eigenvalue within 1e-8 of 1 has r_1
  /// scaled to sum 1 (= pi); dense left vectors are the rows of R^{-1} (biorthonormal).
  Eigen::MatrixXcd right_vectors;
  Eigen::MatrixXcd left_vectors;
  SpectrumMethod method_used = SpectrumMethod::Dense;  ///< Dense or Sparse, never Auto
  bool symmetrized = false;  ///< true on the reversible (real symmetric) path
  SpectrumStatus status = SpectrumStatus::Ok;
  std::string message;       ///< empty when Ok
  int sparse_restarts = 0;   ///< Spectra restarts used (0 on the dense path)
  /// Sparse path: the mode that produced the result (ShiftInvert or LargestModulus, never
  /// Auto); meaningless on the dense path.
  SparseMode sparse_mode_used = SparseMode::ShiftInvert;
};

/// Spectrum of a general (not necessarily reversible) square matrix: Eigen::EigenSolver on the
/// dense path (complex values kept), Spectra::GenEigsRealShiftSolver / GenEigsSolver on the
/// sparse path (shift-invert assumes a stochastic matrix, |lambda| <= 1 < sigma). Throws
/// std::invalid_argument for a non-square / empty matrix, non-finite entries, or left vectors
/// requested on the sparse path.
Spectrum compute_spectrum(const Eigen::MatrixXd& transition_matrix,
                          const SpectrumOptions& options = {});
Spectrum compute_spectrum(const Eigen::SparseMatrix<double>& transition_matrix,
                          const SpectrumOptions& options = {});

/// Spectrum of a reversible column-stochastic M with stationary pi through the symmetric
/// matrix S = D^{-1/2} M D^{1/2} (real eigenvalues, orthonormal u_k): SelfAdjointEigenSolver
/// on the dense path, Spectra::SymEigsShiftSolver / SymEigsSolver on the sparse path. Throws
/// std::invalid_argument if sizes disagree, M is not column-stochastic, pi has a non-positive
/// / non-finite entry, or detailed balance is violated beyond
/// options.detailed_balance_tolerance.
Spectrum compute_reversible_spectrum(const Eigen::MatrixXd& transition_matrix,
                                     const Eigen::VectorXd& stationary,
                                     const SpectrumOptions& options = {});
Spectrum compute_reversible_spectrum(const Eigen::SparseMatrix<double>& transition_matrix,
                                     const Eigen::VectorXd& stationary,
                                     const SpectrumOptions& options = {});

/// Largest detailed-balance violation of a column-stochastic M with stationary pi, relative to
/// the largest probability flux: max_ij |pi_j M_ij - pi_i M_ji| / max_ij pi_j M_ij (pi
/// normalised to sum 1 first). 0 for an exactly reversible M; round-off gives ~1e-16. Throws
/// std::invalid_argument if sizes disagree, M is empty or not finite, or pi has a
/// non-positive / non-finite entry.
double detailed_balance_violation(const Eigen::SparseMatrix<double>& transition_matrix,
                                  const Eigen::VectorXd& stationary);

}  // namespace ionmsm
