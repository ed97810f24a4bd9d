#pragma once
// The lag time tau chosen the paper's way (arXiv:2511.20863, sec. 2.2.4 step 3 and Fig. 2):
// the shortest lag beyond which the slowest m implied timescales no longer change, with the
// Chapman-Kolmogorov error at that lag checked as well (docs/theory.md, "Choice of tau").
//
// Rule. For lag i (lags in increasing order) and each of the m slowest relaxation timescales
// t_k (k = 2 .. m+1, descending), compare t_k(i) with t_k(j) at every longer lag j that still
// resolves that mode (tau_j < t_k(j) < max_timescale: |lambda_k| > 1/e, else the eigenvalue is
// lost in the noise; and shorter than the run, else the data cannot resolve the process):
//   change_kj = |t_k(j) - t_k(i)|,
//   converged when change_kj <= relative_tolerance * t_k(i)
//              or, where bootstrap standard deviations exist at both lags,
//                  change_kj <= sd_tolerance * sqrt(sd_k(i)^2 + sd_k(j)^2).
// Lag i qualifies when it resolves all m modes itself, is compared with at least min_compared
// longer lags (a plateau needs more than one point beyond it), and every change is converged. The selected lag is the
// shortest qualifying lag whose CK error is at most max_ck_error (or untested); if every
// qualifying lag fails the CK check, the shortest qualifying one (status ConvergedCkFailed).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace ionmsm {

/// One lag's slowest relaxation timescales, the input of select_lag_by_its.
struct LagItsInput {
  std::int64_t lag_steps = 0;
  double lag_time = 0.0;  ///< tau, in the unit of the timescales
  /// t_2, t_3, ... (descending modulus; NaN where undefined); empty when the lag has no model.
  std::vector<double> timescales;
  /// Bootstrap standard deviation of each timescale (empty, or NaN where unknown).
  std::vector<double> timescale_sd;
  /// Largest CK error err(n) with this lag as tau; NaN when not tested.
  double ck_error = std::numeric_limits<double>::quiet_NaN();
};

struct ItsConvergenceOptions {
  int n_timescales = 3;             ///< m (>= 1)
  double relative_tolerance = 0.1;  ///< (0, 1)
  double sd_tolerance = 2.0;        ///< > 0: changes within this many combined sd are noise
  double max_ck_error = 0.1;        ///< > 0
  /// Timescales at or above this are not resolved (the run length: a process slower than the
  /// run is not sampled); +infinity: no limit.
  double max_timescale = std::numeric_limits<double>::infinity();
  std::size_t min_compared = 2;     ///< >= 1
};

enum class LagSelectionStatus {
  Converged,          ///< a lag qualifies and passes the CK check
  ConvergedCkFailed,  ///< lags qualify, but every one has a CK error above max_ck_error
  NotConverged,       ///< no lag qualifies
  TooFewLags,         ///< fewer than 2 lags resolve the m slowest modes: nothing to compare
};
/// "converged", "converged (CK check failed)", "not converged", "too few lags".
const char* lag_selection_status_name(LagSelectionStatus status);

/// The numbers behind the rule for one lag.
struct LagConvergence {
  std::int64_t lag_steps = 0;
  double lag_time = 0.0;
  bool resolved = false;        ///< m timescales, each longer than the lag, shorter than the run
  std::size_t n_compared = 0;   ///< longer lags compared (with at least one resolved mode)
  /// max over modes and longer lags of change_kj / t_k(i); NaN when nothing was compared
  double max_relative_change = std::numeric_limits<double>::quiet_NaN();
  /// max of change_kj / sqrt(sd_k(i)^2 + sd_k(j)^2) where both sd exist; NaN otherwise
  double max_change_in_sd = std::numeric_limits<double>::quiet_NaN();
  bool converged = false;  ///< resolved, compared, every change converged
  double ck_error = std::numeric_limits<double>::quiet_NaN();
  bool ck_ok = true;  ///< ck_error NaN (untested) or <= max_ck_error
};

struct LagSelectionResult {
  LagSelectionStatus status = LagSelectionStatus::TooFewLags;
  long index = -1;             ///< into the input lags; -1 unless Converged / ConvergedCkFailed
  int n_timescales = 0;        ///< m as applied
  ItsConvergenceOptions options;
  std::vector<LagConvergence> lags;  ///< one per input lag
};

/// Applies the rule above. Lags must be in increasing lag_steps with finite lag_time > 0, the
/// options in range (std::invalid_argument otherwise).
LagSelectionResult select_lag_by_its(const std::vector<LagItsInput>& lags,
                                     const ItsConvergenceOptions& options = {});

}  // namespace ionmsm
