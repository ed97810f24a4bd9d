// "Which D to trust" (docs/report-schema.md, "which_D"; docs/theory.md §9): the exact D of the
// Markov model at the selected lag, the Einstein fit of its propagated MSD and the slope of the
// MD site-projected MSD over the file's lags, side by side with the reason the exact D is
// preferred.
#include <string>

#include "analyze.hpp"

namespace ionmsm::cli::analyze {

std::optional<MsdCurve> md_projected_curve(const Context& c) {
  if (!c.data.has_displacement) return std::nullopt;
  MsdCurve m;
  for (const auto& lc : c.data.lags) {
    const double n = static_cast<double>(lc.total());
    if (n <= 0.0) continue;
    const Eigen::Matrix3d q = lc.displacement_sq_sum / n;
    m.n_lags.push_back(lc.lag_steps);
    m.time.push_back(c.lag_time(lc.lag_steps));
    m.msd_tensor.push_back(q);
    m.mean_displacement.push_back(lc.displacement_sum / n);
    m.msd_xx.push_back(q(0, 0));
    m.msd_yy.push_back(q(1, 1));
    m.msd_zz.push_back(q(2, 2));
    m.msd_total.push_back(q.trace());
  }
  return m;
}

std::string which_d_note() {
  return "trust the exact D: it is the long-time limit of the Markov model at the selected lag "
         "in closed form (no fit window, drift-centred, every path of the chain included). The "
         "Einstein fit of the propagated (drift-centred) MSD converges to it when the MSD is "
         "diffusive over the fitted half of --msd-steps; a clear difference means the fit "
         "window is too short. The slope of the MD site-projected MSD uses only the file's "
         "lags: short lags carry the correlated back-and-forth hops and a noisy long-lag "
         "average, so it agrees with D only when the lags reach the diffusive regime";
}

Json which_d_json(const Context& c, const Analysis& a) {
  Json j;
  j["recommended"] = "exact";
  j["note"] = which_d_note();
  j["lag_steps"] = c.data.lags[a.selection.index].lag_steps;
  j["D_exact_total_A2_per_ps"] = nullptr;
  j["D_einstein_total_A2_per_ps"] = nullptr;
  for (const auto& t : a.transport.lags)
    if (t.have && t.index == a.selection.index) {
      j["D_exact_total_A2_per_ps"] = json_number(t.diffusion.D_total);
      j["D_einstein_total_A2_per_ps"] = json_number(t.einstein.D_total);
    }
  j["D_md_msd_slope_total_A2_per_ps"] = nullptr;
  const std::optional<MsdCurve> md = md_projected_curve(c);
  if (md && md->time.size() >= 2) {
    // least-squares line through every lag of the MD projected MSD: D = slope / 6
    const EinsteinFit fit = fit_einstein(drift_centred(*md), 0.0);
    j["D_md_msd_slope_total_A2_per_ps"] = json_number(fit.D_total);
    j["md_msd_slope_lags"] = md->time.size();
  }
  return j;
}

}  // namespace ionmsm::cli::analyze
