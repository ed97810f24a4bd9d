// The phases of `ionmsm analyze` (see analyze.hpp): per-lag MSMs, the
// Chapman-Kolmogorov test, per-lag transport, the bootstrap, and the MSD curves and jump network
// of the selected lag. Lags are independent: they run on the worker threads of parallel_for,
// and results and warnings are kept in lag order so that the report never depends on the
// scheduling.
#include <algorithm>
#include <cmath>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "analyze.hpp"
#include "ionmsm/leading_spectrum.hpp"
#include "ionmsm/parallel.hpp"

namespace ionmsm::cli::analyze {

namespace {

/// The non-empty entries of per-lag warnings, in lag order.
void append_warnings(std::vector<std::string>& to, const std::vector<std::string>& per_lag) {
  for (const auto& w : per_lag)
    if (!w.empty()) to.push_back(w);
}

std::string lag_progress(std::size_t i, std::size_t nl, std::int64_t lag_steps,
                         const char* what) {
  return "lag " + std::to_string(i + 1) + "/" + std::to_string(nl) + " (" +
         std::to_string(lag_steps) + " steps): " + what;
}

/// One lag's model, spectrum and timescales; `warning` is set when the estimate fails.
LagResult analyse_lag(const Context& c, std::size_t i, std::string& warning) {
  const LagCounts& lc = c.data.lags[i];
  LagResult r;
  r.index = i;
  r.lag_steps = lc.lag_steps;
  r.lag_time = c.lag_time(lc.lag_steps);
  r.n_origins = lc.n_origins;
  r.total_counts = lc.total();
  if (r.total_counts == 0) {
    r.status = "empty";
    r.message = "no counts at this lag";
    return r;
  }
  try {
    MsmOptions msm_opt;
    msm_opt.estimator = c.opt.estimator;
    r.model = estimate_markov_model(lc, c.data.nsites(), msm_opt);
    r.have_model = true;
    r.spectrum = leading_spectrum(r.model, c.opt.estimator, c.opt.n_eigenvalues);
    r.have_spectrum = true;
    r.timescales = implied_timescales(r.spectrum.eigenvalues, r.lag_time);
    std::vector<ImpliedTimescale> reported = r.timescales;
    reported.resize(std::min(reported.size(), static_cast<std::size_t>(c.opt.n_eigenvalues)));
    r.degenerate_sets = degenerate_sets(reported);
  } catch (const std::exception& e) {
    r.status = "failed";
    r.message = e.what();
    warning = "lag " + std::to_string(lc.lag_steps) + ": " + e.what();
  }
  return r;
}

/// The reversible estimate's timescales of one lag (r.timescales when it is the default).
void reversible_timescales(const Context& c, const LagCounts& lc, LagResult& r) {
  if (c.opt.estimator == Estimator::Reversible) {
    r.reversible_timescales = r.timescales;
    return;
  }
  try {
    MsmOptions msm_opt;
    msm_opt.estimator = Estimator::Reversible;
    const MarkovModel rev = estimate_markov_model(lc, c.data.nsites(), msm_opt);
    const Spectrum sp = leading_spectrum(rev, Estimator::Reversible, c.opt.n_eigenvalues);
    r.reversible_timescales = implied_timescales(sp.eigenvalues, r.lag_time);
    if (rev.estimator_info.status != ReversibleMleStatus::Converged)
      r.reversible_message = rev.estimator_info.message;
  } catch (const std::exception& e) {
    r.reversible_timescales.clear();
    r.reversible_message = e.what();
  }
}

/// Flops of the dense CK test: M(tau)^n by repeated products, 2 k^3 per product (k kept
/// sites), for every model small enough for the dense path.
double ck_dense_flops(const std::vector<LagResult>& lags, const CkOptions& co,
                      std::int64_t ck_max_n) {
  double flops = 0.0;
  for (const auto& a : lags) {
    if (!a.have_model) continue;
    if (static_cast<std::size_t>(a.model.transition_matrix.rows()) > co.dense_max_sites) continue;
    std::int64_t max_n = 0;
    for (const auto& b : lags)
      if (b.have_model && b.lag_steps > a.lag_steps && b.lag_steps % a.lag_steps == 0) {
        const std::int64_t n = b.lag_steps / a.lag_steps;
        if (ck_max_n == 0 || n <= ck_max_n) max_n = std::max(max_n, n);
      }
    const double k = static_cast<double>(a.model.transition_matrix.rows());
    flops += 2.0 * static_cast<double>(max_n) * k * k * k;
  }
  return flops;
}

/// One lag's transport; the statistics are left in `stats` for the caller. `no_lags` is the
/// file's metadata and sites without lags and blocks (used with --transport-counts components).
TransportResult transport_lag(const Context& c, const CountsData& no_lags, std::size_t i,
                              TransportStatistics& stats) {
  const LagCounts& lc = c.data.lags[i];
  TransportResult t;
  t.index = i;
  t.lag_steps = lc.lag_steps;
  t.lag_time = c.lag_time(lc.lag_steps);
  if (c.opt.transport_counts == TransportCounts::Components) {
    CountsData one_lag = no_lags;  // per task: the threads never share it
    ComponentCounts cc = within_components(lc, c.data.nsites());
    t.one_way_count = cc.one_way_count;
    t.n_components = cc.n_components;
    one_lag.lags.assign(1, std::move(cc.counts));
    stats = build_transport_statistics(one_lag, 0);
  } else {
    stats = build_transport_statistics(c.data, i);
  }
  t.n_sites = stats.nsites();
  t.n_active = stats.nstates();
  t.excluded = stats.excluded_sites;
  t.dropped_count = stats.dropped_count;
  t.diffusion = exact_diffusion_tensor(stats, t.lag_time);
  t.site_change_probability = site_change_probability(stats, t.diffusion.limiting_distribution);
  MsdOptions mo;
  mo.method = MsdMethod::moments;
  mo.n_max = c.opt.msd_steps;
  const MsdCurve curve = propagate_msd(stats, t.lag_time, mo);
  // the Einstein fit of the displacement covariance: a drift would add v^2 t^2 to the MSD
  t.einstein = fit_einstein(drift_centred(curve), kEinsteinFitFraction);
  t.msd_drift_velocity = curve.mean_displacement.back() / curve.time.back();
  t.fit_t_start = curve.time[t.einstein.first_point];
  t.fit_t_end = curve.time.back();
  t.have = true;
  return t;
}

/// Operations of a folded MSD (every start site propagated separately): about
/// |A| * N * rows * (R1 R2 R3).
double folded_msd_ops(const Context& c, const TransportStatistics& stats, MsdMethod m) {
  const double cells = m == MsdMethod::replicated ? static_cast<double>(c.opt.replicate[0]) *
                                                        c.opt.replicate[1] * c.opt.replicate[2]
                                                  : 1.0;
  return static_cast<double>(stats.nstates()) * static_cast<double>(c.opt.msd_steps) *
         static_cast<double>(stats.rows.size()) * cells;
}

/// f_tracer = D(selected) / D_hop(shortest lag with counts) (hop_diffusion.hpp).
void tracer_factor(TransportPhase& out, const TransportStatistics* shortest) {
  if (!shortest || !out.selected || out.lags.empty() || !out.lags.front().have) return;
  for (const auto& t : out.lags)
    if (t.have && t.lag_steps == out.selected->lag_steps)
      out.tracer = tracer_correlation(t.diffusion, out.lags.front().diffusion, *shortest);
}

}  // namespace

const char* transport_counts_name(TransportCounts t) {
  return t == TransportCounts::Components ? "components" : "all";
}

const char* estimator_name(Estimator e) { return e == Estimator::Reversible ? "rev" : "nonrev"; }

std::vector<std::string> Analysis::warnings() const {
  std::vector<std::string> w;
  for (const auto* v : {&lags.warnings, &ck.warnings, &selection.warnings, &transport.warnings})
    w.insert(w.end(), v->begin(), v->end());
  if (bootstrap.status == BootstrapStatus::Insufficient ||
      (bootstrap.status == BootstrapStatus::Ok && !bootstrap.message.empty()))
    w.push_back("bootstrap: " + bootstrap.message);
  w.insert(w.end(), msd.warnings.begin(), msd.warnings.end());
  w.insert(w.end(), data_warnings.begin(), data_warnings.end());
  w.insert(w.end(), model_warnings.begin(), model_warnings.end());
  return w;
}

LagsPhase estimate_lags(const Context& c) {
  const std::size_t nl = c.data.lags.size();
  LagsPhase out;
  out.lags.resize(nl);
  std::vector<std::string> warning(nl);
  std::mutex progress_mutex;
  parallel_for(nl, [&](std::size_t i, int) {
    {
      const std::lock_guard<std::mutex> lock(progress_mutex);
      c.progress(lag_progress(i, nl, c.data.lags[i].lag_steps, "MSM and spectrum"));
    }
    out.lags[i] = analyse_lag(c, i, warning[i]);
    if (out.lags[i].have_spectrum) reversible_timescales(c, c.data.lags[i], out.lags[i]);
  });
  append_warnings(out.warnings, warning);
  return out;
}

CkPhase chapman_kolmogorov(const Context& c, const std::vector<LagResult>& lags) {
  c.progress("Chapman-Kolmogorov test");
  CkPhase out;
  // Small models are tested with dense matrix powers: skip the test if that would take too
  // long. Larger ones are tested matrix-free (sparse products and Lanczos, cheap).
  CkOptions co;
  co.max_n = static_cast<int>(c.opt.ck_max_n);
  const double flops = ck_dense_flops(lags, co, c.opt.ck_max_n);
  if (flops > kCkMaxFlops) {
    out.status = "skipped";
    out.message = "the Chapman-Kolmogorov test would need about " +
                  format_number(std::round(flops / 1e9)) +
                  " Gflop (dense matrix powers); limit it with --ck-max-n";
    out.warnings.push_back(out.message);
    return out;
  }
  try {
    std::vector<MarkovModel> models;
    for (const auto& r : lags)
      if (r.have_model) models.push_back(r.model);
    out.records = chapman_kolmogorov_test(models, co);
  } catch (const std::exception& e) {
    out.status = "failed";
    out.message = e.what();
    out.warnings.push_back(std::string("Chapman-Kolmogorov test: ") + e.what());
  }
  return out;
}

TransportPhase transport_per_lag(const Context& c, std::size_t selected) {
  const std::size_t nl = c.data.lags.size();
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < nl; ++i)
    if (c.data.lags[i].total() > 0) todo.push_back(i);
  CountsData no_lags;
  if (c.opt.transport_counts == TransportCounts::Components) {
    no_lags = c.data;
    no_lags.lags.clear();
    no_lags.blocks.clear();
    no_lags.block_steps = 0;
  }
  TransportPhase out;
  std::unique_ptr<TransportStatistics> shortest;
  out.lags.resize(todo.size());
  std::vector<std::string> warning(todo.size());
  std::mutex progress_mutex;
  parallel_for(todo.size(), [&](std::size_t task, int) {
    const std::size_t i = todo[task];
    const std::int64_t lag_steps = c.data.lags[i].lag_steps;
    {
      const std::lock_guard<std::mutex> lock(progress_mutex);
      c.progress(lag_progress(i, nl, lag_steps, "diffusion tensor"));
    }
    try {
      TransportStatistics stats;
      out.lags[task] = transport_lag(c, no_lags, i, stats);
      // one task each has the shortest and the selected lag: no other thread touches them
      if (task == 0) shortest = std::make_unique<TransportStatistics>(stats);
      if (i == selected) out.selected = std::make_unique<TransportStatistics>(std::move(stats));
    } catch (const std::exception& e) {
      TransportResult& t = out.lags[task];
      t.index = i;
      t.lag_steps = lag_steps;
      t.lag_time = c.lag_time(lag_steps);
      t.status = "failed";
      t.message = e.what();
      warning[task] = "diffusion at lag " + std::to_string(lag_steps) + ": " + e.what();
    }
  });
  append_warnings(out.warnings, warning);
  tracer_factor(out, shortest.get());
  return out;
}

BootstrapResult bootstrap(const Context& c) {
  BootstrapOptions bo;
  bo.n_replicates = c.opt.bootstrap.value_or(kDefaultBootstrap);
  bo.seed = c.opt.seed;
  bo.estimator = c.opt.estimator;
  bo.n_eigenvalues = c.opt.n_eigenvalues;
  bo.within_components = c.opt.transport_counts == TransportCounts::Components;
  bo.time_per_step = c.units.time_per_step;
  if (c.data.block_steps > 0 && bo.n_replicates > 0 && c.data.blocks.size() >= 2) {
    std::size_t with_counts = 0;
    for (const auto& lc : c.data.lags) with_counts += lc.total() > 0;
    c.progress("bootstrap: " + std::to_string(bo.n_replicates) + " replicates of " +
               std::to_string(c.data.blocks.size()) + " blocks, " +
               std::to_string(with_counts) + " lags");
  }
  return run_bootstrap(c.data, bo);
}

MsdPhase msd_and_network(const Context& c, std::size_t selected,
                         const TransportStatistics* stats) {
  MsdPhase out;
  out.lag_steps = c.data.lags[selected].lag_steps;
  out.tau = c.lag_time(out.lag_steps);
  if (!stats) {
    const std::string why = "the transport statistics of lag " + std::to_string(out.lag_steps) +
                            " could not be built";
    for (auto& m : out.message) m = why;
    out.network_message = why;
    return out;
  }
  for (std::size_t m = 0; m < kNumMsdMethods; ++m) {
    const MsdMethod method = kMsdMethods[m];
    const std::string name = msd_method_name(method);
    if (method != MsdMethod::moments) {
      const double ops = folded_msd_ops(c, *stats, method);
      if (ops > kMsdMaxOps) {
        out.skipped[m] = true;
        out.message[m] = "skipped: the " + name + " MSD would need about " +
                         format_number(std::round(ops / 1e9)) +
                         " G operations; use fewer --msd-steps or a smaller --replicate";
        out.warnings.push_back("MSD: " + out.message[m]);
        continue;
      }
    }
    c.progress("MSD (" + name + ", lag " + std::to_string(out.lag_steps) + " steps, " +
               std::to_string(c.opt.msd_steps) + " steps)");
    try {
      MsdOptions mo;
      mo.method = method;
      mo.n_max = c.opt.msd_steps;
      mo.replicas = c.opt.replicate;
      out.curves[m] = propagate_msd(*stats, out.tau, mo);
    } catch (const std::exception& e) {
      out.message[m] = e.what();
      out.warnings.push_back("MSD (" + name + "): " + e.what());
    }
  }
  c.progress("jump network");
  try {
    out.network = build_jump_network(*stats, out.tau);
    out.axes = most_informative_axes(*stats);
  } catch (const std::exception& e) {
    out.network_message = e.what();
    out.warnings.push_back(std::string("jump network: ") + e.what());
  }
  return out;
}

}  // namespace ionmsm::cli::analyze
