// Implied timescales: see timescales.hpp.
#include "ionmsm/timescales.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ionmsm/msm_checks.hpp"
#include "ionmsm/parallel.hpp"

namespace ionmsm {

using namespace detail;

const char* timescale_status_name(TimescaleStatus status) {
  switch (status) {
    case TimescaleStatus::Ok: return "ok";
    case TimescaleStatus::Stationary: return "stationary";
    case TimescaleStatus::NonPositive: return "non-positive";
    case TimescaleStatus::Complex: return "complex";
    case TimescaleStatus::Invalid: return "invalid";
  }
  return "unknown";
}

std::vector<ImpliedTimescale> implied_timescales(const Eigen::VectorXcd& eigenvalues,
                                                 double lag_time,
                                                 const TimescaleOptions& options) {
  const char* fn = "implied_timescales";
  if (!std::isfinite(lag_time) || !(lag_time > 0.0))
    fail(fn, "lag_time must be finite and > 0, got " + num(lag_time));
  if (!(options.imag_tolerance >= 0.0) || !(options.stationary_tolerance >= 0.0))
    fail(fn, "tolerances must be >= 0");
  std::vector<ImpliedTimescale> out;
  out.reserve(static_cast<std::size_t>(eigenvalues.size()));
  for (Index k = 0; k < eigenvalues.size(); ++k) {
    ImpliedTimescale t;
    t.eigenvalue = eigenvalues(k);
    const double re = t.eigenvalue.real(), im = t.eigenvalue.imag();
    t.timescale = kNaN;
    const double modulus = std::abs(t.eigenvalue);
    if (!std::isfinite(re) || !std::isfinite(im)) {
      t.status = TimescaleStatus::Invalid;
    } else if (std::abs(im) > options.imag_tolerance) {
      t.status = TimescaleStatus::Complex;
    } else if (re <= 0.0) {
      t.status = TimescaleStatus::NonPositive;
    } else if (std::abs(re - 1.0) <= options.stationary_tolerance) {
      t.status = TimescaleStatus::Stationary;
      t.timescale = std::numeric_limits<double>::infinity();
    } else if (re > 1.0) {
      t.status = TimescaleStatus::Invalid;
    } else {
      t.status = TimescaleStatus::Ok;
    }
    if (t.status != TimescaleStatus::Stationary && t.status != TimescaleStatus::Invalid &&
        modulus > 0.0 && modulus < 1.0 - options.stationary_tolerance)
      t.timescale = -lag_time / std::log(modulus);
    out.push_back(t);
  }
  return out;
}

std::vector<DegenerateSet> degenerate_sets(const std::vector<ImpliedTimescale>& timescales,
                                           double relative_tolerance) {
  if (!(relative_tolerance >= 0.0) || !(relative_tolerance < 1.0))
    fail("degenerate_sets", "relative_tolerance must be in [0, 1), got " + num(relative_tolerance));
  std::vector<DegenerateSet> sets;
  double t_max = 0.0, t_min = 0.0, t_sum = 0.0, m_sum = 0.0;
  auto close = [&] {
    if (sets.empty() || sets.back().multiplicity == 0) return;
    DegenerateSet& d = sets.back();
    d.timescale = t_sum / static_cast<double>(d.multiplicity);
    d.modulus = m_sum / static_cast<double>(d.multiplicity);
    d.timescale_spread = t_max - t_min;
  };
  for (std::size_t k = 0; k < timescales.size(); ++k) {
    const ImpliedTimescale& t = timescales[k];
    if (t.status == TimescaleStatus::Stationary || !std::isfinite(t.timescale)) continue;
    const bool joins = !sets.empty() && t_max - t.timescale <= relative_tolerance * t_max &&
                       t.timescale - t_max <= relative_tolerance * t.timescale;
    if (!joins) {
      close();
      sets.push_back({k, 0, 0.0, 0.0, 0.0});
      t_max = t_min = t.timescale;
      t_sum = m_sum = 0.0;
    }
    DegenerateSet& d = sets.back();
    ++d.multiplicity;
    t_max = std::max(t_max, t.timescale);
    t_min = std::min(t_min, t.timescale);
    t_sum += t.timescale;
    m_sum += std::abs(t.eigenvalue);
  }
  close();
  return sets;
}

std::vector<LagTimescales> implied_timescales_over_lags(const std::vector<MarkovModel>& models,
                                                        double time_per_step,
                                                        const ItsOptions& options) {
  const char* fn = "implied_timescales_over_lags";
  if (!std::isfinite(time_per_step) || !(time_per_step > 0.0))
    fail(fn, "time_per_step must be finite and > 0, got " + num(time_per_step));
  SpectrumOptions so = options.spectrum;
  so.right_vectors = so.left_vectors = false;
  std::vector<LagTimescales> out;
  out.reserve(models.size());
  for (const MarkovModel& model : models) {
    if (model.lag_steps <= 0)
      fail(fn, "lag_steps must be > 0, got " + std::to_string(model.lag_steps));
    LagTimescales lt;
    lt.lag_steps = model.lag_steps;
    lt.lag_time = static_cast<double>(model.lag_steps) * time_per_step;
    lt.n_kept = static_cast<std::size_t>(model.transition_matrix.rows());
    const Spectrum sp = model.estimator == Estimator::Reversible
                            ? compute_reversible_spectrum(model.transition_matrix,
                                                          model.stationary, so)
                            : compute_spectrum(model.transition_matrix, so);
    lt.eigenvalues = sp.eigenvalues;
    lt.timescales = implied_timescales(sp.eigenvalues, lt.lag_time, options.timescales);
    lt.spectrum_status = sp.status;
    lt.estimator_status = model.estimator_info.status;
    if (model.estimator_info.status != ReversibleMleStatus::Converged)
      lt.message = model.estimator_info.message;
    if (sp.status != SpectrumStatus::Ok)
      lt.message += (lt.message.empty() ? "" : "; ") + sp.message;
    out.push_back(std::move(lt));
  }
  return out;
}

std::vector<LagTimescales> implied_timescales_over_lags(const std::vector<LagCounts>& lags,
                                                        std::size_t nsites, double time_per_step,
                                                        const ItsOptions& options) {
  if (!std::isfinite(time_per_step) || !(time_per_step > 0.0))
    fail("implied_timescales_over_lags",
         "time_per_step must be finite and > 0, got " + num(time_per_step));
  std::vector<MarkovModel> models;
  models.reserve(lags.size());
  for (const LagCounts& lag : lags) models.push_back(estimate_markov_model(lag, nsites, options.msm));
  return implied_timescales_over_lags(models, time_per_step, options);
}

}  // namespace ionmsm
