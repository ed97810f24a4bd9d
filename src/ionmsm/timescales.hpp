#pragma once
// Implied timescales t_k = -tau / ln|lambda_k| (paper eq. 6 with the modulus, as deeptime), per
// lag and over lags; groups of nearly degenerate modes.
// Conventions: msm.hpp.
#include <Eigen/Dense>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ionmsm/estimators.hpp"
#include "ionmsm/spectrum.hpp"

namespace ionmsm {

enum class TimescaleStatus {
  Ok,           ///< real, 0 < lambda < 1: t = -tau / ln(lambda)
  Stationary,   ///< real, |lambda - 1| <= stationary_tolerance: t = +infinity
  NonPositive,  ///< real, lambda <= 0: t = -tau / ln|lambda| (NaN for lambda = 0 or -1)
  Complex,      ///< |Im lambda| > imag_tolerance: t = -tau / ln|lambda| (oscillating or split
                ///< degenerate mode; finite sampling splits degenerate real modes into pairs)
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

/// Eq. 3 with the modulus for every eigenvalue (the leading one included; it is normally
/// Stationary): t = -tau / ln|lambda| whenever 0 < |lambda| < 1, whatever the status; a
/// negative or complex eigenvalue keeps its status as a flag. |lambda| = 0, or within
/// stationary_tolerance of 1 or above (an undamped oscillation such as lambda = -1), gives NaN.
/// lag_time must be finite and > 0 (std::invalid_argument).
std::vector<ImpliedTimescale> implied_timescales(const Eigen::VectorXcd& eigenvalues,
                                                 double lag_time,
                                                 const TimescaleOptions& options = {});

/// Consecutive modes whose timescales agree within a relative tolerance: one degenerate set.
struct DegenerateSet {
  std::size_t first = 0;         ///< index of its first mode in the timescale list (0-based)
  std::size_t multiplicity = 0;  ///< number of modes in the set
  double timescale = 0.0;        ///< mean timescale of its modes
  double modulus = 0.0;          ///< mean |lambda| of its modes
  double timescale_spread = 0.0; ///< max - min timescale within the set
};
/// Default relative tolerance of degenerate_sets: (t_max - t_min) / t_max within a set.
inline constexpr double kDegeneracyTolerance = 0.05;

/// The modes with a finite timescale (Stationary and undefined ones skipped), in list order
/// (descending modulus), grouped into degenerate sets: a mode joins the current set when its
/// timescale differs from the set's largest by at most relative_tolerance times that largest.
/// relative_tolerance must be in [0, 1) (std::invalid_argument).
std::vector<DegenerateSet> degenerate_sets(const std::vector<ImpliedTimescale>& timescales,
                                           double relative_tolerance = kDegeneracyTolerance);

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

}  // namespace ionmsm
