#pragma once
// Small helpers of `ionmsm analyze` (cli/analyze.cpp): number formatting for CSV and JSON,
// atomic file writes, the default-lag rule and the plot-script runner. No numerics here: every
// MSM / transport quantity comes from src/ionmsm/msm.hpp and src/ionmsm/transport.hpp.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace ionmsm::cli::analyze {

using Json = nlohmann::ordered_json;

/// Shortest decimal text that reads back to the same double ("0.1", "2.5e-07"); "" for NaN and
/// +-inf (an empty CSV field means "undefined", see docs/report-schema.md).
std::string format_number(double v);

/// A finite double as a JSON number, anything else as null.
Json json_number(double v);

/// Replaces every non-finite number in `j` (recursively) by null; returns how many it replaced.
/// A safety net: the report builder already writes null plus a status for undefined values.
std::size_t replace_non_finite(Json& j);

/// JSON text for report.json: the top-level keys one per line, and one line per element of a
/// top-level array or per key of a top-level object; everything deeper compact. Readable with
/// grep and diff, and a fraction of the size of a fully indented dump.
std::string dump_report(const Json& j);

/// Writes `content` to `path` atomically: to "DIR/.NAME.tmp.<pid>" in the same directory, then
/// rename(2) onto `path`, so a reader sees the old file or the complete new one. Throws
/// std::runtime_error naming the path (the temporary is removed).
void write_file_atomic(const std::string& path, const std::string& content);

/// The default lag of `ionmsm analyze` for the MSD, D and the jump network (documented in
/// docs/report-schema.md, "Lag selection"): the LONGEST lag with counts whose number of
/// independent (non-overlapping) windows, n_origins * nevery / lag_steps, is at least
/// kMinIndependentWindows; if no lag qualifies, the shortest lag with counts.
inline constexpr double kMinIndependentWindows = 10.0;

struct LagCandidate {
  std::int64_t lag_steps = 0;
  std::uint64_t n_origins = 0;
  std::uint64_t total_counts = 0;
};

struct LagChoice {
  int index = -1;                  ///< into the candidate list; -1 if no lag has counts
  double independent_windows = 0;  ///< of the chosen lag
  bool fallback = false;           ///< true if no lag reached kMinIndependentWindows
};

/// n_origins * nevery / lag_steps (0 for lag_steps <= 0).
double independent_windows(std::uint64_t n_origins, std::int64_t nevery, std::int64_t lag_steps);

LagChoice choose_default_lag(const std::vector<LagCandidate>& lags, std::int64_t nevery);

/// Result of running the plot script.
struct PlotRun {
  bool ok = false;
  std::string message;  ///< why it failed (one line), empty when ok
};

/// Runs `python script report_json --out out_dir` (no shell; the child's stdout goes to our
/// stderr) and waits for it. Never throws for a missing interpreter or script: reports it.
PlotRun run_plot_script(const std::string& python, const std::string& script,
                        const std::string& report_json, const std::string& out_dir);

/// run_plot_script with the configured script and interpreter: the script from environment
/// variable `script_env` if set and not empty, else `compiled_script` (the path compiled in,
/// "" if none); the interpreter from IONMSM_PYTHON if set and not empty, else /usr/bin/python3.
PlotRun run_configured_plot_script(const char* compiled_script, const char* script_env,
                                   const std::string& input, const std::string& out_dir);

}  // namespace ionmsm::cli::analyze
