// Warnings when the data cannot support the numbers (docs/report-schema.md, "Warnings"): a
// small connected set, timescales longer than the run, axes without hops, one-way counts, and
// bootstrap intervals that include zero or whose mean is far from the point estimate. Each
// warning carries the numbers behind it. The quantities are the phases'; only comparisons here.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "analyze.hpp"

namespace ionmsm::cli::analyze {

namespace {

std::string g(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

std::string lag_text(std::int64_t lag_steps) {
  return "lag " + std::to_string(lag_steps) + " steps";
}

const LagResult* selected_lag(const Analysis& a) {
  for (const auto& r : a.lags.lags)
    if (r.index == a.selection.index && r.have_model) return &r;
  return nullptr;
}

const TransportResult* selected_transport(const Analysis& a) {
  for (const auto& t : a.transport.lags)
    if (t.index == a.selection.index && t.have) return &t;
  return nullptr;
}

void connected_set(const Context& c, const Analysis& a, std::vector<std::string>& out) {
  const LagResult* r = selected_lag(a);
  if (!r) return;
  const ConnectedSet& cs = r->model.connectivity;
  const double n = static_cast<double>(c.data.nsites());
  const double fraction = static_cast<double>(cs.kept.size()) / n;
  if (fraction >= kMinConnectedFraction) return;
  std::size_t never = 0;
  for (const auto& d : cs.dropped) never += d.reason == DropReason::NeverVisited;
  out.push_back(lag_text(r->lag_steps) + ": the largest strongly connected set has only " +
                std::to_string(cs.kept.size()) + " of " + std::to_string(c.data.nsites()) +
                " sites (" + g(100.0 * fraction) + " %; " + std::to_string(cs.n_components) +
                " components among the visited sites, " + std::to_string(never) +
                " sites never visited): the MSM, its timescales and model.h5 describe only "
                "these sites; run longer or hotter");
}

void timescales_vs_run(const Context& c, const Analysis& a, std::vector<std::string>& out) {
  if (c.data.first_step < 0 || c.data.last_step <= c.data.first_step) return;
  const double run = c.lag_time(c.data.last_step - c.data.first_step);
  std::size_t n_ok = 0, n_long = 0;
  std::string example;
  for (const auto& r : a.lags.lags) {
    if (!r.have_spectrum) continue;
    ++n_ok;
    const std::size_t k_max =
        std::min<std::size_t>(static_cast<std::size_t>(c.opt.n_eigenvalues), r.timescales.size());
    double slowest = 0.0;
    std::size_t k_slowest = 0;
    for (std::size_t k = 1; k < k_max; ++k)
      if (std::isfinite(r.timescales[k].timescale) && r.timescales[k].timescale > slowest) {
        slowest = r.timescales[k].timescale;
        k_slowest = k + 1;
      }
    if (slowest <= run) continue;
    ++n_long;
    if (example.empty() || r.index == a.selection.index)
      example = lag_text(r.lag_steps) + ": t" + std::to_string(k_slowest) + " = " + g(slowest) +
                " " + c.units.time;
  }
  if (n_long == 0) return;
  out.push_back("implied timescales longer than the run (" + g(run) + " " + c.units.time +
                ") at " + std::to_string(n_long) + " of " + std::to_string(n_ok) + " lags (" +
                example + "): these processes are not resolved by the data");
}

void transport(const Context& c, const Analysis& a, std::vector<std::string>& out) {
  const TransportResult* t = selected_transport(a);
  if (!t) return;
  const char* axis[3] = {"x", "y", "z"};
  std::string axes;
  int n_axes = 0;
  for (int i = 0; i < 3; ++i)
    if (t->diffusion.D0_tensor(i, i) == 0.0) {
      axes += std::string(n_axes++ ? ", " : "") + axis[i];
    }
  if (n_axes == 3)
    out.push_back(lag_text(t->lag_steps) + ": no hops at all in the transport counts: D = 0");
  else if (n_axes > 0)
    out.push_back(lag_text(t->lag_steps) + ": no hops along " + axes + " (D0 = 0 there): D is 0 "
                  "and the correlation factor undefined along " + axes);
  if (c.opt.transport_counts == TransportCounts::Components && t->one_way_count > 0) {
    const double total = static_cast<double>(c.data.lags[t->index].total());
    out.push_back(lag_text(t->lag_steps) + ": " + std::to_string(t->one_way_count) +
                  " one-way counts (transitions between strongly connected components, never "
                  "reversed; " + g(100.0 * static_cast<double>(t->one_way_count) / total) +
                  " % of the lag's counts) are left out of transport");
  }
}

void bootstrap_intervals(const Analysis& a, std::vector<std::string>& out) {
  const TransportResult* t = selected_transport(a);
  if (!t || a.bootstrap.status != BootstrapStatus::Ok) return;
  const auto K = static_cast<std::size_t>(a.bootstrap.n_timescales);
  const DiffusionTensorResult& d = t->diffusion;
  const double point[4] = {d.D_tensor(0, 0), d.D_tensor(1, 1), d.D_tensor(2, 2), d.D_total};
  for (const auto& bl : a.bootstrap.lags) {
    if (bl.index != t->index) continue;
    for (std::size_t q = 0; q < 4; ++q) {
      if (point[q] == 0.0) continue;  // no hops: said above
      const BootstrapSummary s = summarize_bootstrap(bl.values[K + q], kBootstrapCoverage);
      if (s.n == 0) continue;
      const std::string name = kBootstrapTransport[q];
      if (s.low <= 0.0 && s.high >= 0.0)
        out.push_back(lag_text(bl.lag_steps) + ": the bootstrap 95 % interval of " + name + " [" +
                      g(s.low) + ", " + g(s.high) + "] includes 0 (point estimate " +
                      g(point[q]) + ")");
      if (std::abs(s.mean - point[q]) > kBootstrapBiasFraction * std::abs(point[q]))
        out.push_back(lag_text(bl.lag_steps) + ": the bootstrap mean of " + name + " (" +
                      g(s.mean) + ") is far from the point estimate (" + g(point[q]) +
                      "): resampled blocks break the paths an ion diffuses along, so the "
                      "error bar is unreliable; use longer blocks or a longer run");
    }
  }
}

}  // namespace

std::vector<std::string> data_warnings(const Context& c, const Analysis& a) {
  std::vector<std::string> out;
  connected_set(c, a, out);
  timescales_vs_run(c, a, out);
  transport(c, a, out);
  bootstrap_intervals(a, out);
  return out;
}

}  // namespace ionmsm::cli::analyze
