#pragma once
// The exact long-time diffusion tensor of the Markov model, per closed communicating class.
// Conventions: transport.hpp.
#include <Eigen/Dense>
#include <cstdint>
#include <string>
#include <vector>

#include "ionmsm/transport_statistics.hpp"

namespace ionmsm {

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
// side (I - Q is a diagonally dominant M-matrix, so it converges in about 100 iterations on a
// 10^4-site 3D lattice), each accepted only if its true relative residual is <= 1e-12;
// otherwise the sparse LU (Eigen SparseLU, COLAMD; two orders of magnitude slower there,
// bench/README.md) is the fallback.
struct DiffusionSolverOptions {
  /// Systems (class size - 1, or number of transient states) with at most this many unknowns
  /// use dense partial-pivoting LU, larger ones the sparse iterative / direct path above.
  std::size_t dense_max_states = 500;
};

struct ClassDiffusion {
  std::vector<SiteIndex> sites;  ///< increasing
  double weight = 0.0;           ///< w_c
  Eigen::Matrix3d D_tensor = Eigen::Matrix3d::Zero();
  Eigen::Matrix3d D0_tensor = Eigen::Matrix3d::Zero();
  Eigen::Vector3d drift_velocity = Eigen::Vector3d::Zero();
};

struct DiffusionTensorResult {
  std::int64_t lag_steps = 0;
  double lag_time = 0.0;
  Eigen::Matrix3d D_tensor = Eigen::Matrix3d::Zero();   ///< correlated (exact) tensor
  Eigen::Matrix3d D0_tensor = Eigen::Matrix3d::Zero();  ///< uncorrelated-hop tensor
  double D_total = 0.0;   ///< trace(D) / 3
  double D0_total = 0.0;  ///< trace(D0) / 3
  /// D and D0 are cleaned of round-off (zero_below_roundoff); f_a = D_aa / D0_aa, NaN where
  /// D0_aa is 0 after the cleaning (no hops along that axis).
  Eigen::Vector3d correlation_factor = Eigen::Vector3d::Zero();
  double correlation_factor_total = 0.0;  ///< trace(D) / trace(D0) (NaN if trace(D0) == 0)
  Eigen::Vector3d drift_velocity = Eigen::Vector3d::Zero();  ///< m / tau
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

/// Entries of a D tensor at or below this fraction of its largest entry are round-off: the
/// exact D is accurate to ~1e-13 relative, so smaller values carry no information.
inline constexpr double kRoundoffRelative = 1e-10;

/// m with every entry |m_ij| <= relative * scale set to exactly 0 (scale and relative finite and
/// >= 0, else std::invalid_argument). exact_diffusion_tensor uses the largest entry of D and D0
/// as the scale, so that a D that is round-off only (a closed class that cannot diffuse, next
/// to hops of D0) becomes exactly 0.
Eigen::Matrix3d zero_below_roundoff(const Eigen::Matrix3d& m, double scale,
                                    double relative = kRoundoffRelative);

/// Exact D of the Markov model at this lag. Throws std::invalid_argument for lag_time not finite
/// and > 0; std::runtime_error if a linear solve fails.
DiffusionTensorResult exact_diffusion_tensor(const TransportStatistics& stats, double lag_time,
                                             const DiffusionSolverOptions& options = {});

}  // namespace ionmsm
