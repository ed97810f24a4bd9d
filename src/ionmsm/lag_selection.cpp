// The lag chosen by implied-timescale convergence: see lag_selection.hpp.
#include "ionmsm/lag_selection.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace ionmsm {

namespace {

void check_input(const std::vector<LagItsInput>& lags, const ItsConvergenceOptions& o) {
  if (o.n_timescales < 1)
    throw std::invalid_argument("select_lag_by_its: n_timescales must be >= 1, got " +
                                std::to_string(o.n_timescales));
  if (!(o.relative_tolerance > 0.0 && o.relative_tolerance < 1.0))
    throw std::invalid_argument("select_lag_by_its: relative_tolerance must be in (0, 1)");
  if (!(o.sd_tolerance > 0.0) || !std::isfinite(o.sd_tolerance))
    throw std::invalid_argument("select_lag_by_its: sd_tolerance must be finite and > 0");
  if (!(o.max_ck_error > 0.0))
    throw std::invalid_argument("select_lag_by_its: max_ck_error must be > 0");
  if (!(o.max_timescale > 0.0) || o.min_compared < 1)
    throw std::invalid_argument("select_lag_by_its: max_timescale must be > 0, min_compared >= 1");
  for (std::size_t i = 0; i < lags.size(); ++i) {
    if (!(lags[i].lag_time > 0.0) || !std::isfinite(lags[i].lag_time))
      throw std::invalid_argument("select_lag_by_its: lag " + std::to_string(lags[i].lag_steps) +
                                  " has no finite lag time > 0");
    if (i > 0 && lags[i].lag_steps <= lags[i - 1].lag_steps)
      throw std::invalid_argument("select_lag_by_its: lags must be in increasing lag_steps");
  }
}

/// t_k at lag l when it resolves mode k (longer than the lag, shorter than max_timescale).
double resolved_timescale(const LagItsInput& l, std::size_t k, double max_timescale) {
  if (k >= l.timescales.size()) return std::nan("");
  const double t = l.timescales[k];
  return std::isfinite(t) && t > l.lag_time && t < max_timescale ? t : std::nan("");
}

double sd_of(const LagItsInput& l, std::size_t k) {
  return k < l.timescale_sd.size() ? l.timescale_sd[k] : std::nan("");
}

/// Compares lag i with every longer lag (the rule of lag_selection.hpp).
LagConvergence compare_with_longer(const std::vector<LagItsInput>& lags, std::size_t i,
                                   std::size_t m, const ItsConvergenceOptions& o) {
  const LagItsInput& li = lags[i];
  LagConvergence c;
  c.lag_steps = li.lag_steps;
  c.lag_time = li.lag_time;
  c.ck_error = li.ck_error;
  c.ck_ok = !std::isfinite(li.ck_error) || li.ck_error <= o.max_ck_error;
  c.resolved = true;
  for (std::size_t k = 0; k < m; ++k) c.resolved = c.resolved && std::isfinite(resolved_timescale(li, k, o.max_timescale));
  if (!c.resolved) return c;
  bool all_converged = true;
  for (std::size_t j = i + 1; j < lags.size(); ++j) {
    bool compared = false;
    for (std::size_t k = 0; k < m; ++k) {
      const double tj = resolved_timescale(lags[j], k, o.max_timescale);
      if (!std::isfinite(tj)) continue;
      compared = true;
      const double ti = li.timescales[k];
      const double change = std::abs(tj - ti);
      const double rel = change / ti;
      c.max_relative_change = std::isfinite(c.max_relative_change)
                                  ? std::max(c.max_relative_change, rel) : rel;
      const double sd = std::hypot(sd_of(li, k), sd_of(lags[j], k));
      bool ok = rel <= o.relative_tolerance;
      if (std::isfinite(sd) && sd > 0.0) {
        const double z = change / sd;
        c.max_change_in_sd = std::isfinite(c.max_change_in_sd) ? std::max(c.max_change_in_sd, z) : z;
        ok = ok || z <= o.sd_tolerance;
      }
      all_converged = all_converged && ok;
    }
    c.n_compared += compared;
  }
  c.converged = all_converged && c.n_compared >= o.min_compared;
  return c;
}

}  // namespace

const char* lag_selection_status_name(LagSelectionStatus status) {
  switch (status) {
    case LagSelectionStatus::Converged: return "converged";
    case LagSelectionStatus::ConvergedCkFailed: return "converged (CK check failed)";
    case LagSelectionStatus::NotConverged: return "not converged";
    case LagSelectionStatus::TooFewLags: return "too few lags";
  }
  return "unknown";
}

LagSelectionResult select_lag_by_its(const std::vector<LagItsInput>& lags,
                                     const ItsConvergenceOptions& options) {
  check_input(lags, options);
  LagSelectionResult r;
  r.options = options;
  // m: as asked, but no more than the most modes any lag has (small models have few)
  std::size_t most = 0;
  for (const auto& l : lags) most = std::max(most, l.timescales.size());
  const std::size_t m = std::min(static_cast<std::size_t>(options.n_timescales), most);
  r.n_timescales = static_cast<int>(m);
  std::size_t n_resolved = 0;
  for (std::size_t i = 0; i < lags.size(); ++i) {
    r.lags.push_back(compare_with_longer(lags, i, m, options));
    n_resolved += r.lags.back().resolved;
  }
  if (m == 0 || n_resolved < 2) return r;  // TooFewLags
  r.status = LagSelectionStatus::NotConverged;
  for (std::size_t i = 0; i < lags.size(); ++i) {
    const LagConvergence& c = r.lags[i];
    if (!c.converged) continue;
    if (c.ck_ok) {
      r.status = LagSelectionStatus::Converged;
      r.index = static_cast<long>(i);
      return r;
    }
    if (r.index < 0) r.index = static_cast<long>(i);
  }
  if (r.index >= 0) r.status = LagSelectionStatus::ConvergedCkFailed;
  return r;
}

}  // namespace ionmsm
