// ionmsm analyze FILE.h5 --out DIR: the paper's full analysis (arXiv:2511.20863, sections 2.1,
// 2.2.4, 3.1.1): per-lag MSMs with connectivity, spectra and implied timescales, the
// Chapman-Kolmogorov test, the exact diffusion tensor per lag, MSDs by propagation and the jump
// network, written as report.json + CSV tables + PNG plots (cli/plot_report.py).
// Output schema: docs/report-schema.md. All numerics come from src/ionmsm/msm.hpp and
// src/ionmsm/transport.hpp; this file only orchestrates and formats.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "analyze_util.hpp"
#include "ionmsm/blocks.hpp"
#include "ionmsm/counts_file.hpp"
#include "ionmsm/msm.hpp"
#include "ionmsm/parallel.hpp"
#include "ionmsm/transport.hpp"
#include "ionmsm/version.hpp"
#include "verbs.hpp"

namespace ionmsm::cli {

extern const char kAnalyzeHelp[] =
    "usage: ionmsm analyze FILE.h5 --out DIR [--estimator nonrev|rev] [--lag-steps L]\n"
    "                      [--replicate R1 R2 R3] [--msd-steps N] [--n-eigenvalues K]\n"
    "                      [--transport-counts components|all] [--ck-max-n N] [--no-plots]\n"
    "                      [--plots-required] [--progress]\n"
    "\n"
    "The full analysis of a counts file (arXiv:2511.20863, secs. 2.1, 2.2.4, 3.1.1):\n"
    "  * every lag: the MSM on the largest strongly connected set of sites (dropped sites and\n"
    "    why), its eigenvalue spectrum and implied timescales t_k = -tau / ln(lambda_k);\n"
    "  * the Chapman-Kolmogorov test err(n) for every pair of lags tau, n tau in the file;\n"
    "  * every lag: the exact diffusion tensor D of the Markov model, the uncorrelated-hop D0,\n"
    "    the correlation factor f = D/D0, the drift and an Einstein fit of the propagated MSD;\n"
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
    "  --lag-steps L        lag (timesteps, one of the file's lags) for the MSD and the jump\n"
    "                       network; default: the longest lag with counts that spans at least\n"
    "                       10 independent windows (n_origins * nevery / L >= 10), else the\n"
    "                       shortest lag with counts\n"
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

namespace {

using analyze::format_number;
using analyze::Json;
using analyze::json_number;
namespace fs = std::filesystem;

constexpr int kReportFormatVersion = 1;
constexpr double kEinsteinFitFraction = 0.5;  // fit the last half of the propagated MSD
constexpr double kCkMaxFlops = 2e11;          // skip a CK test estimated above this (~minutes)
constexpr double kMsdMaxOps = 5e10;           // skip a folded MSD estimated above this
constexpr std::size_t kDenseSpectrumMaxSites = 300;  // all eigenvalues (dense) up to this size

const char* const kPlotFiles[] = {"implied_timescales.png", "ck_test.png", "msd.png",
                                  "spectrum.png", "jump_network.png", "plots.json"};

// ------------------------------------------------------------------ options

struct Options {
  std::string input;
  std::string out_dir;
  Estimator estimator = Estimator::NonReversible;
  std::optional<std::int64_t> lag_steps;
  std::array<int, 3> replicate{4, 4, 4};
  std::int64_t msd_steps = 100;
  int n_eigenvalues = 20;
  bool plots = true;
  bool plots_required = false;
  bool progress = false;
  bool transport_within_components = true;  ///< --transport-counts components (default) | all
  std::int64_t ck_max_n = 0;                ///< --ck-max-n; 0 = every n
  std::optional<std::int64_t> bootstrap;    ///< --bootstrap N (default: 100 with blocks)
  std::uint64_t seed = 1;                   ///< --seed
};

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
                                   {"--seed", true}});
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
      o.transport_within_components = true;
    else if (*v == "all")
      o.transport_within_components = false;
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
  o.plots = !p.has("--no-plots");
  o.plots_required = p.has("--plots-required");
  o.progress = p.has("--progress");
  if (!o.plots && o.plots_required)
    throw UsageError(verb + ": --no-plots and --plots-required contradict each other");
  return o;
}

// ------------------------------------------------------------------ progress

class Progress {
 public:
  explicit Progress(bool forced)
      : forced_(forced), tty_(::isatty(STDERR_FILENO) != 0),
        start_(std::chrono::steady_clock::now()) {}
  void operator()(const std::string& what) const {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (!forced_ && (!tty_ || s < 2.0)) return;
    // the elapsed wall time since the start, so that slow phases show
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%.2f", s);
    std::cerr << "[analyze " << stamp << " s] " << what << std::endl;
  }

 private:
  bool forced_, tty_;
  std::chrono::steady_clock::time_point start_;
};

void warn(const std::string& what) { std::cerr << "ionmsm: warning: " << what << std::endl; }

// ------------------------------------------------------------------ small formatting helpers

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

std::string length_unit(const std::string& units) {
  if (units == "metal" || units == "real") return "Angstrom";
  if (units == "lj") return "sigma";
  if (units == "si") return "m";
  if (units == "cgs") return "cm";
  if (units == "electron") return "Bohr";
  if (units == "micro") return "micrometer";
  if (units == "nano") return "nanometer";
  return "length unit of the counts file";
}

std::string csv_join(const std::vector<std::string>& fields) {
  std::string s;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) s += ',';
    s += fields[i];
  }
  s += '\n';
  return s;
}

std::string csv_text(const std::string& s) {
  // statuses are plain words; keep the CSV unquoted by mapping separators away
  std::string t = s;
  for (char& c : t)
    if (c == ',' || c == '\n' || c == '"') c = ';';
  return t;
}

const char* estimator_name(Estimator e) { return e == Estimator::Reversible ? "rev" : "nonrev"; }

const char* axis_name(int a) { return a == 0 ? "x" : (a == 1 ? "y" : "z"); }

std::string path_join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

// ------------------------------------------------------------------ per-lag results

struct LagResult {
  std::size_t index = 0;  ///< into CountsData::lags
  std::int64_t lag_steps = 0;
  double lag_time = 0.0;
  std::uint64_t n_origins = 0, total_counts = 0;
  std::string status = "ok";  ///< ok | empty | failed
  std::string message;
  bool have_model = false;
  MarkovModel model;
  bool have_spectrum = false;
  Spectrum spectrum;
  std::vector<ImpliedTimescale> timescales;
};

struct TransportResult {
  std::size_t index = 0;
  std::int64_t lag_steps = 0;
  double lag_time = 0.0;
  std::string status = "ok";
  std::string message;
  bool have = false;
  std::size_t n_sites = 0, n_active = 0;
  std::vector<SiteIndex> excluded;
  std::uint64_t dropped_count = 0;
  std::uint64_t one_way_count = 0;   ///< transitions between components, dropped
  std::size_t n_components = 0;      ///< strongly connected components among visited sites
  DiffusionTensorResult diffusion;
  EinsteinFit einstein;
  double fit_t_start = 0.0, fit_t_end = 0.0;
};

/// The lag's counts restricted to transitions whose two sites lie in the same strongly
/// connected component of the lag's count graph (edge j -> i for every counted j -> i, j != i).
LagCounts within_components(const LagCounts& lc, std::size_t nsites, std::uint64_t& one_way,
                            std::size_t& n_components) {
  std::vector<Edge> edges;
  std::vector<char> visited(nsites, 0);
  for (const auto& r : lc.rows) {
    visited[static_cast<std::size_t>(r.from)] = visited[static_cast<std::size_t>(r.to)] = 1;
    if (r.from != r.to)
      edges.emplace_back(static_cast<std::size_t>(r.from), static_cast<std::size_t>(r.to));
  }
  const std::vector<std::size_t> comp = strongly_connected_components(nsites, edges).component;
  std::vector<char> seen(nsites, 0);
  n_components = 0;
  for (std::size_t i = 0; i < nsites; ++i)
    if (visited[i] && !seen[comp[i]]++) ++n_components;
  LagCounts out;
  out.lag_steps = lc.lag_steps;
  out.n_origins = lc.n_origins;
  one_way = 0;
  for (const auto& r : lc.rows) {
    if (comp[static_cast<std::size_t>(r.from)] == comp[static_cast<std::size_t>(r.to)])
      out.rows.push_back(r);
    else
      one_way += r.count;
  }
  return out;
}

/// leading_spectrum: up to this many kept sites the matrix-vector trial computes 2 k_sparse
/// eigenvalues (fewer restarts), above it k_sparse (cheaper orthogonalisation).
constexpr std::size_t kSmallTrialMaxSites = 5000;

/// leading_spectrum: a non-reversible estimate counts as reversible (symmetric route) when its
/// detailed-balance violation relative to the largest flux is at most this (round-off level;
/// the solvers' own residuals are ~1e-10).
constexpr double kExactBalanceTolerance = 1e-12;

/// True when the estimate satisfies detailed balance to round-off. Only a choice of solver
/// depends on it, so a stationary vector the check refuses (a round-off zero or negative
/// entry) means "no": the general route handles any model, as before.
bool exactly_balanced(const MarkovModel& model) {
  try {
    return detailed_balance_violation(model.transition_matrix, model.stationary) <=
           kExactBalanceTolerance;
  } catch (const std::invalid_argument&) {
    return false;
  }
}

/// The spectrum of a model as `ionmsm analyze` reports it: at least the leading n_eigenvalues.
Spectrum leading_spectrum(const MarkovModel& model, Estimator estimator, int n_eigenvalues) {
  SpectrumOptions so;
  const auto n = static_cast<std::size_t>(model.transition_matrix.rows());
  // Only the leading K eigenvalues are reported: above kDenseSpectrumMaxSites kept sites
  // (when K is small against n) compute just those by Spectra instead of all n by the
  // O(n^3) dense solver.
  const int k_sparse = std::max(n_eigenvalues, kDefaultSparseEigenvalues);
  const bool sparse = n > so.sparse_threshold ||
                      (n > kDenseSpectrumMaxSites &&
                       static_cast<std::size_t>(4 * static_cast<std::size_t>(k_sparse)) <= n);
  so.method = sparse ? SpectrumMethod::Sparse : SpectrumMethod::Dense;
  // A non-reversible estimate that satisfies detailed balance to round-off (symmetric counts,
  // e.g. an exactly symmetric lattice) has the same spectrum as its symmetrised matrix: take
  // the real symmetric route (Lanczos / sparse LDLT or SelfAdjointEigenSolver), which is about
  // twice as fast as the general Arnoldi / sparse LU one and returns exactly real eigenvalues.
  const bool symmetric_route = estimator == Estimator::Reversible || exactly_balanced(model);
  auto compute = [&](const SpectrumOptions& o) {
    return symmetric_route
               ? compute_reversible_spectrum(model.transition_matrix, model.stationary, o)
               : compute_spectrum(model.transition_matrix, o);
  };
  if (sparse) {
    // First the matrix-vector Arnoldi / Lanczos (no sparse factorisation): SparseMode::Auto
    // accepts it only when its values are provably the ones closest to 1 (the shift-invert
    // ones) and no two coincide (an exact multiplicity is never trusted to a Krylov method:
    // never on an exactly symmetric lattice; real MD counts are never exactly degenerate).
    // Large models ask it for just the k_sparse reported eigenvalues (a Krylov space half the
    // size: 10648 sites about 1 s instead of 3 s per lag); small ones for 2 k_sparse, which
    // converges in far fewer restarts there (1248 sites: 0.08 s instead of 0.2 s).
    SpectrumOptions trial = so;
    trial.num_eigenvalues = n > kSmallTrialMaxSites ? k_sparse : 2 * k_sparse;
    trial.sparse_mode = SparseMode::Auto;
    trial.sparse_auto_fallback = false;
    Spectrum sp = compute(trial);
    if (sp.status == SpectrumStatus::Ok && sp.sparse_mode_used == SparseMode::LargestModulus &&
        sp.eigenvalues.size() >= k_sparse) {
      if (sp.eigenvalues.size() > k_sparse) sp.eigenvalues = sp.eigenvalues.head(k_sparse).eval();
      return sp;
    }
  }
  // Otherwise exactly as before: shift-invert.
  // Krylov methods see exactly degenerate eigenvalues (symmetric lattices) only through
  // round-off: compute twice as many as reported so that multiplicities near the cut are
  // complete, then keep the leading k_sparse.
  so.num_eigenvalues = sparse ? 2 * k_sparse : 0;
  Spectrum sp = compute(so);
  if (sparse && sp.eigenvalues.size() > k_sparse)
    sp.eigenvalues = sp.eigenvalues.head(k_sparse).eval();
  return sp;
}

const char* ck_record_status(const CkRecord& c) {
  if (std::isfinite(c.err)) return "ok";
  if (c.n_sites == 0) return "undefined (no common sites)";
  return c.converged ? "undefined" : "not converged (Lanczos)";
}

std::string available_lags(const CountsData& d) {
  std::string s;
  for (const auto& lc : d.lags) s += (s.empty() ? "" : ", ") + std::to_string(lc.lag_steps);
  return s.empty() ? "none" : s;
}

// ------------------------------------------------------------------ block bootstrap

constexpr int kBootstrapTimescales = 5;      // slowest relaxation timescales per lag
constexpr double kBootstrapCoverage = 0.95;  // percentile interval
constexpr std::int64_t kDefaultBootstrap = 100;
constexpr std::size_t kMinBootstrapBlocks = 10;  // fewer: error bars flagged as unreliable

/// Bootstrap values of one lag: values[q][r] for quantity q and replicate r (NaN: undefined).
/// Quantities: the K slowest relaxation timescales (eigenvalues 2 .. K+1), then D_xx, D_yy,
/// D_zz, D_total and the correlation factor f (trace).
struct BootstrapLag {
  std::size_t index = 0;
  std::int64_t lag_steps = 0;
  double lag_time = 0.0;
  std::vector<std::vector<double>> values;
};

struct BootstrapResult {
  std::string status = "off";  ///< ok | insufficient | absent | off
  std::string message;
  std::int64_t n_replicates = 0;
  int n_timescales = 0;
  std::vector<BootstrapLag> lags;
};

const char* const kBootstrapTransport[] = {"D_xx", "D_yy", "D_zz", "D_total", "f_trace"};

BootstrapResult run_bootstrap(const CountsData& data, const Options& opt, double time_per_step,
                              const Progress& progress) {
  BootstrapResult res;
  if (data.block_steps <= 0) {
    res.status = "absent";
    res.message = "the counts file has no blocks (run fix msm with 'blocks Nb' for error bars)";
    return res;
  }
  res.n_replicates = opt.bootstrap.value_or(kDefaultBootstrap);
  if (res.n_replicates == 0) {
    res.status = "off";
    res.message = "--bootstrap 0";
    return res;
  }
  const std::size_t nb = data.blocks.size();
  if (nb < 2) {
    res.status = "insufficient";
    res.message = "the counts file has " + std::to_string(nb) +
                  " block(s); a bootstrap needs at least 2 (use a shorter 'blocks Nb')";
    res.n_replicates = 0;
    return res;
  }
  res.status = "ok";
  if (nb < kMinBootstrapBlocks)
    res.message = "only " + std::to_string(nb) + " blocks: the error bars are themselves "
                  "uncertain (aim for >= " + std::to_string(kMinBootstrapBlocks) + " blocks)";
  const int K = std::max(1, std::min(kBootstrapTimescales, opt.n_eigenvalues - 1));
  res.n_timescales = K;
  const auto R = static_cast<std::size_t>(res.n_replicates);
  // the multiplicities are drawn in order from one generator: the result depends on the seed
  // only, never on the thread scheduling
  std::mt19937_64 rng(opt.seed);
  std::vector<std::vector<std::uint64_t>> weights(R);
  for (auto& w : weights) w = bootstrap_weights(nb, rng);
  const std::size_t nq = static_cast<std::size_t>(K) + 5;
  for (std::size_t i = 0; i < data.lags.size(); ++i) {
    if (data.lags[i].total() == 0) continue;
    BootstrapLag bl;
    bl.index = i;
    bl.lag_steps = data.lags[i].lag_steps;
    bl.lag_time = static_cast<double>(bl.lag_steps) * time_per_step;
    bl.values.assign(nq, std::vector<double>(R, std::numeric_limits<double>::quiet_NaN()));
    res.lags.push_back(std::move(bl));
  }
  CountsData base = data;  // metadata and sites; counts come from the blocks
  base.lags.clear();
  base.blocks.clear();
  base.block_steps = 0;
  MsmOptions msm_opt;
  msm_opt.estimator = opt.estimator;
  const std::size_t ntasks = res.lags.size() * R;
  auto task = [&](std::size_t t) {
    BootstrapLag& bl = res.lags[t / R];
    const std::size_t r = t % R;
    const LagCounts lc = weighted_lag_counts(data.blocks, weights[r], bl.index, bl.lag_steps);
    if (lc.total() == 0) return;
    try {
      const MarkovModel model = estimate_markov_model(lc, data.nsites(), msm_opt);
      const Spectrum sp = leading_spectrum(model, opt.estimator, K + 1);
      const auto ts = implied_timescales(sp.eigenvalues, bl.lag_time);
      for (int k = 1; k <= K && static_cast<std::size_t>(k) < ts.size(); ++k)
        if (ts[static_cast<std::size_t>(k)].status == TimescaleStatus::Ok)
          bl.values[static_cast<std::size_t>(k - 1)][r] = ts[static_cast<std::size_t>(k)].timescale;
    } catch (const std::exception&) {
      // an undefined replicate (e.g. a failed estimate) stays NaN and is counted as such
    }
    try {
      CountsData one = base;
      one.occupancy = weighted_occupancy(data.blocks, weights[r]);
      std::uint64_t one_way = 0;
      std::size_t ncomp = 0;
      one.lags.assign(1, opt.transport_within_components
                             ? within_components(lc, data.nsites(), one_way, ncomp)
                             : lc);
      const TransportStatistics st = build_transport_statistics(one, 0);
      const DiffusionTensorResult d = exact_diffusion_tensor(st, bl.lag_time);
      const double v[5] = {d.D_A2_per_ps(0, 0), d.D_A2_per_ps(1, 1), d.D_A2_per_ps(2, 2),
                           d.D_total_A2_per_ps, d.correlation_factor_total};
      for (std::size_t q = 0; q < 5; ++q) bl.values[static_cast<std::size_t>(K) + q][r] = v[q];
    } catch (const std::exception&) {
    }
  };
  progress("bootstrap: " + std::to_string(R) + " replicates of " + std::to_string(nb) +
           " blocks, " + std::to_string(res.lags.size()) + " lags");
  parallel_for(ntasks, [&](std::size_t t, int) { task(t); });
  return res;
}

Json summary_json(const BootstrapSummary& s) {
  return {{"mean", json_number(s.mean)}, {"std", json_number(s.std)},
          {"low", json_number(s.low)},   {"high", json_number(s.high)},
          {"n", s.n},                    {"n_undefined", s.n_undefined}};
}

}  // namespace

int run_analyze(const std::vector<std::string>& args) {
  const Options opt = parse_options(args);
  const Progress progress(opt.progress);
  const auto t_start = std::chrono::steady_clock::now();

  // ---------------------------------------------------------------- input
  const CountsData data = read_counts_file(opt.input);
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
  const bool physical_time = data.timestep_ps > 0.0;
  const double time_per_step = physical_time ? data.timestep_ps : 1.0;
  const std::string time_unit = physical_time ? "ps" : "timesteps";
  const std::string len_unit = length_unit(data.units);

  // ---------------------------------------------------------------- lag for MSD / jump network
  int sel = -1;
  Json selection;
  {
    std::vector<analyze::LagCandidate> cands;
    for (const auto& lc : data.lags) cands.push_back({lc.lag_steps, lc.n_origins, lc.total()});
    if (opt.lag_steps) {
      sel = data.find_lag(*opt.lag_steps);
      if (sel < 0)
        throw std::runtime_error("lag " + std::to_string(*opt.lag_steps) +
                                 " steps (--lag-steps) is not in '" + in +
                                 "' (available lags in steps: " + available_lags(data) + ")");
      if (data.lags[static_cast<std::size_t>(sel)].total() == 0)
        throw std::runtime_error("lag " + std::to_string(*opt.lag_steps) +
                                 " steps (--lag-steps) has no counts in '" + in + "'");
      selection["rule"] = "given (--lag-steps)";
    } else {
      const analyze::LagChoice c = analyze::choose_default_lag(cands, data.nevery);
      sel = c.index;  // >= 0: some lag has counts
      selection["rule"] =
          c.fallback ? "shortest lag with counts (no lag has >= 10 independent windows)"
                     : "longest lag with counts and >= 10 independent windows "
                       "(n_origins * nevery / lag_steps)";
    }
    const LagCounts& lc = data.lags[static_cast<std::size_t>(sel)];
    selection["lag_steps"] = lc.lag_steps;
    selection["lag_time_ps"] = json_number(static_cast<double>(lc.lag_steps) * time_per_step);
    selection["independent_windows"] =
        json_number(analyze::independent_windows(lc.n_origins, data.nevery, lc.lag_steps));
    selection["min_independent_windows"] = analyze::kMinIndependentWindows;
  }
  const std::size_t sel_index = static_cast<std::size_t>(sel);
  Json warnings = Json::array();

  // ---------------------------------------------------------------- MSMs, spectra, timescales
  MsmOptions msm_opt;
  msm_opt.estimator = opt.estimator;
  const std::size_t nl = data.lags.size();
  // The lags are independent: estimate them on up to two threads (results and warnings are
  // kept in lag order, so the report does not depend on the scheduling).
  std::vector<LagResult> lags(nl);
  std::vector<std::string> lag_warning(nl);
  std::mutex progress_mutex;
  auto analyse_lag = [&](std::size_t i) {
    const LagCounts& lc = data.lags[i];
    LagResult r;
    r.index = i;
    r.lag_steps = lc.lag_steps;
    r.lag_time = static_cast<double>(lc.lag_steps) * time_per_step;
    r.n_origins = lc.n_origins;
    r.total_counts = lc.total();
    {
      const std::lock_guard<std::mutex> lock(progress_mutex);
      progress("lag " + std::to_string(i + 1) + "/" + std::to_string(nl) + " (" +
               std::to_string(lc.lag_steps) + " steps): MSM and spectrum");
    }
    if (r.total_counts == 0) {
      r.status = "empty";
      r.message = "no counts at this lag";
      lags[i] = std::move(r);
      return;
    }
    try {
      r.model = estimate_markov_model(lc, data.nsites(), msm_opt);
      r.have_model = true;
      r.spectrum = leading_spectrum(r.model, opt.estimator, opt.n_eigenvalues);
      r.have_spectrum = true;
      r.timescales = implied_timescales(r.spectrum.eigenvalues, r.lag_time);
    } catch (const std::exception& e) {
      r.status = "failed";
      r.message = e.what();
      lag_warning[i] = "lag " + std::to_string(lc.lag_steps) + ": " + e.what();
    }
    lags[i] = std::move(r);
  };
  parallel_for(nl, [&](std::size_t i, int) { analyse_lag(i); });
  for (const auto& w : lag_warning)
    if (!w.empty()) warnings.push_back(w);

  // ---------------------------------------------------------------- Chapman-Kolmogorov
  progress("Chapman-Kolmogorov test");
  std::vector<CkRecord> ck;
  std::string ck_status = "ok", ck_message;
  {
    // Small models are tested with dense matrices, forming M(tau)^n by repeated products:
    // estimate that cost (2 k^3 flops per product, k kept sites) and skip the test if it would
    // take too long. Larger ones are tested matrix-free (sparse products and Lanczos, cheap).
    CkOptions co;
    co.max_n = static_cast<int>(opt.ck_max_n);
    double flops = 0.0;
    for (const auto& a : lags) {
      if (!a.have_model) continue;
      if (static_cast<std::size_t>(a.model.transition_matrix.rows()) > co.dense_max_sites)
        continue;
      std::int64_t max_n = 0;
      for (const auto& b : lags)
        if (b.have_model && b.lag_steps > a.lag_steps && b.lag_steps % a.lag_steps == 0) {
          const std::int64_t n = b.lag_steps / a.lag_steps;
          if (opt.ck_max_n == 0 || n <= opt.ck_max_n) max_n = std::max(max_n, n);
        }
      const double k = static_cast<double>(a.model.transition_matrix.rows());
      flops += 2.0 * static_cast<double>(max_n) * k * k * k;
    }
    if (flops > kCkMaxFlops) {
      ck_status = "skipped";
      ck_message = "the Chapman-Kolmogorov test would need about " +
                   format_number(std::round(flops / 1e9)) +
                   " Gflop (dense matrix powers); limit it with --ck-max-n";
      warnings.push_back(ck_message);
    } else {
      try {
        std::vector<MarkovModel> mats;
        for (const auto& r : lags)
          if (r.have_model) mats.push_back(r.model);
        ck = chapman_kolmogorov_test(mats, co);
      } catch (const std::exception& e) {
      ck_status = "failed";
      ck_message = e.what();
        warnings.push_back(std::string("Chapman-Kolmogorov test: ") + e.what());
      }
    }
  }

  // ---------------------------------------------------------------- transport per lag
  // The lags are independent: up to two threads, like the spectra above. Results and warnings
  // are kept in lag order; only the selected lag's statistics are kept (for the MSD curves and
  // the jump network).
  std::vector<TransportResult> transport;
  std::unique_ptr<TransportStatistics> sel_stats;
  {
    CountsData one_lag_base;  // the file's metadata and sites, no lags (nor blocks)
    if (opt.transport_within_components) {
      one_lag_base = data;
      one_lag_base.lags.clear();
      one_lag_base.blocks.clear();
      one_lag_base.block_steps = 0;
    }
    std::vector<std::size_t> todo;
    for (std::size_t i = 0; i < nl; ++i)
      if (data.lags[i].total() > 0) todo.push_back(i);
    std::vector<TransportResult> results(todo.size());
    std::vector<std::string> transport_warning(todo.size());
    auto transport_lag = [&](std::size_t task) {
      const std::size_t i = todo[task];
      const LagCounts& lc = data.lags[i];
      {
        const std::lock_guard<std::mutex> lock(progress_mutex);
        progress("lag " + std::to_string(i + 1) + "/" + std::to_string(nl) + " (" +
                 std::to_string(lc.lag_steps) + " steps): diffusion tensor");
      }
      TransportResult t;
      t.index = i;
      t.lag_steps = lc.lag_steps;
      t.lag_time = static_cast<double>(lc.lag_steps) * time_per_step;
      try {
        TransportStatistics st;
        if (opt.transport_within_components) {
          CountsData one_lag = one_lag_base;  // per task: the threads never share it
          one_lag.lags.assign(1, within_components(lc, data.nsites(), t.one_way_count,
                                                   t.n_components));
          st = build_transport_statistics(one_lag, 0);
        } else {
          st = build_transport_statistics(data, i);
        }
        t.n_sites = st.nsites();
        t.n_active = st.nstates();
        t.excluded = st.excluded_sites;
        t.dropped_count = st.dropped_count;
        t.diffusion = exact_diffusion_tensor(st, t.lag_time);
        MsdOptions mo;
        mo.method = MsdMethod::moments;
        mo.n_max = opt.msd_steps;
        const MsdCurve curve = propagate_msd(st, t.lag_time, mo);
        t.einstein = fit_einstein(curve, kEinsteinFitFraction);
        t.fit_t_start = curve.time_ps[t.einstein.first_point];
        t.fit_t_end = curve.time_ps.back();
        t.have = true;
        // only one task has the selected lag: no other thread touches sel_stats
        if (i == sel_index) sel_stats = std::make_unique<TransportStatistics>(std::move(st));
      } catch (const std::exception& e) {
        t.status = "failed";
        t.message = e.what();
        transport_warning[task] =
            "diffusion at lag " + std::to_string(lc.lag_steps) + ": " + e.what();
      }
      results[task] = std::move(t);
    };
    parallel_for(todo.size(), [&](std::size_t k, int) { transport_lag(k); });
    transport = std::move(results);
    for (const auto& w : transport_warning)
      if (!w.empty()) warnings.push_back(w);
  }

  // ---------------------------------------------------------------- block bootstrap
  const BootstrapResult boot = run_bootstrap(data, opt, time_per_step, progress);
  if (boot.status == "insufficient" || (boot.status == "ok" && !boot.message.empty()))
    warnings.push_back("bootstrap: " + boot.message);

  // ---------------------------------------------------------------- MSD and jump network
  const LagCounts& sel_lag = data.lags[sel_index];
  const double sel_tau = static_cast<double>(sel_lag.lag_steps) * time_per_step;
  const MsdMethod methods[3] = {MsdMethod::minimum_image, MsdMethod::replicated,
                                MsdMethod::moments};
  std::vector<std::optional<MsdCurve>> curves(3);
  std::vector<std::string> curve_msg(3);
  std::vector<bool> curve_skipped(3, false);
  std::optional<JumpNetwork> network;
  ProjectionAxes axes;
  std::string network_msg;
  if (!sel_stats) {
    const std::string why = "the transport statistics of lag " +
                            std::to_string(sel_lag.lag_steps) + " could not be built";
    for (auto& m : curve_msg) m = why;
    network_msg = why;
  } else {
    for (int m = 0; m < 3; ++m) {
      // the folded methods propagate every start site separately: about
      // |A| * N * rows * (R1 R2 R3) operations; skip them when that is far too much
      if (methods[m] != MsdMethod::moments) {
        const double cells = methods[m] == MsdMethod::replicated
                                 ? static_cast<double>(opt.replicate[0]) * opt.replicate[1] *
                                       opt.replicate[2]
                                 : 1.0;
        const double ops = static_cast<double>(sel_stats->nstates()) *
                           static_cast<double>(opt.msd_steps) *
                           static_cast<double>(sel_stats->rows.size()) * cells;
        if (ops > kMsdMaxOps) {
          curve_skipped[static_cast<std::size_t>(m)] = true;
          curve_msg[static_cast<std::size_t>(m)] =
              std::string("skipped: the ") + msd_method_name(methods[m]) +
              " MSD would need about " + format_number(std::round(ops / 1e9)) +
              " G operations; use fewer --msd-steps or a smaller --replicate";
          warnings.push_back("MSD: " + curve_msg[static_cast<std::size_t>(m)]);
          continue;
        }
      }
      progress(std::string("MSD (") + msd_method_name(methods[m]) + ", lag " +
               std::to_string(sel_lag.lag_steps) + " steps, " + std::to_string(opt.msd_steps) +
               " steps)");
      try {
        MsdOptions mo;
        mo.method = methods[m];
        mo.n_max = opt.msd_steps;
        mo.replicas = opt.replicate;
        curves[static_cast<std::size_t>(m)] = propagate_msd(*sel_stats, sel_tau, mo);
      } catch (const std::exception& e) {
        curve_msg[static_cast<std::size_t>(m)] = e.what();
        warnings.push_back(std::string("MSD (") + msd_method_name(methods[m]) + "): " + e.what());
      }
    }
    progress("jump network");
    try {
      network = build_jump_network(*sel_stats, sel_tau);
      axes = most_informative_axes(*sel_stats);
    } catch (const std::exception& e) {
      network_msg = e.what();
      warnings.push_back(std::string("jump network: ") + e.what());
    }
  }

  // ================================================================ report.json
  progress("writing " + opt.out_dir);
  Json rep;
  rep["format"] = "ionmsm-report";
  rep["format_version"] = kReportFormatVersion;
  rep["ionmsm_version"] = kVersion;
  {
    std::string cmd = "ionmsm analyze";
    for (const auto& a : args) cmd += " " + a;
    rep["command"] = cmd;
  }
  {
    Json inp;
    inp["file"] = opt.input;
    inp["file_name"] = fs::path(opt.input).filename().string();
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
    inp["box"] = {{"origin", vec3(data.box_origin)}, {"h", mat3(data.box_h)}};
    rep["input"] = inp;
  }
  {
    Json u;
    u["length"] = len_unit;
    u["time"] = time_unit;
    u["time_is_physical"] = physical_time;
    const std::string per = physical_time ? time_unit : std::string("timestep");
    u["diffusion"] = len_unit + "^2/" + per;
    u["velocity"] = len_unit + "/" + per;
    u["rate"] = "1/" + per;
    u["msd"] = len_unit + "^2";
    u["note"] = physical_time
                    ? "fields named *_ps are in ps, *_A / *_A2 in the length unit above"
                    : "units '" + data.units + "' have no time in ps: every field named *_ps is "
                      "in timesteps (lag_steps), *_A / *_A2 in the length unit above";
    rep["units"] = u;
  }
  rep["estimator"] = estimator_name(opt.estimator);
  {
    Json o;
    o["estimator"] = estimator_name(opt.estimator);
    o["lag_steps"] = opt.lag_steps ? Json(*opt.lag_steps) : Json(nullptr);
    o["replicate"] = Json::array({opt.replicate[0], opt.replicate[1], opt.replicate[2]});
    o["msd_steps"] = opt.msd_steps;
    o["n_eigenvalues"] = opt.n_eigenvalues;
    o["einstein_fit_fraction"] = kEinsteinFitFraction;
    o["msd_start"] = "occupancy";
    o["transport_counts"] = opt.transport_within_components ? "components" : "all";
    o["ck_max_n"] = opt.ck_max_n > 0 ? Json(opt.ck_max_n) : Json(nullptr);
    o["plots"] = opt.plots;
    rep["options"] = o;
  }
  rep["selected_lag"] = selection;

  // lags[]
  {
    Json arr = Json::array();
    for (const auto& r : lags) {
      Json l;
      l["lag_steps"] = r.lag_steps;
      l["lag_time_ps"] = json_number(r.lag_time);
      l["n_origins"] = r.n_origins;
      l["total_counts"] = r.total_counts;
      l["status"] = r.status;
      l["message"] = r.message;
      if (r.have_model) {
        const ConnectedSet& cs = r.model.connectivity;
        l["kept_sites"] = cs.kept.size();
        Json dropped = Json::array();
        for (const auto& d : cs.dropped)
          dropped.push_back({{"site", d.site}, {"reason", drop_reason_name(d.reason)}});
        l["dropped_sites"] = dropped;
        l["n_components"] = cs.n_components;
        const ReversibleMleInfo& ei = r.model.estimator_info;
        Json info;
        info["estimator"] = estimator_name(r.model.estimator);
        info["status"] = reversible_mle_status_name(ei.status);
        info["iterations"] = ei.iterations;
        info["final_change"] = json_number(ei.final_change);
        info["tolerance"] = json_number(ei.tolerance);
        info["max_iterations"] = ei.max_iterations;
        info["message"] = ei.message;
        l["estimator_info"] = info;
      } else {
        l["kept_sites"] = 0;
        l["dropped_sites"] = Json::array();
        l["n_components"] = 0;
        l["estimator_info"] = nullptr;
      }
      Json ev = Json::array(), ts = Json::array(), tst = Json::array();
      if (r.have_spectrum) {
        l["spectrum"] = {{"method", r.spectrum.method_used == SpectrumMethod::Sparse ? "sparse"
                                                                                      : "dense"},
                         {"symmetrized", r.spectrum.symmetrized},
                         {"status", spectrum_status_name(r.spectrum.status)},
                         {"message", r.spectrum.message},
                         {"n_computed", r.spectrum.eigenvalues.size()}};
        const std::size_t k_max = std::min<std::size_t>(
            static_cast<std::size_t>(opt.n_eigenvalues), r.timescales.size());
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
      arr.push_back(l);
    }
    rep["lags"] = arr;
  }

  // ck_test[]
  {
    Json arr = Json::array();
    for (const auto& c : ck) {
      const bool ok = std::isfinite(c.err);
      arr.push_back({{"lag_steps", c.lag_steps},
                     {"lag_time_ps", json_number(static_cast<double>(c.lag_steps) * time_per_step)},
                     {"n", c.n},
                     {"n_lag_steps", c.lag_steps * c.n},
                     {"time_ps", json_number(static_cast<double>(c.lag_steps * c.n) * time_per_step)},
                     {"err", json_number(c.err)},
                     {"n_sites", c.n_sites},
                     {"method", c.matrix_free ? "matrix-free" : "dense"},
                     {"status", ok ? "ok" : ck_record_status(c)}});
    }
    rep["ck_test"] = arr;
    rep["ck_test_status"] = {{"status", ck_status}, {"message", ck_message}};
  }

  // diffusion[]
  {
    Json arr = Json::array();
    for (const auto& t : transport) {
      Json d;
      d["lag_steps"] = t.lag_steps;
      d["lag_time_ps"] = json_number(t.lag_time);
      d["status"] = t.status;
      d["message"] = t.message;
      if (t.have) {
        const DiffusionTensorResult& r = t.diffusion;
        d["D_tensor_A2_per_ps"] = mat3(r.D_A2_per_ps);
        d["D_total_A2_per_ps"] = json_number(r.D_total_A2_per_ps);
        d["D0_tensor_A2_per_ps"] = mat3(r.D0_A2_per_ps);
        d["D0_total_A2_per_ps"] = json_number(r.D0_total_A2_per_ps);
        Json f, fs_;
        const char* comp[3] = {"xx", "yy", "zz"};
        for (int a = 0; a < 3; ++a) {
          const double v = r.correlation_factor[a];
          f[comp[a]] = json_number(v);
          fs_[comp[a]] = std::isfinite(v) ? "ok" : "undefined (no hops along this axis)";
        }
        f["trace"] = json_number(r.correlation_factor_total);
        fs_["trace"] = std::isfinite(r.correlation_factor_total) ? "ok" : "undefined (no hops)";
        d["correlation_factor"] = f;
        d["correlation_factor_status"] = fs_;
        const EinsteinFit& e = t.einstein;
        d["D_einstein_A2_per_ps"] = {{"x", json_number(e.D_A2_per_ps[0])},
                                     {"y", json_number(e.D_A2_per_ps[1])},
                                     {"z", json_number(e.D_A2_per_ps[2])},
                                     {"total", json_number(e.D_total_A2_per_ps)},
                                     {"msd_method", "moments"},
                                     {"fit_first_point", e.first_point},
                                     {"fit_n_points", e.n_points},
                                     {"fit_t_start_ps", json_number(t.fit_t_start)},
                                     {"fit_t_end_ps", json_number(t.fit_t_end)}};
        d["drift_velocity_A_per_ps"] = vec3(r.drift_velocity_A_per_ps);
        d["n_sites"] = t.n_sites;
        d["n_active_sites"] = t.n_active;
        d["excluded_sites"] = t.excluded;
        d["dropped_count"] = t.dropped_count;
        d["transport_counts"] = opt.transport_within_components ? "components" : "all";
        if (opt.transport_within_components) {
          d["n_components"] = t.n_components;
          d["one_way_count"] = t.one_way_count;
        }
        // closed communicating classes; single-site classes (sites that never hop, common in
        // short runs) are only counted, so the list stays short
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
                             {"D_total_A2_per_ps", json_number(c.D_A2_per_ps.trace() / 3.0)},
                             {"drift_velocity_A_per_ps", vec3(c.drift_velocity_A_per_ps)}});
        }
        d["n_classes"] = r.classes.size();
        d["classes"] = classes;
        d["single_site_classes"] = {{"count", singles}, {"weight", json_number(single_weight)}};
        d["n_transient_sites"] = r.n_transient_states;
        d["used_sparse_solver"] = r.used_sparse_solver;
        d["linear_solver"] = r.linear_solver;
        d["solver_iterations"] = r.solver_iterations;
        d["max_stationary_residual"] = json_number(r.max_stationary_residual);
      }
      arr.push_back(d);
    }
    rep["diffusion"] = arr;
  }

  // bootstrap
  {
    Json b;
    b["status"] = boot.status;
    b["message"] = boot.message;
    b["n_replicates"] = boot.n_replicates;
    b["seed"] = opt.seed;
    b["n_blocks"] = data.blocks.size();
    b["block_steps"] = data.block_steps;
    b["coverage"] = kBootstrapCoverage;
    b["interval"] = "percentile";
    b["transport_counts"] = opt.transport_within_components ? "components" : "all";
    Json arr = Json::array();
    for (const auto& bl : boot.lags) {
      Json l;
      l["lag_steps"] = bl.lag_steps;
      l["lag_time_ps"] = json_number(bl.lag_time);
      Json ts = Json::array();
      for (int k = 0; k < boot.n_timescales; ++k) {
        Json t = summary_json(summarize_bootstrap(bl.values[static_cast<std::size_t>(k)],
                                                  kBootstrapCoverage));
        t["k"] = k + 2;
        ts.push_back(t);
      }
      l["timescales_ps"] = ts;
      const std::size_t K = static_cast<std::size_t>(boot.n_timescales);
      auto q = [&](std::size_t i) {
        return summary_json(summarize_bootstrap(bl.values[K + i], kBootstrapCoverage));
      };
      l["D_A2_per_ps"] = {{"xx", q(0)}, {"yy", q(1)}, {"zz", q(2)}, {"total", q(3)}};
      l["correlation_factor"] = {{"trace", q(4)}};
      arr.push_back(l);
    }
    b["lags"] = arr;
    rep["bootstrap"] = b;
  }

  // msd
  {
    Json m;
    m["lag_steps"] = sel_lag.lag_steps;
    m["lag_time_ps"] = json_number(sel_tau);
    m["n_steps"] = opt.msd_steps;
    m["replicate"] = Json::array({opt.replicate[0], opt.replicate[1], opt.replicate[2]});
    m["start"] = "occupancy";
    Json nlags = Json::array(), times = Json::array();
    for (std::int64_t k = 1; k <= opt.msd_steps; ++k) {
      nlags.push_back(k);
      times.push_back(json_number(static_cast<double>(k) * sel_tau));
    }
    m["n_lags"] = nlags;
    m["time_ps"] = times;
    for (int mm = 0; mm < 3; ++mm) {
      const auto& c = curves[static_cast<std::size_t>(mm)];
      Json b;
      if (c) {
        b["status"] = "ok";
        b["message"] = "";
        b["xx"] = numbers(c->msd_xx_A2);
        b["yy"] = numbers(c->msd_yy_A2);
        b["zz"] = numbers(c->msd_zz_A2);
        b["total"] = numbers(c->msd_total_A2);
        if (methods[mm] == MsdMethod::moments) {
          std::vector<double> mx, my, mz;
          for (const auto& v : c->mean_displacement_A) {
            mx.push_back(v[0]);
            my.push_back(v[1]);
            mz.push_back(v[2]);
          }
          b["mean_displacement"] = {{"x", numbers(mx)}, {"y", numbers(my)}, {"z", numbers(mz)}};
        }
      } else {
        b["status"] = curve_skipped[static_cast<std::size_t>(mm)] ? "skipped" : "failed";
        b["message"] = curve_msg[static_cast<std::size_t>(mm)];
        for (const char* k : {"xx", "yy", "zz", "total"}) b[k] = Json::array();
      }
      m[msd_method_name(methods[mm])] = b;
    }
    // The "MD truth" measured in situ by fix msm (the paper's site-projected MSD, Fig. 4):
    // per lag, the mean of the squared site-projected displacement over all counted pairs,
    // <delta_a delta_b> = displacement_sq_sum / total counts (optional datasets of the file).
    {
      Json md;
      if (data.has_displacement) {
        std::vector<double> tl, xx, yy, zz, tot;
        std::vector<std::int64_t> ls;
        for (const auto& lc : data.lags) {
          const double n = static_cast<double>(lc.total());
          if (n <= 0.0) continue;
          const Eigen::Matrix3d q = lc.displacement_sq_sum / n;
          ls.push_back(lc.lag_steps);
          tl.push_back(static_cast<double>(lc.lag_steps) * time_per_step);
          xx.push_back(q(0, 0));
          yy.push_back(q(1, 1));
          zz.push_back(q(2, 2));
          tot.push_back(q.trace());
        }
        md["status"] = "ok";
        md["message"] = "";
        md["lag_steps"] = ls;
        md["time_ps"] = numbers(tl);
        md["xx"] = numbers(xx);
        md["yy"] = numbers(yy);
        md["zz"] = numbers(zz);
        md["total"] = numbers(tot);
      } else {
        md["status"] = "absent";
        md["message"] = "the counts file has no displacement moments (written by ionmsm >= 0.1 "
                        "fix msm; synthetic or older files may lack them)";
        for (const char* k : {"lag_steps", "time_ps", "xx", "yy", "zz", "total"})
          md[k] = Json::array();
      }
      m["md_projected"] = md;
    }
    rep["msd"] = m;
  }

  // jump_network
  {
    Json j;
    j["lag_steps"] = sel_lag.lag_steps;
    j["lag_time_ps"] = json_number(sel_tau);
    if (network) {
      j["status"] = "ok";
      j["message"] = "";
      j["axes"] = Json::array({axes.axes[0], axes.axes[1]});
      j["axis_names"] = Json::array({axis_name(axes.axes[0]), axis_name(axes.axes[1])});
      j["jump_variance_A2"] = vec3(axes.jump_variance_A2);
      Json sites = Json::array();
      for (std::size_t s = 0; s < data.nsites(); ++s) {
        const Eigen::Vector3d& x = network->site_cartesian_A[s];
        Json site = {{"index", s},
                     {"x", json_number(x[0])},
                     {"y", json_number(x[1])},
                     {"z", json_number(x[2])},
                     {"occupancy", json_number(network->occupancy_fraction[s])},
                     {"occupancy_count", data.occupancy[s]},
                     {"active", sel_stats->state_of_site[s] >= 0}};
        if (!data.site_labels.empty()) site["label"] = data.site_labels[s];
        sites.push_back(site);
      }
      j["sites"] = sites;
      Json edges = Json::array();
      for (const auto& e : network->edges) {
        if (e.count_ab > 0)
          edges.push_back({{"from", e.site_a},
                           {"to", e.site_b},
                           {"rate_per_ps", json_number(e.rate_ab_per_ps)},
                           {"probability", json_number(e.rate_ab_per_ps * sel_tau)},
                           {"count", e.count_ab},
                           {"jump_A", vec3(e.mean_jump_ab_A)}});
        if (e.count_ba > 0)
          edges.push_back({{"from", e.site_b},
                           {"to", e.site_a},
                           {"rate_per_ps", json_number(e.rate_ba_per_ps)},
                           {"probability", json_number(e.rate_ba_per_ps * sel_tau)},
                           {"count", e.count_ba},
                           {"jump_A", vec3(-e.mean_jump_ab_A)}});
      }
      j["edges"] = edges;
      j["n_pairs"] = network->edges.size();
      Json self = Json::array();
      for (std::size_t s = 0; s < network->self_image_hop_count.size(); ++s)
        if (network->self_image_hop_count[s] > 0)
          self.push_back({{"site", s}, {"count", network->self_image_hop_count[s]}});
      j["self_image_hops"] = self;
    } else {
      j["status"] = "failed";
      j["message"] = network_msg;
      j["axes"] = Json::array({0, 1});
      j["axis_names"] = Json::array({"x", "y"});
      j["sites"] = Json::array();
      j["edges"] = Json::array();
      j["n_pairs"] = 0;
      j["self_image_hops"] = Json::array();
    }
    rep["jump_network"] = j;
  }
  rep["warnings"] = warnings;
  if (const std::size_t bad = analyze::replace_non_finite(rep); bad > 0)
    rep["warnings"].push_back(std::to_string(bad) + " non-finite number(s) written as null");

  // ================================================================ CSV tables
  std::vector<std::pair<std::string, std::string>> files;
  {
    std::string s = "lag_steps,lag_time_ps,k,eigenvalue_re,eigenvalue_im,timescale_ps,status\n";
    for (const auto& r : lags) {
      const std::size_t k_max =
          std::min<std::size_t>(static_cast<std::size_t>(opt.n_eigenvalues), r.timescales.size());
      for (std::size_t k = 0; k < k_max; ++k) {
        const ImpliedTimescale& t = r.timescales[k];
        s += csv_join({std::to_string(r.lag_steps), format_number(r.lag_time),
                       std::to_string(k + 1), format_number(t.eigenvalue.real()),
                       format_number(t.eigenvalue.imag()), format_number(t.timescale),
                       csv_text(timescale_status_name(t.status))});
      }
    }
    files.emplace_back("implied_timescales.csv", s);
  }
  {
    std::string s = "lag_steps,lag_time_ps,k,eigenvalue_re,eigenvalue_im,modulus,spectrum_status\n";
    for (const auto& r : lags) {
      if (!r.have_spectrum) continue;
      for (Eigen::Index k = 0; k < r.spectrum.eigenvalues.size(); ++k) {
        const std::complex<double> v = r.spectrum.eigenvalues(k);
        s += csv_join({std::to_string(r.lag_steps), format_number(r.lag_time),
                       std::to_string(k + 1), format_number(v.real()), format_number(v.imag()),
                       format_number(std::abs(v)),
                       csv_text(spectrum_status_name(r.spectrum.status))});
      }
    }
    files.emplace_back("spectrum.csv", s);
  }
  {
    std::string s = "lag_steps,lag_time_ps,n,n_lag_steps,time_ps,err,n_sites,status\n";
    for (const auto& c : ck)
      s += csv_join({std::to_string(c.lag_steps),
                     format_number(static_cast<double>(c.lag_steps) * time_per_step),
                     std::to_string(c.n), std::to_string(c.lag_steps * c.n),
                     format_number(static_cast<double>(c.lag_steps * c.n) * time_per_step),
                     format_number(c.err), std::to_string(c.n_sites),
                     std::isfinite(c.err) ? "ok" : ck_record_status(c)});
    files.emplace_back("ck_test.csv", s);
  }
  {
    std::string s =
        "lag_steps,lag_time_ps,D_xx,D_xy,D_xz,D_yy,D_yz,D_zz,D_total,"
        "D0_xx,D0_xy,D0_xz,D0_yy,D0_yz,D0_zz,D0_total,f_xx,f_yy,f_zz,f_trace,"
        "D_einstein_x,D_einstein_y,D_einstein_z,D_einstein_total,drift_x,drift_y,drift_z,"
        "n_active_sites,status\n";
    for (const auto& t : transport) {
      std::vector<std::string> f = {std::to_string(t.lag_steps), format_number(t.lag_time)};
      if (t.have) {
        const DiffusionTensorResult& r = t.diffusion;
        for (const Eigen::Matrix3d* m : {&r.D_A2_per_ps, &r.D0_A2_per_ps}) {
          for (auto [i, j] : {std::pair{0, 0}, {0, 1}, {0, 2}, {1, 1}, {1, 2}, {2, 2}})
            f.push_back(format_number((*m)(i, j)));
          f.push_back(format_number(m->trace() / 3.0));
        }
        for (int a = 0; a < 3; ++a) f.push_back(format_number(r.correlation_factor[a]));
        f.push_back(format_number(r.correlation_factor_total));
        for (int a = 0; a < 3; ++a) f.push_back(format_number(t.einstein.D_A2_per_ps[a]));
        f.push_back(format_number(t.einstein.D_total_A2_per_ps));
        for (int a = 0; a < 3; ++a) f.push_back(format_number(r.drift_velocity_A_per_ps[a]));
        f.push_back(std::to_string(t.n_active));
      } else {
        for (int k = 0; k < 26; ++k) f.emplace_back();
      }
      f.push_back(csv_text(t.status));
      s += csv_join(f);
    }
    files.emplace_back("diffusion.csv", s);
  }
  {
    std::string s = "n,time_ps";
    for (int mm = 0; mm < 3; ++mm)
      for (const char* c : {"xx", "yy", "zz", "total"})
        s += std::string(",") + msd_method_name(methods[mm]) + "_" + c;
    s += "\n";
    for (std::int64_t k = 0; k < opt.msd_steps; ++k) {
      std::vector<std::string> f = {std::to_string(k + 1),
                                    format_number(static_cast<double>(k + 1) * sel_tau)};
      const auto kk = static_cast<std::size_t>(k);
      for (int mm = 0; mm < 3; ++mm) {
        const auto& c = curves[static_cast<std::size_t>(mm)];
        if (c) {
          f.push_back(format_number(c->msd_xx_A2[kk]));
          f.push_back(format_number(c->msd_yy_A2[kk]));
          f.push_back(format_number(c->msd_zz_A2[kk]));
          f.push_back(format_number(c->msd_total_A2[kk]));
        } else {
          for (int q = 0; q < 4; ++q) f.emplace_back();
        }
      }
      s += csv_join(f);
    }
    files.emplace_back("msd.csv", s);
  }
  {
    std::string s = "lag_steps,from,to,count,probability,rate_per_ps,jump_x,jump_y,jump_z\n";
    for (const auto& e : rep["jump_network"]["edges"]) {
      auto num = [](const Json& v) { return v.is_null() ? std::string() : format_number(v.get<double>()); };
      s += csv_join({std::to_string(sel_lag.lag_steps), std::to_string(e["from"].get<long long>()),
                     std::to_string(e["to"].get<long long>()),
                     std::to_string(e["count"].get<unsigned long long>()), num(e["probability"]),
                     num(e["rate_per_ps"]), num(e["jump_A"][0]), num(e["jump_A"][1]),
                     num(e["jump_A"][2])});
    }
    files.emplace_back("jump_network.csv", s);
  }
  {
    std::string s = "lag_steps,lag_time_ps,quantity,mean,std,low,high,n,n_undefined\n";
    const std::size_t K = static_cast<std::size_t>(boot.n_timescales);
    for (const auto& bl : boot.lags) {
      for (std::size_t q = 0; q < bl.values.size(); ++q) {
        const BootstrapSummary b = summarize_bootstrap(bl.values[q], kBootstrapCoverage);
        const std::string name =
            q < K ? "t" + std::to_string(q + 2) + "_ps" : kBootstrapTransport[q - K];
        s += csv_join({std::to_string(bl.lag_steps), format_number(bl.lag_time), name,
                       format_number(b.mean), format_number(b.std), format_number(b.low),
                       format_number(b.high), std::to_string(b.n), std::to_string(b.n_undefined)});
      }
    }
    files.emplace_back("bootstrap.csv", s);
  }

  // ================================================================ write
  {
    std::error_code ec;
    if (fs::exists(opt.out_dir, ec) && !fs::is_directory(opt.out_dir, ec))
      throw std::runtime_error("output directory '" + opt.out_dir +
                               "' exists and is not a directory");
    fs::create_directories(opt.out_dir, ec);
    if (!fs::is_directory(opt.out_dir))
      throw std::runtime_error("cannot create output directory '" + opt.out_dir + "'" +
                               (ec ? ": " + ec.message() : std::string()));
    // plots of an earlier run would no longer match the new report
    for (const char* name : kPlotFiles) fs::remove(path_join(opt.out_dir, name), ec);
  }
  for (const auto& [name, content] : files)
    analyze::write_file_atomic(path_join(opt.out_dir, name), content);
  const std::string report_path = path_join(opt.out_dir, "report.json");
  analyze::write_file_atomic(report_path, analyze::dump_report(rep));

  // ================================================================ plots
  bool plots_ok = false;
  std::string plot_msg;
  if (opt.plots) {
    progress("plots");
    std::string script;
#ifdef IONMSM_PLOT_SCRIPT
    script = IONMSM_PLOT_SCRIPT;
#endif
    if (const char* e = std::getenv("IONMSM_PLOT_SCRIPT"); e && *e) script = e;
    std::string python = "/usr/bin/python3";
    if (const char* e = std::getenv("IONMSM_PYTHON"); e && *e) python = e;
    const analyze::PlotRun pr = analyze::run_plot_script(python, script, report_path, opt.out_dir);
    plots_ok = pr.ok;
    plot_msg = pr.message;
  }

  // ================================================================ summary on stdout
  std::ostream& os = std::cout;
  os << "ionmsm analyze: " << opt.input << " -> " << opt.out_dir << "\n";
  std::size_t n_ok = 0;
  for (const auto& r : lags) n_ok += r.status == "ok";
  os << "  lags: " << n_ok << " of " << lags.size() << " analysed (estimator "
     << estimator_name(opt.estimator) << "); MSD and jump network at lag " << sel_lag.lag_steps
     << " steps (" << format_number(sel_tau) << " " << time_unit << ")\n";
  for (const auto& t : transport) {
    if (t.index != sel_index || !t.have) continue;
    const auto& r = t.diffusion;
    auto f = [](double v) {
      char b[32];
      std::snprintf(b, sizeof b, "%.4g", v);
      return std::string(std::isfinite(v) ? b : "undefined");
    };
    os << "  D (exact, lag " << t.lag_steps << "): xx " << f(r.D_A2_per_ps(0, 0)) << ", yy "
       << f(r.D_A2_per_ps(1, 1)) << ", zz " << f(r.D_A2_per_ps(2, 2)) << ", total "
       << f(r.D_total_A2_per_ps) << " " << len_unit << "^2/"
       << (physical_time ? time_unit : std::string("timestep"))
       << "; correlation factor f = " << f(r.correlation_factor_total) << "\n";
    for (const auto& bl : boot.lags) {
      if (bl.index != sel_index) continue;
      const BootstrapSummary b = summarize_bootstrap(
          bl.values[static_cast<std::size_t>(boot.n_timescales) + 3], kBootstrapCoverage);
      os << "  bootstrap (" << boot.n_replicates << " replicates of " << data.blocks.size()
         << " blocks): D_total = " << f(b.mean) << " +- " << f(b.std) << ", 95 % interval ["
         << f(b.low) << ", " << f(b.high) << "]\n";
    }
  }
  os << "  wrote report.json and " << files.size() << " CSV files";
  if (opt.plots) os << (plots_ok ? ", 5 plots and plots.json" : " (no plots)");
  os << "\n";
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  progress("done in " + format_number(std::round(secs * 10.0) / 10.0) + " s");
  for (const auto& w : warnings) warn(w.get<std::string>());
  if (opt.plots && !plots_ok) {
    if (opt.plots_required)
      throw std::runtime_error("plotting failed: " + plot_msg +
                               " (report.json and the CSV files were written)");
    warn("plotting failed: " + plot_msg + "; report.json and the CSV files were written");
  }
  return kExitOk;
}

}  // namespace ionmsm::cli
