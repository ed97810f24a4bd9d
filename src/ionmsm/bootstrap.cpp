// The block bootstrap of timescales and D: see bootstrap.hpp.
#include "ionmsm/bootstrap.hpp"

#include <algorithm>
#include <exception>
#include <limits>
#include <random>
#include <utility>

#include "ionmsm/blocks.hpp"
#include "ionmsm/connectivity.hpp"
#include "ionmsm/diffusion.hpp"
#include "ionmsm/leading_spectrum.hpp"
#include "ionmsm/parallel.hpp"
#include "ionmsm/timescales.hpp"

namespace ionmsm {

const char* bootstrap_status_name(BootstrapStatus status) {
  switch (status) {
    case BootstrapStatus::Ok: return "ok";
    case BootstrapStatus::Insufficient: return "insufficient";
    case BootstrapStatus::Absent: return "absent";
    case BootstrapStatus::Off: return "off";
  }
  return "unknown";
}

namespace {

/// The status of a bootstrap before any replicate: Ok, or why there is none.
BootstrapResult bootstrap_status(const CountsData& data, const BootstrapOptions& o) {
  BootstrapResult res;
  if (data.block_steps <= 0) {
    res.status = BootstrapStatus::Absent;
    res.message = "the counts file has no blocks (run fix msm with 'blocks Nb' for error bars)";
    return res;
  }
  res.n_replicates = o.n_replicates;
  if (res.n_replicates == 0) {
    res.status = BootstrapStatus::Off;
    res.message = "--bootstrap 0";
    return res;
  }
  const std::size_t nb = data.blocks.size();
  if (nb < 2) {
    res.status = BootstrapStatus::Insufficient;
    res.message = "the counts file has " + std::to_string(nb) +
                  " block(s); a bootstrap needs at least 2 (use a shorter 'blocks Nb')";
    res.n_replicates = 0;
    return res;
  }
  res.status = BootstrapStatus::Ok;
  if (nb < kMinBootstrapBlocks)
    res.message = "only " + std::to_string(nb) + " blocks: the error bars are themselves "
                  "uncertain (aim for >= " + std::to_string(kMinBootstrapBlocks) + " blocks)";
  return res;
}

/// The K slowest timescales of one replicate's counts into values[0..K) at replicate r.
void replicate_timescales(const LagCounts& lc, std::size_t nsites, const BootstrapOptions& o,
                          int K, BootstrapLag& bl, std::size_t r) {
  MsmOptions msm_opt;
  msm_opt.estimator = o.estimator;
  const MarkovModel model = estimate_markov_model(lc, nsites, msm_opt);
  const Spectrum sp = leading_spectrum(model, o.estimator, K + 1);
  const auto ts = implied_timescales(sp.eigenvalues, bl.lag_time);
  for (int k = 1; k <= K && static_cast<std::size_t>(k) < ts.size(); ++k)
    if (ts[static_cast<std::size_t>(k)].status == TimescaleStatus::Ok)
      bl.values[static_cast<std::size_t>(k - 1)][r] = ts[static_cast<std::size_t>(k)].timescale;
}

/// The transport quantities (kBootstrapTransport) of one replicate into values[K..] at r.
void replicate_transport(const CountsData& base, const std::vector<CountBlock>& blocks,
                         const std::vector<std::uint64_t>& weights, const LagCounts& lc,
                         const BootstrapOptions& o, int K, BootstrapLag& bl, std::size_t r) {
  CountsData one = base;
  one.occupancy = weighted_occupancy(blocks, weights);
  one.lags.assign(1, o.within_components ? within_components(lc, base.nsites()).counts : lc);
  const TransportStatistics st = build_transport_statistics(one, 0);
  const DiffusionTensorResult d = exact_diffusion_tensor(st, bl.lag_time);
  const double v[kBootstrapTransportCount] = {d.D_tensor(0, 0), d.D_tensor(1, 1), d.D_tensor(2, 2),
                                              d.D_total,
                                              d.correlation_factor_total};
  for (std::size_t q = 0; q < kBootstrapTransportCount; ++q)
    bl.values[static_cast<std::size_t>(K) + q][r] = v[q];
}

}  // namespace

BootstrapResult run_bootstrap(const CountsData& data, const BootstrapOptions& o) {
  BootstrapResult res = bootstrap_status(data, o);
  if (res.status != BootstrapStatus::Ok) return res;
  const int K = std::max(1, std::min(kBootstrapTimescales, o.n_eigenvalues - 1));
  res.n_timescales = K;
  const auto R = static_cast<std::size_t>(res.n_replicates);
  // the multiplicities are drawn in order from one generator: the result depends on the seed
  // only, never on the thread scheduling
  std::mt19937_64 rng(o.seed);
  std::vector<std::vector<std::uint64_t>> weights(R);
  for (auto& w : weights) w = bootstrap_weights(data.blocks.size(), rng);
  const std::size_t nq = static_cast<std::size_t>(K) + kBootstrapTransportCount;
  for (std::size_t i = 0; i < data.lags.size(); ++i) {
    if (data.lags[i].total() == 0) continue;
    BootstrapLag bl;
    bl.index = i;
    bl.lag_steps = data.lags[i].lag_steps;
    bl.lag_time = static_cast<double>(bl.lag_steps) * o.time_per_step;
    bl.values.assign(nq, std::vector<double>(R, std::numeric_limits<double>::quiet_NaN()));
    res.lags.push_back(std::move(bl));
  }
  CountsData base = data;  // metadata and sites; counts come from the blocks
  base.lags.clear();
  base.blocks.clear();
  base.block_steps = 0;
  parallel_for(res.lags.size() * R, [&](std::size_t t, int) {
    BootstrapLag& bl = res.lags[t / R];
    const std::size_t r = t % R;
    const LagCounts lc = weighted_lag_counts(data.blocks, weights[r], bl.index, bl.lag_steps);
    if (lc.total() == 0) return;
    // an undefined replicate (e.g. a failed estimate) stays NaN and is counted as such
    try {
      replicate_timescales(lc, data.nsites(), o, K, bl, r);
    } catch (const std::exception&) {
    }
    try {
      replicate_transport(base, data.blocks, weights[r], lc, o, K, bl, r);
    } catch (const std::exception&) {
    }
  });
  return res;
}

}  // namespace ionmsm
