#pragma once
// Transport from transition counts: per-lag displacement statistics, MSD by propagation
// (paper arXiv:2511.20863, section 2.2.4, eqs. 7-8), the exact long-time diffusion tensor of
// the Markov model, Einstein fits and the jump network.
//
// Conventions
// -----------
//  * Counts: C(i,j) = number of transitions from site j to site i at one lag (summed over
//    lattice shifts). M(i,j) = C(i,j) / sum_k C(k,j) is column-stochastic (paper eq. 5).
//    Internally the diffusion solver also uses the row-stochastic form P = M^T, P(i,j) = the
//    probability to go from i to j.
//  * Site-projected unwrapped displacement of a counts row {from, to, shift}:
//        delta = H (f_to - f_from + shift),   H = box_h (columns = cell vectors),
//    in the length unit of the counts file ("A" in names; Angstrom for LAMMPS metal/real).
//  * Pair moments for the transition j -> i (count-weighted over all shift rows of the pair):
//        <delta>_{j->i}        = sum_s c_s delta_s / sum_s c_s
//        <delta delta^T>_{j->i} = sum_s c_s delta_s delta_s^T / sum_s c_s
//  * Times: every function takes the lag time tau in picoseconds (callers convert
//    lag_steps * timestep_ps). D is returned in length^2/ps (A^2/ps for metal units), drift in
//    length/ps.
//
// State space (sites without outgoing counts)
// -------------------------------------------
//  A column of M for a site that never appears as `from` would be all zero, and M would not be
//  stochastic. build_transport_statistics() therefore works on the ACTIVE set: the largest set
//  A of sites such that every site in A has at least one counted transition (a stay counts)
//  into A. It is found by repeatedly removing sites without outgoing counts into the remaining
//  set (normally this removes nothing, or only sites visited in the last lag window of a run).
//  Removed sites are listed in TransportStatistics::excluded_sites; all rows from or into them
//  are dropped (their total is dropped_count) and M is renormalised over A. Every result below
//  is defined on A; per-site outputs carry 0 (or the excluded flag) for removed sites.
//
// Start distribution (MSD and class weights)
// ------------------------------------------
//  By default the MSD starts from the observed site occupancy (atom-samples per site from the
//  counts file) restricted to A and normalised to 1. If the occupancy is empty or zero on A,
//  the fraction of origins per site (outgoing counts into A) is used instead. Alternatives:
//  the limiting distribution of the chain from that start (MsdStart::stationary) or uniform.
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ionmsm/counting.hpp"
#include "ionmsm/counts_file.hpp"
#include "ionmsm/geometry.hpp"

namespace ionmsm {

// ============================================================================ 1. statistics

/// One counts row between active sites, with its probability and displacement.
struct DisplacementRow {
  SiteIndex from = 0;
  SiteIndex to = 0;
  Image shift{0, 0, 0};
  std::uint64_t count = 0;
  double probability = 0.0;                                ///< count / outgoing count of `from`
  Eigen::Vector3d displacement_A = Eigen::Vector3d::Zero();  ///< H (f_to - f_from + shift)
};

/// All shift rows of one (from, to) pair combined. probability = M(to, from).
struct PairDisplacementMoments {
  SiteIndex from = 0;
  SiteIndex to = 0;
  std::uint64_t count = 0;   ///< summed over shifts
  double probability = 0.0;  ///< M(to, from) = P(from, to)
  Eigen::Vector3d mean_A = Eigen::Vector3d::Zero();              ///< <delta>_{from->to}
  Eigen::Matrix3d second_moment_A2 = Eigen::Matrix3d::Zero();    ///< <delta delta^T>_{from->to}
};

/// Transition statistics of one lag (sparse: O(number of count rows) memory).
struct TransportStatistics {
  std::int64_t lag_steps = 0;
  Eigen::Matrix3d box_h = Eigen::Matrix3d::Identity();  ///< columns = cell vectors
  std::vector<Eigen::Vector3d> site_fractional;          ///< as stored in the counts data
  std::vector<Eigen::Vector3d> site_cartesian_A;         ///< box_origin + H f
  std::vector<double> occupancy_fraction;   ///< occupancy / total occupancy (zeros if none)
  std::vector<std::uint64_t> outgoing_count;  ///< per site, all rows of the file (before trimming)

  std::vector<SiteIndex> active_sites;    ///< the state space A, increasing
  std::vector<SiteIndex> excluded_sites;  ///< sites removed (no outgoing counts into A)
  std::vector<std::int32_t> state_of_site;  ///< index into active_sites, or -1 if excluded
  std::uint64_t total_count = 0;    ///< all counts of the lag
  std::uint64_t dropped_count = 0;  ///< counts of rows from or into excluded sites

  std::vector<DisplacementRow> rows;            ///< active -> active, sorted (from, to, shift)
  std::vector<PairDisplacementMoments> pairs;   ///< sorted (from, to)

  std::size_t nsites() const { return site_fractional.size(); }
  std::size_t nstates() const { return active_sites.size(); }
};

/// Builds the statistics of data.lags[lag_index]. Throws std::invalid_argument for: a lag index
/// out of range, no sites, a lag without counts, a row whose site index is out of range, an
/// occupancy array of the wrong size, a singular or non-finite box_h.
TransportStatistics build_transport_statistics(const CountsData& data, std::size_t lag_index);

/// M as an nsites x nsites sparse column-stochastic matrix, M(i,j) = P(j -> i). Columns of
/// excluded sites are zero (every other column sums to 1).
Eigen::SparseMatrix<double> transition_matrix(const TransportStatistics& stats);

// ============================================================================ 2. MSD

enum class MsdMethod {
  /// Paper eq. 7 with d_ij the minimum-image vector between sites i and j in the cell:
  ///   MSD_ab(n tau) = sum_ij (M^n)_ij p0_j d_ij,a d_ij,b.
  /// Bounded by the largest squared minimum-image distance: saturates (half-box plateau).
  minimum_image,
  /// The paper's replicated supercell: states (site i, cell c), c in Z_R1 x Z_R2 x Z_R3; a row
  /// {j -> i, shift s} moves (j, c) -> (i, (c + s) mod R) with probability count/C_j; every
  /// walk starts in cell 0 and d is the minimum-image vector of H (f_i + c - f_j) in the
  /// supercell H diag(R). R = (1,1,1) is minimum_image. The plateau moves to ~R^2 times later.
  replicated,
  /// No periodic folding at all: per state the probability p_i, first moment m1_i (vector) and
  /// second moment m2_i (3x3) of the unwrapped displacement S accumulated so far,
  ///   p_i = P(X_n = i),  m1_i = E[S 1{X_n = i}],  m2_i = E[S S^T 1{X_n = i}],
  /// propagated with the pair moments of the transition j -> i:
  ///   p'_i  = sum_j M_ij p_j
  ///   m1'_i = sum_j M_ij (m1_j + p_j <delta>_{j->i})
  ///   m2'_i = sum_j M_ij (m2_j + m1_j <delta>_{j->i}^T + <delta>_{j->i} m1_j^T
  ///                       + p_j <delta delta^T>_{j->i})
  /// (expand E[(S + delta)(S + delta)^T 1{X_n = j, X_n+1 = i}] with delta independent of S
  /// given the pair). MSD_ab(n tau) = sum_i (m2_i)_ab, mean displacement = sum_i m1_i. Exactly
  /// the MSD of the walk on an infinite replicated lattice; cost O(n_max * number of pairs).
  moments
};

enum class MsdStart {
  occupancy,   ///< observed occupancy on A, normalised (fallback: origins per site)
  stationary,  ///< limiting distribution of the chain from the occupancy start
  uniform      ///< 1 / |A| on every active site
};

struct MsdOptions {
  MsdMethod method = MsdMethod::moments;
  std::int64_t n_max = 100;             ///< lag multiples n = 1 .. n_max
  std::array<int, 3> replicas{1, 1, 1};  ///< R for MsdMethod::replicated (ignored otherwise)
  MsdStart start = MsdStart::occupancy;
};

/// MSD curve; index k holds n = k + 1 lag multiples. Lengths in the counts file's unit.
struct MsdCurve {
  MsdMethod method = MsdMethod::moments;
  std::array<int, 3> replicas{1, 1, 1};
  std::int64_t lag_steps = 0;
  double tau_ps = 0.0;
  std::vector<std::int64_t> n_lags;
  std::vector<double> time_ps;                    ///< n tau
  std::vector<Eigen::Matrix3d> msd_tensor_A2;      ///< sum p d d^T (component-wise MSD)
  std::vector<Eigen::Vector3d> mean_displacement_A;  ///< sum p d
  std::vector<double> msd_xx_A2, msd_yy_A2, msd_zz_A2, msd_total_A2;  ///< total = trace
  std::vector<double> start_probability;  ///< per site (0 on excluded sites), sums to 1
};

/// Propagates the MSD. Cost: moments O(n_max * pairs); minimum_image and replicated
/// O(|A| * n_max * rows * R1 R2 R3) time (every start site is propagated separately) and
/// O(|A| R1 R2 R3) memory per start column (columns are processed in blocks of <= 64, about
/// 2^20 state-column entries). Throws std::invalid_argument for tau_ps not finite and > 0,
/// n_max < 1, a replica count < 1; std::runtime_error if the MsdStart::stationary solve fails.
MsdCurve propagate_msd(const TransportStatistics& stats, double tau_ps, const MsdOptions& options);

/// "minimum_image", "replicated", "moments".
const char* msd_method_name(MsdMethod method);
/// Inverse of msd_method_name; throws std::invalid_argument naming the accepted values.
MsdMethod parse_msd_method(const std::string& name);

// ============================================================================ 3. exact D
//
// Long-time diffusion tensor of the Markov model with displacements (a Markov additive
// process). Row-stochastic P = M^T on one closed communicating class, pi its stationary
// distribution (pi^T P = pi^T, sum pi = 1), mu_ij = <delta>_{i->j}, Q_ij = <delta delta^T>_{i->j}.
// S_n = sum_{k=1..n} Delta_k, Delta_k the displacement of step X_{k-1} -> X_k.
//
//   b_i   = sum_j P_ij mu_ij          mean displacement leaving i
//   m     = sum_i pi_i b_i            drift per step;   b_bar = b - m 1
//   g     = Z b_bar,  Z = (I - P + 1 pi^T)^{-1}, i.e. (I - P) g = b_bar with pi^T g = 0
//           (solved as a linear system with one state pinned; never inverted)
//   Sigma = sum_ij pi_i P_ij Q_ij - m m^T + 2 sym( sum_ij pi_i P_ij mu_ij g_j^T )
//   D     = Sigma / (2 tau),   D0 = (1 / (2 tau)) sum_ij pi_i P_ij Q_ij,   v = m / tau
//
// Derivation (Kipnis-Varadhan / martingale decomposition). Write the centred increment as
//   Delta_k - m = xi_k + b_bar(X_{k-1}),   xi_k = Delta_k - b(X_{k-1})  (martingale difference).
// With the Poisson equation g - P g = b_bar,
//   b_bar(X_{k-1}) = [g(X_k) - (P g)(X_{k-1})] + [g(X_{k-1}) - g(X_k)],
// the first bracket eta_k a martingale difference, the second telescoping (bounded). Hence
// S_n - n m = sum_k (xi_k + eta_k) + O(1) and, by the martingale CLT under pi,
//   Sigma = lim Cov(S_n)/n = E_pi[(xi + eta)(xi + eta)^T]
//         = E_pi[(Delta - m)(Delta - m)^T] + 2 sym E_pi[(Delta - m) g(X_1)^T]
// (the same as sum over all lags of the increment autocovariance, Cov(Delta_1, Delta_{1+k}) =
// E_pi[(Delta_1 - m) ((P^{k-1} b_bar)(X_1))^T], summed with Z). Expanding with pi^T g = 0:
//   E_pi[(Delta - m)(Delta - m)^T] = sum_ij pi_i P_ij Q_ij - m m^T,
//   E_pi[(Delta - m) g(X_1)^T]     = sum_ij pi_i P_ij mu_ij g_j^T.
// Cov(S_n) ~ 2 D t with t = n tau gives D = Sigma / (2 tau). D0 drops the correlation term
// (and is not drift-corrected): it is the uncorrelated-hop estimate; f = D / D0.
//
// Several closed classes (e.g. 1D channels with no counted hop between them): D, D0 and the
// drift are computed per class and averaged with weights w_c = probability that the chain
// started from the occupancy start distribution ends up in class c (absorption probabilities
// for transient sites). The limiting distribution is sum_c w_c pi_c. With drifts that differ
// between classes, this D is the weighted mean of per-class (drift-centred) tensors.

// Cost: per closed class the systems with I - Q (Q = P without one pinned state, chosen as the
// state with the most outgoing counts): the stationary (transposed) and the Poisson solve.
// Small classes: one dense LU. Large ones: BiCGSTAB with a Jacobi preconditioner per right-hand
// side (I - Q is a diagonally dominant M-matrix; ~100 iterations, ~0.05 s for a 10^4-site 3D
// lattice), each accepted only if its true relative residual is <= 1e-12; otherwise the sparse
// LU (Eigen SparseLU, COLAMD; about 6 s for a 10^4-site periodic 3D lattice) is the fallback.
struct DiffusionSolverOptions {
  /// Systems (class size - 1, or number of transient states) with at most this many unknowns
  /// use dense partial-pivoting LU, larger ones the sparse iterative / direct path above.
  std::size_t dense_max_states = 500;
};

struct ClassDiffusion {
  std::vector<SiteIndex> sites;  ///< increasing
  double weight = 0.0;           ///< w_c
  Eigen::Matrix3d D_A2_per_ps = Eigen::Matrix3d::Zero();
  Eigen::Matrix3d D0_A2_per_ps = Eigen::Matrix3d::Zero();
  Eigen::Vector3d drift_velocity_A_per_ps = Eigen::Vector3d::Zero();
};

struct DiffusionTensorResult {
  std::int64_t lag_steps = 0;
  double tau_ps = 0.0;
  Eigen::Matrix3d D_A2_per_ps = Eigen::Matrix3d::Zero();   ///< correlated (exact) tensor
  Eigen::Matrix3d D0_A2_per_ps = Eigen::Matrix3d::Zero();  ///< uncorrelated-hop tensor
  double D_total_A2_per_ps = 0.0;   ///< trace(D) / 3
  double D0_total_A2_per_ps = 0.0;  ///< trace(D0) / 3
  /// D_aa / D0_aa; NaN where D0_aa <= 1e-14 trace(D0) (no hops along that axis).
  Eigen::Vector3d correlation_factor = Eigen::Vector3d::Zero();
  double correlation_factor_total = 0.0;  ///< trace(D) / trace(D0) (NaN if trace(D0) == 0)
  Eigen::Vector3d drift_velocity_A_per_ps = Eigen::Vector3d::Zero();  ///< m / tau
  std::vector<double> limiting_distribution;  ///< per site; 0 on excluded and transient sites
  std::vector<ClassDiffusion> classes;         ///< closed communicating classes
  std::size_t n_transient_states = 0;          ///< active sites in no closed class
  bool used_sparse_solver = false;  ///< a system above dense_max_states (iterative or sparse LU)
  /// The most expensive linear-solver method used: "none" (only single-site classes),
  /// "dense LU", "BiCGSTAB" (sparse systems, all solved iteratively) or "sparse LU" (some
  /// sparse system needed the direct fallback).
  std::string linear_solver = "none";
  int solver_iterations = 0;  ///< BiCGSTAB iterations summed over all sparse solves
  double max_stationary_residual = 0.0;  ///< max_i |(pi^T P - pi^T)_i| over all classes
};

/// Exact D of the Markov model at this lag. Throws std::invalid_argument for tau_ps not finite
/// and > 0; std::runtime_error if a linear solve fails.
DiffusionTensorResult exact_diffusion_tensor(const TransportStatistics& stats, double tau_ps,
                                             const DiffusionSolverOptions& options = {});

// ============================================================================ 4. Einstein fit

/// Least-squares line MSD = slope t + c per component on the points k >= floor(N * first_fraction)
/// of the curve (N points; default: the last half; at least 2 points are always used).
/// D_aa = slope_aa / 2 for xx, yy, zz; D_total = slope_total / 6 (3D Einstein relation, eq. 8).
struct EinsteinFit {
  Eigen::Vector3d D_A2_per_ps = Eigen::Vector3d::Zero();   ///< (D_xx, D_yy, D_zz)
  double D_total_A2_per_ps = 0.0;
  Eigen::Vector3d intercept_A2 = Eigen::Vector3d::Zero();
  double intercept_total_A2 = 0.0;
  std::size_t first_point = 0;  ///< index of the first fitted point
  std::size_t n_points = 0;
};
/// Throws std::invalid_argument for a curve with fewer than 2 points, inconsistent array sizes,
/// or first_fraction outside [0, 1).
EinsteinFit fit_einstein(const MsdCurve& curve, double first_fraction = 0.5);

// ============================================================================ 5. jump network

/// One unordered site pair a < b with at least one counted transition between them.
struct JumpEdge {
  SiteIndex site_a = 0, site_b = 0;
  std::uint64_t count_ab = 0, count_ba = 0;  ///< a -> b and b -> a (all shifts)
  double rate_ab_per_ps = 0.0;  ///< M(b, a) / tau
  double rate_ba_per_ps = 0.0;  ///< M(a, b) / tau
  /// Count-weighted mean jump vector oriented a -> b (b -> a rows enter with a minus sign).
  Eigen::Vector3d mean_jump_ab_A = Eigen::Vector3d::Zero();
};

struct JumpNetwork {
  std::int64_t lag_steps = 0;
  double tau_ps = 0.0;
  std::vector<Eigen::Vector3d> site_cartesian_A;
  std::vector<double> occupancy_fraction;
  std::vector<JumpEdge> edges;  ///< sorted (site_a, site_b); stays (i -> i) are not edges
  /// Per site: counts of i -> i rows with a nonzero shift (hops onto an own periodic image,
  /// only possible in very small cells); not represented as edges.
  std::vector<std::uint64_t> self_image_hop_count;
};

/// Network of the given statistics (active sites only, rates from the renormalised M).
JumpNetwork build_jump_network(const TransportStatistics& stats, double tau_ps);
/// Network of the shortest lag, data.lags[0]; tau_ps is that lag's time.
JumpNetwork build_jump_network(const CountsData& data, double tau_ps);

/// The two Cartesian axes with the largest count-weighted variance of the jump vectors (all
/// rows except stays with zero shift): var_a = sum c delta_a^2 / sum c - (sum c delta_a / sum c)^2.
/// axes is increasing (for plotting as horizontal, vertical); ties prefer the lower axis.
/// Without any jump: axes {0, 1}, variances 0.
struct ProjectionAxes {
  std::array<int, 2> axes{0, 1};
  Eigen::Vector3d jump_variance_A2 = Eigen::Vector3d::Zero();
  std::uint64_t n_jumps = 0;
};
ProjectionAxes most_informative_axes(const TransportStatistics& stats);

}  // namespace ionmsm
