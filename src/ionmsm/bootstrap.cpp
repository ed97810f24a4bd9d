// The block bootstrap of timescales and D: see bootstrap.hpp.
#include "ionmsm/bootstrap.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

#include "ionmsm/blocks.hpp"
#include "ionmsm/connectivity.hpp"
#include "ionmsm/diffusion.hpp"
#include "ionmsm/leading_spectrum.hpp"
#include "ionmsm/parallel.hpp"
#include "ionmsm/text.hpp"
#include "ionmsm/timescales.hpp"

namespace ionmsm {

const char* bootstrap_method_name(BootstrapMethod method) {
  switch (method) {
    case BootstrapMethod::Linearized: return "linearized";
    case BootstrapMethod::Resample: return "resample";
  }
  return "unknown";
}

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

/// The K slowest timescales of counts `lc` into v[0..K) (mode k + 1, 1-based as in the
/// report: every mode with a timescale, complex and negative ones included, so that k means
/// the same here as in the report's eigenvalue list).
void lag_timescales(const LagCounts& lc, std::size_t nsites, const BootstrapOptions& o, int K,
                    double lag_time, std::vector<double>& v) {
  MsmOptions msm_opt;
  msm_opt.estimator = o.estimator;
  const MarkovModel model = estimate_markov_model(lc, nsites, msm_opt);
  const Spectrum sp = leading_spectrum(model, o.estimator, K + 1);
  const auto ts = implied_timescales(sp.eigenvalues, lag_time);
  for (int k = 1; k <= K && static_cast<std::size_t>(k) < ts.size(); ++k)
    v[static_cast<std::size_t>(k - 1)] = ts[static_cast<std::size_t>(k)].timescale;
}

/// The transport quantities (kBootstrapTransport) of counts `lc` and occupancy `occ` into
/// v[K..].
void lag_transport(const CountsData& base, std::vector<std::uint64_t> occ, const LagCounts& lc,
                   const BootstrapOptions& o, int K, double lag_time, std::vector<double>& v) {
  CountsData one = base;
  one.occupancy = std::move(occ);
  one.lags.assign(1, o.within_components ? within_components(lc, base.nsites()).counts : lc);
  const TransportStatistics st = build_transport_statistics(one, 0);
  const DiffusionTensorResult d = exact_diffusion_tensor(st, lag_time);
  const double t[kBootstrapTransportCount] = {d.D_tensor(0, 0), d.D_tensor(1, 1),
                                              d.D_tensor(2, 2), d.D_total,
                                              d.correlation_factor_total};
  for (std::size_t q = 0; q < kBootstrapTransportCount; ++q)
    v[static_cast<std::size_t>(K) + q] = t[q];
}

/// Every bootstrapped quantity of one lag for the given counts and occupancy; an estimate
/// that fails (or counts without any transition) leaves NaN.
std::vector<double> lag_quantities(const CountsData& base, const LagCounts& lc,
                                   std::vector<std::uint64_t> occ, const BootstrapOptions& o,
                                   int K, double lag_time) {
  std::vector<double> v(static_cast<std::size_t>(K) + kBootstrapTransportCount,
                        std::numeric_limits<double>::quiet_NaN());
  if (lc.total() == 0) return v;
  try {
    lag_timescales(lc, base.nsites(), o, K, lag_time, v);
  } catch (const std::exception&) {
  }
  try {
    lag_transport(base, std::move(occ), lc, o, K, lag_time, v);
  } catch (const std::exception&) {
  }
  return v;
}

/// The quantities of lag `bl` with block multiplicities `w`.
std::vector<double> weighted_quantities(const CountsData& base,
                                        const std::vector<CountBlock>& blocks,
                                        const std::vector<std::uint64_t>& w,
                                        const BootstrapLag& bl, const BootstrapOptions& o, int K) {
  std::vector<double> v(static_cast<std::size_t>(K) + kBootstrapTransportCount,
                        std::numeric_limits<double>::quiet_NaN());
  LagCounts lc;
  std::vector<std::uint64_t> occ;
  try {  // counts times the weights may overflow 64 bits
    lc = weighted_lag_counts(blocks, w, bl.index, bl.lag_steps);
    occ = weighted_occupancy(blocks, w);
  } catch (const std::invalid_argument&) {
    return v;
  }
  return lag_quantities(base, lc, std::move(occ), o, K, bl.lag_time);
}

/// Linearisation step: the weights of the forward differences are kLinearScale for every
/// block and kLinearScale + 1 for the differentiated one. Every quantity is invariant under a
/// common scale of the weights, so theta(M 1 + e_b) = theta(1 + e_b / M).
constexpr std::uint64_t kLinearScale = 1024;
/// Leave-one-out misses below this fraction of the estimate are round-off of the estimates
/// (amplified by M in g_b), not nonlinearity.
constexpr double kRoundoffMiss = 1e-8;

/// The block derivatives g_b = M [theta(M 1 + e_b) - theta(M 1)] (d theta / d w_b at w = 1,
/// sum_b g_b = 0) of one lag, g[q][b], and theta(1 - e_b) (leave-one-block-out) in jack[b][q];
/// theta(1) in point. A quantity with an undefined term gets NaN derivatives.
void block_derivatives(const CountsData& base, const std::vector<CountBlock>& blocks,
                       const BootstrapOptions& o, int K, const BootstrapLag& bl,
                       std::vector<double>& point, std::vector<std::vector<double>>& g,
                       std::vector<std::vector<double>>& jack) {
  const std::size_t B = blocks.size(), nq = bl.values.size();
  // theta[0]: w = 1; [1]: M 1; [2 + b]: M 1 + e_b; [2 + B + b]: 1 - e_b
  std::vector<std::vector<double>> theta(2 * B + 2);
  parallel_for(theta.size(), [&](std::size_t j, int) {
    std::vector<std::uint64_t> w(B, (j == 0 || j >= B + 2) ? 1 : kLinearScale);
    if (j >= 2 && j < B + 2) ++w[j - 2];
    if (j >= B + 2) w[j - B - 2] = 0;
    theta[j] = weighted_quantities(base, blocks, w, bl, o, K);
  });
  point = theta[0];
  jack.assign(theta.begin() + static_cast<std::ptrdiff_t>(B + 2), theta.end());
  g.assign(nq, std::vector<double>(B));
  for (std::size_t q = 0; q < nq; ++q)
    for (std::size_t b = 0; b < B; ++b)
      g[q][b] = static_cast<double>(kLinearScale) * (theta[2 + b][q] - theta[1][q]);
}

/// The linearised replicates of one lag (BootstrapMethod::Linearized):
///   theta*_r = theta(1) + c_B sqrt(B / (B - 1)) sum_b (w_rb - 1) g_b,  c_B = t_{B-1} / z.
/// For a statistic that is linear in the blocks, the variance over multinomial weights is
/// sum_b g_b^2 = (B - 1) s^2 with s^2 the sample variance of the blocks' contributions; the
/// factor B / (B - 1) makes it B s^2, the unbiased variance of a sum of B independent blocks,
/// and c_B (student_t_widening) makes the percentile interval the Student-t interval.
/// Sets bl.quantity_nonlinearity (see BootstrapLag); the values stay NaN where a term is
/// undefined.
void linearized_lag(const CountsData& base, const std::vector<CountBlock>& blocks,
                    const std::vector<std::vector<std::uint64_t>>& weights,
                    const BootstrapOptions& o, int K, BootstrapLag& bl) {
  const std::size_t B = blocks.size();
  std::vector<double> point;
  std::vector<std::vector<double>> g, jack;
  block_derivatives(base, blocks, o, K, bl, point, g, jack);
  const double kappa = std::sqrt(static_cast<double>(B) / static_cast<double>(B - 1)) *
                       student_t_widening(B, o.interval_coverage);
  bl.quantity_nonlinearity.assign(g.size(), 0.0);
  for (std::size_t q = 0; q < g.size(); ++q) {
    bool finite = std::isfinite(point[q]);
    double ss = 0.0;
    for (std::size_t b = 0; b < B && finite; ++b) {
      finite = std::isfinite(g[q][b]);
      ss += g[q][b] * g[q][b];
    }
    if (!finite) continue;  // the values stay NaN
    const double sd = kappa * std::sqrt(ss);  // the replicates' sd
    double& eta = bl.quantity_nonlinearity[q];
    for (std::size_t b = 0; b < B; ++b) {
      double miss = std::abs(jack[b][q] - (point[q] - g[q][b]));
      if (miss <= kRoundoffMiss * std::abs(point[q])) miss = 0.0;  // e.g. identical blocks
      const double scaled = std::isfinite(miss) ? (miss == 0.0 ? 0.0 : miss / sd)
                                                : std::numeric_limits<double>::infinity();
      eta = std::max(eta, std::isnan(scaled) ? 0.0 : scaled);
    }
    for (std::size_t r = 0; r < weights.size(); ++r) {
      double dev = 0.0;
      for (std::size_t b = 0; b < B; ++b)
        dev += (static_cast<double>(weights[r][b]) - 1.0) * g[q][b];
      bl.values[q][r] = point[q] + kappa * dev;
    }
  }
}

/// The resampled replicates of one lag (BootstrapMethod::Resample).
void resampled_lag(const CountsData& base, const std::vector<CountBlock>& blocks,
                   const std::vector<std::vector<std::uint64_t>>& weights,
                   const BootstrapOptions& o, int K, BootstrapLag& bl) {
  parallel_for(weights.size(), [&](std::size_t r, int) {
    const std::vector<double> v = weighted_quantities(base, blocks, weights[r], bl, o, K);
    for (std::size_t q = 0; q < v.size(); ++q) bl.values[q][r] = v[q];
  });
}

/// The file's metadata and sites without counts (the counts come from the blocks).
CountsData without_counts(const CountsData& data) {
  CountsData base = data;
  base.lags.clear();
  base.blocks.clear();
  base.block_steps = 0;
  return base;
}

int bootstrap_timescale_count(const BootstrapOptions& o) {
  return std::max(1, std::min(kBootstrapTimescales, o.n_eigenvalues - 1));
}

/// Student's t distribution function for integer nu >= 1 (Abramowitz & Stegun 26.7.3-4): with
/// theta = atan(t / sqrt(nu)), c = cos^2 theta,
///   nu odd:  F = 1/2 + [theta + sin theta cos theta (1 + 2/3 c + 2 4/(3 5) c^2 + ...
///                      + 2 4 ... (nu - 3) / (3 5 ... (nu - 2)) c^((nu - 3)/2))] / pi
///   nu even: F = 1/2 + sin theta [1 + 1/2 c + 1 3/(2 4) c^2 + ...
///                      + 1 3 ... (nu - 3) / (2 4 ... (nu - 2)) c^((nu - 2)/2)] / 2
double student_t_cdf(double t, std::size_t nu) {
  const double pi = 3.14159265358979323846;
  const double theta = std::atan(t / std::sqrt(static_cast<double>(nu)));
  const double s = std::sin(theta), c = std::cos(theta) * std::cos(theta);
  double sum = 1.0, term = 1.0;
  if (nu % 2 == 1) {
    for (std::size_t k = 2; k + 1 <= nu - 1; k += 2) {  // factors 2/3, 4/5, ..., (nu-3)/(nu-2)
      term *= static_cast<double>(k) / static_cast<double>(k + 1) * c;
      sum += term;
    }
    return 0.5 + (theta + (nu > 1 ? s * std::cos(theta) * sum : 0.0)) / pi;
  }
  for (std::size_t k = 1; k + 1 <= nu - 1; k += 2) {  // factors 1/2, 3/4, ..., (nu-3)/(nu-2)
    term *= static_cast<double>(k) / static_cast<double>(k + 1) * c;
    sum += term;
  }
  return 0.5 + 0.5 * s * sum;
}

/// x with cdf(x) = p for an increasing cdf, by bisection on [0, hi] (p >= 1/2).
template <class Cdf>
double upper_quantile(Cdf cdf, double p, double hi) {
  double lo = 0.0;
  while (cdf(hi) < p) hi *= 2.0;
  for (int i = 0; i < 200 && hi - lo > 1e-13 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (cdf(mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace

double student_t_widening(std::size_t n_blocks, double coverage) {
  if (n_blocks < 2 || !(coverage > 0.0 && coverage < 1.0))
    throw std::invalid_argument("student_t_widening: needs >= 2 blocks and a coverage in (0, 1)");
  const double p = 0.5 * (1.0 + coverage);
  const std::size_t nu = n_blocks - 1;
  const double t = upper_quantile([nu](double x) { return student_t_cdf(x, nu); }, p, 4.0);
  const double z = upper_quantile([](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); },
                                  p, 4.0);
  return t / z;
}

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
  res.method = o.method;
  if (res.status != BootstrapStatus::Ok) return res;
  const int K = bootstrap_timescale_count(o);
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
  const CountsData base = without_counts(data);
  std::string nonlinear;
  for (auto& bl : res.lags) {
    bl.method = o.method;
    bl.resampled.assign(nq, o.method == BootstrapMethod::Resample);
    bl.quantity_nonlinearity.assign(nq, 0.0);
    if (o.method == BootstrapMethod::Resample) {
      resampled_lag(base, blocks, weights, o, K, bl);
      continue;
    }
    linearized_lag(base, blocks, weights, o, K, bl);
    std::string names;
    for (std::size_t q = 0; q < nq; ++q) {
      bl.nonlinearity = std::max(bl.nonlinearity, bl.quantity_nonlinearity[q]);
      if (!(bl.quantity_nonlinearity[q] > kMaxBootstrapNonlinearity)) continue;
      bl.resampled[q] = true;
      names += (names.empty() ? "" : ", ") + bootstrap_quantity_name(q, K);
    }
    if (names.empty()) continue;
    bl.method = BootstrapMethod::Resample;
    nonlinear += (nonlinear.empty() ? "" : "; ") + std::to_string(bl.lag_steps) + " (" + names + ")";
    BootstrapLag again = bl;
    resampled_lag(base, blocks, weights, o, K, again);
    for (std::size_t q = 0; q < nq; ++q)
      if (bl.resampled[q]) bl.values[q] = again.values[q];
  }
  if (!nonlinear.empty())
    res.message += std::string(res.message.empty() ? "" : "; ") +
                   "quantities not linear in the blocks (leaving out one block moves them from "
                   "their linear prediction by more than " + text::str(kMaxBootstrapNonlinearity) +
                   " of their error: a hop path seen in few blocks, or crossing modes) are "
                   "resampled, and their error bars are unreliable, at lag(s) " + nonlinear;
  return res;
}

std::string bootstrap_quantity_name(std::size_t q, int K) {
  const auto k = static_cast<std::size_t>(K);
  if (q < k) return "t" + std::to_string(q + 2) + "_ps";
  if (q - k < kBootstrapTransportCount) return kBootstrapTransport[q - k];
  throw std::invalid_argument("bootstrap_quantity_name: quantity " + std::to_string(q) +
                              " outside the " + std::to_string(k + kBootstrapTransportCount));
}

std::vector<double> bootstrap_point_estimates(const CountsData& data, std::size_t lag_index,
                                              const BootstrapOptions& o) {
  if (lag_index >= data.lags.size())
    throw std::invalid_argument("bootstrap_point_estimates: lag index " +
                                std::to_string(lag_index) + " outside the file's " +
                                std::to_string(data.lags.size()) + " lags");
  const double lag_time = static_cast<double>(data.lags[lag_index].lag_steps) * o.time_per_step;
  return lag_quantities(without_counts(data), data.lags[lag_index], data.occupancy, o,
                        bootstrap_timescale_count(o), lag_time);
}

}  // namespace ionmsm
