// The tracer correlation factor from elementary hops: see hop_diffusion.hpp.
#include "ionmsm/hop_diffusion.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace ionmsm {

double site_change_probability(const TransportStatistics& stats, const std::vector<double>& pi) {
  if (pi.size() != stats.nsites())
    throw std::invalid_argument("site_change_probability: pi has " + std::to_string(pi.size()) +
                                " entries, the statistics " + std::to_string(stats.nsites()) +
                                " sites");
  double p = 0.0;
  for (const DisplacementRow& r : stats.rows) {
    const bool moved = r.from != r.to || r.shift[0] != 0 || r.shift[1] != 0 || r.shift[2] != 0;
    if (moved) p += pi[static_cast<std::size_t>(r.from)] * r.probability;
  }
  return p;
}

TracerCorrelation tracer_correlation(const DiffusionTensorResult& selected,
                                     const DiffusionTensorResult& shortest,
                                     const TransportStatistics& shortest_stats) {
  TracerCorrelation t;
  t.hop_lag_steps = shortest.lag_steps;
  t.hop_lag_time = shortest.lag_time;
  t.lag_steps = selected.lag_steps;
  t.lag_time = selected.lag_time;
  t.D_hop = shortest.D0_tensor;  // round-off already zeroed by exact_diffusion_tensor
  t.D_hop_total = t.D_hop.trace() / 3.0;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int a = 0; a < 3; ++a)
    t.f[a] = t.D_hop(a, a) > 0.0 ? selected.D_tensor(a, a) / t.D_hop(a, a) : nan;
  t.f_total = t.D_hop.trace() > 0.0 ? selected.D_tensor.trace() / t.D_hop.trace() : nan;
  t.site_change_probability =
      site_change_probability(shortest_stats, shortest.limiting_distribution);
  return t;
}

}  // namespace ionmsm
