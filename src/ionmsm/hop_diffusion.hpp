#pragma once
// The tracer correlation factor from elementary hops (docs/theory.md §9): the exact D of the
// selected lag over the uncorrelated-hop diffusion D_hop of the shortest lag.
//
//   D_hop = (1 / 2) sum_i pi_i sum_{j, s} k_ij,s  delta_ij,s delta_ij,s^T,   k = P(tau_1) / tau_1,
//
// the diffusion of a walker whose hops (site changes, with their jump vectors delta, at the
// rates k measured over the shortest lag tau_1) are uncorrelated: D_hop is D0 (diffusion.hpp)
// of the shortest lag. f_tracer = D(tau_sel) / D_hop per axis and trace(D) / trace(D_hop) is the
// tracer correlation factor of solid-state diffusion: 1 for uncorrelated hops, below 1 when an
// ion tends to hop back. It is the elementary-hop value only if tau_1 is short compared with the
// residence time on a site (few ions change site twice within tau_1): site_change_probability
// says how many do change site in one tau_1. f_lag = D(tau) / D0(tau) per lag, in contrast,
// tends to 1 for any model once tau spans many hops.
#include <Eigen/Dense>
#include <cstdint>
#include <vector>

#include "ionmsm/diffusion.hpp"
#include "ionmsm/transport_statistics.hpp"

namespace ionmsm {

struct TracerCorrelation {
  std::int64_t hop_lag_steps = 0;  ///< tau_1: the lag of D_hop
  double hop_lag_time = 0.0;
  std::int64_t lag_steps = 0;      ///< the lag of D
  double lag_time = 0.0;
  Eigen::Matrix3d D_hop = Eigen::Matrix3d::Zero();
  double D_hop_total = 0.0;  ///< trace(D_hop) / 3
  /// f_a = D_aa / D_hop_aa (NaN where D_hop_aa = 0: no hops along that axis).
  Eigen::Vector3d f = Eigen::Vector3d::Zero();
  double f_total = 0.0;  ///< trace(D) / trace(D_hop) (NaN without hops)
  /// sum_i pi_i P_i(site change in one tau_1): the fraction of ions that change site (or hop
  /// onto an own periodic image) within one shortest lag, at stationarity.
  double site_change_probability = 0.0;
};

/// Probability that the chain of `stats`, started from `pi` (per site, as
/// DiffusionTensorResult::limiting_distribution), leaves its site in one lag: sum over rows with
/// a site change or a nonzero shift of pi_from * probability. pi must have stats.nsites()
/// entries (std::invalid_argument).
double site_change_probability(const TransportStatistics& stats, const std::vector<double>& pi);

/// f_tracer from D at the selected lag and the shortest lag's D0 (= D_hop) and statistics.
TracerCorrelation tracer_correlation(const DiffusionTensorResult& selected,
                                     const DiffusionTensorResult& shortest,
                                     const TransportStatistics& shortest_stats);

}  // namespace ionmsm
