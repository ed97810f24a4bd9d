#pragma once
// Per-lag displacement statistics of the counted transitions (the input of every transport
// quantity), the jump network and its projection axes. Conventions: transport.hpp.
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ionmsm/counts.hpp"
#include "ionmsm/geometry.hpp"

namespace ionmsm {

// ============================================================================ statistics

/// One counts row between active sites, with its probability and displacement.
struct DisplacementRow {
  SiteIndex from = 0;
  SiteIndex to = 0;
  Image shift{0, 0, 0};
  std::uint64_t count = 0;
  double probability = 0.0;                                ///< count / outgoing count of `from`
  Eigen::Vector3d displacement = Eigen::Vector3d::Zero();  ///< H (f_to - f_from + shift)
};

/// All shift rows of one (from, to) pair combined. probability = M(to, from).
struct PairDisplacementMoments {
  SiteIndex from = 0;
  SiteIndex to = 0;
  std::uint64_t count = 0;   ///< summed over shifts
  double probability = 0.0;  ///< M(to, from) = P(from, to)
  Eigen::Vector3d mean = Eigen::Vector3d::Zero();              ///< <delta>_{from->to}
  Eigen::Matrix3d second_moment = Eigen::Matrix3d::Zero();    ///< <delta delta^T>_{from->to}
};

/// Transition statistics of one lag (sparse: O(number of count rows) memory).
struct TransportStatistics {
  std::int64_t lag_steps = 0;
  Eigen::Matrix3d box_h = Eigen::Matrix3d::Identity();  ///< columns = cell vectors
  std::vector<Eigen::Vector3d> site_fractional;          ///< as stored in the counts data
  std::vector<Eigen::Vector3d> site_cartesian;         ///< box_origin + H f
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

// ============================================================================ jump network

/// One unordered site pair a < b with at least one counted transition between them.
struct JumpEdge {
  SiteIndex site_a = 0, site_b = 0;
  std::uint64_t count_ab = 0, count_ba = 0;  ///< a -> b and b -> a (all shifts)
  double rate_ab = 0.0;  ///< M(b, a) / tau
  double rate_ba = 0.0;  ///< M(a, b) / tau
  /// Count-weighted mean jump vector oriented a -> b (b -> a rows enter with a minus sign).
  Eigen::Vector3d mean_jump_ab = Eigen::Vector3d::Zero();
};

struct JumpNetwork {
  std::int64_t lag_steps = 0;
  double lag_time = 0.0;
  std::vector<Eigen::Vector3d> site_cartesian;
  std::vector<double> occupancy_fraction;
  std::vector<JumpEdge> edges;  ///< sorted (site_a, site_b); stays (i -> i) are not edges
  /// Per site: counts of i -> i rows with a nonzero shift (hops onto an own periodic image,
  /// only possible in very small cells); not represented as edges.
  std::vector<std::uint64_t> self_image_hop_count;
};

/// Network of the given statistics (active sites only, rates from the renormalised M).
JumpNetwork build_jump_network(const TransportStatistics& stats, double lag_time);
/// Network of the shortest lag, data.lags[0]; lag_time is that lag's time.
JumpNetwork build_jump_network(const CountsData& data, double lag_time);

/// The two Cartesian axes with the largest count-weighted variance of the jump vectors (all
/// rows except stays with zero shift): var_a = sum c delta_a^2 / sum c - (sum c delta_a / sum c)^2.
/// axes is increasing (for plotting as horizontal, vertical); ties prefer the lower axis.
/// Without any jump: axes {0, 1}, variances 0.
struct ProjectionAxes {
  std::array<int, 2> axes{0, 1};
  Eigen::Vector3d jump_variance = Eigen::Vector3d::Zero();
  std::uint64_t n_jumps = 0;
};
ProjectionAxes most_informative_axes(const TransportStatistics& stats);

}  // namespace ionmsm
