#pragma once
// MSD by propagating the Markov model (paper eqs. 7-8) and the Einstein fit of an MSD curve.
// Conventions: transport.hpp.
#include <Eigen/Dense>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ionmsm/transport_statistics.hpp"

namespace ionmsm {

// ============================================================================ MSD

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
  double lag_time = 0.0;
  std::vector<std::int64_t> n_lags;
  std::vector<double> time;                    ///< n tau
  std::vector<Eigen::Matrix3d> msd_tensor;      ///< sum p d d^T (component-wise MSD)
  std::vector<Eigen::Vector3d> mean_displacement;  ///< sum p d
  std::vector<double> msd_xx, msd_yy, msd_zz, msd_total;  ///< total = trace
  std::vector<double> start_probability;  ///< per site (0 on excluded sites), sums to 1
};

/// Propagates the MSD. Cost: moments O(n_max * pairs); minimum_image and replicated
/// O(|A| * n_max * rows * R1 R2 R3) time (every start site is propagated separately) and
/// O(|A| R1 R2 R3) memory per start column (columns are processed in blocks of <= 64, about
/// 2^20 state-column entries). Throws std::invalid_argument for lag_time not finite and > 0,
/// n_max < 1, a replica count < 1; std::runtime_error if the MsdStart::stationary solve fails.
MsdCurve propagate_msd(const TransportStatistics& stats, double lag_time, const MsdOptions& options);

/// The covariance of the displacement instead of its second moment: msd_tensor - m m^T with m
/// the mean displacement (and m set to 0), so that a drift v (m = v t) no longer adds v^2 t^2.
/// Meaningful for MsdMethod::moments (the folded methods' mean is bounded). Throws
/// std::invalid_argument for inconsistent array sizes.
MsdCurve drift_centred(const MsdCurve& curve);

/// "minimum_image", "replicated", "moments".
const char* msd_method_name(MsdMethod method);
/// Inverse of msd_method_name; throws std::invalid_argument naming the accepted values.
MsdMethod parse_msd_method(const std::string& name);

// ============================================================================ Einstein fit

/// Least-squares line MSD = slope t + c per component on the points k >= floor(N * first_fraction)
/// of the curve (N points; default: the last half; at least 2 points are always used).
/// D_aa = slope_aa / 2 for xx, yy, zz; D_total = slope_total / 6 (3D Einstein relation, eq. 8).
struct EinsteinFit {
  Eigen::Vector3d D_axes = Eigen::Vector3d::Zero();  ///< (D_xx, D_yy, D_zz)
  double D_total = 0.0;
  Eigen::Vector3d intercept = Eigen::Vector3d::Zero();
  double intercept_total = 0.0;
  std::size_t first_point = 0;  ///< index of the first fitted point
  std::size_t n_points = 0;
};
/// Throws std::invalid_argument for a curve with fewer than 2 points, inconsistent array sizes,
/// or first_fraction outside [0, 1).
EinsteinFit fit_einstein(const MsdCurve& curve, double first_fraction = 0.5);

}  // namespace ionmsm
