// ionmsm analyze FILE.h5 --out DIR: the paper's full analysis (arXiv:2511.20863, sections 2.1,
// 2.2.4, 3.1.1): per-lag MSMs with connectivity, spectra and implied timescales, the
// Chapman-Kolmogorov test, the exact diffusion tensor per lag, MSDs by propagation and the jump
// network, written as report.json + CSV tables + PNG plots (cli/plot_report.py).
// Output schema: docs/report-schema.md. This file parses the options and runs the phases of
// analyze.hpp in order; the numerics are the core's.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "analyze.hpp"
#include "ionmsm/counts_file.hpp"
#include "verbs.hpp"

namespace ionmsm::cli {

extern const char kAnalyzeHelp[] =
    "usage: ionmsm analyze FILE.h5 --out DIR [--estimator nonrev|rev] [--lag-steps L]\n"
    "                      [--its-modes M] [--its-tolerance R]\n"
    "                      [--replicate R1 R2 R3] [--msd-steps N] [--n-eigenvalues K]\n"
    "                      [--transport-counts components|all] [--ck-max-n N] [--no-plots]\n"
    "                      [--plots-required] [--progress]\n"
    "\n"
    "The full analysis of a counts file (arXiv:2511.20863, secs. 2.1, 2.2.4, 3.1.1):\n"
    "  * every lag: the MSM on the largest strongly connected set of sites (dropped sites and\n"
    "    why), its eigenvalue spectrum and implied timescales t_k = -tau / ln(lambda_k);\n"
    "  * the Chapman-Kolmogorov test err(n) for every pair of lags tau, n tau in the file;\n"
    "  * every lag: the exact diffusion tensor D of the Markov model, the uncorrelated-hop D0,\n"
    "    f_lag = D/D0, the drift and an Einstein fit of the drift-centred propagated MSD;\n"
    "  * the tracer correlation factor f_tracer = D(selected lag) / D_hop, D_hop the\n"
    "    uncorrelated-hop diffusion of the shortest lag;\n"
    "  * one lag (--lag-steps): the MSD propagated n = 1..N lags by minimum image (paper eq. 7),\n"
    "    in a replicated supercell and without folding (moments), and the jump network.\n"
    "\n"
    "Writes into DIR (created if missing; each file written to a temporary and renamed):\n"
    "  report.json (schema: docs/report-schema.md), implied_timescales.csv, spectrum.csv,\n"
    "  ck_test.csv, diffusion.csv, msd.csv, jump_network.csv, bootstrap.csv, and with plots\n"
    "  implied_timescales.png, ck_test.png, msd.png, spectrum.png, jump_network.png and\n"
    "  plots.json (made by cli/plot_report.py with /usr/bin/python3 and matplotlib).\n"
    "Lengths are in the counts file's length unit (Angstrom for metal/real), times in ps; for\n"
    "units without a time in ps (lj) times are in timesteps (see the report's \"units\").\n"
    "\n"
    "options:\n"
    "  --out DIR            output directory (required)\n"
    "  --estimator E        nonrev (default; eq. 5) or rev (reversible maximum likelihood)\n"
    "                       for the MSMs, spectra, timescales and the CK test; the transport\n"
    "                       quantities always use the counted transitions (eq. 5)\n"
    "  --lag-steps L        lag (timesteps, one of the file's lags) for the MSD, the jump\n"
    "                       network and f_tracer; default: the shortest lag beyond which the\n"
    "                       slowest --its-modes implied timescales change by at most\n"
    "                       --its-tolerance (or 2 bootstrap sd) at every longer lag, with a CK\n"
    "                       error <= 0.1; if no lag qualifies (a warning), the longest lag with\n"
    "                       >= 10 independent windows (n_origins * nevery / L), else the\n"
    "                       shortest lag with counts\n"
    "  --its-modes M        slowest timescales the lag selection checks (default 3)\n"
    "  --its-tolerance R    their largest relative change beyond the lag (default 0.1)\n"
    "  --replicate R1 R2 R3 supercell replicas for the replicated MSD (default 4 4 4; also\n"
    "                       --replicate=R1,R2,R3)\n"
    "  --msd-steps N        MSD propagation steps n = 1..N lags (default 100, N >= 2); also the\n"
    "                       length of the per-lag curves behind the Einstein fits\n"
    "  --n-eigenvalues K    eigenvalues (and timescales) reported per lag in report.json and\n"
    "                       implied_timescales.csv, leading first (default 20); spectrum.csv\n"
    "                       has every computed eigenvalue\n"
    "  --transport-counts T components (default): D, MSD and jump network use only the\n"
    "                       transitions inside the strongly connected components of each lag's\n"
    "                       count graph (one-way transitions between components, finite-sampling\n"
    "                       artifacts that make the chain leak into absorbing sites, are\n"
    "                       dropped and reported); all: every counted transition\n"
    "  --ck-max-n N         Chapman-Kolmogorov test only for n <= N (default: every n with\n"
    "                       n tau in the file; models above 200 sites are tested matrix-free;\n"
    "                       the test is skipped with a warning if the dense matrix powers of\n"
    "                       the smaller ones would cost more than 2e11 flops)\n"
    "  --bootstrap N        block bootstrap with N replicates (default 100 if the counts file\n"
    "                       has blocks, i.e. fix msm ran with 'blocks Nb'; 0: off): each\n"
    "                       replicate draws the file's blocks with replacement and re-estimates\n"
    "                       the slowest timescales and the exact D of every lag; report.json\n"
    "                       \"bootstrap\" and bootstrap.csv give mean, standard deviation and\n"
    "                       the 95 % percentile interval. Asking for it on a file without\n"
    "                       blocks is an error\n"
    "  --seed S             random seed of the bootstrap (default 1; same seed, same result)\n"
    "  --no-plots           do not run the plot script\n"
    "  --plots-required     exit with status 1 if plotting fails (default: warn, exit 0)\n"
    "  --progress           progress lines on stderr (default: only when stderr is a terminal\n"
    "                       and the analysis takes more than 2 s)\n"
    "\n"
    "environment:\n"
    "  IONMSM_PLOT_SCRIPT   path of plot_report.py (default: the source tree's cli/)\n"
    "  IONMSM_PYTHON        interpreter for the plot script (default /usr/bin/python3)\n"
    "\n"
    "Exit status: 0 on success (also if only plotting failed, unless --plots-required);\n"
    "1 for a file or data problem (missing file, wrong format version, --lag-steps not in the\n"
    "file, no counts), with one 'ionmsm: error: ...' line and no report.json written;\n"
    "2 for a bad command line.\n";

using namespace analyze;

namespace {

namespace fs = std::filesystem;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string path_join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

void warn(const std::string& what) { std::cerr << "ionmsm: warning: " << what << std::endl; }

// ------------------------------------------------------------------ options

Options parse_options(const std::vector<std::string>& args_in) {
  const std::string verb = "analyze";
  // "--replicate R1 R2 R3" takes three values: fold them into "--replicate=R1,R2,R3" first.
  std::vector<std::string> args;
  bool done = false;
  for (std::size_t i = 0; i < args_in.size(); ++i) {
    const std::string& a = args_in[i];
    if (a == "--") done = true;
    if (!done && a == "--replicate") {
      if (i + 3 >= args_in.size())
        throw UsageError(verb + ": option '--replicate' needs three values R1 R2 R3");
      args.push_back("--replicate=" + args_in[i + 1] + "," + args_in[i + 2] + "," + args_in[i + 3]);
      i += 3;
      continue;
    }
    args.push_back(a);
  }
  const ParsedArgs p = parse_args(verb, args,
                                  {{"--out", true},
                                   {"--estimator", true},
                                   {"--lag-steps", true},
                                   {"--replicate", true},
                                   {"--msd-steps", true},
                                   {"--n-eigenvalues", true},
                                   {"--no-plots", false},
                                   {"--plots-required", false},
                                   {"--progress", false},
                                   {"--transport-counts", true},
                                   {"--ck-max-n", true},
                                   {"--bootstrap", true},
                                   {"--seed", true},
                                   {"--its-modes", true},
                                   {"--its-tolerance", true}});
  require_positional(verb, p, {"FILE.h5"});
  Options o;
  o.input = p.positional[0];
  if (!p.has("--out")) throw UsageError(verb + ": --out DIR is required (see 'ionmsm analyze --help')");
  o.out_dir = *p.value("--out");
  if (o.out_dir.empty()) throw UsageError(verb + ": --out expects a directory name");
  if (auto e = p.value("--estimator")) {
    if (*e == "nonrev" || *e == "nonreversible")
      o.estimator = Estimator::NonReversible;
    else if (*e == "rev" || *e == "reversible")
      o.estimator = Estimator::Reversible;
    else
      throw UsageError(verb + ": --estimator expects 'nonrev' or 'rev', got '" + *e + "'");
  }
  if (auto v = p.value("--lag-steps")) o.lag_steps = parse_int(verb, "--lag-steps", *v);
  if (auto v = p.value("--replicate")) {
    std::vector<std::string> parts;
    std::string cur;
    for (char c : *v) {
      if (c == ',' || c == 'x') {
        parts.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    parts.push_back(cur);
    if (parts.size() != 3)
      throw UsageError(verb + ": --replicate expects three integers R1 R2 R3, got '" + *v + "'");
    for (int a = 0; a < 3; ++a) {
      const std::int64_t r = parse_int(verb, "--replicate", parts[static_cast<std::size_t>(a)]);
      if (r < 1 || r > 1000)
        throw UsageError(verb + ": --replicate values must be in [1, 1000], got " +
                         std::to_string(r));
      o.replicate[static_cast<std::size_t>(a)] = static_cast<int>(r);
    }
  }
  if (auto v = p.value("--msd-steps")) {
    o.msd_steps = parse_int(verb, "--msd-steps", *v);
    if (o.msd_steps < 2 || o.msd_steps > 10000000)
      throw UsageError(verb + ": --msd-steps must be in [2, 10000000], got " + *v);
  }
  if (auto v = p.value("--n-eigenvalues")) {
    const std::int64_t k = parse_int(verb, "--n-eigenvalues", *v);
    if (k < 1 || k > 1000000)
      throw UsageError(verb + ": --n-eigenvalues must be >= 1, got " + *v);
    o.n_eigenvalues = static_cast<int>(k);
  }
  if (auto v = p.value("--transport-counts")) {
    if (*v == "components")
      o.transport_counts = TransportCounts::Components;
    else if (*v == "all")
      o.transport_counts = TransportCounts::All;
    else
      throw UsageError(verb + ": --transport-counts expects 'components' or 'all', got '" + *v +
                       "'");
  }
  if (auto v = p.value("--ck-max-n")) {
    o.ck_max_n = parse_int(verb, "--ck-max-n", *v);
    if (o.ck_max_n < 2 || o.ck_max_n > 1000000000)
      throw UsageError(verb + ": --ck-max-n must be >= 2, got " + *v);
  }
  if (auto v = p.value("--bootstrap")) {
    o.bootstrap = parse_int(verb, "--bootstrap", *v);
    if (*o.bootstrap < 0 || *o.bootstrap > 1000000)
      throw UsageError(verb + ": --bootstrap must be in [0, 1000000] replicates, got " + *v);
    if (*o.bootstrap == 1)
      throw UsageError(verb + ": --bootstrap needs at least 2 replicates (0 turns it off)");
  }
  if (auto v = p.value("--seed")) {
    const std::int64_t seed = parse_int(verb, "--seed", *v);
    if (seed < 0) throw UsageError(verb + ": --seed must be >= 0, got " + *v);
    o.seed = static_cast<std::uint64_t>(seed);
  }
  if (auto v = p.value("--its-modes")) {
    const std::int64_t m = parse_int(verb, "--its-modes", *v);
    if (m < 1 || m > 1000) throw UsageError(verb + ": --its-modes must be in [1, 1000], got " + *v);
    o.its_modes = static_cast<int>(m);
  }
  if (auto v = p.value("--its-tolerance")) {
    char* end = nullptr;
    const double r = std::strtod(v->c_str(), &end);
    if (v->empty() || end != v->c_str() + v->size() || !(r > 0.0 && r < 1.0))
      throw UsageError(verb + ": --its-tolerance must be in (0, 1), got " + *v);
    o.its_tolerance = r;
  }
  o.plots = !p.has("--no-plots");
  o.plots_required = p.has("--plots-required");
  o.progress = p.has("--progress");
  if (!o.plots && o.plots_required)
    throw UsageError(verb + ": --no-plots and --plots-required contradict each other");
  return o;
}

// ------------------------------------------------------------------ input

/// The counts file, refused when there is nothing to analyse or --bootstrap has no blocks.
CountsData read_input(const Options& opt) {
  CountsData data = read_counts_file(opt.input);
  const std::string& in = opt.input;
  if (data.nsites() == 0) throw std::runtime_error("'" + in + "' has no sites; nothing to analyse");
  if (data.lags.empty()) throw std::runtime_error("'" + in + "' has no lags; nothing to analyse");
  bool any_counts = false;
  for (const auto& lc : data.lags) any_counts = any_counts || lc.total() > 0;
  if (!any_counts)
    throw std::runtime_error("'" + in + "' has no transition counts (every lag is empty; was " +
                             "anything sampled?); nothing to analyse");
  if (opt.bootstrap && *opt.bootstrap > 0 && data.block_steps <= 0)
    throw std::runtime_error("--bootstrap " + std::to_string(*opt.bootstrap) + ": '" + in +
                             "' has no blocks (/blocks); run fix msm with 'blocks Nb' to get "
                             "count snapshots for error bars");
  return data;
}

// ------------------------------------------------------------------ output

/// Creates the output directory (removing plots of an earlier run, which would no longer match
/// the new report) and writes every file atomically: the CSV tables, model.h5, report.json
/// last. Returns the path of report.json.
std::string write_outputs(const std::string& out_dir,
                          const std::vector<std::pair<std::string, std::string>>& tables,
                          const ModelData& model, const Json& report) {
  std::error_code ec;
  if (fs::exists(out_dir, ec) && !fs::is_directory(out_dir, ec))
    throw std::runtime_error("output directory '" + out_dir + "' exists and is not a directory");
  fs::create_directories(out_dir, ec);
  if (!fs::is_directory(out_dir))
    throw std::runtime_error("cannot create output directory '" + out_dir + "'" +
                             (ec ? ": " + ec.message() : std::string()));
  for (const char* name : kPlotFiles) fs::remove(path_join(out_dir, name), ec);
  for (const auto& [name, content] : tables) write_file_atomic(path_join(out_dir, name), content);
  write_model_file(path_join(out_dir, kModelFileName), model);
  const std::string report_path = path_join(out_dir, "report.json");
  write_file_atomic(report_path, dump_report(report));
  return report_path;
}

PlotRun plot(const std::string& report_path, const std::string& out_dir) {
  const char* script = "";
#ifdef IONMSM_PLOT_SCRIPT
  script = IONMSM_PLOT_SCRIPT;
#endif
  return run_configured_plot_script(script, "IONMSM_PLOT_SCRIPT", report_path, out_dir);
}

std::string short_number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return std::isfinite(v) ? b : "undefined";
}

/// D of the selected lag, and its bootstrap interval, on stdout.
void print_selected_diffusion(const Context& c, const Analysis& a) {
  std::ostream& os = std::cout;
  const auto f = short_number;
  for (const auto& t : a.transport.lags) {
    if (t.index != a.selection.index || !t.have) continue;
    const auto& r = t.diffusion;
    const std::string unit = " " + c.units.length + "^2/" + c.units.per_time;
    os << "  D (exact, lag " << t.lag_steps << "): xx " << f(r.D_tensor(0, 0)) << ", yy "
       << f(r.D_tensor(1, 1)) << ", zz " << f(r.D_tensor(2, 2)) << ", total "
       << f(r.D_total) << unit << "; Einstein fit (drift-centred MSD) " << f(t.einstein.D_total)
       << "\n";
    os << "  correlation factors: f_lag = D/D0(tau) = " << f(r.correlation_factor_total);
    if (const auto& tr = a.transport.tracer)
      os << ", f_tracer = D/D_hop = " << f(tr->f_total) << " (D_hop " << f(tr->D_hop_total)
         << unit << " from lag " << tr->hop_lag_steps << ", where "
         << f(100.0 * tr->site_change_probability) << " % of ions change site per lag)";
    os << "\n";
    const BootstrapResult& boot = a.bootstrap;
    for (const auto& bl : boot.lags) {
      if (bl.index != a.selection.index) continue;
      const BootstrapSummary b = summarize_bootstrap(
          bl.values[static_cast<std::size_t>(boot.n_timescales) + kBootstrapDTotal],
          kBootstrapCoverage);
      os << "  bootstrap (" << boot.n_replicates << " replicates of " << c.data.blocks.size()
         << " blocks): D_total = " << f(b.mean) << " +- " << f(b.std) << ", 95 % interval ["
         << f(b.low) << ", " << f(b.high) << "]\n";
    }
  }
}

void print_summary(const Context& c, const Analysis& a, std::size_t n_tables, bool plots_ok) {
  std::ostream& os = std::cout;
  os << "ionmsm analyze: " << c.opt.input << " -> " << c.opt.out_dir << "\n";
  std::size_t n_ok = 0;
  for (const auto& r : a.lags.lags) n_ok += r.status == "ok";
  os << "  lags: " << n_ok << " of " << a.lags.lags.size() << " analysed (estimator "
     << estimator_name(c.opt.estimator) << "); MSD and jump network at lag " << a.msd.lag_steps
     << " steps (" << format_number(a.msd.tau) << " " << c.units.time << ")\n";
  os << "  selected lag (" << lag_rule_name(a.selection.method) << "): " << a.selection.rule
     << "\n";
  if (c.cell.status == CellStatus::Applied)
    os << "  transport cell: the hop-weighted rms cell of the run (the last cell differs from the "
          "MD projected moments by " << format_number(100.0 * c.cell.relative_mismatch)
       << " %; report.json transport_cell)\n";
  print_selected_diffusion(c, a);
  os << "  which D: " << which_d_note() << "\n";
  os << "  wrote report.json, " << kModelFileName << " and " << n_tables << " CSV files";
  if (c.opt.plots)
    os << (plots_ok ? ", " + std::to_string(kNumPlots) + " plots and plots.json"
                    : std::string(" (no plots)"));
  os << "\n";
}

}  // namespace

// ------------------------------------------------------------------ progress

namespace analyze {

Progress::Progress(bool forced)
    : forced_(forced), tty_(::isatty(STDERR_FILENO) != 0), start_(now_seconds()) {}

double Progress::seconds() const { return now_seconds() - start_; }

void Progress::operator()(const std::string& what) const {
  const double s = seconds();
  if (!forced_ && (!tty_ || s < 2.0)) return;
  // the elapsed wall time since the start, so that slow phases show
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%.2f", s);
  std::cerr << "[analyze " << stamp << " s] " << what << std::endl;
}

}  // namespace analyze

int run_analyze(const std::vector<std::string>& args) {
  const Options opt = parse_options(args);
  const Progress progress(opt.progress);
  CountsData data = read_input(opt);
  // one cell for all transport, consistent with the MD projected MSD (effective_cell.hpp)
  const Eigen::Matrix3d file_box_h = data.box_h;
  const EffectiveCell cell = effective_cell(data);
  data.box_h = cell.box_h;
  const Context c{data, opt, progress, report_units(data.units, data.timestep_ps), cell,
                  file_box_h};

  Analysis a;
  check_given_lag(c);
  a.lags = estimate_lags(c);
  a.ck = chapman_kolmogorov(c, a.lags.lags);
  a.bootstrap = bootstrap(c);
  a.selection = select_lag(c, a.lags, a.ck, a.bootstrap);
  a.transport = transport_per_lag(c, a.selection.index);
  a.msd = msd_and_network(c, a.selection.index, a.transport.selected.get());
  a.data_warnings = data_warnings(c, a);

  progress("model.h5: eigenvectors per lag");
  const ModelData model = model_data(c, a, a.model_warnings);
  progress("writing " + opt.out_dir);
  const Json report = report_json(c, a, args);
  const auto tables = csv_tables(c, a);
  const std::string report_path = write_outputs(opt.out_dir, tables, model, report);
  PlotRun plots;
  if (opt.plots) {
    progress("plots");
    plots = plot(report_path, opt.out_dir);
  }
  print_summary(c, a, tables.size(), plots.ok);
  progress("done in " + format_number(std::round(progress.seconds() * 10.0) / 10.0) + " s");
  for (const auto& w : a.warnings()) warn(w);
  if (opt.plots && !plots.ok) {
    if (opt.plots_required)
      throw std::runtime_error("plotting failed: " + plots.message +
                               " (report.json and the CSV files were written)");
    warn("plotting failed: " + plots.message + "; report.json and the CSV files were written");
  }
  return kExitOk;
}

}  // namespace ionmsm::cli
