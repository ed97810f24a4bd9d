#pragma once
// The cell of transport under a changing cell (NPT, fix deform). A counts file stores the cell
// of the LAST sample (/box/h) and, per lag, the MD site-projected moments
// sum delta delta^T with delta = H(t + lag) (f_to - f_from + shift), i.e. each pair in the cell of
// its later sample (docs/file-format.md). Transport built with the last cell then disagrees
// with the projected MSD by the ratio of the squared cells. This finds the effective cell
//
//   H_eff = S H_last,  S symmetric positive definite,  S B S = Q,
//   B = <delta_last delta_last^T>,  Q = <delta delta^T>_MD     (shortest lag, over all counts),
//   S = B^{-1/2} (B^{1/2} Q B^{1/2})^{1/2} B^{-1/2}             (the unique SPD solution),
//
// with which the site-projected second moment of the counted transitions equals the MD one:
// the hop-weighted root-mean-square cell. For an isotropic scaling H(t) = s(t) H0 it is exactly
// sqrt(<s^2>_hops) H0; for a constant cell S = I. Transport with H_eff is consistent with the
// projected MSD at the shortest lag by construction.
#include <Eigen/Dense>
#include <string>

#include "ionmsm/counts.hpp"

namespace ionmsm {

enum class CellStatus {
  Applied,         ///< H_eff differs from the last cell: use it
  Constant,        ///< B and Q agree to 1e-9 relative: the cell did not change (S = I)
  NoMoments,       ///< the file has no /lags/displacement_* (S = I)
  NotThreeDimensional,  ///< the hops do not span 3 dimensions: S undetermined (S = I)
};
const char* cell_status_name(CellStatus status);  ///< "applied", "constant", ...

struct EffectiveCell {
  CellStatus status = CellStatus::NoMoments;
  std::int64_t lag_steps = 0;  ///< the lag whose moments were used
  Eigen::Matrix3d box_h = Eigen::Matrix3d::Identity();   ///< H_eff (H_last unless Applied)
  Eigen::Matrix3d strain = Eigen::Matrix3d::Identity();  ///< S
  /// ||Q - B|| / ||B|| (Frobenius): how far the last cell is from the MD moments.
  double relative_mismatch = 0.0;
};

/// Relative mismatch at or below which the cell counts as constant.
inline constexpr double kConstantCellTolerance = 1e-9;

/// H_eff of `data` from its shortest lag with counts. Throws std::invalid_argument for a
/// non-finite or singular box_h or moments that are not positive semi-definite.
EffectiveCell effective_cell(const CountsData& data);

}  // namespace ionmsm
