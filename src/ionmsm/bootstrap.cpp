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

/// b summed into a (same site and lag lists).
void add_block(CountBlock& a, const CountBlock& b) {
  a.n_samples += b.n_samples;
  for (std::size_t s = 0; s < a.occupancy.size() && s < b.occupancy.size(); ++s)
    a.occupancy[s] += b.occupancy[s];
  for (std::size_t l = 0; l < a.n_origins.size() && l < b.n_origins.size(); ++l)
    a.n_origins[l] += b.n_origins[l];
  const std::vector<CountBlock> pair = {a, b};
  for (std::size_t l = 0; l < a.rows.size(); ++l)
    a.rows[l] = weighted_lag_counts(pair, {1, 1}, l, 0).rows;
}

/// The status of a bootstrap before any replicate: Ok, or why there is none.
BootstrapResult bootstrap_status(const CountsData& data, const BootstrapOptions& o) {
  BootstrapResult res;
  if (data.block_steps <= 0) {
    res.status = BootstrapStatus::Absent;
    res.message = "the counts file has no blocks (run fix msm with 'blocks Nb' for error bars)";
    return res;
  }
  std::size_t merged = 0;
  const std::size_t nb = merge_partial_blocks(data.blocks, merged).size();
  res.n_blocks = nb;
  res.n_merged_blocks = merged;
  res.n_replicates = o.n_replicates;
  if (res.n_replicates == 0) {
    res.status = BootstrapStatus::Off;
    res.message = "--bootstrap 0";
    return res;
  }
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
  if (merged > 0)
    res.message += std::string(res.message.empty() ? "" : "; ") + std::to_string(merged) +
                   " partial block(s) (fewer than half the samples of the largest block) merged "
                   "into a neighbour before resampling";
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
  // mode k + 1 (1-based, as in the report): every mode with a timescale, complex and negative
  // ones included, so that k means the same here as in the report's eigenvalue list
  for (int k = 1; k <= K && static_cast<std::size_t>(k) < ts.size(); ++k)
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

std::vector<CountBlock> merge_partial_blocks(const std::vector<CountBlock>& blocks,
                                             std::size_t& n_merged) {
  n_merged = 0;
  std::uint64_t largest = 0;
  for (const auto& b : blocks) largest = std::max(largest, b.n_samples);
  auto partial = [&](const CountBlock& b) {
    return static_cast<double>(b.n_samples) < kPartialBlockFraction * static_cast<double>(largest);
  };
  std::vector<CountBlock> out;
  bool pending = false;  // out.back() is a partial first block waiting for its successor
  for (const auto& b : blocks) {
    if (pending) {
      add_block(out.back(), b);
      pending = false;
    } else if (partial(b) && !out.empty()) {
      add_block(out.back(), b);
      ++n_merged;
    } else {
      out.push_back(b);
      if (partial(b) && blocks.size() > 1) {
        pending = true;
        ++n_merged;
      }
    }
  }
  return out;
}

BootstrapResult run_bootstrap(const CountsData& data, const BootstrapOptions& o) {
  BootstrapResult res = bootstrap_status(data, o);
  if (res.status != BootstrapStatus::Ok) return res;
  const int K = std::max(1, std::min(kBootstrapTimescales, o.n_eigenvalues - 1));
  res.n_timescales = K;
  const auto R = static_cast<std::size_t>(res.n_replicates);
  // the multiplicities are drawn in order from one generator: the result depends on the seed
  // only, never on the thread scheduling
  std::size_t merged = 0;
  const std::vector<CountBlock> blocks = merge_partial_blocks(data.blocks, merged);
  std::mt19937_64 rng(o.seed);
  std::vector<std::vector<std::uint64_t>> weights(R);
  for (auto& w : weights) w = bootstrap_weights(blocks.size(), rng);
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
    const LagCounts lc = weighted_lag_counts(blocks, weights[r], bl.index, bl.lag_steps);
    if (lc.total() == 0) return;
    // an undefined replicate (e.g. a failed estimate) stays NaN and is counted as such
    try {
      replicate_timescales(lc, data.nsites(), o, K, bl, r);
    } catch (const std::exception&) {
    }
    try {
      replicate_transport(base, blocks, weights[r], lc, o, K, bl, r);
    } catch (const std::exception&) {
    }
  });
  return res;
}

}  // namespace ionmsm
