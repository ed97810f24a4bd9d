// report.json of `ionmsm analyze` (schema: docs/report-schema.md), one function per section,
// each built from the phase results of analyze.hpp.
#include <cmath>
#include <filesystem>

#include "analyze.hpp"
#include "ionmsm/version.hpp"

namespace ionmsm::cli::analyze {

namespace {

Json mat3(const Eigen::Matrix3d& m) {
  Json a = Json::array();
  for (int i = 0; i < 3; ++i) {
    Json row = Json::array();
    for (int j = 0; j < 3; ++j) row.push_back(json_number(m(i, j)));
    a.push_back(row);
  }
  return a;
}

Json vec3(const Eigen::Vector3d& v) {
  return Json::array({json_number(v[0]), json_number(v[1]), json_number(v[2])});
}

Json numbers(const std::vector<double>& v) {
  Json a = Json::array();
  for (double x : v) a.push_back(json_number(x));
  return a;
}

const char* axis_name(int a) { return a == 0 ? "x" : (a == 1 ? "y" : "z"); }

Json summary_json(const BootstrapSummary& s) {
  return {{"mean", json_number(s.mean)}, {"std", json_number(s.std)},
          {"low", json_number(s.low)},   {"high", json_number(s.high)},
          {"n", s.n},                    {"n_undefined", s.n_undefined}};
}

Json input_json(const Context& c) {
  const CountsData& data = c.data;
  Json inp;
  inp["file"] = c.opt.input;
  inp["file_name"] = std::filesystem::path(c.opt.input).filename().string();
  inp["format"] = kCountsFormatTag;
  inp["format_version"] = kCountsFormatVersion;
  inp["ionmsm_version"] = data.ionmsm_version;
  inp["lammps_version"] = data.lammps_version;
  inp["command"] = data.command;
  inp["units"] = data.units;
  inp["timestep"] = json_number(data.timestep);
  inp["timestep_ps"] = json_number(data.timestep_ps);
  inp["nevery"] = data.nevery;
  inp["first_step"] = data.first_step;
  inp["last_step"] = data.last_step;
  inp["n_samples"] = data.n_samples;
  inp["n_atoms"] = data.n_atoms;
  inp["nsites"] = data.nsites();
  Json ls = Json::array();
  for (const auto& lc : data.lags) ls.push_back(lc.lag_steps);
  inp["lag_steps"] = ls;
  inp["box"] = {{"origin", vec3(data.box_origin)}, {"h", mat3(c.file_box_h)}};
  return inp;
}

/// The cell all transport uses (effective_cell.hpp).
Json transport_cell_json(const Context& c) {
  const EffectiveCell& e = c.cell;
  Json j;
  j["status"] = cell_status_name(e.status);
  j["h"] = mat3(e.box_h);
  j["strain"] = mat3(e.strain);
  j["lag_steps"] = e.lag_steps;
  j["relative_mismatch"] = json_number(e.relative_mismatch);
  j["note"] = e.status == CellStatus::Applied
                  ? "the cell changed during the run: transport uses the hop-weighted rms cell "
                    "H_eff = S H_last, with which the counted transitions reproduce the MD "
                    "site-projected second moment (each pair in its own sample's cell) at the "
                    "shortest lag"
                  : "transport uses the cell of the last sample (input.box.h)";
  return j;
}

Json units_json(const Context& c) {
  const ReportUnits& u = c.units;
  Json j;
  j["length"] = u.length;
  j["time"] = u.time;
  j["time_is_physical"] = u.time_is_physical;
  j["diffusion"] = u.length + "^2/" + u.per_time;
  j["velocity"] = u.length + "/" + u.per_time;
  j["rate"] = "1/" + u.per_time;
  j["msd"] = u.length + "^2";
  j["note"] = u.time_is_physical
                  ? "fields named *_ps are in ps, *_A / *_A2 in the length unit above"
                  : "units '" + c.data.units + "' have no time in ps: every field named *_ps is "
                    "in timesteps (lag_steps), *_A / *_A2 in the length unit above";
  return j;
}

Json options_json(const Options& opt) {
  Json o;
  o["estimator"] = estimator_name(opt.estimator);
  o["lag_steps"] = opt.lag_steps ? Json(*opt.lag_steps) : Json(nullptr);
  o["replicate"] = Json::array({opt.replicate[0], opt.replicate[1], opt.replicate[2]});
  o["msd_steps"] = opt.msd_steps;
  o["n_eigenvalues"] = opt.n_eigenvalues;
  o["einstein_fit_fraction"] = kEinsteinFitFraction;
  o["msd_start"] = "occupancy";
  o["transport_counts"] = transport_counts_name(opt.transport_counts);
  o["ck_max_n"] = opt.ck_max_n > 0 ? Json(opt.ck_max_n) : Json(nullptr);
  o["its_modes"] = opt.its_modes;
  o["its_tolerance"] = json_number(opt.its_tolerance);
  o["plots"] = opt.plots;
  return o;
}

/// Connectivity and estimator details of one lag's model.
void model_json(Json& l, const MarkovModel& model) {
  const ConnectedSet& cs = model.connectivity;
  l["kept_sites"] = cs.kept.size();
  Json dropped = Json::array();
  for (const auto& d : cs.dropped)
    dropped.push_back({{"site", d.site}, {"reason", drop_reason_name(d.reason)}});
  l["dropped_sites"] = dropped;
  l["n_components"] = cs.n_components;
  const EstimatorInfo& ei = model.estimator_info;
  Json info;
  info["estimator"] = estimator_name(model.estimator);
  info["status"] = reversible_mle_status_name(ei.status);
  info["iterations"] = ei.iterations;
  info["final_change"] = json_number(ei.final_change);
  info["tolerance"] = json_number(ei.tolerance);
  info["max_iterations"] = ei.max_iterations;
  info["message"] = ei.message;
  l["estimator_info"] = info;
}

Json lag_json(const LagResult& r, int n_eigenvalues) {
  Json l;
  l["lag_steps"] = r.lag_steps;
  l["lag_time_ps"] = json_number(r.lag_time);
  l["n_origins"] = r.n_origins;
  l["total_counts"] = r.total_counts;
  l["status"] = r.status;
  l["message"] = r.message;
  if (r.have_model) {
    model_json(l, r.model);
  } else {
    l["kept_sites"] = 0;
    l["dropped_sites"] = Json::array();
    l["n_components"] = 0;
    l["estimator_info"] = nullptr;
  }
  Json ev = Json::array(), ts = Json::array(), tst = Json::array();
  if (r.have_spectrum) {
    const Spectrum& sp = r.spectrum;
    l["spectrum"] = {{"method", sp.method_used == SpectrumMethod::Sparse ? "sparse" : "dense"},
                     {"symmetrized", sp.symmetrized},
                     {"status", spectrum_status_name(sp.status)},
                     {"message", sp.message},
                     {"n_computed", sp.eigenvalues.size()}};
    const std::size_t k_max =
        std::min<std::size_t>(static_cast<std::size_t>(n_eigenvalues), r.timescales.size());
    for (std::size_t k = 0; k < k_max; ++k) {
      const ImpliedTimescale& t = r.timescales[k];
      ev.push_back({{"k", k + 1},
                    {"re", json_number(t.eigenvalue.real())},
                    {"im", json_number(t.eigenvalue.imag())},
                    {"modulus", json_number(std::abs(t.eigenvalue))},
                    {"status", timescale_status_name(t.status)}});
      ts.push_back(json_number(t.timescale));
      tst.push_back(timescale_status_name(t.status));
    }
  } else {
    l["spectrum"] = nullptr;
  }
  l["eigenvalues"] = ev;
  l["implied_timescales_ps"] = ts;
  l["timescale_status"] = tst;
  Json sets = Json::array();
  for (const DegenerateSet& d : r.degenerate_sets)
    sets.push_back({{"k_first", d.first + 1},
                    {"multiplicity", d.multiplicity},
                    {"timescale_ps", json_number(d.timescale)},
                    {"timescale_spread_ps", json_number(d.timescale_spread)},
                    {"modulus", json_number(d.modulus)}});
  l["degenerate_sets"] = sets;
  Json rts = Json::array(), rst = Json::array();
  const std::size_t k_rev = std::min<std::size_t>(static_cast<std::size_t>(n_eigenvalues),
                                                  r.reversible_timescales.size());
  for (std::size_t k = 0; k < k_rev; ++k) {
    rts.push_back(json_number(r.reversible_timescales[k].timescale));
    rst.push_back(timescale_status_name(r.reversible_timescales[k].status));
  }
  l["reversible_timescales_ps"] = rts;
  l["reversible_timescale_status"] = rst;
  l["reversible_message"] = r.reversible_message;
  return l;
}

Json ck_json(const Context& c, const CkPhase& ck) {
  Json arr = Json::array();
  for (const auto& r : ck.records)
    arr.push_back({{"lag_steps", r.lag_steps},
                   {"lag_time_ps", json_number(c.lag_time(r.lag_steps))},
                   {"n", r.n},
                   {"n_lag_steps", r.lag_steps * r.n},
                   {"time_ps", json_number(c.lag_time(r.lag_steps * r.n))},
                   {"err", json_number(r.err)},
                   {"n_sites", r.n_sites},
                   {"method", r.matrix_free ? "matrix-free" : "dense"},
                   {"status", ck_record_status(r)}});
  return arr;
}

/// {xx, yy, zz, trace} of a correlation factor (null where undefined).
Json factor_json(const Eigen::Vector3d& f, double trace) {
  return {{"xx", json_number(f[0])}, {"yy", json_number(f[1])}, {"zz", json_number(f[2])},
          {"trace", json_number(trace)}};
}

Json factor_status_json(const Eigen::Vector3d& f, double trace) {
  Json fs;
  const char* comp[3] = {"xx", "yy", "zz"};
  for (int a = 0; a < 3; ++a)
    fs[comp[a]] = std::isfinite(f[a]) ? "ok" : "undefined (no hops along this axis)";
  fs["trace"] = std::isfinite(trace) ? "ok" : "undefined (no hops)";
  return fs;
}

/// j[name] = the factor, j[name + "_status"] = its statuses.
void put_factor(Json& j, const std::string& name, const Eigen::Vector3d& f, double trace) {
  j[name] = factor_json(f, trace);
  j[name + "_status"] = factor_status_json(f, trace);
}

/// f_tracer = D(selected lag) / D_hop(shortest lag) (hop_diffusion.hpp), beside f_lag there.
Json tracer_json(const Analysis& a) {
  Json j;
  if (!a.transport.tracer) {
    j["status"] = "undefined";
    j["message"] = "the transport of the shortest or the selected lag could not be computed";
    return j;
  }
  const TracerCorrelation& t = *a.transport.tracer;
  j["status"] = "ok";
  j["message"] = "";
  j["lag_steps"] = t.lag_steps;
  j["lag_time_ps"] = json_number(t.lag_time);
  j["hop_lag_steps"] = t.hop_lag_steps;
  j["hop_lag_time_ps"] = json_number(t.hop_lag_time);
  j["D_hop_tensor_A2_per_ps"] = mat3(t.D_hop);
  j["D_hop_total_A2_per_ps"] = json_number(t.D_hop_total);
  put_factor(j, "f_tracer", t.f, t.f_total);
  j["site_change_probability"] = json_number(t.site_change_probability);
  for (const auto& d : a.transport.lags)
    if (d.have && d.lag_steps == t.lag_steps)
      j["f_lag"] = factor_json(d.diffusion.correlation_factor,
                               d.diffusion.correlation_factor_total);
  return j;
}

/// Closed communicating classes; single-site classes (sites that never hop, common in short
/// runs) are only counted, so the list stays short.
void classes_json(Json& d, const DiffusionTensorResult& r) {
  Json classes = Json::array();
  std::size_t singles = 0;
  double single_weight = 0.0;
  for (const auto& c : r.classes) {
    if (c.sites.size() == 1) {
      ++singles;
      single_weight += c.weight;
      continue;
    }
    classes.push_back({{"n_sites", c.sites.size()},
                       {"weight", json_number(c.weight)},
                       {"D_total_A2_per_ps", json_number(c.D_tensor.trace() / 3.0)},
                       {"drift_velocity_A_per_ps", vec3(c.drift_velocity)}});
  }
  d["n_classes"] = r.classes.size();
  d["classes"] = classes;
  d["single_site_classes"] = {{"count", singles}, {"weight", json_number(single_weight)}};
}

void diffusion_tensor_json(Json& d, const TransportResult& t) {
  const DiffusionTensorResult& r = t.diffusion;
  d["D_tensor_A2_per_ps"] = mat3(r.D_tensor);
  d["D_total_A2_per_ps"] = json_number(r.D_total);
  d["D0_tensor_A2_per_ps"] = mat3(r.D0_tensor);
  d["D0_total_A2_per_ps"] = json_number(r.D0_total);
  put_factor(d, "f_lag", r.correlation_factor, r.correlation_factor_total);
  d["site_change_probability"] = json_number(t.site_change_probability);
  const EinsteinFit& e = t.einstein;
  d["D_einstein_A2_per_ps"] = {{"x", json_number(e.D_axes[0])},
                               {"y", json_number(e.D_axes[1])},
                               {"z", json_number(e.D_axes[2])},
                               {"total", json_number(e.D_total)},
                               {"msd_method", "moments"},
                               {"drift_centred", true},
                               {"msd_drift_velocity_A_per_ps", vec3(t.msd_drift_velocity)},
                               {"fit_first_point", e.first_point},
                               {"fit_n_points", e.n_points},
                               {"fit_t_start_ps", json_number(t.fit_t_start)},
                               {"fit_t_end_ps", json_number(t.fit_t_end)}};
  d["drift_velocity_A_per_ps"] = vec3(r.drift_velocity);
}

Json transport_json(const TransportResult& t, TransportCounts counts) {
  Json d;
  d["lag_steps"] = t.lag_steps;
  d["lag_time_ps"] = json_number(t.lag_time);
  d["status"] = t.status;
  d["message"] = t.message;
  if (!t.have) return d;
  const DiffusionTensorResult& r = t.diffusion;
  diffusion_tensor_json(d, t);
  d["n_sites"] = t.n_sites;
  d["n_active_sites"] = t.n_active;
  d["excluded_sites"] = t.excluded;
  d["dropped_count"] = t.dropped_count;
  d["transport_counts"] = transport_counts_name(counts);
  if (counts == TransportCounts::Components) {
    d["n_components"] = t.n_components;
    d["one_way_count"] = t.one_way_count;
  }
  classes_json(d, r);
  d["n_transient_sites"] = r.n_transient_states;
  d["used_sparse_solver"] = r.used_sparse_solver;
  d["linear_solver"] = r.linear_solver;
  d["solver_iterations"] = r.solver_iterations;
  d["max_stationary_residual"] = json_number(r.max_stationary_residual);
  return d;
}

Json bootstrap_json(const Context& c, const BootstrapResult& boot) {
  Json b;
  b["status"] = bootstrap_status_name(boot.status);
  b["message"] = boot.message;
  b["n_replicates"] = boot.n_replicates;
  b["seed"] = c.opt.seed;
  b["n_blocks"] = boot.n_blocks;
  b["n_merged_blocks"] = boot.n_merged_blocks;
  b["n_file_blocks"] = c.data.blocks.size();
  b["block_steps"] = c.data.block_steps;
  b["coverage"] = kBootstrapCoverage;
  b["interval"] = "percentile";
  b["method"] = bootstrap_method_name(boot.method);
  b["transport_counts"] = transport_counts_name(c.opt.transport_counts);
  Json arr = Json::array();
  const std::size_t K = static_cast<std::size_t>(boot.n_timescales);
  for (const auto& bl : boot.lags) {
    auto q = [&](std::size_t i) {
      return summary_json(summarize_bootstrap(bl.values[i], kBootstrapCoverage));
    };
    Json l;
    l["lag_steps"] = bl.lag_steps;
    l["lag_time_ps"] = json_number(bl.lag_time);
    l["method"] = bootstrap_method_name(bl.method);
    l["nonlinearity"] = json_number(bl.nonlinearity);
    Json resampled = Json::array();
    for (std::size_t q = 0; q < bl.resampled.size(); ++q)
      if (bl.resampled[q] && boot.method != BootstrapMethod::Resample)
        resampled.push_back(bootstrap_quantity_name(q, boot.n_timescales));
    l["resampled"] = resampled;
    Json ts = Json::array();
    for (std::size_t k = 0; k < K; ++k) {
      Json t = q(k);
      t["k"] = k + 2;
      ts.push_back(t);
    }
    l["timescales_ps"] = ts;
    l["D_A2_per_ps"] = {{"xx", q(K)}, {"yy", q(K + 1)}, {"zz", q(K + 2)}, {"total", q(K + 3)}};
    l["f_lag"] = {{"trace", q(K + 4)}};
    arr.push_back(l);
  }
  b["lags"] = arr;
  return b;
}

Json msd_curve_json(const MsdPhase& m, std::size_t i) {
  const auto& c = m.curves[i];
  Json b;
  if (!c) {
    b["status"] = m.skipped[i] ? "skipped" : "failed";
    b["message"] = m.message[i];
    for (const char* k : {"xx", "yy", "zz", "total"}) b[k] = Json::array();
    return b;
  }
  b["status"] = "ok";
  b["message"] = "";
  b["xx"] = numbers(c->msd_xx);
  b["yy"] = numbers(c->msd_yy);
  b["zz"] = numbers(c->msd_zz);
  b["total"] = numbers(c->msd_total);
  if (kMsdMethods[i] == MsdMethod::moments) {
    std::vector<double> mx, my, mz;
    for (const auto& v : c->mean_displacement) {
      mx.push_back(v[0]);
      my.push_back(v[1]);
      mz.push_back(v[2]);
    }
    b["mean_displacement"] = {{"x", numbers(mx)}, {"y", numbers(my)}, {"z", numbers(mz)}};
  }
  return b;
}

/// The "MD truth" measured in situ by fix msm (the paper's site-projected MSD, Fig. 4): per
/// lag, the mean of the squared site-projected displacement over all counted pairs,
/// <delta_a delta_b> = displacement_sq_sum / total counts (optional datasets of the file).
Json md_projected_json(const Context& c) {
  Json md;
  if (!c.data.has_displacement) {
    md["status"] = "absent";
    md["message"] = "the counts file has no displacement moments (written by ionmsm >= 0.1 "
                    "fix msm; synthetic or older files may lack them)";
    for (const char* k : {"lag_steps", "time_ps", "xx", "yy", "zz", "total"})
      md[k] = Json::array();
    return md;
  }
  const MsdCurve m = *md_projected_curve(c);
  const std::vector<double>& tl = m.time;
  const std::vector<double>&xx = m.msd_xx, &yy = m.msd_yy, &zz = m.msd_zz, &tot = m.msd_total;
  const std::vector<std::int64_t>& ls = m.n_lags;
  md["status"] = "ok";
  md["message"] = "";
  md["lag_steps"] = ls;
  md["time_ps"] = numbers(tl);
  md["xx"] = numbers(xx);
  md["yy"] = numbers(yy);
  md["zz"] = numbers(zz);
  md["total"] = numbers(tot);
  return md;
}

Json msd_json(const Context& c, const MsdPhase& msd) {
  Json m;
  m["lag_steps"] = msd.lag_steps;
  m["lag_time_ps"] = json_number(msd.tau);
  m["n_steps"] = c.opt.msd_steps;
  m["replicate"] = Json::array({c.opt.replicate[0], c.opt.replicate[1], c.opt.replicate[2]});
  m["start"] = "occupancy";
  Json nlags = Json::array(), times = Json::array();
  for (std::int64_t k = 1; k <= c.opt.msd_steps; ++k) {
    nlags.push_back(k);
    times.push_back(json_number(static_cast<double>(k) * msd.tau));
  }
  m["n_lags"] = nlags;
  m["time_ps"] = times;
  for (std::size_t i = 0; i < kNumMsdMethods; ++i)
    m[msd_method_name(kMsdMethods[i])] = msd_curve_json(msd, i);
  m["md_projected"] = md_projected_json(c);
  return m;
}

Json network_sites_json(const Context& c, const JumpNetwork& net,
                        const TransportStatistics& stats) {
  Json sites = Json::array();
  for (std::size_t s = 0; s < c.data.nsites(); ++s) {
    const Eigen::Vector3d& x = net.site_cartesian[s];
    Json site = {{"index", s},
                 {"x", json_number(x[0])},
                 {"y", json_number(x[1])},
                 {"z", json_number(x[2])},
                 {"occupancy", json_number(net.occupancy_fraction[s])},
                 {"occupancy_count", c.data.occupancy[s]},
                 {"active", stats.state_of_site[s] >= 0}};
    if (!c.data.site_labels.empty()) site["label"] = c.data.site_labels[s];
    sites.push_back(site);
  }
  return sites;
}

Json jump_network_json(const Context& c, const MsdPhase& m, const TransportStatistics* stats) {
  Json j;
  j["lag_steps"] = m.lag_steps;
  j["lag_time_ps"] = json_number(m.tau);
  if (!m.network) {
    j["status"] = "failed";
    j["message"] = m.network_message;
    j["axes"] = Json::array({0, 1});
    j["axis_names"] = Json::array({"x", "y"});
    j["sites"] = Json::array();
    j["edges"] = Json::array();
    j["n_pairs"] = 0;
    j["self_image_hops"] = Json::array();
    return j;
  }
  const JumpNetwork& net = *m.network;
  j["status"] = "ok";
  j["message"] = "";
  j["axes"] = Json::array({m.axes.axes[0], m.axes.axes[1]});
  j["axis_names"] = Json::array({axis_name(m.axes.axes[0]), axis_name(m.axes.axes[1])});
  j["jump_variance_A2"] = vec3(m.axes.jump_variance);
  j["sites"] = network_sites_json(c, net, *stats);
  Json edges = Json::array();
  for (const DirectedJump& e : directed_jumps(net, m.tau))
    edges.push_back({{"from", e.from},
                     {"to", e.to},
                     {"rate_per_ps", json_number(e.rate)},
                     {"probability", json_number(e.probability)},
                     {"count", e.count},
                     {"jump_A", vec3(e.jump)}});
  j["edges"] = edges;
  j["n_pairs"] = net.edges.size();
  Json self = Json::array();
  for (std::size_t s = 0; s < net.self_image_hop_count.size(); ++s)
    if (net.self_image_hop_count[s] > 0)
      self.push_back({{"site", s}, {"count", net.self_image_hop_count[s]}});
  j["self_image_hops"] = self;
  return j;
}

}  // namespace

const char* ck_record_status(const CkRecord& c) {
  if (std::isfinite(c.err)) return "ok";
  if (c.n_sites == 0) return "undefined (no common sites)";
  return c.converged ? "undefined" : "not converged (Lanczos)";
}

std::vector<DirectedJump> directed_jumps(const JumpNetwork& net, double tau) {
  std::vector<DirectedJump> out;
  for (const auto& e : net.edges) {
    if (e.count_ab > 0)
      out.push_back({e.site_a, e.site_b, e.rate_ab, e.rate_ab * tau, e.count_ab,
                     e.mean_jump_ab});
    if (e.count_ba > 0)
      out.push_back({e.site_b, e.site_a, e.rate_ba, e.rate_ba * tau, e.count_ba,
                     -e.mean_jump_ab});
  }
  return out;
}

Json report_json(const Context& c, const Analysis& a, const std::vector<std::string>& args) {
  Json rep;
  rep["format"] = "ionmsm-report";
  rep["format_version"] = kReportFormatVersion;
  rep["ionmsm_version"] = kVersion;
  std::string cmd = "ionmsm analyze";
  for (const auto& arg : args) cmd += " " + arg;
  rep["command"] = cmd;
  rep["input"] = input_json(c);
  rep["units"] = units_json(c);
  rep["transport_cell"] = transport_cell_json(c);
  rep["estimator"] = estimator_name(c.opt.estimator);
  rep["options"] = options_json(c.opt);
  rep["selected_lag"] = selection_json(c, a.selection);
  Json lags = Json::array();
  for (const auto& r : a.lags.lags) lags.push_back(lag_json(r, c.opt.n_eigenvalues));
  rep["lags"] = lags;
  rep["ck_test"] = ck_json(c, a.ck);
  rep["ck_test_status"] = {{"status", a.ck.status}, {"message", a.ck.message}};
  Json diffusion = Json::array();
  for (const auto& t : a.transport.lags)
    diffusion.push_back(transport_json(t, c.opt.transport_counts));
  rep["diffusion"] = diffusion;
  rep["tracer_correlation"] = tracer_json(a);
  rep["which_D"] = which_d_json(c, a);
  rep["bootstrap"] = bootstrap_json(c, a.bootstrap);
  rep["msd"] = msd_json(c, a.msd);
  rep["jump_network"] = jump_network_json(c, a.msd, a.transport.selected.get());
  Json warnings = Json::array();
  for (const auto& w : a.warnings()) warnings.push_back(w);
  rep["warnings"] = warnings;
  if (const std::size_t bad = replace_non_finite(rep); bad > 0)
    rep["warnings"].push_back(std::to_string(bad) + " non-finite number(s) written as null");
  return rep;
}

}  // namespace ionmsm::cli::analyze
