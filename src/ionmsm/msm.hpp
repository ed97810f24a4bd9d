#pragma once
// Markov state models of ion hopping between sites (paper arXiv:2511.20863, sec. 2.1 and
// 2.2.4, eqs. 1-6): count matrices, connectivity, transition-matrix estimators, spectra,
// implied timescales and the Chapman-Kolmogorov test.
//
// CONVENTIONS (fixed project-wide)
//  * Counts: C is n x n with C(i, j) = number of observed transitions FROM site j TO site i in
//    one lag (eq. 4). A LagCounts row {from, to, shift, count} adds `count` to C(to, from);
//    rows that differ only in the lattice shift are summed (the site-level matrix ignores
//    periodic images).
//  * Transition matrix: column-stochastic, M(i, j) = P(j -> i in one lag), sum_i M(i, j) = 1,
//    p(t + tau) = M p(t) (eqs. 1 and 5). The non-reversible MLE is M(i,j) = C(i,j)/sum_k C(k,j).
//  * Stationary distribution: M pi = pi, pi_i > 0, sum_i pi_i = 1. Detailed balance (reversible
//    models): pi_j M(i, j) = pi_i M(j, i).
//  * Eigenvectors: right r (M r = lambda r) are columns of Spectrum::right_vectors; left l
//    (l^T M = lambda l^T, plain transpose, no conjugation) are columns of
//    Spectrum::left_vectors. For a column-stochastic M, r_1 = pi and l_1 = (1, ..., 1).
//  * Site indices: std::size_t, 0-based, always into the ORIGINAL site list (CountsData's
//    sites) unless stated otherwise. After restriction to a connected set, row/column k of a
//    matrix belongs to original site kept[k].
//  * Lags are given in MD timesteps (lag_steps, as in LagCounts). Times are lag_steps times a
//    caller-supplied time per step; implied timescales come out in that same unit (e.g. pass
//    CountsData::timestep_ps to get picoseconds).
//  * Matrices are Eigen::MatrixXd (dense) or Eigen::SparseMatrix<double> (column-major,
//    compressed); every estimator has both overloads and they give the same numbers.
//
// ERRORS: misuse (wrong sizes, negative or non-finite counts, sites out of range, a site with
// no outgoing counts passed to an estimator, a reducible matrix, ...) throws
// std::invalid_argument with a message that says what to do. Numerical non-convergence is NOT
// an exception: it is reported through status enums and message strings.
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ionmsm/counts_file.hpp"

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

// ============================================================================ estimators

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

struct ReversibleMleInfo {
  ReversibleMleStatus status = ReversibleMleStatus::Converged;
  int iterations = 0;         ///< fixed-point updates F performed
  double final_change = 0.0;  ///< max_i |F(pi)_i - pi_i| / F(pi)_i in the last update
  double tolerance = 0.0;     ///< copied from the options
  int max_iterations = 0;     ///< copied from the options
  std::string message;        ///< human-readable summary; says what to do when not converged
  bool converged() const { return status == ReversibleMleStatus::Converged; }
};

template <typename MatrixType>
struct ReversibleMleResult : ReversibleMleInfo {
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
  ReversibleMleInfo estimator_info;
};

/// count_matrix_sparse -> largest_connected_set -> restriction -> estimator (+ stationary).
/// Dropped sites never enter any division, so no NaN can appear. Throws
/// std::invalid_argument if the lag has no counts at all.
MarkovModel estimate_markov_model(const LagCounts& lag, std::size_t nsites,
                                  const MsmOptions& options = {});

// ============================================================================ spectrum

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
  /// larger in modulus than the k-th slowest one; such eigenvalues carry no timescale anyway.
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

// ============================================================================ implied timescales

enum class TimescaleStatus {
  Ok,           ///< real, 0 < lambda < 1: t = -tau / ln(lambda)
  Stationary,   ///< real, |lambda - 1| <= stationary_tolerance: t = +infinity
  NonPositive,  ///< real, lambda <= 0: t = NaN (no decay time can be assigned)
  Complex,      ///< |Im lambda| > imag_tolerance: t = NaN (oscillating mode)
  Invalid,      ///< non-finite, or real lambda > 1 + stationary_tolerance: t = NaN
};
const char* timescale_status_name(TimescaleStatus status);

struct TimescaleOptions {
  double imag_tolerance = 1e-10;        ///< |Im| at or below this counts as real
  double stationary_tolerance = 1e-12;  ///< |lambda - 1| at or below this is stationary
};

struct ImpliedTimescale {
  std::complex<double> eigenvalue;
  double timescale = 0.0;  ///< in the unit of lag_time; NaN / +inf per `status`
  TimescaleStatus status = TimescaleStatus::Ok;
};

/// Eq. 3 for every eigenvalue (the leading one included; it is normally Stationary). A
/// negative or complex eigenvalue never yields a timescale: timescale = NaN plus the status.
/// lag_time must be finite and > 0 (std::invalid_argument).
std::vector<ImpliedTimescale> implied_timescales(const Eigen::VectorXcd& eigenvalues,
                                                 double lag_time,
                                                 const TimescaleOptions& options = {});

struct LagTimescales {
  std::int64_t lag_steps = 0;
  double lag_time = 0.0;           ///< lag_steps * time_per_step
  std::size_t n_kept = 0;          ///< sites in the model of this lag
  Eigen::VectorXcd eigenvalues;    ///< sorted as in Spectrum
  std::vector<ImpliedTimescale> timescales;  ///< one per eigenvalue, same unit as lag_time
  SpectrumStatus spectrum_status = SpectrumStatus::Ok;
  ReversibleMleStatus estimator_status = ReversibleMleStatus::Converged;
  std::string message;             ///< estimator / spectrum messages when not Ok
};

struct ItsOptions {
  MsmOptions msm;            ///< used by the LagCounts overload only
  SpectrumOptions spectrum;  ///< vectors are never computed here
  TimescaleOptions timescales;
};

/// Implied timescales over lags: per model, its spectrum (the reversible path for reversible
/// estimates) and eq. 3 with lag_time = lag_steps * time_per_step (time_per_step > 0).
std::vector<LagTimescales> implied_timescales_over_lags(const std::vector<MarkovModel>& models,
                                                        double time_per_step,
                                                        const ItsOptions& options = {});
/// The same, estimating each lag's model first with options.msm.
std::vector<LagTimescales> implied_timescales_over_lags(const std::vector<LagCounts>& lags,
                                                        std::size_t nsites, double time_per_step,
                                                        const ItsOptions& options = {});

// ============================================================================ Chapman-Kolmogorov

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
