// The selected lag of `ionmsm analyze` (docs/report-schema.md, "Lag selection"): --lag-steps,
// else the paper's criterion (implied timescales converged, CK error checked;
// ionmsm/lag_selection.hpp) on the per-lag timescales, their bootstrap standard deviations and
// the CK errors, else the sampling rule (choose_default_lag) with a warning.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "analyze.hpp"

namespace ionmsm::cli::analyze {

namespace {

std::string available_lags(const CountsData& d) {
  std::string s;
  for (const auto& lc : d.lags) s += (s.empty() ? "" : ", ") + std::to_string(lc.lag_steps);
  return s.empty() ? "none" : s;
}

std::string g(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

/// The bootstrap standard deviations of the slowest timescales of lag `index` (empty if none).
std::vector<double> timescale_sd(const BootstrapResult& boot, std::size_t index) {
  std::vector<double> sd;
  if (boot.status != BootstrapStatus::Ok) return sd;
  for (const auto& bl : boot.lags) {
    if (bl.index != index) continue;
    for (int q = 0; q < boot.n_timescales; ++q)
      sd.push_back(summarize_bootstrap(bl.values[static_cast<std::size_t>(q)],
                                       kBootstrapCoverage).std);
  }
  return sd;
}

/// The largest finite CK error with this lag as tau (NaN if none).
double ck_error(const CkPhase& ck, std::int64_t lag_steps) {
  double e = std::nan("");
  for (const auto& r : ck.records)
    if (r.lag_steps == lag_steps && std::isfinite(r.err))
      e = std::isfinite(e) ? std::max(e, r.err) : r.err;
  return e;
}

/// The ITS convergence of every lag with a spectrum.
void its_convergence(const Context& c, const LagsPhase& lags, const CkPhase& ck,
                     const BootstrapResult& boot, LagSelection& s) {
  std::vector<LagItsInput> in;
  for (const auto& r : lags.lags) {
    if (!r.have_spectrum) continue;
    LagItsInput l;
    l.lag_steps = r.lag_steps;
    l.lag_time = r.lag_time;
    for (std::size_t k = 1; k < r.timescales.size(); ++k)
      l.timescales.push_back(r.timescales[k].timescale);
    l.timescale_sd = timescale_sd(boot, r.index);
    l.ck_error = ck_error(ck, r.lag_steps);
    in.push_back(std::move(l));
    s.its_lag.push_back(r.index);
  }
  ItsConvergenceOptions o;
  o.n_timescales = c.opt.its_modes;
  o.relative_tolerance = c.opt.its_tolerance;
  if (c.data.first_step >= 0 && c.data.last_step > c.data.first_step)
    o.max_timescale = c.lag_time(c.data.last_step - c.data.first_step);  // the run
  s.its = select_lag_by_its(in, o);
}

std::string its_rule(const LagSelectionResult& r) {
  const auto& o = r.options;
  return "implied timescales converged: the shortest lag beyond which the " +
         std::to_string(r.n_timescales) + " slowest timescales change by at most " +
         g(100.0 * o.relative_tolerance) + " % (or " + g(o.sd_tolerance) +
         " combined bootstrap sd) at every longer lag that resolves them (at least " +
         std::to_string(o.min_compared) + "), with a CK error <= " + g(o.max_ck_error);
}

/// Why no lag qualified, with the closest one.
std::string not_converged_warning(const LagSelectionResult& r) {
  std::string best;
  double best_change = INFINITY;
  for (const auto& l : r.lags)
    if (l.resolved && l.n_compared > 0 && l.max_relative_change < best_change) {
      best_change = l.max_relative_change;
      best = "lag " + std::to_string(l.lag_steps) + " steps";
    }
  std::string w = "implied timescales not converged at any lag: beyond every lag the " +
                  std::to_string(r.n_timescales) + " slowest timescales change by more than " +
                  g(100.0 * r.options.relative_tolerance) + " %";
  if (!best.empty()) w += " (smallest largest change: " + g(100.0 * best_change) + " % at " + best + ")";
  return w + "; the lag was chosen by the sampling rule instead: run longer, add longer lags, "
             "or pass --lag-steps from the plateau of implied_timescales.png";
}

void sampling_rule(const CountsData& data, LagSelection& s) {
  std::vector<LagCandidate> cands;
  for (const auto& lc : data.lags) cands.push_back({lc.lag_steps, lc.n_origins, lc.total()});
  const LagChoice choice = choose_default_lag(cands, data.nevery);
  s.index = static_cast<std::size_t>(choice.index);  // >= 0: some lag has counts
  s.method = LagRule::Sampling;
  s.rule = choice.fallback ? "shortest lag with counts (no lag has >= 10 independent windows)"
                           : "longest lag with counts and >= 10 independent windows "
                             "(n_origins * nevery / lag_steps)";
}

std::size_t given_lag(const Context& c) {
  const int sel = c.data.find_lag(*c.opt.lag_steps);
  const std::string lag = "lag " + std::to_string(*c.opt.lag_steps) + " steps (--lag-steps)";
  if (sel < 0)
    throw std::runtime_error(lag + " is not in '" + c.opt.input +
                             "' (available lags in steps: " + available_lags(c.data) + ")");
  if (c.data.lags[static_cast<std::size_t>(sel)].total() == 0)
    throw std::runtime_error(lag + " has no counts in '" + c.opt.input + "'");
  return static_cast<std::size_t>(sel);
}

}  // namespace

const char* lag_rule_name(LagRule r) {
  switch (r) {
    case LagRule::Given: return "given";
    case LagRule::ItsConvergence: return "its_convergence";
    case LagRule::Sampling: return "sampling";
  }
  return "unknown";
}

/// The --lag-steps lag, checked before any work is done.
void check_given_lag(const Context& c) {
  if (c.opt.lag_steps) (void)given_lag(c);
}

LagSelection select_lag(const Context& c, const LagsPhase& lags, const CkPhase& ck,
                        const BootstrapResult& boot) {
  LagSelection s;
  its_convergence(c, lags, ck, boot, s);
  const LagSelectionResult& r = s.its;
  const bool converged = r.status == LagSelectionStatus::Converged ||
                         r.status == LagSelectionStatus::ConvergedCkFailed;
  if (r.status == LagSelectionStatus::NotConverged) s.warnings.push_back(not_converged_warning(r));
  if (r.status == LagSelectionStatus::TooFewLags && r.lags.size() >= 2)
    s.warnings.push_back(
        "implied timescales not converged at any lag: at most one of the " +
        std::to_string(r.lags.size()) + " lags resolves the " + std::to_string(r.n_timescales) +
        " slowest timescales (each longer than the lag and shorter than the run), so their "
        "convergence cannot be checked; the lag was chosen by the sampling rule instead: run "
        "longer or add lags");
  if (c.opt.lag_steps) {
    s.index = given_lag(c);
    s.method = LagRule::Given;
    s.rule = "given (--lag-steps)";
  } else if (converged) {
    const LagConvergence& l = r.lags[static_cast<std::size_t>(r.index)];
    s.index = s.its_lag[static_cast<std::size_t>(r.index)];
    s.method = LagRule::ItsConvergence;
    s.rule = its_rule(r);
    if (r.status == LagSelectionStatus::ConvergedCkFailed)
      s.warnings.push_back("lag " + std::to_string(l.lag_steps) + " steps: the implied "
                           "timescales have converged but the CK error " + g(l.ck_error) +
                           " is above " + g(r.options.max_ck_error) + " at every converged "
                           "lag: the Markov model may not be Markovian at this lag");
  } else {
    sampling_rule(c.data, s);
    s.rule = std::string(r.status == LagSelectionStatus::TooFewLags
                             ? "fewer than 2 lags resolve the slowest implied timescales (each "
                               "longer than the lag and shorter than the run), so their "
                               "convergence cannot be judged; "
                             : "implied timescales not converged at any lag; ") + s.rule;
  }
  const LagCounts& lc = c.data.lags[s.index];
  s.independent_windows = independent_windows(lc.n_origins, c.data.nevery, lc.lag_steps);
  return s;
}

}  // namespace ionmsm::cli::analyze

namespace ionmsm::cli::analyze {

Json selection_json(const Context& c, const LagSelection& s) {
  const LagCounts& lc = c.data.lags[s.index];
  Json j;
  j["method"] = lag_rule_name(s.method);
  j["rule"] = s.rule;
  j["lag_steps"] = lc.lag_steps;
  j["lag_time_ps"] = json_number(c.lag_time(lc.lag_steps));
  j["independent_windows"] = json_number(s.independent_windows);
  j["min_independent_windows"] = kMinIndependentWindows;
  const LagSelectionResult& r = s.its;
  Json its;
  its["status"] = lag_selection_status_name(r.status);
  its["n_timescales"] = r.n_timescales;
  its["relative_tolerance"] = json_number(r.options.relative_tolerance);
  its["sd_tolerance"] = json_number(r.options.sd_tolerance);
  its["max_ck_error"] = json_number(r.options.max_ck_error);
  its["max_timescale_ps"] = json_number(r.options.max_timescale);  // null: no run length
  its["min_compared"] = r.options.min_compared;
  its["selected_lag_steps"] =
      r.index >= 0 ? Json(r.lags[static_cast<std::size_t>(r.index)].lag_steps) : Json(nullptr);
  Json lags = Json::array();
  for (const LagConvergence& l : r.lags)
    lags.push_back({{"lag_steps", l.lag_steps},
                    {"lag_time_ps", json_number(l.lag_time)},
                    {"resolved", l.resolved},
                    {"n_compared", l.n_compared},
                    {"max_relative_change", json_number(l.max_relative_change)},
                    {"max_change_in_sd", json_number(l.max_change_in_sd)},
                    {"converged", l.converged},
                    {"ck_error", json_number(l.ck_error)},
                    {"ck_ok", l.ck_ok}});
  its["lags"] = lags;
  j["its_convergence"] = its;
  return j;
}

}  // namespace ionmsm::cli::analyze
