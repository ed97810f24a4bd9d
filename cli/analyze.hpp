#pragma once
// `ionmsm analyze` in phases (cli/analyze.cpp runs them in order): each phase returns a plain
// result struct, and the report (analyze_report.cpp) and the CSV tables (analyze_tables.cpp)
// are written from those structs. The numerics are the core's (msm.hpp, transport.hpp,
// leading_spectrum.hpp, bootstrap.hpp); the phases only loop over lags, catch per-lag failures
// and collect warnings.
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "analyze_util.hpp"
#include "ionmsm/blocks.hpp"
#include "ionmsm/bootstrap.hpp"
#include "ionmsm/counts.hpp"
#include "ionmsm/effective_cell.hpp"
#include "ionmsm/hop_diffusion.hpp"
#include "ionmsm/lag_selection.hpp"
#include "ionmsm/model_file.hpp"
#include "ionmsm/msm.hpp"
#include "ionmsm/transport.hpp"
#include "ionmsm/units.hpp"

namespace ionmsm::cli::analyze {

inline constexpr int kReportFormatVersion = 3;
inline constexpr double kEinsteinFitFraction = 0.5;  ///< fit the last half of the MSD
inline constexpr double kCkMaxFlops = 2e11;  ///< skip a CK test estimated above this (~minutes)
inline constexpr double kMsdMaxOps = 5e10;   ///< skip a folded MSD estimated above this
inline constexpr std::int64_t kDefaultBootstrap = 100;
inline constexpr double kBootstrapCoverage = 0.95;  ///< percentile interval
/// Warn when the selected lag's largest connected set holds fewer sites than this fraction.
inline constexpr double kMinConnectedFraction = 0.5;
/// Warn when a bootstrap mean differs from the point estimate by more than this fraction.
inline constexpr double kBootstrapBiasFraction = 0.25;

/// The MSD methods of the report, in report order.
inline constexpr MsdMethod kMsdMethods[] = {MsdMethod::minimum_image, MsdMethod::replicated,
                                            MsdMethod::moments};
inline constexpr std::size_t kNumMsdMethods = std::size(kMsdMethods);

/// The files a plot run writes (removed before a new analysis so no stale plot survives).
inline constexpr const char* kPlotFiles[] = {"implied_timescales.png", "ck_test.png", "msd.png",
                                             "spectrum.png", "jump_network.png", "plots.json"};
/// The Markov model file (docs/model-file.md), next to report.json.
inline constexpr const char* kModelFileName = "model.h5";
/// The PNG files among kPlotFiles.
inline constexpr std::size_t kNumPlots = std::size(kPlotFiles) - 1;

enum class TransportCounts { Components, All };  ///< --transport-counts
const char* transport_counts_name(TransportCounts t);
const char* estimator_name(Estimator e);

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
  TransportCounts transport_counts = TransportCounts::Components;
  std::int64_t ck_max_n = 0;              ///< --ck-max-n; 0 = every n
  std::optional<std::int64_t> bootstrap;  ///< --bootstrap N (default: kDefaultBootstrap)
  std::uint64_t seed = 1;                 ///< --seed
  int its_modes = 3;                      ///< --its-modes: m of the lag selection
  double its_tolerance = 0.1;             ///< --its-tolerance: relative change of the ITS
};

/// Progress lines on stderr: with --progress, or on a terminal once 2 s have passed.
class Progress {
 public:
  explicit Progress(bool forced);
  void operator()(const std::string& what) const;
  double seconds() const;

 private:
  bool forced_, tty_;
  double start_;
};

/// What the phases share: the input, the options and the file's units.
struct Context {
  const CountsData& data;
  const Options& opt;
  const Progress& progress;
  ReportUnits units;  ///< the units of the report (length, time, time per step)
  /// The transport cell (effective_cell.hpp): data.box_h is already H_eff when applied, and
  /// file_box_h the file's cell of the last sample.
  EffectiveCell cell;
  Eigen::Matrix3d file_box_h = Eigen::Matrix3d::Identity();
  double lag_time(std::int64_t lag_steps) const {
    return static_cast<double>(lag_steps) * units.time_per_step;
  }
};

// ------------------------------------------------------------------ phase results

/// How the lag was chosen (report "selected_lag.method").
enum class LagRule { Given, ItsConvergence, Sampling };
const char* lag_rule_name(LagRule r);  ///< "given", "its_convergence", "sampling"

/// The lag of the MSD, the jump network and f_tracer: by implied-timescale convergence
/// (lag_selection.hpp), else by the sampling rule, or --lag-steps.
struct LagSelection {
  std::size_t index = 0;  ///< into CountsData::lags
  LagRule method = LagRule::Sampling;
  std::string rule;       ///< how it was chosen (report text)
  double independent_windows = 0.0;
  /// The ITS convergence numbers (computed for every lag, also with --lag-steps); `its_lag`
  /// maps its entries to indices into CountsData::lags.
  LagSelectionResult its;
  std::vector<std::size_t> its_lag;
  std::vector<std::string> warnings;
};

/// One lag's MSM: model, spectrum and implied timescales.
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
  std::vector<DegenerateSet> degenerate_sets;  ///< of the reported modes
  /// The reversible estimate's timescales beside the default ones (the same model when
  /// --estimator rev); empty with reversible_message when it failed.
  std::vector<ImpliedTimescale> reversible_timescales;
  std::string reversible_message;
};

struct LagsPhase {
  std::vector<LagResult> lags;
  std::vector<std::string> warnings;
};

struct CkPhase {
  std::vector<CkRecord> records;
  std::string status = "ok";  ///< ok | skipped | failed
  std::string message;
  std::vector<std::string> warnings;
};

/// One lag's transport: exact D, Einstein fit of the propagated MSD.
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
  std::uint64_t one_way_count = 0;  ///< transitions between components, dropped
  std::size_t n_components = 0;     ///< strongly connected components among visited sites
  DiffusionTensorResult diffusion;
  double site_change_probability = 0.0;  ///< hop_diffusion.hpp, from the limiting distribution
  EinsteinFit einstein;  ///< of the drift-centred moments MSD
  Eigen::Vector3d msd_drift_velocity = Eigen::Vector3d::Zero();  ///< mean displacement / t, last point
  double fit_t_start = 0.0, fit_t_end = 0.0;
};

struct TransportPhase {
  std::vector<TransportResult> lags;               ///< every lag with counts
  std::unique_ptr<TransportStatistics> selected;   ///< the selected lag's statistics, if built
  /// f_tracer = D(selected) / D_hop(shortest lag with counts), when both lags have transport.
  std::optional<TracerCorrelation> tracer;
  std::vector<std::string> warnings;
};

/// The MSD curves and the jump network of the selected lag.
struct MsdPhase {
  std::int64_t lag_steps = 0;
  double tau = 0.0;  ///< lag time
  std::array<std::optional<MsdCurve>, kNumMsdMethods> curves;
  std::array<std::string, kNumMsdMethods> message;
  std::array<bool, kNumMsdMethods> skipped{};
  std::optional<JumpNetwork> network;
  ProjectionAxes axes;
  std::string network_message;
  std::vector<std::string> warnings;
};

struct Analysis {
  LagSelection selection;
  LagsPhase lags;
  CkPhase ck;
  TransportPhase transport;
  BootstrapResult bootstrap;
  MsdPhase msd;
  std::vector<std::string> model_warnings;  ///< from model_data (model.h5)
  std::vector<std::string> data_warnings;   ///< data_warnings: what the data cannot support
  /// Every phase's warnings, in phase order.
  std::vector<std::string> warnings() const;
};

// ------------------------------------------------------------------ phases (analyze_phases.cpp)

LagsPhase estimate_lags(const Context& c);
CkPhase chapman_kolmogorov(const Context& c, const std::vector<LagResult>& lags);
TransportPhase transport_per_lag(const Context& c, std::size_t selected);
BootstrapResult bootstrap(const Context& c);
/// Throws the error of a --lag-steps lag that is not in the file or has no counts.
void check_given_lag(const Context& c);
/// The lag by ITS convergence (analyze_selection.cpp), after the lags, CK and bootstrap phases.
LagSelection select_lag(const Context& c, const LagsPhase& lags, const CkPhase& ck,
                        const BootstrapResult& boot);
MsdPhase msd_and_network(const Context& c, std::size_t selected,
                         const TransportStatistics* stats);

// ------------------------------------------------------------------ output

/// "ok", or why a CK record has no error ("undefined (no common sites)", ...).
const char* ck_record_status(const CkRecord& c);

/// One direction of a jump-network edge with counts (report.json "edges", jump_network.csv).
struct DirectedJump {
  SiteIndex from = 0, to = 0;
  double rate = 0.0;         ///< per unit time
  double probability = 0.0;  ///< rate * tau: the transition probability in one lag
  std::uint64_t count = 0;
  Eigen::Vector3d jump = Eigen::Vector3d::Zero();  ///< mean jump vector from -> to
};
/// Every direction with counts, a -> b before b -> a, in the network's edge order.
std::vector<DirectedJump> directed_jumps(const JumpNetwork& net, double tau);

/// report.json (docs/report-schema.md); `args` is the command line after the verb.
Json report_json(const Context& c, const Analysis& a, const std::vector<std::string>& args);

/// report.json "selected_lag" (analyze_selection.cpp).
Json selection_json(const Context& c, const LagSelection& s);

/// The MD site-projected MSD per lag with counts (fix msm's /lags/displacement_sq_sum over the
/// lag's counts; the cell of each later sample), or nothing when the file lacks it
/// (analyze_which_d.cpp).
std::optional<MsdCurve> md_projected_curve(const Context& c);

/// report.json "which_D": the exact D, the Einstein fit and the MD MSD slope side by side, and
/// why the exact D is preferred (analyze_which_d.cpp).
Json which_d_json(const Context& c, const Analysis& a);
/// The same explanation in one paragraph for the console.
std::string which_d_note();

/// Warnings with numbers where the data cannot support the results (analyze_warnings.cpp).
std::vector<std::string> data_warnings(const Context& c, const Analysis& a);

/// The Markov models of every analysed lag for model.h5 (analyze_model.cpp); a lag whose
/// eigenvectors fail is stored without them and adds a warning.
ModelData model_data(const Context& c, const Analysis& a, std::vector<std::string>& warnings);

/// The CSV tables as (file name, contents), in the order they are written.
std::vector<std::pair<std::string, std::string>> csv_tables(const Context& c, const Analysis& a);

}  // namespace ionmsm::cli::analyze
