#pragma once
// Internal to the transport sources (transport_statistics, propagation, diffusion): argument
// checks and the state-space form of the pair statistics.
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ionmsm/text.hpp"
#include "ionmsm/transport_statistics.hpp"

namespace ionmsm::detail {

using text::cat;
using Triplets = std::vector<Eigen::Triplet<double>>;

[[noreturn]] inline void fail(const std::string& message) { throw std::invalid_argument(message); }

inline void check_tau(double lag_time, const char* who) {
  if (!std::isfinite(lag_time) || lag_time <= 0.0)
    fail(cat(who, ": tau_ps must be finite and > 0 (got ", lag_time, ")"));
}

// Pairs in state indices (internal propagation and solver form).
struct StatePair {
  int from = 0, to = 0;  // state indices
  double p = 0.0;
  Eigen::Vector3d mean = Eigen::Vector3d::Zero();
  Eigen::Matrix3d second = Eigen::Matrix3d::Zero();
  std::uint64_t count = 0;
};

inline std::vector<StatePair> state_pairs(const TransportStatistics& s) {
  std::vector<StatePair> out;
  out.reserve(s.pairs.size());
  for (const auto& q : s.pairs) {
    StatePair sp;
    sp.from = s.state_of_site[static_cast<std::size_t>(q.from)];
    sp.to = s.state_of_site[static_cast<std::size_t>(q.to)];
    sp.p = q.probability;
    sp.mean = q.mean;
    sp.second = q.second_moment;
    sp.count = q.count;
    out.push_back(sp);
  }
  return out;
}

inline void check_stats(const TransportStatistics& s, const char* who) {
  if (s.nstates() == 0 || s.state_of_site.size() != s.nsites())
    fail(cat(who, ": empty or inconsistent TransportStatistics (build it with "
                  "build_transport_statistics)"));
}

// Start distribution over states: occupancy on the active set, normalised; fallback: the
// fraction of origins (outgoing counts into the active set).
inline std::vector<double> occupancy_start(const TransportStatistics& s) {
  const std::size_t n = s.nstates();
  std::vector<double> p(n, 0.0);
  double sum = 0.0;
  if (s.occupancy_fraction.size() == s.nsites()) {
    for (std::size_t k = 0; k < n; ++k) {
      p[k] = s.occupancy_fraction[static_cast<std::size_t>(s.active_sites[k])];
      sum += p[k];
    }
  }
  if (!(sum > 0.0)) {
    std::fill(p.begin(), p.end(), 0.0);
    sum = 0.0;
    for (const auto& q : s.pairs) {
      const double c = static_cast<double>(q.count);
      p[static_cast<std::size_t>(s.state_of_site[static_cast<std::size_t>(q.from)])] += c;
      sum += c;
    }
  }
  for (double& x : p) x /= sum;
  return p;
}

inline Eigen::Matrix3d sym_clean(const Eigen::Matrix3d& a) { return 0.5 * (a + a.transpose()); }

}  // namespace ionmsm::detail
